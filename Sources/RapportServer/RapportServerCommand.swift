import ArgumentParser
import Foundation
import Logging
import RapportCore

/// `rapport-server`: the Rapport gRPC API over an embedded SQLite file (or memory).
///
/// Every option can also come from the environment; a flag wins over its variable.
@main
struct RapportServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rapport-server",
        abstract: "Serve the Rapport CRM over gRPC.",
        discussion: """
            With no options it serves on 127.0.0.1:50051 over the SQLite file ./rapport.sqlite, created and migrated \
            on first start. On the first start of an empty store it prints an admin API key, once.

            Once bound it prints one line, `rapport-server listening on HOST:PORT`, to standard output. SIGTERM or \
            SIGINT stop it gracefully: calls in flight finish, the store is closed, the exit status is 0.
            """
    )

    @Option(name: .long, help: ArgumentHelp("The SQLite database file (env RAPPORT_DB).", valueName: "path"))
    var db: String?

    @Flag(name: .long, help: "Keep everything in memory and lose it on exit (env RAPPORT_IN_MEMORY=1).")
    var inMemory = false

    @Option(name: .long, help: ArgumentHelp("The IPv4 or IPv6 address to bind (env RAPPORT_HOST; default 127.0.0.1).", valueName: "address"))
    var host: String?

    @Option(name: .long, help: ArgumentHelp("The port to bind; 0 picks a free one (env RAPPORT_PORT; default 50051).", valueName: "port"))
    var port: Int?

    @Option(name: .long, help: ArgumentHelp("PEM certificate chain for TLS; needs --tls-key (env RAPPORT_TLS_CERT).", valueName: "file"))
    var tlsCert: String?

    @Option(name: .long, help: ArgumentHelp("PEM private key for TLS; needs --tls-cert (env RAPPORT_TLS_KEY).", valueName: "file"))
    var tlsKey: String?

    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (env RAPPORT_LOG_LEVEL; default info).", valueName: "level"))
    var logLevel: String?

    @Option(name: .long, help: ArgumentHelp("ISO 3166 region assumed for national phone numbers (one Rapport has a numbering plan for).", valueName: "region"))
    var defaultPhoneRegion = "US"

    @Option(name: .long, help: ArgumentHelp("The largest request message accepted, in bytes (16 MiB).", valueName: "bytes"))
    var maxMessageBytes = 16 * 1024 * 1024

    @Option(name: .long, help: ArgumentHelp("IANA time zone of customers who have none, for date triggers and quiet hours (env RAPPORT_DEFAULT_TIME_ZONE; default UTC).", valueName: "zone"))
    var defaultTimeZone: String?

    @Flag(name: .long, help: "For tests only: the clock stands still until ClockService.AdvanceClock moves it (env RAPPORT_MANUAL_CLOCK=1).")
    var manualClock = false

    @Option(name: .long, help: ArgumentHelp("With --manual-clock: the instant the clock starts at, ISO 8601 (default: now).", valueName: "time"))
    var clockStart: String?

    mutating func validate() throws {
        _ = try settings(environment: ProcessInfo.processInfo.environment)
    }

    func run() async throws {
        let settings = try settings(environment: ProcessInfo.processInfo.environment)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = settings.logLevel
            return handler
        }
        var logger = Logger(label: "rapport.server")
        logger.logLevel = settings.logLevel
        do {
            try await RapportServerRunner(settings: settings, logger: logger).run()
        } catch {
            logger.debug("server failed", metadata: ["error": "\(String(reflecting: error))"])
            Console.error("error: \(describe(error))")
            throw ExitCode.failure
        }
    }

    /// The settings from the flags, then the environment, then the defaults.
    func settings(environment env: [String: String]) throws -> ServerSettings {
        func value(_ flag: String?, _ variable: String) -> String? {
            if let flag { return flag }
            guard let text = env[variable]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }

        let storage: ServerSettings.Storage
        if inMemory && db != nil {
            throw ValidationError("--db and --in-memory exclude each other")
        } else if inMemory {
            storage = .memory
        } else if let db {
            storage = .sqlite(path: db)
        } else {
            let memoryFromEnv = try env["RAPPORT_IN_MEMORY"].map { try Self.truth($0, variable: "RAPPORT_IN_MEMORY") } ?? false
            let dbFromEnv = value(nil, "RAPPORT_DB")
            switch (memoryFromEnv, dbFromEnv) {
            case (true, .some): throw ValidationError("RAPPORT_DB and RAPPORT_IN_MEMORY=1 exclude each other")
            case (true, nil): storage = .memory
            case (false, let path): storage = .sqlite(path: path ?? "./rapport.sqlite")
            }
        }
        if case .sqlite(let path) = storage, path.isEmpty { throw ValidationError("--db needs a file path") }

        let hostText = value(host, "RAPPORT_HOST") ?? "127.0.0.1"
        guard let address = ServerSettings.Address(host: hostText) else {
            throw ValidationError("host '\(hostText)' is not an IPv4 or IPv6 address (for example 127.0.0.1, 0.0.0.0 or ::)")
        }

        let portValue: Int
        if let port {
            portValue = port
        } else if let text = value(nil, "RAPPORT_PORT") {
            guard let parsed = Int(text) else { throw ValidationError("RAPPORT_PORT '\(text)' is not a port number") }
            portValue = parsed
        } else {
            portValue = 50051
        }
        guard (0...65535).contains(portValue) else { throw ValidationError("port \(portValue) is not between 0 and 65535") }

        var tls: ServerSettings.TLS?
        switch (value(tlsCert, "RAPPORT_TLS_CERT"), value(tlsKey, "RAPPORT_TLS_KEY")) {
        case (nil, nil):
            tls = nil
        case (.some(let cert), .some(let key)):
            for (what, path) in [("certificate", cert), ("key", key)] where !FileManager.default.isReadableFile(atPath: path) {
                throw ValidationError("TLS \(what) file '\(path)' does not exist or cannot be read")
            }
            tls = ServerSettings.TLS(certificatePath: cert, keyPath: key)
        case (.some, nil):
            throw ValidationError("--tls-cert needs --tls-key (or RAPPORT_TLS_KEY)")
        case (nil, .some):
            throw ValidationError("--tls-key needs --tls-cert (or RAPPORT_TLS_CERT)")
        }

        let levelText = value(logLevel, "RAPPORT_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw ValidationError("log level '\(levelText)' is not one of trace, debug, info, notice, warning, error, critical")
        }

        let region = defaultPhoneRegion.uppercased()
        guard region.count == 2, region.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw ValidationError("--default-phone-region '\(defaultPhoneRegion)' is not a two-letter ISO 3166 region (US, DE, FR...)")
        }
        // A region without a numbering plan here would read national numbers as another country's.
        guard PhoneRegion.byCode[region] != nil else {
            throw ValidationError(
                "--default-phone-region '\(defaultPhoneRegion)' is not one Rapport reads national numbers of; it knows "
                    + PhoneRegion.all.map(\.code).sorted().joined(separator: ", "))
        }
        guard (1024...(1 << 30)).contains(maxMessageBytes) else {
            throw ValidationError("--max-message-bytes must be between 1024 and 1073741824")
        }

        let zoneText = value(defaultTimeZone, "RAPPORT_DEFAULT_TIME_ZONE") ?? "UTC"
        guard let zone = TimeZone(identifier: zoneText) else {
            throw ValidationError("time zone '\(zoneText)' is not an IANA time zone such as 'Europe/Berlin'")
        }
        let manual = try manualClock || (env["RAPPORT_MANUAL_CLOCK"].map { try Self.truth($0, variable: "RAPPORT_MANUAL_CLOCK") } ?? false)
        var start: Date?
        if let clockStart {
            guard manual else { throw ValidationError("--clock-start needs --manual-clock") }
            guard let parsed = ISO8601DateFormatter().date(from: clockStart) else {
                throw ValidationError("--clock-start '\(clockStart)' is not an ISO 8601 time such as 2026-01-01T00:00:00Z")
            }
            start = parsed
        }

        return ServerSettings(
            storage: storage, address: address, port: portValue, tls: tls, logLevel: level, defaultPhoneRegion: region,
            maxMessageBytes: maxMessageBytes, defaultTimeZone: zone, manualClock: manual ? (start ?? Date()) : nil)
    }

    static func truth(_ text: String, variable: String) throws -> Bool {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "1", "true", "yes", "on": return true
        case "", "0", "false", "no", "off": return false
        default: throw ValidationError("\(variable) '\(text)' is not 1 or 0")
        }
    }
}
