import Foundation
import GRDB
import RapportCore

/// The reads and writes of one transaction, over the GRDB connection that runs it.
///
/// Made for one `read` or `write` body and valid only inside it. Every statement is a cached prepared statement
/// with explicit columns, decoded by column index: no record reflection on the hot paths.
final class SQLiteTransaction: StoreWriter {
    let db: Database
    // One coder per transaction: creating them is not free, and they are not shared across threads.
    lazy var encoder = JSONEncoder()
    lazy var decoder = JSONDecoder()

    init(_ db: Database) {
        self.db = db
    }

    // MARK: Helpers

    /// Runs `body`, turning any failure that is not a `RapportError` (a `DatabaseError`, a JSON column that does
    /// not decode) into ``RapportError/storage(_:)``: the protocol's methods throw only `RapportError`.
    @inline(__always)
    func guarded<T>(_ body: () throws -> T) throws(RapportError) -> T {
        do {
            return try body()
        } catch let error as RapportError {
            throw error
        } catch {
            throw .storage(String(describing: error))
        }
    }

    func execute(_ sql: String, _ arguments: StatementArguments = StatementArguments()) throws {
        try guarded { try db.cachedStatement(sql: sql).execute(arguments: arguments) }
    }

    /// Runs a write statement and returns how many rows it changed.
    func changes(_ sql: String, _ arguments: StatementArguments) throws -> Int {
        try execute(sql, arguments)
        return db.changesCount
    }

    func fetchOne<T>(_ sql: String, _ arguments: StatementArguments, _ decode: (ColumnRow) throws -> T) throws -> T? {
        try first(sql, .arguments(arguments), decode)
    }

    func fetchAll<T>(_ sql: String, _ arguments: StatementArguments, _ decode: (ColumnRow) throws -> T) throws -> [T] {
        try all(sql, .arguments(arguments), decode)
    }

    /// ``fetchOne(_:_:_:)`` for a read-only statement whose parameters are a text (and an integer), bound straight
    /// through SQLite: the reads of one customer's rows, by far the most frequent.
    func fetchOne<T>(_ sql: String, text: String, int: Int64? = nil, _ decode: (ColumnRow) throws -> T) throws -> T? {
        try first(sql, .text(text, int), decode)
    }

    /// ``fetchAll(_:_:_:)`` for a read-only statement whose parameters are a text (and an integer).
    func fetchAll<T>(_ sql: String, text: String, int: Int64? = nil, _ decode: (ColumnRow) throws -> T) throws -> [T] {
        try all(sql, .text(text, int), decode)
    }

    /// How a statement's parameters are bound: through GRDB's arguments, or a text (and an integer) straight.
    private enum Bindings {
        case arguments(StatementArguments)
        case text(String, Int64?)
    }

    private func forEachRow(_ sql: String, _ bindings: Bindings, _ row: (ColumnRow) throws -> Bool) throws {
        let statement = try db.cachedStatement(sql: sql)
        switch bindings {
        case .arguments(let arguments): try db.forEachRow(statement, arguments, row)
        case .text(let text, let int): try db.forEachRow(statement, text: text, int: int, row)
        }
    }

    private func first<T>(_ sql: String, _ bindings: Bindings, _ decode: (ColumnRow) throws -> T) throws -> T? {
        try guarded {
            var result: T?
            try forEachRow(sql, bindings) { row in
                result = try decode(row)
                return false
            }
            return result
        }
    }

    private func all<T>(_ sql: String, _ bindings: Bindings, _ decode: (ColumnRow) throws -> T) throws -> [T] {
        try guarded {
            var result: [T] = []
            result.reserveCapacity(8)
            try forEachRow(sql, bindings) { row in
                result.append(try decode(row))
                return true
            }
            return result
        }
    }

    func exists(_ sql: String, _ arguments: StatementArguments) throws -> Bool {
        try fetchOne(sql, arguments) { _ in true } ?? false
    }

    func json(_ value: some Encodable) throws -> String {
        try guarded { String(decoding: try encoder.encode(value), as: UTF8.self) }
    }

    /// Decodes a JSON column; only called inside `fetchOne`/`fetchAll`, which turn its errors into storage errors.
    func decodeJSON<T: Decodable>(_ type: T.Type, _ row: ColumnRow, _ index: Int) throws -> T {
        try row.withUnsafeBytes(atIndex: index) { bytes in
            guard let bytes else { throw RapportError.storage("unexpected NULL JSON in column \(index)") }
            let data = bytes.baseAddress.map { Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: $0), count: bytes.count, deallocator: .none) } ?? Data()
            return try decoder.decode(T.self, from: data)
        }
    }

    /// Reads a hot JSON column with one of ``ColumnJSON``'s readers.
    func decodeColumn<T>(_ row: ColumnRow, _ index: Int, _ read: (inout JSONScanner) throws -> T) throws -> T {
        try row.withUnsafeBytes(atIndex: index) { bytes in
            guard let bytes else { throw RapportError.storage("unexpected NULL JSON in column \(index)") }
            return try JSONScanner.read(bytes, read)
        }
    }

    func decodeEnum<E: RawRepresentable<String>>(_ type: E.Type, _ row: ColumnRow, _ index: Int) throws -> E {
        let text = try row.decode(String.self, atIndex: index)
        guard let value = E(rawValue: text) else { throw RapportError.storage("unknown \(E.self) '\(text)' in the database") }
        return value
    }

    func time(_ row: ColumnRow, _ index: Int) throws -> Timestamp {
        Timestamp(millisecondsSinceEpoch: try row.decode(Int64.self, atIndex: index))
    }

    func optionalTime(_ row: ColumnRow, _ index: Int) throws -> Timestamp? {
        try row.decode(Int64?.self, atIndex: index).map(Timestamp.init(millisecondsSinceEpoch:))
    }

    /// The arguments of a timeline page that resumes strictly before `position` (`SQL.eventsBefore`...).
    static func arguments(_ customer: CustomerID, _ position: TimelinePosition, _ limit: Int) -> StatementArguments {
        [customer.rawValue, position.time.millisecondsSinceEpoch, position.time.millisecondsSinceEpoch, position.sequence, max(0, limit)]
    }

    // MARK: Sequence

    func currentSequence() throws -> Int64 {
        try fetchOne("SELECT value FROM meta WHERE key = 'sequence'", []) { try $0.decode(Int64.self, atIndex: 0) } ?? 0
    }

    // MARK: Customers

    static let customerColumns = "id, merged_into, merge_id, profile, field_times, created_at, updated_at, version"

    func decodeCustomer(_ row: ColumnRow) throws -> CustomerRecord {
        CustomerRecord(
            id: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 0)),
            profile: try decodeColumn(row, 3, ColumnJSON.readProfile),
            fieldTimes: try decodeColumn(row, 4, ColumnJSON.readTimes),
            state: CustomerState(mergedInto: try row.decode(String?.self, atIndex: 1), mergeID: try row.decode(String?.self, atIndex: 2)),
            createdAt: try time(row, 5),
            updatedAt: try time(row, 6),
            version: try row.decode(Int64.self, atIndex: 7)
        )
    }

    func customer(_ id: CustomerID) throws -> CustomerRecord? {
        try fetchOne(SQL.customerByID, text: id.rawValue, decodeCustomer)
    }

    func customers(_ query: CustomerQuery) throws -> [CustomerRecord] {
        let column = switch query.order.key {
        case .createdAt: "created_at"
        case .updatedAt: "updated_at"
        }
        let direction = query.order.descending ? "DESC" : "ASC"
        var sql = "SELECT \(Self.customerColumns) FROM customers WHERE state = 'active'"
        var arguments = StatementArguments()
        let filter = query.filter
        // Lists travel as JSON arrays: one statement text (kept in the statement cache) for any number of tags or
        // stages, rather than one per count a caller sends, which the cache would keep for good.
        let tags = Array(Set(filter.tags)).sorted()
        if !tags.isEmpty {
            sql += " AND (SELECT count(*) FROM customer_tags WHERE customer_id = customers.id AND tag IN (SELECT value FROM json_each(?))) = ?"
            arguments += [try json(tags), tags.count]
        }
        if !filter.lifecycleStages.isEmpty {
            sql += " AND lifecycle_stage IN (SELECT value FROM json_each(?))"
            arguments += [try json(Array(Set(filter.lifecycleStages.map(\.rawValue))).sorted())]
        }
        if let createdFrom = filter.createdFrom {
            sql += " AND created_at >= ?"
            arguments += [createdFrom.millisecondsSinceEpoch]
        }
        if let createdBefore = filter.createdBefore {
            sql += " AND created_at < ?"
            arguments += [createdBefore.millisecondsSinceEpoch]
        }
        if let updatedFrom = filter.updatedFrom {
            sql += " AND updated_at >= ?"
            arguments += [updatedFrom.millisecondsSinceEpoch]
        }
        if let cursor = query.after {
            sql += " AND (\(column), id) \(query.order.descending ? "<" : ">") (?, ?)"
            arguments += [cursor.value, cursor.id.rawValue]
        }
        sql += " ORDER BY \(column) \(direction), id \(direction) LIMIT ?"
        arguments += [max(0, query.limit)]
        return try fetchAll(sql, arguments, decodeCustomer)
    }

    func customerCount() throws -> Int {
        try fetchOne("SELECT count(*) FROM customers WHERE state = 'active'", []) { try $0.decode(Int.self, atIndex: 0) } ?? 0
    }

    func stats(of customer: CustomerID) throws -> CustomerStats? {
        try fetchOne(
            "SELECT order_count, spent, first_order_at, last_order_at, event_count, last_seen_at FROM customer_stats WHERE customer_id = ?",
            text: customer.rawValue
        ) { row in
            CustomerStats(
                customerID: customer,
                orderCount: try row.decode(Int64.self, atIndex: 0),
                spent: try decodeColumn(row, 1, ColumnJSON.readTotals),
                firstOrderAt: try optionalTime(row, 2),
                lastOrderAt: try optionalTime(row, 3),
                eventCount: try row.decode(Int64.self, atIndex: 4),
                lastSeenAt: try optionalTime(row, 5)
            )
        }
    }

    // MARK: Identities

    static let identityColumns = "kind, source, value, customer_id, home_customer_id, created_at"

    func decodeIdentity(_ row: ColumnRow) throws -> IdentityRecord {
        IdentityRecord(
            identity: Identity(kind: try decodeEnum(IdentityKind.self, row, 0), source: try row.decode(String.self, atIndex: 1), value: try row.decode(String.self, atIndex: 2)),
            customerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 3)),
            homeCustomerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 4)),
            createdAt: try time(row, 5)
        )
    }

    func identity(_ identity: Identity) throws -> IdentityRecord? {
        try fetchOne(SQL.identityByKey, text: identity.key, decodeIdentity)
    }

    func identities(of customer: CustomerID) throws -> [IdentityRecord] {
        try fetchAll(SQL.identitiesOfCustomer, text: customer.rawValue, decodeIdentity)
    }

    // MARK: Events

    static let eventColumns = "sequence, id, customer_id, home_customer_id, type, occurred_at, received_at, channel, identities, properties"

    func decodeEvent(_ row: ColumnRow) throws -> EventRecord {
        let event = Event(
            id: try row.decode(String.self, atIndex: 1),
            type: try row.decode(String.self, atIndex: 4),
            occurredAt: try time(row, 5),
            channel: try decodeEnum(Channel.self, row, 7),
            identities: try decodeColumn(row, 8, ColumnJSON.readIdentities),
            properties: try decodeColumn(row, 9, ColumnJSON.readAttributes),
            customerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 2)),
            receivedAt: try time(row, 6)
        )
        return EventRecord(
            event: event, homeCustomerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 3)),
            sequence: try row.decode(Int64.self, atIndex: 0)
        )
    }

    func event(id: String) throws -> EventRecord? {
        try fetchOne(SQL.eventByID, text: id, decodeEvent)
    }

    func events(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [EventRecord] {
        guard let before else { return try fetchAll(SQL.eventsNewest, text: customer.rawValue, int: Int64(max(0, limit)), decodeEvent) }
        return try fetchAll(SQL.eventsBefore, Self.arguments(customer, before, limit), decodeEvent)
    }

    func eventSummary(of customer: CustomerID) throws -> EventSummary {
        // Events rules emitted (``Event/isEmittedByRule``) are left out: all the customer's events (counted in their
        // index) less the emitted ones (in theirs), and the latest walking the index back from the newest.
        let all = try fetchOne("SELECT count(*) FROM events WHERE customer_id = ?", text: customer.rawValue) { try $0.decode(Int64.self, atIndex: 0) } ?? 0
        guard all > 0 else { return EventSummary(count: 0, lastOccurredAt: nil) }
        let emitted =
            try fetchOne("SELECT count(*) FROM events WHERE customer_id = ? AND identities = '[]' AND id GLOB 'run_*'", text: customer.rawValue) {
                try $0.decode(Int64.self, atIndex: 0)
            } ?? 0
        guard emitted < all else { return EventSummary(count: 0, lastOccurredAt: nil) }
        let latest = try fetchOne(
            "SELECT occurred_at FROM events WHERE customer_id = ? AND NOT (identities = '[]' AND id GLOB 'run_*') ORDER BY occurred_at DESC LIMIT 1",
            text: customer.rawValue
        ) { try optionalTime($0, 0) } ?? nil
        return EventSummary(count: all - emitted, lastOccurredAt: latest)
    }

    // MARK: Orders

    static let orderColumns = "sequence, id, source, external_id, channel, customer_id, home_customer_id, status, currency, placed_at, updated_at, details"

    func decodeOrder(_ row: ColumnRow) throws -> OrderRecord {
        let details = try decodeColumn(row, 11, ColumnJSON.readOrderDetails)
        let currencyCode = try row.decode(String.self, atIndex: 8)
        let currency: CurrencyCode
        do {
            currency = try CurrencyCode(currencyCode)
        } catch {
            throw RapportError.storage("unknown currency '\(currencyCode)' in the database")
        }
        let order = Order(
            id: OrderID(uncheckedRawValue: try row.decode(String.self, atIndex: 1)),
            key: OrderKey(source: try row.decode(String.self, atIndex: 2), externalID: try row.decode(String.self, atIndex: 3)),
            channel: try decodeEnum(Channel.self, row, 4),
            customerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 5)),
            identities: details.identities,
            lines: details.lines,
            currency: currency,
            subtotal: details.subtotal,
            discount: details.discount,
            shipping: details.shipping,
            tax: details.tax,
            total: details.total,
            status: try decodeEnum(OrderStatus.self, row, 7),
            statusHistory: details.statusHistory,
            placedAt: try time(row, 9),
            updatedAt: try time(row, 10)
        )
        return OrderRecord(
            order: order, homeCustomerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 6)),
            sequence: try row.decode(Int64.self, atIndex: 0)
        )
    }

    func order(_ id: OrderID) throws -> OrderRecord? {
        try fetchOne(SQL.orderByID, text: id.rawValue, decodeOrder)
    }

    func order(key: OrderKey) throws -> OrderRecord? {
        try fetchOne(SQL.orderByKey, [key.source, key.externalID], decodeOrder)
    }

    func orders(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [OrderRecord] {
        guard let before else { return try fetchAll(SQL.ordersNewest, text: customer.rawValue, int: Int64(max(0, limit)), decodeOrder) }
        return try fetchAll(SQL.ordersBefore, Self.arguments(customer, before, limit), decodeOrder)
    }

    // MARK: Interactions

    static let interactionColumns = "sequence, id, customer_id, home_customer_id, channel, direction, subject, summary, agent, occurred_at"

    func decodeInteraction(_ row: ColumnRow) throws -> InteractionRecord {
        let interaction = Interaction(
            id: InteractionID(uncheckedRawValue: try row.decode(String.self, atIndex: 1)),
            customerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 2)),
            channel: try decodeEnum(InteractionChannel.self, row, 4),
            direction: try decodeEnum(InteractionDirection.self, row, 5),
            subject: try row.decode(String.self, atIndex: 6),
            summary: try row.decode(String.self, atIndex: 7),
            agent: try row.decode(String.self, atIndex: 8),
            occurredAt: try time(row, 9)
        )
        return InteractionRecord(
            interaction: interaction, homeCustomerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 3)),
            sequence: try row.decode(Int64.self, atIndex: 0)
        )
    }

    func interaction(_ id: InteractionID) throws -> InteractionRecord? {
        try fetchOne(SQL.interactionByID, [id.rawValue], decodeInteraction)
    }

    func interactions(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [InteractionRecord] {
        guard let before else { return try fetchAll(SQL.interactionsNewest, text: customer.rawValue, int: Int64(max(0, limit)), decodeInteraction) }
        return try fetchAll(SQL.interactionsBefore, Self.arguments(customer, before, limit), decodeInteraction)
    }

    // MARK: Consents

    static let consentColumns = "sequence, id, customer_id, home_customer_id, channel, purpose, status, source, occurred_at, recorded_at"

    func decodeConsent(_ row: ColumnRow) throws -> ConsentRecord {
        let consent = Consent(
            id: ConsentID(uncheckedRawValue: try row.decode(String.self, atIndex: 1)),
            customerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 2)),
            channel: try decodeEnum(ConsentChannel.self, row, 4),
            purpose: try decodeEnum(ConsentPurpose.self, row, 5),
            status: try decodeEnum(ConsentStatus.self, row, 6),
            source: try row.decode(String.self, atIndex: 7),
            occurredAt: try time(row, 8),
            recordedAt: try time(row, 9)
        )
        return ConsentRecord(
            consent: consent, homeCustomerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 3)),
            sequence: try row.decode(Int64.self, atIndex: 0)
        )
    }

    func consents(of customer: CustomerID) throws -> [ConsentRecord] {
        try fetchAll(SQL.consentsOfCustomer, text: customer.rawValue, decodeConsent)
    }

    // MARK: Merges and profile changes

    static let mergeColumns = "id, survivor_id, absorbed_id, sequence, merged_at, unmerged_at, details"

    func decodeMerge(_ row: ColumnRow) throws -> MergeRecord {
        let details = try decodeJSON(StoredMergeDetails.self, row, 6)
        return MergeRecord(
            id: MergeID(uncheckedRawValue: try row.decode(String.self, atIndex: 0)),
            survivorID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 1)),
            absorbedID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 2)),
            reason: try details.mergeReason(),
            mergedAt: try time(row, 4),
            sequence: try row.decode(Int64.self, atIndex: 3),
            survivorBefore: details.survivorBefore.record,
            absorbedBefore: details.absorbedBefore.record,
            absorbedSegments: details.memberships(of: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 2))),
            adoptedRuns: (details.adoptedRuns ?? []).map(RunID.init(uncheckedRawValue:)),
            unmergedAt: try optionalTime(row, 5)
        )
    }

    func merge(_ id: MergeID) throws -> MergeRecord? {
        try fetchOne(SQL.mergeByID, [id.rawValue], decodeMerge)
    }

    func merges(into survivor: CustomerID) throws -> [MergeRecord] {
        try fetchAll(SQL.mergesInto, text: survivor.rawValue, decodeMerge)
    }

    func merges(absorbed: CustomerID) throws -> [MergeRecord] {
        try fetchAll(SQL.mergesOf, text: absorbed.rawValue, decodeMerge)
    }

    func profileChanges(of customer: CustomerID, after sequence: Int64) throws -> [ProfileChange] {
        try fetchAll(
            "SELECT sequence, at, fields, profile FROM profile_changes WHERE customer_id = ? AND sequence > ? ORDER BY sequence, rowid",
            [customer.rawValue, sequence]
        ) { row in
            ProfileChange(
                customerID: customer,
                sequence: try row.decode(Int64.self, atIndex: 0),
                at: try time(row, 1),
                fields: Set(try decodeJSON([String].self, row, 2).map(CustomerField.init(path:))),
                profile: try decodeColumn(row, 3, ColumnJSON.readProfile)
            )
        }
    }

    // MARK: Attributes

    func attributeDefinitions() throws -> [AttributeDefinition] {
        try fetchAll("SELECT key, type, description FROM attribute_definitions ORDER BY key", []) { row in
            AttributeDefinition(
                key: try row.decode(String.self, atIndex: 0), type: try decodeEnum(AttributeType.self, row, 1),
                description: try row.decode(String.self, atIndex: 2)
            )
        }
    }
}

/// The text of the statements run most often, made once (a statement's text is the key of its cached statement).
enum SQL {
    static let customerByID = "SELECT \(SQLiteTransaction.customerColumns) FROM customers WHERE id = ?"
    static let identityByKey = "SELECT \(SQLiteTransaction.identityColumns) FROM identities WHERE key = ?"
    static let identitiesOfCustomer = "SELECT \(SQLiteTransaction.identityColumns) FROM identities WHERE customer_id = ? ORDER BY key"
    static let eventByID = "SELECT \(SQLiteTransaction.eventColumns) FROM events WHERE id = ?"
    static let orderByID = "SELECT \(SQLiteTransaction.orderColumns) FROM orders WHERE id = ?"
    static let orderByKey = "SELECT \(SQLiteTransaction.orderColumns) FROM orders WHERE source = ? AND external_id = ?"
    static let interactionByID = "SELECT \(SQLiteTransaction.interactionColumns) FROM interactions WHERE id = ?"
    static let consentsOfCustomer = "SELECT \(SQLiteTransaction.consentColumns) FROM consents WHERE customer_id = ? ORDER BY occurred_at, sequence"
    static let mergeByID = "SELECT \(SQLiteTransaction.mergeColumns) FROM merges WHERE id = ?"
    static let mergesInto = "SELECT \(SQLiteTransaction.mergeColumns) FROM merges WHERE survivor_id = ? ORDER BY sequence, rowid"
    static let mergesOf = "SELECT \(SQLiteTransaction.mergeColumns) FROM merges WHERE absorbed_id = ? ORDER BY sequence, rowid"
    static let eventsNewest = timeline("SELECT \(SQLiteTransaction.eventColumns) FROM events", time: "occurred_at", before: false)
    static let eventsBefore = timeline("SELECT \(SQLiteTransaction.eventColumns) FROM events", time: "occurred_at", before: true)
    static let ordersNewest = timeline("SELECT \(SQLiteTransaction.orderColumns) FROM orders", time: "placed_at", before: false)
    static let ordersBefore = timeline("SELECT \(SQLiteTransaction.orderColumns) FROM orders", time: "placed_at", before: true)
    static let interactionsNewest = timeline("SELECT \(SQLiteTransaction.interactionColumns) FROM interactions", time: "occurred_at", before: false)
    static let interactionsBefore = timeline("SELECT \(SQLiteTransaction.interactionColumns) FROM interactions", time: "occurred_at", before: true)

    /// A page of a customer's timeline rows, newest first: the first page, or the page `before` a position
    /// (arguments: customer, then time, time and sequence of the position, then the limit). `time <= ?` bounds the
    /// walk of the (customer, time) index, so a page deep in a long history starts where it is instead of at the
    /// newest row.
    private static func timeline(_ select: String, time column: String, before: Bool) -> String {
        select + " WHERE customer_id = ?" + (before ? " AND \(column) <= ? AND (\(column) < ? OR sequence < ?)" : "")
            + " ORDER BY \(column) DESC, sequence DESC LIMIT ?"
    }
}
