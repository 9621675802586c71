import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Measures the release rapport-server over loopback gRPC with a fixed number of calls in flight: the health
/// service's Check (the transport's own limit), GetCustomer on SQLite and on memory, and IngestEvents batches;
/// prints QPS, p50/p99 and the ratios to Check against the goals. See Benchmarks/README.md.
@main
enum LoadGenerator {
    static func main() async {
        let options: Options
        do {
            options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            say("error: \(error)\n\n\(Options.usage)")
            exit(2)
        }
        do {
            try await run(options)
        } catch {
            say("error: \(error)")
            exit(1)
        }
    }

    static func run(_ options: Options) async throws {
        let binary = try options.serverBinary()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-load-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        say("rapport-server: \(binary)")
        say("load average at start: \(loadAverage()); \(ProcessInfo.processInfo.activeProcessorCount) cores")
        say("\(options.inFlight) calls in flight, connections tried: \(options.connections.map(String.init).joined(separator: ", ")); " +
            "\(fmt(options.warmup, 1)) s warm-up + \(fmt(options.duration, 1)) s measured per run; \(options.customers) customers seeded per server" +
            (options.requestIDs ? "; ingest batches carry a request_id" : ""))

        let needsMemory = options.scenarios.contains(where: \.onMemoryServer)
        let sqlite = try ServerProcess(
            name: "sqlite server", binary: binary, storageArguments: ["--db", directory.appendingPathComponent("load.sqlite").path],
            logPath: directory.appendingPathComponent("sqlite-server.log").path)
        var memory: ServerProcess?
        do {
            if needsMemory {
                memory = try ServerProcess(
                    name: "memory server", binary: binary, storageArguments: ["--in-memory"],
                    logPath: directory.appendingPathComponent("memory-server.log").path)
            }
        } catch {
            sqlite.stop()
            throw error
        }

        // Whatever happens, nothing outlives a generous bound: the watchdog kills the servers and exits.
        let runs = Double(options.scenarios.count * options.connections.count)
        let budget = runs * (options.warmup + options.duration + 10) + 300
        let pids = [sqlite.pid] + (memory.map { [$0.pid] } ?? [])
        let watchdog = Task.detached {
            try await Task.sleep(nanoseconds: UInt64(budget * 1e9))
            say("error: the run took longer than \(Int(budget)) s: killing the servers")
            for pid in pids { kill(pid, SIGKILL) }
            exit(3)
        }

        let outcome: Result<[(Scenario, [RunResult])], any Error>
        do {
            outcome = .success(try await measureAll(options, sqlite: sqlite, memory: memory))
        } catch {
            outcome = .failure(error)
        }
        watchdog.cancel()
        for server in [sqlite, memory].compactMap({ $0 }) {
            let status = server.stop()
            if status != 0 { say("note: \(server.name) exited with status \(status) (log: \(server.logPath))") }
        }
        let results = try outcome.get()
        say("load average at end: \(loadAverage())")
        report(results, options: options)
    }

    static func measureAll(_ options: Options, sqlite: ServerProcess, memory: ServerProcess?) async throws -> [(Scenario, [RunResult])] {
        var seeded: [Int: [String]] = [:]  // by port
        for server in [sqlite, memory].compactMap({ $0 }) {
            let started = now()
            seeded[server.port] = try await withClients(port: server.port, count: 1) { clients in
                try await Workloads(adminKey: server.adminKey).seed(clients[0], customers: options.customers, batch: options.batch)
            }
            say("seeded \(options.customers) customers into the \(server.name) (127.0.0.1:\(server.port)) in \(fmt(Double(now() - started) / 1e9, 2)) s")
        }

        say("")
        say(header)
        var all: [(Scenario, [RunResult])] = []
        var run = 0
        for scenario in options.scenarios {
            let server = scenario.onMemoryServer ? memory! : sqlite
            let workloads = Workloads(adminKey: server.adminKey)
            var results: [RunResult] = []
            for connections in options.connections {
                run += 1
                let call = switch scenario {
                case .check: workloads.check()
                case .getCustomerSQLite, .getCustomerMemory: workloads.getCustomer(ids: seeded[server.port]!)
                case .ingestSQLite, .ingestMemory: workloads.ingest(run: run, customers: options.customers, batch: options.batch, requestIDs: options.requestIDs)
                }
                let result = try await withClients(port: server.port, count: connections) { clients in
                    await measure(
                        clients: clients, inFlight: options.inFlight, warmup: options.warmup, duration: options.duration,
                        itemsPerCall: scenario.isIngest ? options.batch : 1, serverPID: server.pid, seed: UInt64(run), call: call)
                }
                say(line(scenario, result))
                if result.errors > 0 || result.completed == 0 {
                    say("  \(result.errors) calls failed; first error: \(result.firstError ?? "none")")
                }
                results.append(result)
            }
            all.append((scenario, results))
        }
        return all
    }

    static let header = "scenario               conns    calls/s    p50 ms    p99 ms        items/s   server CPU/call  client CPU/call"

    static func line(_ scenario: Scenario, _ result: RunResult) -> String {
        let calls = Double(max(result.completed, 1))
        return pad(scenario.rawValue, 22) + lpad("\(result.connections)", 6) + lpad(fmt(result.callsPerSecond, 0), 11)
            + lpad(fmt(result.milliseconds(atPercentile: 50), 2), 10) + lpad(fmt(result.milliseconds(atPercentile: 99), 2), 10)
            + lpad(scenario.isIngest ? fmt(result.itemsPerSecond, 0) : "", 15)
            + lpad(fmt(result.serverCPU / calls * 1e6, 0) + " µs", 17) + lpad(fmt(result.clientCPU / calls * 1e6, 0) + " µs", 17)
    }

    static func report(_ results: [(Scenario, [RunResult])], options: Options) {
        var best: [Scenario: RunResult] = [:]
        say("")
        say("best of the connection counts per scenario:")
        say(header)
        for (scenario, runs) in results {
            guard let top = runs.max(by: { $0.callsPerSecond < $1.callsPerSecond }) else { continue }
            best[scenario] = top
            say(line(scenario, top))
        }
        say("")
        func ratio(_ name: Scenario, goal: Double?) {
            guard let check = best[.check], let other = best[name], check.callsPerSecond > 0 else { return }
            let value = other.callsPerSecond / check.callsPerSecond
            var text = "ratio \(name.rawValue) ÷ Check = \(fmt(value, name.isIngest ? 4 : 2)) (\(fmt(other.callsPerSecond, 0)) / \(fmt(check.callsPerSecond, 0)) calls/s"
            if let goal { text += "; goal ≥ \(fmt(goal, 2)): \(value >= goal ? "met" : "MISSED")" }
            say(text + ")")
        }
        ratio(.getCustomerSQLite, goal: 0.70)
        ratio(.getCustomerMemory, goal: nil)
        ratio(.ingestSQLite, goal: nil)
        ratio(.ingestMemory, goal: nil)
        for scenario in [Scenario.ingestSQLite, .ingestMemory] {
            guard let result = best[scenario] else { continue }
            var text = "\(scenario.rawValue): \(fmt(result.itemsPerSecond, 0)) events/s, \(fmt(result.callsPerSecond, 1)) batches/s of \(options.batch)"
            if scenario == .ingestSQLite { text += " (goal ≥ 100000 events/s: \(result.itemsPerSecond >= 100_000 ? "met" : "MISSED"))" }
            say(text)
        }
        let failed = results.flatMap(\.1).reduce(0) { $0 + $1.errors }
        if failed > 0 { say("warning: \(failed) calls failed during measured windows (see above)") }
    }
}

/// Writes a line to standard output at once (print is block-buffered when piped).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

func fmt(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}

func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
func lpad(_ text: String, _ width: Int) -> String { text.count >= width ? text : String(repeating: " ", count: width - text.count) + text }
