import Logging
import RapportCore
import RapportRules

/// The state of one engine write transaction: identity resolution, merges and running aggregates.
///
/// Aggregates are cached per customer and written once at the end of the transaction (``finish()``).
struct WriteSession {
    let tx: any StoreWriter
    let engine: RapportEngine
    let now: Timestamp
    private var stats: [CustomerID: CustomerStats] = [:]
    private var identityOwners: [Identity: CustomerID] = [:]
    private var createdHere: Set<CustomerID> = []
    /// Customers whose identities this transaction added to and reported to the change feed.
    private var identitiesReported: Set<CustomerID> = []
    private(set) var createdCustomers: [CustomerID] = []
    private(set) var merges: [MergeID] = []
    /// Customers that received events or orders, for the change feed.
    private var touched: [CustomerID] = []
    private var touchedSet: Set<CustomerID> = []
    /// Segments to maintain and rules to run before the transaction ends.
    var automation = AutomationState()

    init(tx: any StoreWriter, engine: RapportEngine, now: Timestamp) {
        self.tx = tx
        self.engine = engine
        self.now = now
    }

    /// Makes room for about `count` customers in the transaction's caches, so a batch does not grow them step by step.
    mutating func reserve(_ count: Int) {
        stats.reserveCapacity(count)
        identityOwners.reserveCapacity(count)
        touched.reserveCapacity(count)
        touchedSet.reserveCapacity(count)
    }

    // MARK: Aggregates

    mutating func updateStats(of customer: CustomerID, _ change: (inout CustomerStats) -> Void) throws {
        var value = try stats[customer] ?? tx.stats(of: customer) ?? CustomerStats(customerID: customer)
        change(&value)
        stats[customer] = value
    }

    mutating func recomputeStats(of customer: CustomerID) throws {
        stats[customer] = try tx.computeStats(of: customer)
    }

    /// The aggregates as this transaction has them so far, if it changed them.
    func cachedStats(of customer: CustomerID) -> CustomerStats? { stats[customer] }

    mutating func touch(_ customer: CustomerID) {
        if touchedSet.insert(customer).inserted { touched.append(customer) }
    }

    func record(_ kind: ChangeKind, _ customer: CustomerID, other: CustomerID? = nil, merge: MergeID? = nil) throws {
        _ = try tx.appendChange(kind: kind, customerID: customer, otherCustomerID: other, mergeID: merge, at: now)
    }

    /// Maintains segments and runs rules for what changed, then writes the aggregates changed in this
    /// transaction and reports the activity to the change feed.
    mutating func finish() throws {
        try runAutomation()
        for value in stats.values { try tx.putStats(value) }
        guard !merges.isEmpty else {
            // Without merges every touched customer is active and listed once.
            for customer in touched { try record(.activityRecorded, customer) }
            return
        }
        var reported = Set<CustomerID>()
        for customer in touched {
            // A customer absorbed later in the batch shows up under its survivor.
            let active = try tx.activeCustomer(customer).id
            if reported.insert(active).inserted { try record(.activityRecorded, active) }
        }
    }

    // MARK: Identity resolution

    /// The customer a record with these identities belongs to: found, created, or made by merging the customers
    /// the identities point to. Identities nobody owns yet are attached to that customer. A record that already has
    /// a customer (`owner`: a known order whose later item brought identities) stays with it, merged with the
    /// customers the new identities point to.
    mutating func resolve(_ identities: [Identity], recordID: String, owner known: CustomerID? = nil) throws -> CustomerID {
        var owners: [CustomerID] = known.map { [$0] } ?? []
        var missing: [Identity] = []
        var strongest: (identity: Identity, owner: CustomerID)?
        for identity in identities {
            let owner: CustomerID?
            if let cached = identityOwners[identity] {
                owner = cached
            } else {
                owner = try tx.storedIdentity(identity)?.customerID
                if let owner { identityOwners[identity] = owner }
            }
            guard let owner else {
                missing.append(identity)
                continue
            }
            if !owners.contains(owner) { owners.append(owner) }
            if strongest == nil || identity.kind.strength > strongest!.identity.kind.strength { strongest = (identity, owner) }
        }

        var target: CustomerID
        if owners.isEmpty {
            target = try createCustomer()
        } else if owners.count == 1 {
            target = owners[0]
        } else {
            // What earlier records of the batch started (rules, segments) happens first, to the customers whose
            // records they were, as in an earlier batch: the merge remembers each customer with its effects.
            try runAutomation()
            let records = try owners.map { try tx.activeCustomer($0) }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            let survivor = records[0].id
            for other in records.dropFirst() where try !mergeBlocked(survivor, other.id) {
                _ = try merge(survivor: survivor, absorbed: other.id, reason: .sharedIdentity(recordID: recordID))
            }
            target = try tx.activeCustomer(known ?? strongest!.owner).id
        }

        if !missing.isEmpty {
            for identity in missing {
                try tx.insertIdentity(IdentityRecord(identity: identity, customerID: target, homeCustomerID: target, createdAt: now))
                identityOwners[identity] = target
            }
            if !createdHere.contains(target), var record = try tx.customer(target) {
                record.version += 1
                record.updatedAt = max(now, record.updatedAt)
                try tx.updateCustomer(record)
                // Once per customer and transaction in the feed: followers re-read the customer anyway.
                if identitiesReported.insert(target).inserted {
                    _ = try tx.appendChange(kind: .customerUpdated, customerID: target, otherCustomerID: nil, mergeID: nil, at: now)
                }
                try markDirty(target, [.identities, .profile])  // `updated_at` moved too
            }
        }
        return target
    }

    private mutating func createCustomer() throws -> CustomerID {
        let id = engine.ids.make(CustomerID.self, at: now)
        try tx.insertCustomer(CustomerRecord(id: id, profile: CustomerProfile(), fieldTimes: [:], state: .active, createdAt: now, updatedAt: now, version: 1))
        stats[id] = CustomerStats(customerID: id)
        createdHere.insert(id)
        createdCustomers.append(id)
        try record(.customerCreated, id)
        try markDirty(id, .everything)
        let now = self.now  // the event is made inside `trigger`, which mutates self
        try trigger(id, type: "customer.created", BuiltInEvent.customerCreated(id, at: now))
        return id
    }

    /// True when the two customers, or any customers merged into them, were merged once and that merge was undone:
    /// they are kept apart since.
    private func mergeBlocked(_ first: CustomerID, _ second: CustomerID) throws -> Bool {
        // Between everyone each side holds: two people split apart stay apart when one was merged into a third.
        let one = try Self.standingSide(of: first, tx: tx)
        let other = try Self.standingSide(of: second, tx: tx)
        for (members, others) in [(one, other), (other, one)] {
            for member in members where try tx.merges(into: member).contains(where: { !$0.isActive && others.contains($0.absorbedID) }) {
                return true
            }
        }
        return false
    }

    // MARK: Merge and unmerge

    /// Merges `absorbed` into `survivor`: profiles by survivorship, everything owned moves to the survivor.
    mutating func merge(survivor survivorID: CustomerID, absorbed absorbedID: CustomerID, reason: MergeReason) throws -> MergeRecord {
        guard survivorID != absorbedID else { throw RapportError.invalid("customer_ids", "a customer cannot be merged with itself") }
        guard var survivor = try tx.customer(survivorID) else { throw RapportError.notFound(entity: "customer", id: survivorID.rawValue) }
        guard var absorbed = try tx.customer(absorbedID) else { throw RapportError.notFound(entity: "customer", id: absorbedID.rawValue) }
        guard survivor.state == .active, absorbed.state == .active else {
            throw RapportError.failedPrecondition("only active customers can be merged; \(survivor.state == .active ? absorbedID : survivorID) was merged already")
        }
        let sequence = try tx.allocateSequence(1)
        let id = engine.ids.make(MergeID.self, at: now)
        let segments = try tx.memberships(of: absorbedID).filter { try tx.isDynamicMember(segment: $0.segmentID, customer: absorbedID) }
        let absorbedLists = try listIDs(of: absorbedID)
        let survivorLists = try listIDs(of: survivorID)
        var record = MergeRecord(
            id: id, survivorID: survivorID, absorbedID: absorbedID, reason: reason, mergedAt: now, sequence: sequence,
            survivorBefore: survivor, absorbedBefore: absorbed, absorbedSegments: segments)

        let merged = Survivorship.merge(Survivorship.State(survivor), Survivorship.State(absorbed))
        survivor.profile = merged.profile
        survivor.fieldTimes = merged.fieldTimes
        // Above both: an etag read while merged (through either id) never matches the absorbed customer once an
        // unmerge brings it back at its own version.
        survivor.version = max(survivor.version, absorbed.version) + 1
        survivor.updatedAt = max(now, survivor.updatedAt)
        try tx.updateCustomer(survivor)
        absorbed.state = .merged(into: survivorID, by: id)
        try tx.updateCustomer(absorbed)
        try tx.reassignAll(from: absorbedID, to: survivorID)
        record.adoptedRuns = try adoptWaitingRuns(of: absorbedID, into: survivorID)
        // The absorbed customer leaves its dynamic segments (the survivor is looked at again below). No rule runs for
        // it, but the feed says so, so that a mirror of memberships stays true (an unmerge restores those that hold
        // again, without triggering rules: the merge record keeps them).
        for membership in segments {
            _ = try tx.appendChange(
                kind: .segmentExited, customerID: absorbedID, otherCustomerID: survivorID, mergeID: id, segmentID: membership.segmentID, at: now)
        }
        // Its lists go over to the survivor with its records: the feed says so too (no rule runs, as for segments).
        for list in absorbedLists.sorted() {
            _ = try tx.appendChange(kind: .segmentExited, customerID: absorbedID, otherCustomerID: survivorID, mergeID: id, segmentID: list, at: now)
            if !survivorLists.contains(list) {
                _ = try tx.appendChange(kind: .segmentEntered, customerID: survivorID, otherCustomerID: absorbedID, mergeID: id, segmentID: list, at: now)
            }
        }
        try tx.deleteDynamicMemberships(of: absorbedID)
        try tx.deleteJob("recheck:\(absorbedID.rawValue)")
        try tx.insertMerge(record)
        try markDirty(survivorID, .everything)

        try recomputeStats(of: survivorID)
        stats[absorbedID] = CustomerStats(customerID: absorbedID)
        identityOwners.removeAll()
        merges.append(id)
        try self.record(.customersMerged, survivorID, other: absorbedID, merge: id)
        engine.logger.info("merged customers", metadata: ["survivor": "\(survivorID)", "absorbed": "\(absorbedID)", "merge": "\(id)"])
        return record
    }

    /// Undoes a standing merge: the absorbed customer comes back exactly as it was, with what it owned, and the
    /// survivor is rebuilt as if the merge had never happened (later changes and merges replayed).
    mutating func unmerge(_ mergeID: MergeID) throws -> (survivor: CustomerID, restored: CustomerID) {
        guard var merge = try tx.merge(mergeID) else { throw RapportError.notFound(entity: "merge", id: mergeID.rawValue) }
        guard merge.isActive else { throw RapportError.failedPrecondition("merge \(mergeID) was already undone at \(merge.unmergedAt!)") }
        let survivorID = merge.survivorID
        let absorbedID = merge.absorbedID
        guard var survivor = try tx.customer(survivorID) else { throw RapportError.notFound(entity: "customer", id: survivorID.rawValue) }
        if case .merged(let into, let by) = survivor.state {
            throw RapportError.failedPrecondition("customer \(survivorID) was itself merged into \(into) by merge \(by); undo that merge first")
        }
        guard let absorbed = try tx.customer(absorbedID), absorbed.state == .merged(into: survivorID, by: mergeID) else {
            throw RapportError.storage("merge \(mergeID) does not match the state of customer \(absorbedID)")
        }

        // The survivor's earliest standing merge (this one or an earlier one) opens the time in which an identity
        // can have been first seen while the survivor held other customers; and when each customer of its standing
        // side (itself always) joined it, through a chain of merges.
        let era = try tx.merges(into: survivorID).filter(\.isActive).min { $0.sequence < $1.sequence } ?? merge
        let joined = try joinTimes(of: survivorID)

        // Everything that came from the absorbed side (itself and what had been merged into it) goes back.
        let side = try Self.standingSide(of: absorbedID, tx: tx)
        let survivorListsBefore = try listIDs(of: survivorID)
        try tx.reassign(owner: survivorID, homes: side, to: absorbedID)
        try tx.updateCustomer(merge.absorbedBefore)
        // The lists it was in (added through its id) come back with it: the feed says so (no rule runs).
        let survivorListsAfter = try listIDs(of: survivorID)
        for list in survivorListsBefore.subtracting(survivorListsAfter).sorted() {
            _ = try tx.appendChange(kind: .segmentExited, customerID: survivorID, otherCustomerID: absorbedID, mergeID: mergeID, segmentID: list, at: now)
        }
        for list in try listIDs(of: absorbedID).sorted() {
            _ = try tx.appendChange(kind: .segmentEntered, customerID: absorbedID, otherCustomerID: survivorID, mergeID: mergeID, segmentID: list, at: now)
        }
        merge.unmergedAt = now
        try tx.updateMerge(merge)

        try followArrivals(undoing: merge, era: era, joined: joined)

        try returnWaitingRuns(from: survivorID, to: absorbedID, adopted: Set(merge.adoptedRuns))
        try returnEndedRuns(from: survivorID, to: absorbedID, since: merge.mergedAt, adopted: Set(merge.adoptedRuns))
        try moveQueuedMessages(from: survivorID, to: absorbedID, after: merge.sequence, adopted: Set(merge.adoptedRuns))
        try reopenWithdrawnMessages(of: absorbedID, since: merge.mergedAt)
        try reopenWithdrawnMessages(of: survivorID, since: merge.mergedAt)

        // Rebuild the survivor: its state before the merge, then what happened to it since, in order.
        var state = Survivorship.State(merge.survivorBefore)
        // The survivor as it was with the absorbed side, step by step: what a logged change did to its lists.
        var merged = Survivorship.merge(state, Survivorship.State(merge.absorbedBefore))
        // What was logged since is rewritten without the absorbed side, which an erasure may remove for good: the
        // changes, and the survivor remembered by later merges (undone ones too).
        enum Step { case change(ProfileChange), merge(MergeRecord), undone(MergeRecord), absorbedBy(MergeRecord) }
        var steps: [(Int64, Step)] = try tx.profileChanges(of: survivorID, after: merge.sequence).map { ($0.sequence, .change($0)) }
        steps += try tx.merges(into: survivorID).filter { $0.sequence > merge.sequence }.map { ($0.sequence, $0.isActive ? .merge($0) : .undone($0)) }
        // Later merges of the survivor into another customer (undone, or this unmerge would have been refused)
        // remember the survivor as it was then: without the absorbed side too.
        steps += try tx.merges(absorbed: survivorID).filter { $0.sequence > merge.sequence }.map { ($0.sequence, .absorbedBy($0)) }
        for (_, step) in steps.sorted(by: { $0.0 < $1.0 }) {
            switch step {
            case .change(let change):
                state = Survivorship.apply(change, to: state, madeOn: merged.profile)
                merged = Survivorship.apply(change, to: merged)
                var rewritten = change
                rewritten.profile = state.profile.only(change.fields)
                if rewritten != change { try tx.updateProfileChange(rewritten) }
            case .undone(var later):
                later.survivorBefore.profile = state.profile
                later.survivorBefore.fieldTimes = state.fieldTimes
                try tx.updateMerge(later)
            case .absorbedBy(var later):
                later.absorbedBefore.profile = state.profile
                later.absorbedBefore.fieldTimes = state.fieldTimes
                try tx.updateMerge(later)
            case .merge(var later):
                // A later merge remembered a survivor that still held the absorbed side: rewrite it without.
                merged = Survivorship.merge(merged, Survivorship.State(later.absorbedBefore))
                later.survivorBefore.profile = state.profile
                later.survivorBefore.fieldTimes = state.fieldTimes
                try tx.updateMerge(later)
                state = Survivorship.merge(state, Survivorship.State(later.absorbedBefore))
            }
        }
        survivor.profile = state.profile
        survivor.fieldTimes = state.fieldTimes
        survivor.version += 1
        survivor.updatedAt = max(now, survivor.updatedAt)
        try tx.updateCustomer(survivor)
        // The restored customer comes back as it was, unless it gained identities while merged (added through its
        // own id, or first seen then and found its) or lost one (removed through the survivor: its remembered update
        // time moved): then it changed, and an etag read before the merge, or under its id while merged (the
        // survivor's), must not match.
        if try merge.absorbedBefore.updatedAt > merge.mergedAt || tx.identities(of: absorbedID).contains(where: { $0.createdAt > merge.mergedAt }) {
            var restored = merge.absorbedBefore
            restored.version = max(restored.version, survivor.version) + 1
            restored.updatedAt = max(now, restored.updatedAt)
            try tx.updateCustomer(restored)
        }

        try recomputeStats(of: survivorID)
        try recomputeStats(of: absorbedID)
        try markDirty(survivorID, .everything)
        try markDirty(absorbedID, .everything)
        // The segments the restored customer was in when merged and is in again are restored, not entered anew.
        automation.restoring[absorbedID] = RestoredMemberships(
            merge: mergeID, survivor: survivorID,
            since: Dictionary(merge.absorbedSegments.map { ($0.segmentID, $0.since) }, uniquingKeysWith: { first, _ in first }))
        identityOwners.removeAll()
        try record(.customersUnmerged, survivorID, other: absorbedID, merge: mergeID)
        engine.logger.info("unmerged customers", metadata: ["survivor": "\(survivorID)", "restored": "\(absorbedID)", "merge": "\(mergeID)"])
        return (survivorID, absorbedID)
    }

    /// The static lists `customer` is in.
    private func listIDs(of customer: CustomerID) throws -> Set<SegmentID> {
        Set(try tx.memberships(of: customer).map(\.segmentID).filter { try !tx.isDynamicMember(segment: $0, customer: customer) })
    }

    /// When each customer of `survivor`'s standing side joined it, through a chain of merges (itself: always).
    private func joinTimes(of survivor: CustomerID) throws -> [CustomerID: Timestamp] {
        var joined: [CustomerID: Timestamp] = [survivor: Timestamp(millisecondsSinceEpoch: .min)]
        var joining = [survivor]
        while let next = joining.popLast() {
            for standing in try tx.merges(into: next) where standing.isActive && joined[standing.absorbedID] == nil {
                joined[standing.absorbedID] = max(joined[next]!, standing.mergedAt)
                joining.append(standing.absorbedID)
            }
        }
        return joined
    }

    /// Gives the restored customer of `merge` (its side already given back) the identities first seen while merged
    /// that are its, and the records that arrived after the merge that are its. `era` is the survivor's earliest
    /// standing merge, `joined` when each customer of its side joined it.
    private func followArrivals(undoing merge: MergeRecord, era: MergeRecord, joined: [CustomerID: Timestamp]) throws {
        let survivorID = merge.survivorID
        let absorbedID = merge.absorbedID
        // Records that arrived after the merge follow the customer their strongest identity points to now,
        // whichever customer they were first attributed to (in a chain, that may be a survivor further up). An
        // identity first seen while merged is settled first, as if the merges had never happened: the records that
        // carried it decide by their other identities, those of customers already merged in when it was first seen
        // (one merged in later did not have it first), the strongest first, then the earliest (a device id that
        // came with the restored customer's e-mail is the restored customer's, even if the survivor's e-mail came
        // with it later; a card that came with the restored customer's device and the survivor's e-mail is the
        // survivor's). One that another customer merged into the survivor decides goes back with that customer when
        // its merge is undone, so merges into one survivor can be undone in any order with the same outcome. Then
        // every record follows its strongest identity, those included (a record that carried only that device goes
        // back too).
        var fresh: [Identity: IdentityRecord?] = [:]
        /// The stored record of an identity first seen while merged; nil for any other.
        func freshRecord(_ identity: Identity) throws -> IdentityRecord? {
            if let known = fresh[identity] { return known }
            // After the merge's instant: one seen at that very millisecond may be the survivor's own (a frozen
            // clock), so it decides, even if that misses one first seen later in the merge's own batch.
            let found = try tx.storedIdentity(identity).flatMap {
                $0.customerID == survivorID && $0.homeCustomerID == survivorID && $0.createdAt > era.mergedAt ? $0 : nil
            }
            fresh[identity] = found
            return found
        }
        func isFresh(_ identity: Identity) throws -> Bool { try freshRecord(identity) != nil }
        enum Arrival {
            case event(String)
            case order(OrderID)
        }
        var arrivals: [(sequence: Int64, record: Arrival, identities: [Identity])] = []
        for record in try tx.events(of: survivorID, before: nil, limit: .max) where record.sequence > era.sequence {
            arrivals.append((record.sequence, .event(record.event.id), record.event.identities))
        }
        for record in try tx.orders(of: survivorID, before: nil, limit: .max) where record.sequence > era.sequence {
            arrivals.append((record.sequence, .order(record.order.id), record.order.identities))
        }
        arrivals.sort { $0.sequence < $1.sequence }
        func handOver(_ arrival: Arrival) throws {
            switch arrival {
            case .event(let id): try tx.setOwner(ofEvent: id, to: absorbedID)
            case .order(let id): try tx.setOwner(ofOrder: id, to: absorbedID)
            }
        }
        var decided: [Identity: IdentityRecord] = [:]  // a fresh identity → the strongest other identity of its deciding record
        for arrival in arrivals {
            let new = try arrival.identities.compactMap { try freshRecord($0) }
            guard !new.isEmpty else { continue }
            let others = try arrival.identities.filter { try !isFresh($0) }.compactMap { try tx.storedIdentity($0) }
            for record in new {
                let present = others.filter { joined[$0.homeCustomerID].map { $0 <= record.createdAt } ?? false }
                guard let decider = Self.strongest(present) else { continue }
                if decided[record.identity].map({ decider.identity.kind.strength > $0.identity.kind.strength }) ?? true {
                    decided[record.identity] = decider
                }
            }
        }
        for (identity, decider) in decided.sorted(by: { $0.key < $1.key }) {
            guard let record = try tx.storedIdentity(identity) else { continue }
            var settled = record
            if decider.customerID == absorbedID {
                settled.customerID = absorbedID
                settled.homeCustomerID = absorbedID
            } else if decider.customerID == survivorID {
                settled.homeCustomerID = decider.homeCustomerID
            }
            guard settled != record else { continue }
            try tx.deleteIdentity(record.identity)
            try tx.insertIdentity(settled)
        }
        arrivals.removeAll { $0.sequence <= merge.sequence }
        for arrival in arrivals {
            // An event a rule emitted has no identities: it follows the record that started the rule's run (handed
            // over before it, as it came first).
            let owner: CustomerID?
            if arrival.identities.isEmpty, case .event(let id) = arrival.record {
                owner = try startedBy(emitted: id, adopted: Set(merge.adoptedRuns), restored: absorbedID)
            } else {
                owner = try self.owner(of: arrival.identities)
            }
            if owner == absorbedID { try handOver(arrival.record) }
        }
    }

    /// Puts the messages queued for `survivor` after `sequence` whose address or number is `restored`'s into its
    /// queue, so that its withdrawn consent or its erasure reaches them.
    private func moveQueuedMessages(from survivor: CustomerID, to restored: CustomerID, after sequence: Int64, adopted: Set<RunID>) throws {
        for var entry in try tx.outboxEntries(OutboxQuery(customerID: survivor, afterSequence: sequence, limit: .max)) {
            switch entry.payload {
            case .message(var message) where message.channel == .push:
                // A push goes to a customer id, not an address: it follows the record that started its run (as a
                // webhook does), and one not sent yet goes to the restored customer's devices.
                guard let run = entry.runID, try startedBy(run: run, adopted: adopted, restored: restored) == restored else { continue }
                if entry.state == .pending {
                    message.recipient = restored.rawValue
                    entry.payload = .message(message)
                }
            case .message(let message):
                // To an address or number that is the restored customer's.
                guard let address = message.recipientIdentity, try tx.storedIdentity(address, ownedBy: restored) != nil else { continue }
            case .webhook:
                // No address: it follows the record that started its run (its body was made from it), so that the
                // restored customer's erasure reaches it.
                guard let run = entry.runID, try startedBy(run: run, adopted: adopted, restored: restored) == restored else { continue }
            }
            entry.customerID = restored
            try tx.updateOutboxEntry(entry)
        }
    }

    /// Puts back in the queue the messages of `customer` (and of those merged into it) that a consent statement
    /// failed as withdrawn while it was merged, when its own statements then allowed them: the statement that
    /// stopped them was the other customer's, which an unmerge takes away.
    private func reopenWithdrawnMessages(of customer: CustomerID, since mergedAt: Timestamp) throws {
        let own = try tx.consents(of: customer)
        for side in try Self.standingSide(of: customer, tx: tx).sorted() {
            for var entry in try tx.outboxEntries(OutboxQuery(customerID: side, states: [.failed], limit: .max)) {
                guard entry.updatedAt >= mergedAt, entry.lastError.hasPrefix("withdrawn:"), case .message(let message) = entry.payload else { continue }
                let then = own.filter { $0.consent.recordedAt <= entry.updatedAt }
                guard Self.allows(currentConsents(then), channel: message.channel, purpose: message.purpose) else { continue }
                entry.state = .pending
                entry.lastError = ""
                entry.leaseOwner = nil
                entry.leaseExpiresAt = nil
                entry.updatedAt = now
                try tx.updateOutboxEntry(entry)
            }
        }
    }

    /// Whose the rule run that emitted event `id` (`run_….N`) was: the restored customer's when the merge took the
    /// run over from it, else the owner of the record that started it, when it can be told.
    private func startedBy(emitted id: String, adopted: Set<RunID>, restored: CustomerID) throws -> CustomerID? {
        guard let dot = id.lastIndex(of: ".") else { return nil }
        return try startedBy(run: RunID(uncheckedRawValue: String(id[..<dot])), adopted: adopted, restored: restored)
    }

    /// Whose rule run `runID` was: the restored customer's when the merge took it over from it, else the owner of
    /// the record that started it, when it can be told.
    func startedBy(run runID: RunID, adopted: Set<RunID>, restored: CustomerID) throws -> CustomerID? {
        if adopted.contains(runID) { return restored }
        guard let run = try tx.run(runID), let trigger = run.eventID else { return nil }
        if let stored = try tx.event(id: trigger) { return stored.event.customerID }
        switch BuiltInEvent.subject(ofID: trigger) {
        case .order(let order): return try tx.order(order)?.order.customerID
        case .customer(let customer): return customer
        case nil: return nil
        }
    }

    /// The customer the strongest known identity of a record points to.
    private func owner(of identities: [Identity]) throws -> CustomerID? {
        try strongest(of: identities)?.customerID
    }

    /// The stored record of the strongest known identity among `identities` (the first of equal strength).
    private func strongest(of identities: [Identity]) throws -> IdentityRecord? {
        Self.strongest(try identities.compactMap { try tx.storedIdentity($0) })
    }

    /// The record of the strongest identity among `records` (the first of equal strength).
    private static func strongest(_ records: [IdentityRecord]) -> IdentityRecord? {
        var best: IdentityRecord?
        for record in records where best == nil || record.identity.kind.strength > best!.identity.kind.strength { best = record }
        return best
    }
}

extension OutboxMessage {
    /// The identity a message is addressed to: an e-mail, or a phone for SMS and calls; nil for a push, which goes
    /// to a customer id.
    var recipientIdentity: Identity? {
        switch channel {
        case .email: Identity(kind: .email, value: recipient)
        case .sms, .phone: Identity(kind: .phone, value: recipient)
        case .push: nil
        }
    }
}
