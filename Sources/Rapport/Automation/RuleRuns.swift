import Foundation
import Logging
import RapportCore
import RapportRules

extension WriteSession {
    /// Runs the enabled rules a trigger starts, highest priority first.
    mutating func runRules(for trigger: PendingTrigger, catalog: AutomationCatalog) throws {
        let rules: [CompiledRule]
        switch trigger.type {
        case "segment.entered": rules = trigger.segment.flatMap { catalog.rulesBySegmentEntered[$0] } ?? []
        case "segment.exited": rules = trigger.segment.flatMap { catalog.rulesBySegmentExited[$0] } ?? []
        default: rules = catalog.rulesByEventType[trigger.type] ?? []
        }
        guard !rules.isEmpty else { return }
        guard let record = try tx.customer(trigger.customer) else { return }
        let active = record.state == .active ? record : try tx.activeCustomer(trigger.customer)
        var reads = Requirements.Data()
        for rule in rules { reads.formUnion(rule.requirements.data) }
        var (context, activity) = try tx.evaluationContext(
            active, stats: cachedStats(of: active.id), reads: reads, now: now, defaultTimeZone: engine.automationSettings.defaultTimeZone)
        context.event = trigger.event
        context.order = trigger.order
        for rule in rules {
            try start(
                rule, trigger: trigger.type, event: trigger.event, order: trigger.order, depth: trigger.depth, chained: trigger.chained, waits: trigger.waits,
                context: &context)
            if let error = activity?.error { throw error }
        }
        activity = nil
    }

    /// Starts a run of `rule` for the context's customer: records it as skipped (and why), waiting, or fired.
    /// `chained`: a rule's action led to the trigger; such runs spend the customer's budget, others add to it.
    /// `waits`: the waits the chain that led to the trigger went through.
    mutating func start(
        _ rule: CompiledRule, trigger: String, event: Event?, order: Order?, depth: Int, chained: Bool, waits: Int = 0, context: inout EvaluationContext
    ) throws {
        if let filter = rule.filter, !filter.matches(context) { return }  // not this rule's kind of event
        let customer = context.customer.id
        var run = RuleRun(
            id: engine.ids.make(RunID.self, at: now), ruleID: rule.id, ruleVersion: rule.version, customerID: customer, trigger: trigger, eventID: event?.id,
            status: .skipped, waits: waits, createdAt: now, updatedAt: now)
        if depth > maxAutomationDepth {
            run.reason = "the chain of rules triggering rules is deeper than \(maxAutomationDepth) (do two rules trigger each other?)"
            engine.logger.warning("rule chain too deep", metadata: ["rule": "\(rule.id)", "customer": "\(customer)"])
            return try recordSkip(run)
        }
        if waits > maxChainWaits {
            run.reason = "the chain of rules triggering rules went through more than \(maxChainWaits) waits (does a rule trigger itself after a wait?)"
            engine.logger.warning("rule chain too long", metadata: ["rule": "\(rule.id)", "customer": "\(customer)"])
            return try recordSkip(run)
        }
        if !chained {
            automation.chainBudget[customer, default: 0] += maxChainedRunsPerStart
        } else if !spendChainBudget(of: customer) {
            // Recorded once per rule and customer; the rest of the runaway chain is refused without a record each.
            guard automation.budgetRefused.insert(RuleCustomerPair(rule: rule.id, customer: customer)).inserted else { return }
            run.reason = "rules triggered by rules ran more than \(maxChainedRunsPerStart) times per started run in one write (do rules trigger each other?)"
            engine.logger.warning("rule chain too wide", metadata: ["rule": "\(rule.id)", "customer": "\(customer)"])
            return try recordSkip(run)
        }
        let waiting = try tx.waitingRun(rule: rule.id, customer: customer)
        if waiting != nil, rule.definition.limits.retrigger == .ignore {
            run.reason = "a run of this rule is already waiting for the customer"
            return try recordSkip(run)
        }
        if let condition = rule.condition, !condition.matches(context) {
            run.reason = "the condition is false"
            return try recordSkip(run)
        }
        // A run that waits, or that quiet hours will hold, fires later: its frequency and daily cap are those of
        // then (and are checked again when it fires).
        let (resumeAt, firesAt, held) = Self.firing(rule.definition, event: event, now: now, zone: context.timeZone)
        if let reason = try Self.limitReached(rule, customer: customer, consents: context.consents, tx: tx, now: firesAt, held: held) {
            run.reason = reason
            return try recordSkip(run)
        }
        if var waiting {  // restart: the new run replaces it
            waiting.end(.cancelled, reason: "replaced by run \(run.id), triggered again", at: now)
            try tx.updateRun(waiting)
            try tx.deleteJob("wait:\(waiting.id.rawValue)")
        }
        if let resumeAt {
            run.status = .waiting
            run.event = event  // for the re-check
            run.order = order
            run.step = .wait
            run.resumeAt = resumeAt
            try tx.insertRun(run)
            return try tx.putJob(ScheduledJob(key: "wait:\(run.id.rawValue)", dueAt: run.resumeAt!, kind: .resumeRun(run.id), customerID: customer))
        }
        try proceed(&run, rule, depth: depth, context: &context, isNew: true)
    }

    /// Records a skipped run; when the customer's latest run of the rule was skipped for the same reason (same
    /// version and trigger, skipped when triggered, no firing since), that record counts one more repeat and names
    /// the latest event instead.
    func recordSkip(_ run: RuleRun) throws {
        if var latest = try tx.latestRun(rule: run.ruleID, customer: run.customerID), latest.status == .skipped, latest.reason == run.reason,
            latest.ruleVersion == run.ruleVersion, latest.trigger == run.trigger,
            // skipped when triggered, not after a wait (that record keeps its own trigger)...
            latest.repeats > 0 || latest.updatedAt == latest.createdAt,
            // ...and the rule has not fired for the customer since
            try tx.ruleCounter(rule: run.ruleID, customer: run.customerID).map({ $0.lastFiredAt <= latest.updatedAt }) ?? true
        {
            latest.repeats += 1
            latest.eventID = run.eventID
            latest.updatedAt = run.updatedAt
            return try tx.updateRun(latest)
        }
        try tx.insertRun(run)
    }

    /// Fires the run now, or makes it wait for the end of quiet hours.
    mutating func proceed(_ run: inout RuleRun, _ rule: CompiledRule, depth: Int, context: inout EvaluationContext, isNew: Bool) throws {
        if let quiet = rule.definition.limits.quietHours, let end = Self.quietHoursEnd(quiet, now: now, zone: context.timeZone) {
            run.event = context.event
            run.order = context.order
            run.status = .waiting
            run.step = .quietHours
            run.resumeAt = end
            run.reason = ""
            run.updatedAt = now
            if isNew { try tx.insertRun(run) } else { try tx.updateRun(run) }
            return try tx.putJob(ScheduledJob(key: "wait:\(run.id.rawValue)", dueAt: end, kind: .resumeRun(run.id), customerID: run.customerID))
        }
        run.status = .fired
        run.step = nil
        run.resumeAt = nil
        run.reason = ""
        run.updatedAt = now
        run.actions = []
        let (acting, actingWaits) = (automation.acting, automation.actingWaits)
        automation.acting = true
        automation.actingWaits = run.waits
        defer { (automation.acting, automation.actingWaits) = (acting, actingWaits) }
        for (index, action) in rule.actions.enumerated() {
            run.actions.append(try apply(action, index: index, run: run, depth: depth, context: &context))
        }
        run.event = nil
        run.order = nil
        if isNew { try tx.insertRun(run) } else { try tx.updateRun(run) }
        let counter = try tx.ruleCounter(rule: rule.id, customer: run.customerID)
        try tx.putRuleCounter(RuleCounter(ruleID: rule.id, customerID: run.customerID, lastFiredAt: now, firedCount: (counter?.firedCount ?? 0) + 1))
        try tx.incrementRuleFiredCount(rule: rule.id, day: Self.day(of: now))
    }

    /// When a run of `definition` started at `now` for `event` resumes after its wait (nil without one), when it
    /// fires, and whether quiet hours hold it till then (now, or when its wait ends). The wait counts from when the
    /// trigger happened (an event ingested late waits less), never from a time still to come (a sender's clock
    /// ahead of ours).
    static func firing(_ definition: RuleDefinition, event: Event?, now: Timestamp, zone: TimeZone) -> (resumeAt: Timestamp?, firesAt: Timestamp, held: Bool) {
        let resumeAt = definition.wait.map { max(now, min(event?.occurredAt ?? now, now) + $0.duration) }
        let heldUntil = definition.limits.quietHours.flatMap { quietHoursEnd($0, now: resumeAt ?? now, zone: zone) }
        return (resumeAt, heldUntil ?? resumeAt ?? now, heldUntil != nil)
    }

    static func day(of time: Timestamp) -> Int64 {
        let (days, rest) = time.millisecondsSinceEpoch.quotientAndRemainder(dividingBy: 86_400_000)
        return rest < 0 ? days - 1 : days
    }

    /// When the quiet hours of `rule` that hold now, in the customer's zone, end; nil when none hold now.
    func quietHoursEnd(_ rule: CompiledRule, context: EvaluationContext) -> Timestamp? {
        rule.definition.limits.quietHours.flatMap { Self.quietHoursEnd($0, now: now, zone: context.timeZone) }
    }

    /// Why the rule may not fire for this customer when it would (`held`: quiet hours held it, or will till `now`).
    func limitReached(_ rule: CompiledRule, context: EvaluationContext, at time: Timestamp? = nil, held: Bool = false) throws -> String? {
        try Self.limitReached(rule, customer: context.customer.id, consents: context.consents, tx: tx, now: time ?? now, held: held)
    }

    /// Why the rule may not fire for the customer at `now`: its frequency, its daily cap, or missing consent. `held`:
    /// quiet hours hold the run until `now` (or held it till now), so it fires at a local clock time.
    static func limitReached(
        _ rule: CompiledRule, customer: CustomerID, consents: [Consent], tx: any StoreReader, now: Timestamp, held: Bool = false
    ) throws -> String? {
        let limits = rule.definition.limits
        switch limits.frequency {
        case .unlimited: break
        case .oncePerCustomer:
            if let counter = try counter(of: rule.id, customer: customer, tx: tx), counter.firedCount > 0 {
                return "the rule fires once per customer and fired for this customer at \(counter.lastFiredAt)"
            }
        case .oncePerCustomerPer(let milliseconds):
            // Runs a schedule or a date starts, and runs held by quiet hours, come at local clock times: a day of 23
            // hours (clocks going forward) or a scheduler a moment late must not make a period of whole days skip one.
            var slack: Int64 = 0
            switch rule.definition.trigger {
            case .schedule, .date: if milliseconds >= 86_400_000 { slack = 2 * 3_600_000 }
            case .event, .segmentEntered, .segmentExited: if held, milliseconds >= 86_400_000 { slack = 2 * 3_600_000 }
            }
            if let counter = try counter(of: rule.id, customer: customer, tx: tx),
                now.millisecondsSinceEpoch - counter.lastFiredAt.millisecondsSinceEpoch < milliseconds - slack
            {
                return "the rule fired for this customer within the last \(Value.durationText(milliseconds)) (at \(counter.lastFiredAt))"
            }
        }
        if let cap = limits.dailyCap, try tx.ruleFiredCount(rule: rule.id, day: day(of: now)) >= Int64(cap) {
            return "the rule reached its daily cap of \(cap) runs"
        }
        if let required = limits.requiredConsent, !allows(consents, channel: required.channel, purpose: required.purpose) {
            return "the customer does not consent to \(required.channel.rawValue) for \(required.purpose.rawValue)"
        }
        return nil
    }

    /// How often and when last the rule fired for the customer, counting the customers merged into it: a person
    /// who got a once-per-customer message under either of two profiles does not get it again once they are one.
    /// An unmerge separates the counts again (each customer keeps its own).
    static func counter(of rule: RuleID, customer: CustomerID, tx: any StoreReader) throws -> RuleCounter? {
        var total = try tx.ruleCounter(rule: rule, customer: customer)
        for absorbed in try standingSide(of: customer, tx: tx) where absorbed != customer {
            guard let counter = try tx.ruleCounter(rule: rule, customer: absorbed) else { continue }
            if var sum = total {
                sum.firedCount += counter.firedCount
                sum.lastFiredAt = max(sum.lastFiredAt, counter.lastFiredAt)
                total = sum
            } else {
                total = RuleCounter(ruleID: rule, customerID: customer, lastFiredAt: counter.lastFiredAt, firedCount: counter.firedCount)
            }
        }
        return total
    }

    /// A customer and, recursively, every customer merged into it by a standing merge.
    static func standingSide(of id: CustomerID, tx: any StoreReader) throws -> Set<CustomerID> {
        var result: Set<CustomerID> = [id]
        var pending = [id]
        while let next = pending.popLast() {
            for merge in try tx.merges(into: next) where merge.isActive && result.insert(merge.absorbedID).inserted {
                pending.append(merge.absorbedID)
            }
        }
        return result
    }

    /// Keeps one waiting run of a rule for a merged customer when a run resumes: merges move the absorbed
    /// customer's runs to the survivor (``adoptWaitingRuns(of:into:)``), but a file written before they did may hold
    /// waiting runs of the same rule under several customers of one merged side. The one the retrigger policy keeps
    /// (the oldest when new triggers are ignored, the newest on restart) continues and the others are cancelled;
    /// returns the run that continues when it is not `run`.
    mutating func settleWaitingRuns(_ run: RuleRun, rule: CompiledRule, customer: CustomerID) throws -> RuleRun? {
        let side = try Self.standingSide(of: customer, tx: tx)
        guard side.count > 1 else { return nil }
        var runs = [run]
        for member in side.sorted() {
            if let other = try tx.waitingRun(rule: run.ruleID, customer: member), other.id != run.id { runs.append(other) }
        }
        guard runs.count > 1 else { return nil }
        runs.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        let kept = rule.definition.limits.retrigger == .restart ? runs.last! : runs.first!
        guard kept.id == run.id else { return kept }
        for var other in runs where other.id != run.id {
            other.end(.cancelled, reason: "the customer was merged with \(run.customerID), whose run \(run.id) of this rule continues", at: now)
            try tx.updateRun(other)
            try tx.deleteJob("wait:\(other.id.rawValue)")
        }
        return nil
    }

    /// Gives the survivor of a merge the absorbed customer's waiting runs, so that the merged customer has at most
    /// one waiting run per rule: of two runs of the same rule, the older one continues when the rule ignores new
    /// triggers while a run waits, the newer one when it restarts; the other is cancelled. An unmerge gives back the
    /// runs a record of the restored customer started and those it took over here (``returnWaitingRuns(from:to:adopted:)``); a run cancelled here stays
    /// cancelled.
    /// Returns the runs the survivor took over.
    mutating func adoptWaitingRuns(of absorbed: CustomerID, into survivor: CustomerID) throws -> [RunID] {
        let runs = try waitingRuns(of: absorbed)
        guard !runs.isEmpty else { return [] }
        var adopted: [RunID] = []
        let catalog = try catalog()
        for run in runs.reversed() {  // oldest first
            if let held = try tx.waitingRun(rule: run.ruleID, customer: survivor) {
                let restarts = catalog.rules[run.ruleID]?.definition.limits.retrigger == .restart
                let absorbedIsNewer = (run.createdAt, run.id) > (held.createdAt, held.id)
                let keepAbsorbed = restarts == absorbedIsNewer
                var (dropped, kept) = keepAbsorbed ? (held, run) : (run, held)
                dropped.end(.cancelled, reason: "the customer was merged with \(keepAbsorbed ? absorbed : survivor), whose run \(kept.id) of this rule continues", at: now)
                try tx.updateRun(dropped)
                try tx.deleteJob("wait:\(dropped.id.rawValue)")
                guard keepAbsorbed else { continue }
            }
            try move(run, to: survivor)
            adopted.append(run.id)
        }
        return adopted
    }

    /// On an unmerge, gives the restored customer back the waiting runs that one of its events or orders started
    /// (the record went back with it): what the run does when it resumes (a message, a tag) is for that customer,
    /// with that customer's data, as are the runs a built-in event of theirs started (`customer.created`, entering a
    /// segment). Runs without an event (a date, a schedule) go back when the merge took them over (`adopted`).
    mutating func returnWaitingRuns(from survivor: CustomerID, to restored: CustomerID, adopted: Set<RunID>) throws {
        for run in try waitingRuns(of: survivor) {
            let owner: CustomerID?
            if run.order == nil, run.eventID == nil, run.event == nil {
                owner = adopted.contains(run.id) ? restored : survivor
            } else if let order = run.order {
                owner = try tx.order(order.id)?.order.customerID
            } else if let eventID = run.eventID, let stored = try tx.event(id: eventID) {
                owner = stored.event.customerID
            } else {
                // A built-in event (`customer.created`, `segment.entered`...) is not stored: the run's copy says whose it was.
                owner = run.event?.customerID
            }
            guard owner == restored, try tx.waitingRun(rule: run.ruleID, customer: restored) == nil else { continue }
            try move(run, to: restored)
        }
    }

    /// On an unmerge, gives the restored customer the runs that ended (fired, skipped, cancelled) while merged and
    /// that one of its records started, with their share of the rule's per-customer count: a once-per-customer
    /// welcome that fired on its event counts for it, not for the survivor, who may still get its own. Runs
    /// housekeeping deleted (ended more than `AutomationSettings.runRetention` ago) are not known any more: their
    /// count stays.
    mutating func returnEndedRuns(from survivor: CustomerID, to restored: CustomerID, since mergedAt: Timestamp, adopted: Set<RunID>) throws {
        var moved: [RuleRun] = []
        var before: RunCursor?
        scan: repeat {
            let page = try tx.runs(RunQuery(customerID: survivor, before: before, limit: 500))
            for run in page {
                guard run.createdAt >= mergedAt || adopted.contains(run.id) else {
                    if adopted.isEmpty { break scan }  // older runs were the survivor's own (adopted ones may be older)
                    continue
                }
                // A skip folded over repeats names only its latest trigger, maybe of either customer: it stays.
                guard run.status != .waiting, !(run.status == .skipped && run.repeats > 0),
                    try startedBy(run: run.id, adopted: adopted, restored: restored) == restored
                else { continue }
                moved.append(run)
            }
            before = page.count == 500 ? page.last.map { RunCursor($0) } : nil
        } while before != nil
        var firedByRule: [RuleID: [RuleRun]] = [:]
        for var run in moved {
            run.customerID = restored
            try tx.updateRun(run)
            if run.status == .fired { firedByRule[run.ruleID, default: []].append(run) }
        }
        for (rule, runs) in firedByRule {
            if let counter = try tx.ruleCounter(rule: rule, customer: survivor) {
                let remaining = max(0, counter.firedCount - Int64(runs.count))
                // The survivor's latest firing that stays its own; none: a time that limits nothing.
                let latest = try tx.runs(RunQuery(ruleID: rule, customerID: survivor, status: .fired, limit: 1)).first?.updatedAt
                let last = latest ?? (remaining == 0 ? Timestamp.earliest : counter.lastFiredAt)
                try tx.putRuleCounter(RuleCounter(ruleID: rule, customerID: survivor, lastFiredAt: last, firedCount: remaining))
            }
            let own = try tx.ruleCounter(rule: rule, customer: restored)
            let last = max(own?.lastFiredAt ?? .earliest, runs.map(\.updatedAt).max()!)
            try tx.putRuleCounter(RuleCounter(ruleID: rule, customerID: restored, lastFiredAt: last, firedCount: (own?.firedCount ?? 0) + Int64(runs.count)))
        }
    }

    /// Every waiting run of a customer, newest first.
    private func waitingRuns(of customer: CustomerID) throws -> [RuleRun] {
        var runs: [RuleRun] = []
        var before: RunCursor?
        repeat {
            let page = try tx.runs(RunQuery(customerID: customer, status: .waiting, before: before, limit: 500))
            runs += page
            before = page.count == 500 ? page.last.map { RunCursor($0) } : nil
        } while before != nil
        return runs
    }

    /// Gives a waiting run, and the job that resumes it, to another customer.
    private func move(_ run: RuleRun, to customer: CustomerID) throws {
        var run = run
        run.customerID = customer
        run.updatedAt = now
        try tx.updateRun(run)
        if var job = try tx.job("wait:\(run.id.rawValue)") {
            job.customerID = customer
            try tx.putJob(job)
        }
    }

    /// Whether the current consent allows contact: marketing and profiling need a grant; transactional messages
    /// are allowed unless the customer refused them.
    static func allows(_ consents: [Consent], channel: ConsentChannel, purpose: ConsentPurpose) -> Bool {
        let statement = consents.first { $0.channel == channel && $0.purpose == purpose }
        if purpose == .transactional { return statement.map(\.status.allows) ?? true }
        return statement?.status.allows ?? false
    }

    /// When quiet hours that include `now` end, in `zone`; nil outside quiet hours.
    static func quietHoursEnd(_ quiet: QuietHours, now: Timestamp, zone: TimeZone) -> Timestamp? {
        let local = ZonedTime.local(now, in: zone)
        guard quiet.contains(minutes: local.minutes) else { return nil }
        // The first moment after now at which the wall clock shows the end: today (either pass of an hour shown
        // twice when clocks go back), else tomorrow.
        let date = local.date
        let today = date.daysSinceEpoch
        for day in today...(today + 1) {
            guard let end = ZonedTime.instants(LocalDate.civil(daysSinceEpoch: day), quiet.end, in: zone).first(where: { $0 > now }) else { continue }
            // An end the clocks skip (02:30 on the night they go forward) comes when they jump past it.
            if ZonedTime.local(end, in: zone).minutes != quiet.end.minutes,
                let jump = zone.nextDaylightSavingTimeTransition(after: (end - .seconds(3 * 3600)).date).map(Timestamp.init), jump > now, jump < end
            {
                return jump
            }
            return end
        }
        return now + .seconds(86_400)
    }

    /// Continues a waiting run: re-checks after its wait, checks the limits again, then fires or waits for the end
    /// of quiet hours. A run whose rule was disabled or deleted, or whose customer was erased, is cancelled.
    mutating func resumeRun(_ id: RunID) throws {
        guard var run = try tx.run(id), run.status == .waiting else { return }
        func end(_ status: RunStatus, _ reason: String) throws {
            run.end(status, reason: reason, at: now)
            try tx.updateRun(run)
        }
        guard let ruleRecord = try tx.rule(run.ruleID) else { return try end(.cancelled, "the rule was deleted") }
        guard ruleRecord.enabled else { return try end(.cancelled, "the rule was disabled") }
        let catalog = try catalog()
        guard let rule = try engine.catalogs.rule(run.ruleID, version: run.ruleVersion, catalog: catalog, tx: tx) else {
            return try end(.cancelled, "version \(run.ruleVersion) of the rule no longer compiles")
        }
        let record: CustomerRecord
        do {
            record = try tx.activeCustomer(run.customerID)
        } catch RapportError.notFound {
            return try end(.cancelled, "the customer was erased")
        }  // any other failure (storage) fails the job, which is tried again
        if let kept = try settleWaitingRuns(run, rule: rule, customer: record.id) {
            return try end(.cancelled, "the customer was merged with \(kept.customerID), whose run \(kept.id) of this rule continues")
        }
        run.customerID = record.id  // a merged customer's run continues with the survivor
        var (context, activity) = try tx.evaluationContext(
            record, stats: cachedStats(of: record.id), reads: rule.requirements.data, now: now, defaultTimeZone: engine.automationSettings.defaultTimeZone)
        context.event = run.event
        context.order = run.order
        defer { activity = nil }
        if run.step == .wait, let recheck = rule.recheck, !recheck.matches(context) {
            if let error = activity?.error { throw error }
            return try end(.skipped, "the re-check was false after waiting \(Value.durationText(rule.definition.wait?.milliseconds ?? 0))")
        }
        // Fired now after quiet hours held it, or about to be held by them after its wait: at a local clock time.
        var heldUntil = run.step == .quietHours ? now : quietHoursEnd(rule, context: context)
        // Resumed late, after the quiet hours its wait ended in: held by them all the same (it fires now).
        if heldUntil == nil, run.step == .wait, let due = run.resumeAt, let quiet = rule.definition.limits.quietHours,
            Self.quietHoursEnd(quiet, now: due, zone: context.timeZone).map({ $0 <= now }) == true
        {
            heldUntil = now
        }
        if let reason = try limitReached(rule, context: context, at: heldUntil, held: heldUntil != nil) { return try end(.skipped, reason) }
        // A resumed run starts a chain of its own in this write, with a budget of its own for the runs its actions
        // trigger; it counts the wait it went through (a rule re-triggering itself after a wait stops in the end).
        automation.chainBudget[run.customerID, default: 0] += maxChainedRunsPerStart
        // A wait ending in quiet hours is one wait, not two.
        if run.step == .wait || rule.definition.wait == nil { run.waits += 1 }
        try proceed(&run, rule, depth: 0, context: &context, isNew: false)
        if let error = activity?.error { throw error }
    }

    /// Takes one run from the customer's budget of runs that rules may trigger; false when none is left.
    mutating func spendChainBudget(of customer: CustomerID) -> Bool {
        let left = automation.chainBudget[customer] ?? 0
        guard left > 0 else { return false }
        automation.chainBudget[customer] = left - 1
        return true
    }
}
