import GRPCCore
import GRPCProtobuf
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf
import Testing

@Suite("Personal data masked for roles without the right to it")
struct MaskingTests {
    /// Every piece of Ada's personal data as stored, which a masked response must not hold anywhere.
    static let personalData = [adaEmail, "ada.lovelace", adaPhone, "4155550123", adaCard, "77881234", adaStreet, "Flat 2", adaPostalCode, adaSummary]

    /// Ada with every kind of record: identities, an address, an event, an order, an interaction with a summary.
    static func seed(_ c: Harness) async throws -> Rapport_V1_Customer {
        try await c.as(.admin) {
            let ada = try await c.customers.createCustomer(.with { $0.customer = adaProto })
            c.clock.advance(by: .seconds(3600))
            _ = try await c.ingest.ingestEvents(
                .with {
                    $0.items = [
                        eventItem("e-1", at: 100, .email(adaEmail), .phone(adaPhone)),
                        orderItem("o-1", at: 200, .email(adaEmail), .memberCard(adaCard)),
                    ]
                })
            _ = try await c.interactions.recordInteraction(
                .with {
                    $0.interaction = .with {
                        $0.customerID = ada.id; $0.channel = .phone; $0.direction = .inbound; $0.subject = "Parcel"; $0.summary = adaSummary
                        $0.occurTime = at(300)
                    }
                })
            return ada
        }
    }

    static func expectMasked(_ message: some SwiftProtobuf.Message, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let text = printed(message)
        for value in personalData {
            #expect(!text.contains(value), "\(what) shows '\(value)'", sourceLocation: sourceLocation)
        }
    }

    static func expectMasked(identities: [Rapport_V1_Identity], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!identities.isEmpty, "\(what) has no identities", sourceLocation: sourceLocation)
        for identity in identities {
            switch identity.kind {
            case .email: #expect(identity.value == "a***@example.com", "\(what)", sourceLocation: sourceLocation)
            case .phone: #expect(identity.value.contains("***") && identity.value != adaPhone, "\(what)", sourceLocation: sourceLocation)
            case .memberCard: #expect(identity.value == "***1234", "\(what)", sourceLocation: sourceLocation)
            default: Issue.record("\(what): unexpected identity \(identity)", sourceLocation: sourceLocation)
            }
        }
    }

    static func expectMasked(customer: Rapport_V1_Customer, like clear: Rapport_V1_Customer, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        expectMasked(customer, what, sourceLocation: sourceLocation)
        expectMasked(identities: customer.identities, what, sourceLocation: sourceLocation)
        #expect(customer.identities.map(\.kind) == clear.identities.map(\.kind), sourceLocation: sourceLocation)
        #expect(customer.addresses.map(\.line1) == ["***"], sourceLocation: sourceLocation)
        #expect(customer.addresses.map(\.postalCode) == ["***"], sourceLocation: sourceLocation)
        // What is not personal stays readable.
        #expect(customer.id == clear.id && customer.givenName == clear.givenName && customer.tags == clear.tags, sourceLocation: sourceLocation)
        #expect(customer.addresses.map(\.city) == ["London"] && customer.addresses.map(\.country) == ["GB"], sourceLocation: sourceLocation)
        #expect(customer.etag == clear.etag && customer.updateTime == clear.updateTime, sourceLocation: sourceLocation)
    }

    @Test(arguments: Role.allCases)
    func customersAnd360(role: Role) async throws {
        try await withRapport(role: role) { c in
            let ada = try await Self.seed(c)
            let clear = try await c.as(.admin) { try await c.customers.getCustomer(.with { $0.id = ada.id }) }
            let clearView = try await c.as(.admin) { try await c.views.getCustomer360(.with { $0.customerID = ada.id }) }
            #expect(clear.identities == [.email(adaEmail), .memberCard(adaCard), .phone(adaPhone)])

            let got = try await c.customers.getCustomer(.with { $0.id = ada.id })
            let listed = try await c.customers.listCustomers(.init())
            let found = role.seesPersonalData ? try await c.customers.findCustomer(.with { $0.identity = .email(adaEmail) }) : nil
            let view = try await c.views.getCustomer360(.with { $0.customerID = ada.id })
            #expect(listed.customers.count == 1)
            #expect(view.recentOrders.count == 1)
            #expect(view.timeline.count == 3)

            if role.seesPersonalData {
                #expect(got == clear)
                #expect(listed.customers == [clear])
                #expect(found == clear)
                #expect(view == clearView)
                let text = printed(view)
                for value in [adaEmail, adaPhone, adaCard, adaStreet, adaPostalCode, adaSummary] {
                    #expect(text.contains(value), "\(role) should see '\(value)'")
                }
            } else {
                Self.expectMasked(customer: got, like: clear, "\(role) GetCustomer")
                Self.expectMasked(customer: listed.customers[0], like: clear, "\(role) ListCustomers")
                Self.expectMasked(customer: view.customer, like: clear, "\(role) GetCustomer360.customer")
                Self.expectMasked(view, "\(role) GetCustomer360")
                Self.expectMasked(identities: view.recentOrders[0].identities, "\(role) GetCustomer360.recent_orders")
                for entry in view.timeline {
                    switch entry.entry {
                    case .event(let event): Self.expectMasked(identities: event.identities, "\(role) timeline event")
                    case .order(let order): Self.expectMasked(identities: order.identities, "\(role) timeline order")
                    case .interaction(let interaction):
                        #expect(interaction.summary == "***")
                        #expect(interaction.subject == "Parcel")
                    case nil: Issue.record("empty timeline entry")
                    }
                }
                // Everything else of the view is as an admin sees it.
                #expect(view.stats == clearView.stats)
                #expect(view.recentOrders.map(\.total) == clearView.recentOrders.map(\.total))
                #expect(view.timelineNextPageToken == clearView.timelineNextPageToken)
                // Whoever reads the view may page its timeline, masked alike.
                let timeline = try await c.views.listTimeline(.with { $0.customerID = ada.id })
                #expect(timeline.entries.count == 3)
                Self.expectMasked(timeline.textFormatString(), "\(role) ListTimeline")
            }
        }
    }

    @Test(arguments: Role.allCases.filter { $0.permissions.contains(.readActivity) })
    func ordersEventsTimelineAndInteractions(role: Role) async throws {
        try await withRapport(role: role) { c in
            let ada = try await Self.seed(c)
            let order = try await c.views.getOrder(.with { $0.orderKey = .with { $0.source = "web"; $0.externalID = "o-1" } })
            let orders = try await c.views.listOrders(.with { $0.customerID = ada.id })
            let event = try await c.views.getEvent(.with { $0.id = "e-1" })
            let timeline = try await c.views.listTimeline(.with { $0.customerID = ada.id })
            let interactions = try await c.interactions.listInteractions(.with { $0.customerID = ada.id })
            #expect(orders.orders == [order])
            #expect(timeline.entries.count == 3)
            #expect(interactions.interactions.count == 1)
            if role.seesPersonalData {
                #expect(order.identities == [.email(adaEmail), .memberCard(adaCard)])
                #expect(event.identities == [.email(adaEmail), .phone(adaPhone)])
                #expect(interactions.interactions.first?.summary == adaSummary)
                #expect(printed(timeline).contains(adaSummary))
            } else {
                let responses: [(any SwiftProtobuf.Message, String)] = [
                    (order, "GetOrder"), (orders, "ListOrders"), (event, "GetEvent"), (timeline, "ListTimeline"), (interactions, "ListInteractions"),
                ]
                for (message, what) in responses {
                    Self.expectMasked(message.textFormatString(), "\(role) \(what)")
                }
                Self.expectMasked(identities: order.identities, "\(role) GetOrder")
                Self.expectMasked(identities: event.identities, "\(role) GetEvent")
                #expect(interactions.interactions.first?.summary == "***")
                #expect(interactions.interactions.first?.subject == "Parcel")
                #expect(order.total.minorUnits == 1000)
            }
        }
    }

    static func expectMasked(_ text: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for value in personalData {
            #expect(!text.contains(value), "\(what) shows '\(value)'", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: [Role.analyst, .readOnly])
    func aMaskedRoleCannotProbeIdentitiesNorReadWhenRulesFiredForWhom(role: Role) async throws {
        try await withRapport(role: role) { c in
            let ada = try await Self.seed(c)
            let run = try await c.as(.admin) {
                _ = try await c.rules.createRule(
                    .with { $0.rule = .with { $0.name = "Birthday"; $0.trigger.date = .with { $0.birthday = true; $0.at = "09:00" }; $0.actions = [.with { $0.addTag = "bday" }] } })
                try await c.engine.advanceManualClock(to: c.clock.now() + .seconds(400 * 86_400))
                return try await c.rules.listRuleRuns(.with { $0.customerID = ada.id }).runs.first
            }
            #expect(run != nil, "the birthday rule ran for Ada")
            // Found or not found would confirm a guessed address that the masked view only hints at.
            await expectRPCError(.permissionDenied) { try await c.customers.findCustomer(.with { $0.identity = .email(adaEmail) }) }
            await expectRPCError(.permissionDenied) { try await c.customers.findCustomer(.with { $0.identity = .email("nobody@example.com") }) }
            // A birthday rule's runs would date Ada's birthday, which her masked profile hides.
            await expectRPCError(.permissionDenied) { try await c.rules.listRuleRuns(.with { $0.customerID = ada.id }) }
            await expectRPCError(.permissionDenied) { try await c.rules.getRuleRun(.with { $0.id = run?.id ?? "run_x" }) }
        }
    }

    /// Who is in a segment defined by personal data (a birthday's month), directly or through a segment it names, is
    /// that data: masked roles are not shown the members, and a customer's list of segments leaves those out.
    @Test(arguments: [Role.analyst])
    func aSegmentDefinedByPersonalDataDoesNotListItsMembersToMaskedRoles(role: Role) async throws {
        try await withRapport(role: role) { c in
            let ada = try await Self.seed(c)
            let (december, through, plain) = try await c.as(.admin) {
                let december = try await c.segments.createSegment(
                    .with { $0.segment = .with { $0.key = "december_birthdays"; $0.name = "December"; $0.expression = "customer.birthday.month == 12" } })
                let through = try await c.segments.createSegment(
                    .with { $0.segment = .with { $0.key = "december_vips"; $0.name = "Via"; $0.expression = #"in_segment("december_birthdays")"# } })
                let plain = try await c.segments.createSegment(
                    .with { $0.segment = .with { $0.key = "everyone"; $0.name = "Everyone"; $0.expression = "stats.order_count >= 0" } })
                try await c.engine.advanceManualClock(to: c.clock.now() + .seconds(60))
                let all = try await c.segments.listCustomerSegments(.with { $0.customerID = ada.id }).memberships.map(\.segmentID)
                #expect(Set(all) == [december.id, through.id, plain.id], "the admin sees every segment Ada is in")
                return (december, through, plain)
            }
            let denied = await expectRPCError(.permissionDenied) { try await c.segments.listSegmentMembers(.with { $0.segmentID = december.id }) }
            #expect(denied?.message.contains("customer.birthday") == true)
            await expectRPCError(.permissionDenied) { try await c.segments.listSegmentMembers(.with { $0.segmentID = through.id }) }
            #expect(try await c.segments.listSegmentMembers(.with { $0.segmentID = plain.id }).members.map(\.customerID) == [ada.id])
            #expect(try await c.segments.listCustomerSegments(.with { $0.customerID = ada.id }).memberships.map(\.segmentID) == [plain.id])

            // The change feed leaves out their entries too. A merge into Ada ends the part of her feed compared.
            func feed() async throws -> [Rapport_V1_Change] {
                try await c.changes.watchChanges(.with { $0.customerID = ada.id }) { response in
                    var seen: [Rapport_V1_Change] = []
                    for try await change in response.messages {
                        seen.append(change)
                        if change.kind == .customersMerged { break }
                    }
                    return seen
                }
            }
            let everything = try await c.as(.admin) {
                let zed = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("zed@example.com")] } })
                _ = try await c.merges.mergeCustomers(.with { $0.customerIds = [ada.id, zed.id] })
                return try await feed()
            }
            let shown = try await feed()
            #expect(Set(everything.filter { $0.kind == .segmentEntered }.map(\.segmentID)) == [december.id, through.id, plain.id])
            #expect(shown.filter { $0.kind == .segmentEntered }.map(\.segmentID) == [plain.id])
            #expect(shown.map(\.cursor) == everything.filter { ![december.id, through.id].contains($0.segmentID) }.map(\.cursor))
            // Given an expression that reads no personal data, what the earlier one found (members kept with their
            // times, the feed's entries) stays hidden.
            try await c.as(.admin) {
                _ = try await c.segments.updateSegment(
                    .with { $0.segment = .with { $0.id = december.id; $0.expression = "stats.order_count >= 0" }; $0.updateMask = .with { $0.paths = ["expression"] } })
                try await c.engine.advanceManualClock(to: c.clock.now() + .seconds(60))
            }
            let still = await expectRPCError(.permissionDenied) { try await c.segments.listSegmentMembers(.with { $0.segmentID = december.id }) }
            #expect(still?.message.contains("an earlier expression: customer.birthday") == true)
            await expectRPCError(.permissionDenied) { try await c.segments.listSegmentMembers(.with { $0.segmentID = through.id }) }
            #expect(try await feed().filter { $0.kind == .segmentEntered }.map(\.segmentID) == [plain.id])
            // Deleted, they still do not show: what they were defined by is not known any more.
            try await c.as(.admin) {
                _ = try await c.segments.deleteSegment(.with { $0.id = through.id })
                _ = try await c.segments.deleteSegment(.with { $0.id = december.id })
            }
            #expect(try await feed().filter { $0.kind == .segmentEntered }.map(\.segmentID) == [plain.id])
        }
    }

    @Test func shortValuesAreMaskedWhole() async throws {
        try await withRapport(role: .analyst) { c in
            let id = try await c.as(.admin) {
                try await c.customers.createCustomer(
                    .with { $0.customer = .with { $0.givenName = "Al"; $0.identities = [.email("al@example.com"), .memberCard("C1234"), .email("bea@example.com")] } }
                ).id
            }
            let masked = try await c.customers.getCustomer(.with { $0.id = id }).identities
            #expect(Set(masked.map(\.value)) == ["***@example.com", "***", "b***@example.com"])
        }
    }
}
