import Logging
import Rapport
import RapportCore
import RapportMemory
import RapportSQLite

/// The engine the server serves and the store under it.
struct ServerBackend: Sendable {
    let engine: RapportEngine
    /// Set for a SQLite store, closed once the server has stopped.
    private let sqlite: SQLiteStore?

    /// Opens (and migrates) the store the settings name and builds the engine over it.
    init(settings: ServerSettings, logger: Logger) throws {
        let store: any Store
        switch settings.storage {
        case .memory:
            store = MemoryStore()
            sqlite = nil
            logger.notice("using an in-memory store: everything is lost on exit")
        case .sqlite(let path):
            let file = try SQLiteStore(path: path)
            store = file
            sqlite = file
            logger.info("opened the SQLite store", metadata: ["path": "\(path)"])
        }
        var engineLogger = logger
        engineLogger[metadataKey: "component"] = "engine"
        var clock: any RapportClock = SystemClock()
        if let start = settings.manualClock {
            clock = ManualClock(now: Timestamp(start))
            logger.warning("running on a manual clock: time moves only when ClockService.AdvanceClock moves it (for tests)")
        }
        engine = RapportEngine(
            store: store, clock: clock, defaultPhoneRegion: settings.defaultPhoneRegion, logger: engineLogger,
            automation: AutomationSettings(defaultTimeZone: settings.defaultTimeZone))
    }

    /// On the first start of an empty store, creates an admin key and prints its secret, this once.
    func printFirstAdminKeyIfNeeded() async throws {
        guard let created = try await engine.bootstrapAdminKey() else { return }
        let shown = Console.output("""
            created the first API key, '\(created.key.name)' (\(created.key.id.rawValue), role admin). Its secret:
              \(created.secret)
            Keep it now: it is shown only this time (Rapport stores only its hash). Use it as `rapport --key SECRET`.
            """)
        guard !shown else { return }
        // Nobody saw it (standard output closed or broken): a key nobody has is revoked, and the next start, finding no
        // active key, makes another.
        try await engine.revokeUnseenBootstrapKey(created.key.id)
        Console.error("error: the first API key could not be printed (standard output is closed or broken); it was revoked. Start again with standard output open to get one.")
    }

    /// Closes the SQLite file, if any; the engine must not be used afterwards.
    func close() throws {
        try sqlite?.close()
    }
}
