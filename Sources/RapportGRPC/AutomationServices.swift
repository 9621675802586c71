import GRPCCore
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf

/// `rapport.v1.SegmentService` over the engine.
struct SegmentServiceAdapter: Rapport_V1_SegmentService.SimpleServiceProtocol {
    let engine: RapportEngine

    func createSegment(request: Rapport_V1_CreateSegmentRequest, context: ServerContext) async throws -> Rapport_V1_Segment {
        let input = try segmentInput(request.segment)
        return try await renamingFields(under("segment", except: ["request_id"])) {
            try await engine.createSegment(input, requestID: request.requestID).proto
        }
    }

    func getSegment(request: Rapport_V1_GetSegmentRequest, context: ServerContext) async throws -> Rapport_V1_Segment {
        try await engine.segment(parseID(SegmentID.self, request.id, field: "id")).proto
    }

    func listSegments(request: Rapport_V1_ListSegmentsRequest, context: ServerContext) async throws -> Rapport_V1_ListSegmentsResponse {
        let segments = try await engine.segments()
        return .with { $0.segments = segments.map(\.proto) }
    }

    func updateSegment(request: Rapport_V1_UpdateSegmentRequest, context: ServerContext) async throws -> Rapport_V1_Segment {
        let id = try parseID(SegmentID.self, request.segment.id, field: "segment.id")
        guard !request.updateMask.paths.isEmpty else { throw RapportError.invalid("update_mask", "names no field to update (name, description, expression)") }
        var changes = SegmentChanges()
        for (index, path) in request.updateMask.paths.enumerated() {
            switch path {
            case "name": changes.name = request.segment.name
            case "description": changes.description = request.segment.description_p
            case "expression": changes.expression = request.segment.expression
            default: throw RapportError.invalid("update_mask.paths[\(index)]", "'\(path)' is not a segment field that can change (name, description, expression)")
            }
        }
        return try await renamingFields(under("segment", except: ["request_id"])) {
            try await engine.updateSegment(id, changes, ifMatch: request.segment.etag, requestID: request.requestID).proto
        }
    }

    func deleteSegment(request: Rapport_V1_DeleteSegmentRequest, context: ServerContext) async throws -> Google_Protobuf_Empty {
        try await engine.deleteSegment(parseID(SegmentID.self, request.id, field: "id"), requestID: request.requestID)
        return Google_Protobuf_Empty()
    }

    func listSegmentMembers(request: Rapport_V1_ListSegmentMembersRequest, context: ServerContext) async throws -> Rapport_V1_ListSegmentMembersResponse {
        let id = try parseID(SegmentID.self, request.segmentID, field: "segment_id")
        // Who is in a segment defined by personal data (a birthday's month) is that data: not for masked roles.
        if !Caller.seesPersonalData, let path = try await engine.segmentsRevealingPersonalData()[id] {
            throw RPCError(
                code: .permissionDenied,
                message: "segment \(id) is defined by personal data (\(path)): its members are listed only to roles that see personal data")
        }
        let page = try await engine.segmentMembers(id, page: pageRequest(size: request.pageSize, token: request.pageToken))
        return .with {
            $0.members = page.members.map(\.proto)
            $0.nextPageToken = page.nextPageToken ?? ""
            $0.totalSize = page.totalCount
        }
    }

    func listCustomerSegments(request: Rapport_V1_ListCustomerSegmentsRequest, context: ServerContext) async throws
        -> Rapport_V1_ListCustomerSegmentsResponse
    {
        var memberships = try await engine.memberships(of: parseID(CustomerID.self, request.customerID, field: "customer_id"))
        // Segments defined by personal data are left out for masked roles, as the data itself is masked.
        if !Caller.seesPersonalData {
            let revealing = try await engine.segmentsRevealingPersonalData()
            memberships.removeAll { revealing[$0.segmentID] != nil }
        }
        return .with { $0.memberships = memberships.map(\.proto) }
    }

    func previewSegment(request: Rapport_V1_PreviewSegmentRequest, context: ServerContext) async throws -> Rapport_V1_PreviewSegmentResponse {
        let preview = try await engine.previewSegment(request.expression, sampleSize: Int(request.sampleSize))
        return .with {
            $0.count = Int64(preview.count)
            $0.sample = preview.sample.map(\.proto)
            $0.evaluated = Int64(preview.evaluated)
        }
    }

    func explainSegment(request: Rapport_V1_ExplainSegmentRequest, context: ServerContext) async throws -> Rapport_V1_Explanation {
        try await engine.explainSegment(
            parseID(SegmentID.self, request.segmentID, field: "segment_id"), customer: parseID(CustomerID.self, request.customerID, field: "customer_id")
        ).proto
    }

    func addToList(request: Rapport_V1_ChangeListRequest, context: ServerContext) async throws -> Rapport_V1_ChangeListResponse {
        try await changeList(request, adding: true)
    }

    func removeFromList(request: Rapport_V1_ChangeListRequest, context: ServerContext) async throws -> Rapport_V1_ChangeListResponse {
        try await changeList(request, adding: false)
    }

    private func changeList(_ request: Rapport_V1_ChangeListRequest, adding: Bool) async throws -> Rapport_V1_ChangeListResponse {
        let id = try parseID(SegmentID.self, request.segmentID, field: "segment_id")
        var validator = Validator()
        let customers = request.customerIds.enumerated().compactMap { index, text in
            validator.capture("") { () throws(RapportError) in try parseID(CustomerID.self, text, field: "customer_ids[\(index)]") }
        }
        try validator.check()
        let result = adding
            ? try await engine.addToList(id, customers: customers, requestID: request.requestID)
            : try await engine.removeFromList(id, customers: customers, requestID: request.requestID)
        return .with {
            $0.changedCustomerIds = result.changed.map(\.rawValue)
            $0.unchangedCustomerIds = result.unchanged.map(\.rawValue)
        }
    }
}

/// `rapport.v1.RuleService` over the engine.
struct RuleServiceAdapter: Rapport_V1_RuleService.SimpleServiceProtocol {
    let engine: RapportEngine

    func createRule(request: Rapport_V1_CreateRuleRequest, context: ServerContext) async throws -> Rapport_V1_Rule {
        let definition = try ruleDefinition(request.rule)
        return try await renamingFields(under("rule", except: ["request_id"])) {
            try await engine.createRule(definition, enabled: !request.disabled, requestID: request.requestID).proto
        }
    }

    func getRule(request: Rapport_V1_GetRuleRequest, context: ServerContext) async throws -> Rapport_V1_Rule {
        try await engine.rule(parseID(RuleID.self, request.id, field: "id")).proto
    }

    func listRules(request: Rapport_V1_ListRulesRequest, context: ServerContext) async throws -> Rapport_V1_ListRulesResponse {
        let rules = try await engine.rules()
        return .with { $0.rules = rules.map(\.proto) }
    }

    func updateRule(request: Rapport_V1_UpdateRuleRequest, context: ServerContext) async throws -> Rapport_V1_Rule {
        let id = try parseID(RuleID.self, request.rule.id, field: "rule.id")
        if request.updateMask.paths.isEmpty {
            let definition = try ruleDefinition(request.rule)
            return try await renamingFields(under("rule", except: ["request_id"])) {
                try await engine.updateRule(id, definition, ifMatch: request.rule.etag, requestID: request.requestID).proto
            }
        }
        // Only the masked fields of the request are read; the engine keeps the others as they are when it writes.
        let changes = try ruleChanges(request)
        return try await renamingFields(under("rule", except: ["request_id"])) {
            try await engine.updateRule(id, changes, ifMatch: request.rule.etag, requestID: request.requestID).proto
        }
    }

    /// The fields the request's mask names, taken from the request.
    private func ruleChanges(_ request: Rapport_V1_UpdateRuleRequest) throws(RapportError) -> RuleChanges {
        var changes = RuleChanges()
        let rule = request.rule
        var validator = Validator()
        for (index, path) in request.updateMask.paths.enumerated() {
            switch path {
            case "name": changes.name = rule.name
            case "description": changes.description = rule.description_p
            case "trigger": changes.trigger = validator.capture("", { () throws(RapportError) in try ruleTrigger(rule, field: "rule.trigger") })
            case "condition": changes.condition = rule.condition
            case "wait":
                if !rule.hasWait {
                    changes.wait = .some(nil)
                } else if let duration = validator.capture("", { () throws(RapportError) in try Duration(rule.wait.duration, field: "rule.wait.duration") }) {
                    changes.wait = RuleWait(duration: duration, recheck: rule.wait.recheck)
                }
            case "actions":
                changes.actions = rule.actions.enumerated().compactMap { index, action in
                    validator.capture("") { () throws(RapportError) in try ruleAction(action, field: "rule.actions[\(index)]") }
                }
            case "limits": changes.limits = validator.capture("", { () throws(RapportError) in try ruleLimits(rule.limits, field: "rule.limits") })
            case "priority": changes.priority = Int(rule.priority)
            default:
                validator.add(
                    "update_mask.paths[\(index)]", "'\(path)' is not a rule field that can change (name, description, trigger, condition, wait, actions, limits, priority)")
            }
        }
        try validator.check()
        return changes
    }

    func enableRule(request: Rapport_V1_SetRuleEnabledRequest, context: ServerContext) async throws -> Rapport_V1_Rule {
        try await engine.setRuleEnabled(parseID(RuleID.self, request.id, field: "id"), true, requestID: request.requestID).proto
    }

    func disableRule(request: Rapport_V1_SetRuleEnabledRequest, context: ServerContext) async throws -> Rapport_V1_Rule {
        try await engine.setRuleEnabled(parseID(RuleID.self, request.id, field: "id"), false, requestID: request.requestID).proto
    }

    func deleteRule(request: Rapport_V1_DeleteRuleRequest, context: ServerContext) async throws -> Google_Protobuf_Empty {
        try await engine.deleteRule(parseID(RuleID.self, request.id, field: "id"), requestID: request.requestID)
        return Google_Protobuf_Empty()
    }

    func validateRule(request: Rapport_V1_ValidateRuleRequest, context: ServerContext) async throws -> Rapport_V1_ValidateRuleResponse {
        let definition: RuleDefinition
        do {
            definition = try ruleDefinition(request.rule)
        } catch {
            // What the wire form cannot express is reported like any other problem.
            return .with { $0.issues = error.fieldViolations.map { violation in .with { $0.field = violation.field; $0.message = violation.problem } } }
        }
        let issues = try await engine.validateRule(definition)
        return .with { $0.issues = issues.map { issue in var mapped = issue.proto; mapped.field = "rule.\(issue.field)"; return mapped } }
    }

    func explainRule(request: Rapport_V1_ExplainRuleRequest, context: ServerContext) async throws -> Rapport_V1_RuleExplanation {
        let event = request.hasEvent ? try await renamingFields(under("event")) { try eventInput(request.event) } : nil
        return try await engine.explainRule(
            parseID(RuleID.self, request.ruleID, field: "rule_id"), customer: parseID(CustomerID.self, request.customerID, field: "customer_id"), event: event
        ).proto
    }

    func explainExpression(request: Rapport_V1_ExplainExpressionRequest, context: ServerContext) async throws -> Rapport_V1_Explanation {
        let event = request.hasEvent ? try await renamingFields(under("event")) { try eventInput(request.event) } : nil
        return try await engine.explainExpression(
            request.expression, customer: parseID(CustomerID.self, request.customerID, field: "customer_id"), event: event
        ).proto
    }

    func listRuleRuns(request: Rapport_V1_ListRuleRunsRequest, context: ServerContext) async throws -> Rapport_V1_ListRuleRunsResponse {
        let rule = request.ruleID.isEmpty ? nil : try parseID(RuleID.self, request.ruleID, field: "rule_id")
        let customer = request.customerID.isEmpty ? nil : try parseID(CustomerID.self, request.customerID, field: "customer_id")
        let status = request.status == .unspecified ? nil : try RunStatus(request.status, field: "status")
        let page = try await engine.runs(rule: rule, customer: customer, status: status, page: pageRequest(size: request.pageSize, token: request.pageToken))
        return .with {
            $0.runs = page.runs.map(\.proto)
            $0.nextPageToken = page.nextPageToken ?? ""
        }
    }

    func getRuleRun(request: Rapport_V1_GetRuleRunRequest, context: ServerContext) async throws -> Rapport_V1_RuleRun {
        try await engine.run(parseID(RunID.self, request.id, field: "id")).proto
    }

    func defineEventType(request: Rapport_V1_DefineEventTypeRequest, context: ServerContext) async throws -> Rapport_V1_EventType {
        let definition = try EventTypeDefinition(request.eventType, field: "event_type")
        return try await renamingFields(under("event_type", except: ["request_id"])) {
            try await engine.defineEventType(definition, requestID: request.requestID).proto
        }
    }

    func listEventTypes(request: Rapport_V1_ListEventTypesRequest, context: ServerContext) async throws -> Rapport_V1_ListEventTypesResponse {
        let types = try await engine.eventTypes()
        return .with { $0.eventTypes = types.map(\.proto) }
    }
}

/// `rapport.v1.OutboxService` over the engine.
struct OutboxServiceAdapter: Rapport_V1_OutboxService.SimpleServiceProtocol {
    let engine: RapportEngine

    func streamOutbox(request: Rapport_V1_StreamOutboxRequest, response: RPCWriter<Rapport_V1_OutboxEntry>, context: ServerContext) async throws {
        try RapportEngine.validateConsumer(request.consumer)
        let lease = request.hasLeaseDuration ? try Duration(request.leaseDuration, field: "lease_duration") : .seconds(60)
        guard lease >= .seconds(1), lease <= .seconds(86_400) else { throw RapportError.invalid("lease_duration", "must be 1 second to 1 day") }
        guard (0...1000).contains(request.batchSize) else { throw RapportError.invalid("batch_size", "must be 0 to 1000, got \(request.batchSize)") }
        let deliveries = engine.outboxDeliveries(consumer: request.consumer, leaseDuration: lease, batchSize: request.batchSize == 0 ? 50 : Int(request.batchSize))
        // Cancellation and deadlines reach the handler through the RPC's cancellation handle, not the task. When the
        // stream ends early, the entries leased for it and not written (or whose write failed) are handed back.
        let writer = Task {
            var iterator = deliveries.makeAsyncIterator()
            do {
                while let entry = try await iterator.next() {
                    do {
                        try await response.write(entry.proto)
                    } catch {
                        await iterator.release(also: [entry])
                        throw error
                    }
                }
            } catch {
                await iterator.release()
                throw error
            }
            return true
        }
        let ended = try await awaitStreamWriter(writer, cancelled: false)
        // The stream never ends by itself: a shutdown is not an empty outbox.
        if ended, engine.changeWatchersFinished {
            throw RPCError(code: .unavailable, message: "the server is shutting down: stream the outbox from another one (entries not handed out were released)")
        }
    }

    func leaseOutbox(request: Rapport_V1_LeaseOutboxRequest, context: ServerContext) async throws -> Rapport_V1_LeaseOutboxResponse {
        let entries = try await engine.leaseOutbox(
            consumer: request.consumer, limit: request.limit == 0 ? 100 : Int(request.limit),
            leaseDuration: request.hasLeaseDuration ? try Duration(request.leaseDuration, field: "lease_duration") : .seconds(60),
            requestID: request.requestID)
        return .with { $0.entries = entries.map(\.proto) }
    }

    func acknowledgeOutbox(request: Rapport_V1_AcknowledgeOutboxRequest, context: ServerContext) async throws -> Rapport_V1_AcknowledgeOutboxResponse {
        var validator = Validator()
        let ids = request.ids.enumerated().compactMap { index, text in
            validator.capture("") { () throws(RapportError) in try parseID(OutboxEntryID.self, text, field: "ids[\(index)]") }
        }
        try validator.check()
        let entries = try await engine.acknowledgeOutbox(ids)
        return .with { $0.entries = entries.map(\.proto) }
    }

    func failOutboxEntry(request: Rapport_V1_FailOutboxEntryRequest, context: ServerContext) async throws -> Rapport_V1_OutboxEntry {
        try await engine.failOutboxEntry(
            parseID(OutboxEntryID.self, request.id, field: "id"), consumer: request.consumer.isEmpty ? nil : request.consumer,
            attempt: request.attempt == 0 ? nil : Int(request.attempt), error: request.error,
            retryAfter: request.hasRetryAfter ? try Duration(request.retryAfter, field: "retry_after") : nil, requestID: request.requestID
        ).proto
    }

    func listOutbox(request: Rapport_V1_ListOutboxRequest, context: ServerContext) async throws -> Rapport_V1_ListOutboxResponse {
        let customer = request.customerID.isEmpty ? nil : try parseID(CustomerID.self, request.customerID, field: "customer_id")
        var validator = Validator()
        let states = request.states.enumerated().compactMap { index, state in
            validator.capture("") { () throws(RapportError) in try OutboxState(state, field: "states[\(index)]") }
        }
        try validator.check()
        let page = try await engine.outboxEntries(customer: customer, states: Set(states), page: pageRequest(size: request.pageSize, token: request.pageToken))
        return .with {
            $0.entries = page.entries.map(\.proto)
            $0.nextPageToken = page.nextPageToken ?? ""
        }
    }

    func getOutboxEntry(request: Rapport_V1_GetOutboxEntryRequest, context: ServerContext) async throws -> Rapport_V1_OutboxEntry {
        try await engine.outboxEntry(parseID(OutboxEntryID.self, request.id, field: "id")).proto
    }
}

/// `rapport.v1.ClockService` over the engine.
struct ClockServiceAdapter: Rapport_V1_ClockService.SimpleServiceProtocol {
    let engine: RapportEngine

    func getTime(request: Rapport_V1_GetTimeRequest, context: ServerContext) async throws -> Rapport_V1_GetTimeResponse {
        let next = try await engine.nextJobDue()
        return .with {
            $0.now = engine.clock.now().proto
            $0.manual = engine.clock is ManualClock
            if let next { $0.nextJobTime = next.proto }
        }
    }

    func advanceClock(request: Rapport_V1_AdvanceClockRequest, context: ServerContext) async throws -> Rapport_V1_AdvanceClockResponse {
        guard engine.clock is ManualClock else {
            throw RapportError.failedPrecondition("the server runs on the system clock; start it with --manual-clock to move time in tests")
        }
        let target: Timestamp
        let field: String
        switch request.target {
        case .by(let duration):
            let amount = try Duration(duration, field: "by")
            guard amount >= .zero else { throw RapportError.invalid("by", "must not be negative") }
            target = engine.clock.now() + amount
            field = "by"
        case .to(let instant):
            target = try Timestamp(instant, field: "to")
            field = "to"
        case nil: throw RapportError.invalid("target", "is required: 'by' a duration or 'to' an instant")
        }
        let ran: Int
        do {
            ran = try await engine.advanceManualClock(to: target)
        } catch {
            // The engine names its parameter `target`; the caller sent `by` or `to`.
            guard case .invalidArgument(let violations) = error else { throw error }
            throw RapportError.invalidArgument(violations.map { FieldViolation(field: $0.field == "target" ? field : $0.field, problem: $0.problem) })
        }
        return .with {
            $0.now = engine.clock.now().proto
            $0.jobsRun = Int64(ran)
        }
    }
}
