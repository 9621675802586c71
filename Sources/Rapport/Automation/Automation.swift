import Foundation
import Logging
import RapportCore
import RapportRules

/// Something that happened to a customer in this transaction that rules may trigger on.
struct PendingTrigger {
    var customer: CustomerID
    /// The event type rules listen for (`cart.updated`, `order.placed`, `segment.entered`...).
    var type: String
    var event: Event?
    var order: Order?
    var segment: SegmentID?
    /// How many rule actions and segment changes led here: 0 for what the caller did.
    var depth: Int
    /// Whether a rule's action led here (not the caller's own change).
    var chained: Bool
    /// How many waits the chain of rules that led here went through (``RuleRun/waits``).
    var waits: Int
}

/// What automation has left to do in a transaction: customers whose segments need a look, triggers to run.
struct AutomationState {
    var catalog: AutomationCatalog?
    var dirtyOrder: [CustomerID] = []
    var dirty: [CustomerID: (data: Requirements.Data, depth: Int, chained: Bool, waits: Int)] = [:]
    /// Whether a rule's actions are being applied: what they mark and trigger is chained.
    var acting = false
    /// While a rule's actions are applied: the waits its chain went through.
    var actingWaits = 0
    var triggers: [PendingTrigger] = []
    /// Customers an unmerge restored in this transaction: the memberships they had when merged, which their next
    /// segment refresh restores without triggering rules.
    var restoring: [CustomerID: RestoredMemberships] = [:]
    /// Per customer, the segments (raw ids) whose membership changed without triggering rules before the
    /// customer's next segment refresh (a build found it): segments that name them follow silently too.
    var silentSegments: [CustomerID: Set<String>] = [:]
    /// Per customer, how many more runs that rule actions led to may start in this transaction: each run the
    /// caller's change starts, and each waiting run that resumes, adds ``maxChainedRunsPerStart``.
    var chainBudget: [CustomerID: Int] = [:]
    /// The rules whose run was refused for lack of budget, per customer: recorded once, then refused unrecorded.
    var budgetRefused: Set<RuleCustomerPair> = []

    var hasWork: Bool { !dirtyOrder.isEmpty || !triggers.isEmpty }
}

/// The dynamic memberships a customer had when it was merged, to restore when the merge is undone.
struct RestoredMemberships {
    var merge: MergeID
    var survivor: CustomerID
    var since: [SegmentID: Timestamp]
}

extension Requirements.Data {
    /// Everything: a new, merged or restored customer.
    static let everything: Requirements.Data = [.profile, .identities, .stats, .orders, .events, .consents, .segments, .time]
}

/// How deep a chain of rules may go in one write (an action triggering a rule whose action triggers another...).
let maxAutomationDepth = 8

/// How many waits a chain of rules may go through (a drip of waiting steps, a rule re-triggering itself after a
/// wait): past it, the chain stops instead of running forever.
let maxChainWaits = 100

/// How many runs the actions of one started run may trigger, directly or down the chain, in one transaction: rules
/// that each emit the event they trigger on would otherwise multiply their runs at every level.
let maxChainedRunsPerStart = 100

/// A rule and a customer.
struct RuleCustomerPair: Hashable {
    var rule: RuleID
    var customer: CustomerID
}

extension WriteSession {
    /// The automation catalog this transaction sees.
    mutating func catalog() throws -> AutomationCatalog {
        if let catalog = automation.catalog { return catalog }
        let logger = engine.logger
        let catalog = try engine.catalogs.catalog(tx) { logger.error("\($0)") }
        automation.catalog = catalog
        return catalog
    }

    /// Notes that `data` of a customer changed: its segments are looked at before the transaction ends. Nothing
    /// is kept when no segment or rule exists.
    mutating func markDirty(_ customer: CustomerID, _ data: Requirements.Data, depth: Int = 0) throws {
        guard try !catalog().isIdle else { return }
        let chained = automation.acting
        let waits = chained ? automation.actingWaits : 0
        if let mark = automation.dirty[customer] {
            automation.dirty[customer] = (mark.data.union(data), max(mark.depth, depth), mark.chained && chained, max(mark.waits, waits))
        } else {
            automation.dirty[customer] = (data, depth, chained, waits)
            automation.dirtyOrder.append(customer)
        }
    }

    /// Queues what rules may trigger on, if a rule listens for it.
    mutating func trigger(_ customer: CustomerID, _ event: Event, order: Order? = nil, segment: SegmentID? = nil, depth: Int = 0) throws {
        try trigger(customer, type: event.type, event, order: order, segment: segment, depth: depth)
    }

    /// Queues an event of `type` if a rule listens for it; the event is made only then. `chained`: a rule's action led
    /// to it, and `waits`: the waits of that rule's chain (by default, those of the rule whose actions are applied).
    mutating func trigger(
        _ customer: CustomerID, type: String, _ event: @autoclosure () -> Event, order: Order? = nil, segment: SegmentID? = nil, depth: Int = 0,
        chained: Bool? = nil, waits: Int? = nil
    ) throws {
        let catalog = try catalog()
        guard !catalog.isIdle else { return }
        switch type {
        case "segment.entered": guard segment.map({ catalog.rulesBySegmentEntered[$0] != nil }) == true else { return }
        case "segment.exited": guard segment.map({ catalog.rulesBySegmentExited[$0] != nil }) == true else { return }
        default: guard catalog.rulesByEventType[type] != nil else { return }
        }
        let made = event()
        assert(made.type == type, "trigger type \(type) for an event of type \(made.type)")
        automation.triggers.append(
            PendingTrigger(
                customer: customer, type: type, event: made, order: order, segment: segment, depth: depth, chained: chained ?? automation.acting,
                waits: waits ?? (automation.acting ? automation.actingWaits : 0)))
    }

    /// Maintains segments and runs the triggered rules until nothing is left, or the chain is too deep.
    mutating func runAutomation() throws {
        // `markDirty` and `trigger` keep nothing while the catalog is idle, so work means a catalog that is not.
        guard automation.hasWork else { return }
        let catalog = try catalog()
        var rounds = 0
        while automation.hasWork {
            rounds += 1
            guard rounds <= 4 * maxAutomationDepth else {
                engine.logger.warning("automation did not settle in \(rounds - 1) rounds; the rest is left undone")
                break
            }
            let customers = automation.dirtyOrder
            let marks = automation.dirty
            automation.dirtyOrder.removeAll()
            automation.dirty.removeAll()
            for customer in customers {
                let mark = marks[customer]!
                try refreshSegments(of: customer, changed: mark.data, depth: mark.depth, chained: mark.chained, waits: mark.waits, catalog: catalog)
            }
            var index = 0
            while index < automation.triggers.count {
                let trigger = automation.triggers[index]
                index += 1
                try runRules(for: trigger, catalog: catalog)
            }
            automation.triggers.removeAll()
        }
    }

    // MARK: Segments

    /// Re-evaluates the dynamic segments a change can affect, records entries and exits, queues their triggers,
    /// and makes sure the customer's re-check comes no later than when time alone changes one of them next.
    ///
    /// The re-check job is kept no later than every pending time change of the customer's segments: a segment
    /// not evaluated now keeps the change it had, which the job (as early or earlier) covers; when the job runs,
    /// every time-dependent segment is evaluated and the next job planned from all of them.
    mutating func refreshSegments(
        of customerID: CustomerID, changed: Requirements.Data, depth: Int, chained: Bool = false, waits: Int = 0, catalog: AutomationCatalog
    ) throws {
        guard let record = try tx.customer(customerID), record.state == .active else { return }
        if changed.contains(.profile), !catalog.dateRules.isEmpty {
            for rule in catalog.dateRules { try planDateTrigger(rule, for: record) }
        }
        guard !catalog.dynamicSegments.isEmpty else { return }
        var memberships = try tx.segmentIDs(of: customerID)
        var reads = catalog.segmentRequirements.data
        reads.remove(.segments)
        var (context, activity) = try tx.evaluationContext(
            record, stats: cachedStats(of: customerID), reads: reads, now: now, defaultTimeZone: engine.automationSettings.defaultTimeZone)
        var changedSegments = Set<String>()
        var nextCheck = Int64.max
        let restoring = automation.restoring.removeValue(forKey: customerID)
        // Segments whose membership a build changed without rules: a segment that changes only because of them
        // changes without rules too.
        var silent = automation.silentSegments.removeValue(forKey: customerID) ?? []
        context.segments = Set(memberships.map(\.rawValue))
        for entry in catalog.dynamicSegments {
            let reads = entry.predicate.requirements
            // An expression that reads nothing that changes (`customer.id`, `customer.created_at`, constants) is
            // evaluated when a customer appears: created, merged or restored.
            let affected =
                reads.data.isEmpty
                ? changed.isSuperset(of: .everything) : !reads.data.isDisjoint(with: changed) || !reads.segmentIDs.isDisjoint(with: changedSegments)
            guard affected else { continue }
            let (matches, next) = entry.predicate.matchesWithNextChange(context)
            if let next { nextCheck = min(nextCheck, next.millisecondsSinceEpoch) }
            let id = entry.segment.id
            guard matches != memberships.contains(id) else { continue }
            if matches {
                let restored = restoring?.since[id]
                try tx.insertDynamicMembership(SegmentMembership(segmentID: id, customerID: customerID, since: restored ?? now))
                memberships.insert(id)
                context.segments.insert(id.rawValue)
                if let restoring, restored != nil {
                    // A membership the customer had when merged, back with its unmerge: in the feed (as its exit
                    // was at the merge) but not a new entry for rules.
                    changedSegments.insert(id.rawValue)
                    _ = try tx.appendChange(
                        kind: .segmentEntered, customerID: customerID, otherCustomerID: restoring.survivor, mergeID: restoring.merge, segmentID: id, at: now)
                    continue
                }
            } else {
                try tx.deleteDynamicMembership(segment: id, customer: customerID)
                memberships.remove(id)
                context.segments.remove(id.rawValue)
            }
            changedSegments.insert(id.rawValue)
            // A building segment's members that its build has not reached yet were in it before it existed, as
            // those the build finds: their entry or exit does not trigger rules. Nor does a change that follows only
            // from such silent changes of the segments this one names. The feed has it all the same.
            var quiet = entry.segment.state == .building ? try !buildHasReached(id, record) : false
            if !quiet {
                let named = reads.segmentIDs.intersection(changedSegments.union(silent))
                quiet = !named.isEmpty && named.isSubset(of: silent)
                    && reads.data.subtracting(.segments).isDisjoint(with: changed.subtracting(.segments))
            }
            if quiet {
                silent.insert(id.rawValue)
                _ = try tx.appendChange(
                    kind: matches ? .segmentEntered : .segmentExited, customerID: customerID, otherCustomerID: nil, mergeID: nil, segmentID: id, at: now)
                continue
            }
            try segmentChanged(entry.segment, customer: customerID, entered: matches, depth: depth, chained: chained, waits: waits)
        }
        if let error = activity?.error { throw error }
        activity = nil
        try scheduleRecheck(customerID, at: nextCheck == .max ? nil : Timestamp(millisecondsSinceEpoch: nextCheck))
    }

    /// Whether the build of `segmentID` went past `record` (or the segment is built, or the customer was created
    /// after the build began: the build has nothing to find about it). The catalog's copy of a building segment does
    /// not follow the build's progress: the stored one does.
    func buildHasReached(_ segmentID: SegmentID, _ record: CustomerRecord) throws -> Bool {
        guard let segment = try tx.segment(segmentID), segment.state == .building else { return true }
        if let started = segment.buildStartedAt, record.createdAt > started { return true }
        guard let cursor = segment.buildCursor else { return false }
        return (record.createdAt.millisecondsSinceEpoch, record.id) <= (cursor.value, cursor.id)
    }

    /// Records an entry or exit in the change feed and queues its trigger.
    mutating func segmentChanged(_ segment: Segment, customer: CustomerID, entered: Bool, depth: Int, chained: Bool, waits: Int = 0) throws {
        _ = try tx.appendChange(
            kind: entered ? .segmentEntered : .segmentExited, customerID: customer, otherCustomerID: nil, mergeID: nil, segmentID: segment.id, at: now)
        let now = self.now  // the event is made inside `trigger`, which mutates self
        try trigger(
            customer, type: entered ? "segment.entered" : "segment.exited", BuiltInEvent.segment(segment, entered: entered, customer: customer, at: now),
            segment: segment.id, depth: depth + 1, chained: chained, waits: waits)
    }

    /// Keeps one re-check job per customer, due no later than when time alone may next change one of its
    /// segments. A job that comes earlier stays: a re-check too early changes nothing and plans the next one, and
    /// busy customers (whose next change moves with every event) cost no write per event.
    func scheduleRecheck(_ customer: CustomerID, at due: Timestamp?) throws {
        guard let due else { return }
        let key = "recheck:\(customer.rawValue)"
        if let existing = try tx.job(key), existing.dueAt <= due { return }
        try tx.putJob(ScheduledJob(key: key, dueAt: due, kind: .recheckSegments(customer), customerID: customer))
    }
}
