import GRPCCore
import Logging
import RapportProto
import SwiftProtobuf
import Synchronization
import Testing

/// Every log line of a call names its request id and method, and the API key once it is known.
@Suite("Call logs")
struct LoggingTests {
    @Test func everyLineOfACallCarriesItsRequestIDMethodAndKey() async throws {
        let (logger, lines) = capturingLogger(level: .debug)
        try await withRapport(logger: logger) { c in
            _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.givenName = "Ada" } })
            _ = await expectRPCError(.unauthenticated) {
                try await c.withSecret(nil) { try await c.customers.listCustomers(.init()) }
            }
        }
        let logged = lines.all
        let ok = try #require(logged.first { $0.message == "ok" })
        #expect(ok.level == .debug)
        #expect(ok.metadata["method"] == "rapport.v1.CustomerService/CreateCustomer")
        #expect(ok.metadata["api_key"].map { "\($0)".hasPrefix("key_") } == true)
        #expect(ok.metadata["request_id"].map { !"\($0)".isEmpty } == true)
        #expect(ok.metadata["duration"] != nil)
        let rejected = try #require(logged.first { $0.message == "rejected: no api key" })
        #expect(rejected.level == .info)
        #expect(rejected.metadata["method"] == "rapport.v1.CustomerService/ListCustomers")
        #expect(rejected.metadata["api_key"] == nil)
        #expect(rejected.metadata["request_id"] != nil && rejected.metadata["request_id"] != ok.metadata["request_id"])
    }

    @Test func theAnswerNamesTheCallAsTheLogDoes() async throws {
        let (logger, lines) = capturingLogger(level: .debug)
        try await withRapport(logger: logger) { c in
            // The caller's id comes back in the response's metadata.
            let given = try await c.customers.createCustomer(.with { $0.customer = .with { $0.givenName = "Ada" } }, metadata: ["x-request-id": "order-123"]) {
                $0.metadata[stringValues: "x-request-id"].map { String($0) }
            }
            #expect(given == ["order-123"])
            // Without one, the server's own id, as logged.
            let made = try await c.customers.listCustomers(.init(), metadata: [:]) { $0.metadata[stringValues: "x-request-id"].map { String($0) } }
            #expect(made.count == 1)
            #expect(lines.all.contains { $0.message == "ok" && $0.metadata["request_id"].map { "\($0)" } == made.first })
            // A failed call names it in its trailers, with the status details kept.
            let failed = await expectRPCError(.invalidArgument) {
                try await c.customers.getCustomer(.with { $0.id = "ada" }, metadata: ["x-request-id": "order-124"])
            }
            #expect(failed?.metadata[stringValues: "x-request-id"].map { String($0) } == ["order-124"])
            #expect(violationFields(failed) == ["id"])
            let denied = await expectRPCError(.unauthenticated) {
                try await c.withSecret(nil) { try await c.customers.listCustomers(.init(), metadata: ["x-request-id": "order-125"]) }
            }
            #expect(denied?.metadata[stringValues: "x-request-id"].map { String($0) } == ["order-125"])
        }
    }

    @Test func aFailedCallIsLoggedAtInfoWithoutWhatWasSent() async throws {
        let (logger, lines) = capturingLogger(level: .info)
        try await withRapport(logger: logger) { c in
            _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("ada@example.com")] } })
            // The answer names the e-mail to its caller; the log, kept after an erasure, does not.
            let taken = await expectRPCError(.invalidArgument) {
                try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("ada@example.com")] } })
            }
            #expect(taken?.message.contains("ada@example.com") == true)
            _ = await expectRPCError(.invalidArgument) {
                try await c.customers.findCustomer(.with { $0.identity = .phone("+1 call ada at home") })
            }
        }
        let failed = lines.all.filter { $0.message == "failed" }
        #expect(failed.count == 2)
        #expect(failed.allSatisfy { $0.level == .info })
        #expect(failed.map { "\($0.metadata["error"] ?? "")" } == ["invalidArgument: customer.identities[0]", "invalidArgument: identity.value"])
        #expect(!lines.all.contains { "\($0.message) \($0.metadata)".contains("ada") })
    }

    @Test func nothingIsFormattedForLinesBelowTheLevel() async throws {
        let (logger, lines) = capturingLogger(level: .info)
        try await withRapport(logger: logger) { c in
            _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.givenName = "Ada" } })
        }
        #expect(lines.all.filter { $0.metadata["request_id"] != nil }.isEmpty)
    }
}

/// A log handler that keeps every line it is given, and fails the test if metadata is set on the logger itself
/// (the interceptor passes metadata per line, so that a call that logs nothing formats nothing).
/// A logger at `level` whose lines are kept in the returned `LogLines`.
private func capturingLogger(level: Logger.Level) -> (Logger, LogLines) {
    let lines = LogLines()
    var logger = Logger(label: "rapport.grpc.test") { _ in CapturingLogHandler(lines: lines) }
    logger.logLevel = level
    return (logger, lines)
}

private final class LogLines: Sendable {
    private let lines = Mutex<[(level: Logger.Level, message: String, metadata: Logger.Metadata)]>([])

    var all: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] { lines.withLock { $0 } }

    func append(_ line: (level: Logger.Level, message: String, metadata: Logger.Metadata)) { lines.withLock { $0.append(line) } }
}

private struct CapturingLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:] {
        didSet { Issue.record("metadata set on the logger: \(metadata)") }
    }
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.append((event.level, "\(event.message)", event.metadata ?? [:]))
    }
}
