/// A channel through which a customer may be contacted.
public enum ConsentChannel: String, Hashable, Comparable, Sendable, Codable, CaseIterable {
    case email, sms, push, phone

    public static func < (lhs: ConsentChannel, rhs: ConsentChannel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// What the customer's data or contact may be used for.
public enum ConsentPurpose: String, Hashable, Comparable, Sendable, Codable, CaseIterable {
    case marketing, transactional, profiling

    public static func < (lhs: ConsentPurpose, rhs: ConsentPurpose) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The customer's answer.
public enum ConsentStatus: String, Hashable, Sendable, Codable, CaseIterable {
    case granted, denied, revoked

    /// Only `granted` allows contact.
    public var allows: Bool { self == .granted }
}

/// One consent statement: a channel and purpose, the answer, where it was given and when.
public struct Consent: Hashable, Sendable, Codable {
    public var id: ConsentID
    public var customerID: CustomerID
    public var channel: ConsentChannel
    public var purpose: ConsentPurpose
    public var status: ConsentStatus
    /// Where it was given: `checkout`, `preference_center`, `store_form`...
    public var source: String
    /// When the customer gave the answer.
    public var occurredAt: Timestamp
    /// When Rapport recorded it.
    public var recordedAt: Timestamp

    public init(
        id: ConsentID, customerID: CustomerID, channel: ConsentChannel, purpose: ConsentPurpose, status: ConsentStatus, source: String,
        occurredAt: Timestamp, recordedAt: Timestamp
    ) {
        self.id = id
        self.customerID = customerID
        self.channel = channel
        self.purpose = purpose
        self.status = status
        self.source = source
        self.occurredAt = occurredAt
        self.recordedAt = recordedAt
    }
}

/// A consent statement as storage holds it.
public struct ConsentRecord: Hashable, Sendable, Codable {
    public var consent: Consent
    public var homeCustomerID: CustomerID
    public var sequence: Int64

    public init(consent: Consent, homeCustomerID: CustomerID, sequence: Int64) {
        self.consent = consent
        self.homeCustomerID = homeCustomerID
        self.sequence = sequence
    }
}
