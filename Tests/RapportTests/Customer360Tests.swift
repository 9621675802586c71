import Rapport
import RapportCore
import RapportTesting
import Testing

@Suite("Customer 360, timeline, interactions and consent")
struct Customer360Tests {
    @Test(arguments: Backend.allCases)
    func theTimelineInterleavesEverythingNewestFirstAcrossPages(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        clock.advance(by: day * 30)
        var items: [IngestItem] = []
        for index in 0..<9 {
            let time = start + .seconds(Int64(index / 2))  // pairs share a time: ties are broken by arrival
            items.append(index % 3 == 0 ? order("o\(index)", at: time, .email("ada@example.com")) : event("e\(index)", at: time, .email("ada@example.com")))
        }
        _ = try await crm.ingest(items)
        for index in 0..<3 {
            _ = try await crm.recordInteraction(
                InteractionInput(customerID: ada.id, channel: .chat, direction: .inbound, subject: "q\(index)", occurredAt: start + .seconds(Int64(index * 2))))
        }
        var seen: [String] = []
        var token: String?
        repeat {
            let page = try await crm.timeline(ada.id, page: PageRequest(size: 4, token: token))
            #expect(page.entries.count <= 4)
            seen += page.entries.map { entry in
                switch entry {
                case .event(let event): event.id
                case .order(let order): order.key.externalID
                case .interaction(let interaction): interaction.subject
                }
            }
            token = page.nextPageToken
        } while token != nil
        // Ties in time are broken by arrival, newest first: the interactions were recorded last.
        #expect(seen == ["q2", "e8", "e7", "o6", "q1", "e5", "e4", "o3", "e2", "q0", "e1", "o0"])

        let view = try await crm.customer360(ada.id, recentOrders: 2, timelinePageSize: 3)
        #expect(view.recentOrders.map(\.key.externalID) == ["o6", "o3"])
        #expect(view.timeline.entries.count == 3)
        #expect(view.timeline.nextPageToken != nil)
        #expect(view.stats.orderCount == 3)
        #expect(view.stats.eventCount == 6)
        await expectError(.invalid("page_token", "is not a token returned by a timeline")) {
            try await crm.timeline(ada.id, page: PageRequest(size: 4, token: try await crm.listCustomers(page: PageRequest(size: 1)).nextPageToken ?? "Yw"))
        }
    }

    @Test(arguments: Backend.allCases)
    func aPageTokenIsRefusedByAnotherListingOrRequest(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let another = "was made for another request of"
        func problem(_ body: () async throws -> some Any) async -> String {
            do {
                _ = try await body()
                return "accepted"
            } catch let error as RapportError {
                return error.fieldViolations.first.map { "\($0.field): \($0.problem)" } ?? "\(error)"
            } catch {
                return "\(error)"
            }
        }
        var items: [IngestItem] = []
        for index in 0..<3 {
            items.append(event("a\(index)", at: start + .seconds(Int64(index)), .email("ada@example.com")))
            items.append(order("ao\(index)", at: start + .seconds(Int64(index)), .email("ada@example.com")))
            items.append(event("b\(index)", at: start + .seconds(Int64(index)), .email("bob@example.com")))
        }
        _ = try await crm.ingest(items)
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com"))).id
        let bob = try #require(try await crm.findCustomer(.email("bob@example.com"))).id
        let adasTimeline = try #require(try await crm.timeline(ada, page: PageRequest(size: 1)).nextPageToken)
        let adasOrders = try #require(try await crm.orders(of: ada, page: PageRequest(size: 1)).nextPageToken)
        #expect(await problem { try await crm.timeline(ada, page: PageRequest(size: 1, token: adasTimeline)) } == "accepted")
        #expect(await problem { try await crm.timeline(bob, page: PageRequest(size: 1, token: adasTimeline)) }.contains(another))
        #expect(await problem { try await crm.timeline(ada, page: PageRequest(size: 1, token: adasOrders)) } == "page_token: is not a token returned by a timeline")
        #expect(await problem { try await crm.interactions(of: ada, page: PageRequest(size: 1, token: adasTimeline)) }.contains("is not a token returned by an interaction listing"))

        let vip = try await crm.createSegment(.dynamic(key: "seen", name: "Seen", expression: "stats.event_count > 0"))
        let all = try await crm.createSegment(.dynamic(key: "all", name: "All", expression: "true"))
        let members = try #require(try await crm.segmentMembers(vip.id, page: PageRequest(size: 1)).nextPageToken)
        #expect(await problem { try await crm.segmentMembers(all.id, page: PageRequest(size: 1, token: members)) }.contains(another))

        let listed = try #require(try await crm.listCustomers(page: PageRequest(size: 1)).nextPageToken)
        let tagged = try CustomerFilter(parsing: "tags:vip")
        #expect(await problem { try await crm.listCustomers(filter: tagged, page: PageRequest(size: 1, token: listed)) }.contains(another))
        #expect(await problem { try await crm.listCustomers(page: PageRequest(size: 1, token: listed)) } == "accepted")

        // Merged while its timeline is paged: the token made for its id goes on under that id, in the survivor's
        // timeline, which holds its records.
        _ = try await crm.ingest([order("bo1", at: start, .email("bob@example.com")), order("bo2", at: start + .seconds(1), .email("bob@example.com"))])
        let bobsTimeline = try #require(try await crm.timeline(bob, page: PageRequest(size: 1)).nextPageToken)
        let bobsOrders = try #require(try await crm.orders(of: bob, page: PageRequest(size: 1)).nextPageToken)
        _ = try await crm.mergeCustomers(ada, bob)
        #expect(await problem { try await crm.timeline(bob, page: PageRequest(size: 1, token: bobsTimeline)) } == "accepted")
        #expect(await problem { try await crm.orders(of: bob, page: PageRequest(size: 1, token: bobsOrders)) } == "accepted")
        // It goes on where it was, in the merged customer's list (Ada's orders and Bob's): after bo2, bo1 still to come.
        let rest = try await crm.orders(of: bob, page: PageRequest(size: 100, token: bobsOrders)).orders.map(\.key.externalID)
        #expect(rest.contains("bo1") && !rest.contains("bo2"))
    }

    @Test func consentKeepsItsHistoryAndTheLatestStatementRules() async throws {
        let test = TestRapport()
        let crm = test.crm
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .marketing, status: .granted, source: "checkout"))
        test.clock.advance(by: day)
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .sms, purpose: .marketing, status: .denied, source: "checkout"))
        // A statement given earlier but recorded later does not override the newer one.
        _ = try await crm.recordConsent(
            ConsentInput(customerID: ada.id, channel: .email, purpose: .marketing, status: .revoked, source: "support", occurredAt: start - .seconds(3600)))
        test.clock.advance(by: day)
        #expect(try await crm.hasConsent(ada.id, channel: .email, purpose: .marketing))
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .marketing, status: .revoked, source: "unsubscribe_link"))
        #expect(try await crm.hasConsent(ada.id, channel: .email, purpose: .marketing) == false)
        // Without a statement, as the outbox decides: transactional messages go out, marketing ones do not.
        #expect(try await crm.hasConsent(ada.id, channel: .push, purpose: .transactional))
        #expect(try await crm.hasConsent(ada.id, channel: .push, purpose: .marketing) == false)
        #expect(try await crm.consents(of: ada.id).map { "\($0.channel)/\($0.status)" } == ["email/revoked", "sms/denied"])
        #expect(try await crm.consentHistory(of: ada.id).map(\.source) == ["support", "checkout", "checkout", "unsubscribe_link"])
        let error = await captureError {
            try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .profiling, status: .granted, source: ""))
        }
        #expect(error?.fieldViolations.map(\.field) == ["source"])
        let blank = await captureError {
            try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .profiling, status: .granted, source: " \t"))
        }
        #expect(blank?.fieldViolations.map(\.field) == ["source"])
        await expectError(.notFound(entity: "customer", id: "cus_missing")) {
            try await crm.recordConsent(
                ConsentInput(customerID: CustomerID(rawValue: "cus_missing")!, channel: .email, purpose: .profiling, status: .granted, source: "x"))
        }
    }

    /// A statement dated ahead takes effect when it is recorded, not before: an unsubscribe recorded after it wins.
    /// Of two statements at the same time, the one that does not allow contact rules.
    @Test func aConsentDatedAheadDoesNotOutliveALaterUnsubscribe() async throws {
        let test = TestRapport()
        let crm = test.crm
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        _ = try await crm.recordConsent(
            ConsentInput(customerID: ada.id, channel: .email, purpose: .marketing, status: .granted, source: "app", occurredAt: test.clock.now() + .seconds(10 * 3600)))
        #expect(try await crm.hasConsent(ada.id, channel: .email, purpose: .marketing))
        test.clock.advance(by: .seconds(300))
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .marketing, status: .revoked, source: "unsubscribe_link"))
        #expect(try await crm.hasConsent(ada.id, channel: .email, purpose: .marketing) == false)
        #expect(try await crm.consents(of: ada.id).map(\.status) == [.revoked])
        // Same time, either order of arrival: the refusal rules.
        let at = test.clock.now() - .seconds(60)
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .sms, purpose: .marketing, status: .denied, source: "store", occurredAt: at))
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .sms, purpose: .marketing, status: .granted, source: "web", occurredAt: at))
        #expect(try await crm.hasConsent(ada.id, channel: .sms, purpose: .marketing) == false)
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .push, purpose: .marketing, status: .granted, source: "app", occurredAt: at))
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .push, purpose: .marketing, status: .revoked, source: "app", occurredAt: at))
        #expect(try await crm.hasConsent(ada.id, channel: .push, purpose: .marketing) == false)
    }

    @Test func interactionsArePagedNewestFirst() async throws {
        let test = TestRapport()
        let ada = try await test.crm.createCustomer(NewCustomer())
        for index in 0..<5 {
            _ = try await test.crm.recordInteraction(InteractionInput(customerID: ada.id, channel: .phone, direction: .outbound, subject: "call \(index)"))
            test.clock.advance(by: .seconds(60))
        }
        let first = try await test.crm.interactions(of: ada.id, page: PageRequest(size: 3))
        #expect(first.interactions.map(\.subject) == ["call 4", "call 3", "call 2"])
        let second = try await test.crm.interactions(of: ada.id, page: PageRequest(size: 3, token: first.nextPageToken))
        #expect(second.interactions.map(\.subject) == ["call 1", "call 0"])
        #expect(second.nextPageToken == nil)
        let tooLong = await captureError {
            try await test.crm.recordInteraction(InteractionInput(customerID: ada.id, channel: .chat, direction: .inbound, subject: String(repeating: "x", count: 501)))
        }
        #expect(tooLong?.fieldViolations.map(\.field) == ["subject"])
        // Limits count Unicode scalars: one letter under a pile of combining marks is one character on screen, not
        // a way past them.
        let piled = "e" + String(repeating: "\u{301}", count: 1000)
        #expect(piled.count == 1)
        let piledUp = await captureError {
            try await test.crm.recordInteraction(InteractionInput(customerID: ada.id, channel: .chat, direction: .inbound, subject: piled))
        }
        #expect(piledUp?.fieldViolations.map(\.field) == ["subject"])
    }

    @Test func theTestEngineLetsTimePassWithoutSleeping() async throws {
        let test = TestRapport()
        _ = try await test.crm.ingest([event("e1", at: test.clock.now(), .email("ada@example.com"))])
        test.clock.advance(by: day * 91)
        let ada = try #require(try await test.crm.findCustomer(.email("ada@example.com")))
        #expect(ada.id.rawValue == "cus_0000000001")
        let stats = try await test.crm.stats(of: ada.id)
        #expect(stats.lastSeenAt == start)
        #expect(test.clock.now() == start + day * 91)
    }
}
