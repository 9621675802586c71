import Foundation
import RapportCore
@testable import RapportRules
import Testing

/// The instant at which time alone changes a result: segments are re-checked exactly then, never by scanning.
@Suite("Changes with time")
struct TimeTests {
    @Test func aChangePastWhatInt64HoldsIsNeverAndDoesNotTrap() {
        // f = difference + slope·t: the change would come at Int64.max + 1 milliseconds from now.
        #expect(Compiler.crossing(-Int64.max, slope: 1, .greater) == nil)
        #expect(Compiler.crossing(-Int64.max, slope: 1, .lessOrEqual) == nil)
        #expect(Compiler.crossing(Int64.max, slope: -1, .greaterOrEqual) == nil)
        #expect(Compiler.crossing(Int64.max, slope: -1, .less) == nil)
        // Just inside the range, the instant is still found.
        #expect(Compiler.crossing(-(Int64.max - 1), slope: 1, .greater) == Int64.max)
        #expect(Compiler.crossing(-10, slope: 1, .greater) == 11)
        #expect(Compiler.crossing(10, slope: -1, .greaterOrEqual) == 11)
    }

    /// Evaluates `source` at `now`, then checks that the result is the same just before the reported instant
    /// and different at it.
    func checkExact(_ source: String, _ context: EvaluationContext, expectChangeAt expected: Timestamp?, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let compiled = try compile(source, sourceLocation: sourceLocation)
        let (before, next) = compiled.matchesWithNextChange(context)
        #expect(next == expected, "\(source)", sourceLocation: sourceLocation)
        guard let next else { return }
        var justBefore = context
        justBefore.now = next - .milliseconds(1)
        var atChange = context
        atChange.now = next
        #expect(compiled.matches(justBefore) == before, "\(source) changed before \(next)", sourceLocation: sourceLocation)
        #expect(compiled.matches(atChange) != before, "\(source) did not change at \(next)", sourceLocation: sourceLocation)
    }

    @Test func noOrderIn90DaysIsEnteredOnTheFirstInstantOfDay91() throws {
        let lastOrder = order("1", at: at(days: -10), minor: 100)
        let context = context(orders: [lastOrder])
        // Entered when 90 full days have passed since the last order.
        try checkExact("time_since(stats.last_order_at) > 90d", context, expectChangeAt: at(days: 80) + .milliseconds(1))
        try checkExact("stats.last_order_at < now - 90d", context, expectChangeAt: at(days: 80) + .milliseconds(1))
        try checkExact("time_since(stats.last_order_at) >= 90d", context, expectChangeAt: at(days: 80))
        try checkExact("orders_count(within: 90d) == 0", context, expectChangeAt: at(days: 80))
        // Already inside: it leaves when a new order arrives, not with time.
        var later = context
        later.now = at(days: 100)
        try checkExact("time_since(stats.last_order_at) > 90d", later, expectChangeAt: nil)
    }

    @Test func anEventDatedInTheFutureCountsFromItsTime() throws {
        let events = [event("old", "visit", at: at(days: -40)), event("tomorrow", "visit", at: at(days: 0, hours: 6))]
        #expect(try value("last_event_at()", context(events: events)) == .timestamp(at(days: -40)))
        try checkExact("time_since(last_event_at()) > 30d", context(events: events), expectChangeAt: at(days: 0, hours: 6))
        try checkExact("last_event_at(\"visit\") > now - 1d", context(events: events), expectChangeAt: at(days: 0, hours: 6))
    }

    @Test func windowsReportTheNextItemToLeaveOrEnter() throws {
        let orders = [order("1", at: at(days: -25), minor: 100), order("2", at: at(days: -5), minor: 100), order("3", at: at(days: 0, hours: 6), minor: 100)]
        // The future-dated order enters the window at its time; the older ones leave 30 days after theirs.
        try checkExact("orders_count(within: 30d) >= 3", context(orders: orders), expectChangeAt: at(days: 0, hours: 6))
        let events = [event("a", "cart.updated", at: at(days: -1, hours: -2))]
        try checkExact("events_count(\"cart.updated\", within: 1d) == 0", context(events: events), expectChangeAt: nil)
        try checkExact("events_count(\"cart.updated\", within: 2d) == 1", context(events: events), expectChangeAt: at(days: 1, hours: -2))
    }

    /// A count that reaches 365 only in the year before a leap year is looked at again each cycle until it does.
    @Test func aBirthdayCountReachedOnlyInALaterCycleIsNotMissed() throws {
        let compiled = try compile("days_until_birthday() == 365")
        var current = context(customer(birthday: LocalDate(year: 1990, month: 3, day: 1), timeZone: "UTC"), now: at(days: -214))  // 2025-06-01
        var (value, next) = compiled.matchesWithNextChange(current)
        var steps = 0
        while !value, let change = next, steps < 10 {
            current.now = change
            (value, next) = compiled.matchesWithNextChange(current)
            steps += 1
        }
        #expect(value)
        #expect(current.now == Timestamp(millisecondsSinceEpoch: 1_803_945_600_000))  // 2027-03-02, 365 days before 2028-03-01
        #expect(steps == 1)  // looked at again when the cycle after next begins: the day it is 365
    }

    /// Walking through time from one reported change to the next never misses a change: at every hour of 200
    /// days, the value equals the value at the last change instant reached (random histories and expressions).
    @Test func walkingFromChangeToChangeMissesNothing() throws {
        let expressions = [
            "orders_count(within: 30d) >= 2", "orders_count(within: 7d, where: order.total > 1 EUR) == 1", "orders_sum(\"EUR\", within: 60d) > 3 EUR",
            "time_since(stats.last_order_at) > 45d", "events_count(\"cart.updated\", within: 3d) > 0 and orders_count(within: 3d) == 0",
            "stats.last_order_at > now - 14d or time_since(customer.created_at) < 10d", "days_until_birthday() <= 7", "customer.age >= 36",
            "days_until_birthday() == 30", "days_until_birthday() > 100", "3 >= days_until_birthday()", "days_until_birthday() != 0",
            "days_until_birthday() < 0", "days_until_birthday() >= 365", "days_until_birthday() + 1 <= 7", "-days_until_birthday() >= -7",
            // Constants far outside the count's 0…366 (these overflowed and trapped).
            "days_until_birthday() > -9223372036854775807", "-9223372036854775807 < days_until_birthday()", "days_until_birthday() < 9223372036854775807",
            "days_until_birthday() == 400", "days_until_birthday() != -3",
        ]
        var generator = SplitMix(seed: 7)
        for round in 0..<12 {
            var orders: [Order] = []
            for index in 0..<Int.random(in: 0...6, using: &generator) {
                let time = Timestamp(millisecondsSinceEpoch: epoch + Int64.random(in: -60 * day...120 * day, using: &generator))
                orders.append(order("\(round)-\(index)", at: time, minor: Int64.random(in: 50...400, using: &generator)))
            }
            var events: [Event] = []
            for index in 0..<Int.random(in: 0...6, using: &generator) {
                let time = Timestamp(millisecondsSinceEpoch: epoch + Int64.random(in: -10 * day...120 * day, using: &generator))
                events.append(event("\(round)-\(index)", "cart.updated", at: time))
            }
            let record = customer(birthday: LocalDate(year: 1990, month: Int.random(in: 1...12, using: &generator), day: Int.random(in: 1...28, using: &generator)), timeZone: "America/New_York", created: at(days: -5))
            for source in expressions {
                let compiled = try compile(source)
                var current = context(record, orders: orders, events: events, now: at(days: 0))
                // The history as of each instant: what happened later is not there yet, as in the engine.
                func evaluate(at instant: Timestamp) -> (Bool, Timestamp?) {
                    var shown = current
                    shown.now = instant
                    return compiled.matchesWithNextChange(shown)
                }
                var (value, next) = evaluate(at: at(days: 0))
                var hour: Int64 = 1
                while hour <= 200 * 24 {
                    let instant = at(days: 0, hours: hour)
                    while let change = next, change <= instant {
                        (value, next) = evaluate(at: change)
                    }
                    let (actual, _) = evaluate(at: instant)
                    #expect(actual == value, "\(source) changed unannounced before \(instant)")
                    if actual != value { break }
                    hour += 1
                }
                current.now = at(days: 0)
            }
        }
    }

    @Test func comparisonsWithNowCrossExactly() throws {
        let record = customer(created: at(days: -3))
        try checkExact("time_since(customer.created_at) < 7d", context(record), expectChangeAt: at(days: 4))
        try checkExact("customer.created_at + 7d > now", context(record), expectChangeAt: at(days: 4))
        try checkExact("now >= @2026-01-10", context(record), expectChangeAt: at(days: 9))
        try checkExact("now == @2026-01-10", context(record), expectChangeAt: at(days: 9))
        try checkExact("time_until(@2026-01-10) <= 1d", context(record), expectChangeAt: at(days: 8))
        try checkExact("customer.created_at < @2026-01-10", context(record), expectChangeAt: nil)
        // Both sides follow now: their difference never changes.
        try checkExact("now - 1d < now", context(record), expectChangeAt: nil)
    }

    @Test func birthdaysAndAgesChangeAtLocalMidnight() throws {
        let berlin = customer(birthday: LocalDate(year: 2008, month: 1, day: 5), timeZone: "Europe/Berlin")
        // 18 on 2026-01-05 at 00:00 in Berlin, which is 23:00 UTC the day before.
        try checkExact("customer.age >= 18", context(berlin), expectChangeAt: Timestamp(millisecondsSinceEpoch: at(days: 4).millisecondsSinceEpoch - 3_600_000))
        let compiled = try compile("days_until_birthday()")
        let (days, next) = compiled.evaluateWithNextChange(context(berlin))
        #expect(days == .int(4))
        #expect(next == Timestamp(millisecondsSinceEpoch: at(days: 1).millisecondsSinceEpoch - 3_600_000))
        // 29 February counts as 28 February in other years.
        let leap = customer(birthday: LocalDate(year: 2000, month: 2, day: 29))
        #expect(try value("days_until_birthday()", context(leap)) == .int(58))

        // Compared with a number, the count reports the midnight its truth changes at, not every midnight: "within a
        // week" holds until the day after the birthday; "within two days" begins two days before it.
        let berlinMidnight = { (days: Int64) in Timestamp(millisecondsSinceEpoch: at(days: days).millisecondsSinceEpoch - 3_600_000) }
        try checkExact("days_until_birthday() <= 7", context(berlin), expectChangeAt: berlinMidnight(5))
        try checkExact("days_until_birthday() <= 2", context(berlin), expectChangeAt: berlinMidnight(2))
        try checkExact("2 >= days_until_birthday()", context(berlin), expectChangeAt: berlinMidnight(2))
        try checkExact("days_until_birthday() == 0", context(berlin), expectChangeAt: berlinMidnight(4))
        try checkExact("days_until_birthday() < 0", context(berlin), expectChangeAt: nil)
        // Negated, it counts up: looked at every midnight, as any other arithmetic (the walk below checks it misses
        // nothing).
        #expect(try compile("-days_until_birthday() >= -7").matchesWithNextChange(context(berlin)) == (true, berlinMidnight(1)))
    }

    @Test func nothingThatDependsOnlyOnDataReportsAChange() throws {
        let compiled = try compile("stats.order_count > 2 and has_tag(\"vip\")")
        #expect(compiled.matchesWithNextChange(context()).nextChange == nil)
        #expect(!compiled.requirements.data.contains(.time))
    }
}
