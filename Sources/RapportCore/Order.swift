/// The state of an order. Cancelled and refunded orders do not count towards a customer's spending.
public enum OrderStatus: String, Hashable, Sendable, Codable, CaseIterable {
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

    /// quantity × unit price.
    public var totalMinor: Int64 { quantity * unitPriceMinor }
}

/// One entry of an order's status history.
public struct OrderStatusChange: Hashable, Sendable, Codable {
    public var status: OrderStatus
    public var at: Timestamp

    public init(status: OrderStatus, at: Timestamp) {
        self.status = status
        self.at = at
    }
}

/// An order, attributed to a customer through its identities.
public struct Order: Hashable, Sendable, Codable {
    public var id: OrderID
    public var key: OrderKey
    public var channel: Channel
    public var customerID: CustomerID
    /// The identities the order was placed with (the buyer's e-mail, a marketplace buyer id...).
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
