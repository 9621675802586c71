import GRDB

/// The schema of a Rapport database file, as a list of named migrations.
///
/// The file format is a public promise: a newer Rapport opens a file written by an older one. So a migration that
/// has shipped is never edited; a change to the schema is a new migration appended at the end.
///
/// Conventions: times are INTEGER milliseconds since the epoch (UTC), money is INTEGER minor units beside a
/// currency code, ids are TEXT. Owned records (`events`, `orders`, `interactions`, `consents`) use the store-wide
/// sequence number as their rowid, so an index on `(customer_id, time)` also orders by sequence for free.
/// `customer_id` is who owns a record now, `home_customer_id` who it first belonged to (unmerge gives it back).
/// Nested values are JSON (see `StoredJSON.swift`). No foreign keys: ownership rules live in the writer, the same
/// as in the in-memory backend.
enum Schema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1", migrate: v1)
        migrator.registerMigration("v2-access", migrate: v2Access)
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
}
