import GRPCCore
import GRPCProtobuf
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf
import Testing

@Suite("request_id replays over gRPC")
struct RequestIDTests {
    @Test func createCustomerReplaysTheFirstResponse() async throws {
        try await withRapport { c in
            let request = Rapport_V1_CreateCustomerRequest.with { $0.customer = adaProto; $0.requestID = "create-1" }
            let first = try await c.customers.createCustomer(request)
            let changes = try await c.engine.changes(after: 0)
            c.clock.advance(by: .seconds(10))
            let retry = try await c.customers.createCustomer(request)
            #expect(retry == first)
            #expect(try await c.engine.customerCount() == 1)
            #expect(try await c.engine.changes(after: 0) == changes)

            // The same id for another request is refused and changes nothing.
            var other = request
            other.customer.givenName = "Eve"
            other.customer.identities = [.email("eve@example.com")]
            let error = await expectRPCError(.failedPrecondition) { try await c.customers.createCustomer(other) }
            #expect(error?.message.contains("request_id 'create-1' was already used for a different") == true)
            #expect(try await c.engine.customerCount() == 1)
            #expect(try await c.engine.changes(after: 0) == changes)
            await expectRPCError(.notFound) { try await c.customers.findCustomer(.with { $0.identity = .email("eve@example.com") }) }
            // Without a request id, a second create is a second customer (here refused: the identities are taken).
            await expectRPCError(.invalidArgument) { try await c.customers.createCustomer(.with { $0.customer = adaProto }) }

            // Another key's "create-1" is another service's request: applied, not refused as a reuse.
            let eve = try await c.as(.marketing) { try await c.customers.createCustomer(other) }
            #expect(eve.givenName == "Eve")
            #expect(try await c.as(.marketing) { try await c.customers.createCustomer(other) } == eve)  // and its own retry
            #expect(try await c.engine.customerCount() == 2)
        }
    }

    @Test func ingestEventsReplaysTheFirstResponse() async throws {
        try await withRapport { c in
            let request = Rapport_V1_IngestEventsRequest.with {
                $0.items = [eventItem("e-1", at: 0, .email(adaEmail)), orderItem("o-1", at: 0, .email(adaEmail), unitPrice: 2500), eventItem("bad", "Bad", at: 0, .email(adaEmail))]
                $0.requestID = "batch-1"
            }
            let first = try await c.ingest.ingestEvents(request)
            #expect(first.results.map(\.outcome) == [.accepted, .accepted, .rejected])
            #expect(first.createdCustomerIds.count == 1)
            let changes = try await c.engine.changes(after: 0)
            c.clock.advance(by: .seconds(10))
            let retry = try await c.ingest.ingestEvents(request)
            #expect(retry == first)  // accepted again, not duplicate: the first answer
            let stats = try await c.views.getCustomerStats(.with { $0.customerID = first.createdCustomerIds[0] })
            #expect(stats.eventCount == 1 && stats.orderCount == 1 && stats.spent.first?.total.minorUnits == 2500)
            #expect(try await c.engine.changes(after: 0) == changes)

            var other = request
            other.items = [eventItem("e-2", at: 0, .email(adaEmail))]
            let error = await expectRPCError(.failedPrecondition) { try await c.ingest.ingestEvents(other) }
            #expect(error?.message.contains("batch-1") == true)
            await expectRPCError(.notFound) { try await c.views.getEvent(.with { $0.id = "e-2" }) }
            #expect(try await c.engine.changes(after: 0) == changes)

            // Without a request id the same batch is applied again: each item is a duplicate.
            var plain = request
            plain.requestID = ""
            #expect(try await c.ingest.ingestEvents(plain).results.map(\.outcome) == [.duplicate, .duplicate, .rejected])
        }
    }

    @Test func anIngestRequestThatDiffersOnlyInAnItemTheWireMappingRejectsIsADifferentRequest() async throws {
        try await withRapport { c in
            var noTime = eventItem("e-2", at: 0, .email(adaEmail))
            noTime.event.clearOccurTime()  // rejected before the engine sees it
            let first = try await c.ingest.ingestEvents(.with { $0.items = [eventItem("e-1", at: 0, .email(adaEmail)), noTime]; $0.requestID = "batch-2" })
            #expect(first.results.map(\.outcome) == [.accepted, .rejected])
            #expect(first.results[1].violations.map(\.field) == ["occur_time"])
            // Same id, another request: it must not pass for a retry of the first one.
            await expectRPCError(.failedPrecondition) {
                try await c.ingest.ingestEvents(.with { $0.items = [eventItem("e-1", at: 0, .email(adaEmail))]; $0.requestID = "batch-2" })
            }
        }
    }

    @Test func mergeCustomersReplaysTheFirstResponse() async throws {
        try await withRapport { c in
            let ada = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email(adaEmail)] } })
            c.clock.advance(by: .seconds(1))
            let bob = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("bob@example.com")] } })
            c.clock.advance(by: .seconds(1))
            let eve = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("eve@example.com")] } })
            let request = Rapport_V1_MergeCustomersRequest.with { $0.customerIds = [ada.id, bob.id]; $0.requestID = "merge-1" }
            let first = try await c.merges.mergeCustomers(request)
            let changes = try await c.engine.changes(after: 0)
            c.clock.advance(by: .seconds(10))
            // A retry is not FAILED_PRECONDITION although bob is merged now: it is the first answer.
            let retry = try await c.merges.mergeCustomers(request)
            #expect(retry == first)
            #expect(try await c.merges.listMerges(.with { $0.customerID = ada.id }).merges == [first.merge])
            #expect(try await c.engine.changes(after: 0) == changes)

            let error = await expectRPCError(.failedPrecondition) {
                try await c.merges.mergeCustomers(.with { $0.customerIds = [ada.id, eve.id]; $0.requestID = "merge-1" })
            }
            #expect(error?.message.contains("merge-1") == true)
            #expect(try await c.customers.getCustomer(.with { $0.id = eve.id }).id == eve.id)
            #expect(try await c.engine.changes(after: 0) == changes)

            // The merge undone, a retry of the merge still answers the first response and merges nothing again.
            let unmerge = Rapport_V1_UnmergeCustomersRequest.with { $0.mergeID = first.merge.id; $0.requestID = "unmerge-1" }
            let undone = try await c.merges.unmergeCustomers(unmerge)
            #expect(try await c.merges.unmergeCustomers(unmerge) == undone)
            #expect(try await c.merges.mergeCustomers(request) == first)
            #expect(try await c.customers.getCustomer(.with { $0.id = bob.id }).id == bob.id)
            #expect(try await c.merges.listMerges(.with { $0.customerID = ada.id }).merges == [undone.merge])
        }
    }

    @Test func everyOtherMutationReplaysToo() async throws {
        try await withRapport { c in
            let ada = try await c.customers.createCustomer(.with { $0.customer = adaProto })
            let update = Rapport_V1_UpdateCustomerRequest.with {
                $0.customer = .with { $0.id = ada.id; $0.etag = ada.etag; $0.givenName = "Augusta" }
                $0.updateMask = .with { $0.paths = ["given_name"] }
                $0.requestID = "update-1"
            }
            let updated = try await c.customers.updateCustomer(update)
            // The etag is stale now, yet the retry answers the first response.
            #expect(try await c.customers.updateCustomer(update) == updated)

            let add = Rapport_V1_AddIdentityRequest.with { $0.customerID = ada.id; $0.identity = .email("augusta@example.com"); $0.requestID = "add-1" }
            let added = try await c.customers.addIdentity(add)
            #expect(try await c.customers.addIdentity(add) == added)
            let remove = Rapport_V1_RemoveIdentityRequest.with { $0.customerID = ada.id; $0.identity = .email("augusta@example.com"); $0.requestID = "remove-1" }
            let removed = try await c.customers.removeIdentity(remove)
            #expect(try await c.customers.removeIdentity(remove) == removed)  // not NOT_FOUND

            let define = Rapport_V1_DefineAttributeRequest.with { $0.definition = .with { $0.key = "vip_since"; $0.type = .timestamp }; $0.requestID = "define-1" }
            let defined = try await c.customers.defineAttribute(define)
            #expect(try await c.customers.defineAttribute(define) == defined)

            let interaction = Rapport_V1_RecordInteractionRequest.with {
                $0.interaction = .with { $0.customerID = ada.id; $0.channel = .chat; $0.direction = .inbound; $0.subject = "Hi" }
                $0.requestID = "interaction-1"
            }
            let recorded = try await c.interactions.recordInteraction(interaction)
            c.clock.advance(by: .seconds(5))
            #expect(try await c.interactions.recordInteraction(interaction) == recorded)
            #expect(try await c.interactions.listInteractions(.with { $0.customerID = ada.id }).interactions == [recorded])

            let consent = Rapport_V1_RecordConsentRequest.with {
                $0.consent = .with { $0.customerID = ada.id; $0.channel = .sms; $0.purpose = .marketing; $0.status = .granted; $0.source = "store" }
                $0.requestID = "consent-1"
            }
            let given = try await c.consents.recordConsent(consent)
            #expect(try await c.consents.recordConsent(consent) == given)
            #expect(try await c.consents.listConsents(.with { $0.customerID = ada.id; $0.history = true }).consents == [given])

            // A retried key creation never shows the secret again: it is not stored.
            let createKey = Rapport_V1_CreateApiKeyRequest.with { $0.name = "crm-sync"; $0.role = .sales; $0.requestID = "key-1" }
            let key = try await c.apiKeys.createApiKey(createKey)
            let keyAgain = try await c.apiKeys.createApiKey(createKey)
            #expect(keyAgain.apiKey == key.apiKey)
            #expect(keyAgain.secret.isEmpty && !key.secret.isEmpty)
            #expect(try await c.apiKeys.listApiKeys(.init()).apiKeys.filter { $0.name == "crm-sync" }.count == 1)
            let revoke = Rapport_V1_RevokeApiKeyRequest.with { $0.id = key.apiKey.id; $0.requestID = "revoke-1" }
            let revoked = try await c.apiKeys.revokeApiKey(revoke)
            c.clock.advance(by: .seconds(5))
            #expect(try await c.apiKeys.revokeApiKey(revoke) == revoked)

            let delete = Rapport_V1_DeleteCustomerRequest.with { $0.id = ada.id; $0.requestID = "delete-1" }
            _ = try await c.customers.deleteCustomer(delete)
            _ = try await c.customers.deleteCustomer(delete)  // not NOT_FOUND
            await expectRPCError(.notFound) { try await c.customers.deleteCustomer(.with { $0.id = ada.id; $0.requestID = "delete-2" }) }

            let tooLong = await expectRPCError(.invalidArgument) {
                try await c.customers.createCustomer(.with { $0.requestID = String(repeating: "x", count: 129) })
            }
            #expect(violationFields(tooLong) == ["request_id"])
        }
    }
}
