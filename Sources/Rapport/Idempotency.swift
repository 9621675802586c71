import Foundation
import RapportCore

extension RapportEngine {
    /// How long a request id is remembered.
    public static let requestIDRetention: Duration = .seconds(24 * 3600)

    /// Whose request ids a call's are: two callers (the gRPC layer binds each call's API key) may use the same id
    /// for their own requests. Nil (in-process calls): the engine's own.
    ///
    /// ```swift
    /// try await RapportEngine.$requestScope.withValue("billing") { try await crm.createCustomer(input, requestID: "42") }
    /// ```
    @TaskLocal public static var requestScope: String?

    /// Runs a mutation in one write transaction, idempotently when `requestID` is set: the first call's result is
    /// stored in the same transaction, and a retry with the same id returns it without running the body again.
    /// A retry whose request differs (by `fingerprint`) fails with `failedPrecondition`.
    func mutate<T: Sendable & Codable>(
        _ operation: String, requestID: String?, fingerprint: some Encodable, _ body: @Sendable @escaping (any StoreWriter) throws -> T
    ) async throws(RapportError) -> T {
        guard let requestID, !requestID.isEmpty else {
            let result = try await write(body)
            changeNotifier.notify()
            return result
        }
        guard requestID.utf8.count <= 128, !requestID.containsNewline, !requestID.containsNUL else {
            throw .invalid("request_id", "must be at most 128 bytes (UTF-8) on one line, without NUL")
        }
        // One id, one request, whatever the call: the caller's id is the key, and the operation is part of what
        // must match. (Earlier versions kept "request:id", and before 2026-12 "operation:id", for every caller; such
        // a record, under a day old, is still found.)
        // A scoped key has its own prefix (no unscoped id can spell it) and the scope's length (no scope and id
        // can be cut another way).
        let scope = Self.requestScope ?? ""
        let unscopedKey = "request:\(requestID.canonical)"
        let key = scope.isEmpty ? unscopedKey : "request@\(scope.utf8.count):\(scope):\(requestID.canonical)"
        let legacyKey = "\(operation):\(requestID.canonical)"
        let digest = Self.fingerprint(of: fingerprint)
        let operationDigest = "\(operation):" + digest
        let now = clock.now()
        let result: T = try await write { tx in
            // A request id is remembered for a day, whether or not housekeeping has forgotten it yet.
            if let stored = try tx.idempotencyRecord(key) ?? (scope.isEmpty ? nil : tx.idempotencyRecord(unscopedKey)) ?? tx.idempotencyRecord(legacyKey).map({ legacy in
                var record = legacy
                record.fingerprint = "\(operation):" + legacy.fingerprint
                return record
            }), stored.createdAt >= now - Self.requestIDRetention {
                guard stored.fingerprint == operationDigest else {
                    let other = stored.fingerprint.split(separator: ":").first.map(String.init) ?? operation
                    throw RapportError.failedPrecondition(
                        other == operation
                            ? "request_id '\(requestID)' was already used for a different \(operation) request"
                            : "request_id '\(requestID)' was already used for a \(other) request; use a new id for each request")
                }
                guard !stored.response.isEmpty else {
                    throw RapportError.failedPrecondition(
                        "request_id '\(requestID)' was applied already; its answer held data of a customer erased since, so it is not kept")
                }
                return try JSONDecoder().decode(T.self, from: Data(stored.response))
            }
            let result = try body(tx)
            try tx.deleteIdempotencyRecords(before: now - Self.requestIDRetention)
            let response = try JSONEncoder().encode(Self.storable(result))
            try tx.insertIdempotencyRecord(IdempotencyRecord(key: key, fingerprint: operationDigest, response: Array(response), createdAt: now))
            return result
        }
        changeNotifier.notify()
        return result
    }

    /// What of a result may be kept: a new API key's secret is never stored, not even for a retry.
    static func storable<T>(_ result: T) -> T {
        if var created = result as? CreatedAPIKey {
            created.secret = ""
            return created as! T
        }
        return result
    }

    package static func fingerprint(of value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = (try? encoder.encode(value)) ?? Data()
        return SHA256.hash(bytes).prefix(16).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// An empty result, for mutations that return nothing.
public struct Done: Hashable, Sendable, Codable {
    public init() {}
}
