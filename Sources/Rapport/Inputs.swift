public import RapportCore

/// A raw identifier as it arrives from a channel, before normalization.
///
/// ```swift
/// IdentityInput.email("Ada@Example.com")
/// IdentityInput(kind: .externalID, source: "shopify", value: "8812")
/// ```
public struct IdentityInput: Hashable, Sendable, Codable {
    public var kind: IdentityKind
    /// The source system, for external ids only.
    public var source: String
    public var value: String

    public init(kind: IdentityKind, source: String = "", value: String) {
        self.kind = kind
        self.source = source
        self.value = value
    }

    /// An e-mail address (trimmed and lower-cased when normalized).
    public static func email(_ value: String) -> IdentityInput { IdentityInput(kind: .email, value: value) }
    /// A phone number, international (`+44 20 7946 0958`) or national in the engine's default region.
    public static func phone(_ value: String) -> IdentityInput { IdentityInput(kind: .phone, value: value) }
    /// A loyalty or member card number.
    public static func memberCard(_ value: String) -> IdentityInput { IdentityInput(kind: .memberCard, value: value) }
    /// An id in another system (`source`: a marketplace or shop platform such as `shopify`).
    public static func externalID(_ value: String, source: String) -> IdentityInput { IdentityInput(kind: .externalID, source: source, value: value) }
    /// An anonymous device or browser id.
    public static func anonymousID(_ value: String) -> IdentityInput { IdentityInput(kind: .anonymousID, value: value) }
}

/// What it takes to create a customer.
public struct NewCustomer: Hashable, Sendable, Codable {
    public var profile: CustomerProfile
    /// Identities of the new customer (e-mails, phones, ids); each must belong to nobody yet.
    public var identities: [IdentityInput]

    public init(profile: CustomerProfile = CustomerProfile(), identities: [IdentityInput] = []) {
        self.profile = profile
        self.identities = identities
    }
}

/// One event to ingest.
public struct EventInput: Hashable, Sendable, Codable {
    /// The sender's unique id for the event: the idempotency key (1 to 128 bytes of UTF-8 on one line, without NUL).
    public var id: String
    /// Lower-case words joined by `.` or `_`, such as `checkout.started`.
    public var type: String
    public var occurredAt: Timestamp
    public var channel: Channel
    /// At least one identity; they decide which customer the event belongs to.
    public var identities: [IdentityInput]
    public var properties: [String: AttributeValue]

    public init(id: String, type: String, occurredAt: Timestamp, channel: Channel = .web, identities: [IdentityInput], properties: [String: AttributeValue] = [:]) {
        self.id = id
        self.type = type
        self.occurredAt = occurredAt
        self.channel = channel
        self.identities = identities
        self.properties = properties
    }
}

/// One order to ingest, or a new state of an order ingested before (same source and external id).
public struct OrderInput: Hashable, Sendable, Codable {
    /// Where the order's id comes from (`web`, `amazon`, `store-berlin`).
    public var source: String
    public var externalID: String
    /// Where the order was placed (the initializer's default is `.web`). Nil: OTHER for a new order, and a later
    /// state of a known order keeps the channel it has.
    public var channel: Channel?
    /// At least one identity of the buyer.
    public var identities: [IdentityInput]
    public var lines: [OrderLine]
    /// ISO 4217 code; every amount is in its minor unit.
    public var currency: String
    public var discountMinor: Int64
    public var shippingMinor: Int64
    public var taxMinor: Int64
    public var status: OrderStatus
    public var placedAt: Timestamp
    /// When the order reached `status`. Nil: an estimate (the placing time for a new order, the ingest time for a
    /// known one), marked `estimated` in the history and placed there by the order's life instead of by time; a
    /// later item of the same status with its time replaces it (see ``Order/arrange(_:)``).
    public var statusChangedAt: Timestamp?

    public init(
        source: String, externalID: String, channel: Channel? = .web, identities: [IdentityInput], lines: [OrderLine], currency: String,
        discountMinor: Int64 = 0, shippingMinor: Int64 = 0, taxMinor: Int64 = 0, status: OrderStatus = .placed, placedAt: Timestamp,
        statusChangedAt: Timestamp? = nil
    ) {
        self.source = source
        self.externalID = externalID
        self.channel = channel
        self.identities = identities
        self.lines = lines
        self.currency = currency
        self.discountMinor = discountMinor
        self.shippingMinor = shippingMinor
        self.taxMinor = taxMinor
        self.status = status
        self.placedAt = placedAt
        self.statusChangedAt = statusChangedAt
    }
}

/// One item of an ingest batch.
public enum IngestItem: Hashable, Sendable, Codable {
    case event(EventInput)
    case order(OrderInput)
}

/// How a batch treats items that fail validation.
public enum IngestMode: Hashable, Sendable, Codable {
    /// Invalid items are rejected with their reasons; the valid ones are applied (in one transaction).
    case skipInvalid
    /// Any invalid item fails the whole batch with `invalidArgument`, naming `items[N].field`; nothing is applied.
    case allOrNothing
}

/// What happened to one item of a batch.
public enum IngestOutcome: Hashable, Sendable, Codable {
    /// A new event or order, attributed to this customer.
    case accepted(CustomerID)
    /// A known order whose status or content changed.
    case updated(CustomerID)
    /// Seen before: an event with this id (events are idempotent by id: a new content under a known id is not
    /// applied), or an order in this state.
    case duplicate(CustomerID)
    /// Invalid: nothing was applied for this item.
    case rejected([FieldViolation])
}

/// The result of ingesting a batch.
public struct IngestResult: Hashable, Sendable, Codable {
    /// One outcome per item, in the batch's order.
    public var outcomes: [IngestOutcome]
    /// Customers created because no identity matched.
    public var createdCustomers: [CustomerID]
    /// Merges made because one item's identities resolved to several customers.
    public var merges: [MergeID]

    public init(outcomes: [IngestOutcome], createdCustomers: [CustomerID], merges: [MergeID]) {
        self.outcomes = outcomes
        self.createdCustomers = createdCustomers
        self.merges = merges
    }

    public var acceptedCount: Int { outcomes.count { if case .accepted = $0 { true } else { false } } }
    public var updatedCount: Int { outcomes.count { if case .updated = $0 { true } else { false } } }
    public var duplicateCount: Int { outcomes.count { if case .duplicate = $0 { true } else { false } } }
    public var rejectedCount: Int { outcomes.count { if case .rejected = $0 { true } else { false } } }
}

/// An interaction to record.
public struct InteractionInput: Hashable, Sendable, Codable {
    public var customerID: CustomerID
    public var channel: InteractionChannel
    public var direction: InteractionDirection
    public var subject: String
    public var summary: String
    public var agent: String
    /// When it happened; now if nil.
    public var occurredAt: Timestamp?

    public init(
        customerID: CustomerID, channel: InteractionChannel, direction: InteractionDirection, subject: String = "", summary: String = "", agent: String = "",
        occurredAt: Timestamp? = nil
    ) {
        self.customerID = customerID
        self.channel = channel
        self.direction = direction
        self.subject = subject
        self.summary = summary
        self.agent = agent
        self.occurredAt = occurredAt
    }
}

/// A consent statement to record.
public struct ConsentInput: Hashable, Sendable, Codable {
    public var customerID: CustomerID
    public var channel: ConsentChannel
    public var purpose: ConsentPurpose
    public var status: ConsentStatus
    /// Where it was given (`checkout`, `preference_center`).
    public var source: String
    /// When the customer gave it; now if nil.
    public var occurredAt: Timestamp?

    public init(customerID: CustomerID, channel: ConsentChannel, purpose: ConsentPurpose, status: ConsentStatus, source: String, occurredAt: Timestamp? = nil) {
        self.customerID = customerID
        self.channel = channel
        self.purpose = purpose
        self.status = status
        self.source = source
        self.occurredAt = occurredAt
    }
}

/// A page request: how many items, and the token of the previous page's end.
public struct PageRequest: Hashable, Sendable {
    /// 1 to 1000; 0 means the default of 50.
    public var size: Int
    /// The `nextPageToken` of the previous page, or nil for the first page.
    public var token: String?

    public init(size: Int = 0, token: String? = nil) {
        self.size = size
        self.token = token
    }
}

/// One page of customers.
public struct CustomerPage: Hashable, Sendable {
    public var customers: [Customer]
    /// Pass it back for the next page; nil on the last page.
    public var nextPageToken: String?
    /// The change feed's latest cursor as of this page: every change after it is not in the page. A copy kept in
    /// sync lists every page, then follows ``RapportEngine/watchChanges(after:customerID:)`` from the first page's
    /// cursor, so that nothing changed while it listed is missed: pages are read as the store is when each is asked
    /// for, so a customer updated between pages moves in an `updatedAt` order (it may come again, or not at all).
    public var changeCursor: Int64

    public init(customers: [Customer], nextPageToken: String?, changeCursor: Int64 = 0) {
        self.customers = customers
        self.nextPageToken = nextPageToken
        self.changeCursor = changeCursor
    }
}
