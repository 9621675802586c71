import Foundation

/// The scenarios the load generator knows, in the order they run.
enum Scenario: String, CaseIterable, Sendable {
    case check = "Check"
    case getCustomerSQLite = "GetCustomer/sqlite"
    case getCustomerMemory = "GetCustomer/memory"
    case ingestSQLite = "IngestEvents/sqlite"
    case ingestMemory = "IngestEvents/memory"

    static let defaults: [Scenario] = [.check, .getCustomerSQLite, .getCustomerMemory, .ingestSQLite]

    var isIngest: Bool { self == .ingestSQLite || self == .ingestMemory }
    var onMemoryServer: Bool { self == .getCustomerMemory || self == .ingestMemory }
}

/// Command-line options (no dependency on ArgumentParser: a handful of flags).
struct Options: Sendable {
    var server: String?
    var warmup = 2.0
    var duration = 10.0
    var inFlight = 64
    var connections = [1, 4]
    var customers = 10_000
    var batch = 1_000
    var scenarios = Scenario.defaults
    var requestIDs = false

    static let usage = """
        usage: LoadGenerator [options]
          --server PATH          the release rapport-server binary (default: ../.build/release/rapport-server
                                 next to this package; build it with `swift build -c release --product rapport-server`)
          --duration SECONDS     measured time per run (default 10)
          --warmup SECONDS       unmeasured load before each run (default 2)
          --in-flight N          calls in flight (default 64)
          --connections LIST     HTTP/2 connections to try, comma-separated; the best is reported (default 1,4)
          --customers N          customers seeded into each server through IngestEvents (default 10000)
          --batch N              events per IngestEvents call (default 1000)
          --request-ids          send a unique request_id with every IngestEvents batch, as the rapport CLI does
                                 (the server then fingerprints the batch for idempotency; default: no request id)
          --scenarios LIST       comma-separated, from \(Scenario.allCases.map(\.rawValue).joined(separator: ", "))
                                 (default: all but IngestEvents/memory)
        Servers run on 127.0.0.1 only, on free ports, with their data in a temporary directory removed at the end.
        """

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        var rest = arguments[...]
        func value(_ flag: String) throws -> String {
            guard let next = rest.popFirst() else { throw UsageError("\(flag) needs a value") }
            return next
        }
        func number<T: LosslessStringConvertible & Comparable>(_ flag: String, atLeast minimum: T) throws -> T {
            let text = try value(flag)
            guard let parsed = T(text), parsed >= minimum else { throw UsageError("\(flag) '\(text)' must be a number ≥ \(minimum)") }
            return parsed
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--server": options.server = try value(flag)
            case "--duration": options.duration = try number(flag, atLeast: 0.1)
            case "--warmup": options.warmup = try number(flag, atLeast: 0.0)
            case "--in-flight": options.inFlight = try number(flag, atLeast: 1)
            case "--customers": options.customers = try number(flag, atLeast: 1)
            case "--batch": options.batch = try number(flag, atLeast: 1)
            case "--connections":
                let text = try value(flag)
                let list = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !list.isEmpty, list.allSatisfy({ (1...64).contains($0) }) else {
                    throw UsageError("--connections '\(text)' must be a comma-separated list of numbers from 1 to 64")
                }
                options.connections = list
            case "--scenarios":
                let text = try value(flag)
                var list: [Scenario] = []
                for name in text.split(separator: ",") {
                    let name = name.trimmingCharacters(in: .whitespaces)
                    guard let scenario = Scenario.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
                        throw UsageError("unknown scenario '\(name)'")
                    }
                    list.append(scenario)
                }
                options.scenarios = Scenario.allCases.filter(list.contains)
            case "--request-ids": options.requestIDs = true
            case "-h", "--help":
                print(usage)
                exit(0)
            default:
                throw UsageError("unknown option '\(flag)'")
            }
        }
        if options.duration + options.warmup > 600 { throw UsageError("--warmup + --duration must stay under 600 s") }
        return options
    }

    /// The server binary: the flag, else the main package's release build next to this package.
    func serverBinary() throws -> String {
        if let server {
            guard FileManager.default.isExecutableFile(atPath: server) else { throw UsageError("--server '\(server)' is not an executable file") }
            return server
        }
        // This file is Benchmarks/LoadGenerator/Sources/Options.swift; the main package is three folders up.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [
            root.appendingPathComponent(".build/release/rapport-server").path,
            FileManager.default.currentDirectoryPath + "/.build/release/rapport-server",
            FileManager.default.currentDirectoryPath + "/../.build/release/rapport-server",
        ]
        if let found = candidates.first(where: FileManager.default.isExecutableFile(atPath:)) { return found }
        throw UsageError("""
            no release rapport-server found (looked at \(candidates.joined(separator: ", "))): \
            build it in the main package with `swift build -c release --product rapport-server` or pass --server
            """)
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
