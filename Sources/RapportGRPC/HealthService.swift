import GRPCCore
import RapportProto
import SwiftProtobuf
import Synchronization

/// The standard `grpc.health.v1.Health` service. It needs no API key.
///
/// The server as a whole (service `""`) and every Rapport service report one status, which the server sets to
/// not serving when it begins to shut down.
public final class HealthService: Sendable {
    private let serving = Mutex(true)
    /// The open Watch streams; nil once ``finishWatchers()`` ended them (a Watch opened later ends at once).
    private let watchers = Mutex<[Int: AsyncStream<Bool>.Continuation]?>([:])
    private let nextWatcher = Atomic<Int>(0)

    /// The services it answers for, besides the server as a whole: every service the server registers.
    static let known: Set<String> = Set(
        [
            Rapport_V1_CustomerService.descriptor, Rapport_V1_MergeService.descriptor, Rapport_V1_IngestService.descriptor,
            Rapport_V1_Customer360Service.descriptor, Rapport_V1_InteractionService.descriptor, Rapport_V1_ConsentService.descriptor,
            Rapport_V1_ChangeService.descriptor, Rapport_V1_ApiKeyService.descriptor, Rapport_V1_SegmentService.descriptor,
            Rapport_V1_RuleService.descriptor, Rapport_V1_OutboxService.descriptor, Rapport_V1_ClockService.descriptor,
            Rapport_V1_PrivacyService.descriptor, Grpc_Health_V1_Health.descriptor,
        ].map(\.fullyQualifiedService))

    init() {}

    /// Sets the status of every service; watchers hear of the change.
    public func setServing(_ isServing: Bool) {
        let changed = serving.withLock { value in
            defer { value = isServing }
            return value != isServing
        }
        guard changed else { return }
        for watcher in watchers.withLock({ Array(($0 ?? [:]).values) }) { watcher.yield(isServing) }
    }

    var isServing: Bool { serving.withLock { $0 } }

    /// Ends every Watch stream (after telling it the current status), and those opened later at once.
    func finishWatchers() {
        let all = watchers.withLock { watchers in
            defer { watchers = nil }
            return Array((watchers ?? [:]).values)
        }
        for watcher in all { watcher.finish() }
    }

    func status(of service: String) -> Grpc_Health_V1_HealthCheckResponse.ServingStatus? {
        guard service.isEmpty || Self.known.contains(service) else { return nil }
        return isServing ? .serving : .notServing
    }

    func watch() -> (id: Int, updates: AsyncStream<Bool>) {
        let id = nextWatcher.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<Bool>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let open = watchers.withLock { watchers in
            guard watchers != nil else { return false }
            watchers?[id] = continuation
            return true
        }
        if !open { continuation.finish() }  // shutting down: the stream tells the status once and ends
        return (id, stream)
    }

    /// Whether ``finishWatchers()`` ended the Watch streams (the server is shutting down).
    var watchersFinished: Bool { watchers.withLock { $0 == nil } }

    func stopWatching(_ id: Int) {
        watchers.withLock { $0?.removeValue(forKey: id) }?.finish()
    }
}

/// The generated service protocol over a ``HealthService``.
struct HealthAdapter: Grpc_Health_V1_Health.SimpleServiceProtocol {
    let health: HealthService

    func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard let status = health.status(of: request.service) else { throw RPCError(code: .notFound, message: "unknown service '\(request.service)'") }
        return .with { $0.status = status }
    }

    func watch(request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>, context: ServerContext) async throws {
        let (id, updates) = health.watch()
        defer { health.stopWatching(id) }
        let service = request.service
        let health = self.health
        let writer = Task {
            try await response.write(.with { $0.status = health.status(of: service) ?? .serviceUnknown })
            for await _ in updates {
                try await response.write(.with { $0.status = health.status(of: service) ?? .serviceUnknown })
            }
        }
        try await withRPCCancellationHandler {
            try await writer.value
        } onCancelRPC: {
            writer.cancel()
        }
        // The updates end only when the server shuts down: a stream ended then is UNAVAILABLE, never OK, so that
        // the client watches another server.
        if health.watchersFinished {
            throw RPCError(code: .unavailable, message: "the server is shutting down: watch another one")
        }
    }
}
