import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import RapportProto
import SwiftProtobuf
import Synchronization
import Testing

/// Starts the real `rapport-server` binary on a free loopback port over a temporary SQLite file and calls it over
/// HTTP/2, then stops it with SIGTERM and starts it again on the same file.
@Suite struct ServerSmokeTests {
    @Test(.timeLimit(.minutes(1)))
    func aPhoneRegionWithoutANumberingPlanIsRefusedAtStart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-region-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // GR is a region, but not one Rapport has a numbering plan for: its national numbers would be read as US ones.
        let server = try ServerProcess(
            binary: try ServerProcess.locateBinary(), arguments: ["--in-memory", "--port", "0", "--default-phone-region", "GR"], logDirectory: directory,
            name: "region")
        defer { server.killIfRunning() }
        #expect(try await server.exitStatus(within: .seconds(30)) == 64)
        #expect(server.stderrTail().contains("--default-phone-region 'GR' is not one Rapport reads national numbers of"))
    }

    @Test(.timeLimit(.minutes(2)))
    func aSecondServerOnATakenAddressOpensNothing() async throws {
        let binary = try ServerProcess.locateBinary()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-taken-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try ServerProcess(binary: binary, arguments: ["--in-memory", "--port", "0"], logDirectory: directory, name: "first")
        defer { first.killIfRunning() }
        let started = try await first.waitUntilListening(within: .seconds(60))
        // The second would open (and migrate) a database file first: a path it cannot open shows it does not try.
        let second = try ServerProcess(
            binary: binary, arguments: ["--db", directory.appendingPathComponent("missing/crm.sqlite").path, "--port", "\(started.port)"],
            logDirectory: directory, name: "second")
        defer { second.killIfRunning() }
        #expect(try await second.exitStatus(within: .seconds(30)) == 1)
        #expect(second.stderrTail().contains("127.0.0.1:\(started.port) is in use"), "\(second.stderrTail())")
        #expect(try await first.stop(within: .seconds(30)) == 0)
    }

    @Test(.timeLimit(.minutes(3)))
    func servesOverLoopbackStopsOnSIGTERMAndKeepsItsDataAcrossRestarts() async throws {
        let binary = try ServerProcess.locateBinary()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-smoke-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("smoke.sqlite").path

        // First start: an empty store prints the admin key once, then the listening line.
        let first = try ServerProcess(binary: binary, arguments: ["--db", database, "--port", "0"], logDirectory: directory, name: "first")
        defer { first.killIfRunning() }
        let started = try await first.waitUntilListening(within: .seconds(60))
        let adminKey = try #require(started.adminKey, "an empty store prints an admin key on first start; stdout: \(started.output)")
        #expect(adminKey.hasPrefix("rpk_"))

        let customerID = try await withClient(port: started.port) { grpc in
            let health = Grpc_Health_V1_Health.Client(wrapping: grpc)
            let status = try await health.check(Grpc_Health_V1_HealthCheckRequest(), options: Self.callOptions)
            #expect(status.status == .serving, "health needs no key")

            let customers = Rapport_V1_CustomerService.Client(wrapping: grpc)
            let admin: Metadata = ["authorization": "Bearer \(adminKey)"]
            let created = try await customers.createCustomer(
                .with {
                    $0.customer = .with {
                        $0.givenName = "Ada"
                        $0.familyName = "Lovelace"
                        $0.identities = [.with { $0.kind = .email; $0.value = " Ada@Example.COM " }]
                    }
                    $0.requestID = "smoke-create-ada"
                }, metadata: admin, options: Self.callOptions)
            #expect(created.id.hasPrefix("cus_"))
            #expect(created.identities.map(\.value) == ["ada@example.com"])
            #expect(!created.etag.isEmpty)

            let fetched = try await customers.getCustomer(.with { $0.id = created.id }, metadata: admin, options: Self.callOptions)
            #expect(fetched == created)

            let code = await Self.errorCode {
                _ = try await customers.getCustomer(.with { $0.id = created.id }, options: Self.callOptions)
            }
            #expect(code == .unauthenticated, "a call without a key")
            let wrong = await Self.errorCode {
                _ = try await customers.getCustomer(
                    .with { $0.id = created.id }, metadata: ["authorization": "Bearer rpk_notakey"], options: Self.callOptions)
            }
            #expect(wrong == .unauthenticated, "a call with a wrong key")
            return created.id
        }

        let firstExit = try await first.stop(within: .seconds(30))
        #expect(firstExit == 0, "SIGTERM stops the server gracefully with status 0; stderr:\n\(first.stderrTail())")

        // Second start on the same file: the customer is still there and no new admin key is printed.
        let second = try ServerProcess(binary: binary, arguments: ["--db", database, "--port", "0"], logDirectory: directory, name: "second")
        defer { second.killIfRunning() }
        let restarted = try await second.waitUntilListening(within: .seconds(60))
        #expect(restarted.adminKey == nil, "no new admin key on a store that has keys; stdout: \(restarted.output)")
        #expect(!restarted.output.contains(where: { $0.contains("rpk_") }), "stdout: \(restarted.output)")

        try await withClient(port: restarted.port) { grpc in
            let customers = Rapport_V1_CustomerService.Client(wrapping: grpc)
            let kept = try await customers.getCustomer(
                .with { $0.id = customerID }, metadata: ["authorization": "Bearer \(adminKey)"], options: Self.callOptions)
            #expect(kept.id == customerID)
            #expect(kept.givenName == "Ada" && kept.familyName == "Lovelace")
            #expect(kept.identities.map(\.value) == ["ada@example.com"])

            // Streams that never end by themselves do not hold up a shutdown: a worker's StreamOutbox (no deadline,
            // nothing to deliver) and a WatchChanges are open when SIGTERM arrives, and the server still stops.
            let admin: Metadata = ["authorization": "Bearer \(adminKey)"]
            // One message in the outbox, so that the worker's stream is known to be open once it has it.
            _ = try await Rapport_V1_RuleService.Client(wrapping: grpc).createRule(
                .with {
                    $0.rule = .with {
                        $0.name = "Smoke"
                        $0.trigger = .with { $0.event = .with { $0.eventType = "smoke.tested" } }
                        $0.actions = [.with { $0.sendMessage = .with { $0.channel = .email; $0.purpose = .transactional; $0.template = "smoke"; $0.subject = "Hi" } }]
                    }
                }, metadata: admin, options: Self.callOptions)
            _ = try await Rapport_V1_IngestService.Client(wrapping: grpc).ingestEvents(
                .with {
                    $0.items = [
                        .with {
                            $0.event = .with {
                                $0.id = "smoke-1"
                                $0.type = "smoke.tested"
                                $0.occurTime = Google_Protobuf_Timestamp(date: Date())
                                $0.identities = [.with { $0.kind = .email; $0.value = "ada@example.com" }]
                            }
                        }
                    ]
                }, metadata: admin, options: Self.callOptions)
            let (delivered, deliveredContinuation) = AsyncStream<Void>.makeStream()
            let worker = Task {
                try await Rapport_V1_OutboxService.Client(wrapping: grpc).streamOutbox(.with { $0.consumer = "smoke-worker" }, metadata: admin) { response in
                    var count = 0
                    do {
                        for try await _ in response.messages {
                            count += 1
                            deliveredContinuation.yield()
                        }
                    } catch let error as RPCError {
                        return (count, RPCError.Code?.some(error.code))
                    }
                    return (count, RPCError.Code?.none)
                }
            }
            var deliveredIterator = delivered.makeAsyncIterator()
            _ = await deliveredIterator.next()  // the worker has its message and waits for more
            let (opened, openedContinuation) = AsyncStream<Void>.makeStream()
            let watcher = Task {
                try await Rapport_V1_ChangeService.Client(wrapping: grpc).watchChanges(.init(), metadata: admin) { response in
                    var count = 0
                    do {
                        for try await _ in response.messages {
                            count += 1
                            openedContinuation.yield()
                        }
                    } catch let error as RPCError {
                        return (count, RPCError.Code?.some(error.code))
                    }
                    return (count, RPCError.Code?.none)
                }
            }
            var openedIterator = opened.makeAsyncIterator()
            _ = await openedIterator.next()  // the backlog arrived: the watch is open
            let secondExit = try await second.stop(within: .seconds(30))
            #expect(secondExit == 0, "SIGTERM stops the server with open streams; stderr:\n\(second.stderrTail())")
            // Both streams end with the server, as UNAVAILABLE: a shutdown is not the end of the feed or the outbox.
            let (sent, workerEnd) = try await worker.value
            #expect(sent == 1)
            #expect(workerEnd == .unavailable, "the outbox stream ends with the server")
            let (changes, watchEnd) = try await watcher.value
            #expect(changes >= 1)
            #expect(watchEnd == .unavailable, "the watch ends with the server")
        }
    }

    static var callOptions: CallOptions {
        var options = CallOptions.defaults
        options.timeout = .seconds(15)
        return options
    }

    /// The status code of the error `body` throws, or nil when it does not throw.
    static func errorCode(_ body: () async throws -> Void) async -> RPCError.Code? {
        do {
            try await body()
            return nil
        } catch let error as RPCError {
            return error.code
        } catch {
            Issue.record("expected an RPCError, got \(error)")
            return nil
        }
    }

    func withClient<T: Sendable>(port: Int, _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        return try await withGRPCClient(transport: transport) { grpc in try await body(grpc) }
    }
}

/// A running `rapport-server`: its standard output as lines, its standard error in a file, its exit status.
final class ServerProcess: @unchecked Sendable {  // immutable after init; Process is thread-safe to query
    struct Started: Sendable {
        var port: Int
        /// The admin secret printed on first start, if it was printed.
        var adminKey: String?
        /// Every line printed up to and including the listening line.
        var output: [String]
    }

    enum Failure: Error, CustomStringConvertible {
        case missingBinary(String)
        case timedOut(String)
        case exitedEarly(String)

        var description: String {
            switch self {
            case .missingBinary(let text), .timedOut(let text), .exitedEarly(let text): text
            }
        }
    }

    private let process: Process
    private let lines: AsyncStream<String>
    private let exit: AsyncStream<Int32>
    private let stderrPath: String

    init(binary: URL, arguments: [String], logDirectory: URL, name: String) throws {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardInput = FileHandle.nullDevice
        stderrPath = logDirectory.appendingPathComponent("\(name).stderr.log").path
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))

        let (lines, lineSink) = AsyncStream<String>.makeStream()
        let (exit, exitSink) = AsyncStream<Int32>.makeStream()
        self.process = process
        self.lines = lines
        self.exit = exit
        let pending = PendingOutput()
        // Splits stdout into lines as it arrives; an empty read is the end of the stream.
        stdout.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                let rest = pending.data.withLock { buffer in
                    defer { buffer.removeAll() }
                    return buffer
                }
                if !rest.isEmpty { lineSink.yield(String(decoding: rest, as: UTF8.self)) }
                lineSink.finish()
                return
            }
            let complete: [String] = pending.data.withLock { buffer in
                buffer.append(data)
                var found: [String] = []
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    found.append(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                    buffer.removeSubrange(buffer.startIndex...newline)
                }
                return found
            }
            for line in complete { lineSink.yield(line) }
        }
        process.terminationHandler = { finished in
            exitSink.yield(finished.terminationStatus)
            exitSink.finish()
        }
        try process.run()
    }

    /// The built `rapport-server` next to the test bundle (`.build/<triple>/debug/`), or `RAPPORT_SERVER_BIN`.
    static func locateBinary() throws -> URL {
        if let explicit = ProcessInfo.processInfo.environment["RAPPORT_SERVER_BIN"], !explicit.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: explicit) else {
                throw Failure.missingBinary("RAPPORT_SERVER_BIN names '\(explicit)', which is not an executable file")
            }
            return URL(fileURLWithPath: explicit)
        }
        var directories: [URL] = []
        let argument0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        directories.append(argument0.deletingLastPathComponent())
        // An .xctest bundle (macOS): the binary sits next to the bundle.
        var bundle = Bundle.main.bundleURL
        while bundle.pathComponents.count > 1 {
            if bundle.pathExtension == "xctest" { directories.append(bundle.deletingLastPathComponent()) }
            bundle = bundle.deletingLastPathComponent()
        }
        for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            directories.append(bundle.bundleURL.deletingLastPathComponent())
        }
        for directory in directories {
            let candidate = directory.appendingPathComponent("rapport-server")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw Failure.missingBinary(
            "rapport-server is not built next to the tests (looked in \(directories.map(\.path))): run `swift build --product rapport-server` first")
    }

    /// Reads stdout until `rapport-server listening on HOST:PORT`, noting the admin secret printed before it.
    func waitUntilListening(within limit: Duration) async throws -> Started {
        let lines = self.lines
        let stderrPath = self.stderrPath
        return try await withThrowingTaskGroup(of: Started?.self) { group in
            group.addTask {
                var output: [String] = []
                var adminKey: String?
                var secretFollows = false
                for await line in lines {
                    output.append(line)
                    if secretFollows {
                        let secret = line.trimmingCharacters(in: .whitespaces)
                        if secret.hasPrefix("rpk_") { adminKey = secret }
                        secretFollows = false
                    } else if line.contains("Its secret:") {
                        secretFollows = true
                    } else if let port = Self.listeningPort(line) {
                        return Started(port: port, adminKey: adminKey, output: output)
                    }
                }
                throw Failure.exitedEarly("rapport-server closed its output before listening; stdout: \(output)\nstderr:\n\(Self.tail(of: stderrPath))")
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let started = first else {
                throw Failure.timedOut("rapport-server printed no listening line within \(limit)\nstderr:\n\(Self.tail(of: stderrPath))")
            }
            return started
        }
    }

    /// The port of a `rapport-server listening on HOST:PORT` line.
    static func listeningPort(_ line: String) -> Int? {
        let prefix = "rapport-server listening on "
        guard line.hasPrefix(prefix), let colon = line.lastIndex(of: ":") else { return nil }
        return Int(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }

    /// Sends SIGTERM and waits for the exit status; nil when it did not exit within `limit`.
    func stop(within limit: Duration) async throws -> Int32? {
        if process.isRunning { process.terminate() }
        return try await exitStatus(within: limit)
    }

    /// Waits for the process to exit by itself; nil when it did not within `limit`.
    func exitStatus(within limit: Duration) async throws -> Int32? {
        let exit = self.exit
        return try await withThrowingTaskGroup(of: Int32?.self) { group in
            group.addTask {
                for await status in exit { return status }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// Cleanup after a failure: SIGKILL a server still running.
    func killIfRunning() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
    }

    /// The last lines of the server's standard error, for failure messages.
    func stderrTail() -> String { Self.tail(of: stderrPath) }

    static func tail(of path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(30).joined(separator: "\n")
    }
}

/// Bytes of standard output not yet split into lines.
final class PendingOutput: Sendable {
    let data = Mutex(Data())
}
