import GRPCCore
import Logging
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf

/// Who is calling: the API key the interceptor authenticated, for the handlers (masking).
enum Caller {
    @TaskLocal static var key: APIKey?

    /// Whether the caller may see personal data unmasked. Calls made without the interceptor (in-process
    /// embedding) are trusted.
    static var seesPersonalData: Bool { key?.role.seesPersonalData ?? true }
}

/// Authenticates each call from its `authorization: Bearer <key>` metadata, checks the key's role against the
/// permission the method declares, and logs the call with a request id.
///
/// No key or an unknown or revoked key is UNAUTHENTICATED; a role without the permission is PERMISSION_DENIED;
/// neither says more. The health service needs no key.
final class AccessInterceptor: ServerInterceptor {
    let engine: RapportEngine
    let logger: Logger

    init(engine: RapportEngine, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        // The caller's id for the call, else a random one; either way the answer names it (`x-request-id` in the
        // response's metadata, or in the trailers of an error), so that a client can find the call in the log.
        let requestID =
            request.metadata[stringValues: "x-request-id"].first(where: { _ in true }).map { String($0.prefix(64)) }
            ?? String(UInt64.random(in: 0...UInt64.max), radix: 36)
        do {
            var response = try await run(request: request, context: context, next: next, requestID: requestID)
            response.metadata.replaceOrAddString(requestID, forKey: "x-request-id")
            return response
        } catch {
            throw Self.error(error, naming: requestID)
        }
    }

    /// `error` as an RPC error whose metadata names the call.
    static func error(_ error: any Error, naming requestID: String) -> any Error {
        var named: RPCError
        if let rpc = error as? RPCError {
            named = rpc
        } else if let convertible = error as? any RPCErrorConvertible {
            named = RPCError(
                code: convertible.rpcErrorCode, message: convertible.rpcErrorMessage, metadata: convertible.rpcErrorMetadata,
                cause: convertible.rpcErrorCause)
        } else {
            return error
        }
        named.metadata.replaceOrAddString(requestID, forKey: "x-request-id")
        return named
    }

    private func run<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>, requestID: String
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor
        var logger = RequestLogger(logger: self.logger, method: method, requestID: requestID)

        guard let permission = Permissions.required(for: method) else {
            // Open methods (health).
            return try await next(request, context)
        }
        guard let secret = Self.bearer(request.metadata) else {
            logger.info("rejected: no api key")
            throw RPCError(code: .unauthenticated, message: "missing API key: send 'authorization: Bearer <key>'")
        }
        guard let key = try await engine.authenticate(secret: secret) else {
            logger.info("rejected: unknown or revoked api key")
            throw RPCError(code: .unauthenticated, message: "invalid API key")
        }
        logger.apiKey = key.id
        guard key.role.permissions.contains(permission) else {
            logger.info("rejected: role \(key.role.rawValue) lacks \(permission.rawValue)")
            throw RPCError(code: .permissionDenied, message: "the API key's role may not call \(method.method)")
        }
        let started = ContinuousClock.now
        let engine = self.engine
        do {
            // A client stream is read inside `next`: revoking the key ends it there.
            // The task group the race runs in ends before this returns: `next` does not outlive the call.
            var response = try await withoutActuallyEscaping(next) { next in
                try await Self.untilRevoked(key, engine: engine, enabled: method.type?.isRequestStreaming ?? true) {
                    try await Caller.$key.withValue(key) {
                        // Request ids are each key's own: two services may both send "42".
                        try await RapportEngine.$requestScope.withValue(key.id.rawValue) { try await next(request, context) }
                    }
                }
            }
            // Streaming responses are produced after this returns: they run as the caller too, and end when the
            // key is revoked.
            if case .success(var contents) = response.accepted {
                let producer = contents.producer
                let streaming = method.type?.isResponseStreaming ?? true
                contents.producer = { [logger] writer in
                    do {
                        let trailers = try await Self.untilRevoked(key, engine: engine, enabled: streaming) {
                            try await Caller.$key.withValue(key) {
                                try await RapportEngine.$requestScope.withValue(key.id.rawValue) { try await producer(writer) }
                            }
                        }
                        logger.debug("stream finished", metadata: ["duration": "\(ContinuousClock.now - started)"])
                        return trailers
                    } catch {
                        logger.info("stream failed", metadata: ["error": "\(Self.summary(error))"])
                        logger.debug("stream failed", metadata: ["error": "\(Self.describe(error))"])
                        throw Self.error(error, naming: logger.requestID)
                    }
                }
                response.accepted = .success(contents)
            }
            logger.debug("ok", metadata: ["duration": "\(ContinuousClock.now - started)"])
            return response
        } catch {
            if Task.isCancelled {
                // The call was cancelled (its client left, or the server's shutdown ran out of time): what failed
                // with it is no storage failure.
                logger.debug("cancelled", metadata: ["error": "\(Self.describe(error))"])
                throw RPCError(code: .cancelled, message: "the call was cancelled")
            } else if case .storage(let detail) = error as? RapportError {
                logger.error("storage failure", metadata: ["detail": "\(detail)"])
            } else {
                logger.info("failed", metadata: ["error": "\(Self.summary(error))", "duration": "\(ContinuousClock.now - started)"])
                logger.debug("failed", metadata: ["error": "\(Self.describe(error))"])
            }
            throw error
        }
    }

    /// Runs `body`, or when `enabled` races it with the revocation of `key`: a revoked key ends the call with
    /// UNAUTHENTICATED, as a new call with it would be refused.
    static func untilRevoked<T: Sendable>(
        _ key: APIKey, engine: RapportEngine, enabled: Bool, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard enabled else { return try await body() }
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                guard await engine.waitForRevocation(of: key.id) else { return nil }
                throw RPCError(code: .unauthenticated, message: "the API key was revoked")
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }

    /// The call's logger: every line carries the request id, the method and (once known) the API key. The
    /// metadata is built only for a line that is logged, so a call that logs nothing costs nothing here (a
    /// handler such as `StreamLogHandler` formats its metadata each time it is set).
    struct RequestLogger {
        let logger: Logger
        let method: MethodDescriptor
        let requestID: String
        var apiKey: APIKeyID?

        func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, metadata extra: @autoclosure () -> Logger.Metadata = [:]) {
            guard logger.logLevel <= level else { return }
            var metadata: Logger.Metadata = ["request_id": "\(requestID)", "method": "\(method.fullyQualifiedMethod)"]
            if let apiKey { metadata["api_key"] = "\(apiKey)" }
            metadata.merge(extra()) { _, new in new }
            logger.log(level: level, message(), metadata: metadata)
        }

        func debug(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:]) { log(.debug, message(), metadata: metadata()) }
        func info(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:]) { log(.info, message(), metadata: metadata()) }
        func error(_ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:]) { log(.error, message(), metadata: metadata()) }
    }

    /// The credentials of an `authorization: Bearer <key>` header: the scheme in any case, spaces around the key
    /// ignored (RFC 7235).
    static func bearer(_ metadata: Metadata) -> String? {
        for value in metadata[stringValues: "authorization"] {
            let text = value.drop(while: \.isWhitespace)
            guard let space = text.firstIndex(where: \.isWhitespace), text[..<space].lowercased() == "bearer" else { continue }
            var key = text[space...].drop(while: \.isWhitespace)
            while key.last?.isWhitespace == true { key = key.dropLast() }
            if !key.isEmpty { return String(key) }
        }
        return nil
    }

    /// What a line at info says of an error: its code, and the fields or the kind of record it names, never the
    /// message, which may quote what was sent (an e-mail, a phone number) and outlive the customer's erasure in the
    /// log. The message is logged at debug.
    static func summary(_ error: any Error) -> String {
        switch error {
        case let error as RapportError:
            switch error {
            case .invalidArgument(let violations):
                let fields = violations.prefix(10).map(\.field).joined(separator: ", ")
                return "\(error.rpcErrorCode): \(fields)\(violations.count > 10 ? ", and \(violations.count - 10) more" : "")"
            case .notFound(let entity, _), .alreadyExists(let entity, _), .etagMismatch(let entity, _, _, _): return "\(error.rpcErrorCode): \(entity)"
            case .failedPrecondition, .storage: return "\(error.rpcErrorCode)"
            }
        case let error as RPCError: return "\(error.code)"
        default: return "\(type(of: error))"
        }
    }

    static func describe(_ error: any Error) -> String {
        if let convertible = error as? any RPCErrorConvertible { return "\(convertible.rpcErrorCode): \(convertible.rpcErrorMessage)" }
        return "\(error)"
    }
}

/// The permission each method needs. A method missing from the table is open only to admins.
enum Permissions {
    static func required(for method: MethodDescriptor) -> Permission? {
        if method.service == Grpc_Health_V1_Health.descriptor { return nil }
        return table[method] ?? .manageAPIKeys
    }

    static let table: [MethodDescriptor: Permission] = {
        var table: [MethodDescriptor: Permission] = [:]
        typealias Customers = Rapport_V1_CustomerService.Method
        table[Customers.GetCustomer.descriptor] = .readCustomers
        // A lookup by e-mail or phone answers whether that person is a customer, unmasked: an analyst could confirm
        // guesses at the addresses its masked view only hints at.
        table[Customers.FindCustomer.descriptor] = .readPersonalData
        table[Customers.ListCustomers.descriptor] = .readCustomers
        table[Customers.ListAttributeDefinitions.descriptor] = .readCustomers
        table[Customers.CreateCustomer.descriptor] = .writeCustomers
        table[Customers.UpdateCustomer.descriptor] = .writeCustomers
        table[Customers.DeleteCustomer.descriptor] = .eraseCustomers
        table[Rapport_V1_PrivacyService.Method.ExportCustomer.descriptor] = .exportCustomers
        table[Customers.AddIdentity.descriptor] = .writeCustomers
        table[Customers.RemoveIdentity.descriptor] = .writeCustomers
        table[Customers.DefineAttribute.descriptor] = .defineAttributes
        typealias Merges = Rapport_V1_MergeService.Method
        table[Merges.MergeCustomers.descriptor] = .merge
        table[Merges.UnmergeCustomers.descriptor] = .merge
        table[Merges.GetMerge.descriptor] = .readCustomers
        table[Merges.ListMerges.descriptor] = .readCustomers
        typealias Ingest = Rapport_V1_IngestService.Method
        table[Ingest.IngestEvents.descriptor] = .ingest
        table[Ingest.StreamIngest.descriptor] = .ingest
        typealias View = Rapport_V1_Customer360Service.Method
        table[View.GetCustomer360.descriptor] = .readCustomers
        table[View.GetCustomerStats.descriptor] = .readCustomers
        // The 360 view's timeline, paged further: whoever reads the view reads it.
        table[View.ListTimeline.descriptor] = .readCustomers
        table[View.GetOrder.descriptor] = .readActivity
        table[View.ListOrders.descriptor] = .readActivity
        table[View.GetEvent.descriptor] = .readActivity
        typealias Interactions = Rapport_V1_InteractionService.Method
        table[Interactions.RecordInteraction.descriptor] = .writeInteractions
        table[Interactions.ListInteractions.descriptor] = .readActivity
        typealias Consents = Rapport_V1_ConsentService.Method
        table[Consents.RecordConsent.descriptor] = .writeConsent
        table[Consents.ListConsents.descriptor] = .readActivity
        table[Rapport_V1_ChangeService.Method.WatchChanges.descriptor] = .watchChanges
        typealias Segments = Rapport_V1_SegmentService.Method
        table[Segments.GetSegment.descriptor] = .readAutomation
        table[Segments.ListSegments.descriptor] = .readAutomation
        table[Segments.ListSegmentMembers.descriptor] = .readAutomation
        table[Segments.ListCustomerSegments.descriptor] = .readAutomation
        // An unsaved expression can test any customer's personal data (`customer.id == "cus_1" and
        // customer.birthday.month <= 6`): like an explanation, it needs the right to see it.
        table[Segments.PreviewSegment.descriptor] = .readPersonalData
        table[Segments.ExplainSegment.descriptor] = .readPersonalData
        table[Segments.CreateSegment.descriptor] = .manageAutomation
        table[Segments.UpdateSegment.descriptor] = .manageAutomation
        table[Segments.DeleteSegment.descriptor] = .manageAutomation
        table[Segments.AddToList.descriptor] = .manageAutomation
        table[Segments.RemoveFromList.descriptor] = .manageAutomation
        typealias Rules = Rapport_V1_RuleService.Method
        table[Rules.GetRule.descriptor] = .readAutomation
        table[Rules.ListRules.descriptor] = .readAutomation
        table[Rules.ValidateRule.descriptor] = .readAutomation
        // Runs say when a rule fired for whom: a birthday rule's runs date each customer's birthday.
        table[Rules.ListRuleRuns.descriptor] = .readPersonalData
        table[Rules.GetRuleRun.descriptor] = .readPersonalData
        table[Rules.ListEventTypes.descriptor] = .readAutomation
        table[Rules.ExplainRule.descriptor] = .readPersonalData
        table[Rules.ExplainExpression.descriptor] = .readPersonalData
        table[Rules.CreateRule.descriptor] = .manageAutomation
        table[Rules.UpdateRule.descriptor] = .manageAutomation
        table[Rules.EnableRule.descriptor] = .manageAutomation
        table[Rules.DisableRule.descriptor] = .manageAutomation
        table[Rules.DeleteRule.descriptor] = .manageAutomation
        table[Rules.DefineEventType.descriptor] = .manageAutomation
        typealias Outbox = Rapport_V1_OutboxService.Method
        table[Outbox.StreamOutbox.descriptor] = .consumeOutbox
        table[Outbox.LeaseOutbox.descriptor] = .consumeOutbox
        table[Outbox.AcknowledgeOutbox.descriptor] = .consumeOutbox
        table[Outbox.FailOutboxEntry.descriptor] = .consumeOutbox
        table[Outbox.ListOutbox.descriptor] = .consumeOutbox
        table[Outbox.GetOutboxEntry.descriptor] = .consumeOutbox
        table[Rapport_V1_ClockService.Method.GetTime.descriptor] = .readCustomers
        table[Rapport_V1_ClockService.Method.AdvanceClock.descriptor] = .controlClock
        typealias Keys = Rapport_V1_ApiKeyService.Method
        table[Keys.CreateApiKey.descriptor] = .manageAPIKeys
        table[Keys.RevokeApiKey.descriptor] = .manageAPIKeys
        table[Keys.ListApiKeys.descriptor] = .manageAPIKeys
        return table
    }()
}
