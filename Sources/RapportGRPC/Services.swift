import GRPCCore
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf
import Synchronization

/// `rapport.v1.MergeService` over the engine.
struct MergeServiceAdapter: Rapport_V1_MergeService.SimpleServiceProtocol {
    let engine: RapportEngine

    func mergeCustomers(request: Rapport_V1_MergeCustomersRequest, context: ServerContext) async throws -> Rapport_V1_MergeCustomersResponse {
        guard request.customerIds.count == 2 else {
            throw RapportError.invalid("customer_ids", "names exactly two customers, got \(request.customerIds.count)")
        }
        let first = try parseID(CustomerID.self, request.customerIds[0], field: "customer_ids[0]")
        let second = try parseID(CustomerID.self, request.customerIds[1], field: "customer_ids[1]")
        let result = try await engine.mergeCustomers(first, second, requestID: request.requestID)
        return .with {
            $0.merge = result.merge.proto
            $0.survivor = result.survivor.proto
        }
    }

    func unmergeCustomers(request: Rapport_V1_UnmergeCustomersRequest, context: ServerContext) async throws -> Rapport_V1_UnmergeCustomersResponse {
        let result = try await engine.unmerge(parseID(MergeID.self, request.mergeID, field: "merge_id"), requestID: request.requestID)
        return .with {
            $0.merge = result.merge.proto
            $0.survivor = result.survivor.proto
            $0.restored = result.restored.proto
        }
    }

    func getMerge(request: Rapport_V1_GetMergeRequest, context: ServerContext) async throws -> Rapport_V1_Merge {
        try await engine.merge(parseID(MergeID.self, request.id, field: "id")).proto
    }

    func listMerges(request: Rapport_V1_ListMergesRequest, context: ServerContext) async throws -> Rapport_V1_ListMergesResponse {
        let merges = try await engine.merges(into: parseID(CustomerID.self, request.customerID, field: "customer_id"))
        return .with { $0.merges = merges.map(\.proto) }
    }
}

/// `rapport.v1.IngestService` over the engine.
struct IngestServiceAdapter: Rapport_V1_IngestService.SimpleServiceProtocol {
    let engine: RapportEngine

    func ingestEvents(request: Rapport_V1_IngestEventsRequest, context: ServerContext) async throws -> Rapport_V1_IngestEventsResponse {
        let result = try await ingest(request, requestID: request.requestID)
        return .with {
            $0.results = result.outcomes.enumerated().map { $0.element.proto(index: $0.offset) }
            $0.acceptedCount = Int64(result.acceptedCount)
            $0.updatedCount = Int64(result.updatedCount)
            $0.duplicateCount = Int64(result.duplicateCount)
            $0.rejectedCount = Int64(result.rejectedCount)
            $0.createdCustomerIds = result.createdCustomers.map(\.rawValue)
            $0.mergeIds = result.merges.map(\.rawValue)
        }
    }

    func streamIngest(request: RPCAsyncSequence<Rapport_V1_IngestEventsRequest, any Error>, context: ServerContext) async throws
        -> Rapport_V1_StreamIngestResponse
    {
        // A shutdown ends a stream that waits for its next batch too (a slow feed must not hold the server up): the
        // reading stops, and the client is told what was applied. A batch being applied is let finish.
        let applied = AppliedCount()
        let reader = Task { try await readStream(request, context: context, applied: applied) }
        let engine = engine
        let shutdown = Task {
            await engine.changeWatchersFinish()
            guard engine.changeWatchersFinished else { return }
            if applied.stop() { reader.cancel() }
        }
        defer { shutdown.cancel() }
        do {
            let summary = try await withTaskCancellationHandler { try await reader.value } onCancel: { reader.cancel() }
            // A read of the next batch cancelled by the shutdown ends like a stream the client closed: the flag tells.
            if applied.cutShort { throw applied.unavailable() }
            return summary
        } catch let error as RPCError {
            throw error
        } catch {
            guard applied.cutShort, !(error is RapportError) else { throw error }
            throw applied.unavailable()
        }
    }

    private func readStream(
        _ request: RPCAsyncSequence<Rapport_V1_IngestEventsRequest, any Error>, context: ServerContext, applied: AppliedCount
    ) async throws -> Rapport_V1_StreamIngestResponse {
        var summary = Rapport_V1_StreamIngestResponse()
        var offset = 0
        var batches = 0
        var iterator = request.makeAsyncIterator()
        while true {
            // Waiting for the next batch is where a shutdown may cut the stream short; a shutdown that came while a
            // batch was applied stops it here.
            guard applied.beginWaiting() else { throw applied.unavailable() }
            let next = try await iterator.next()
            // The end of the stream without a cancellation is the client's: not cut short, even if the shutdown came.
            applied.endWaiting(closedByClient: next == nil && !Task.isCancelled)
            guard let batch = next else { break }
            // A shutdown stops between batches: what was applied stays, and the client is told (a call cancelled or
            // past its deadline stops there too).
            if engine.changeWatchersFinished || context.cancellation.isCancelled {
                let why = engine.changeWatchersFinished ? "the server is shutting down" : "the call was cancelled"
                throw RPCError(code: .unavailable, message: "\(why): the \(offset) items of the \(batches) batches before were applied; send the rest again")
            }
            let result: IngestResult
            do {
                result = try await ingest(batch, requestID: nil)
            } catch {
                guard offset > 0 else { throw error }
                // Positions count across the whole stream, as in the results; and the batches before it stay applied.
                var shifted = error
                if case .invalidArgument(let violations) = error { shifted = .invalidArgument(violations.map { Self.shifted($0, by: offset) }) }
                let what = if case .storage = error { "internal storage error" } else { shifted.rpcErrorMessage }
                throw shifted.rpcError(
                    message: "batch \(batches + 1) changed nothing (\(what)), but the \(offset) items of the \(batches) batches before it were "
                        + "applied (\(summary.acceptedCount) accepted, \(summary.updatedCount) updated, \(summary.duplicateCount) duplicates, "
                        + "\(summary.rejectedCount) rejected); the batches after it were not read")
            }
            batches += 1
            summary.acceptedCount += Int64(result.acceptedCount)
            summary.updatedCount += Int64(result.updatedCount)
            summary.duplicateCount += Int64(result.duplicateCount)
            summary.rejectedCount += Int64(result.rejectedCount)
            summary.createdCustomerCount += Int64(result.createdCustomers.count)
            summary.mergeCount += Int64(result.merges.count)
            for (index, outcome) in result.outcomes.enumerated() {
                if case .rejected = outcome, summary.rejected.count < 10_000 { summary.rejected.append(outcome.proto(index: offset + index)) }
            }
            offset += batch.items.count
            applied.applied(items: offset, batches: batches)
        }
        return summary
    }

    /// `violation` with its `items[i]` moved `offset` places on.
    static func shifted(_ violation: FieldViolation, by offset: Int) -> FieldViolation {
        guard offset > 0, violation.field.hasPrefix("items["), let close = violation.field.firstIndex(of: "]"),
            let index = Int(violation.field[violation.field.index(violation.field.startIndex, offsetBy: 6)..<close])
        else { return violation }
        return FieldViolation(field: "items[\(index + offset)]" + violation.field[violation.field.index(after: close)...], problem: violation.problem)
    }

    /// Maps the items (an item the wire form cannot express is rejected like an invalid one) and ingests them.
    private func ingest(_ request: Rapport_V1_IngestEventsRequest, requestID: String?) async throws(RapportError) -> IngestResult {
        let mode: IngestMode
        switch request.mode {
        case .unspecified, .skipInvalid: mode = .skipInvalid
        case .allOrNothing: mode = .allOrNothing
        case .UNRECOGNIZED(let value): throw .invalid("mode", "\(value) is not an ingest mode")
        }
        // Counted as sent: items the wire form rejects count too.
        try RapportEngine.checkBatchSize(request.items.count)
        let mapped = ingestItems(request.items)
        var valid: [IngestItem] = []
        var positions: [Int] = []
        var failures: [Int: [FieldViolation]] = [:]
        for (index, item) in mapped.enumerated() {
            switch item {
            case .success(let item):
                valid.append(item)
                positions.append(index)
            case .failure(let error):
                failures[index] = error.fieldViolations.isEmpty ? [FieldViolation(field: "", problem: error.description)] : error.fieldViolations
            }
        }
        if mode == .allOrNothing, !failures.isEmpty {
            // Name every bad item: those the wire form rejected and those the engine would.
            for (position, violations) in try await engine.violations(of: valid) { failures[positions[position]] = violations }
            throw .invalidArgument(failures.keys.sorted().flatMap { index in failures[index]!.map { $0.nested(under: "items[\(index)]") } })
        }
        // A retry is the same request only if the items the wire form rejected are the same too.
        let fingerprint = failures.isEmpty || (requestID ?? "").isEmpty ? nil : RapportEngine.fingerprint(of: mapped.map(FingerprintItem.init))
        var result = try await engine.ingest(valid, mode: mode, requestID: requestID, fingerprint: fingerprint)
        guard !failures.isEmpty else { return result }
        var outcomes = [IngestOutcome](repeating: .rejected([]), count: mapped.count)
        for (position, outcome) in zip(positions, result.outcomes) { outcomes[position] = outcome }
        for (index, violations) in failures { outcomes[index] = .rejected(violations) }
        result.outcomes = outcomes
        return result
    }
}

/// One item of an ingest request as its retry fingerprint sees it.
private enum FingerprintItem: Encodable {
    case item(IngestItem)
    case invalid([FieldViolation])

    init(_ result: Result<IngestItem, RapportError>) {
        switch result {
        case .success(let item): self = .item(item)
        case .failure(let error): self = .invalid(error.fieldViolations)
        }
    }
}

/// `rapport.v1.Customer360Service` over the engine.
struct Customer360ServiceAdapter: Rapport_V1_Customer360Service.SimpleServiceProtocol {
    let engine: RapportEngine

    func getCustomer360(request: Rapport_V1_GetCustomer360Request, context: ServerContext) async throws -> Rapport_V1_Customer360 {
        let view = try await engine.customer360(
            parseID(CustomerID.self, request.customerID, field: "customer_id"), recentOrders: request.recentOrders == 0 ? 5 : Int(request.recentOrders),
            timelinePageSize: request.timelinePageSize == 0 ? 20 : Int(request.timelinePageSize))
        return .with {
            $0.customer = view.customer.proto
            $0.stats = view.stats.proto
            $0.recentOrders = view.recentOrders.map(\.proto)
            $0.consents = view.consents.map(\.proto)
            $0.merges = view.merges.map(\.proto)
            $0.timeline = view.timeline.entries.map(\.proto)
            $0.timelineNextPageToken = view.timeline.nextPageToken ?? ""
        }
    }

    func listTimeline(request: Rapport_V1_ListTimelineRequest, context: ServerContext) async throws -> Rapport_V1_ListTimelineResponse {
        let page = try await engine.timeline(
            parseID(CustomerID.self, request.customerID, field: "customer_id"), page: pageRequest(size: request.pageSize, token: request.pageToken))
        return .with {
            $0.entries = page.entries.map(\.proto)
            $0.nextPageToken = page.nextPageToken ?? ""
        }
    }

    func getOrder(request: Rapport_V1_GetOrderRequest, context: ServerContext) async throws -> Rapport_V1_Order {
        switch request.key {
        case .id(let id): return try await engine.order(parseID(OrderID.self, id, field: "id")).proto
        case .orderKey(let key):
            return try await renamingFields(under("order_key")) { try await engine.order(OrderKey(source: key.source, externalID: key.externalID)).proto }
        case nil: throw RapportError.invalid("key", "give the order's id or its order_key")
        }
    }

    func listOrders(request: Rapport_V1_ListOrdersRequest, context: ServerContext) async throws -> Rapport_V1_ListOrdersResponse {
        let page = try await engine.orders(
            of: parseID(CustomerID.self, request.customerID, field: "customer_id"), page: pageRequest(size: request.pageSize, token: request.pageToken))
        return .with {
            $0.orders = page.orders.map(\.proto)
            $0.nextPageToken = page.nextPageToken ?? ""
        }
    }

    func getEvent(request: Rapport_V1_GetEventRequest, context: ServerContext) async throws -> Rapport_V1_Event {
        guard !request.id.isEmpty else { throw RapportError.invalid("id", "is required") }
        return try await engine.event(request.id).proto
    }

    func getCustomerStats(request: Rapport_V1_GetCustomerStatsRequest, context: ServerContext) async throws -> Rapport_V1_CustomerStats {
        try await engine.stats(of: parseID(CustomerID.self, request.customerID, field: "customer_id")).proto
    }
}

/// `rapport.v1.InteractionService` over the engine.
struct InteractionServiceAdapter: Rapport_V1_InteractionService.SimpleServiceProtocol {
    let engine: RapportEngine

    func recordInteraction(request: Rapport_V1_RecordInteractionRequest, context: ServerContext) async throws -> Rapport_V1_Interaction {
        let proto = request.interaction
        var validator = Validator()
        let customer = validator.capture("") { () throws(RapportError) in try parseID(CustomerID.self, proto.customerID, field: "interaction.customer_id") }
        let channel = validator.capture("") { () throws(RapportError) in try InteractionChannel(proto.channel, field: "interaction.channel") }
        let direction = validator.capture("") { () throws(RapportError) in try InteractionDirection(proto.direction, field: "interaction.direction") }
        let occurredAt = proto.hasOccurTime ? validator.capture("") { () throws(RapportError) in try Timestamp(proto.occurTime, field: "interaction.occur_time") } : nil
        try validator.check()
        let input = InteractionInput(
            customerID: customer!, channel: channel!, direction: direction!, subject: proto.subject, summary: proto.summary, agent: proto.agent,
            occurredAt: occurredAt)
        return try await renamingFields(under("interaction", except: ["request_id"])) {
            try await engine.recordInteraction(input, requestID: request.requestID).proto
        }
    }

    func listInteractions(request: Rapport_V1_ListInteractionsRequest, context: ServerContext) async throws -> Rapport_V1_ListInteractionsResponse {
        let page = try await engine.interactions(
            of: parseID(CustomerID.self, request.customerID, field: "customer_id"), page: pageRequest(size: request.pageSize, token: request.pageToken))
        return .with {
            $0.interactions = page.interactions.map(\.proto)
            $0.nextPageToken = page.nextPageToken ?? ""
        }
    }
}

/// `rapport.v1.ConsentService` over the engine.
struct ConsentServiceAdapter: Rapport_V1_ConsentService.SimpleServiceProtocol {
    let engine: RapportEngine

    func recordConsent(request: Rapport_V1_RecordConsentRequest, context: ServerContext) async throws -> Rapport_V1_Consent {
        let proto = request.consent
        var validator = Validator()
        let customer = validator.capture("") { () throws(RapportError) in try parseID(CustomerID.self, proto.customerID, field: "consent.customer_id") }
        let channel = validator.capture("") { () throws(RapportError) in try ConsentChannel(proto.channel, field: "consent.channel") }
        let purpose = validator.capture("") { () throws(RapportError) in try ConsentPurpose(proto.purpose, field: "consent.purpose") }
        let status = validator.capture("") { () throws(RapportError) in try ConsentStatus(proto.status, field: "consent.status") }
        let occurredAt = proto.hasOccurTime ? validator.capture("") { () throws(RapportError) in try Timestamp(proto.occurTime, field: "consent.occur_time") } : nil
        try validator.check()
        let input = ConsentInput(
            customerID: customer!, channel: channel!, purpose: purpose!, status: status!, source: proto.source,
            occurredAt: occurredAt)
        return try await renamingFields(under("consent", except: ["request_id"])) {
            try await engine.recordConsent(input, requestID: request.requestID).proto
        }
    }

    func listConsents(request: Rapport_V1_ListConsentsRequest, context: ServerContext) async throws -> Rapport_V1_ListConsentsResponse {
        let id = try parseID(CustomerID.self, request.customerID, field: "customer_id")
        let consents = request.history ? try await engine.consentHistory(of: id) : try await engine.consents(of: id)
        return .with { $0.consents = consents.map(\.proto) }
    }
}

/// Awaits the task that writes a response stream, cancelling it when the call is cancelled (by the client, a
/// deadline, or the server's shutdown) or the handler's own task is (a revoked key ends the call on the server's
/// side); returns `cancelled` then. Cancellation reaches a handler through the RPC's handle, not its task.
func awaitStreamWriter<T: Sendable>(_ writer: Task<T, any Error>, cancelled: T) async throws -> T {
    try await withTaskCancellationHandler {
        try await withRPCCancellationHandler {
            do {
                return try await writer.value
            } catch is CancellationError {
                return cancelled
            }
        } onCancelRPC: {
            writer.cancel()
        }
    } onCancel: {
        writer.cancel()
    }
}

/// What a stream ingest applied so far, and whether it waits for its next batch: a shutdown cuts short only a wait.
final class AppliedCount: Sendable {
    private struct State {
        var items = 0
        var batches = 0
        var waiting = false
        var stopped = false
        var cutShort = false
    }
    private let state = Mutex(State())

    func applied(items: Int, batches: Int) { state.withLock { $0.items = items; $0.batches = batches } }

    /// False when a shutdown came: read no more.
    func beginWaiting() -> Bool {
        state.withLock { state in
            guard !state.stopped else { return false }
            state.waiting = true
            return true
        }
    }

    func endWaiting(closedByClient: Bool) {
        state.withLock { state in
            state.waiting = false
            if closedByClient { state.cutShort = false }
        }
    }

    /// Marks the shutdown; true when the reader waits for a batch and is to be cancelled now.
    func stop() -> Bool {
        state.withLock { state in
            state.stopped = true
            state.cutShort = state.waiting
            return state.waiting
        }
    }

    var cutShort: Bool { state.withLock { $0.cutShort } }

    func unavailable() -> RPCError {
        let (items, batches) = state.withLock { ($0.items, $0.batches) }
        return RPCError(
            code: .unavailable, message: "the server is shutting down: the \(items) items of the \(batches) batches before were applied; send the rest again")
    }
}

/// `rapport.v1.ChangeService` over the engine.
struct ChangeServiceAdapter: Rapport_V1_ChangeService.SimpleServiceProtocol {
    let engine: RapportEngine

    func watchChanges(request: Rapport_V1_WatchChangesRequest, response: RPCWriter<Rapport_V1_Change>, context: ServerContext) async throws {
        guard request.afterCursor >= 0 else { throw RapportError.invalid("after_cursor", "must not be negative") }
        let customer = request.customerID.isEmpty ? nil : try parseID(CustomerID.self, request.customerID, field: "customer_id")
        let changes = engine.watchChanges(after: request.afterCursor, customerID: customer)
        // Cancellation and deadlines reach the handler through the RPC's cancellation handle, not the task.
        // Entries and exits of segments defined by personal data are that data: left out for masked roles.
        let masked = !Caller.seesPersonalData
        let writer = Task {
            var last = request.afterCursor
            for try await change in changes {
                last = change.cursor
                if masked, let segment = change.segmentID, try await engine.segmentMayRevealPersonalData(segment) { continue }
                try await response.write(change.proto)
            }
            return last
        }
        let last = try await awaitStreamWriter(writer, cancelled: -1)  // -1: the client went away, nothing failed
        // The feed never ends by itself: a shutdown is not a finished feed, and the client should resume elsewhere.
        if last >= 0, engine.changeWatchersFinished {
            throw RPCError(code: .unavailable, message: "the server is shutting down: resume after cursor \(last)")
        }
    }
}

/// `rapport.v1.ApiKeyService` over the engine.
struct APIKeyServiceAdapter: Rapport_V1_ApiKeyService.SimpleServiceProtocol {
    let engine: RapportEngine

    func createApiKey(request: Rapport_V1_CreateApiKeyRequest, context: ServerContext) async throws -> Rapport_V1_CreateApiKeyResponse {
        let created = try await engine.createAPIKey(name: request.name, role: Role(request.role, field: "role"), requestID: request.requestID)
        return .with {
            $0.apiKey = created.key.proto
            $0.secret = created.secret
        }
    }

    func revokeApiKey(request: Rapport_V1_RevokeApiKeyRequest, context: ServerContext) async throws -> Rapport_V1_ApiKey {
        try await engine.revokeAPIKey(parseID(APIKeyID.self, request.id, field: "id"), requestID: request.requestID).proto
    }

    func listApiKeys(request: Rapport_V1_ListApiKeysRequest, context: ServerContext) async throws -> Rapport_V1_ListApiKeysResponse {
        let keys = try await engine.apiKeys()
        return .with { $0.apiKeys = keys.map(\.proto) }
    }
}
