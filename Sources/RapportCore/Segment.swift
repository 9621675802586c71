/// Identifies a segment (`seg_`).
public struct SegmentID: PrefixedID {
    public static let prefix = "seg_"
    public static let entity = "segment"
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// How a segment's members are decided.
public enum SegmentKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// By an expression, kept up to date as customers change and as time passes.
    case dynamic
    /// By hand: members are added and removed explicitly (a static list).
    case list
}

/// Whether a dynamic segment's membership is complete.
public enum SegmentState: String, Hashable, Sendable, Codable, CaseIterable {
    /// The existing customers are still being evaluated, page by page; changes are tracked meanwhile.
    case building
    /// Every customer has been evaluated; membership is maintained on every change.
    case ready
}

/// A group of customers: dynamic (an expression) or a static list.
public struct Segment: Hashable, Sendable, Codable {
    public var id: SegmentID
    /// The stable name expressions use (`in_segment("big_spenders")`): lower-case letters, digits and `_`.
    public var key: String
    public var name: String
    public var description: String
    public var kind: SegmentKind
    /// The condition of a dynamic segment; empty for a list.
    public var expression: String
    /// Grows by one whenever the expression or the name changes.
    public var version: Int64
    public var state: SegmentState
    /// While building: where the next page of customers starts.
    public var buildCursor: CustomerCursor?
    /// While building: when the build began. A customer created since is not one the build has to find: its
    /// entry is a new one (its rules run).
    public var buildStartedAt: Timestamp?
    /// How many active customers are members.
    public var memberCount: Int64
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    /// The personal data an earlier expression of this segment read (`customer.birthday.month`), if one did: the
    /// members it found, and what the change feed says of them, stay hidden from roles without personal data.
    public var revealedPersonalData: String?
    /// The revision of the expression language its members were found with (nil: one before 2). When a later
    /// revision changes what an expression of it means, the segment is built again (``ExpressionRevisions``).
    public var evaluatedWithRevision: Int?

    public init(
        id: SegmentID, key: String, name: String, description: String = "", kind: SegmentKind, expression: String, version: Int64 = 1,
        state: SegmentState, buildCursor: CustomerCursor? = nil, buildStartedAt: Timestamp? = nil, memberCount: Int64 = 0, createdAt: Timestamp,
        updatedAt: Timestamp
    ) {
        self.id = id
        self.key = key
        self.name = name
        self.description = description
        self.kind = kind
        self.expression = expression
        self.version = version
        self.state = state
        self.buildCursor = buildCursor
        self.buildStartedAt = buildStartedAt
        self.memberCount = memberCount
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The optimistic-concurrency tag of this version.
    public var etag: String { "\"\(version)\"" }
}

/// A customer's membership in a segment, and since when.
public struct SegmentMembership: Hashable, Sendable, Codable {
    public var segmentID: SegmentID
    public var customerID: CustomerID
    public var since: Timestamp

    public init(segmentID: SegmentID, customerID: CustomerID, since: Timestamp) {
        self.segmentID = segmentID
        self.customerID = customerID
        self.since = since
    }
}

/// A membership of a static list as storage holds it: like other owned records it follows merges (`customerID`
/// is the owner now) and goes back on unmerge (`homeCustomerID` is who was added).
public struct ListMembershipRecord: Hashable, Sendable, Codable {
    public var segmentID: SegmentID
    public var customerID: CustomerID
    public var homeCustomerID: CustomerID
    public var addedAt: Timestamp

    public init(segmentID: SegmentID, customerID: CustomerID, homeCustomerID: CustomerID, addedAt: Timestamp) {
        self.segmentID = segmentID
        self.customerID = customerID
        self.homeCustomerID = homeCustomerID
        self.addedAt = addedAt
    }
}

/// The revisions of the expression language that changed what some expressions mean, so that segments whose
/// members were found before are built again once (found by the build, their entries and exits run no rules).
public enum ExpressionRevisions {
    /// Revision 2: `has_consent(…, "transactional")` is true until the customer refuses it (it needed a grant).
    /// Revision 3: `stats.event_count` and `stats.last_seen_at` leave out the events rules emit.
    public static let current = 3

    /// The functions and fields whose meaning each revision changed.
    static let changes: [(revision: Int, functions: [String])] = [(2, ["has_consent"]), (3, ["event_count", "last_seen_at"])]

    /// Whether `expression`, evaluated with `revision` (nil: 1), may mean something else now.
    public static func changedMeaning(of expression: String, since revision: Int?) -> Bool {
        changes.contains { change in change.revision > (revision ?? 1) && change.functions.contains { expression.contains($0) } }
    }
}
