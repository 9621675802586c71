import GRPCCore
import GRPCProtobuf
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf
import Testing

@Suite("Status codes and their messages over gRPC")
struct ErrorTests {
    @Test func invalidArgumentNamesEveryBadFieldInABadRequest() async throws {
        try await withRapport { c in
            // The adapter's own checks: every identity without a kind at once.
            let kinds = await expectRPCError(.invalidArgument) {
                try await c.customers.createCustomer(
                    .with { $0.customer = .with { $0.identities = [.email(adaEmail), .with { $0.value = "x" }, .with { $0.value = "y" }] } })
            }
            #expect(violationFields(kinds) == ["customer.identities[1].kind", "customer.identities[2].kind"])
            #expect(kinds?.message.contains("customer.identities[1].kind") == true)
            #expect(kinds?.message.contains("needs a kind") == true)

            let mask = await expectRPCError(.invalidArgument) {
                try await c.customers.updateCustomer(
                    .with { $0.customer = .with { $0.id = "cus_1" }; $0.updateMask = .with { $0.paths = ["given_name", "nickname", "attributes.Bad-Key"] } })
            }
            #expect(violationFields(mask) == ["update_mask.paths[1]", "update_mask.paths[2]"])
            #expect(mask?.message.contains("'nickname' is not a customer field") == true)
            let noMask = await expectRPCError(.invalidArgument) {
                try await c.customers.updateCustomer(.with { $0.customer = .with { $0.id = "cus_1" } })
            }
            #expect(violationFields(noMask) == ["update_mask"])

            // A decimal is written in full: text that only starts like one is refused, not cut short.
            for text in ["1.2.3", "12-5", "5+", ".5", "5.", "", "1e5", String(repeating: "9", count: 39)] {
                let decimal = await expectRPCError(.invalidArgument) {
                    try await c.customers.createCustomer(
                        .with { $0.customer = .with { $0.attributes = ["score": .with { $0.decimalValue = text }] } })
                }
                #expect(violationFields(decimal) == ["customer.attributes.score"], "\(text)")
            }

            // All or nothing: every bad item is named, and nothing is applied.
            let batch = await expectRPCError(.invalidArgument) {
                try await c.ingest.ingestEvents(
                    .with {
                        $0.items = [
                            eventItem("ok", at: 0, .email(adaEmail)),
                            eventItem("bad-type", "Page Viewed", at: 0, .email(adaEmail)),
                            orderItem("o-1", at: 0, .email(adaEmail), quantity: 0),
                        ]
                        $0.mode = .allOrNothing
                    })
            }
            #expect(violationFields(batch) == ["items[1].type", "items[2].lines[0].quantity"])
            let count = try await c.engine.customerCount()
            #expect(count == 0)

            // A thousand bad items: the status names the first ones and counts the rest, so that it fits the
            // trailers clients accept (a dump of every violation would end as a transport error).
            let thousand = await expectRPCError(.invalidArgument) {
                try await c.ingest.ingestEvents(
                    .with {
                        $0.items = (0..<1000).map { eventItem("bad-\($0)", "Page Viewed", at: 0, .email(adaEmail)) }
                        $0.mode = .allOrNothing
                    })
            }
            let fields = violationFields(thousand)
            #expect(fields == (0..<25).map { "items[\($0)].type" } + [""])
            #expect(thousand?.message.hasSuffix("; and 995 more (1000 in all)") == true)
            #expect(thousand?.message.contains("items[4].type") == true)
            #expect(thousand?.message.contains("items[5].type") == false)
            let status = try #require(try thousand?.unpackGoogleRPCStatus())
            #expect(status.details.compactMap(\.badRequest).first?.violations.last?.violationDescription == "and 975 more violations (1000 in all)")
            #expect(try await c.engine.customerCount() == 0)
            #expect(try await c.engine.changes(after: 0).isEmpty)

            // Bad values echoed in the texts are clipped: 25 items with a kilobyte of junk each as a phone number
            // still reach the client as INVALID_ARGUMENT naming their fields, within the trailers' caps.
            let junk = String(repeating: "x", count: 1000)
            let clipped = await expectRPCError(.invalidArgument) {
                try await c.ingest.ingestEvents(
                    .with {
                        $0.items = (0..<25).map { eventItem("junk-\($0)", at: 0, .phone(junk + "\($0)")) }
                        $0.mode = .allOrNothing
                    })
            }
            let clippedFields = violationFields(clipped)
            #expect(clippedFields.count >= 5 && clippedFields.allSatisfy { $0.hasPrefix("items[") && $0.hasSuffix("].identities[0].value") || $0.isEmpty })
            #expect((clipped?.message.utf8.count ?? .max) <= 600)
            #expect(clipped?.message.hasSuffix("; and 20 more (25 in all)") == true)
            let clippedStatus = try #require(try clipped?.unpackGoogleRPCStatus())
            let clippedViolations = try #require(clippedStatus.details.compactMap(\.badRequest).first?.violations)
            #expect(clippedViolations.allSatisfy { $0.violationDescription.utf8.count <= 200 })
            #expect(clippedViolations.last?.field == "" && clippedViolations.last?.violationDescription.hasSuffix("(25 in all)") == true)
            // Within grpcio's 8 KiB with the message itself (percent-encoded: three bytes each at worst).
            let trailers = (clipped?.metadata.reduce(0) { $0 + $1.key.utf8.count + $1.value.encoded().utf8.count } ?? .max) + 3 * (clipped?.message.utf8.count ?? 0)
            #expect(trailers < 8192)

            let ids = await expectRPCError(.invalidArgument) { try await c.merges.mergeCustomers(.with { $0.customerIds = ["cus_1", "ord_2"] }) }
            #expect(violationFields(ids) == ["customer_ids[1]"])
            #expect(ids?.message.contains("'ord_2' is not a customer id") == true)
        }
    }

    /// Each violation names the field by its path in the request message, in the proto's own names, so that a client
    /// can point at it.
    struct FieldPathCase: Sendable, CustomTestStringConvertible {
        let name: String
        let expected: [String]
        let call: @Sendable (Harness) async throws -> Void
        var testDescription: String { name }

        static let all: [FieldPathCase] = [
            FieldPathCase(name: "CreateCustomer e-mail", expected: ["customer.identities[0].value"]) { c in
                _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("not an e-mail")] } })
            },
            FieldPathCase(name: "CreateCustomer address", expected: ["customer.addresses[0].country"]) { c in
                _ = try await c.customers.createCustomer(
                    .with { $0.customer = .with { $0.addresses = [.with { $0.line1 = "1 Main St"; $0.city = "Berlin"; $0.country = "Germany" }] } })
            },
            FieldPathCase(name: "CreateCustomer attribute", expected: ["customer.attributes.shoe_size"]) { c in
                _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.attributes = ["shoe_size": .with { $0.intValue = 38 }] } })
            },
            FieldPathCase(name: "UpdateCustomer locale", expected: ["customer.locale"]) { c in
                let ada = try await c.customers.createCustomer(.init())
                _ = try await c.customers.updateCustomer(
                    .with { $0.customer = .with { $0.id = ada.id; $0.locale = "not a locale!" }; $0.updateMask = .with { $0.paths = ["locale"] } })
            },
            FieldPathCase(name: "CreateCustomer tag, named where it was sent", expected: ["customer.tags[1]"]) { c in
                _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.tags = ["vip", "a,b"] } })
            },
            FieldPathCase(name: "UpdateCustomer tag, named where it was sent", expected: ["customer.tags[2]"]) { c in
                let ada = try await c.customers.createCustomer(.init())
                _ = try await c.customers.updateCustomer(
                    .with { $0.customer = .with { $0.id = ada.id; $0.tags = ["zz", " ok", "bad,tag", "zz"] }; $0.updateMask = .with { $0.paths = ["tags"] } })
            },
            FieldPathCase(name: "FindCustomer", expected: ["identity.value"]) { c in
                _ = try await c.customers.findCustomer(.with { $0.identity = .email("nobody at example") })
            },
            FieldPathCase(name: "AddIdentity", expected: ["identity.value"]) { c in
                let ada = try await c.customers.createCustomer(.init())
                _ = try await c.customers.addIdentity(.with { $0.customerID = ada.id; $0.identity = .phone("call me maybe") })
            },
            FieldPathCase(name: "DefineAttribute", expected: ["definition.key"]) { c in
                _ = try await c.customers.defineAttribute(.with { $0.definition = .with { $0.key = "Shoe Size"; $0.type = .int } })
            },
            FieldPathCase(name: "IngestEvents event time", expected: ["items[0].occur_time"]) { c in
                var item = eventItem("old", at: 0, .email(adaEmail))
                item.event.occurTime = .init(seconds: 100, nanos: 0)  // 1970
                _ = try await c.ingest.ingestEvents(.with { $0.items = [item]; $0.mode = .allOrNothing })
            },
            FieldPathCase(name: "IngestEvents order amounts", expected: ["items[0].place_time", "items[0].lines[0].unit_price_minor", "items[0].discount_minor"]) { c in
                var item = orderItem("o-1", at: 0, .email(adaEmail), unitPrice: -1)
                item.order.placeTime = .init(seconds: 100, nanos: 0)
                item.order.discountMinor = -5
                _ = try await c.ingest.ingestEvents(.with { $0.items = [item]; $0.mode = .allOrNothing })
            },
            FieldPathCase(name: "IngestEvents every bad item", expected: ["items[0].type", "items[1].item"]) { c in
                // One item the engine rejects, one the wire mapping rejects: all or nothing names both.
                _ = try await c.ingest.ingestEvents(.with { $0.items = [eventItem("e", "Bad Type", at: 0, .email(adaEmail)), .init()]; $0.mode = .allOrNothing })
            },
            FieldPathCase(name: "RecordInteraction", expected: ["interaction.subject"]) { c in
                let ada = try await c.customers.createCustomer(.init())
                _ = try await c.interactions.recordInteraction(
                    .with {
                        $0.interaction = .with {
                            $0.customerID = ada.id; $0.channel = .chat; $0.direction = .inbound; $0.subject = String(repeating: "s", count: 501)
                        }
                    })
            },
            FieldPathCase(name: "RecordConsent", expected: ["consent.source"]) { c in
                let ada = try await c.customers.createCustomer(.init())
                _ = try await c.consents.recordConsent(
                    .with { $0.consent = .with { $0.customerID = ada.id; $0.channel = .email; $0.purpose = .marketing; $0.status = .granted } })
            },
            FieldPathCase(name: "GetOrder empty key", expected: ["order_key.source", "order_key.external_id"]) { c in
                _ = try await c.views.getOrder(.with { $0.orderKey = .init() })
            },
            FieldPathCase(name: "FailOutboxEntry negative attempt", expected: ["attempt"]) { c in
                _ = try await c.outbox.failOutboxEntry(.with { $0.id = "obx_1"; $0.attempt = -1; $0.error = "smtp down" })
            },
            FieldPathCase(name: "CreateApiKey", expected: ["name"]) { c in
                _ = try await c.apiKeys.createApiKey(.with { $0.name = "  "; $0.role = .analyst })
            },
        ]
    }

    @Test(arguments: FieldPathCase.all)
    func violationsUseTheRequestsFieldPaths(_ testCase: FieldPathCase) async throws {
        try await withRapport { c in
            let error = await expectRPCError(.invalidArgument) { try await testCase.call(c) }
            #expect(violationFields(error).sorted() == testCase.expected.sorted())
        }
    }

    @Test func aBatchOverTheLimitIsRefusedWholeEvenWhenSomeItemsCannotBeRead() async throws {
        try await withRapport { c in
            // 10,000 readable events and one empty item: 10,001 items sent, one more than a batch holds.
            var items = (0..<RapportEngine.maxBatchSize).map { eventItem("e-\($0)", "page.viewed", at: -60, .email(adaEmail)) }
            items.append(Rapport_V1_IngestItem())
            for mode in [Rapport_V1_IngestMode.skipInvalid, .allOrNothing] {
                let refused = await expectRPCError(.invalidArgument) {
                    try await c.ingest.ingestEvents(.with { $0.items = items; $0.mode = mode })
                }
                #expect(violationFields(refused) == ["items"])
                #expect(refused?.message.contains("at most 10000 items, got 10001") == true)
            }
            await expectRPCError(.notFound) { try await c.customers.findCustomer(.with { $0.identity = .email(adaEmail) }) }
        }
    }

    @Test func notFoundNamesWhatIsMissing() async throws {
        try await withRapport { c in
            let customer = await expectRPCError(.notFound) { try await c.customers.getCustomer(.with { $0.id = "cus_nobody" }) }
            #expect(customer?.message == "customer 'cus_nobody' not found")
            #expect(try customer?.unpackGoogleRPCStatus() == nil)
            let merge = await expectRPCError(.notFound) { try await c.merges.getMerge(.with { $0.id = "mrg_nothing" }) }
            #expect(merge?.message == "merge 'mrg_nothing' not found")
            await expectRPCError(.notFound) { try await c.merges.listMerges(.with { $0.customerID = "cus_nobody" }) }
            await expectRPCError(.notFound) { try await c.views.getCustomer360(.with { $0.customerID = "cus_nobody" }) }
            let negativeOrders = await expectRPCError(.invalidArgument) {
                try await c.views.getCustomer360(.with { $0.customerID = "cus_nobody"; $0.recentOrders = -3 })
            }
            #expect(violationFields(negativeOrders) == ["recent_orders"])
            let negativePage = await expectRPCError(.invalidArgument) {
                try await c.views.getCustomer360(.with { $0.customerID = "cus_nobody"; $0.timelinePageSize = -1 })
            }
            #expect(violationFields(negativePage) == ["timeline_page_size"])
            await expectRPCError(.notFound) { try await c.views.getOrder(.with { $0.id = "ord_nothing" }) }
            await expectRPCError(.notFound) { try await c.views.getOrder(.with { $0.orderKey = .with { $0.source = "web"; $0.externalID = "404" } }) }
            await expectRPCError(.notFound) { try await c.views.getEvent(.with { $0.id = "no-such-event" }) }
            await expectRPCError(.notFound) { try await c.customers.deleteCustomer(.with { $0.id = "cus_nobody" }) }
            let key = await expectRPCError(.notFound) { try await c.apiKeys.revokeApiKey(.with { $0.id = "key_nothing" }) }
            #expect(key?.message == "api key 'key_nothing' not found")
            let ada = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email(adaEmail)] } })
            let identity = await expectRPCError(.notFound) {
                try await c.customers.removeIdentity(.with { $0.customerID = ada.id; $0.identity = .email("bob@example.com") })
            }
            #expect(identity?.message.contains("bob@example.com") == true)
        }
    }

    @Test func alreadyExistsForSomeoneElsesIdentityChangesNothing() async throws {
        try await withRapport { c in
            let ada = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email(adaEmail)] } })
            let bob = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("bob@example.com")] } })
            let changes = try await c.engine.changes(after: 0)
            let error = await expectRPCError(.alreadyExists) {
                try await c.customers.addIdentity(.with { $0.customerID = ada.id; $0.identity = .email(" BOB@example.com") })
            }
            #expect(error?.message == "identity 'email:bob@example.com' already exists")
            #expect(try await c.customers.getCustomer(.with { $0.id = ada.id }) == ada)
            #expect(try await c.customers.getCustomer(.with { $0.id = bob.id }) == bob)
            #expect(try await c.engine.changes(after: 0) == changes)
            // Adding an identity the customer has already is no error.
            #expect(try await c.customers.addIdentity(.with { $0.customerID = ada.id; $0.identity = .email(adaEmail) }) == ada)

            // CreateCustomer with someone else's identity is INVALID_ARGUMENT naming it.
            let create = await expectRPCError(.invalidArgument) {
                try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.phone(adaPhone), .email("bob@example.com")] } })
            }
            #expect(violationFields(create).count == 1)
            #expect(violationFields(create).first?.hasSuffix("identities[1]") == true)
            #expect(try await c.engine.customerCount() == 2)
        }
    }

    @Test func abortedOnAStaleEtagChangesNothing() async throws {
        try await withRapport { c in
            let read = try await c.customers.createCustomer(.with { $0.customer = .with { $0.givenName = "Ada"; $0.identities = [.email(adaEmail)] } })
            // Someone else changes the customer after we read it.
            let theirs = try await c.customers.updateCustomer(
                .with { $0.customer = .with { $0.id = read.id; $0.tags = ["vip"] }; $0.updateMask = .with { $0.paths = ["tags"] } })
            let changes = try await c.engine.changes(after: 0)
            let error = await expectRPCError(.aborted) {
                try await c.customers.updateCustomer(
                    .with {
                        $0.customer = .with { $0.id = read.id; $0.etag = read.etag; $0.givenName = "Eve" }
                        $0.updateMask = .with { $0.paths = ["given_name"] }
                    })
            }
            #expect(error?.message.contains("changed by someone else") == true)
            #expect(error?.message.contains(theirs.etag) == true)
            #expect(try await c.customers.getCustomer(.with { $0.id = read.id }) == theirs)
            #expect(try await c.engine.changes(after: 0) == changes)

            await expectRPCError(.aborted) { try await c.customers.deleteCustomer(.with { $0.id = read.id; $0.etag = read.etag }) }
            await expectRPCError(.aborted) {
                try await c.customers.addIdentity(.with { $0.customerID = read.id; $0.identity = .phone(adaPhone); $0.etag = read.etag })
            }
            #expect(try await c.customers.getCustomer(.with { $0.id = read.id }) == theirs)
            #expect(try await c.engine.changes(after: 0) == changes)
            // With the current etag it goes through.
            let mine = try await c.customers.updateCustomer(
                .with { $0.customer = .with { $0.id = read.id; $0.etag = theirs.etag; $0.givenName = "Eve" }; $0.updateMask = .with { $0.paths = ["given_name"] } })
            #expect(mine.givenName == "Eve" && mine.tags == ["vip"])
        }
    }

    @Test func failedPreconditionForAStateThatForbidsTheCall() async throws {
        try await withRapport { c in
            let ada = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email(adaEmail)] } })
            c.clock.advance(by: .seconds(1))
            let bob = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("bob@example.com")] } })
            c.clock.advance(by: .seconds(1))
            let eve = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("eve@example.com")] } })
            let merged = try await c.merges.mergeCustomers(.with { $0.customerIds = [ada.id, bob.id] })
            // An absorbed customer cannot be merged again.
            let again = await expectRPCError(.failedPrecondition) { try await c.merges.mergeCustomers(.with { $0.customerIds = [bob.id, eve.id] }) }
            #expect(again?.message.contains(bob.id) == true)

            _ = try await c.merges.unmergeCustomers(.with { $0.mergeID = merged.merge.id })
            let changes = try await c.engine.changes(after: 0)
            let twice = await expectRPCError(.failedPrecondition) { try await c.merges.unmergeCustomers(.with { $0.mergeID = merged.merge.id }) }
            #expect(twice?.message.contains("already undone") == true)
            #expect(twice?.message.contains(merged.merge.id) == true)
            #expect(try await c.engine.changes(after: 0) == changes)

            _ = try await c.customers.defineAttribute(.with { $0.definition = .with { $0.key = "shoe_size"; $0.type = .int } })
            let retype = await expectRPCError(.failedPrecondition) {
                try await c.customers.defineAttribute(.with { $0.definition = .with { $0.key = "shoe_size"; $0.type = .string } })
            }
            #expect(retype?.message.contains("shoe_size") == true)
            #expect(try await c.customers.listAttributeDefinitions(.init()).definitions.map(\.type) == [.int])
        }
    }

    @Test func unauthenticatedSaysNothingAboutKeysOrData() async throws {
        try await withRapport { c in
            let ada = try await c.customers.createCustomer(.with { $0.customer = adaProto })
            let revoked = try await c.apiKeys.createApiKey(.with { $0.name = "old-integration"; $0.role = .marketing })
            _ = try await c.apiKeys.revokeApiKey(.with { $0.id = revoked.apiKey.id })
            let admin = c.secret(.admin)
            let attempts: [(String, String?)] = [
                ("no key", nil),
                ("an empty key", ""),
                ("a wrong key", "rpk_" + String(repeating: "a", count: 52)),
                ("a mangled admin key", String(admin.dropLast()) + (admin.hasSuffix("a") ? "b" : "a")),
                ("a revoked key", revoked.secret),
                ("a key that is not a Rapport key", "hunter2"),
            ]
            for (what, secret) in attempts {
                try await c.withSecret(secret) {
                    let get = await expectRPCError(.unauthenticated) { try await c.customers.getCustomer(.with { $0.id = ada.id }) }
                    let create = await expectRPCError(.unauthenticated) {
                        try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("mallory@example.com")] } })
                    }
                    for error in [get, create] {
                        let error = try #require(error, "\(what)")
                        let said = error.message + " " + "\(error.metadata)"
                        for secretText in [admin, revoked.secret, secret ?? "", "rpk_", revoked.apiKey.id, c.keys[.admin]!.key.id.rawValue, "old-integration", ada.id, adaEmail, "mallory"]
                        where secretText.count > 3 {
                            #expect(!said.contains(secretText), "\(what): '\(said)' reveals '\(secretText)'")
                        }
                        #expect(try error.unpackGoogleRPCStatus() == nil)
                    }
                }
            }
            // Another authorization scheme is no key at all.
            let basic = await expectRPCError(.unauthenticated) {
                try await c.customers.getCustomer(.with { $0.id = ada.id }, metadata: ["authorization": "Basic \(admin)"])
            }
            #expect(basic?.message.contains(admin) == false)
            #expect(try await c.engine.customerCount() == 1)
            // The key as sent by hand, in lower case, works.
            #expect(try await c.customers.getCustomer(.with { $0.id = ada.id }, metadata: ["authorization": "bearer \(admin)"]).id == ada.id)
            // The scheme in any case, spaces around the key (RFC 7235).
            for header in ["BEARER \(admin)", "Bearer  \(admin) ", " bearer\t\(admin)"] {
                #expect(try await c.customers.getCustomer(.with { $0.id = ada.id }, metadata: ["authorization": .string(header)]).id == ada.id, "\(header)")
            }
            _ = await expectRPCError(.unauthenticated) {
                try await c.customers.getCustomer(.with { $0.id = ada.id }, metadata: ["authorization": "Bearerx \(admin)"])
            }
        }
    }

    @Test func permissionDeniedSaysNothingAboutKeysOrData() async throws {
        try await withRapport(role: .readOnly) { c in
            let ada = try await c.as(.admin) { try await c.customers.createCustomer(.with { $0.customer = adaProto }) }
            let changes = try await c.engine.changes(after: 0)
            let update = await expectRPCError(.permissionDenied) {
                try await c.customers.updateCustomer(
                    .with { $0.customer = .with { $0.id = ada.id; $0.givenName = "Mallory" }; $0.updateMask = .with { $0.paths = ["given_name"] } })
            }
            let interactions = await expectRPCError(.permissionDenied) { try await c.interactions.listInteractions(.with { $0.customerID = ada.id }) }
            let keys = await expectRPCError(.permissionDenied) { try await c.apiKeys.createApiKey(.with { $0.name = "escalate"; $0.role = .admin }) }
            let key = c.keys[.readOnly]!
            for error in [update, interactions, keys] {
                let error = try #require(error)
                let said = error.message + " " + "\(error.metadata)"
                #expect(error.message.hasPrefix("the API key's role may not call "))
                for secretText in [key.secret, "rpk_", key.key.id.rawValue, key.key.name, ada.id, "Mallory", adaEmail, "escalate"] {
                    #expect(!said.contains(secretText), "'\(said)' reveals '\(secretText)'")
                }
                #expect(try error.unpackGoogleRPCStatus() == nil)
            }
            #expect(try await c.engine.changes(after: 0) == changes)
            #expect(try await c.engine.apiKeys().count == Role.allCases.count)
        }
    }
}
