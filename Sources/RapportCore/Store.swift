/// A position in a newest-first listing of a customer's records: strictly older records come after it.
///
/// Records are ordered by time, then by the store-wide sequence number, both descending; sequence numbers are
/// unique across every kind of record, so a position names one place in a mixed timeline.
public struct TimelinePosition: Hashable, Comparable, Sendable, Codable {
    public var time: Timestamp
    public var sequence: Int64

    public init(time: Timestamp, sequence: Int64) {
        self.time = time
        self.sequence = sequence
    }

    public static func < (lhs: TimelinePosition, rhs: TimelinePosition) -> Bool {
        (lhs.time, lhs.sequence) < (rhs.time, rhs.sequence)
    }
}

/// Which customers to list.
public struct CustomerFilter: Hashable, Sendable {
    /// Customers that carry every one of these tags.
    public var tags: [String]
    /// Customers in one of these stages; empty means any.
    public var lifecycleStages: [LifecycleStage]
    /// Created at or after.
    public var createdFrom: Timestamp?
    /// Created strictly before.
    public var createdBefore: Timestamp?
    /// Updated at or after.
    public var updatedFrom: Timestamp?

    public init(tags: [String] = [], lifecycleStages: [LifecycleStage] = [], createdFrom: Timestamp? = nil, createdBefore: Timestamp? = nil, updatedFrom: Timestamp? = nil) {
        self.tags = tags
        self.lifecycleStages = lifecycleStages
        self.createdFrom = createdFrom
        self.createdBefore = createdBefore
        self.updatedFrom = updatedFrom
    }

    /// Whether `record` passes the filter (the reference semantics both backends follow).
    public func matches(_ record: CustomerRecord) -> Bool {
        if !tags.allSatisfy(record.profile.tags.contains) { return false }
        if !lifecycleStages.isEmpty {
            guard let stage = record.profile.lifecycleStage, lifecycleStages.contains(stage) else { return false }
        }
        if let createdFrom, record.createdAt < createdFrom { return false }
        if let createdBefore, record.createdAt >= createdBefore { return false }
        if let updatedFrom, record.updatedAt < updatedFrom { return false }
        return true
    }
}

/// The order of a customer listing. Ties are broken by id in the same direction.
public struct CustomerOrder: Hashable, Sendable {
    public enum Key: String, Hashable, Sendable, CaseIterable {
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public var key: Key
    public var descending: Bool

    public init(_ key: Key = .createdAt, descending: Bool = false) {
        self.key = key
        self.descending = descending
    }

    /// The sort value of `record` under this order.
    public func value(of record: CustomerRecord) -> Int64 {
        switch key {
        case .createdAt: record.createdAt.millisecondsSinceEpoch
        case .updatedAt: record.updatedAt.millisecondsSinceEpoch
        }
    }
}

/// Where a customer listing resumes: after the customer with this sort value and id.
public struct CustomerCursor: Hashable, Sendable, Codable {
    public var value: Int64
    public var id: CustomerID

    public init(value: Int64, id: CustomerID) {
        self.value = value
        self.id = id
    }
}

/// One page request over the active customers.
public struct CustomerQuery: Hashable, Sendable {
    public var filter: CustomerFilter
    public var order: CustomerOrder
    public var after: CustomerCursor?
    public var limit: Int

    public init(filter: CustomerFilter = CustomerFilter(), order: CustomerOrder = CustomerOrder(), after: CustomerCursor? = nil, limit: Int = 50) {
        self.filter = filter
        self.order = order
        self.after = after
        self.limit = limit
    }
}

/// A storage backend. Every read and write runs in one transaction; a write whose body throws changes nothing.
///
/// Bodies are synchronous: they run on the backend's own thread or lock and must not wait on anything else.
/// Both backends (`MemoryStore`, `SQLiteStore`) follow the same semantics, checked by one conformance suite, for
/// what the engine writes: sequence numbers taken from `allocateSequence` (each used once), text in Unicode NFC
/// without NUL, identities as `IdentityNormalizer` makes them. Writing other values directly, or writing through
/// the reader a read body is given, is outside that contract and the backends may differ on it.
public protocol Store: Sendable {
    /// Runs `body` in a read transaction that sees one consistent state.
    func read<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T
    /// Runs `body` in a write transaction: all of it commits, or, if it throws, none of it.
    func write<T: Sendable>(_ body: @Sendable (any StoreWriter) throws -> T) async throws -> T
    /// Runs a short `body` (a lookup, one customer's 360: a bounded number of rows) like ``read(_:)``, but on the
    /// caller's thread where the backend can, saving the hop to a thread of its own; scans belong in ``read(_:)``.
    ///
    /// The default runs ``read(_:)``.
    func quickRead<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T
    /// Makes what committed deletions removed unrecoverable from the files the backend keeps, where it keeps older
    /// copies of pages (SQLite: its write-ahead log is checkpointed and emptied). The engine calls it after an
    /// erasure; the default does nothing.
    func purgeDeletedData() async throws
}

extension Store {
    public func quickRead<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T {
        try await read(body)
    }

    public func purgeDeletedData() async throws {}
}

/// The reads one transaction can do.
///
/// Listings of owned records (`events`, `orders`, `interactions`) return newest first by (time, sequence).
public protocol StoreReader: AutomationReader {
    /// The last sequence number handed out (0 in an empty store).
    func currentSequence() throws -> Int64

    func customer(_ id: CustomerID) throws -> CustomerRecord?
    /// Active customers only, filtered, sorted and paged as the query says.
    func customers(_ query: CustomerQuery) throws -> [CustomerRecord]
    /// How many active customers there are.
    func customerCount() throws -> Int
    func stats(of customer: CustomerID) throws -> CustomerStats?

    func identity(_ identity: Identity) throws -> IdentityRecord?
    /// Identities owned by `customer` now, sorted by key.
    func identities(of customer: CustomerID) throws -> [IdentityRecord]

    func event(id: String) throws -> EventRecord?
    func events(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [EventRecord]
    /// How many events the customer owns and when the latest happened, leaving out those rules emitted
    /// (``Event/isEmittedByRule``).
    func eventSummary(of customer: CustomerID) throws -> EventSummary

    func order(_ id: OrderID) throws -> OrderRecord?
    func order(key: OrderKey) throws -> OrderRecord?
    func orders(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [OrderRecord]

    func interaction(_ id: InteractionID) throws -> InteractionRecord?
    func interactions(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [InteractionRecord]

    /// The consent history of `customer`, oldest first by (occurred at, sequence).
    func consents(of customer: CustomerID) throws -> [ConsentRecord]

    func merge(_ id: MergeID) throws -> MergeRecord?
    /// Every merge (standing or undone) whose survivor is `survivor`, by sequence.
    func merges(into survivor: CustomerID) throws -> [MergeRecord]
    /// Every merge (standing or undone) whose absorbed customer is `absorbed`, by sequence.
    func merges(absorbed: CustomerID) throws -> [MergeRecord]
    /// The profile changes of `customer` with a sequence greater than `sequence`, by sequence.
    func profileChanges(of customer: CustomerID, after sequence: Int64) throws -> [ProfileChange]

    /// The attribute schema, sorted by key.
    func attributeDefinitions() throws -> [AttributeDefinition]

    func apiKey(_ id: APIKeyID) throws -> APIKey?
    func apiKey(secretHash: String) throws -> APIKey?
    /// Every API key, revoked ones too, sorted by creation time then id.
    func apiKeys() throws -> [APIKey]

    func idempotencyRecord(_ key: String) throws -> IdempotencyRecord?

    /// Up to `limit` changes with a cursor greater than `cursor`, oldest first.
    func changes(after cursor: Int64, limit: Int) throws -> [Change]
    /// The cursor of the newest change (0 when there is none).
    func latestChangeCursor() throws -> Int64
    /// The cursor of the oldest change kept (nil when there is none): older ones were forgotten.
    func oldestChangeCursor() throws -> Int64?
}

/// The writes one transaction can do, on top of its reads.
///
/// Inserts throw ``RapportError/alreadyExists(entity:id:)`` on a duplicate key; updates and deletes throw
/// ``RapportError/notFound(entity:id:)`` when the row is missing.
public protocol StoreWriter: StoreReader, AutomationWriter {
    /// Hands out `count` new sequence numbers and returns the first.
    func allocateSequence(_ count: Int) throws -> Int64

    func insertCustomer(_ record: CustomerRecord) throws
    func updateCustomer(_ record: CustomerRecord) throws
    /// Deletes the customer and everything it owns now: identities, events, orders, interactions, consents,
    /// stats, profile changes, the merges it took part in, its segment and list memberships, its rule runs and
    /// counters, its jobs and its outbox entries (delivered and failed ones too).
    func deleteCustomer(_ id: CustomerID) throws
    func putStats(_ stats: CustomerStats) throws

    func insertIdentity(_ record: IdentityRecord) throws
    func deleteIdentity(_ identity: Identity) throws

    func insertEvent(_ record: EventRecord) throws
    func insertOrder(_ record: OrderRecord) throws
    /// Replaces the stored order with the same id.
    func updateOrder(_ record: OrderRecord) throws
    func insertInteraction(_ record: InteractionRecord) throws
    func insertConsent(_ record: ConsentRecord) throws

    /// Moves everything `from` owns now (identities, events, orders, interactions, consents, list memberships)
    /// to `to`.
    func reassignAll(from: CustomerID, to: CustomerID) throws
    /// Moves what `owner` owns now and whose home is one of `homes` to `to`.
    func reassign(owner: CustomerID, homes: Set<CustomerID>, to: CustomerID) throws
    /// Moves one event to another owner, which becomes its home too (an unmerge hands a record over for good).
    func setOwner(ofEvent id: String, to customer: CustomerID) throws
    /// Moves one order to another owner, which becomes its home too.
    func setOwner(ofOrder id: OrderID, to customer: CustomerID) throws
    /// Replaces the identities an event was sent with (an erasure takes the erased person's out of another's event).
    func setIdentities(ofEvent id: String, to identities: [Identity]) throws

    func insertMerge(_ record: MergeRecord) throws
    func updateMerge(_ record: MergeRecord) throws
    func appendProfileChange(_ change: ProfileChange) throws
    /// Replaces the logged change of `change.customerID` numbered `change.sequence` (an unmerge rewrites what was
    /// logged while the absorbed side was held, without it).
    /// - Throws: `notFound` when that customer logged no change with that number.
    func updateProfileChange(_ change: ProfileChange) throws

    /// Adds or replaces a declared attribute.
    func putAttributeDefinition(_ definition: AttributeDefinition) throws

    func insertAPIKey(_ key: APIKey) throws
    func updateAPIKey(_ key: APIKey) throws

    /// Stores a request's outcome; throws `alreadyExists` for a key already stored.
    func insertIdempotencyRecord(_ record: IdempotencyRecord) throws
    /// Forgets the outcomes stored before `time`.
    func deleteIdempotencyRecords(before time: Timestamp) throws
    /// Empties the stored responses that contain `text` (UTF-8), keeping their keys and fingerprints: an erased
    /// customer's id, so that no copy of its data outlives it while a retry is still recognised. With `createdIn`,
    /// only those stored in that time range (both ends included).
    func redactIdempotencyRecords(mentioning text: String, createdIn: ClosedRange<Timestamp>?) throws

    /// Forgets the oldest changes, up to the first one made at `time` or later and at most `limit` of them, always
    /// keeping the newest one (whose cursor the next change follows). Returns how many it forgot.
    func deleteChanges(before time: Timestamp, limit: Int) throws -> Int

    /// Appends a change to the feed and returns its cursor. The cursors of committed changes strictly increase.
    func appendChange(kind: ChangeKind, customerID: CustomerID, otherCustomerID: CustomerID?, mergeID: MergeID?, segmentID: SegmentID?, at: Timestamp)
        throws -> Int64
}

extension StoreWriter {
    /// Empties every stored response that contains `text`, whenever it was stored.
    public func redactIdempotencyRecords(mentioning text: String) throws {
        try redactIdempotencyRecords(mentioning: text, createdIn: nil)
    }

    /// Appends a change that names no segment.
    public func appendChange(kind: ChangeKind, customerID: CustomerID, otherCustomerID: CustomerID?, mergeID: MergeID?, at: Timestamp) throws -> Int64 {
        try appendChange(kind: kind, customerID: customerID, otherCustomerID: otherCustomerID, mergeID: mergeID, segmentID: nil, at: at)
    }
}
