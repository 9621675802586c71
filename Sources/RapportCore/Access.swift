/// What an API key may see and do.
public enum Role: String, Hashable, Sendable, Codable, CaseIterable {
    /// Everything, including API keys and erasing and exporting customers.
    case admin
    /// Customers, attribute definitions, ingest, consent, merges, segments, rules and the outbox; reads everything.
    case marketing
    /// Customers, interactions and merges; reads everything but the outbox.
    case sales
    /// Customers, interactions, consent and merges; reads everything but the outbox.
    case service
    /// Reads everything but the outbox (segments and rules too), with personal data masked; cannot look customers up by identity
    /// or read rule runs (both would tell personal data).
    case analyst
    /// Reads customers and their 360 view, with personal data masked (no lookup by identity).
    case readOnly = "read_only"

    /// What the role is allowed.
    public var permissions: Set<Permission> {
        switch self {
        case .admin: Set(Permission.allCases)
        case .marketing:
            [.readCustomers, .readPersonalData, .writeCustomers, .defineAttributes, .ingest, .merge, .writeConsent, .readActivity, .watchChanges,
             .readAutomation, .manageAutomation, .consumeOutbox]
        case .sales: [.readCustomers, .readPersonalData, .writeCustomers, .merge, .writeInteractions, .readActivity, .watchChanges, .readAutomation]
        case .service:
            [.readCustomers, .readPersonalData, .writeCustomers, .merge, .writeInteractions, .writeConsent, .readActivity, .watchChanges, .readAutomation]
        case .analyst: [.readCustomers, .readActivity, .watchChanges, .readAutomation]
        case .readOnly: [.readCustomers]
        }
    }

    /// Whether the role sees e-mails, phones, addresses, identities and conversation summaries unmasked.
    public var seesPersonalData: Bool { permissions.contains(.readPersonalData) }
}

/// One right that a role has or has not.
public enum Permission: String, Hashable, Sendable, Codable, CaseIterable {
    /// Read customers and their 360 view.
    case readCustomers
    /// See personal data unmasked (e-mails, phones, addresses, identities, summaries), look customers up by
    /// identity, read rule runs, preview segments and explain expressions.
    case readPersonalData
    /// Create and update customers and their identities.
    case writeCustomers
    /// Delete a customer and everything about it (erasure): irreversible, so admins only.
    case eraseCustomers
    /// Export everything about a customer, unmasked (a data subject access request): admins only.
    case exportCustomers
    /// Declare custom attributes: the schema every profile is checked against.
    case defineAttributes
    /// Ingest events and orders.
    case ingest
    /// Merge and unmerge customers.
    case merge
    /// Record interactions.
    case writeInteractions
    /// Record consent.
    case writeConsent
    /// Read orders, events, interactions and consent on their own and in lists (a customer's 360 view, with its
    /// timeline, needs only ``readCustomers``).
    case readActivity
    /// Follow the change feed.
    case watchChanges
    /// Create, list and revoke API keys.
    case manageAPIKeys
    /// Read segments, rules, their runs and event types; preview segments and validate rules.
    case readAutomation
    /// Create, change and delete segments, lists, rules and event types.
    case manageAutomation
    /// Lease, acknowledge and list outbox entries (the workers that send messages and call webhooks).
    case consumeOutbox
    /// Move the clock of a server started with a manual clock (tests).
    case controlClock
}

/// Identifies an API key (`key_`).
public struct APIKeyID: PrefixedID {
    public static let prefix = "key_"
    public static let entity = "api key"
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// An API key as stored: never the secret, only its SHA-256.
public struct APIKey: Hashable, Sendable, Codable {
    public var id: APIKeyID
    /// What the key is for (`checkout-service`).
    public var name: String
    public var role: Role
    /// Lower-case hex SHA-256 of the secret.
    public var secretHash: String
    public var createdAt: Timestamp
    /// When it was revoked; a revoked key authenticates nobody.
    public var revokedAt: Timestamp?

    public init(id: APIKeyID, name: String, role: Role, secretHash: String, createdAt: Timestamp, revokedAt: Timestamp? = nil) {
        self.id = id
        self.name = name
        self.role = role
        self.secretHash = secretHash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }

    public var isActive: Bool { revokedAt == nil }
}

/// The remembered outcome of a mutation made with a request id, so that a retry returns it again.
public struct IdempotencyRecord: Hashable, Sendable, Codable {
    /// The caller's request id (`request:8d1f...`, or `request@<bytes>:<scope>:8d1f...` for a scoped caller such as
    /// an API key; versions before 2026-12 kept the operation instead of `request`: `createCustomer:8d1f...`).
    public var key: String
    /// The operation and a hash of the request (`createCustomer:3f9a...`), to tell a retry from a different request
    /// reusing the id (the hash alone in records of versions before 2026-12).
    public var fingerprint: String
    /// The encoded result.
    public var response: [UInt8]
    public var createdAt: Timestamp

    public init(key: String, fingerprint: String, response: [UInt8], createdAt: Timestamp) {
        self.key = key
        self.fingerprint = fingerprint
        self.response = response
        self.createdAt = createdAt
    }
}

/// What kind of change a change-feed entry reports.
public enum ChangeKind: String, Hashable, Sendable, Codable, CaseIterable {
    case customerCreated = "customer_created"
    /// The profile or identities changed.
    case customerUpdated = "customer_updated"
    case customerDeleted = "customer_deleted"
    /// The customer is the survivor; the other customer was absorbed.
    case customersMerged = "customers_merged"
    /// The customer is the survivor; the other customer was restored.
    case customersUnmerged = "customers_unmerged"
    /// New events, orders or order states (one entry per customer per batch); also records rewritten by another
    /// person's erasure (their identities taken out).
    case activityRecorded = "activity_recorded"
    /// An interaction or a consent statement.
    case engagementRecorded = "engagement_recorded"
    /// The customer entered the segment named.
    case segmentEntered = "segment_entered"
    /// The customer left the segment named (a customer merged away leaves its dynamic segments with the merge; its
    /// lists go over to the survivor, which enters those it was not in, and back on an unmerge).
    case segmentExited = "segment_exited"
}

/// One entry of the change feed.
public struct Change: Hashable, Sendable, Codable {
    /// Strictly increasing; resume after the last one processed.
    public var cursor: Int64
    public var kind: ChangeKind
    public var customerID: CustomerID
    public var otherCustomerID: CustomerID?
    public var mergeID: MergeID?
    /// The segment entered or left.
    public var segmentID: SegmentID?
    public var at: Timestamp

    public init(
        cursor: Int64, kind: ChangeKind, customerID: CustomerID, otherCustomerID: CustomerID? = nil, mergeID: MergeID? = nil, segmentID: SegmentID? = nil,
        at: Timestamp
    ) {
        self.cursor = cursor
        self.kind = kind
        self.customerID = customerID
        self.otherCustomerID = otherCustomerID
        self.mergeID = mergeID
        self.segmentID = segmentID
        self.at = at
    }
}
