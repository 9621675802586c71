public import RapportCore

/// Everything Rapport holds about one person: what a data subject access request (GDPR articles 15 and 20) asks
/// for, in one consistent read. `Codable`, so that it can be handed over as JSON.
public struct CustomerExport: Hashable, Sendable, Codable {
    /// When the export was read.
    public var exportedAt: Timestamp
    /// The profile and identities, unmasked.
    public var customer: Customer
    /// The customers merged into this one that still stand (their records are part of this person's).
    public var mergedCustomers: [CustomerID]
    public var stats: CustomerStats
    /// Every order, newest first.
    public var orders: [Order]
    /// Every event, newest first.
    public var events: [Event]
    /// Every interaction, newest first.
    public var interactions: [Interaction]
    /// Every consent statement, oldest first (the current consent is the latest per channel and purpose).
    public var consentHistory: [Consent]
    /// The merges this person was part of, standing and undone, by sequence: into this customer or a customer
    /// merged into it, and of them into another customer. Each remembers the profiles as they were before it; of
    /// an undone one, only the other customer's id is kept (no profile, times or version): it is another person's.
    public var merges: [MergeRecord]
    /// The logged edits of the profiles, oldest first: each names the fields it changed and holds their values
    /// then (only those fields are set in its `profile`).
    public var profileChanges: [ProfileChange]
    /// The segments and lists the customer is in.
    public var segments: [SegmentMembership]
    /// What rules did for the customer (runs kept; see `AutomationSettings.runRetention`), newest first.
    public var ruleRuns: [RuleRun]
    /// The messages and webhook calls queued for the customer, delivered or not (kept; see
    /// `AutomationSettings.outboxRetention`), oldest first.
    public var messages: [OutboxEntry]
}

extension RapportEngine {
    /// Another person's customer as an export shows it: its id, nothing else of theirs (no profile, no times, version 0).
    static func onlyID(_ record: CustomerRecord) -> CustomerRecord {
        CustomerRecord(
            id: record.id, profile: CustomerProfile(), fieldTimes: [:], state: record.state, createdAt: Timestamp(millisecondsSinceEpoch: 0),
            updatedAt: Timestamp(millisecondsSinceEpoch: 0), version: 0)
    }

    /// Everything about one customer (and the customers merged into it), unmasked, in one read: for a person who
    /// asks what is held about them, or to take their data elsewhere. The id of a merged customer exports the
    /// customer it was merged into.
    ///
    /// ```swift
    /// let export = try await crm.exportCustomer(id)
    /// let json = try JSONEncoder().encode(export)
    /// ```
    /// - Throws: `notFound` for an unknown or erased customer.
    public func exportCustomer(_ id: CustomerID) async throws(RapportError) -> CustomerExport {
        let now = clock.now()
        return try await read { tx in
            let record = try tx.activeCustomer(id)
            let side = try WriteSession.standingSide(of: record.id, tx: tx).sorted()
            var runs: [RuleRun] = []
            var messages: [OutboxEntry] = []
            var merges: [MergeID: MergeRecord] = [:]
            var changes: [ProfileChange] = []
            for member in side {
                runs += try tx.runs(RunQuery(customerID: member, limit: .max))
                messages += try tx.outboxEntries(OutboxQuery(customerID: member, limit: .max)).map { $0.seen(at: now) }
                for merge in try tx.merges(into: member) + tx.merges(absorbed: member) { merges[merge.id] = merge }
                changes += try tx.profileChanges(of: member, after: 0)
            }
            // An undone merge's other customer is someone else again: only its id is theirs to see.
            let members = Set(side)
            let kept = merges.values.sorted { ($0.sequence, $0.id) < ($1.sequence, $1.id) }.map { merge in
                var merge = merge
                if !members.contains(merge.absorbedID) { merge.absorbedBefore = Self.onlyID(merge.absorbedBefore) }
                if !members.contains(merge.survivorID) { merge.survivorBefore = Self.onlyID(merge.survivorBefore) }
                return merge
            }
            // A record that named another person too (one event with both e-mails, kept apart since) is the
            // person's, that other person's identities are not: they are left out.
            var others: [Identity: Bool] = [:]
            func own(_ identities: [Identity]) throws -> [Identity] {
                try identities.filter { identity in
                    if let other = others[identity] { return !other }
                    let other = try tx.storedIdentity(identity).map { !members.contains($0.customerID) } ?? false
                    others[identity] = other
                    return !other
                }
            }
            let orders = try tx.orders(of: record.id, before: nil, limit: .max).map { stored in
                var order = stored.order
                order.identities = try own(order.identities)
                return order
            }
            let events = try tx.events(of: record.id, before: nil, limit: .max).map { stored in
                var event = stored.event
                event.identities = try own(event.identities)
                return event
            }
            runs = try runs.map { run in
                var run = run
                if let identities = run.event?.identities { run.event?.identities = try own(identities) }
                if let identities = run.order?.identities { run.order?.identities = try own(identities) }
                return run
            }
            return CustomerExport(
                exportedAt: now,
                customer: try tx.assemble(record),
                mergedCustomers: side.filter { $0 != record.id },
                stats: try tx.stats(of: record.id) ?? CustomerStats(customerID: record.id),
                orders: orders,
                events: events,
                interactions: try tx.interactions(of: record.id, before: nil, limit: .max).map(\.interaction),
                consentHistory: try tx.consents(of: record.id).map(\.consent),
                merges: kept,
                profileChanges: changes.sorted { ($0.sequence, $0.customerID) < ($1.sequence, $1.customerID) },
                segments: try tx.memberships(of: record.id),
                ruleRuns: runs.sorted { RunCursor($1) < RunCursor($0) },
                messages: messages.sorted { ($0.sequence, $0.id) < ($1.sequence, $1.id) })
        }
    }
}
