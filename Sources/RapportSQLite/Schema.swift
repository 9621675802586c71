import GRDB
import Foundation
import RapportCore

/// The schema of a Rapport database file, as a list of named migrations.
///
/// The file format is a public promise: a newer Rapport opens a file written by an older one. So a migration that
/// has shipped is never edited; a change to the schema is a new migration appended at the end.
///
/// Conventions: times are INTEGER milliseconds since the epoch (UTC), money is INTEGER minor units beside a
/// currency code, ids are TEXT. Owned records (`events`, `orders`, `interactions`, `consents`) use the store-wide
/// sequence number as their rowid, so an index on `(customer_id, time)` also orders by sequence for free.
/// `customer_id` is who owns a record now, `home_customer_id` whose it is at home (who it first belonged to, or the
/// customer an unmerge handed it to): an unmerge gives a merged side's records back by home.
/// Nested values are JSON (see `StoredJSON.swift`). No foreign keys: ownership rules live in the writer, the same
/// as in the in-memory backend.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1", migrate: v1)
        migrator.registerMigration("v2-access", migrate: v2Access)
        migrator.registerMigration("v3-automation", migrate: v3Automation)
        migrator.registerMigration("v4-latest-runs", migrate: v4LatestRuns)
        migrator.registerMigration("v5-merge-segments", migrate: v5MergeSegments)
        migrator.registerMigration("v6-open-and-closed-indexes", migrate: v6OpenAndClosedIndexes)
        migrator.registerMigration("v7-stats-without-emitted-events", migrate: v7StatsWithoutEmittedEvents)
        return migrator
    }

    /// The names of every migration, oldest first: what a file fully up to date has applied.
    static var migrationNames: [String] { migrator.migrations }

    /// The migrator of a future version: this schema plus empty migrations named `names`. For tests.
    static func migrator(plus names: [String]) -> DatabaseMigrator {
        var future = migrator
        for name in names { future.registerMigration(name) { _ in } }
        return future
    }

    private static func v1(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE meta (
                key TEXT PRIMARY KEY NOT NULL,
                value INTEGER NOT NULL
            ) WITHOUT ROWID;
            INSERT INTO meta (key, value) VALUES ('sequence', 0);

            CREATE TABLE customers (
                id TEXT PRIMARY KEY NOT NULL,
                state TEXT NOT NULL,              -- 'active' or 'merged'
                merged_into TEXT,
                merge_id TEXT,
                profile TEXT NOT NULL,            -- JSON
                field_times TEXT NOT NULL,        -- JSON {field: ms}
                tags TEXT NOT NULL,               -- JSON array, sorted; mirrored in customer_tags
                lifecycle_stage TEXT,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                version INTEGER NOT NULL
            );
            CREATE INDEX customers_active_by_created ON customers (created_at, id) WHERE state = 'active';
            CREATE INDEX customers_active_by_updated ON customers (updated_at, id) WHERE state = 'active';

            CREATE TABLE customer_tags (
                customer_id TEXT NOT NULL,
                tag TEXT NOT NULL,
                PRIMARY KEY (customer_id, tag)
            ) WITHOUT ROWID;

            CREATE TABLE customer_stats (
                customer_id TEXT PRIMARY KEY NOT NULL,
                order_count INTEGER NOT NULL,
                spent TEXT NOT NULL,              -- JSON [{currency, total_minor, order_count}]
                first_order_at INTEGER,
                last_order_at INTEGER,
                event_count INTEGER NOT NULL,
                last_seen_at INTEGER
            );

            CREATE TABLE identities (
                key TEXT PRIMARY KEY NOT NULL,    -- Identity.key
                kind TEXT NOT NULL,
                source TEXT NOT NULL,
                value TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                home_customer_id TEXT NOT NULL,
                created_at INTEGER NOT NULL
            );
            CREATE INDEX identities_by_customer ON identities (customer_id);

            CREATE TABLE events (
                sequence INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                customer_id TEXT NOT NULL,
                home_customer_id TEXT NOT NULL,
                type TEXT NOT NULL,
                occurred_at INTEGER NOT NULL,
                received_at INTEGER NOT NULL,
                channel TEXT NOT NULL,
                identities TEXT NOT NULL,         -- JSON [{kind, source, value}]
                properties TEXT NOT NULL          -- JSON {key: {type, value}}
            );
            CREATE INDEX events_by_customer ON events (customer_id, occurred_at);

            CREATE TABLE orders (
                sequence INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                source TEXT NOT NULL,
                external_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                home_customer_id TEXT NOT NULL,
                status TEXT NOT NULL,
                currency TEXT NOT NULL,
                total_minor INTEGER NOT NULL,
                placed_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                details TEXT NOT NULL,            -- JSON: identities, lines, amounts, status history
                UNIQUE (source, external_id)
            );
            CREATE INDEX orders_by_customer ON orders (customer_id, placed_at);

            CREATE TABLE interactions (
                sequence INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                customer_id TEXT NOT NULL,
                home_customer_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                direction TEXT NOT NULL,
                subject TEXT NOT NULL,
                summary TEXT NOT NULL,
                agent TEXT NOT NULL,
                occurred_at INTEGER NOT NULL
            );
            CREATE INDEX interactions_by_customer ON interactions (customer_id, occurred_at);

            CREATE TABLE consents (
                sequence INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                customer_id TEXT NOT NULL,
                home_customer_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                purpose TEXT NOT NULL,
                status TEXT NOT NULL,
                source TEXT NOT NULL,
                occurred_at INTEGER NOT NULL,
                recorded_at INTEGER NOT NULL
            );
            CREATE INDEX consents_by_customer ON consents (customer_id, occurred_at);

            CREATE TABLE merges (
                id TEXT PRIMARY KEY NOT NULL,
                survivor_id TEXT NOT NULL,
                absorbed_id TEXT NOT NULL,
                sequence INTEGER NOT NULL,
                merged_at INTEGER NOT NULL,
                unmerged_at INTEGER,
                details TEXT NOT NULL             -- JSON: reason, both customers as they were
            );
            CREATE INDEX merges_by_survivor ON merges (survivor_id, sequence);
            CREATE INDEX merges_by_absorbed ON merges (absorbed_id);

            CREATE TABLE profile_changes (
                customer_id TEXT NOT NULL,
                sequence INTEGER NOT NULL,
                at INTEGER NOT NULL,
                fields TEXT NOT NULL,             -- JSON array of field paths, sorted
                profile TEXT NOT NULL             -- JSON
            );
            CREATE INDEX profile_changes_by_customer ON profile_changes (customer_id, sequence);

            CREATE TABLE attribute_definitions (
                key TEXT PRIMARY KEY NOT NULL,
                type TEXT NOT NULL,
                description TEXT NOT NULL
            );
            """)
    }

    /// API keys, request-id outcomes and the change feed.
    private static func v2Access(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE api_keys (
                id TEXT PRIMARY KEY NOT NULL,
                name TEXT NOT NULL,
                role TEXT NOT NULL,
                secret_hash TEXT NOT NULL UNIQUE,
                created_at INTEGER NOT NULL,
                revoked_at INTEGER
            );

            CREATE TABLE idempotency_records (
                key TEXT PRIMARY KEY NOT NULL,
                fingerprint TEXT NOT NULL,
                response BLOB NOT NULL,
                created_at INTEGER NOT NULL
            );
            CREATE INDEX idempotency_records_by_time ON idempotency_records (created_at);

            CREATE TABLE changes (
                cursor INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                other_customer_id TEXT,
                merge_id TEXT,
                at INTEGER NOT NULL
            );
            """)
    }

    /// Event types, segments and memberships, rules with their versions, runs and counters, scheduled jobs, the
    /// outbox, and the segment a change-feed entry names.
    private static func v3Automation(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE changes ADD COLUMN segment_id TEXT;
            INSERT INTO meta (key, value) VALUES ('definitions_version', 0);

            CREATE TABLE event_types (
                type TEXT PRIMARY KEY NOT NULL,
                definition TEXT NOT NULL          -- JSON EventTypeDefinition
            );

            CREATE TABLE segments (
                id TEXT PRIMARY KEY NOT NULL,
                key TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                version INTEGER NOT NULL,
                state TEXT NOT NULL,
                member_count INTEGER NOT NULL,    -- kept by the store as memberships change
                details TEXT NOT NULL             -- JSON: name, description, expression, build cursor, times
            );

            CREATE TABLE segment_members (
                segment_id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                since INTEGER NOT NULL,
                PRIMARY KEY (segment_id, customer_id)
            ) WITHOUT ROWID;
            CREATE INDEX segment_members_by_customer ON segment_members (customer_id);

            CREATE TABLE list_members (
                segment_id TEXT NOT NULL,
                home_customer_id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                added_at INTEGER NOT NULL,
                PRIMARY KEY (segment_id, home_customer_id)
            ) WITHOUT ROWID;
            CREATE INDEX list_members_by_owner ON list_members (customer_id, segment_id);
            CREATE INDEX list_members_by_segment ON list_members (segment_id, customer_id);

            CREATE TABLE rules (
                id TEXT PRIMARY KEY NOT NULL,
                version INTEGER NOT NULL,
                enabled INTEGER NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                definition TEXT NOT NULL          -- JSON RuleDefinition
            );

            CREATE TABLE rule_versions (
                rule_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                definition TEXT NOT NULL,
                PRIMARY KEY (rule_id, version)
            ) WITHOUT ROWID;

            CREATE TABLE rule_runs (
                id TEXT PRIMARY KEY NOT NULL,
                rule_id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                details TEXT NOT NULL             -- JSON RuleRun
            );
            CREATE INDEX rule_runs_by_time ON rule_runs (created_at, id);
            CREATE INDEX rule_runs_by_rule ON rule_runs (rule_id, created_at, id);
            CREATE INDEX rule_runs_by_customer ON rule_runs (customer_id, created_at, id);
            CREATE INDEX rule_runs_waiting ON rule_runs (rule_id, customer_id) WHERE status = 'waiting';

            CREATE TABLE rule_counters (
                rule_id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                last_fired_at INTEGER NOT NULL,
                fired_count INTEGER NOT NULL,
                PRIMARY KEY (rule_id, customer_id)
            ) WITHOUT ROWID;
            CREATE INDEX rule_counters_by_customer ON rule_counters (customer_id);

            CREATE TABLE rule_fired_counts (
                rule_id TEXT NOT NULL,
                day INTEGER NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (rule_id, day)
            ) WITHOUT ROWID;

            CREATE TABLE jobs (
                key TEXT PRIMARY KEY NOT NULL,
                due_at INTEGER NOT NULL,
                customer_id TEXT,
                attempts INTEGER NOT NULL,
                kind TEXT NOT NULL                -- JSON JobKind
            ) WITHOUT ROWID;
            CREATE INDEX jobs_by_due ON jobs (due_at, key);
            CREATE INDEX jobs_by_customer ON jobs (customer_id) WHERE customer_id IS NOT NULL;

            CREATE TABLE outbox (
                sequence INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                customer_id TEXT NOT NULL,
                idempotency_key TEXT NOT NULL UNIQUE,
                state TEXT NOT NULL,
                lease_expires_at INTEGER,
                available_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                details TEXT NOT NULL             -- JSON OutboxEntry
            );
            CREATE INDEX outbox_by_customer ON outbox (customer_id, sequence);
            CREATE INDEX outbox_open ON outbox (customer_id, sequence) WHERE state IN ('pending', 'leased');
            """)
    }

    /// Open outbox entries by sequence, for leasing (which otherwise walked every entry kept since the cursor,
    /// delivered ones too, inside the writer), and closed entries and ended runs by time, for housekeeping's
    /// deletes (otherwise table scans).
    private static func v6OpenAndClosedIndexes(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE INDEX outbox_open_by_sequence ON outbox (sequence) WHERE state IN ('pending', 'leased');
                CREATE INDEX outbox_closed_by_time ON outbox (updated_at) WHERE state IN ('delivered', 'failed');
                CREATE INDEX rule_runs_ended_by_time ON rule_runs (updated_at) WHERE status != 'waiting';
                """)
    }

    /// Customers' running aggregates computed again without the events rules emitted, which earlier versions counted
    /// as the customer's activity (``Event/isEmittedByRule``): only customers that own such events change. An index
    /// of the emitted events keeps counting them cheap.
    private static func v7StatsWithoutEmittedEvents(_ db: Database) throws {
        // Counting a customer's emitted events reads this index, not the rows.
        try db.execute(sql: "CREATE INDEX events_emitted_by_customer ON events (customer_id) WHERE identities = '[]' AND id GLOB 'run_*'")
        let tx = SQLiteTransaction(db)
        for raw in try String.fetchAll(db, sql: "SELECT DISTINCT customer_id FROM events WHERE identities = '[]' AND id GLOB 'run_*'") {
            let customer = CustomerID(uncheckedRawValue: raw)
            guard try tx.stats(of: customer) != nil else { continue }
            let orders = try tx.orders(of: customer, before: nil, limit: .max).map(\.order)
            try tx.putStats(CustomerStats.compute(customerID: customer, orders: orders, events: try tx.eventSummary(of: customer)))
        }
    }

    /// A customer's latest run of a rule (a repeated skip updates it instead of adding one) in one index step.
    private static func v4LatestRuns(_ db: Database) throws {
        try db.execute(sql: "CREATE INDEX rule_runs_by_customer_rule ON rule_runs (customer_id, rule_id, created_at, id)")
    }

    /// Standing merges learn the dynamic segments their absorbed customer was in (`absorbed_segments` in the
    /// details), which merges now record so that an unmerge restores them without triggering entry rules again.
    /// They are read back from the change feed in one pass: the exits a merge wrote for its absorbed customer (files
    /// since merges wrote them), else that customer's entries and exits before the merge (a membership a segment's
    /// build found has no entry, so older files may miss some); a membership's `since` is its last entry before the
    /// merge, or the merge's time when the feed has none.
    private static func v5MergeSegments(_ db: Database) throws {
        struct Standing {
            var id: String
            var absorbed: String
            var details: String
            var mergedAt: Int64
            var exits: [String] = []
            var snapshot: [String: Int64]?
        }
        var merges: [String: Standing] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT id, absorbed_id, details, merged_at FROM merges WHERE unmerged_at IS NULL") {
            let id: String = row["id"]
            merges[id] = Standing(id: id, absorbed: row["absorbed_id"], details: row["details"], mergedAt: row["merged_at"])
        }
        guard !merges.isEmpty else { return }
        let absorbed = Set(merges.values.map(\.absorbed))
        // Per absorbed customer, the segments it is in by the feed so far, with their last entry.
        var entered: [String: [String: Int64]] = [:]
        let rows = try Row.fetchCursor(
            db,
            sql: """
                SELECT kind, customer_id, merge_id, segment_id, at FROM changes
                WHERE kind IN ('segment_entered', 'segment_exited', 'customers_merged') ORDER BY cursor
                """)
        while let row = try rows.next() {
            let kind: String = row["kind"]
            let customer: String = row["customer_id"]
            let merge: String? = row["merge_id"]
            if kind == "customers_merged" {
                // The survivor is named; the merge's absorbed customer's memberships are what the feed says now.
                if let merge, merges[merge] != nil, merges[merge]!.snapshot == nil {
                    merges[merge]!.snapshot = entered[merges[merge]!.absorbed] ?? [:]
                }
                continue
            }
            guard absorbed.contains(customer), let segment: String = row["segment_id"] else { continue }
            if kind == "segment_exited", let merge, merges[merge]?.absorbed == customer {
                merges[merge]!.exits.append(segment)  // the merge's own record of what its absorbed customer left
                continue
            }
            entered[customer, default: [:]][segment] = kind == "segment_entered" ? row["at"] as Int64 : nil
        }
        for merge in merges.values.sorted(by: { $0.id < $1.id }) {
            let known = merge.snapshot ?? [:]
            let since = merge.exits.isEmpty ? known : Dictionary(merge.exits.map { ($0, known[$0] ?? merge.mergedAt) }, uniquingKeysWith: { first, _ in first })
            let segments = since.sorted { $0.key < $1.key }.map { StoredMergeDetails.StoredMembership(segmentID: $0.key, since: $0.value) }
            guard !segments.isEmpty else { continue }
            var details = try JSONDecoder().decode(StoredMergeDetails.self, from: Data(merge.details.utf8))
            details.absorbedSegments = segments
            let updated = String(decoding: try JSONEncoder().encode(details), as: UTF8.self)
            try db.execute(sql: "UPDATE merges SET details = ? WHERE id = ?", arguments: [updated, merge.id])
        }
    }
}
