import Foundation
import Synchronization
import GRPCCore
import GRPCInProcessTransport
import GRPCProtobuf
import Logging
import Rapport
import RapportCore
import RapportGRPC
import RapportProto
import RapportTesting
import SwiftProtobuf
import Testing

typealias Transport = InProcessTransport.Client

/// 2026-01-01T00:00:00Z, where `TestRapport`'s clock starts, in seconds.
let startSeconds: Int64 = 1_767_225_600

/// The secret that calls made by the current task send as `authorization: Bearer <secret>`; nil sends no key.
enum CallAuth {
    @TaskLocal static var secret: String?
}

/// Adds `authorization: Bearer <CallAuth.secret>` to every call that does not carry an `authorization` already.
struct BearerInterceptor: ClientInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>, context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        if let secret = CallAuth.secret, request.metadata[stringValues: "authorization"].first(where: { _ in true }) == nil {
            request.metadata.addString("Bearer \(secret)", forKey: "authorization")
        }
        return try await next(request, context)
    }
}

/// A running in-process Rapport server and clients of every service.
struct Harness: Sendable {
    let test: TestRapport
    let server: RapportGRPCServer
    /// The running gRPC server.
    let grpcServer: GRPCServer<InProcessTransport.Server>
    let grpc: GRPCClient<Transport>
    /// A key per role (the admin key is the bootstrap key).
    let keys: [Role: CreatedAPIKey]

    var engine: RapportEngine { test.crm }
    var clock: ManualClock { test.clock }

    var customers: Rapport_V1_CustomerService.Client<Transport> { .init(wrapping: grpc) }
    var merges: Rapport_V1_MergeService.Client<Transport> { .init(wrapping: grpc) }
    var ingest: Rapport_V1_IngestService.Client<Transport> { .init(wrapping: grpc) }
    var views: Rapport_V1_Customer360Service.Client<Transport> { .init(wrapping: grpc) }
    var interactions: Rapport_V1_InteractionService.Client<Transport> { .init(wrapping: grpc) }
    var consents: Rapport_V1_ConsentService.Client<Transport> { .init(wrapping: grpc) }
    var changes: Rapport_V1_ChangeService.Client<Transport> { .init(wrapping: grpc) }
    var apiKeys: Rapport_V1_ApiKeyService.Client<Transport> { .init(wrapping: grpc) }
    var health: Grpc_Health_V1_Health.Client<Transport> { .init(wrapping: grpc) }
    var segments: Rapport_V1_SegmentService.Client<Transport> { .init(wrapping: grpc) }
    var rules: Rapport_V1_RuleService.Client<Transport> { .init(wrapping: grpc) }
    var outbox: Rapport_V1_OutboxService.Client<Transport> { .init(wrapping: grpc) }
    var clockService: Rapport_V1_ClockService.Client<Transport> { .init(wrapping: grpc) }
    var privacy: Rapport_V1_PrivacyService.Client<Transport> { .init(wrapping: grpc) }

    func secret(_ role: Role) -> String { keys[role]!.secret }

    /// Runs `body` with calls authenticated by `role`'s key.
    func `as`<T>(_ role: Role, _ body: () async throws -> T) async rethrows -> T {
        try await CallAuth.$secret.withValue(secret(role)) { try await body() }
    }

    /// Runs `body` with calls that send `secret` (nil: no `authorization` at all).
    func withSecret<T>(_ secret: String?, _ body: () async throws -> T) async rethrows -> T {
        try await CallAuth.$secret.withValue(secret) { try await body() }
    }
}

let quietLogger = Logger(label: "rapport.grpc.test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Runs a fresh in-memory engine (manual clock) behind a real `GRPCServer` over `InProcessTransport`, with
/// `RapportGRPCServer`'s services and interceptors, and calls `body` with clients whose calls carry `role`'s key.
///
/// - Parameter serverInterceptors: more interceptors, after Rapport's own.
func withRapport<T: Sendable>(
    role: Role = .admin, serverInterceptors: [any ServerInterceptor] = [], logger: Logger = quietLogger, _ body: (Harness) async throws -> T
) async throws -> T {
    let test = TestRapport()
    let admin = try #require(try await test.crm.bootstrapAdminKey())
    var keys: [Role: CreatedAPIKey] = [.admin: admin]
    for other in Role.allCases where other != .admin {
        keys[other] = try await test.crm.createAPIKey(name: "\(other.rawValue) key", role: other)
    }
    let rapport = RapportGRPCServer(engine: test.crm, logger: logger)
    let transport = InProcessTransport()
    let frozenKeys = keys
    return try await withGRPCServer(
        transport: transport.server, services: rapport.services, interceptors: rapport.interceptors + serverInterceptors
    ) { grpcServer in
        try await withGRPCClient(transport: transport.client, interceptors: [BearerInterceptor()]) { client in
            let harness = Harness(test: test, server: rapport, grpcServer: grpcServer, grpc: client, keys: frozenKeys)
            return try await CallAuth.$secret.withValue(frozenKeys[role]!.secret) { try await body(harness) }
        }
    }
}

// MARK: - Errors

/// Runs `body`, expects it to fail with `code`, and returns the error.
@discardableResult
func expectRPCError<T>(
    _ code: RPCError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async -> RPCError? {
    do {
        let value = try await body()
        Issue.record("expected \(code), got a response: \(value)", sourceLocation: sourceLocation)
        return nil
    } catch let error as RPCError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected RPCError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The status code a call ends with (`.ok` as nil), for the access matrix.
func statusCode(of body: () async throws -> Void) async -> (code: RPCError.Code?, error: (any Error)?) {
    do {
        try await body()
        return (nil, nil)
    } catch let error as RPCError {
        return (error.code, error)
    } catch {
        return (.unknown, error)
    }
}

/// The field paths of the google.rpc.BadRequest in an error's status details (recording an issue when there is none).
///
/// It does not throw: `#expect(try ...)` in a closure with no other `try` does not make the closure throwing.
func violationFields(_ error: RPCError?, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
    guard let error else {
        Issue.record("no error", sourceLocation: sourceLocation)
        return []
    }
    let unpacked: GoogleRPCStatus?
    do {
        unpacked = try error.unpackGoogleRPCStatus()
    } catch {
        Issue.record("the status details do not decode: \(error)", sourceLocation: sourceLocation)
        return []
    }
    guard let status = unpacked else {
        Issue.record("no google.rpc.Status in the metadata of \(error)", sourceLocation: sourceLocation)
        return []
    }
    #expect(status.code == .invalidArgument, sourceLocation: sourceLocation)
    #expect(status.message == error.message, sourceLocation: sourceLocation)
    let badRequests = status.details.compactMap(\.badRequest)
    #expect(badRequests.count == 1, "one BadRequest detail expected, got \(status.details)", sourceLocation: sourceLocation)
    for violation in badRequests.flatMap(\.violations) {
        #expect(!violation.violationDescription.isEmpty, "violation of \(violation.field) has no description", sourceLocation: sourceLocation)
    }
    return badRequests.flatMap(\.violations).map(\.field)
}

// MARK: - Proto builders

extension Rapport_V1_Identity {
    static func email(_ value: String) -> Self { .with { $0.kind = .email; $0.value = value } }
    static func phone(_ value: String) -> Self { .with { $0.kind = .phone; $0.value = value } }
    static func memberCard(_ value: String) -> Self { .with { $0.kind = .memberCard; $0.value = value } }
    static func externalID(_ value: String, source: String) -> Self { .with { $0.kind = .externalID; $0.source = source; $0.value = value } }
}

/// A proto timestamp `seconds` after the test clock's start.
func at(_ seconds: Int64) -> Google_Protobuf_Timestamp {
    Google_Protobuf_Timestamp(seconds: startSeconds + seconds, nanos: 0)
}

func eventItem(
    _ id: String, _ type: String = "page.viewed", at seconds: Int64 = 0, _ identities: Rapport_V1_Identity...,
    properties: [String: Rapport_V1_AttributeValue] = [:]
) -> Rapport_V1_IngestItem {
    .with {
        $0.event = .with {
            $0.id = id
            $0.type = type
            $0.occurTime = at(seconds)
            $0.channel = .web
            $0.identities = identities
            $0.properties = properties
        }
    }
}

func orderItem(
    _ externalID: String, at seconds: Int64 = 0, _ identities: Rapport_V1_Identity..., unitPrice: Int64 = 1000, quantity: Int64 = 1,
    status: Rapport_V1_OrderStatus = .placed, statusAt: Int64? = nil
) -> Rapport_V1_IngestItem {
    .with {
        $0.order = .with {
            $0.source = "web"
            $0.externalID = externalID
            $0.channel = .web
            $0.identities = identities
            $0.lines = [.with { $0.sku = "SKU-\(externalID)"; $0.name = "Item \(externalID)"; $0.quantity = quantity; $0.unitPriceMinor = unitPrice }]
            $0.currency = "EUR"
            $0.status = status
            $0.placeTime = at(seconds)
            if let statusAt { $0.statusTime = at(statusAt) }
        }
    }
}

/// Ada's full profile: personal data in every field that can hold some.
let adaEmail = "ada.lovelace@example.com"
let adaPhone = "+14155550123"
let adaCard = "CARD77881234"
let adaStreet = "12 Analytical Engine Road"
let adaPostalCode = "SW1Y 4JH"
let adaSummary = "Ada called about her parcel, her new address is 3 Difference Lane"

var adaProto: Rapport_V1_Customer {
    .with {
        $0.givenName = "Ada"
        $0.familyName = "Lovelace"
        $0.birthday = .with { $0.year = 1990; $0.month = 12; $0.day = 10 }
        $0.locale = "en-GB"
        $0.timeZone = "Europe/London"
        $0.addresses = [
            .with {
                $0.label = "home"
                $0.line1 = adaStreet
                $0.line2 = "Flat 2"
                $0.city = "London"
                $0.postalCode = adaPostalCode
                $0.country = "GB"
            }
        ]
        $0.tags = ["vip"]
        $0.lifecycleStage = .active
        $0.identities = [.email(adaEmail), .phone("+1 415-555-0123"), .memberCard("card-7788-1234")]
    }
}

/// What a serialized message holds, as text, to look for leaked values.
func printed(_ message: some SwiftProtobuf.Message) -> String {
    message.textFormatString()
}

/// Collects the responses of a server-streaming call as they arrive.
extension RPCAsyncSequence {
    func first(_ count: Int) async throws -> [Element] {
        var result: [Element] = []
        var iterator = makeAsyncIterator()
        while result.count < count, let next = try await iterator.next() { result.append(next) }
        return result
    }
}

/// A counter that `@Sendable` closures can bump.
final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
