import Synchronization
import Foundation
public import RapportCore
import Logging

/// A new API key and its secret, which is shown this once.
public struct CreatedAPIKey: Hashable, Sendable, Codable {
    public var key: APIKey
    /// Send it as `authorization: Bearer <secret>`. Empty when a retried request returns a key created before:
    /// secrets are never stored.
    public var secret: String
}

extension RapportEngine {
    /// Creates an API key with a role. Only a hash of the secret is stored.
    ///
    /// ```swift
    /// let created = try await crm.createAPIKey(name: "checkout-service", role: .marketing)
    /// print(created.secret)  // shown once
    /// ```
    public func createAPIKey(name: String, role: Role, requestID: String? = nil) async throws(RapportError) -> CreatedAPIKey {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.unicodeScalars.count <= 200, !trimmed.containsNUL else { throw .invalid("name", "must be 1 to 200 characters without NUL") }
        let now = clock.now()
        let id = ids.make(APIKeyID.self, at: now)
        let secret = Self.makeSecret()
        let key = APIKey(id: id, name: trimmed, role: role, secretHash: SHA256.hex(secret), createdAt: now)
        return try await mutate("createAPIKey", requestID: requestID, fingerprint: [trimmed, role.rawValue]) { tx in
            try tx.insertAPIKey(key)
            return CreatedAPIKey(key: key, secret: secret)
        }
    }

    /// Revokes an API key: it authenticates nobody from now on. Revoking a revoked key changes nothing.
    ///
    /// The last active admin key is not revoked (`failedPrecondition`): without one nobody could create keys again.
    /// Create another admin key first.
    public func revokeAPIKey(_ id: APIKeyID, requestID: String? = nil) async throws(RapportError) -> APIKey {
        let now = clock.now()
        let key: APIKey = try await mutate("revokeAPIKey", requestID: requestID, fingerprint: id) { tx in
            guard var key = try tx.apiKey(id) else { throw RapportError.notFound(entity: "api key", id: id.rawValue) }
            guard key.revokedAt == nil else { return key }
            if key.role == .admin, try !tx.apiKeys().contains(where: { $0.id != key.id && $0.role == .admin && $0.isActive }) {
                throw RapportError.failedPrecondition(
                    "api key \(id) is the last active admin key: create another admin key before revoking it, or nobody could manage keys")
            }
            key.revokedAt = now
            try tx.updateAPIKey(key)
            return key
        }
        authenticated.withLock { state in
            state.cache.removeValue(forKey: key.secretHash)
            state.revocations += 1
        }
        return key
    }

    /// Waits until the key `id` is revoked (or deleted) and returns true; returns false instead when the calling task
    /// is cancelled or the engine's watchers are finished (``finishChangeWatchers()``, at shutdown). A server runs it
    /// beside each long call, so that revoking a key also ends the streams it opened.
    ///
    /// It looks at the key after each commit through this engine, and every ``ChangeWatch/pollInterval`` for a key
    /// revoked by another process sharing the store. A read that fails is logged and tried again at the next look:
    /// a store that cannot tell for a moment does not stop the watch.
    public func waitForRevocation(of id: APIKeyID) async -> Bool {
        var failing = false
        while !Task.isCancelled {
            // Subscribed before reading, so that a revocation committed meanwhile ends the wait below at once.
            let (subscription, signals) = changeNotifier.subscribe()
            defer { changeNotifier.cancel(subscription) }
            do {
                guard let key = try await quickRead({ tx in try tx.apiKey(id) }), key.isActive else { return true }
                failing = false
            } catch {
                if Task.isCancelled { return false }
                // Once per streak of failures: every commit wakes every watch.
                if !failing {
                    logger.warning("cannot read an API key to see whether it was revoked; looking again", metadata: ["key": "\(id)", "error": "\(error)"])
                }
                failing = true
            }
            if await ChangeNotifier.wait(for: signals, orFor: ChangeWatch.pollInterval, on: clock) == .finished { return false }
        }
        return false
    }

    /// Every API key (never their secrets), oldest first.
    public func apiKeys() async throws(RapportError) -> [APIKey] {
        try await read { tx in try tx.apiKeys() }
    }

    /// The active key a secret belongs to, or nil for an unknown or revoked secret.
    public func authenticate(secret: String) async throws(RapportError) -> APIKey? {
        guard secret.hasPrefix(Self.secretPrefix), secret.utf8.count < 200 else { return nil }
        let hash = SHA256.hex(secret)
        let now = clock.now()
        let (cached, revocations) = authenticated.withLock { ($0.cache[hash], $0.revocations) }
        if let cached, now < cached.until { return cached.key }
        guard let key = try await quickRead({ tx in try tx.apiKey(secretHash: hash) }), key.isActive else { return nil }
        authenticated.withLock { state in
            // A key revoked while it was read is not cached as active (it may be this one).
            guard state.revocations == revocations else { return }
            if state.cache.count > 10_000 { state.cache.removeAll() }
            state.cache[hash] = (key, now + .seconds(5))
        }
        return key
    }

    /// Creates an admin key named `name` if the store has no active key (none yet, or every one revoked), and
    /// returns it; nil otherwise. The server calls it on start to print the first admin secret, once.
    public func bootstrapAdminKey(name: String = "bootstrap admin") async throws(RapportError) -> CreatedAPIKey? {
        let now = clock.now()
        let id = ids.make(APIKeyID.self, at: now)
        let secret = Self.makeSecret()
        let created: CreatedAPIKey? = try await write { tx in
            guard try !tx.apiKeys().contains(where: \.isActive) else { return nil }
            let key = APIKey(id: id, name: name, role: .admin, secretHash: SHA256.hex(secret), createdAt: now)
            try tx.insertAPIKey(key)
            return CreatedAPIKey(key: key, secret: secret)
        }
        return created
    }

    /// Revokes the key ``bootstrapAdminKey(name:)`` made when its secret could not be shown to anyone (it may be the
    /// last admin key: nobody holds it), so that the next start makes another.
    package func revokeUnseenBootstrapKey(_ id: APIKeyID) async throws(RapportError) {
        let now = clock.now()
        let _: Done = try await mutate("revokeUnseenBootstrapKey", requestID: nil, fingerprint: id) { tx in
            guard var key = try tx.apiKey(id), key.isActive else { return Done() }
            key.revokedAt = now
            try tx.updateAPIKey(key)
            return Done()
        }
    }

    static let secretPrefix = "rpk_"

    /// `rpk_` and 256 random bits in base32.
    static func makeSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var text = secretPrefix
        for _ in 0..<52 { text.append(alphabet[Int(generator.next() % 32)]) }
        return text
    }
}
