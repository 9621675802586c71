import Foundation
import GRDBSQLite
import Rapport
import RapportCore

// The raw SQLite limit for event ingest: the same rows Rapport writes, into tables with Rapport's schema and
// indexes, through plain prepared statements of the sqlite3 C API, one transaction per batch. No Swift model, no
// validation, no JSON encoding (the JSON text is prepared beforehand), no async hop.

/// A bare sqlite3 connection, opened with the pragmas `SQLiteStore` uses.
final class RawConnection {
    let handle: OpaquePointer

    init(path: String) throws {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &handle, flags, nil) == SQLITE_OK, let handle else {
            throw BenchmarkFailure("cannot open \(path)")
        }
        self.handle = handle
        // SQLiteStore's settings: WAL, synchronous NORMAL, a 64 MiB cache, 256 MiB of mmap.
        try execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456")
    }

    deinit { sqlite3_close_v2(handle) }

    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &message) == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(message)
            throw BenchmarkFailure("\(text) in: \(sql.prefix(120))")
        }
    }

    func prepare(_ sql: String) throws -> RawStatement { try RawStatement(self, sql) }

    var errorMessage: String { String(cString: sqlite3_errmsg(handle)) }
}

/// A prepared statement, reset and rebound for every row.
final class RawStatement {
    private let statement: OpaquePointer
    private let connection: RawConnection
    /// SQLite copies bound text at once (SQLITE_TRANSIENT), as GRDB does.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(_ connection: RawConnection, _ sql: String) throws {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(connection.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            throw BenchmarkFailure("\(connection.errorMessage) in: \(sql)")
        }
        self.statement = statement
        self.connection = connection
    }

    deinit { sqlite3_finalize(statement) }

    func bind(_ index: Int32, _ text: String) { sqlite3_bind_text(statement, index, text, -1, Self.transient) }
    func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(statement, index, value) }
    func bindNull(_ index: Int32) { sqlite3_bind_null(statement, index) }

    /// Steps once: true when a row is available.
    func step() throws -> Bool {
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw BenchmarkFailure(connection.errorMessage)
        }
    }

    /// Runs a statement that returns no row, then resets it.
    func run() throws {
        defer { sqlite3_reset(statement) }
        _ = try step()
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }
    func text(_ column: Int32) -> String { String(cString: sqlite3_column_text(statement, column)) }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
    func reset() { sqlite3_reset(statement) }
    var columnCount: Int32 { sqlite3_column_count(statement) }
}

/// One event as the raw baseline writes it, with its JSON columns already encoded.
struct RawEventRow {
    var id: String
    var type: String
    var occurredAt: Int64
    var channel: String
    var identityKey: String
    var identityKind: String
    var identityValue: String
    var identitiesJSON: String
    var propertiesJSON: String

    /// The row Rapport writes for `input` (one identity, string properties only), in the same JSON text.
    init(_ input: EventInput) {
        let identity = input.identities[0]
        id = input.id
        type = input.type
        occurredAt = input.occurredAt.millisecondsSinceEpoch
        channel = input.channel.rawValue
        identityKind = identity.kind.rawValue
        identityValue = identity.value
        identityKey = "\(identity.kind.rawValue):\(identity.value)"
        identitiesJSON = #"[{"kind":"\#(identity.kind.rawValue)","source":"","value":"\#(identity.value)"}]"#
        let properties = input.properties.keys.sorted().map { key -> String in
            guard case .string(let text) = input.properties[key]! else { fatalError("the raw baseline writes string properties only") }
            return #""\#(key)":{"type":"string","value":"\#(text)"}"#
        }
        propertiesJSON = "{" + properties.joined(separator: ",") + "}"
    }
}

enum RawIngest {
    /// The tables and indexes Rapport's schema v1 declares for what event ingest touches (copied from
    /// `RapportSQLite/Schema.swift`: keep them in step).
    static let schema = """
        CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO meta (key, value) VALUES ('sequence', 0);
        CREATE TABLE customers (
            id TEXT PRIMARY KEY NOT NULL, state TEXT NOT NULL, merged_into TEXT, merge_id TEXT, profile TEXT NOT NULL,
            field_times TEXT NOT NULL, tags TEXT NOT NULL, lifecycle_stage TEXT, created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL, version INTEGER NOT NULL);
        CREATE INDEX customers_active_by_created ON customers (created_at, id) WHERE state = 'active';
        CREATE INDEX customers_active_by_updated ON customers (updated_at, id) WHERE state = 'active';
        CREATE TABLE customer_stats (
            customer_id TEXT PRIMARY KEY NOT NULL, order_count INTEGER NOT NULL, spent TEXT NOT NULL, first_order_at INTEGER,
            last_order_at INTEGER, event_count INTEGER NOT NULL, last_seen_at INTEGER);
        CREATE TABLE identities (
            key TEXT PRIMARY KEY NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL, value TEXT NOT NULL,
            customer_id TEXT NOT NULL, home_customer_id TEXT NOT NULL, created_at INTEGER NOT NULL);
        CREATE INDEX identities_by_customer ON identities (customer_id);
        CREATE TABLE events (
            sequence INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, customer_id TEXT NOT NULL, home_customer_id TEXT NOT NULL,
            type TEXT NOT NULL, occurred_at INTEGER NOT NULL, received_at INTEGER NOT NULL, channel TEXT NOT NULL,
            identities TEXT NOT NULL, properties TEXT NOT NULL);
        CREATE INDEX events_by_customer ON events (customer_id, occurred_at);
        """

    /// The JSON of an empty profile, as `SQLiteStore` writes it for a customer created by ingest.
    static let emptyProfileJSON = #"{"given_name":"","family_name":"","locale":"","time_zone":"","addresses":[],"tags":[],"attributes":{}}"#

    /// Everything the engine's SQL does for event ingest, statement for statement, per batch transaction:
    /// allocate the batch's sequence numbers (`UPDATE meta ... RETURNING`); per event, look the event id up (the
    /// idempotency check), look the identity up (once per batch, as the engine caches owners), and for an unknown
    /// identity insert the customer and identity rows; insert the event row; read each touched customer's stats
    /// row once, and write it back (`INSERT OR REPLACE`) at the end of the batch.
    static func full(_ batches: [[RawEventRow]], path: String) throws {
        let db = try RawConnection(path: path)
        try db.execute(schema)
        let allocate = try db.prepare("UPDATE meta SET value = value + ? WHERE key = 'sequence' RETURNING value")
        let findEvent = try db.prepare("SELECT 1 FROM events WHERE id = ?")
        let findIdentity = try db.prepare("SELECT customer_id FROM identities WHERE key = ?")
        let insertCustomer = try db.prepare(
            """
            INSERT INTO customers (state, merged_into, merge_id, profile, field_times, tags, lifecycle_stage, created_at, updated_at, version, id)
            VALUES ('active', NULL, NULL, ?, '{}', '[]', NULL, ?, ?, 1, ?)
            """)
        let insertIdentity = try db.prepare(
            "INSERT INTO identities (key, kind, source, value, customer_id, home_customer_id, created_at) VALUES (?, ?, '', ?, ?, ?, ?)")
        let insertEvent = try db.prepare(
            """
            INSERT INTO events (sequence, id, customer_id, home_customer_id, type, occurred_at, received_at, channel, identities, properties)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let findStats = try db.prepare(
            "SELECT order_count, spent, first_order_at, last_order_at, event_count, last_seen_at FROM customer_stats WHERE customer_id = ?")
        let putStats = try db.prepare(
            """
            INSERT OR REPLACE INTO customer_stats (customer_id, order_count, spent, first_order_at, last_order_at, event_count, last_seen_at)
            VALUES (?, 0, '[]', NULL, NULL, ?, ?)
            """)
        let ids = SortableRandomIDGenerator()
        let now = Workload.now.millisecondsSinceEpoch

        for batch in batches {
            try db.execute("BEGIN IMMEDIATE")
            allocate.bind(1, Int64(batch.count))
            guard try allocate.step() else { throw BenchmarkFailure("no sequence row") }
            var sequence = allocate.int64(0) - Int64(batch.count) + 1
            allocate.reset()
            var owners: [String: String] = [:]
            var stats: [String: (count: Int64, lastSeen: Int64)] = [:]
            for row in batch {
                defer { sequence += 1 }
                findEvent.bind(1, row.id)
                let duplicate = try findEvent.step()
                findEvent.reset()
                if duplicate { continue }

                let customer: String
                if let owner = owners[row.identityKey] {
                    customer = owner
                } else {
                    findIdentity.bind(1, row.identityKey)
                    if try findIdentity.step() {
                        customer = findIdentity.text(0)
                        findIdentity.reset()
                    } else {
                        findIdentity.reset()
                        customer = CustomerID.prefix + ids.next(at: Workload.now)
                        insertCustomer.bind(1, emptyProfileJSON)
                        insertCustomer.bind(2, now)
                        insertCustomer.bind(3, now)
                        insertCustomer.bind(4, customer)
                        try insertCustomer.run()
                        insertIdentity.bind(1, row.identityKey)
                        insertIdentity.bind(2, row.identityKind)
                        insertIdentity.bind(3, row.identityValue)
                        insertIdentity.bind(4, customer)
                        insertIdentity.bind(5, customer)
                        insertIdentity.bind(6, now)
                        try insertIdentity.run()
                        stats[customer] = (0, 0)
                    }
                    owners[row.identityKey] = customer
                }

                insertEvent.bind(1, sequence)
                insertEvent.bind(2, row.id)
                insertEvent.bind(3, customer)
                insertEvent.bind(4, customer)
                insertEvent.bind(5, row.type)
                insertEvent.bind(6, row.occurredAt)
                insertEvent.bind(7, now)
                insertEvent.bind(8, row.channel)
                insertEvent.bind(9, row.identitiesJSON)
                insertEvent.bind(10, row.propertiesJSON)
                try insertEvent.run()

                var current = stats[customer] ?? (0, 0)
                if stats[customer] == nil {
                    findStats.bind(1, customer)
                    if try findStats.step() { current = (findStats.int64(4), findStats.isNull(5) ? 0 : findStats.int64(5)) }
                    findStats.reset()
                }
                stats[customer] = (current.count + 1, max(current.lastSeen, row.occurredAt))
            }
            for (customer, value) in stats {
                putStats.bind(1, customer)
                putStats.bind(2, value.count)
                putStats.bind(3, value.lastSeen)
                try putStats.run()
            }
            try db.execute("COMMIT")
        }
    }

    /// Row counts of the tables event ingest writes, to check that the engine and the raw baseline wrote the same.
    static func rowCounts(path: String) throws -> [String: Int64] {
        let db = try RawConnection(path: path)
        var counts: [String: Int64] = [:]
        for table in ["customers", "identities", "events", "customer_stats"] {
            let statement = try db.prepare("SELECT count(*) FROM \(table)")
            guard try statement.step() else { throw BenchmarkFailure("no count") }
            counts[table] = statement.int64(0)
        }
        return counts
    }

    /// The floor of the floor: only the events rows (same table and indexes), customer ids known in advance.
    static func eventsOnly(_ batches: [[RawEventRow]], customers: [String: String], path: String) throws {
        let db = try RawConnection(path: path)
        try db.execute(schema)
        let insertEvent = try db.prepare(
            """
            INSERT INTO events (sequence, id, customer_id, home_customer_id, type, occurred_at, received_at, channel, identities, properties)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let now = Workload.now.millisecondsSinceEpoch
        var sequence: Int64 = 1
        for batch in batches {
            try db.execute("BEGIN IMMEDIATE")
            for row in batch {
                let customer = customers[row.identityKey]!
                insertEvent.bind(1, sequence)
                insertEvent.bind(2, row.id)
                insertEvent.bind(3, customer)
                insertEvent.bind(4, customer)
                insertEvent.bind(5, row.type)
                insertEvent.bind(6, row.occurredAt)
                insertEvent.bind(7, now)
                insertEvent.bind(8, row.channel)
                insertEvent.bind(9, row.identitiesJSON)
                insertEvent.bind(10, row.propertiesJSON)
                try insertEvent.run()
                sequence += 1
            }
            try db.execute("COMMIT")
        }
    }
}
