public import Logging
public import RapportCore
import Synchronization

/// The Rapport engine: every use case of the CRM over one storage backend.
///
/// It is the public library API. Pick a backend, a clock and (optionally) an id generator:
///
/// ```swift
/// let crm = RapportEngine(store: try SQLiteStore(path: "crm.sqlite"))
/// let ada = try await crm.createCustomer(NewCustomer(
///     profile: CustomerProfile(givenName: "Ada"), identities: [.email("ada@example.com")]))
/// ```
///
/// Every method throws ``RapportError``. A method that changes data runs in one storage transaction, and a call that
/// throws changed nothing; except that creating or changing a segment or rule commits it first and then builds its
/// membership or plans its dates in transactions of their own (a store that fails then is caught up by the
/// scheduler), and running due jobs or advancing a manual clock runs each job in its own transaction.
public final class RapportEngine: Sendable {
    /// The storage backend.
    public let store: any Store
    /// Where the engine reads the time.
    public let clock: any RapportClock
    let ids: any IDGenerator
    let normalizer: IdentityNormalizer
    let logger: Logger
    let changeNotifier = ChangeNotifier()
    /// How automation reads time zones and how long it keeps its records.
    public let automationSettings: AutomationSettings
    let catalogs = CatalogCache()
    /// Recently authenticated secrets by hash, with the time until which the answer holds, and how many revocations
    /// there were (an answer read before a revocation is not cached after it).
    let authenticated = Mutex<(cache: [String: (key: APIKey, until: Timestamp)], revocations: Int)>(([:], 0))

    /// An engine over `store`.
    ///
    /// - Parameters:
    ///   - store: the backend (`MemoryStore`, `SQLiteStore`).
    ///   - clock: the time source; inject a `ManualClock` in tests.
    ///   - ids: the id generator; sortable random ids by default.
    ///   - defaultPhoneRegion: ISO 3166 code of the region whose national phone format is assumed (`US`); one of
    ///     `PhoneRegion.all` (another is read as `US`, with a warning in the log).
    ///   - logger: where the engine logs; it never bootstraps logging itself.
    ///   - automation: the default time zone of customers without one, and how long runs and delivered outbox
    ///     entries are kept.
    public init(
        store: any Store, clock: any RapportClock = SystemClock(), ids: any IDGenerator = SortableRandomIDGenerator(),
        defaultPhoneRegion: String = "US", logger: Logger = Logger(label: "rapport"), automation: AutomationSettings = AutomationSettings()
    ) {
        self.store = store
        self.clock = clock
        self.ids = ids
        self.normalizer = IdentityNormalizer(defaultRegion: defaultPhoneRegion)
        self.logger = logger
        if PhoneRegion.byCode[defaultPhoneRegion.uppercased()] == nil {
            logger.warning("default phone region '\(defaultPhoneRegion)' has no numbering plan in Rapport: national numbers are read as US ones")
        }
        self.automationSettings = automation
    }

    /// Runs a write transaction, turning any non-Rapport error into ``RapportError/storage(_:)``.
    func write<T: Sendable>(_ body: @Sendable @escaping (any StoreWriter) throws -> T) async throws(RapportError) -> T {
        do {
            return try await store.write(body)
        } catch let error as RapportError {
            throw error
        } catch {
            throw .storage(String(describing: error))
        }
    }

    /// Runs a read transaction, turning any non-Rapport error into ``RapportError/storage(_:)``.
    func read<T: Sendable>(_ body: @Sendable @escaping (any StoreReader) throws -> T) async throws(RapportError) -> T {
        do {
            return try await store.read(body)
        } catch let error as RapportError {
            throw error
        } catch {
            throw .storage(String(describing: error))
        }
    }

    /// ``read(_:)`` for a short body (a bounded number of rows), through ``Store/quickRead(_:)``.
    func quickRead<T: Sendable>(_ body: @Sendable @escaping (any StoreReader) throws -> T) async throws(RapportError) -> T {
        do {
            return try await store.quickRead(body)
        } catch let error as RapportError {
            throw error
        } catch {
            throw .storage(String(describing: error))
        }
    }

    /// Normalizes raw identities, naming `parent[i]` in errors, and drops duplicates (first one wins).
    func normalize(_ inputs: [IdentityInput], parent: String) throws(RapportError) -> [Identity] {
        try normalizeIndexed(inputs, parent: parent).map(\.identity)
    }

    /// ``normalize(_:parent:)`` with each identity's position in `inputs`, for errors about it later.
    func normalizeIndexed(_ inputs: [IdentityInput], parent: String) throws(RapportError) -> [(index: Int, identity: Identity)] {
        var validator = Validator()
        var result: [(index: Int, identity: Identity)] = []
        var seen = Set<Identity>()
        for (index, input) in inputs.enumerated() {
            let identity: Identity
            do {
                identity = try normalizer.normalize(kind: input.kind, source: input.source, value: input.value, field: "value")
            } catch {
                // The field's full name is spelled out only for an error.
                validator.capture("\(parent)[\(index)]") { () throws(RapportError) in throw error }
                continue
            }
            if inputs.count == 1 || seen.insert(identity).inserted {
                result.append((index, identity))
            }
        }
        try validator.check()
        return result
    }
}

extension StoreReader {
    /// The active customer `id` resolves to: itself, or the survivor it was merged into.
    func activeCustomer(_ id: CustomerID) throws -> CustomerRecord {
        var current = id
        for _ in 0..<256 {
            guard let record = try customer(current) else { throw RapportError.notFound(entity: "customer", id: id.rawValue) }
            guard let survivor = record.mergedInto else { return record }
            current = survivor
        }
        throw RapportError.storage("merge chain of \(id) is longer than 256 or cyclic")
    }

    /// The stored record of `identity`: under its own value, or under the spelling an older version stored the
    /// same phone number with (see ``IdentityNormalizer/legacySpelling(of:)``). With `customer`, the one it owns
    /// (an older version may have stored both spellings, for two customers).
    func storedIdentity(_ identity: Identity, ownedBy customer: CustomerID? = nil) throws -> IdentityRecord? {
        // The current spelling first, without building a list: this is every ingested item's identity lookup.
        if let found = try self.identity(identity), customer == nil || found.customerID == customer { return found }
        guard let legacy = IdentityNormalizer.legacySpelling(of: identity), let found = try self.identity(legacy),
              customer == nil || found.customerID == customer else { return nil }
        return found
    }

    /// The public view of a stored customer.
    func assemble(_ record: CustomerRecord) throws -> Customer {
        Customer(
            id: record.id, profile: record.profile, identities: try identities(of: record.id).map(\.identity),
            createdAt: record.createdAt, updatedAt: record.updatedAt, version: record.version)
    }

    /// Every order a customer owns.
    func allOrders(of customer: CustomerID) throws -> [Order] {
        try orders(of: customer, before: nil, limit: Int.max).map(\.order)
    }

    /// The aggregates of a customer computed from what it owns.
    func computeStats(of customer: CustomerID) throws -> CustomerStats {
        CustomerStats.compute(customerID: customer, orders: try allOrders(of: customer), events: try eventSummary(of: customer))
    }
}

extension Customer {
    /// Checks an `If-Match` style etag (`"3"` or `3`) of customer `requested` against `record`, the active customer
    /// it resolved to. A customer merged since the etag was read no longer matches: its etag named a customer that is
    /// now part of another, whose own version may happen to be the same number.
    static func check(etag: String?, of requested: CustomerID, against record: CustomerRecord) throws(RapportError) {
        guard let etag, !etag.isEmpty else { return }
        let bare = etag.filter { $0 != "\"" && $0 != " " }
        guard let version = Int64(bare) else { throw .invalid("etag", "'\(etag)' is not an etag returned by Rapport") }
        guard record.id == requested else {
            throw .etagMismatch(
                entity: "customer", id: requested.rawValue, expected: etag, actual: "\"\(record.version)\" of \(record.id), which it was merged into")
        }
        guard version == record.version else {
            throw .etagMismatch(entity: "customer", id: record.id.rawValue, expected: etag, actual: "\"\(record.version)\"")
        }
    }
}
