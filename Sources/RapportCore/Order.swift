/// The state of an order. Cancelled and refunded orders do not count towards a customer's spending.
public enum OrderStatus: String, Hashable, Sendable, Codable, CaseIterable {
    /// `refunded` is the whole order: a partial refund is the current status sent again with the lines or the
    /// discount the order keeps (its total, and the customer's spending, follow).
    case placed, paid, shipped, delivered, cancelled, refunded

    /// Whether an order in this status counts in order count, total spent and average order value.
    public var counts: Bool { self != .cancelled && self != .refunded }

    /// Where the status comes in an order's life (placed 0 … delivered 3, cancelled and refunded last): of two
    /// statuses at the same time the later one in life is the order's status.
    public var lifecycleRank: Int {
        switch self {
        case .placed: 0
        case .paid: 1
        case .shipped: 2
        case .delivered: 3
        case .cancelled: 4
        case .refunded: 5
        }
    }
}

/// The shop's own key for an order: where it came from and its id there. Ingest is idempotent by this key.
public struct OrderKey: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The platform or store that issued the id (`web`, `amazon`, `store-berlin`).
    public var source: String
    /// The id in that source.
    public var externalID: String

    public init(source: String, externalID: String) {
        self.source = source
        self.externalID = externalID
    }

    public var description: String { "\(source)/\(externalID)" }

    public static func < (lhs: OrderKey, rhs: OrderKey) -> Bool { (lhs.source, lhs.externalID) < (rhs.source, rhs.externalID) }
}

/// One line of an order.
public struct OrderLine: Hashable, Sendable, Codable {
    public var sku: String
    public var name: String
    public var quantity: Int64
    /// The price of one unit, in the order's currency's minor units.
    public var unitPriceMinor: Int64

    public init(sku: String, name: String = "", quantity: Int64, unitPriceMinor: Int64) {
        self.sku = sku
        self.name = name
        self.quantity = quantity
        self.unitPriceMinor = unitPriceMinor
    }

    /// quantity × unit price; a product beyond what Int64 holds stays at its largest (or smallest) value instead of
    /// trapping (ingest refuses such lines; one built by hand may hold anything).
    public var totalMinor: Int64 {
        let (product, overflow) = quantity.multipliedReportingOverflow(by: unitPriceMinor)
        guard overflow else { return product }
        return (quantity < 0) == (unitPriceMinor < 0) ? .max : .min
    }
}

/// One entry of an order's status history.
public struct OrderStatusChange: Hashable, Sendable, Codable {
    public var status: OrderStatus
    public var at: Timestamp
    /// The feed did not say when: `at` is an estimate (the placing time, or when Rapport learned of it), and the
    /// entry takes its place in the history by the order's life rather than by time (see ``Order/arrange(_:)``).
    public var estimated: Bool

    public init(status: OrderStatus, at: Timestamp, estimated: Bool = false) {
        self.status = status
        self.at = at
        self.estimated = estimated
    }

    private enum CodingKeys: String, CodingKey { case status, at, estimated }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = try container.decode(OrderStatus.self, forKey: .status)
        at = try container.decode(Timestamp.self, forKey: .at)
        // Absent from what versions before it wrote.
        estimated = try container.decodeIfPresent(Bool.self, forKey: .estimated) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
        try container.encode(at, forKey: .at)
        if estimated { try container.encode(true, forKey: .estimated) }
    }
}

/// An order, attributed to a customer through its identities.
public struct Order: Hashable, Sendable, Codable {
    public var id: OrderID
    public var key: OrderKey
    public var channel: Channel
    public var customerID: CustomerID
    /// The identities the order was placed with (the buyer's e-mail, a marketplace buyer id...), and those later
    /// items about it brought.
    public var identities: [Identity]
    public var lines: [OrderLine]
    public var currency: CurrencyCode
    /// Sum of the lines.
    public var subtotal: Money
    public var discount: Money
    public var shipping: Money
    public var tax: Money
    /// subtotal − discount + shipping + tax.
    public var total: Money
    /// The current status: the latest entry of the history.
    public var status: OrderStatus
    /// Every status the order went through, oldest first.
    public var statusHistory: [OrderStatusChange]
    public var placedAt: Timestamp
    public var updatedAt: Timestamp

    /// How many items the lines hold in all; nil when the sum overflows (an order built by hand may hold anything).
    public var itemCount: Int64? {
        var sum: Int64 = 0
        for line in lines {
            let (next, overflow) = sum.addingReportingOverflow(line.quantity)
            if overflow { return nil }
            sum = next
        }
        return sum
    }

    public init(
        id: OrderID, key: OrderKey, channel: Channel, customerID: CustomerID, identities: [Identity], lines: [OrderLine], currency: CurrencyCode,
        subtotal: Money, discount: Money, shipping: Money, tax: Money, total: Money, status: OrderStatus, statusHistory: [OrderStatusChange],
        placedAt: Timestamp, updatedAt: Timestamp
    ) {
        self.id = id
        self.key = key
        self.channel = channel
        self.customerID = customerID
        self.identities = identities
        self.lines = lines
        self.currency = currency
        self.subtotal = subtotal
        self.discount = discount
        self.shipping = shipping
        self.tax = tax
        self.total = total
        self.status = status
        self.statusHistory = statusHistory
        self.placedAt = placedAt
        self.updatedAt = updatedAt
    }
}

extension Order {
    /// A status history in order: entries with their time by time (at the same time, by the order's life), and
    /// each estimated one after the last entry earlier in an order's life, its time moved between its neighbours'.
    ///
    /// A status whose time nobody gave cannot be placed by time: an undated cancellation imported with the placing
    /// time must not come before a payment dated a minute later, nor a late undated "shipped" after "refunded".
    ///
    /// ```swift
    /// Order.arrange([placed(10:00), cancelled(10:00, estimated), paid(10:05)])
    /// // placed 10:00, paid 10:05, cancelled 10:05 (estimated)
    /// ```
    public static func arrange(_ history: [OrderStatusChange]) -> [OrderStatusChange] {
        var arranged = history.enumerated().filter { !$0.element.estimated }.sorted {
            ($0.element.at, $0.element.status.lifecycleRank, $0.offset) < ($1.element.at, $1.element.status.lifecycleRank, $1.offset)
        }.map(\.element)
        let estimated = history.enumerated().filter(\.element.estimated).sorted {
            ($0.element.status.lifecycleRank, $0.element.at, $0.offset) < ($1.element.status.lifecycleRank, $1.element.at, $1.offset)
        }.map(\.element)
        for var entry in estimated {
            let rank = entry.status.lifecycleRank
            let index = (arranged.lastIndex { $0.status.lifecycleRank <= rank }).map { $0 + 1 } ?? 0
            if index > 0 { entry.at = max(entry.at, arranged[index - 1].at) }
            if index < arranged.count { entry.at = min(entry.at, arranged[index].at) }
            arranged.insert(entry, at: index)
        }
        return arranged
    }
}

/// An order as storage holds it.
public struct OrderRecord: Hashable, Sendable, Codable {
    public var order: Order
    public var homeCustomerID: CustomerID
    public var sequence: Int64

    public init(order: Order, homeCustomerID: CustomerID, sequence: Int64) {
        self.order = order
        self.homeCustomerID = homeCustomerID
        self.sequence = sequence
    }
}
