import Testing
@testable import RapportCore

@Suite("CustomerStats")
struct CustomerStatsTests {
    let customer = CustomerID(uncheckedRawValue: "cus_1")

    @Test func startsEmpty() {
        let stats = CustomerStats(customerID: customer)
        #expect(stats.orderCount == 0)
        #expect(stats.spent.isEmpty)
        #expect(stats.firstOrderAt == nil && stats.lastOrderAt == nil && stats.lastSeenAt == nil)
        #expect(stats.eventCount == 0)
        #expect(stats.totalSpent(in: currency("EUR")) == Money(minorUnits: 0, currency: currency("EUR")))
        #expect(stats.averageOrderValue.isEmpty)
    }

    @Test(arguments: OrderStatus.allCases)
    func onlyCountingStatusesAreCounted(status: OrderStatus) {
        var stats = CustomerStats(customerID: customer)
        let placed = newYear2026 + .seconds(60)
        stats.add(order: order(id: "ord_1", status: status, totalMinor: 2_500, placedAt: placed))
        let counts = status != .cancelled && status != .refunded
        #expect(status.counts == counts)
        #expect(stats.orderCount == (counts ? 1 : 0))
        #expect(stats.spent == (counts ? [CurrencyTotal(currency: currency("EUR"), totalMinor: 2_500, orderCount: 1)] : []))
        #expect(stats.firstOrderAt == (counts ? placed : nil))
        #expect(stats.lastOrderAt == (counts ? placed : nil))
        // Any order, counted or not, shows the customer was there.
        #expect(stats.lastSeenAt == placed)
    }

    @Test func totalsPerCurrencySortedByCode() {
        var stats = CustomerStats(customerID: customer)
        stats.add(order: order(id: "ord_1", currency: "USD", totalMinor: 1_000, placedAt: newYear2026))
        stats.add(order: order(id: "ord_2", currency: "EUR", totalMinor: 1_999, placedAt: newYear2026 + .seconds(1)))
        stats.add(order: order(id: "ord_3", currency: "JPY", totalMinor: 3_000, placedAt: newYear2026 + .seconds(2)))
        stats.add(order: order(id: "ord_4", currency: "EUR", totalMinor: 1, placedAt: newYear2026 + .seconds(3)))
        stats.add(order: order(id: "ord_5", status: .refunded, currency: "CHF", totalMinor: 9_999, placedAt: newYear2026 + .seconds(4)))
        stats.add(order: order(id: "ord_6", status: .cancelled, currency: "EUR", totalMinor: 9_999, placedAt: newYear2026 + .seconds(5)))

        #expect(stats.orderCount == 4)
        #expect(
            stats.spent == [
                CurrencyTotal(currency: currency("EUR"), totalMinor: 2_000, orderCount: 2),
                CurrencyTotal(currency: currency("JPY"), totalMinor: 3_000, orderCount: 1),
                CurrencyTotal(currency: currency("USD"), totalMinor: 1_000, orderCount: 1),
            ]
        )
        #expect(stats.totalSpent(in: currency("EUR")).description == "20.00 EUR")
        #expect(stats.totalSpent(in: currency("CHF")) == Money(minorUnits: 0, currency: currency("CHF")))
        #expect(stats.averageOrderValue.map(\.description) == ["10.00 EUR", "3000 JPY", "10.00 USD"])
    }

    @Test func totalsStopAtTheLargestAmountInsteadOfOverflowing() {
        var stats = CustomerStats(customerID: customer)
        let largest: Int64 = 1_000_000_000_000_000  // the most ingest accepts for one order
        for index in 0..<9_300 {
            stats.add(order: order(id: "ord_\(index)", totalMinor: largest, placedAt: newYear2026 + .seconds(Int64(index))))
        }
        #expect(stats.orderCount == 9_300)
        #expect(stats.spent == [CurrencyTotal(currency: currency("EUR"), totalMinor: .max, orderCount: 9_300)])
        #expect(stats.averageOrderValue.map(\.minorUnits) == [Int64.max / 9_300])
    }

    static let averages: [(total: Int64, count: Int64, average: Int64)] = [
        (10, 4, 3), (9, 4, 2), (-10, 4, -3), (-9, 4, -2), (7, 2, 4), (-7, 2, -4), (0, 3, 0), (5, 10, 1), (4, 10, 0),
        (Int64.max, 2, Int64.max / 2 + 1), (Int64.max, 1, Int64.max), (Int64.max - 1, 4, (Int64.max - 1) / 4 + 1),
        (Int64.min, 3, Int64.min / 3 - 1),  // remainder -2: away from zero
    ]

    @Test func averagesRoundHalfAwayFromZeroWithoutOverflow() {
        for (total, count, average) in Self.averages {
            #expect(CurrencyTotal(currency: currency("EUR"), totalMinor: total, orderCount: count).averageOrderValue.minorUnits == average, "\(total) / \(count)")
        }
    }

    @Test func firstAndLastOrderTimesIgnoreArrivalOrder() {
        var stats = CustomerStats(customerID: customer)
        let early = newYear2026
        let middle = newYear2026 + .seconds(3600)
        let late = newYear2026 + .seconds(7200)
        stats.add(order: order(id: "ord_2", totalMinor: 100, placedAt: middle))
        stats.add(order: order(id: "ord_3", totalMinor: 100, placedAt: late))
        stats.add(order: order(id: "ord_1", totalMinor: 100, placedAt: early))
        // A cancelled order outside the range moves neither.
        stats.add(order: order(id: "ord_4", status: .cancelled, totalMinor: 100, placedAt: late + .seconds(1)))
        stats.add(order: order(id: "ord_5", status: .refunded, totalMinor: 100, placedAt: early - .seconds(1)))
        #expect(stats.firstOrderAt == early)
        #expect(stats.lastOrderAt == late)
        #expect(stats.lastSeenAt == late + .seconds(1))
    }

    @Test func lastSeenIsTheLatestEventOrOrder() {
        var stats = CustomerStats(customerID: customer)
        stats.add(eventAt: newYear2026 + .seconds(10))
        #expect(stats.eventCount == 1)
        #expect(stats.lastSeenAt == newYear2026 + .seconds(10))

        stats.add(order: order(id: "ord_1", totalMinor: 100, placedAt: newYear2026 + .seconds(5)))
        #expect(stats.lastSeenAt == newYear2026 + .seconds(10))

        stats.add(order: order(id: "ord_2", totalMinor: 100, placedAt: newYear2026 + .seconds(20)))
        #expect(stats.lastSeenAt == newYear2026 + .seconds(20))

        stats.add(eventAt: newYear2026 + .seconds(15))
        #expect(stats.eventCount == 2)
        #expect(stats.lastSeenAt == newYear2026 + .seconds(20))

        stats.add(eventAt: newYear2026 + .seconds(30))
        #expect(stats.eventCount == 3)
        #expect(stats.lastSeenAt == newYear2026 + .seconds(30))
        #expect(stats.orderCount == 2)
    }

    @Test func computeWithNoOrdersKeepsTheEventSummary() {
        let stats = CustomerStats.compute(customerID: customer, orders: [], events: EventSummary(count: 4, lastOccurredAt: newYear2026))
        #expect(stats == CustomerStats(customerID: customer, eventCount: 4, lastSeenAt: newYear2026))
        let none = CustomerStats.compute(customerID: customer, orders: [], events: EventSummary(count: 0, lastOccurredAt: nil))
        #expect(none == CustomerStats(customerID: customer))
    }

    @Test(arguments: [UInt64(1), 2, 3, 20_261_125])
    func computeEqualsTheIncrementalResult(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        let codes = ["EUR", "USD", "JPY", "KWD"]
        let orders = (0..<300).map { index in
            order(
                id: "ord_\(index)", customer: customer, status: OrderStatus.allCases.randomElement(using: &rng)!,
                currency: codes.randomElement(using: &rng)!, totalMinor: Int64.random(in: 0...500_000, using: &rng),
                // Few distinct times, so that ties are common.
                placedAt: newYear2026 + .seconds(Int64.random(in: 0...50, using: &rng) * 3600)
            )
        }
        let eventTimes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in newYear2026 + .seconds(Int64.random(in: -3600...200_000, using: &rng)) }

        // Incremental: orders and events interleaved in arrival order (shuffled).
        var incremental = CustomerStats(customerID: customer)
        enum Item { case order(Order), event(Timestamp) }
        var items = orders.map(Item.order) + eventTimes.map(Item.event)
        items.shuffle(using: &rng)
        for item in items {
            switch item {
            case .order(let order): incremental.add(order: order)
            case .event(let time): incremental.add(eventAt: time)
            }
        }

        let computed = CustomerStats.compute(
            customerID: customer, orders: orders.shuffled(using: &rng),
            events: EventSummary(count: Int64(eventTimes.count), lastOccurredAt: eventTimes.max())
        )
        #expect(computed == incremental)

        // And both equal the sums worked out directly.
        let counting = orders.filter { $0.status != .cancelled && $0.status != .refunded }
        #expect(computed.orderCount == Int64(counting.count))
        #expect(computed.spent.map(\.currency.code) == Set(counting.map(\.currency.code)).sorted())
        for total in computed.spent {
            let inCurrency = counting.filter { $0.currency == total.currency }
            #expect(total.totalMinor == inCurrency.reduce(0) { $0 + $1.total.minorUnits })
            #expect(total.orderCount == Int64(inCurrency.count))
        }
        #expect(computed.firstOrderAt == counting.map(\.placedAt).min())
        #expect(computed.lastOrderAt == counting.map(\.placedAt).max())
        #expect(computed.lastSeenAt == (orders.map(\.placedAt) + eventTimes).max())
        #expect(computed.eventCount == Int64(eventTimes.count))
    }
    /// A known order's new state counted in place of its old one gives what counting every order again gives, or
    /// nothing when it cannot be exact.
    @Test func replacingAnOrdersStateMatchesComputingFromScratch() {
        var random = SeededGenerator(seed: 42)  // seeded: a failure replays
        let events = EventSummary(count: 3, lastOccurredAt: newYear2026 + .seconds(30))
        var exact = 0
        for _ in 0..<2_000 {
            var orders = (0..<Int.random(in: 1...5, using: &random)).map { index in
                order(
                    id: "ord_\(index)", status: OrderStatus.allCases.randomElement(using: &random)!, currency: ["EUR", "USD"].randomElement(using: &random)!,
                    totalMinor: [0, 1, 999, 1_000_000_000_000_000, Int64.max / 2].randomElement(using: &random)!,
                    placedAt: newYear2026 + .seconds(60 * Int64.random(in: 0...3, using: &random)))
            }
            let stats = CustomerStats.compute(customerID: customer, orders: orders, events: events)
            let index = Int.random(in: 0..<orders.count, using: &random)
            let old = orders[index]
            var new = old
            new.status = OrderStatus.allCases.randomElement(using: &random)!
            if Bool.random(using: &random) {
                new.currency = currency(["EUR", "USD"].randomElement(using: &random)!)
                new.total = Money(minorUnits: Int64.random(in: 0...5_000, using: &random), currency: new.currency)
            }
            orders[index] = new
            guard let replaced = stats.replacing(order: old, with: new) else { continue }
            exact += 1
            #expect(replaced == CustomerStats.compute(customerID: customer, orders: orders, events: events), "\(old) → \(new) among \(orders)")
        }
        #expect(exact > 1_000)  // most replacements need no recount
    }
}

