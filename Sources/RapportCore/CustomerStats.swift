/// One currency's share of a customer's spending.
public struct CurrencyTotal: Hashable, Sendable, Codable {
    public var currency: CurrencyCode
    /// Sum of the totals of the counting orders in this currency, in minor units; it stays at Int64's largest
    /// value once reached (no real customer gets near: that is 92 trillion euros), and so does the average's input.
    public var totalMinor: Int64
    /// How many counting orders were in this currency.
    public var orderCount: Int64

    public init(currency: CurrencyCode, totalMinor: Int64, orderCount: Int64) {
        self.currency = currency
        self.totalMinor = totalMinor
        self.orderCount = orderCount
    }

    /// The total as money.
    public var total: Money { Money(minorUnits: totalMinor, currency: currency) }

    /// The average order value, rounded half away from zero to the minor unit.
    public var averageOrderValue: Money {
        guard orderCount > 0 else { return Money(minorUnits: 0, currency: currency) }
        // Quotient and remainder, so that no total (up to Int64.max) overflows on the way.
        let (quotient, remainder) = totalMinor.quotientAndRemainder(dividingBy: orderCount)
        let away = remainder.magnitude * 2 >= orderCount.magnitude ? (totalMinor >= 0 ? 1 : -1) : 0
        return Money(minorUnits: quotient + Int64(away), currency: currency)
    }

    /// Adds an order's total; a sum beyond what Int64 holds stays at its largest (or smallest) value instead of
    /// trapping. Ingest accepts at most 3·10^15 minor units an order (each amount at most 10^15): only thousands of
    /// such orders reach it.
    mutating func add(totalMinor amount: Int64) {
        let (sum, overflow) = totalMinor.addingReportingOverflow(amount)
        totalMinor = overflow ? (amount > 0 ? .max : .min) : sum
        orderCount += 1
    }
}

/// A customer's running aggregates, kept up to date in the same transaction as the data they sum.
///
/// Cancelled and refunded orders are left out of counts and totals.
public struct CustomerStats: Hashable, Sendable, Codable {
    public var customerID: CustomerID
    /// Orders that count (neither cancelled nor refunded).
    public var orderCount: Int64
    /// Spending per currency, sorted by currency code.
    public var spent: [CurrencyTotal]
    public var firstOrderAt: Timestamp?
    public var lastOrderAt: Timestamp?
    /// The events the customer's channels sent (not those rules emitted).
    public var eventCount: Int64
    /// The latest moment the customer did anything: an event (not one a rule emitted) or an order.
    public var lastSeenAt: Timestamp?

    public init(
        customerID: CustomerID, orderCount: Int64 = 0, spent: [CurrencyTotal] = [], firstOrderAt: Timestamp? = nil, lastOrderAt: Timestamp? = nil,
        eventCount: Int64 = 0, lastSeenAt: Timestamp? = nil
    ) {
        self.customerID = customerID
        self.orderCount = orderCount
        self.spent = spent
        self.firstOrderAt = firstOrderAt
        self.lastOrderAt = lastOrderAt
        self.eventCount = eventCount
        self.lastSeenAt = lastSeenAt
    }

    /// Total spent in `currency`, zero when the customer never paid in it.
    public func totalSpent(in currency: CurrencyCode) -> Money {
        spent.first { $0.currency == currency }?.total ?? Money(minorUnits: 0, currency: currency)
    }

    /// Average order value per currency.
    public var averageOrderValue: [Money] { spent.map(\.averageOrderValue) }

    /// Counts a new order in.
    public mutating func add(order: Order) {
        seen(at: order.placedAt)
        guard order.status.counts else { return }
        orderCount += 1
        if let index = spent.firstIndex(where: { $0.currency == order.currency }) {
            spent[index].add(totalMinor: order.total.minorUnits)
        } else {
            spent.append(CurrencyTotal(currency: order.currency, totalMinor: order.total.minorUnits, orderCount: 1))
            spent.sort { $0.currency < $1.currency }
        }
        firstOrderAt = min(firstOrderAt ?? order.placedAt, order.placedAt)
        lastOrderAt = max(lastOrderAt ?? order.placedAt, order.placedAt)
    }

    /// The aggregates with a known order's new state counted in place of its old one, without the customer's other
    /// orders; nil when that cannot be exact (the placing time changed, a total at Int64's limit, or the first or
    /// last counting order leaving the count): then ``compute(customerID:orders:events:)``.
    public func replacing(order old: Order, with new: Order) -> CustomerStats? {
        guard old.placedAt == new.placedAt else { return nil }
        var result = self
        if old.status.counts {
            guard let index = result.spent.firstIndex(where: { $0.currency == old.currency }) else { return nil }
            let entry = result.spent[index]
            guard entry.totalMinor != .max, entry.totalMinor != .min, entry.orderCount > 0, result.orderCount > 0 else { return nil }
            if !new.status.counts, old.placedAt == firstOrderAt || old.placedAt == lastOrderAt { return nil }
            let (remaining, overflow) = entry.totalMinor.subtractingReportingOverflow(old.total.minorUnits)
            guard !overflow else { return nil }
            result.orderCount -= 1
            result.spent[index].totalMinor = remaining
            result.spent[index].orderCount -= 1
            if result.spent[index].orderCount == 0 { result.spent.remove(at: index) }
        }
        if new.status.counts { result.add(order: new) }
        return result
    }

    /// Counts a new event in.
    public mutating func add(eventAt time: Timestamp) {
        eventCount += 1
        seen(at: time)
    }

    private mutating func seen(at time: Timestamp) {
        lastSeenAt = max(lastSeenAt ?? time, time)
    }

    /// The aggregates computed from scratch from every order and a summary of the events a customer owns.
    public static func compute(customerID: CustomerID, orders: [Order], events: EventSummary) -> CustomerStats {
        var stats = CustomerStats(customerID: customerID, eventCount: events.count, lastSeenAt: events.lastOccurredAt)
        for order in orders.sorted(by: { ($0.placedAt, $0.id) < ($1.placedAt, $1.id) }) {
            stats.add(order: order)
        }
        return stats
    }
}

/// How many events a customer owns and when the latest happened.
public struct EventSummary: Hashable, Sendable {
    public var count: Int64
    public var lastOccurredAt: Timestamp?

    public init(count: Int64, lastOccurredAt: Timestamp?) {
        self.count = count
        self.lastOccurredAt = lastOccurredAt
    }
}
