/// Something a person did or that happened to them (`page.viewed`, `cart.updated`, `newsletter.subscribed`).
public struct Event: Hashable, Sendable, Codable {
    /// The sender's id for the event: the idempotency key. A replayed id is a duplicate and changes nothing.
    public var id: String
    /// Lower-case words joined by `.` or `_` (`checkout.started`).
    public var type: String
    public var occurredAt: Timestamp
    public var channel: Channel
    /// The identities the event was seen with.
    public var identities: [Identity]
    public var properties: [String: AttributeValue]
    /// The customer the event is attributed to.
    public var customerID: CustomerID
    /// When Rapport received it.
    public var receivedAt: Timestamp

    public init(
        id: String, type: String, occurredAt: Timestamp, channel: Channel, identities: [Identity], properties: [String: AttributeValue],
        customerID: CustomerID, receivedAt: Timestamp
    ) {
        self.id = id
        self.type = type
        self.occurredAt = occurredAt
        self.channel = channel
        self.identities = identities
        self.properties = properties
        self.customerID = customerID
        self.receivedAt = receivedAt
    }

    /// Whether a rule's action emitted it (its id is the run's, `run_….0`, and it carries no identity, which every
    /// ingested event does): not something the customer did, so not in their event count or last seen time.
    public var isEmittedByRule: Bool { identities.isEmpty && id.utf8.starts(with: "run_".utf8) }  // bytes, as SQLite's GLOB
}

/// An event as storage holds it.
public struct EventRecord: Hashable, Sendable, Codable {
    public var event: Event
    public var homeCustomerID: CustomerID
    public var sequence: Int64

    public init(event: Event, homeCustomerID: CustomerID, sequence: Int64) {
        self.event = event
        self.homeCustomerID = homeCustomerID
        self.sequence = sequence
    }
}
