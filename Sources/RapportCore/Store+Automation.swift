/// A page request over rule runs, newest first by (created at, id).
public struct RunQuery: Hashable, Sendable {
    public var ruleID: RuleID?
    public var customerID: CustomerID?
    public var status: RunStatus?
    /// Resume strictly after (older than) this run.
    public var before: RunCursor?
    public var limit: Int

    public init(ruleID: RuleID? = nil, customerID: CustomerID? = nil, status: RunStatus? = nil, before: RunCursor? = nil, limit: Int = 50) {
        self.ruleID = ruleID
        self.customerID = customerID
        self.status = status
        self.before = before
        self.limit = limit
    }

    /// Whether `run` is selected (the reference semantics both backends follow).
    public func matches(_ run: RuleRun) -> Bool {
        if let ruleID, run.ruleID != ruleID { return false }
        if let customerID, run.customerID != customerID { return false }
        if let status, run.status != status { return false }
        if let before, !(RunCursor(run) < before) { return false }
        return true
    }
}

/// A position in the newest-first listing of runs.
public struct RunCursor: Hashable, Comparable, Sendable, Codable {
    public var createdAt: Timestamp
    public var id: RunID

    public init(createdAt: Timestamp, id: RunID) {
        self.createdAt = createdAt
        self.id = id
    }

    public init(_ run: RuleRun) {
        self.init(createdAt: run.createdAt, id: run.id)
    }

    public static func < (lhs: RunCursor, rhs: RunCursor) -> Bool { (lhs.createdAt, lhs.id) < (rhs.createdAt, rhs.id) }
}

/// A page request over outbox entries, oldest first by sequence.
public struct OutboxQuery: Hashable, Sendable {
    public var customerID: CustomerID?
    /// Entries in one of these states; every state when empty.
    public var states: Set<OutboxState>
    /// Entries with a greater sequence.
    public var afterSequence: Int64
    public var limit: Int

    public init(customerID: CustomerID? = nil, states: Set<OutboxState> = [], afterSequence: Int64 = 0, limit: Int = 50) {
        self.customerID = customerID
        self.states = states
        self.afterSequence = afterSequence
        self.limit = limit
    }

    public func matches(_ entry: OutboxEntry) -> Bool {
        if let customerID, entry.customerID != customerID { return false }
        if !states.isEmpty, !states.contains(entry.state) { return false }
        return entry.sequence > afterSequence
    }
}

/// The automation reads of a transaction: event types, segments, rules and their runs, jobs, the outbox.
public protocol AutomationReader {
    /// A number that changes whenever an attribute, event type, segment or rule definition changes (0 in a new
    /// store), to a value never used before: engines cache what they compiled and compare it.
    func definitionsVersion() throws -> Int64

    /// Declared event types, sorted by type.
    func eventTypeDefinitions() throws -> [EventTypeDefinition]

    func segment(_ id: SegmentID) throws -> Segment?
    func segment(key: String) throws -> Segment?
    /// Every segment, sorted by key.
    func segments() throws -> [Segment]
    /// Whether the customer is a member of a dynamic segment.
    func isDynamicMember(segment: SegmentID, customer: CustomerID) throws -> Bool
    /// Whether the customer owns a membership of the static list.
    func isListMember(segment: SegmentID, customer: CustomerID) throws -> Bool
    /// The dynamic segments and lists the customer is in, sorted by segment id (one entry per segment; for a
    /// list, the earliest `addedAt` of the memberships the customer owns).
    func memberships(of customer: CustomerID) throws -> [SegmentMembership]
    /// The ids of the dynamic segments and lists the customer is in: ``memberships(of:)`` without the times, which
    /// a backend may find faster (segment refreshes ask it after every change of a customer).
    func segmentIDs(of customer: CustomerID) throws -> Set<SegmentID>
    /// Members of a dynamic segment or a list, sorted by customer id, after `after`.
    func members(of segment: SegmentID, after: CustomerID?, limit: Int) throws -> [SegmentMembership]
    /// The list memberships the customer owns now (with their homes).
    func listMemberships(ownedBy customer: CustomerID) throws -> [ListMembershipRecord]

    func rule(_ id: RuleID) throws -> Rule?
    /// Every rule, sorted by id.
    func rules() throws -> [Rule]
    /// A stored version of a rule's definition.
    func ruleDefinition(_ id: RuleID, version: Int64) throws -> RuleDefinition?
    func run(_ id: RunID) throws -> RuleRun?
    func runs(_ query: RunQuery) throws -> [RuleRun]
    /// The newest waiting run (by creation time, then id) of a rule for a customer, if there is one. (A merge hands
    /// the absorbed customer's runs to the survivor, cancelling duplicates; a file written before merges did may
    /// hold more than one per merged customer until they resume.)
    func waitingRun(rule: RuleID, customer: CustomerID) throws -> RuleRun?
    /// The newest run (by creation time, then id) of a rule for a customer, whatever its status.
    func latestRun(rule: RuleID, customer: CustomerID) throws -> RuleRun?
    func ruleCounter(rule: RuleID, customer: CustomerID) throws -> RuleCounter?
    /// How many runs of the rule fired on a UTC day (days since the epoch).
    func ruleFiredCount(rule: RuleID, day: Int64) throws -> Int64

    func job(_ key: String) throws -> ScheduledJob?
    /// Jobs due at or before `time`, by (due, key).
    func dueJobs(at time: Timestamp, limit: Int) throws -> [ScheduledJob]
    /// When the earliest job is due.
    func nextJobDue() throws -> Timestamp?

    func outboxEntry(_ id: OutboxEntryID) throws -> OutboxEntry?
    func outboxEntry(idempotencyKey: String) throws -> OutboxEntry?
    func outboxEntries(_ query: OutboxQuery) throws -> [OutboxEntry]
    /// Entries a consumer may take now, by sequence, after `after`: for each customer, the oldest open entry, if it
    /// is pending (or its lease expired) and available by `time`.
    func deliverableOutboxEntries(at time: Timestamp, after: Int64, limit: Int) throws -> [OutboxEntry]
    /// The sequence of `customer`'s oldest open (pending or leased) entry, if any.
    func firstOpenOutboxSequence(of customer: CustomerID) throws -> Int64?
}

/// The automation writes of a transaction.
public protocol AutomationWriter: AutomationReader {
    /// Moves ``definitionsVersion()`` to a new value; call in every transaction that changes a definition.
    func bumpDefinitionsVersion() throws

    /// Adds or replaces an event type's declaration.
    func putEventTypeDefinition(_ definition: EventTypeDefinition) throws

    /// Throws `alreadyExists` for a used id or key.
    func insertSegment(_ segment: Segment) throws
    func updateSegment(_ segment: Segment) throws
    /// Deletes the segment and its memberships.
    func deleteSegment(_ id: SegmentID) throws
    /// Throws `alreadyExists` when the customer is a member already.
    func insertDynamicMembership(_ membership: SegmentMembership) throws
    func deleteDynamicMembership(segment: SegmentID, customer: CustomerID) throws
    /// Every dynamic membership of the customer.
    func deleteDynamicMemberships(of customer: CustomerID) throws
    /// Throws `alreadyExists` when the list holds this home customer already.
    func insertListMembership(_ record: ListMembershipRecord) throws
    /// Removes every membership of the list the customer owns; returns how many there were.
    func deleteListMemberships(segment: SegmentID, customer: CustomerID) throws -> Int

    func insertRule(_ rule: Rule) throws
    func updateRule(_ rule: Rule) throws
    /// Deletes the rule, its stored versions and counters (its runs stay, for the record).
    func deleteRule(_ id: RuleID) throws
    func insertRuleDefinition(_ definition: RuleDefinition, rule: RuleID, version: Int64) throws
    func insertRun(_ run: RuleRun) throws
    func updateRun(_ run: RuleRun) throws
    func putRuleCounter(_ counter: RuleCounter) throws
    func incrementRuleFiredCount(rule: RuleID, day: Int64) throws

    /// Adds a job, or moves the pending job with the same key.
    func putJob(_ job: ScheduledJob) throws
    func deleteJob(_ key: String) throws
    /// Deletes every job whose key starts with `prefix`.
    func deleteJobs(keyPrefix prefix: String) throws

    /// Throws `alreadyExists` for a used id or idempotency key.
    func insertOutboxEntry(_ entry: OutboxEntry) throws
    func updateOutboxEntry(_ entry: OutboxEntry) throws

    /// Forgets runs that ended (not waiting) before `time`.
    func deleteRuns(endedBefore time: Timestamp) throws
    /// Forgets delivered and failed entries last changed before `time`.
    func deleteOutboxEntries(closedBefore time: Timestamp) throws
}

extension AutomationReader {
    /// The reference answer, from ``memberships(of:)``.
    public func segmentIDs(of customer: CustomerID) throws -> Set<SegmentID> {
        Set(try memberships(of: customer).map(\.segmentID))
    }

    /// ``deliverableOutboxEntries(at:after:limit:)`` from the first.
    public func deliverableOutboxEntries(at time: Timestamp, limit: Int) throws -> [OutboxEntry] {
        try deliverableOutboxEntries(at: time, after: 0, limit: limit)
    }
}
