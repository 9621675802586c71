import Foundation
import RapportCore
import RapportRules

extension WriteSession {
    /// The key of a date rule's jobs: `date:<rule>:` then the customer's id.
    static func dateJobKeyPrefix(_ rule: RuleID) -> String { "date:\(rule.rawValue):" }

    /// The key of a date rule's job for one customer.
    static func dateJobKey(_ rule: RuleID, _ customer: CustomerID) -> String { dateJobKeyPrefix(rule) + customer.rawValue }

    /// Keeps the job of a date-triggered rule for one customer at the rule's next occurrence (or removes it).
    func planDateTrigger(_ rule: CompiledRule, for record: CustomerRecord) throws {
        guard case .date(let trigger) = rule.definition.trigger else { return }
        let key = Self.dateJobKey(rule.id, record.id)
        let existing = try tx.job(key)
        // A job that is due (or retrying after a failure) has an occurrence to fire: it plans the next one when it
        // runs. Moving it now (a profile change at 09:00 while the 09:00 jobs wait their turn) would skip a year.
        if let existing, existing.dueAt <= now || existing.attempts > 0 { return }
        var next: Timestamp?
        if record.state == .active {
            // One occurrence in two time zones is less than 27 hours apart. A new zone may put the occurrence that
            // already fired ahead again (it is not fired twice), or the one the job waits for behind now (it fires
            // now rather than next year); an occurrence that passed before it was planned is not fired late.
            let window = Duration.seconds(2 * 86_400)
            // Yearly dates only: an attribute's date may move to the day after the one that just fired, and fires then.
            let yearly = if case .attribute = trigger.field { false } else { true }
            // Fired for any customer merged into this one counts: one person, one occurrence.
            let lastFired = yearly ? try Self.counter(of: rule.id, customer: record.id, tx: tx)?.lastFiredAt : nil
            func near(_ time: Timestamp?, _ occurrence: Timestamp) -> Bool { time.map { $0 > occurrence - window && $0 < occurrence + window } ?? false }
            next = Self.nextOccurrence(trigger, of: record, after: now - window, defaultTimeZone: engine.automationSettings.defaultTimeZone)
            while let candidate = next, near(lastFired, candidate) || (candidate <= now && !near(existing?.dueAt, candidate)) {
                next = Self.nextOccurrence(trigger, of: record, after: candidate, defaultTimeZone: engine.automationSettings.defaultTimeZone)
            }
        }
        if let next {
            let due = max(next, now)
            guard existing?.dueAt != due else { return }
            try tx.putJob(ScheduledJob(key: key, dueAt: due, kind: .dateTrigger(rule: rule.id, customer: record.id, occurrence: next), customerID: record.id))
        } else if existing != nil {
            try tx.deleteJob(key)
        }
    }

    /// The first instant after `after` at which a date trigger fires for a customer, in the customer's time zone.
    static func nextOccurrence(_ trigger: DateTrigger, of record: CustomerRecord, after: Timestamp, defaultTimeZone: TimeZone) -> Timestamp? {
        let zone = record.profile.timeZone.isEmpty ? defaultTimeZone : (TimeZone(identifier: record.profile.timeZone) ?? defaultTimeZone)
        func shifted(_ date: LocalDate) -> LocalDate {
            LocalDate.civil(daysSinceEpoch: date.daysSinceEpoch + trigger.offsetDays)
        }
        /// The next yearly occurrence, on a local date after `laterThan` when given.
        func annual(month: Int, day: Int, laterThan: LocalDate?) -> Timestamp? {
            let year = ZonedTime.local(after, in: zone).date.year ?? 1970
            // Offsets of up to a year each way: two years before and three after cover every next occurrence.
            for candidate in (year - 2)...(year + 3) {
                let date = shifted(LocalDate(year: candidate, month: month, day: min(day, LocalDate.daysIn(month: month, year: candidate))))
                let instant = ZonedTime.instant(date, trigger.at, in: zone)
                if instant > after, laterThan.map({ date.daysSinceEpoch > $0.daysSinceEpoch }) ?? true { return instant }
            }
            return nil
        }
        switch trigger.field {
        case .birthday:
            guard let birthday = record.profile.birthday else { return nil }
            return annual(month: birthday.month, day: birthday.day, laterThan: nil)
        case .createdAt:
            // From the day after the customer's first day (in their zone), whatever the time they came.
            let created = ZonedTime.local(record.createdAt, in: zone).date
            return annual(month: created.month, day: created.day, laterThan: created)
        case .attribute(let key):
            // An instant outside the years Rapport keeps (stored before they were checked) has no occurrence.
            guard case .timestamp(let time)? = record.profile.attributes[key], time.isKept else { return nil }
            let instant = ZonedTime.instant(shifted(ZonedTime.local(time, in: zone).date), trigger.at, in: zone)
            return instant > after ? instant : nil
        }
    }

    /// The first occurrence of a schedule after `after`.
    static func nextOccurrence(_ schedule: RuleSchedule, after: Timestamp) -> Timestamp {
        let zone = TimeZone(identifier: schedule.timeZone) ?? TimeZone(identifier: "UTC")!
        let today = ZonedTime.local(after, in: zone).date
        let base = today.daysSinceEpoch
        for offset in 0...62 {
            let date = LocalDate.civil(daysSinceEpoch: base + offset)
            let matches: Bool
            switch schedule.frequency {
            case .daily: matches = true
            case .weekly(let weekday):
                // 1970-01-01 was a Thursday (ISO weekday 4).
                matches = ((base + offset) % 7 + 7 + 3) % 7 + 1 == weekday
            case .monthly(let day):
                matches = date.day == min(day, LocalDate.daysIn(month: date.month, year: date.year))
            }
            guard matches else { continue }
            let instant = ZonedTime.instant(date, schedule.at, in: zone)
            if instant > after { return instant }
        }
        return after + .seconds(86_400)
    }
}
