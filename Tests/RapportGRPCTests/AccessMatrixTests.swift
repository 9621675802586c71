import GRPCCore
import GRPCProtobuf
import Rapport
import RapportCore
// `@testable` to iterate `Permissions.table`, the permission each method needs.
@testable import RapportGRPC
import RapportProto
import SwiftProtobuf
import Testing

@Suite("Roles × RPC methods over gRPC")
struct AccessMatrixTests {
    /// Every method of every Rapport service, from the generated code.
    static let generatedMethods: [MethodDescriptor] = [
        Rapport_V1_CustomerService.Method.descriptors, Rapport_V1_MergeService.Method.descriptors, Rapport_V1_IngestService.Method.descriptors,
        Rapport_V1_Customer360Service.Method.descriptors, Rapport_V1_InteractionService.Method.descriptors, Rapport_V1_ConsentService.Method.descriptors,
        Rapport_V1_ChangeService.Method.descriptors, Rapport_V1_ApiKeyService.Method.descriptors, Rapport_V1_SegmentService.Method.descriptors,
        Rapport_V1_RuleService.Method.descriptors, Rapport_V1_OutboxService.Method.descriptors, Rapport_V1_ClockService.Method.descriptors,
        Rapport_V1_PrivacyService.Method.descriptors,
    ].flatMap { $0 }

    /// The table's entries in a stable order.
    static var table: [(method: MethodDescriptor, permission: Permission)] {
        Permissions.table.map { ($0.key, $0.value) }.sorted { $0.method.fullyQualifiedMethod < $1.method.fullyQualifiedMethod }
    }

    /// Calls `method` with a dummy request that changes nothing: an allowed call ends OK, NOT_FOUND or
    /// INVALID_ARGUMENT. A method without a case here fails the test.
    static func call(_ method: MethodDescriptor, _ c: Harness, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        typealias Customers = Rapport_V1_CustomerService.Method
        typealias Merges = Rapport_V1_MergeService.Method
        typealias Ingest = Rapport_V1_IngestService.Method
        typealias Views = Rapport_V1_Customer360Service.Method
        typealias Interactions = Rapport_V1_InteractionService.Method
        typealias Consents = Rapport_V1_ConsentService.Method
        typealias Changes = Rapport_V1_ChangeService.Method
        typealias Keys = Rapport_V1_ApiKeyService.Method
        let nobody = "cus_nobody"
        switch method {
        case Customers.GetCustomer.descriptor: _ = try await c.customers.getCustomer(.with { $0.id = nobody })
        case Customers.FindCustomer.descriptor: _ = try await c.customers.findCustomer(.with { $0.identity = .email("nobody@example.com") })
        case Customers.ListCustomers.descriptor: _ = try await c.customers.listCustomers(.init())
        case Customers.CreateCustomer.descriptor: _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.init()] } })
        case Customers.UpdateCustomer.descriptor:
            _ = try await c.customers.updateCustomer(.with { $0.customer = .with { $0.id = nobody }; $0.updateMask = .with { $0.paths = ["given_name"] } })
        case Customers.DeleteCustomer.descriptor: _ = try await c.customers.deleteCustomer(.with { $0.id = nobody })
        case Customers.AddIdentity.descriptor: _ = try await c.customers.addIdentity(.with { $0.customerID = nobody; $0.identity = .email("x@example.com") })
        case Customers.RemoveIdentity.descriptor:
            _ = try await c.customers.removeIdentity(.with { $0.customerID = nobody; $0.identity = .email("x@example.com") })
        case Customers.DefineAttribute.descriptor: _ = try await c.customers.defineAttribute(.init())
        case Customers.ListAttributeDefinitions.descriptor: _ = try await c.customers.listAttributeDefinitions(.init())
        case Merges.MergeCustomers.descriptor: _ = try await c.merges.mergeCustomers(.init())
        case Merges.UnmergeCustomers.descriptor: _ = try await c.merges.unmergeCustomers(.with { $0.mergeID = "mrg_nothing" })
        case Merges.GetMerge.descriptor: _ = try await c.merges.getMerge(.with { $0.id = "mrg_nothing" })
        case Merges.ListMerges.descriptor: _ = try await c.merges.listMerges(.with { $0.customerID = nobody })
        case Ingest.IngestEvents.descriptor: _ = try await c.ingest.ingestEvents(.init())
        case Ingest.StreamIngest.descriptor: _ = try await c.ingest.streamIngest { _ in }
        case Views.GetCustomer360.descriptor: _ = try await c.views.getCustomer360(.with { $0.customerID = nobody })
        case Views.ListTimeline.descriptor: _ = try await c.views.listTimeline(.with { $0.customerID = nobody })
        case Views.GetOrder.descriptor: _ = try await c.views.getOrder(.with { $0.id = "ord_nothing" })
        case Views.ListOrders.descriptor: _ = try await c.views.listOrders(.with { $0.customerID = nobody })
        case Views.GetEvent.descriptor: _ = try await c.views.getEvent(.with { $0.id = "nothing" })
        case Views.GetCustomerStats.descriptor: _ = try await c.views.getCustomerStats(.with { $0.customerID = nobody })
        case Interactions.RecordInteraction.descriptor: _ = try await c.interactions.recordInteraction(.init())
        case Interactions.ListInteractions.descriptor: _ = try await c.interactions.listInteractions(.with { $0.customerID = nobody })
        case Consents.RecordConsent.descriptor: _ = try await c.consents.recordConsent(.init())
        case Consents.ListConsents.descriptor: _ = try await c.consents.listConsents(.with { $0.customerID = nobody })
        case Changes.WatchChanges.descriptor:
            // A negative cursor ends the stream at once when the call is allowed.
            try await c.changes.watchChanges(.with { $0.afterCursor = -1 }) { response in
                for try await _ in response.messages {}
            }
        case Keys.CreateApiKey.descriptor: _ = try await c.apiKeys.createApiKey(.init())
        case Keys.RevokeApiKey.descriptor: _ = try await c.apiKeys.revokeApiKey(.with { $0.id = "key_nothing" })
        case Keys.ListApiKeys.descriptor: _ = try await c.apiKeys.listApiKeys(.init())
        default:
            try await callAutomation(method, c, sourceLocation: sourceLocation)
        }
    }

    /// The dummy calls of the segment, rule, outbox and clock services.
    static func callAutomation(_ method: MethodDescriptor, _ c: Harness, sourceLocation: SourceLocation) async throws {
        typealias Segments = Rapport_V1_SegmentService.Method
        typealias Rules = Rapport_V1_RuleService.Method
        typealias Outbox = Rapport_V1_OutboxService.Method
        typealias Clock = Rapport_V1_ClockService.Method
        let nobody = "cus_nobody"
        switch method {
        case Segments.CreateSegment.descriptor: _ = try await c.segments.createSegment(.init())
        case Segments.GetSegment.descriptor: _ = try await c.segments.getSegment(.with { $0.id = "seg_nothing" })
        case Segments.ListSegments.descriptor: _ = try await c.segments.listSegments(.init())
        case Segments.UpdateSegment.descriptor:
            _ = try await c.segments.updateSegment(.with { $0.segment = .with { $0.id = "seg_nothing" }; $0.updateMask = .with { $0.paths = ["name"] } })
        case Segments.DeleteSegment.descriptor: _ = try await c.segments.deleteSegment(.with { $0.id = "seg_nothing" })
        case Segments.ListSegmentMembers.descriptor: _ = try await c.segments.listSegmentMembers(.with { $0.segmentID = "seg_nothing" })
        case Segments.ListCustomerSegments.descriptor: _ = try await c.segments.listCustomerSegments(.with { $0.customerID = nobody })
        case Segments.PreviewSegment.descriptor: _ = try await c.segments.previewSegment(.init())
        case Segments.ExplainSegment.descriptor: _ = try await c.segments.explainSegment(.with { $0.segmentID = "seg_nothing"; $0.customerID = nobody })
        case Segments.AddToList.descriptor: _ = try await c.segments.addToList(.with { $0.segmentID = "seg_nothing" })
        case Segments.RemoveFromList.descriptor: _ = try await c.segments.removeFromList(.with { $0.segmentID = "seg_nothing" })
        case Rules.CreateRule.descriptor: _ = try await c.rules.createRule(.init())
        case Rules.GetRule.descriptor: _ = try await c.rules.getRule(.with { $0.id = "rul_nothing" })
        case Rules.ListRules.descriptor: _ = try await c.rules.listRules(.init())
        case Rules.UpdateRule.descriptor: _ = try await c.rules.updateRule(.with { $0.rule = .with { $0.id = "rul_nothing" } })
        case Rules.EnableRule.descriptor: _ = try await c.rules.enableRule(.with { $0.id = "rul_nothing" })
        case Rules.DisableRule.descriptor: _ = try await c.rules.disableRule(.with { $0.id = "rul_nothing" })
        case Rules.DeleteRule.descriptor: _ = try await c.rules.deleteRule(.with { $0.id = "rul_nothing" })
        case Rules.ValidateRule.descriptor: _ = try await c.rules.validateRule(.init())
        case Rules.ExplainRule.descriptor: _ = try await c.rules.explainRule(.with { $0.ruleID = "rul_nothing"; $0.customerID = nobody })
        case Rules.ExplainExpression.descriptor: _ = try await c.rules.explainExpression(.with { $0.expression = "true"; $0.customerID = nobody })
        case Rules.ListRuleRuns.descriptor: _ = try await c.rules.listRuleRuns(.init())
        case Rules.GetRuleRun.descriptor: _ = try await c.rules.getRuleRun(.with { $0.id = "run_nothing" })
        case Rules.DefineEventType.descriptor: _ = try await c.rules.defineEventType(.init())
        case Rules.ListEventTypes.descriptor: _ = try await c.rules.listEventTypes(.init())
        case Outbox.StreamOutbox.descriptor:
            // An empty consumer name ends the stream at once when the call is allowed.
            try await c.outbox.streamOutbox(.init()) { response in
                for try await _ in response.messages {}
            }
        case Outbox.LeaseOutbox.descriptor: _ = try await c.outbox.leaseOutbox(.init())
        case Outbox.AcknowledgeOutbox.descriptor: _ = try await c.outbox.acknowledgeOutbox(.init())
        case Outbox.FailOutboxEntry.descriptor: _ = try await c.outbox.failOutboxEntry(.with { $0.id = "obx_nothing" })
        case Outbox.ListOutbox.descriptor: _ = try await c.outbox.listOutbox(.init())
        case Outbox.GetOutboxEntry.descriptor: _ = try await c.outbox.getOutboxEntry(.with { $0.id = "obx_nothing" })
        case Clock.GetTime.descriptor: _ = try await c.clockService.getTime(.init())
        case Clock.AdvanceClock.descriptor: _ = try await c.clockService.advanceClock(.init())
        case Rapport_V1_PrivacyService.Method.ExportCustomer.descriptor: _ = try await c.privacy.exportCustomer(.with { $0.customerID = nobody })
        default: Issue.record("no dummy call for \(method.fullyQualifiedMethod): add one", sourceLocation: sourceLocation)
        }
    }

    @Test func theTableCoversEveryMethodOfEveryRapportServiceAndNothingElse() {
        #expect(Set(Self.generatedMethods) == Set(Permissions.table.keys))
        #expect(Self.generatedMethods.count == Permissions.table.count)
        for method in Grpc_Health_V1_Health.Method.descriptors {
            #expect(Permissions.required(for: method) == nil, "\(method) should be open")
        }
        for method in Self.generatedMethods {
            #expect(Permissions.required(for: method) == Permissions.table[method])
        }
    }

    @Test(arguments: Role.allCases)
    func aRoleMayCallAMethodIffItHasThePermission(role: Role) async throws {
        try await withRapport(role: role) { c in
            for (method, permission) in Self.table {
                let before = try await c.engine.changes(after: 0)
                let keysBefore = try await c.engine.apiKeys()
                let (code, error) = await statusCode { try await Self.call(method, c) }
                let name = "\(role.rawValue) → \(method.fullyQualifiedMethod) (\(permission.rawValue))"
                if role.permissions.contains(permission) {
                    #expect(code != .permissionDenied && code != .unauthenticated, "\(name) was refused: \(String(describing: error))")
                    // The dummy requests are empty or name nothing that exists.
                    #expect(code == nil || code == .notFound || code == .invalidArgument, "\(name): \(String(describing: error))")
                } else {
                    #expect(code == .permissionDenied, "\(name) was not refused: \(String(describing: error))")
                }
                #expect(try await c.engine.changes(after: 0) == before, "\(name) changed something")
                #expect(try await c.engine.apiKeys() == keysBefore, "\(name) changed the keys")
            }
        }
    }

    @Test func everyMethodNeedsAKey() async throws {
        try await withRapport { c in
            for (method, _) in Self.table {
                for secret in [nil, "rpk_notakey"] as [String?] {
                    let (code, error) = await c.withSecret(secret) { await statusCode { try await Self.call(method, c) } }
                    #expect(code == .unauthenticated, "\(method.fullyQualifiedMethod) with \(secret ?? "no key"): \(String(describing: error))")
                }
            }
        }
    }

    @Test func onlyAdminsEraseCustomersAndOnlyAdminsAndMarketingChangeTheSchema() async throws {
        typealias Customers = Rapport_V1_CustomerService.Method
        #expect(Permissions.table[Customers.DeleteCustomer.descriptor] == .eraseCustomers)
        #expect(Permissions.table[Customers.DefineAttribute.descriptor] == .defineAttributes)
        #expect(Role.allCases.filter { $0.permissions.contains(.eraseCustomers) } == [.admin])
        #expect(Permissions.table[Rapport_V1_PrivacyService.Method.ExportCustomer.descriptor] == .exportCustomers)
        #expect(Role.allCases.filter { $0.permissions.contains(.exportCustomers) } == [.admin])
        #expect(Role.allCases.filter { $0.permissions.contains(.defineAttributes) } == [.admin, .marketing])
        for role in [Role.marketing, .sales, .service] {
            try await withRapport(role: role) { c in
                let id = try await c.as(.admin) { try await c.customers.createCustomer(.with { $0.customer.givenName = "Ada" }).id }
                await expectRPCError(.permissionDenied) { try await c.customers.deleteCustomer(.with { $0.id = id }) }
                #expect(try await c.customers.getCustomer(.with { $0.id = id }).givenName == "Ada")
            }
        }
    }

    @Test func theRolesSeeWhatTheirPermissionsSay() {
        // The masking rule the adapters apply follows the permission.
        for role in Role.allCases {
            #expect(role.seesPersonalData == role.permissions.contains(.readPersonalData))
        }
        #expect(Role.allCases.filter { !$0.seesPersonalData } == [.analyst, .readOnly])
    }
}
