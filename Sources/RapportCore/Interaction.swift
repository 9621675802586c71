/// The channel of a conversation with a customer.
public enum InteractionChannel: String, Hashable, Sendable, Codable, CaseIterable {
    case email, phone, chat, store, social, app
}

/// Who started the conversation.
public enum InteractionDirection: String, Hashable, Sendable, Codable, CaseIterable {
    case inbound, outbound
}

/// A conversation or contact with a customer: a call, a chat, a visit to a store.
public struct Interaction: Hashable, Sendable, Codable {
    public var id: InteractionID
    public var customerID: CustomerID
    public var channel: InteractionChannel
    public var direction: InteractionDirection
    public var subject: String
    public var summary: String
    /// The agent or employee involved (free text or an agent id).
    public var agent: String
    public var occurredAt: Timestamp

    public init(
        id: InteractionID, customerID: CustomerID, channel: InteractionChannel, direction: InteractionDirection, subject: String, summary: String,
        agent: String, occurredAt: Timestamp
    ) {
        self.id = id
        self.customerID = customerID
        self.channel = channel
        self.direction = direction
        self.subject = subject
        self.summary = summary
        self.agent = agent
        self.occurredAt = occurredAt
    }
}

/// An interaction as storage holds it.
public struct InteractionRecord: Hashable, Sendable, Codable {
    public var interaction: Interaction
    public var homeCustomerID: CustomerID
    public var sequence: Int64

    public init(interaction: Interaction, homeCustomerID: CustomerID, sequence: Int64) {
        self.interaction = interaction
        self.homeCustomerID = homeCustomerID
        self.sequence = sequence
    }
}
