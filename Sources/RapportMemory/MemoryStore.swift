public import RapportCore
import Synchronization

/// The in-memory backend: a real, fast store for tests and small embedded uses, not a mock.
///
/// It follows the same semantics as `SQLiteStore` (the conformance suite runs both). Transactions are serialized
/// by one lock; a write keeps an undo log and rolls every change back if its body throws.
///
/// ```swift
/// let crm = RapportEngine(store: MemoryStore())
/// ```
public final class MemoryStore: Store {
    private let lock = Mutex(())
    private let database = MemoryDatabase()

    /// An empty store.
    public init() {}

    public func read<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T {
        try readSync(body)
    }

    public func write<T: Sendable>(_ body: @Sendable (any StoreWriter) throws -> T) async throws -> T {
        try writeSync(body)
    }

    /// The synchronous form of ``read(_:)``, for callers that are not async (benchmarks, tools).
    public func readSync<T>(_ body: (any StoreReader) throws -> T) throws -> T {
        try lock.withLock { _ in
            try body(MemoryTransaction(database))
        }
    }

    /// The synchronous form of ``write(_:)``.
    public func writeSync<T>(_ body: (any StoreWriter) throws -> T) throws -> T {
        try lock.withLock { _ in
            let transaction = MemoryTransaction(database)
            do {
                return try body(transaction)
            } catch {
                transaction.rollback()
                throw error
            }
        }
    }
}

/// Everything the store holds. Only touched under the store's lock, hence `@unchecked Sendable`.
final class MemoryDatabase: @unchecked Sendable {
    var sequence: Int64 = 0
    var customers: [CustomerID: CustomerRecord] = [:]
    var stats: [CustomerID: CustomerStats] = [:]
    var identities: [Identity: IdentityRecord] = [:]
    var identitiesByCustomer: [CustomerID: Set<Identity>] = [:]
    var events: [String: EventRecord] = [:]
    var eventsByCustomer: [CustomerID: TimelineIndex<String>] = [:]
    var orders: [OrderID: OrderRecord] = [:]
    var orderIDsByKey: [OrderKey: OrderID] = [:]
    var ordersByCustomer: [CustomerID: TimelineIndex<OrderID>] = [:]
    var interactions: [InteractionID: InteractionRecord] = [:]
    var interactionsByCustomer: [CustomerID: TimelineIndex<InteractionID>] = [:]
    var consents: [ConsentID: ConsentRecord] = [:]
    var consentsByCustomer: [CustomerID: TimelineIndex<ConsentID>] = [:]
    var merges: [MergeID: MergeRecord] = [:]
    var mergesBySurvivor: [CustomerID: [MergeID]] = [:]
    var mergesByAbsorbed: [CustomerID: [MergeID]] = [:]
    var profileChanges: [CustomerID: [ProfileChange]] = [:]
    var attributeDefinitions: [String: AttributeDefinition] = [:]
    var apiKeys: [APIKeyID: APIKey] = [:]
    var apiKeyIDsByHash: [String: APIKeyID] = [:]
    var idempotencyRecords: [String: IdempotencyRecord] = [:]
    /// Keys of idempotency records sorted by the time they were stored.
    var idempotencyOrder: [String] = []
    var changes: [Change] = []
    var lastChangeCursor: Int64 = 0

    // Automation: definitions, memberships, runs, jobs, outbox.
    var definitionsVersion: Int64 = 0
    var eventTypes: [String: EventTypeDefinition] = [:]
    var segments: [SegmentID: Segment] = [:]
    var segmentIDsByKey: [String: SegmentID] = [:]
    /// Dynamic members of each segment (ordered, for paging) and since when.
    var dynamicMembers: [SegmentID: SortedSet<CustomerID>] = [:]
    var dynamicSince: [MembershipKey: Timestamp] = [:]
    var dynamicByCustomer: [CustomerID: Set<SegmentID>] = [:]
    /// List memberships by (segment, home customer); owners per list with how many memberships each owns.
    var listRecords: [MembershipKey: ListMembershipRecord] = [:]
    var listOwners: [SegmentID: SortedSet<CustomerID>] = [:]
    var listRecordsByOwner: [CustomerID: Set<MembershipKey>] = [:]
    var rules: [RuleID: Rule] = [:]
    var ruleDefinitions: [RuleVersionKey: RuleDefinition] = [:]
    var runs: [RunID: RuleRun] = [:]
    var runOrder = SortedSet<RunCursor>()
    var runsByRule: [RuleID: SortedSet<RunCursor>] = [:]
    var runsByCustomer: [CustomerID: SortedSet<RunCursor>] = [:]
    var waitingRuns: [RuleCustomerKey: SortedSet<RunCursor>] = [:]
    var runsByRuleCustomer: [RuleCustomerKey: SortedSet<RunCursor>] = [:]
    var ruleCounters: [RuleCustomerKey: RuleCounter] = [:]
    var ruleFiredCounts: [RuleDayKey: Int64] = [:]
    var jobs: [String: ScheduledJob] = [:]
    var jobKeys = SortedSet<String>()
    var jobsByDue = SortedSet<JobPosition>()
    var jobsByCustomer: [CustomerID: Set<String>] = [:]
    var outbox: [OutboxEntryID: OutboxEntry] = [:]
    var outboxBySequence = SortedSet<Int64>()
    var outboxIDsBySequence: [Int64: OutboxEntryID] = [:]
    var outboxIDsByKey: [String: OutboxEntryID] = [:]
    /// Open entries per customer by sequence; the first of each is its customer's head, listed in `outboxHeads`.
    var openOutbox: [CustomerID: SortedSet<Int64>] = [:]
    var outboxHeads = SortedSet<Int64>()
}

struct MembershipKey: Hashable, Sendable {
    var segment: SegmentID
    var customer: CustomerID
}

struct RuleVersionKey: Hashable, Sendable {
    var rule: RuleID
    var version: Int64
}

struct RuleCustomerKey: Hashable, Sendable {
    var rule: RuleID
    var customer: CustomerID
}

struct RuleDayKey: Hashable, Sendable {
    var rule: RuleID
    var day: Int64
}

struct JobPosition: Hashable, Comparable, Sendable {
    var due: Timestamp
    var key: String

    static func < (lhs: JobPosition, rhs: JobPosition) -> Bool { (lhs.due, lhs.key) < (rhs.due, rhs.key) }
}
