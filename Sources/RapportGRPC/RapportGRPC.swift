public import GRPCCore
public import Logging
public import Rapport

/// The gRPC face of a Rapport engine: every service of `proto/rapport/v1`, the standard health service, and the
/// interceptors that authenticate callers, check their role and log each call.
///
/// It picks no transport: hand ``services`` and ``interceptors`` to any `GRPCServer`.
///
/// ```swift
/// let rapport = RapportGRPCServer(engine: crm, logger: logger)
/// let server = GRPCServer(transport: transport, services: rapport.services, interceptors: rapport.interceptors)
/// ```
public struct RapportGRPCServer: Sendable {
    /// The engine every call goes to.
    public let engine: RapportEngine
    /// The health service; mark it not serving when shutting down.
    public let health: HealthService
    /// The services to register.
    public let services: [any RegistrableRPCService]
    /// Authentication, authorization and call logging, in that order.
    public let interceptors: [any ServerInterceptor]

    /// The services over `engine`.
    /// - Parameter logger: where each call is logged, with a request id.
    public init(engine: RapportEngine, logger: Logger = Logger(label: "rapport.grpc")) {
        self.engine = engine
        let health = HealthService()
        self.health = health
        self.services = [
            CustomerServiceAdapter(engine: engine), MergeServiceAdapter(engine: engine), IngestServiceAdapter(engine: engine),
            Customer360ServiceAdapter(engine: engine), InteractionServiceAdapter(engine: engine), ConsentServiceAdapter(engine: engine),
            ChangeServiceAdapter(engine: engine), APIKeyServiceAdapter(engine: engine), SegmentServiceAdapter(engine: engine),
            RuleServiceAdapter(engine: engine), OutboxServiceAdapter(engine: engine), ClockServiceAdapter(engine: engine), HealthAdapter(health: health),
            PrivacyServiceAdapter(engine: engine),
        ]
        self.interceptors = [AccessInterceptor(engine: engine, logger: logger)]
    }

    /// Prepares a graceful shutdown: health reports NOT_SERVING, and the long-lived streams (health Watch,
    /// WatchChanges, StreamOutbox, which hands back the entries it leased and did not send) end, now and when opened
    /// later, so that the server does not wait for them. Call it before `beginGracefulShutdown()`.
    public func beginShutdown() {
        health.setServing(false)
        health.finishWatchers()
        engine.finishChangeWatchers()
    }
}
