public import RapportCore
import Foundation
import GRDB
import GRDBSQLite

/// A ``Store`` kept in one SQLite file: durable, for production and large data.
///
/// The file is opened in WAL mode through a pool of connections: reads run concurrently with each other and with
/// the one writer. The schema is created or upgraded on open.
///
/// ```swift
/// let store = try SQLiteStore(path: "/var/lib/rapport/crm.sqlite")
/// let count = try await store.read { try $0.customerCount() }
/// ```
public final class SQLiteStore: Store {
    /// How the file is opened.
    public struct Options: Hashable, Sendable {
        /// The page cache of each connection, in KiB (SQLite's `cache_size`, as a positive number of KiB).
        public var cacheSizeKiB: Int
        /// How much of the file each connection maps into memory, in bytes (SQLite's `mmap_size`).
        public var mmapSize: Int
        /// How long a connection waits for a lock held by another process before failing.
        public var busyTimeout: Duration
        /// How many read connections the pool may open at once.
        public var maximumReaderCount: Int

        /// The defaults: a 64 MiB cache, 256 MiB of mmap, a 5 s busy timeout, 4 readers.
        ///
        /// ```swift
        /// let store = try SQLiteStore(path: path, configuration: .init(cacheSizeKiB: 16_384))
        /// ```
        public init(cacheSizeKiB: Int = 65_536, mmapSize: Int = 268_435_456, busyTimeout: Duration = .seconds(5), maximumReaderCount: Int = 4) {
            self.cacheSizeKiB = cacheSizeKiB
            self.mmapSize = mmapSize
            self.busyTimeout = busyTimeout
            self.maximumReaderCount = maximumReaderCount
        }
    }

    /// The path of the database file.
    public let path: String
    private let pool: DatabasePool
    /// The busy timeout of every connection, in milliseconds.
    private let busyTimeoutMilliseconds: Int64
    /// The connections `quickRead` uses first.
    private let quickReaders: QuickReaders
    /// The directory `temporary()` made, removed on deinit.
    private let temporaryDirectory: URL?

    /// Opens the database file at `path`, creating it if needed, and brings its schema up to date.
    ///
    /// - Throws: ``RapportError/storage(_:)`` when the file cannot be opened or migrated.
    public convenience init(path: String, configuration: Options = .init()) throws {
        try Self.checkOpenable(path)
        do {
            try self.init(path: path, options: configuration, temporaryDirectory: nil, migrator: Schema.migrator)
        } catch RapportError.storage(let problem) where !problem.contains("'\(path)'") {
            throw RapportError.storage("cannot open the database '\(path)': \(problem)")
        }
    }

    /// Says plainly why `path` cannot be a database file, when it is clear before SQLite tries (its own error names
    /// neither the path nor the cause).
    static func checkOpenable(_ path: String) throws {
        let files = FileManager.default
        // A symbolic link (maybe to a file not made yet) is SQLite's to follow.
        if (try? files.destinationOfSymbolicLink(atPath: path)) != nil { return }
        var isDirectory: ObjCBool = false
        if files.fileExists(atPath: path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { throw RapportError.storage("cannot open the database '\(path)': it is a directory; name a file in it") }
            return
        }
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        guard files.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RapportError.storage("cannot create the database '\(path)': the directory '\(directory)' does not exist")
        }
        // The file and its -wal and -shm companions are created next to it.
        guard files.isWritableFile(atPath: directory) else {
            throw RapportError.storage("cannot create the database '\(path)': the directory '\(directory)' is not writable")
        }
    }

    /// A store on a new file in a new temporary directory, deleted when the store is released: for tests.
    ///
    /// ```swift
    /// let store = try SQLiteStore.temporary()
    /// ```
    public static func temporary(configuration: Options = .init()) throws -> SQLiteStore {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-\(UUID().uuidString)", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw RapportError.storage("cannot create a temporary directory: \(error)")
        }
        let path = directory.appendingPathComponent("rapport.sqlite").path
        do {
            return try SQLiteStore(path: path, options: configuration, temporaryDirectory: directory, migrator: Schema.migrator)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    /// Opens the file with `migrator` (the tests pass one with extra migrations, to play a newer Rapport).
    init(path: String, options: Options, temporaryDirectory: URL?, migrator: DatabaseMigrator) throws {
        var configuration = Configuration()
        configuration.label = "Rapport"
        configuration.maximumReaderCount = max(1, options.maximumReaderCount)
        configuration.busyMode = .timeout(Double(options.busyTimeout.milliseconds) / 1000)
        let cacheSize = options.cacheSizeKiB
        let mmapSize = options.mmapSize
        configuration.prepareDatabase { db in
            // Per connection; WAL itself is set by DatabasePool. NORMAL is durable across crashes in WAL mode
            // except for the last commits before a power loss, at a fraction of FULL's cost.
            // secure_delete: deleted rows are overwritten with zeros, not left in free pages (an erasure is for good).
            try db.execute(sql: "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -\(cacheSize); PRAGMA mmap_size = \(mmapSize); PRAGMA secure_delete = ON")
        }
        self.path = path
        self.temporaryDirectory = temporaryDirectory
        busyTimeoutMilliseconds = options.busyTimeout.milliseconds
        quickReaders = QuickReaders(path: path, configuration: configuration, limit: max(1, options.maximumReaderCount))
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB skips migrations it does not know; a file that has some was written by a newer Rapport, whose
            // schema this version would misread. (Merged migrations, if ever used, must be listed as known here.)
            let unknown = try pool.read(migrator.appliedIdentifiers).subtracting(migrator.migrations)
            guard unknown.isEmpty else {
                try? pool.close()
                throw RapportError.storage("\(path) was written by a newer version of Rapport (unknown migrations: \(unknown.sorted().joined(separator: ", ")))")
            }
            try Self.migrate(pool, with: migrator)
        } catch {
            throw Self.storageError(error)
        }
    }

    /// Applies the migrations the file lacks. Another process opening the same file may be applying them at the
    /// same time (GRDB decides what to run before it takes the write lock): a migration that fails because that
    /// process ran it first is read again and skipped.
    private static func migrate(_ pool: DatabasePool, with migrator: DatabaseMigrator) throws {
        var attempts = 0
        while true {
            do {
                return try migrator.migrate(pool)
            } catch {
                attempts += 1
                if try pool.read(migrator.hasCompletedMigrations) { return }
                guard attempts < 3 else { throw error }
            }
        }
    }

    /// Checkpoints the write-ahead log into the database file and truncates it: the log keeps copies of pages as
    /// they were before deletions (zeroed in the file by `secure_delete`) until it is overwritten. A reader in the
    /// middle of a transaction can make it fail (`storage`); it is tried again after the next erasure. It waits
    /// for readers a quarter of a second at most: it holds the writer meanwhile, and writes must not stall on a
    /// long report.
    public func purgeDeletedData() async throws {
        let timeout = busyTimeoutMilliseconds
        do {
            _ = try await pool.writeWithoutTransaction { db in
                // Set through the C API: a statement could be refused once the task is cancelled, leaving the
                // writer with the short timeout.
                sqlite3_busy_timeout(db.sqliteConnection, Int32(min(timeout, 250)))
                defer { sqlite3_busy_timeout(db.sqliteConnection, Int32(clamping: timeout)) }
                try db.checkpoint(.truncate)
            }
        } catch {
            throw Self.storageError(error)
        }
    }

    deinit {
        guard let temporaryDirectory else { return }
        try? quickReaders.close()
        try? pool.close()
        try? FileManager.default.removeItem(at: temporaryDirectory)
    }

    /// Closes every connection; later reads and writes throw ``RapportError/storage(_:)``.
    ///
    /// Releasing the store closes it too; call this to know the file is closed at a given point (a quick read
    /// still running closes its connection when it ends).
    public func close() throws {
        // Both are closed, whatever the first one says.
        var failure: (any Error)?
        do { try quickReaders.close() } catch { failure = error }
        do { try pool.close() } catch { failure = failure ?? error }
        if let failure { throw Self.storageError(failure) }
    }

    /// Runs `body` in a read transaction on a snapshot of the file, concurrently with other reads and the writer.
    ///
    /// What `body` throws comes out unchanged; a failure of the database itself is ``RapportError/storage(_:)``.
    public func read<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T {
        do {
            return try await pool.read { db in try Self.marking { try body(SQLiteTransaction(db)) } }
        } catch {
            throw Self.storageError(error)
        }
    }

    /// Runs `body` in a read transaction like ``read(_:)``, on the calling thread instead of one of GRDB's reader
    /// queues: for short reads, where the hop there and back would cost more than the queries.
    ///
    /// It uses a reader connection of the store's own (up to `maximumReaderCount`, opened on first use) with cached
    /// `BEGIN`/`COMMIT` statements; when all of them are busy, one of the pool's, waiting for it if needed. It
    /// blocks the calling thread while `body` runs.
    public func quickRead<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T {
        try readOnCallingThread(body)
    }

    /// Not `async`, so that `pool.read` is GRDB's synchronous one.
    func readOnCallingThread<T>(_ body: (any StoreReader) throws -> T) throws -> T {
        do {
            if let value = try quickReaders.withReader({ db in try Self.marking { try body(SQLiteTransaction(db)) } }) { return value }
            return try pool.read { db in try Self.marking { try body(SQLiteTransaction(db)) } }
        } catch {
            throw Self.storageError(error)
        }
    }

    /// Runs `body` in the single write transaction: it commits if `body` returns, and rolls back if it throws.
    ///
    /// What `body` throws comes out unchanged (the reader and writer it is given throw only ``RapportError``); a
    /// failure to begin or commit the transaction is ``RapportError/storage(_:)``.
    ///
    /// ```swift
    /// try await store.write { tx in
    ///     let sequence = try tx.allocateSequence(1)
    ///     try tx.insertEvent(EventRecord(event: event, homeCustomerID: event.customerID, sequence: sequence))
    /// }
    /// ```
    public func write<T: Sendable>(_ body: @Sendable (any StoreWriter) throws -> T) async throws -> T {
        do {
            return try await pool.write { db in try Self.marking { try body(SQLiteTransaction(db)) } }
        } catch {
            throw Self.storageError(error)
        }
    }

    /// An error thrown by a transaction body, kept apart from the errors of GRDB's own transaction handling.
    private struct BodyError: Error {
        var error: any Error
    }

    private static func marking<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw BodyError(error: error)
        }
    }

    /// The names of the migrations applied to the file, oldest first.
    func appliedMigrations() async throws -> [String] {
        try await pool.read { db in try Schema.migrator.appliedMigrations(db) }
    }

    /// A body's own error, a `RapportError` and cancellation pass through; anything else (a `DatabaseError` from
    /// opening, beginning or committing) is a storage failure.
    static func storageError(_ error: any Error) -> any Error {
        switch error {
        case let error as BodyError: error.error
        case let error as RapportError: error
        case let error as CancellationError: error
        default: RapportError.storage(String(describing: error))
        }
    }
}
