import Foundation
import GRPCCore
import GRPCProtobuf
import Rapport
import RapportCore
import RapportGRPC
import RapportProto
import SwiftProtobuf
import Synchronization
import Testing

/// Every RPC of every service, called the way a client would, with the results checked.
@Suite("Every RPC over gRPC")
struct HappyPathTests {
    @Test func customerService() async throws {
        try await withRapport { c in
            let created = try await c.customers.createCustomer(
                .with {
                    $0.customer = adaProto
                    $0.customer.givenName = " Ada "
                    $0.customer.tags = ["vip", "newsletter", "vip"]
                    $0.customer.identities[0] = .email(" Ada.Lovelace@Example.COM ")
                })
            #expect(created.id.hasPrefix("cus_"))
            #expect(created.givenName == "Ada")
            #expect(created.familyName == "Lovelace")
            #expect(created.birthday == adaProto.birthday)
            #expect(created.locale == "en-GB")
            #expect(created.timeZone == "Europe/London")
            #expect(created.addresses == adaProto.addresses)
            #expect(created.tags == ["newsletter", "vip"])
            #expect(created.lifecycleStage == .active)
            #expect(created.identities == [.email(adaEmail), .memberCard(adaCard), .phone(adaPhone)])
            #expect(created.createTime == at(0))
            #expect(created.updateTime == at(0))
            #expect(!created.etag.isEmpty)

            #expect(try await c.customers.getCustomer(.with { $0.id = created.id }) == created)
            #expect(try await c.customers.findCustomer(.with { $0.identity = .phone("(415) 555-0123") }) == created)
            #expect(try await c.customers.listCustomers(.init()).customers == [created])

            let definition = try await c.customers.defineAttribute(
                .with { $0.definition = .with { $0.key = "shoe_size"; $0.type = .int; $0.description_p = "EU size" } })
            #expect(definition.key == "shoe_size" && definition.type == .int && definition.description_p == "EU size")
            _ = try await c.customers.defineAttribute(.with { $0.definition = .with { $0.key = "anniversary"; $0.type = .timestamp } })
            #expect(try await c.customers.listAttributeDefinitions(.init()).definitions.map(\.key) == ["anniversary", "shoe_size"])

            c.clock.advance(by: .seconds(60))
            let updated = try await c.customers.updateCustomer(
                .with {
                    $0.customer = .with {
                        $0.id = created.id
                        $0.etag = created.etag
                        $0.givenName = "Augusta Ada"
                        $0.familyName = "ignored: not in the mask"
                        $0.attributes = ["shoe_size": .with { $0.intValue = 38 }]
                    }
                    $0.updateMask = .with { $0.paths = ["given_name", "attributes.shoe_size"] }
                })
            #expect(updated.givenName == "Augusta Ada")
            #expect(updated.familyName == "Lovelace")
            #expect(updated.attributes == ["shoe_size": .with { $0.intValue = 38 }])
            #expect(updated.etag != created.etag)
            #expect(updated.updateTime == at(60))
            #expect(updated.createTime == created.createTime)

            let withAnonymous = try await c.customers.addIdentity(
                .with {
                    $0.customerID = created.id
                    $0.identity = .externalID("8812", source: "shopify")
                    $0.etag = updated.etag
                })
            #expect(withAnonymous.identities.contains(.externalID("8812", source: "shopify")))
            #expect(withAnonymous.etag != updated.etag)
            let withoutPhone = try await c.customers.removeIdentity(.with { $0.customerID = created.id; $0.identity = .phone(adaPhone) })
            #expect(!withoutPhone.identities.contains(.phone(adaPhone)))
            await expectRPCError(.notFound) { try await c.customers.findCustomer(.with { $0.identity = .phone(adaPhone) }) }
            #expect(try await c.customers.findCustomer(.with { $0.identity = .externalID("8812", source: "shopify") }).id == created.id)

            let deleted = try await c.customers.deleteCustomer(.with { $0.id = created.id; $0.etag = withoutPhone.etag })
            #expect(deleted == Google_Protobuf_Empty())
            await expectRPCError(.notFound) { try await c.customers.getCustomer(.with { $0.id = created.id }) }
            #expect(try await c.customers.listCustomers(.init()).customers.isEmpty)
            #expect(try await c.engine.customerCount() == 0)
        }
    }

    @Test func mergeService() async throws {
        try await withRapport { c in
            let older = try await c.customers.createCustomer(.with { $0.customer = .with { $0.givenName = "Ada"; $0.identities = [.email(adaEmail)] } })
            c.clock.advance(by: .seconds(60))
            let newer = try await c.customers.createCustomer(
                .with { $0.customer = .with { $0.familyName = "Lovelace"; $0.tags = ["shop"]; $0.identities = [.phone(adaPhone)] } })
            c.clock.advance(by: .seconds(60))

            // In any order: the older customer survives.
            let merged = try await c.merges.mergeCustomers(.with { $0.customerIds = [newer.id, older.id] })
            #expect(merged.merge.id.hasPrefix("mrg_"))
            #expect(merged.merge.survivorID == older.id)
            #expect(merged.merge.absorbedID == newer.id)
            #expect(merged.merge.reason == .manual)
            #expect(merged.merge.mergeTime == at(120))
            #expect(!merged.merge.hasUnmergeTime)
            #expect(merged.survivor.id == older.id)
            #expect(merged.survivor.givenName == "Ada" && merged.survivor.familyName == "Lovelace" && merged.survivor.tags == ["shop"])
            #expect(Set(merged.survivor.identities.map(\.value)) == [adaEmail, adaPhone])
            #expect(try await c.customers.getCustomer(.with { $0.id = newer.id }).id == older.id)
            #expect(try await c.merges.getMerge(.with { $0.id = merged.merge.id }) == merged.merge)
            #expect(try await c.merges.listMerges(.with { $0.customerID = older.id }).merges == [merged.merge])
            #expect(try await c.views.getCustomer360(.with { $0.customerID = older.id }).merges == [merged.merge])

            c.clock.advance(by: .seconds(60))
            let unmerged = try await c.merges.unmergeCustomers(.with { $0.mergeID = merged.merge.id })
            #expect(unmerged.merge.id == merged.merge.id)
            #expect(unmerged.merge.unmergeTime == at(180))
            #expect(unmerged.survivor.id == older.id)
            #expect(unmerged.survivor.identities == [.email(adaEmail)])
            #expect(unmerged.restored.id == newer.id)
            #expect(unmerged.restored.identities == [.phone(adaPhone)])
            #expect(unmerged.restored.familyName == "Lovelace")
            #expect(try await c.customers.getCustomer(.with { $0.id = newer.id }).id == newer.id)
            #expect(try await c.merges.listMerges(.with { $0.customerID = older.id }).merges == [unmerged.merge])
            #expect(try await c.views.getCustomer360(.with { $0.customerID = older.id }).merges.isEmpty)
        }
    }

    @Test func ingestEvents() async throws {
        try await withRapport { c in
            let response = try await c.ingest.ingestEvents(
                .with {
                    $0.items = [
                        eventItem("e-1", "product.viewed", at: -3600, .email("Ada.Lovelace@example.com"), properties: ["sku": .with { $0.stringValue = "SKU-1" }]),
                        orderItem("1001", at: -1800, .email(adaEmail), .phone(adaPhone), unitPrice: 1999, quantity: 2),
                        eventItem("e-2", "Not A Type", at: -60, .email(adaEmail)),
                    ]
                })
            #expect(response.results.map(\.index) == [0, 1, 2])
            #expect(response.results.map(\.outcome) == [.accepted, .accepted, .rejected])
            #expect(response.results[2].violations.map(\.field) == ["type"])
            #expect(response.results[2].customerID.isEmpty)
            let customerID = response.results[0].customerID
            #expect(customerID.hasPrefix("cus_"))
            #expect(response.results[1].customerID == customerID)
            #expect(response.acceptedCount == 2 && response.updatedCount == 0 && response.duplicateCount == 0 && response.rejectedCount == 1)
            #expect(response.createdCustomerIds == [customerID])
            #expect(response.mergeIds.isEmpty)

            // A replayed event is a duplicate; a new state of a known order updates it.
            let again = try await c.ingest.ingestEvents(
                .with {
                    $0.items = [
                        eventItem("e-1", "product.viewed", at: -3600, .email(adaEmail), properties: ["sku": .with { $0.stringValue = "SKU-1" }]),
                        orderItem("1001", at: -1800, .email(adaEmail), unitPrice: 1999, quantity: 2, status: .paid, statusAt: -900),
                    ]
                    $0.mode = .allOrNothing
                })
            #expect(again.results.map(\.outcome) == [.duplicate, .updated])
            #expect(again.results.map(\.customerID) == [customerID, customerID])
            #expect(again.createdCustomerIds.isEmpty)
            let order = try await c.views.getOrder(.with { $0.orderKey = .with { $0.source = "web"; $0.externalID = "1001" } })
            #expect(order.status == .paid)
            #expect(order.statusHistory.map(\.status) == [.placed, .paid])
            #expect(order.statusHistory.map(\.time) == [at(-1800), at(-900)])
            #expect(order.total == .with { $0.minorUnits = 3998; $0.currency = "EUR" })
            #expect(order.channel == .web)

            // A later state sent without a channel (proto3's UNSPECIFIED) keeps the order's; a new order without one is OTHER.
            var shipped = orderItem("1001", at: -1800, .email(adaEmail), unitPrice: 1999, quantity: 2, status: .shipped, statusAt: -600)
            shipped.order.channel = .unspecified
            var unlabelled = orderItem("1002", at: -60, .email(adaEmail))
            unlabelled.order.channel = .unspecified
            _ = try await c.ingest.ingestEvents(.with { $0.items = [shipped, unlabelled] })
            #expect(try await c.views.getOrder(.with { $0.orderKey = .with { $0.source = "web"; $0.externalID = "1001" } }).channel == .web)
            #expect(try await c.views.getOrder(.with { $0.orderKey = .with { $0.source = "web"; $0.externalID = "1002" } }).channel == .other)

            // Identities of two customers in one item merge them.
            let other = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.memberCard("M-1")] } })
            let joining = try await c.ingest.ingestEvents(.with { $0.items = [eventItem("e-3", at: 0, .email(adaEmail), .memberCard("m1"))] })
            #expect(joining.mergeIds.count == 1)
            let merge = try await c.merges.getMerge(.with { $0.id = joining.mergeIds[0] })
            #expect(merge.reason == .sharedIdentity)
            #expect(merge.recordID == "e-3")
            #expect(Set([merge.survivorID, merge.absorbedID]) == [customerID, other.id])
        }
    }

    @Test(.timeLimit(.minutes(1))) func streamIngest() async throws {
        try await withRapport { c in
            let summary = try await c.ingest.streamIngest { writer in
                try await writer.write(.with { $0.items = [eventItem("s-1", at: -10, .email(adaEmail)), eventItem("s-2", "BAD", at: -9, .email(adaEmail))] })
                try await writer.write(
                    .with {
                        $0.items = [eventItem("s-1", at: -10, .email(adaEmail)), orderItem("2001", at: -5, .email(adaEmail)), eventItem("s-3", at: -4, .phone(adaPhone))]
                        $0.requestID = "ignored-in-streams"
                    })
                try await writer.write(.with { $0.items = [orderItem("2001", at: -5, .email(adaEmail), status: .shipped, statusAt: -1)] })
            }
            #expect(summary.acceptedCount == 3)  // s-1, 2001, s-3
            #expect(summary.updatedCount == 1)  // 2001 shipped
            #expect(summary.duplicateCount == 1)  // s-1 again
            #expect(summary.rejectedCount == 1)
            #expect(summary.rejected.count == 1)
            #expect(summary.rejected.first?.index == 1)
            #expect(summary.rejected.first?.outcome == .rejected)
            #expect(summary.rejected.first?.violations.map(\.field) == ["type"])
            #expect(summary.createdCustomerCount == 2)  // the e-mail's and the phone's
            #expect(summary.mergeCount == 0)
            // Each batch was applied.
            let ada = try await c.customers.findCustomer(.with { $0.identity = .email(adaEmail) })
            let stats = try await c.views.getCustomerStats(.with { $0.customerID = ada.id })
            #expect(stats.eventCount == 1 && stats.orderCount == 1)
            #expect(try await c.views.getOrder(.with { $0.orderKey = .with { $0.source = "web"; $0.externalID = "2001" } }).status == .shipped)

            // An empty stream is an empty summary.
            let empty = try await c.ingest.streamIngest { _ in }
            #expect(empty == Rapport_V1_StreamIngestResponse())

            // A batch refused whole names its items by their position in the stream, as the results do.
            let refused = await expectRPCError(.invalidArgument) {
                try await c.ingest.streamIngest { writer in
                    try await writer.write(.with { $0.items = [eventItem("t-1", at: -3, .email(adaEmail)), eventItem("t-2", at: -3, .email(adaEmail))] })
                    try await writer.write(
                        .with {
                            $0.items = [eventItem("t-3", at: -2, .email(adaEmail)), eventItem("t-4", "BAD", at: -2, .email(adaEmail))]
                            $0.mode = .allOrNothing
                        })
                }
            }
            #expect(violationFields(refused) == ["items[3].type"])
            // It says what the stream did apply: the batch before the refused one stays.
            #expect(
                refused?.message
                    == "batch 2 changed nothing (items[3].type: 'BAD' must be lower-case words of letters, digits and '_' joined by '.' (at most 64 characters)), "
                    + "but the 2 items of the 1 batches before it were applied (2 accepted, 0 updated, 0 duplicates, 0 rejected); the batches after it were not read")
            #expect(try await c.engine.event("t-2").id == "t-2")
        }
    }

    /// A shutdown ends a stream ingest that waits for its next batch (a slow feed must not hold the server up):
    /// UNAVAILABLE, saying what was applied.
    @Test(.timeLimit(.minutes(1))) func aShutdownEndsAnIdleStreamIngest() async throws {
        try await withRapport { c in
            let engine = c.engine
            let server = c.server
            let ended = await expectRPCError(.unavailable) {
                try await c.ingest.streamIngest { writer in
                    try await writer.write(.with { $0.items = [eventItem("s-1", at: 0, .email(adaEmail))] })
                    // Applied (bounded wait: the batch travels on its own), then the server begins to shut down
                    // while the client still holds the stream open.
                    for _ in 0..<2_000 where (try? await engine.event("s-1")) == nil { try await Task.sleep(for: .milliseconds(5)) }
                    server.beginShutdown()
                    try await Task.sleep(for: .seconds(30))  // the stream is ended by the server, not by this
                }
            }
            #expect(ended?.message == "the server is shutting down: the 1 items of the 1 batches before were applied; send the rest again")
            let stored = try await engine.event("s-1")
            #expect(stored.id == "s-1")
        }
    }

    @Test func privacyServiceExportsEverythingToAdminsOnly() async throws {
        try await withRapport { c in
            let ada = try await c.customers.createCustomer(.with { $0.customer = adaProto })
            _ = try await c.ingest.ingestEvents(
                .with { $0.items = [orderItem("o-1", at: 100, .email(adaEmail), unitPrice: 1000), eventItem("e-1", at: 200, .email(adaEmail))] })
            let export = try await c.privacy.exportCustomer(.with { $0.customerID = ada.id })
            #expect(export.customer.id == ada.id)
            #expect(export.customer.identities.map(\.value).contains(adaEmail))
            #expect(export.orders.map(\.externalID) == ["o-1"])
            #expect(export.events.map(\.id) == ["e-1"])
            #expect(export.stats.orderCount == 1)
            #expect(export.hasExportTime)
            for role in [Role.marketing, .service, .analyst] {
                _ = await c.as(role) {
                    await expectRPCError(.permissionDenied) { try await c.privacy.exportCustomer(.with { $0.customerID = ada.id }) }
                }
            }
            await expectRPCError(.notFound) { try await c.privacy.exportCustomer(.with { $0.customerID = "cus_nobody" }) }

            // Of a merge undone since, the other person's customer is only its id.
            let bea = try await c.customers.createCustomer(.with { $0.customer = .with { $0.givenName = "Bea"; $0.identities = [.email("bea@example.com")] } })
            let merged = try await c.merges.mergeCustomers(.with { $0.customerIds = [ada.id, bea.id] })
            _ = try await c.merges.unmergeCustomers(.with { $0.mergeID = merged.merge.id })
            let after = try await c.privacy.exportCustomer(.with { $0.customerID = ada.id })
            #expect(after.mergeProfiles.map(\.mergeID) == [merged.merge.id])
            #expect(after.mergeProfiles.first?.absorbedBefore == .with { $0.id = bea.id })
            #expect(after.mergeProfiles.first?.survivorBefore.etag.isEmpty == false)
            let missing = await expectRPCError(.invalidArgument) { try await c.privacy.exportCustomer(.init()) }
            #expect(violationFields(missing) == ["customer_id"])
        }
    }

    @Test func customer360Service() async throws {
        try await withRapport { c in
            let ada = try await c.customers.createCustomer(.with { $0.customer = adaProto })
            c.clock.advance(by: .seconds(3600))
            let ingested = try await c.ingest.ingestEvents(
                .with {
                    $0.items = [
                        orderItem("o-1", at: 100, .email(adaEmail), unitPrice: 1000),
                        eventItem("e-1", at: 200, .email(adaEmail), properties: ["step": .with { $0.intValue = 2 }]),
                        orderItem("o-2", at: 300, .email(adaEmail), unitPrice: 3000),
                        orderItem("o-3", at: 400, .email(adaEmail), unitPrice: 500, status: .cancelled, statusAt: 450),
                    ]
                })
            #expect(ingested.acceptedCount == 4)
            let call = try await c.interactions.recordInteraction(
                .with {
                    $0.interaction = .with {
                        $0.customerID = ada.id; $0.channel = .phone; $0.direction = .inbound; $0.subject = "Parcel"; $0.summary = adaSummary; $0.agent = "sam"
                        $0.occurTime = at(500)
                    }
                })
            let consent = try await c.consents.recordConsent(
                .with { $0.consent = .with { $0.customerID = ada.id; $0.channel = .email; $0.purpose = .marketing; $0.status = .granted; $0.source = "checkout" } })

            let view = try await c.views.getCustomer360(.with { $0.customerID = ada.id; $0.recentOrders = 2; $0.timelinePageSize = 3 })
            #expect(try await c.customers.getCustomer(.with { $0.id = ada.id }) == view.customer)
            #expect(view.recentOrders.map(\.externalID) == ["o-3", "o-2"])
            #expect(view.consents == [consent])
            #expect(view.merges.isEmpty)
            #expect(view.stats.customerID == ada.id)
            #expect(view.stats.orderCount == 2)  // the cancelled order does not count
            #expect(view.stats.spent.map(\.total) == [.with { $0.minorUnits = 4000; $0.currency = "EUR" }])
            #expect(view.stats.spent.map(\.averageOrderValue) == [.with { $0.minorUnits = 2000; $0.currency = "EUR" }])
            #expect(view.stats.eventCount == 1)
            #expect(view.stats.firstOrderTime == at(100))
            #expect(view.stats.lastOrderTime == at(300))
            #expect(try await c.views.getCustomerStats(.with { $0.customerID = ada.id }) == view.stats)

            func label(_ entry: Rapport_V1_TimelineEntry) -> String {
                switch entry.entry {
                case .event(let event): "event \(event.id)"
                case .order(let order): "order \(order.externalID)"
                case .interaction(let interaction): "interaction \(interaction.subject)"
                case nil: "empty"
                }
            }
            #expect(view.timeline.map(label) == ["interaction Parcel", "order o-3", "order o-2"])
            #expect(!view.timelineNextPageToken.isEmpty)
            let rest = try await c.views.listTimeline(.with { $0.customerID = ada.id; $0.pageToken = view.timelineNextPageToken; $0.pageSize = 10 })
            #expect(rest.entries.map(label) == ["event e-1", "order o-1"])
            #expect(rest.nextPageToken.isEmpty)
            if case .some(.interaction(let entry)) = view.timeline.first?.entry { #expect(entry == call) } else { Issue.record("no interaction first") }

            // Orders: by id, by key, paged newest first.
            let byKey = try await c.views.getOrder(.with { $0.orderKey = .with { $0.source = "web"; $0.externalID = "o-2" } })
            #expect(byKey.id.hasPrefix("ord_"))
            #expect(byKey.customerID == ada.id)
            #expect(byKey.identities == [.email(adaEmail)])
            #expect(byKey.lines.map(\.sku) == ["SKU-o-2"])
            #expect(byKey.subtotal.minorUnits == 3000 && byKey.total.minorUnits == 3000 && byKey.total.currency == "EUR")
            #expect(byKey.placeTime == at(300))
            #expect(try await c.views.getOrder(.with { $0.id = byKey.id }) == byKey)
            var orders: [String] = []
            var token = ""
            repeat {
                let page = try await c.views.listOrders(.with { $0.customerID = ada.id; $0.pageSize = 2; $0.pageToken = token })
                #expect(page.orders.count <= 2)
                orders += page.orders.map(\.externalID)
                token = page.nextPageToken
            } while !token.isEmpty
            #expect(orders == ["o-3", "o-2", "o-1"])

            let event = try await c.views.getEvent(.with { $0.id = "e-1" })
            #expect(event.type == "page.viewed")
            #expect(event.customerID == ada.id)
            #expect(event.occurTime == at(200))
            #expect(event.receiveTime == at(3600))
            #expect(event.channel == .web)
            #expect(event.identities == [.email(adaEmail)])
            #expect(event.properties == ["step": .with { $0.intValue = 2 }])
        }
    }

    @Test func interactionAndConsentServices() async throws {
        try await withRapport { c in
            let ada = try await c.customers.createCustomer(.with { $0.customer = adaProto })
            var recorded: [Rapport_V1_Interaction] = []
            for (index, channel) in [Rapport_V1_InteractionChannel.email, .chat, .store].enumerated() {
                c.clock.advance(by: .seconds(60))
                recorded.append(
                    try await c.interactions.recordInteraction(
                        .with {
                            $0.interaction = .with {
                                $0.customerID = ada.id; $0.channel = channel; $0.direction = index == 1 ? .outbound : .inbound
                                $0.subject = "subject \(index)"; $0.summary = "summary \(index)"; $0.agent = "agent \(index)"
                            }
                        }))
            }
            #expect(recorded.allSatisfy { $0.id.hasPrefix("int_") && $0.customerID == ada.id })
            #expect(recorded.map(\.occurTime) == [at(60), at(120), at(180)])  // defaults to now
            #expect(recorded[1].direction == .outbound && recorded[1].channel == .chat && recorded[1].summary == "summary 1")
            let first = try await c.interactions.listInteractions(.with { $0.customerID = ada.id; $0.pageSize = 2 })
            #expect(first.interactions == [recorded[2], recorded[1]])
            let second = try await c.interactions.listInteractions(.with { $0.customerID = ada.id; $0.pageSize = 2; $0.pageToken = first.nextPageToken })
            #expect(second.interactions == [recorded[0]])
            #expect(second.nextPageToken.isEmpty)

            let granted = try await c.consents.recordConsent(
                .with {
                    $0.consent = .with {
                        $0.customerID = ada.id; $0.channel = .email; $0.purpose = .marketing; $0.status = .granted; $0.source = "checkout"
                        $0.occurTime = at(-60)
                    }
                })
            #expect(granted.id.hasPrefix("cns_"))
            #expect(granted.occurTime == at(-60))
            #expect(granted.recordTime == at(180))
            let sms = try await c.consents.recordConsent(
                .with { $0.consent = .with { $0.customerID = ada.id; $0.channel = .sms; $0.purpose = .marketing; $0.status = .denied; $0.source = "store_form" } })
            c.clock.advance(by: .seconds(60))
            let revoked = try await c.consents.recordConsent(
                .with {
                    $0.consent = .with { $0.customerID = ada.id; $0.channel = .email; $0.purpose = .marketing; $0.status = .revoked; $0.source = "preference_center" }
                })
            let current = try await c.consents.listConsents(.with { $0.customerID = ada.id })
            #expect(Set(current.consents.map(\.id)) == [sms.id, revoked.id])
            let history = try await c.consents.listConsents(.with { $0.customerID = ada.id; $0.history = true })
            #expect(history.consents == [granted, sms, revoked])
        }
    }

    @Test func apiKeyService() async throws {
        try await withRapport { c in
            let created = try await c.apiKeys.createApiKey(.with { $0.name = "checkout-service"; $0.role = .marketing })
            #expect(created.secret.hasPrefix("rpk_"))
            #expect(created.apiKey.id.hasPrefix("key_"))
            #expect(created.apiKey.name == "checkout-service")
            #expect(created.apiKey.role == .marketing)
            #expect(created.apiKey.createTime == at(0))
            #expect(!created.apiKey.hasRevokeTime)
            #expect(!printed(created.apiKey).contains(created.secret))

            let listed = try await c.apiKeys.listApiKeys(.init()).apiKeys
            #expect(listed.count == Role.allCases.count + 1)
            #expect(listed.last == created.apiKey)
            #expect(listed.first?.id == c.keys[.admin]!.key.id.rawValue && listed.first?.role == .admin)
            #expect(listed.allSatisfy { !printed($0).contains("rpk_") })

            // The new key works, with its role.
            try await c.withSecret(created.secret) {
                _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email(adaEmail)] } })
                await expectRPCError(.permissionDenied) { try await c.apiKeys.listApiKeys(.init()) }
            }

            c.clock.advance(by: .seconds(30))
            let revoked = try await c.apiKeys.revokeApiKey(.with { $0.id = created.apiKey.id })
            #expect(revoked.id == created.apiKey.id)
            #expect(revoked.revokeTime == at(30))
            #expect(try await c.apiKeys.listApiKeys(.init()).apiKeys.last == revoked)
            await c.withSecret(created.secret) {
                _ = await expectRPCError(.unauthenticated) { try await c.customers.listCustomers(.init()) }
            }
        }
    }

    @Test func healthCheckNeedsNoKey() async throws {
        try await withRapport { c in
            try await c.withSecret(nil) { () async throws in
                #expect(try await c.health.check(.init()).status == .serving)
                // Every service of the contract answers for itself: the names are read from proto/, so a service
                // added there and not to the health service's list fails here.
                let contract = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../proto/rapport/v1").standardized
                var services = ["grpc.health.v1.Health"]
                for file in try FileManager.default.contentsOfDirectory(atPath: contract.path) where file.hasSuffix(".proto") {
                    let text = try String(contentsOf: contract.appendingPathComponent(file), encoding: .utf8)
                    for line in text.split(separator: "\n") where line.hasPrefix("service ") {
                        services.append("rapport.v1." + line.dropFirst("service ".count).prefix { $0 != " " && $0 != "{" })
                    }
                }
                #expect(services.count == 14)  // 13 of Rapport and the health service
                for service in services {
                    #expect(try await c.health.check(.with { $0.service = service }).status == .serving, "\(service)")
                }
                let unknown = await expectRPCError(.notFound) { try await c.health.check(.with { $0.service = "rapport.v1.NoSuchService" }) }
                #expect(unknown?.message.contains("rapport.v1.NoSuchService") == true)

                c.server.health.setServing(false)
                #expect(try await c.health.check(.init()).status == .notServing)
                #expect(try await c.health.check(.with { $0.service = "rapport.v1.CustomerService" }).status == .notServing)
                c.server.health.setServing(true)
                #expect(try await c.health.check(.init()).status == .serving)
            }
            // A wrong key does not matter to the health service either.
            try await c.withSecret("rpk_wrong") { () async throws in #expect(try await c.health.check(.init()).status == .serving) }
        }
    }

    @Test(.timeLimit(.minutes(1))) func healthWatchStreamsEveryChange() async throws {
        try await withRapport { c in
            let health = c.server.health
            let seen = try await c.withSecret(nil) {
                try await c.health.watch(.init()) { response in
                    var statuses: [Grpc_Health_V1_HealthCheckResponse.ServingStatus] = []
                    var iterator = response.messages.makeAsyncIterator()
                    statuses.append(try #require(try await iterator.next()).status)
                    health.setServing(false)
                    statuses.append(try #require(try await iterator.next()).status)
                    health.setServing(true)
                    statuses.append(try #require(try await iterator.next()).status)
                    return statuses  // returning cancels the watch
                }
            }
            #expect(seen == [.serving, .notServing, .serving])

            let unknown = try await c.withSecret(nil) {
                try await c.health.watch(.with { $0.service = "rapport.v1.Nope" }) { response in
                    try await response.messages.first(1).map(\.status)
                }
            }
            #expect(unknown == [.serviceUnknown])

            // Once the server begins to shut down, a Watch says so and ends with UNAVAILABLE (never OK), also one
            // opened afterwards.
            c.server.beginShutdown()
            let late = Mutex<[Grpc_Health_V1_HealthCheckResponse.ServingStatus]>([])
            let ended = await expectRPCError(.unavailable) {
                try await c.withSecret(nil) {
                    try await c.health.watch(.init()) { response in
                        for try await message in response.messages { late.withLock { $0.append(message.status) } }
                    }
                }
            }
            #expect(late.withLock { $0 } == [.notServing])
            #expect(ended?.message.contains("shutting down") == true)
        }
    }
}
