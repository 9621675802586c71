import Foundation
import Logging
import RapportCore
import RapportRules

/// How many customers one job transaction handles when it works through all of them (segment builds, schedules).
let jobPageSize = 500
/// How many change-feed entries one housekeeping run forgets at most.
let changesPerHousekeeping = 50_000

extension WriteSession {
    /// Does what a due job says. The caller deleted it in this same transaction.
    mutating func perform(_ job: ScheduledJob) throws {
        switch job.kind {
        case .resumeRun(let run):
            try resumeRun(run)
        case .recheckSegments(let customer):
            try markDirty(customer, .time)
        case .dateTrigger(let ruleID, let customerID, let occurrence):
            let catalog = try catalog()
            guard let rule = catalog.rules[ruleID], try tx.rule(ruleID)?.enabled == true, try tx.customer(customerID)?.state == .active else { return }
            // Date rules due for the customer at the same time run by priority, as rules with one trigger do: the
            // ones that rank higher (due jobs run in key order, the rules' creation order) go first, here.
            for other in catalog.dateRules where other.definition.priority > rule.definition.priority {
                let key = Self.dateJobKey(other.id, customerID)
                guard let sibling = try tx.job(key), sibling.dueAt <= now, sibling.attempts == 0 else { continue }
                try tx.deleteJob(key)
                try perform(sibling)
            }
            guard let record = try tx.customer(customerID), record.state == .active else { return }  // as the others left it
            // A job that runs late (retried, or after scheduler lag) stands for its day's occurrence as the profile has
            // it now: none near it (the date changed) fires nothing, one still ahead (the zone moved it later) fires
            // then, one due now (the zone moved it earlier, or the job is late) fires.
            if let occurrence, case .date(let trigger) = rule.definition.trigger {
                let window = Duration.seconds(36 * 3600)  // more than any time zone's shift
                let current = Self.nextOccurrence(trigger, of: record, after: occurrence - window, defaultTimeZone: engine.automationSettings.defaultTimeZone)
                guard let current, current <= occurrence + window, current <= now else { return try planDateTrigger(rule, for: record) }
            }
            var (context, activity) = try tx.evaluationContext(
                record, stats: cachedStats(of: customerID), reads: rule.requirements.data, now: now, defaultTimeZone: engine.automationSettings.defaultTimeZone)
            try start(rule, trigger: "date", event: nil, order: nil, depth: 0, chained: false, context: &context)
            if let error = activity?.error { throw error }
            activity = nil
            try planDateTrigger(rule, for: record)
        case .scheduledRule(let ruleID, let occurrence, let after):
            try runSchedule(ruleID, occurrence: occurrence, after: after, key: job.key)
        case .buildSegment(let segmentID):
            try buildSegment(segmentID)
        case .planDateTrigger(let ruleID, let after):
            let catalog = try catalog()
            guard let rule = catalog.rules[ruleID], try tx.rule(ruleID)?.enabled == true else { return }
            let page = try tx.customers(CustomerQuery(order: CustomerOrder(.createdAt), after: after, limit: jobPageSize))
            for record in page { try planDateTrigger(rule, for: record) }
            if page.count == jobPageSize, let last = page.last {
                try tx.putJob(ScheduledJob(key: job.key, dueAt: now, kind: .planDateTrigger(rule: ruleID, after: CustomerCursor(value: last.createdAt.millisecondsSinceEpoch, id: last.id))))
            }
        case .housekeeping:
            let settings = engine.automationSettings
            try tx.deleteRuns(endedBefore: now - settings.runRetention)
            try tx.deleteOutboxEntries(closedBefore: now - settings.outboxRetention)
            // A long backlog (the first run after an upgrade) goes in slices, a minute apart: one huge delete would
            // hold the writer.
            let forgotten = try tx.deleteChanges(before: now - settings.changeRetention, limit: changesPerHousekeeping)
            try tx.deleteIdempotencyRecords(before: now - RapportEngine.requestIDRetention)
            let next: Duration = forgotten == changesPerHousekeeping ? .seconds(60) : .seconds(86_400)
            try tx.putJob(ScheduledJob(key: "housekeeping", dueAt: now + next, kind: .housekeeping))
        case .unreadable:
            throw RapportError.storage(
                "job '\(job.key)' cannot be read by this version of Rapport (written by a later version, or damaged); it is kept and tried again hourly")
        }
    }

    /// Ends what a job that failed too often leaves behind, so that nothing waits for it forever: its run is
    /// cancelled (a waiting run would otherwise block the rule for the customer), a schedule or date trigger goes on
    /// with its next occurrence, housekeeping runs again tomorrow. The caller deleted the job in this transaction.
    mutating func giveUp(_ job: ScheduledJob, problem: String) throws {
        switch job.kind {
        case .resumeRun(let id):
            guard var run = try tx.run(id), run.status == .waiting else { return }
            run.end(.cancelled, reason: "its continuation failed \(job.attempts) times and was given up: \(problem)", at: now)
            try tx.updateRun(run)
        case .scheduledRule(let ruleID, let occurrence, _):
            guard let rule = try tx.rule(ruleID), rule.enabled, case .schedule(let schedule) = rule.definition.trigger else { return }
            let following = Self.nextOccurrence(schedule, after: max(occurrence, now))
            try tx.putJob(ScheduledJob(key: job.key, dueAt: following, kind: .scheduledRule(rule: ruleID, occurrence: following, after: nil)))
        case .dateTrigger(let ruleID, let customerID, _):
            guard let rule = try catalog().rules[ruleID], try tx.rule(ruleID)?.enabled == true, let record = try tx.customer(customerID) else { return }
            try planDateTrigger(rule, for: record)
        case .housekeeping:
            try tx.putJob(ScheduledJob(key: job.key, dueAt: now + .seconds(86_400), kind: .housekeeping))
        case .recheckSegments, .buildSegment, .planDateTrigger, .unreadable:
            break  // never given up: tried again at least hourly
        }
    }

    /// One page of a scheduled rule's occurrence: runs it for the next members of its audience, then either
    /// continues with the next page or waits for the next occurrence.
    private mutating func runSchedule(_ ruleID: RuleID, occurrence: Timestamp, after: CustomerCursor?, key: String) throws {
        let catalog = try catalog()
        guard let rule = catalog.rules[ruleID], try tx.rule(ruleID)?.enabled == true, case .schedule(let schedule) = rule.definition.trigger else { return }
        var customers: [CustomerRecord] = []
        var next: CustomerCursor?
        if let audience = schedule.audience {
            let members = try tx.members(of: audience, after: after?.id, limit: jobPageSize)
            for member in members {
                if let record = try tx.customer(member.customerID), record.state == .active { customers.append(record) }
            }
            if members.count == jobPageSize, let last = members.last { next = CustomerCursor(value: 0, id: last.customerID) }
        } else {
            customers = try tx.customers(CustomerQuery(order: CustomerOrder(.createdAt), after: after, limit: jobPageSize))
            if customers.count == jobPageSize, let last = customers.last { next = CustomerCursor(value: last.createdAt.millisecondsSinceEpoch, id: last.id) }
        }
        for record in customers {
            var (context, activity) = try tx.evaluationContext(
                record, stats: cachedStats(of: record.id), reads: rule.requirements.data, now: now, defaultTimeZone: engine.automationSettings.defaultTimeZone)
            try start(rule, trigger: "schedule", event: nil, order: nil, depth: 0, chained: false, context: &context)
            if let error = activity?.error { throw error }
            activity = nil
        }
        if let next {
            try tx.putJob(ScheduledJob(key: key, dueAt: now, kind: .scheduledRule(rule: ruleID, occurrence: occurrence, after: next)))
        } else {
            let following = Self.nextOccurrence(schedule, after: max(occurrence, now))
            try tx.putJob(ScheduledJob(key: key, dueAt: following, kind: .scheduledRule(rule: ruleID, occurrence: following, after: nil)))
        }
    }

    /// Evaluates a building segment for the next page of customers. Memberships found while building do not
    /// trigger rules: the customers were in the segment before it existed.
    private mutating func buildSegment(_ segmentID: SegmentID) throws {
        guard var segment = try tx.segment(segmentID), segment.kind == .dynamic, segment.state == .building else { return }
        let catalog = try catalog()
        guard let entry = catalog.dynamicSegments.first(where: { $0.segment.id == segmentID }), entry.segment.version == segment.version else { return }
        let page = try tx.customers(CustomerQuery(order: CustomerOrder(.createdAt), after: segment.buildCursor, limit: jobPageSize))
        var reads = entry.predicate.requirements.data
        reads.insert(.segments)
        // Segments that name this one are looked at again for each customer whose membership the build changes.
        let named = catalog.dynamicSegments.contains { $0.predicate.requirements.segmentIDs.contains(segmentID.rawValue) }
        for record in page {
            var (context, activity) = try tx.evaluationContext(
                record, stats: cachedStats(of: record.id), reads: reads, now: now, defaultTimeZone: engine.automationSettings.defaultTimeZone)
            let (matches, next) = entry.predicate.matchesWithNextChange(context)
            if let error = activity?.error { throw error }
            activity = nil
            let isMember = context.segments.contains(segmentID.rawValue)
            if matches != isMember {
                if matches {
                    try tx.insertDynamicMembership(SegmentMembership(segmentID: segmentID, customerID: record.id, since: now))
                } else {
                    try tx.deleteDynamicMembership(segment: segmentID, customer: record.id)
                }
                // In the feed, so that a mirror of memberships stays true; no rule runs, here or in the segments
                // that name this one and follow it.
                _ = try tx.appendChange(
                    kind: matches ? .segmentEntered : .segmentExited, customerID: record.id, otherCustomerID: nil, mergeID: nil, segmentID: segmentID, at: now)
                if named {
                    automation.silentSegments[record.id, default: []].insert(segmentID.rawValue)
                    try markDirty(record.id, .segments)
                }
            }
            // The customer's re-check comes no later than this segment's next change.
            try scheduleRecheck(record.id, at: next)
        }
        if page.count == jobPageSize, let last = page.last {
            segment.buildCursor = CustomerCursor(value: last.createdAt.millisecondsSinceEpoch, id: last.id)
            try tx.putJob(ScheduledJob(key: "build:\(segmentID.rawValue)", dueAt: now, kind: .buildSegment(segmentID)))
        } else {
            segment.buildCursor = nil
            segment.buildStartedAt = nil
            segment.state = .ready
        }
        segment.updatedAt = now
        try tx.updateSegment(segment)
    }
}
