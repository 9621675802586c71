/// What kind of identifier an identity is.
public enum IdentityKind: String, Hashable, Comparable, Sendable, Codable, CaseIterable {
    case email
    case phone
    /// A loyalty or membership card number.
    case memberCard = "member_card"
    /// An id in another system (a marketplace, a shop platform, a POS), qualified by its source.
    case externalID = "external_id"
    /// An anonymous device or browser id (a cookie, an app install id).
    case anonymousID = "anonymous_id"

    /// How strongly the kind identifies a person; the strongest identity decides where a record belongs.
    public var strength: Int {
        switch self {
        case .memberCard: 5
        case .externalID: 4
        case .email: 3
        case .phone: 2
        case .anonymousID: 1
        }
    }

    public static func < (lhs: IdentityKind, rhs: IdentityKind) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A normalized identifier of a person: the unit of identity resolution.
///
/// Build identities with ``IdentityNormalizer`` so that `Ada@Example.com ` and `ada@example.com` are one identity.
public struct Identity: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var kind: IdentityKind
    /// The source system of an external id (`shopify`, `amazon`); empty for every other kind.
    public var source: String
    /// The normalized value (lower-case e-mail, E.164 phone...).
    public var value: String

    /// An identity whose value is already normalized. Prefer ``IdentityNormalizer/normalize(kind:source:value:field:)``.
    public init(kind: IdentityKind, source: String = "", value: String) {
        self.kind = kind
        self.source = source
        self.value = value
    }

    /// One string that names the identity uniquely: `email:ada@example.com`, `external_id:shopify:123`.
    public var key: String {
        source.isEmpty ? "\(kind.rawValue):\(value)" : "\(kind.rawValue):\(source):\(value)"
    }

    public var description: String { key }

    public static func < (lhs: Identity, rhs: Identity) -> Bool { lhs.key < rhs.key }
}

/// An identity as the engine stores it: who owns it now, and who it first belonged to.
public struct IdentityRecord: Hashable, Sendable, Codable {
    public var identity: Identity
    /// The customer the identity resolves to now.
    public var customerID: CustomerID
    /// The customer the identity was first attached to; unmerging gives it back to this customer's side.
    public var homeCustomerID: CustomerID
    public var createdAt: Timestamp

    public init(identity: Identity, customerID: CustomerID, homeCustomerID: CustomerID, createdAt: Timestamp) {
        self.identity = identity
        self.customerID = customerID
        self.homeCustomerID = homeCustomerID
        self.createdAt = createdAt
    }
}
