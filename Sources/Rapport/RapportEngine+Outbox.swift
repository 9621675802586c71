public import RapportCore
import Logging
import Synchronization

/// One page of outbox entries, oldest first.
public struct OutboxPage: Hashable, Sendable {
    public var entries: [OutboxEntry]
    public var nextPageToken: String?
}

extension RapportEngine {
    /// Whether an entry may be leasable now (the store's view, before the checks of a lease): none means a lease
    /// would find nothing.
    func hasDeliverableOutboxEntries() async throws(RapportError) -> Bool {
        let now = clock.now()
        return try await quickRead { tx in try !tx.deliverableOutboxEntries(at: now, after: 0, limit: 1).isEmpty }
    }

    /// Leases up to `limit` entries that may be delivered now: for each customer, the oldest entry not yet
    /// delivered, so that a customer's messages go out in order (customers merged together are one queue). A lease that expires without an acknowledgement
    /// makes the entry deliverable again (at least once).
    ///
    /// A message whose customer no longer allows its channel for its purpose is not leased but fails (`withdrawn:
    /// …`), however it came back to be delivered: a lease that ran out, a retry, a release.
    ///
    /// ```swift
    /// for entry in try await crm.leaseOutbox(consumer: "mailer") {
    ///     try await mailer.send(entry)                      // deduplicate with entry.idempotencyKey
    ///     try await crm.acknowledgeOutbox([entry.id])
    /// }
    /// ```
    /// - Parameter requestID: a retry with the same id leases no more: it returns the entries the first call leased
    ///   that its lease still holds.
    public func leaseOutbox(
        consumer: String, limit: Int = 100, leaseDuration: Duration = .seconds(60), requestID: String? = nil
    ) async throws(RapportError) -> [OutboxEntry] {
        try Self.validateConsumer(consumer)
        guard (1...1000).contains(limit) else { throw .invalid("limit", "must be 1 to 1000, got \(limit)") }
        guard leaseDuration >= .seconds(1), leaseDuration <= .seconds(86_400) else { throw .invalid("lease_duration", "must be 1 second to 1 day") }
        if let requestID, !requestID.isEmpty {
            let fingerprint = LeaseFingerprint(consumer: consumer, limit: limit, leaseMilliseconds: leaseDuration.milliseconds)
            let answered = try await mutate("leaseOutbox", requestID: requestID, fingerprint: fingerprint) { [self] tx in
                try Self.lease(consumer: consumer, limit: limit, leaseDuration: leaseDuration, now: clock.now(), tx: tx)
            }
            // A retry comes later: only the entries the first call leased that this lease still holds are the
            // caller's to send (not those acknowledged since, or whose lease ran out and went to another worker).
            let now = clock.now()
            return try await read { tx in
                try answered.compactMap { leased in
                    guard let current = try tx.outboxEntry(leased.id), current.state == .leased, current.leaseOwner == consumer,
                        current.leaseExpiresAt == leased.leaseExpiresAt, current.attempts == leased.attempts, let expiry = current.leaseExpiresAt, expiry > now
                    else { return nil }
                    return current
                }
            }
        }
        return try await write { [clock] tx in
            // Read in the transaction: a lease timed before a wait for the writer could be out already when returned.
            try Self.lease(consumer: consumer, limit: limit, leaseDuration: leaseDuration, now: clock.now(), tx: tx)
        }
    }

    /// What a lease call asks for: its retry must ask for the same.
    private struct LeaseFingerprint: Encodable {
        var consumer: String
        var limit: Int
        var leaseMilliseconds: Int64
    }

    /// Leases up to `limit` deliverable entries to `consumer` in `tx`.
    private static func lease(consumer: String, limit: Int, leaseDuration: Duration, now: Timestamp, tx: any StoreWriter) throws -> [OutboxEntry] {
        var leased: [OutboxEntry] = []
        var consents: [CustomerID: [Consent]] = [:]
        var passedOver: Set<OutboxEntryID> = []
        // An entry passed over leaves room for the ones after it: look on from the last one read until full. A
        // withdrawn message fails instead, which lets its customer's next entry go, wherever it stands: look
        // again from the start then (once per failure at most).
        var after: Int64 = 0
        while leased.count < limit {
            let wanted = limit - leased.count
            let deliverable = try tx.deliverableOutboxEntries(at: now, after: after, limit: wanted)
            var failed = 0
            for var entry in deliverable where !passedOver.contains(entry.id) {
                // Entries stay with the customer they were queued for through a merge (an unmerge or an erasure
                // takes them along), so one person's queue can span the customers merged together: the oldest
                // open entry among them goes first.
                guard try Self.isFirstOfItsPerson(entry, tx: tx) else {
                    passedOver.insert(entry.id)
                    continue
                }
                if case .message(let message) = entry.payload {
                    let owner = try tx.activeCustomer(entry.customerID).id
                    if consents[owner] == nil { consents[owner] = currentConsents(try tx.consents(of: owner)) }
                    if !WriteSession.allows(consents[owner]!, channel: message.channel, purpose: message.purpose) {
                        entry.state = .failed
                        entry.leaseOwner = nil
                        entry.leaseExpiresAt = nil
                        entry.lastError =
                            "withdrawn: the customer no longer allows \(message.channel.rawValue) for \(message.purpose.rawValue) (found at \(now), before it was sent)"
                        entry.updatedAt = now
                        try tx.updateOutboxEntry(entry)
                        // The customer's other queued messages of the kind go the same way at once.
                        try Self.withdrawMessages(of: owner, channel: message.channel, purpose: message.purpose, tx: tx, now: now)
                        failed += 1
                        continue
                    }
                }
                entry.state = .leased
                entry.leaseOwner = consumer
                entry.leaseExpiresAt = now + leaseDuration
                entry.attempts += 1
                entry.updatedAt = now
                try tx.updateOutboxEntry(entry)
                leased.append(entry)
            }
            if failed > 0 {
                after = 0
                continue
            }
            guard deliverable.count == wanted, let last = deliverable.last else { break }  // nothing after these
            after = last.sequence
        }
        return leased
    }

    /// False when another customer merged with `entry`'s (its standing side: one person) has an open entry queued
    /// before it.
    private static func isFirstOfItsPerson(_ entry: OutboxEntry, tx: any StoreReader) throws -> Bool {
        guard try tx.customer(entry.customerID) != nil else { return true }
        let person = try tx.activeCustomer(entry.customerID).id
        let side = try WriteSession.standingSide(of: person, tx: tx)
        guard side.count > 1 else { return true }
        for customer in side where customer != entry.customerID {
            if let first = try tx.firstOpenOutboxSequence(of: customer), first < entry.sequence { return false }
        }
        return true
    }

    /// Marks entries delivered. Acknowledging an entry twice, or one whose lease expired, is fine: it was
    /// delivered (an entry failed before is marked delivered too). Returns the entries acknowledged. Acknowledged
    /// after its lease expired while another consumer holds it again, the customer's next entry may go out while that
    /// consumer still sends its copy: a receiver that drops repeated idempotency keys sees them in order.
    ///
    /// An id of an entry that no longer exists (its customer was erased while the entry was out, or housekeeping
    /// forgot it) is skipped: the others of the same call are acknowledged all the same, so that they are not
    /// delivered again.
    @discardableResult
    public func acknowledgeOutbox(_ ids: [OutboxEntryID]) async throws(RapportError) -> [OutboxEntry] {
        guard !ids.isEmpty, ids.count <= 1000 else { throw .invalid("ids", "name 1 to 1000 entries, got \(ids.count)") }
        let now = clock.now()
        let entries: [OutboxEntry] = try await write { tx in
            try ids.compactMap { id in
                guard var entry = try tx.outboxEntry(id) else { return nil }
                guard entry.state != .delivered else { return entry }
                entry.state = .delivered
                entry.leaseOwner = nil
                entry.leaseExpiresAt = nil
                entry.updatedAt = now
                try tx.updateOutboxEntry(entry)
                return entry
            }
        }
        changeNotifier.notify()  // the customer's next entry may be deliverable now
        return entries
    }

    /// Reports a failed delivery: with `retryAfter` the entry is offered again after that delay (and still
    /// holds back the customer's later entries); without it the entry is given up on (`failed`) and the
    /// customer's later entries go on.
    ///
    /// - Parameter consumer: the consumer reporting; when given, a report from a consumer whose lease expired
    ///   while another consumer holds the entry now is refused, so that it cannot undo the live lease.
    /// - Parameter attempt: the entry's ``OutboxEntry/attempts`` as it was leased to the reporter; when given, a
    ///   report about an earlier lease (its lease ran out and the entry was leased again since, by any consumer, the
    ///   same name too) is refused, so that a worker whose lease ran out cannot undo the one that holds it now. (An
    ///   entry a worker released is not counted as an attempt: it must not report on it afterwards.)
    /// - Parameter requestID: a retry with the same id returns what the first call did (not that the entry is failed
    ///   already).
    /// - Throws: `failedPrecondition` for an entry already delivered or failed (unless the call is a retry of the
    ///   one that failed it), leased by another consumer, or leased again since `attempt`.
    @discardableResult
    public func failOutboxEntry(
        _ id: OutboxEntryID, consumer: String? = nil, attempt: Int? = nil, error message: String, retryAfter: Duration? = nil, requestID: String? = nil
    ) async throws(RapportError) -> OutboxEntry {
        if let consumer { try Self.validateConsumer(consumer) }
        if let attempt, attempt < 1 { throw .invalid("attempt", "must be the attempt the entry was leased with (1 or more)") }
        if let retryAfter, retryAfter < .zero || retryAfter > .seconds(7 * 86_400) { throw .invalid("retry_after", "must be 0 to 7 days") }
        let fingerprint = FailFingerprint(id: id, consumer: consumer, attempt: attempt, error: message, retryAfterMilliseconds: retryAfter?.milliseconds)
        let entry: OutboxEntry = try await mutate("failOutboxEntry", requestID: requestID, fingerprint: fingerprint) { [clock] tx in
            let now = clock.now()  // whose lease is live is told at the time of the transaction
            guard var entry = try tx.outboxEntry(id) else { throw RapportError.notFound(entity: "outbox entry", id: id.rawValue) }
            guard entry.isOpen else { throw RapportError.failedPrecondition("outbox entry \(id) is \(entry.state.rawValue) already") }
            if let consumer, entry.state == .leased, let owner = entry.leaseOwner, owner != consumer, let expires = entry.leaseExpiresAt, expires > now {
                throw RapportError.failedPrecondition("outbox entry \(id) is leased by '\(owner)' until \(expires); the lease of '\(consumer)' expired")
            }
            if let attempt, attempt != entry.attempts {
                throw RapportError.failedPrecondition("outbox entry \(id) was leased again since attempt \(attempt) (it is at attempt \(entry.attempts))")
            }
            entry.lastError = String(message.prefix(2000))
            entry.leaseOwner = nil
            entry.leaseExpiresAt = nil
            entry.updatedAt = now
            if let retryAfter {
                entry.state = .pending
                entry.availableAt = now + retryAfter
            } else {
                entry.state = .failed
            }
            try tx.updateOutboxEntry(entry)
            return entry
        }
        return entry
    }

    /// What a failure report says: its retry must say the same.
    private struct FailFingerprint: Encodable {
        var id: OutboxEntryID
        var consumer: String?
        var attempt: Int?
        var error: String
        var retryAfterMilliseconds: Int64?
    }

    /// One outbox entry.
    public func outboxEntry(_ id: OutboxEntryID) async throws(RapportError) -> OutboxEntry {
        let now = clock.now()
        return try await read { tx in
            guard let entry = try tx.outboxEntry(id) else { throw RapportError.notFound(entity: "outbox entry", id: id.rawValue) }
            return entry.seen(at: now)
        }
    }

    /// Outbox entries, oldest first, optionally of one customer and in some states. An entry whose lease expired is
    /// pending (``OutboxEntry/seen(at:)``); a page may then hold fewer entries than asked for, with a token for more.
    public func outboxEntries(customer: CustomerID? = nil, states: Set<OutboxState> = [], page: PageRequest = PageRequest()) async throws(RapportError)
        -> OutboxPage
    {
        let size = try PageToken.pageSize(page.size)
        let scope = "\(customer?.rawValue ?? "")|\(states.map(\.rawValue).sorted())"
        let after = try page.token.map { token throws(RapportError) in try PageToken.decodeOutboxSequence(token, scope: scope) } ?? 0
        let now = clock.now()
        // Stored leased, an entry whose lease expired is seen pending: asked for pending ones, leased ones are read too.
        let stored = states.contains(.pending) ? states.union([.leased]) : states
        return try await read { tx in
            let found = try tx.outboxEntries(OutboxQuery(customerID: customer, states: stored, afterSequence: after, limit: size + 1))
            let scanned = found.prefix(size)
            let shown = scanned.map { $0.seen(at: now) }.filter { states.isEmpty || states.contains($0.state) }
            return OutboxPage(
                entries: shown, nextPageToken: found.count > size ? scanned.last.map { PageToken.encode(outboxSequence: $0.sequence, scope: scope) } : nil)
        }
    }

    /// The entries a consumer should deliver, leased as they are taken, as an endless sequence: it waits for new
    /// entries (and for expired leases) and ends only when the consumer stops iterating, the task is cancelled (it
    /// throws `CancellationError` then, having handed back what it had leased and not handed out), or the engine's
    /// watchers are finished (``finishChangeWatchers()``, a server shutting down).
    /// Acknowledge each entry with ``acknowledgeOutbox(_:)`` once delivered. Entries are leased a batch at a time: a
    /// consumer that stops early calls the iterator's `release()` to hand back those it was not given yet.
    ///
    /// ```swift
    /// for try await entry in crm.outboxDeliveries(consumer: "mailer") {
    ///     try await mailer.send(entry)
    ///     try await crm.acknowledgeOutbox([entry.id])
    /// }
    /// ```
    public func outboxDeliveries(consumer: String, leaseDuration: Duration = .seconds(60), batchSize: Int = 50) -> OutboxDeliveries {
        OutboxDeliveries(engine: self, consumer: consumer, leaseDuration: leaseDuration, batchSize: batchSize)
    }

    /// Hands back entries a consumer leased and did not deliver (it stops early), as it received them: each is
    /// offered again at once, as if it had not been leased (the attempt is not counted), and no longer holds up its
    /// customer's later entries. An entry is left alone unless it is still under the very lease it was handed out
    /// with (not acknowledged, failed, expired, or leased again since, even under the same consumer name).
    ///
    /// - Returns: how many entries were handed back.
    @discardableResult
    public func releaseOutboxEntries(_ entries: [OutboxEntry], consumer: String) async throws(RapportError) -> Int {
        try Self.validateConsumer(consumer)
        guard entries.count <= 1000 else { throw .invalid("entries", "name at most 1000 entries, got \(entries.count)") }
        guard !entries.isEmpty else { return 0 }
        let now = clock.now()
        let released: Int = try await write { tx in
            var released = 0
            for handedOut in entries {
                guard var entry = try tx.outboxEntry(handedOut.id), entry.state == .leased, entry.leaseOwner == consumer,
                    let expires = entry.leaseExpiresAt, expires > now, expires == handedOut.leaseExpiresAt
                else { continue }
                entry.state = .pending
                entry.leaseOwner = nil
                entry.leaseExpiresAt = nil
                entry.attempts = max(0, entry.attempts - 1)
                entry.updatedAt = now
                try tx.updateOutboxEntry(entry)
                released += 1
            }
            return released
        }
        if released > 0 { changeNotifier.notify() }
        return released
    }

    /// Whether an entry leased for a consumer may still be handed out to its sender.
    enum Deliverability { case deliverable(OutboxEntry), gone, withdrawn }

    /// Whether `entry`, leased for `consumer`, still is under that lease (not erased, failed or leased again), and,
    /// for a message, whether its customer still allows it.
    func deliverability(of entry: OutboxEntry, consumer: String) async throws(RapportError) -> Deliverability {
        try await quickRead { tx in
            guard let current = try tx.outboxEntry(entry.id), current.state == .leased, current.leaseOwner == consumer,
                current.leaseExpiresAt == entry.leaseExpiresAt
            else { return .gone }
            guard case .message(let message) = current.payload else { return .deliverable(current) }
            let owner = try tx.activeCustomer(current.customerID).id
            let allowed = WriteSession.allows(currentConsents(try tx.consents(of: owner)), channel: message.channel, purpose: message.purpose)
            return allowed ? .deliverable(current) : .withdrawn
        }
    }

    /// Checks a consumer name: 1 to 128 bytes of UTF-8 on one line.
    package static func validateConsumer(_ consumer: String) throws(RapportError) {
        guard !consumer.isEmpty, consumer.utf8.count <= 128, !consumer.containsNewline else {
            throw .invalid("consumer", "must be 1 to 128 bytes (UTF-8) on one line (the name of the worker)")
        }
    }
}

/// The outbox entries a consumer should deliver, leased a batch at a time as it iterates.
public struct OutboxDeliveries: AsyncSequence, Sendable {
    public typealias Element = OutboxEntry

    let engine: RapportEngine
    let consumer: String
    let leaseDuration: Duration
    let batchSize: Int

    public func makeAsyncIterator() -> Iterator {
        Iterator(engine: engine, consumer: consumer, leaseDuration: leaseDuration, batchSize: Swift.max(1, Swift.min(batchSize, 1000)))
    }

    public struct Iterator: AsyncIteratorProtocol {
        let engine: RapportEngine
        let consumer: String
        let leaseDuration: Duration
        let batchSize: Int
        var buffer: [OutboxEntry] = []

        public mutating func next() async throws -> OutboxEntry? {
            let clock = engine.clock
            while true {
                // An entry whose lease ran out while it waited here is not handed out: it is deliverable again,
                // perhaps to another consumer, and will be leased anew in order.
                while let first = buffer.first, let expires = first.leaseExpiresAt, expires <= clock.now() { buffer.removeFirst() }
                if engine.changeNotifier.isFinished {
                    await release()
                    return nil
                }
                // A cancelled consumer gets nothing more: what it has not been handed goes back at once.
                if Task.isCancelled {
                    await release()
                    throw CancellationError()
                }
                if !buffer.isEmpty {
                    let entry = buffer.removeFirst()
                    // Leased with its batch, maybe a while ago: an entry erased since is not handed out, nor a message
                    // its customer no longer allows (handed back, it fails when leased again, as any withdrawn one).
                    switch try await engine.deliverability(of: entry, consumer: consumer) {
                    case .deliverable(let current): return current  // as stored now (an unmerge may have moved it)
                    case .gone: continue
                    case .withdrawn:
                        _ = try? await engine.releaseOutboxEntries([entry], consumer: consumer)
                        continue
                    }
                }
                // Subscribed before leasing, so that a commit made meanwhile ends the wait below at once.
                let (subscription, signals) = engine.changeNotifier.subscribe()
                defer { engine.changeNotifier.cancel(subscription) }
                do {
                    // Looked for by a read first: a commit that queued nothing costs each idle consumer a read, not a
                    // write transaction that competes with the ingest for the one writer.
                    if try await engine.hasDeliverableOutboxEntries() {
                        buffer = try await engine.leaseOutbox(consumer: consumer, limit: batchSize, leaseDuration: leaseDuration)
                    }
                } catch {
                    if Task.isCancelled { throw CancellationError() }  // a lease cut short by cancellation is not a storage failure
                    throw error
                }
                guard buffer.isEmpty else { continue }
                // Nothing now: wait for a commit, or for a lease to expire (checked at least this often).
                await ChangeNotifier.wait(for: signals, orFor: Swift.min(leaseDuration, .seconds(5)), on: clock)
            }
        }

        /// Hands back the entries leased for this iterator and not handed out yet, and `also` (entries handed out
        /// that were not delivered), so that they are offered again at once instead of when their leases expire.
        /// Call it when you stop iterating early; it works in a cancelled task too.
        public mutating func release(also undelivered: [OutboxEntry] = []) async {
            let now = engine.clock.now()
            // Entries whose leases ran out may be someone else's now: only live leases go back.
            let entries = (undelivered + buffer).filter { ($0.leaseExpiresAt ?? now) > now }
            buffer = []
            guard !entries.isEmpty else { return }
            let engine = engine
            let consumer = consumer
            // A task of its own: the caller's may be cancelled, and the entries must go back all the same.
            let released = await Task { () -> Bool in
                var start = 0
                while start < entries.count {
                    let chunk = Array(entries[start..<Swift.min(start + 1000, entries.count)])
                    guard (try? await engine.releaseOutboxEntries(chunk, consumer: consumer)) != nil else { return false }
                    start += chunk.count
                }
                return true
            }.value
            if !released { engine.logger.warning("outbox entries not handed back; their leases will expire", metadata: ["consumer": "\(consumer)"]) }
        }
    }
}
