import Foundation
import Rapport
import RapportCore
import Testing

@Suite("Ingest")
struct IngestTests {
    @Test(arguments: Backend.allCases)
    func eventsAndOrdersResolveToCustomersAndUpdateAggregates(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let eur = try CurrencyCode("EUR")
        let usd = try CurrencyCode("USD")
        clock.advance(by: day * 10)
        let result = try await crm.ingest([
            event("e1", at: start + day, .anonymousID("device-1")),
            event("e2", "product.viewed", at: start + day * 2, .anonymousID("device-1"), .email("ada@example.com"), properties: ["sku": .string("A1")]),
            order("o1", at: start + day * 3, .email("ada@example.com"), totalMinor: 2000),
            order("o2", at: start + day * 4, .email("ADA@example.com"), totalMinor: 1001),
            order("o3", at: start + day * 5, .email("ada@example.com"), totalMinor: 500, currency: "USD"),
            event("e3", at: start + day * 6, .email("bob@example.com")),
        ])
        #expect(result.acceptedCount == 6)
        #expect(result.createdCustomers.count == 2)
        guard case .accepted(let ada) = result.outcomes[0], case .accepted(let bob) = result.outcomes[5] else {
            Issue.record("unexpected outcomes \(result.outcomes)")
            return
        }
        #expect(result.outcomes.dropLast().allSatisfy { $0 == .accepted(ada) })
        #expect(ada != bob)
        let customer = try await crm.customer(ada)
        #expect(Set(customer.identities.map(\.key)) == ["anonymous_id:device-1", "email:ada@example.com"])

        let stats = try await crm.stats(of: ada)
        #expect(stats.orderCount == 3)
        #expect(stats.totalSpent(in: eur) == Money(minorUnits: 3001, currency: eur))
        #expect(stats.totalSpent(in: usd) == Money(minorUnits: 500, currency: usd))
        #expect(stats.averageOrderValue == [Money(minorUnits: 1501, currency: eur), Money(minorUnits: 500, currency: usd)])
        #expect(stats.firstOrderAt == start + day * 3)
        #expect(stats.lastOrderAt == start + day * 5)
        #expect(stats.eventCount == 2)
        #expect(stats.lastSeenAt == start + day * 5)
    }

    /// An order holds at most 20 identities, however many items bring new ones; an id is measured as stored
    /// (composed): a decomposed one of more than 128 bytes that composes to fewer is taken.
    @Test(arguments: Backend.allCases)
    func anOrderHoldsAtMostTwentyIdentitiesAndIdsAreMeasuredComposed(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let first = (0..<15).map { IdentityInput.anonymousID("device-\($0)") }
        let later = (15..<25).map { IdentityInput.anonymousID("device-\($0)") }
        func item(_ identities: [IdentityInput], status: OrderStatus) -> IngestItem {
            .order(
                OrderInput(
                    source: "web", externalID: "o1", identities: identities, lines: [OrderLine(sku: "S", quantity: 1, unitPriceMinor: 100)], currency: "EUR",
                    status: status, placedAt: start))
        }
        _ = try await crm.ingest([item(first, status: .placed)])
        let result = try await crm.ingest([item(later, status: .paid)])
        guard case .rejected(let violations) = result.outcomes.first else { Issue.record("\(result.outcomes)"); return }
        #expect(violations.map(\.field) == ["identities"])
        #expect(violations.first?.problem.contains("at most 20") == true)
        #expect(try await crm.customerCount() == 1)
        // An order an earlier version let grow past 20 still takes a state that brings nothing new.
        try await crm.store.write { tx in
            var record = try #require(try tx.order(key: OrderKey(source: "web", externalID: "o1")))
            record.order.identities += (25..<32).map { Identity(kind: .anonymousID, value: "device-\($0)") }
            try tx.updateOrder(record)
        }
        #expect(try await crm.ingest([item(first, status: .paid)]).updatedCount == 1)
        // 129 bytes decomposed (43 times "e" and a combining accent, 3 bytes), 86 composed: within 128 composed.
        let decomposed = String(repeating: "e\u{301}", count: 43)
        #expect(decomposed.utf8.count == 129)
        let taken = try await crm.ingest([event(decomposed, at: start, .email("ada@example.com"))])
        #expect(taken.acceptedCount == 1)
    }

    @Test(arguments: Backend.allCases)
    func aReplayedBatchChangesNothing(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let batch: [IngestItem] = [
            event("e1", at: start, .email("ada@example.com")),
            order("o1", at: start, .email("ada@example.com"), totalMinor: 1500),
            event("e1", at: start, .email("ada@example.com")),  // the same id twice in one batch
        ]
        let first = try await crm.ingest(batch)
        guard case .accepted(let ada) = first.outcomes[0] else { throw RapportError.failedPrecondition("not accepted") }
        #expect(first.outcomes == [.accepted(ada), .accepted(ada), .duplicate(ada)])
        let before = try await snapshot(crm, ada)
        clock.advance(by: .seconds(30))
        let replay = try await crm.ingest(batch)
        #expect(replay.outcomes == [.duplicate(ada), .duplicate(ada), .duplicate(ada)])
        #expect(replay.createdCustomers.isEmpty)
        #expect(try await snapshot(crm, ada) == before)
    }

    @Test(arguments: Backend.allCases)
    func twoSpellingsOfTheSameUnicodeTextAreOneIdOrIdentityOnBothBackends(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let composed = "caf\u{E9}"  // é as one scalar (NFC)
        let decomposed = "cafe\u{301}"  // e + combining acute accent (NFD)
        #expect(Array(composed.utf8) != Array(decomposed.utf8))
        let first = try await crm.ingest([
            event("view-\(composed)", at: start, .email("jos\u{E9}@\(composed).example"), .anonymousID("device-\(composed)")),
            order("order-\(composed)", at: start, .email("jos\u{E9}@\(composed).example")),
        ])
        guard case .accepted(let customer) = first.outcomes[0] else { throw RapportError.failedPrecondition("not accepted") }
        let again = try await crm.ingest([
            event("view-\(decomposed)", at: start, .email("jose\u{301}@\(decomposed).example")),
            event("other-\(decomposed)", at: start, .anonymousID("device-\(decomposed)")),
            order("order-\(decomposed)", at: start, .email("jose\u{301}@\(decomposed).example")),
        ])
        #expect(again.outcomes == [.duplicate(customer), .accepted(customer), .duplicate(customer)])
        #expect(again.createdCustomers.isEmpty)
        #expect(try await crm.event("view-\(decomposed)").customerID == customer)
        #expect(try await crm.order(OrderKey(source: "web", externalID: "order-\(decomposed)")).customerID == customer)
        #expect(try await crm.findCustomer(.email("jose\u{301}@\(decomposed).example"))?.id == customer)
        #expect(try await crm.customerCount() == 1)
    }

    @Test(arguments: Backend.allCases)
    func textSQLiteWouldCutAtANulIsRefusedOnBothBackends(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let result = try await crm.ingest([
            event("e\u{0}x", at: start, .email("ada@example.com")),
            .order(OrderInput(source: "web", externalID: "A\u{0}-1", identities: [.email("ada@example.com")], lines: [OrderLine(sku: "S", quantity: 1, unitPriceMinor: 1)], currency: "EUR", placedAt: start)),
        ])
        func fields(_ index: Int) -> [String] {
            guard case .rejected(let violations) = result.outcomes[index] else { return [] }
            return violations.map(\.field)
        }
        #expect(fields(0) == ["id"])
        #expect(fields(1) == ["external_id"])
        func field(_ body: () async throws -> some Any) async -> [String] {
            do {
                _ = try await body()
                return []
            } catch let error as RapportError {
                return error.fieldViolations.map(\.field)
            } catch {
                return ["\(error)"]
            }
        }
        #expect(await field { try await crm.createCustomer(NewCustomer(profile: CustomerProfile(tags: ["vip\u{0}x"]))) } == ["tags[0]"])
        #expect(await field { try await crm.createCustomer(NewCustomer(), requestID: "r\u{0}1") } == ["request_id"])
        #expect(await field { try await crm.createAPIKey(name: "ci\u{0}", role: .analyst) } == ["name"])
        #expect(await field { try await crm.defineAttribute(AttributeDefinition(key: "score", type: .decimal, description: "\u{0}")) } == ["description"])
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        #expect(await field { try await crm.recordInteraction(InteractionInput(customerID: ada.id, channel: .phone, direction: .inbound, subject: "a\u{0}b")) } == ["subject"])
        #expect(await field { try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .marketing, status: .granted, source: "\u{0}")) } == ["source"])
        // A decimal that is not a number would be stored and never read back.
        _ = try await crm.defineAttribute(AttributeDefinition(key: "score", type: .decimal))
        #expect(await field { try await crm.updateCustomer(ada.id) { $0.attributes["score"] = .decimal(.nan) } } == ["attributes.score"])
        let farOff = try await crm.ingest([.event(EventInput(
            id: "far", type: "renewed", occurredAt: start, identities: [.email("ada@example.com")],
            properties: ["until": .timestamp(Timestamp(millisecondsSinceEpoch: .max))]))])
        #expect(farOff.outcomes == [.rejected([FieldViolation(field: "properties.until", problem: "is outside the years 1 to 9999 (UTC) that Rapport keeps")])])
        #expect(try await crm.customerCount() == 1)
    }

    @Test(arguments: Backend.allCases)
    func tagsAndRequestIdsInEitherUnicodeSpellingAreTheSame(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let decomposed = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(tags: ["cafe\u{301}"])), requestID: "cre\u{301}er")
        #expect(Array(decomposed.profile.tags[0].utf8) == Array("caf\u{E9}".utf8))
        let found = try await crm.listCustomers(filter: try CustomerFilter(parsing: "tags:caf\u{E9}")).customers
        #expect(found.map(\.id) == [decomposed.id])
        #expect(try await crm.listCustomers(filter: CustomerFilter(tags: ["cafe\u{301}"])).customers.map(\.id) == [decomposed.id])  // built in Swift
        // The same request id, spelled the other way, is a retry.
        #expect(try await crm.createCustomer(NewCustomer(profile: CustomerProfile(tags: ["cafe\u{301}"])), requestID: "cr\u{E9}er") == decomposed)
        #expect(try await crm.customerCount() == 1)
    }

    @Test(arguments: Backend.allCases)
    func aReplayedOlderStateOfAnOrderChangesNothing(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let eur = try CurrencyCode("EUR")
        clock.advance(by: day * 30)
        let placed = [order("o1", at: start + day, .email("ada@example.com"), totalMinor: 1000)]
        let paid = [order("o1", at: start + day, .email("ada@example.com"), totalMinor: 1200, status: .paid, statusAt: start + day * 2)]
        let first = try await crm.ingest(placed)
        guard case .accepted(let ada) = first.outcomes[0] else { throw RapportError.failedPrecondition("not accepted") }
        #expect(try await crm.ingest(paid).outcomes == [.updated(ada)])  // paid, with a corrected amount
        let latest = try await crm.order(OrderKey(source: "web", externalID: "o1"))
        let cursor = try await crm.changes(after: 0, limit: 1000).last!.cursor
        clock.advance(by: .seconds(60))

        // Both batches again, oldest first, then the first alone: nothing changes, nothing is reported.
        #expect(try await crm.ingest(placed).outcomes == [.duplicate(ada)])
        #expect(try await crm.ingest(paid).outcomes == [.duplicate(ada)])
        #expect(try await crm.ingest(placed + paid).outcomes == [.duplicate(ada), .duplicate(ada)])
        #expect(try await crm.order(OrderKey(source: "web", externalID: "o1")) == latest)
        #expect(latest.total == Money(minorUnits: 1200, currency: eur))
        #expect(try await crm.stats(of: ada).totalSpent(in: eur) == Money(minorUnits: 1200, currency: eur))
        #expect(try await crm.changes(after: cursor).isEmpty)

        // A later state's item still brings its content.
        _ = try await crm.ingest([order("o1", at: start + day, .email("ada@example.com"), totalMinor: 900, status: .shipped, statusAt: start + day * 3)])
        #expect(try await crm.order(OrderKey(source: "web", externalID: "o1")).total == Money(minorUnits: 900, currency: eur))
    }

    @Test(arguments: Backend.allCases)
    func undatedOrEarlyStatusesDoNotTakeAnOrderBackAndEveryStatusTriggersItsRules(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        clock.advance(by: day * 30)
        let receipt = try await crm.createRule(RuleDefinition(name: "Receipt", trigger: .event(type: "order.paid"), actions: [.addTag("receipt")]))
        _ = try await crm.ingest([order("o1", at: start + day, .email("ada@example.com"), status: .delivered, statusAt: start + day * 3)])
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com"))).id
        // A late "shipped" without its time: it happened, but the order stays delivered.
        _ = try await crm.ingest([order("o1", at: start + day, .email("ada@example.com"), status: .shipped)])
        var o1 = try await crm.order(OrderKey(source: "web", externalID: "o1"))
        #expect(o1.status == .delivered)
        #expect(o1.statusHistory.map(\.status) == [.placed, .shipped, .delivered])
        // "paid", dated, after the later states: in its place in the history, and its rules run (a receipt).
        _ = try await crm.ingest([order("o1", at: start + day, .email("ada@example.com"), status: .paid, statusAt: start + day * 2)])
        o1 = try await crm.order(OrderKey(source: "web", externalID: "o1"))
        #expect(o1.statusHistory.map(\.status) == [.placed, .paid, .shipped, .delivered])
        #expect(o1.status == .delivered)
        #expect(try await crm.runs(rule: receipt.id).runs.map(\.status) == [.fired])
        #expect(try await crm.customer(ada).profile.tags == ["receipt"])
        // A status dated before the order was placed (a clock off elsewhere) still comes after "placed".
        _ = try await crm.ingest([order("o2", at: start + day * 5, .email("ada@example.com"))])
        _ = try await crm.ingest([order("o2", at: start + day * 4, .email("ada@example.com"), status: .cancelled, statusAt: start + day * 4 + .seconds(3600))])
        let o2 = try await crm.order(OrderKey(source: "web", externalID: "o2"))
        #expect(o2.status == .cancelled)
        #expect(o2.statusHistory.map(\.status) == [.placed, .cancelled])
        #expect(try await crm.stats(of: ada).orderCount == 1)
        // An undated cancellation after delivery moves it on: it comes later in an order's life.
        _ = try await crm.ingest([order("o1", at: start + day, .email("ada@example.com"), status: .refunded)])
        #expect(try await crm.order(OrderKey(source: "web", externalID: "o1")).status == .refunded)
        #expect(try await crm.stats(of: ada).orderCount == 0)
    }

    @Test(arguments: Backend.allCases)
    func aStatusWithoutItsTimeTakesItsPlaceByTheOrdersLifeUntilItsTimeArrives(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        clock.advance(by: day * 30)
        let key = OrderKey(source: "web", externalID: "o1")
        // A backfill without status times: cancelled, its time unknown (the placing time stands in).
        _ = try await crm.ingest([order("o1", at: start + day, .email("ada@example.com"), status: .cancelled)])
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com"))).id
        var o1 = try await crm.order(key)
        #expect(o1.statusHistory == [OrderStatusChange(status: .placed, at: start + day), OrderStatusChange(status: .cancelled, at: start + day, estimated: true)])
        // The live feed's "paid", dated after the placing time, does not bring the cancelled order back.
        _ = try await crm.ingest([order("o1", at: start + day, .email("ada@example.com"), status: .paid, statusAt: start + day + .seconds(300))])
        o1 = try await crm.order(key)
        #expect(o1.status == .cancelled)
        #expect(o1.statusHistory.map(\.status) == [.placed, .paid, .cancelled])
        #expect(o1.statusHistory.last == OrderStatusChange(status: .cancelled, at: start + day + .seconds(300), estimated: true))
        #expect(try await crm.stats(of: ada).orderCount == 0)
        // The cancellation's time arrives: it is placed by it (here before the payment, which is then the status).
        let dated = try await crm.ingest([order("o1", at: start + day, .email("ada@example.com"), status: .cancelled, statusAt: start + day + .seconds(60))])
        #expect(dated.outcomes == [.updated(ada)])
        o1 = try await crm.order(key)
        #expect(o1.statusHistory == [
            OrderStatusChange(status: .placed, at: start + day), OrderStatusChange(status: .cancelled, at: start + day + .seconds(60)),
            OrderStatusChange(status: .paid, at: start + day + .seconds(300)),
        ])
        #expect(o1.status == .paid)
        #expect(try await crm.stats(of: ada).orderCount == 1)
        // Once dated, the same status with another time changes nothing.
        let again = try await crm.ingest([order("o1", at: start + day, .email("ada@example.com"), status: .cancelled, statusAt: start + day * 2)])
        #expect(again.outcomes == [.duplicate(ada)])

        // An undated "shipped" that arrives after a dated refund stays before it, its estimate moved back to it.
        _ = try await crm.ingest([order("o2", at: start + day * 2, .email("ada@example.com"), status: .refunded, statusAt: start + day * 3)])
        _ = try await crm.ingest([order("o2", at: start + day * 2, .email("ada@example.com"), status: .shipped)])
        let o2 = try await crm.order(OrderKey(source: "web", externalID: "o2"))
        #expect(o2.status == .refunded)
        #expect(o2.statusHistory == [
            OrderStatusChange(status: .placed, at: start + day * 2), OrderStatusChange(status: .shipped, at: start + day * 3, estimated: true),
            OrderStatusChange(status: .refunded, at: start + day * 3),
        ])
        #expect(try await crm.stats(of: ada).orderCount == 1)
    }

    @Test(arguments: Backend.allCases)
    func identitiesALaterStateOfAnOrderBringsAreResolvedWithItsCustomer(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        clock.advance(by: day * 30)
        // Bob is known by e-mail; a guest checkout arrives with a device id only.
        _ = try await crm.ingest([event("e1", "page.viewed", at: start + day, .email("bob@example.com"))])
        let bob = try #require(try await crm.findCustomer(.email("bob@example.com"))).id
        _ = try await crm.ingest([order("o1", at: start + day * 2, .anonymousID("dev-9"), totalMinor: 2500)])
        let guest = try #require(try await crm.findCustomer(.anonymousID("dev-9"))).id
        #expect(guest != bob)
        // Its "paid" comes from the shop with the buyer's e-mail and a new card: the guest is Bob.
        let paid = try await crm.ingest([
            order("o1", at: start + day * 2, .anonymousID("dev-9"), .email("bob@example.com"), .memberCard("M-1"), totalMinor: 2500, status: .paid, statusAt: start + day * 2)
        ])
        #expect(paid.outcomes == [.updated(bob)])
        let o1 = try await crm.order(OrderKey(source: "web", externalID: "o1"))
        #expect(o1.customerID == bob)
        await expectError(.invalidArgument([FieldViolation(field: "source", problem: "is required"), FieldViolation(field: "external_id", problem: "is required")])) {
            try await crm.order(OrderKey(source: "", externalID: ""))
        }
        #expect(o1.identities == [Identity(kind: .anonymousID, value: "dev-9"), Identity(kind: .email, value: "bob@example.com"), Identity(kind: .memberCard, value: "M1")])  // cards are kept without separators
        #expect(try await crm.findCustomer(.memberCard("M-1"))?.id == bob)
        #expect(try await crm.findCustomer(.anonymousID("dev-9"))?.id == bob)
        let stats = try await crm.stats(of: bob)
        #expect(stats.orderCount == 1)
        #expect(stats.totalSpent(in: try CurrencyCode("EUR")).minorUnits == 2500)
        #expect(try await crm.customer(guest).id == bob)  // merged
    }

    @Test(arguments: Backend.allCases)
    func cancelledAndRefundedOrdersLeaveTheAggregates(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let eur = try CurrencyCode("EUR")
        clock.advance(by: day * 30)
        let placed = try await crm.ingest([
            order("o1", at: start + day, .email("ada@example.com"), totalMinor: 1000),
            order("o2", at: start + day * 2, .email("ada@example.com"), totalMinor: 3000),
            order("o3", at: start + day * 3, .email("ada@example.com"), totalMinor: 5000),
        ])
        guard case .accepted(let ada) = placed.outcomes[0] else { throw RapportError.failedPrecondition("not accepted") }

        // o3, the latest, is cancelled; o1, the first, is refunded after delivery.
        let changed = try await crm.ingest([
            order("o3", at: start + day * 3, .email("ada@example.com"), totalMinor: 5000, status: .cancelled, statusAt: start + day * 4),
            order("o1", at: start + day, .email("ada@example.com"), totalMinor: 1000, status: .delivered, statusAt: start + day * 5),
            order("o1", at: start + day, .email("ada@example.com"), totalMinor: 1000, status: .refunded, statusAt: start + day * 6),
        ])
        #expect(changed.outcomes == [.updated(ada), .updated(ada), .updated(ada)])
        let stats = try await crm.stats(of: ada)
        #expect(stats.orderCount == 1)
        #expect(stats.totalSpent(in: eur) == Money(minorUnits: 3000, currency: eur))
        #expect(stats.firstOrderAt == start + day * 2)
        #expect(stats.lastOrderAt == start + day * 2)

        let o1 = try await crm.order(OrderKey(source: "web", externalID: "o1"))
        #expect(o1.status == .refunded)
        #expect(o1.statusHistory.map(\.status) == [.placed, .delivered, .refunded])

        // A status that arrives late is placed in time order and does not overwrite a later one.
        _ = try await crm.ingest([order("o2", at: start + day * 2, .email("ada@example.com"), totalMinor: 3000, status: .shipped, statusAt: start + day * 7)])
        _ = try await crm.ingest([order("o2", at: start + day * 2, .email("ada@example.com"), totalMinor: 3000, status: .paid, statusAt: start + day * 3)])
        let o2 = try await crm.order(OrderKey(source: "web", externalID: "o2"))
        #expect(o2.statusHistory.map(\.status) == [.placed, .paid, .shipped])
        #expect(o2.status == .shipped)
        // The same state again is a duplicate.
        let again = try await crm.ingest([order("o2", at: start + day * 2, .email("ada@example.com"), totalMinor: 3000, status: .shipped, statusAt: start + day * 7)])
        #expect(again.outcomes == [.duplicate(ada)])
    }

    @Test func invalidItemsAreRejectedWithTheirReasons() async throws {
        let (crm, _) = try makeEngine()
        let items: [IngestItem] = [
            event("ok", at: start, .email("ada@example.com")),
            event("bad-type", "Page Viewed", at: start, .email("ada@example.com")),
            event("no-identity", at: start),
            event("future", at: start + day * 2, .email("ada@example.com")),
            .order(OrderInput(source: "web", externalID: "o1", identities: [.email("ada@example.com")], lines: [], currency: "EURO", placedAt: start)),
            .order(
                OrderInput(
                    source: "web", externalID: "o2", identities: [.email("ada@example.com")], lines: [OrderLine(sku: "A", quantity: 1, unitPriceMinor: 100)],
                    currency: "EUR", discountMinor: 500, placedAt: start)),
        ]
        let result = try await crm.ingest(items)
        #expect(result.acceptedCount == 1)
        #expect(result.rejectedCount == 5)
        func fields(_ index: Int) -> Set<String> {
            guard case .rejected(let violations) = result.outcomes[index] else { return [] }
            return Set(violations.map(\.field))
        }
        #expect(fields(1) == ["type"])
        #expect(fields(2) == ["identities"])
        #expect(fields(3) == ["occur_time"])
        #expect(fields(4) == ["currency", "lines"])
        #expect(fields(5) == ["discount_minor"])
    }

    @Test func itemViolationsNameTheirFieldsInOrder() async throws {
        let (crm, _) = try makeEngine()
        let result = try await crm.ingest([
            event(
                "props", at: start, .email("ada@example.com"),
                properties: ["zeta": .string(String(repeating: "z", count: 10_001)), "Bad-Key": .int(1), "alpha": .stringList(["a", String(repeating: "b", count: 1001)]), "ok": .int(2)]),
            event("ids", at: start, .email("ada@example.com"), .email("not-an-email"), .email("ADA@example.com"), .phone("12")),
            event("line\nbreak", at: start, .email("ada@example.com")),
        ])
        func violations(_ index: Int) -> [FieldViolation] {
            guard case .rejected(let violations) = result.outcomes[index] else { return [] }
            return violations
        }
        #expect(violations(0).map(\.field) == ["properties.Bad-Key", "properties.alpha", "properties.zeta"])
        #expect(violations(0)[0].problem.contains("lower-case letter"))
        // The duplicate of the first identity is dropped; each bad one is named by its position.
        #expect(violations(1).map(\.field) == ["identities[1].value", "identities[3].value"])
        #expect(violations(1)[0].problem.contains("not-an-email"))
        #expect(violations(2).map(\.field) == ["id"])
        #expect(result.acceptedCount == 0)
    }

    @Test(arguments: Backend.allCases)
    func allOrNothingNamesEveryBadItemAtOnceDeclaredTypesIncluded(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        _ = try await crm.defineEventType(EventTypeDefinition(type: "cart.updated", properties: [EventPropertyDefinition(key: "value_minor", type: .int)]))
        let items = [
            event("future", at: start + day * 3, .email("ada@example.com")),  // refused by itself
            event("typed", "cart.updated", at: start, .email("ada@example.com"), properties: ["value_minor": .string("12")]),  // by its declaration
            event("fine", "cart.updated", at: start, .email("ada@example.com"), properties: ["value_minor": .int(12)]),
        ]
        let error = await captureError { try await crm.ingest(items, mode: .allOrNothing) }
        #expect(error?.fieldViolations.map(\.field) == ["items[0].occur_time", "items[1].properties.value_minor"])
        #expect(try await crm.customerCount() == 0)
    }

    @Test(arguments: Backend.allCases)
    func anAllOrNothingBatchWithOneBadItemAppliesNothing(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let error = await captureError {
            try await crm.ingest(
                [event("e1", at: start, .email("ada@example.com")), event("e2", "BAD", at: start, .email("ada@example.com"))], mode: .allOrNothing)
        }
        #expect(error?.fieldViolations.map(\.field) == ["items[1].type"])
        #expect(try await crm.customerCount() == 0)
        await expectError(.notFound(entity: "event", id: "e1")) { try await crm.event("e1") }
    }

    @Test(arguments: Backend.allCases)
    func aBatchThatFailsInStorageLeavesStorageUnchanged(backend: Backend) async throws {
        let store = FailingStore(base: try backend.makeStore())
        let clock = ManualClock(now: start)
        let crm = RapportEngine(store: store, clock: clock, ids: SequentialIDGenerator(), logger: quietLogger)
        _ = try await crm.ingest([event("e0", at: start, .email("ada@example.com")), order("o0", at: start, .email("ada@example.com"))])
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com")))
        let before = try await snapshot(crm, ada.id)
        let sequence = try await store.read { try $0.currentSequence() }

        store.failOnEventID = "e3"
        let error = await captureError {
            try await crm.ingest([
                event("e1", at: start, .email("ada@example.com")), order("o1", at: start, .email("bob@example.com")),
                order("o0", at: start, .email("ada@example.com"), status: .cancelled), event("e2", at: start, .email("ada@example.com"), .phone("+14155550123")),
                event("e3", at: start, .email("ada@example.com")),
            ])
        }
        #expect(error == .storage("injected failure"))
        #expect(try await snapshot(crm, ada.id) == before)
        #expect(try await crm.customerCount() == 1)
        #expect(try await crm.findCustomer(.email("bob@example.com")) == nil)
        #expect(try await crm.findCustomer(.phone("+14155550123")) == nil)
        #expect(try await store.read { try $0.currentSequence() } == sequence)
    }

    @Test func batchesHaveALimit() async throws {
        let (crm, _) = try makeEngine()
        let items = (0...RapportEngine.maxBatchSize).map { event("e\($0)", at: start, .anonymousID("d")) }
        await expectError(.invalid("items", "a batch holds at most 10000 items, got 10001")) { try await crm.ingest(items) }
    }
}

/// A store that fails in the middle of a write when it inserts a chosen event, to test rollback.
final class FailingStore: Store, @unchecked Sendable {
    let base: any Store
    nonisolated(unsafe) var failOnEventID: String?
    nonisolated(unsafe) var failOnJobKey: String?
    nonisolated(unsafe) var failOnCustomerUpdate = false
    nonisolated(unsafe) var failOnCustomerRead = false
    /// Runs on the base store after a write failed, before the failure reaches the caller: another writer's commit
    /// between the two.
    nonisolated(unsafe) var afterFailedWrite: (@Sendable (any Store) async throws -> Void)?

    /// How many of the next reads fail.
    nonisolated(unsafe) var failingReads = 0
    /// A failed write also cancels the task that made it (as a server's shutdown would, meanwhile).
    nonisolated(unsafe) var cancelOnFailedWrite = false

    init(base: any Store) { self.base = base }

    func read<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T {
        if failingReads > 0 {
            failingReads -= 1
            throw FailingWriter.InjectedFailure()
        }
        return try await base.read(body)
    }

    func write<T: Sendable>(_ body: @Sendable (any StoreWriter) throws -> T) async throws -> T {
        let failOn = failOnEventID
        let failOnJob = failOnJobKey
        let failOnUpdate = failOnCustomerUpdate
        let failOnRead = failOnCustomerRead
        do {
            return try await base.write { tx in
                try body(FailingWriter(base: tx, failOnEventID: failOn, failOnJobKey: failOnJob, failOnCustomerUpdate: failOnUpdate, failOnCustomerRead: failOnRead))
            }
        } catch {
            if cancelOnFailedWrite { withUnsafeCurrentTask { $0?.cancel() } }
            if let hook = afterFailedWrite {
                afterFailedWrite = nil
                try await hook(base)
            }
            throw error
        }
    }
}

/// Forwards every call and throws on one event insert, when one job is taken to run, or on customer updates or reads.
struct FailingWriter: StoreWriter {
    let base: any StoreWriter
    let failOnEventID: String?
    var failOnJobKey: String? = nil
    var failOnCustomerUpdate = false
    var failOnCustomerRead = false

    func insertEvent(_ record: EventRecord) throws {
        if record.event.id == failOnEventID { throw InjectedFailure() }
        try base.insertEvent(record)
    }

    struct InjectedFailure: Error, CustomStringConvertible { var description: String { "injected failure" } }

    func currentSequence() throws -> Int64 { try base.currentSequence() }
    func customer(_ id: CustomerID) throws -> CustomerRecord? {
        if failOnCustomerRead { throw InjectedFailure() }
        return try base.customer(id)
    }
    func customers(_ query: CustomerQuery) throws -> [CustomerRecord] { try base.customers(query) }
    func customerCount() throws -> Int { try base.customerCount() }
    func stats(of customer: CustomerID) throws -> CustomerStats? { try base.stats(of: customer) }
    func identity(_ identity: Identity) throws -> IdentityRecord? { try base.identity(identity) }
    func identities(of customer: CustomerID) throws -> [IdentityRecord] { try base.identities(of: customer) }
    func event(id: String) throws -> EventRecord? { try base.event(id: id) }
    func events(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [EventRecord] { try base.events(of: customer, before: before, limit: limit) }
    func eventSummary(of customer: CustomerID) throws -> EventSummary { try base.eventSummary(of: customer) }
    func order(_ id: OrderID) throws -> OrderRecord? { try base.order(id) }
    func order(key: OrderKey) throws -> OrderRecord? { try base.order(key: key) }
    func orders(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [OrderRecord] { try base.orders(of: customer, before: before, limit: limit) }
    func interaction(_ id: InteractionID) throws -> InteractionRecord? { try base.interaction(id) }
    func interactions(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [InteractionRecord] {
        try base.interactions(of: customer, before: before, limit: limit)
    }
    func consents(of customer: CustomerID) throws -> [ConsentRecord] { try base.consents(of: customer) }
    func merge(_ id: MergeID) throws -> MergeRecord? { try base.merge(id) }
    func merges(into survivor: CustomerID) throws -> [MergeRecord] { try base.merges(into: survivor) }
    func merges(absorbed: CustomerID) throws -> [MergeRecord] { try base.merges(absorbed: absorbed) }
    func profileChanges(of customer: CustomerID, after sequence: Int64) throws -> [ProfileChange] { try base.profileChanges(of: customer, after: sequence) }
    func attributeDefinitions() throws -> [AttributeDefinition] { try base.attributeDefinitions() }
    func allocateSequence(_ count: Int) throws -> Int64 { try base.allocateSequence(count) }
    func insertCustomer(_ record: CustomerRecord) throws { try base.insertCustomer(record) }
    func updateCustomer(_ record: CustomerRecord) throws {
        if failOnCustomerUpdate { throw InjectedFailure() }
        try base.updateCustomer(record)
    }
    func deleteCustomer(_ id: CustomerID) throws { try base.deleteCustomer(id) }
    func putStats(_ stats: CustomerStats) throws { try base.putStats(stats) }
    func insertIdentity(_ record: IdentityRecord) throws { try base.insertIdentity(record) }
    func deleteIdentity(_ identity: Identity) throws { try base.deleteIdentity(identity) }
    func insertOrder(_ record: OrderRecord) throws { try base.insertOrder(record) }
    func updateOrder(_ record: OrderRecord) throws { try base.updateOrder(record) }
    func insertInteraction(_ record: InteractionRecord) throws { try base.insertInteraction(record) }
    func insertConsent(_ record: ConsentRecord) throws { try base.insertConsent(record) }
    func reassignAll(from: CustomerID, to: CustomerID) throws { try base.reassignAll(from: from, to: to) }
    func reassign(owner: CustomerID, homes: Set<CustomerID>, to: CustomerID) throws { try base.reassign(owner: owner, homes: homes, to: to) }
    func setOwner(ofEvent id: String, to customer: CustomerID) throws { try base.setOwner(ofEvent: id, to: customer) }
    func setIdentities(ofEvent id: String, to identities: [Identity]) throws { try base.setIdentities(ofEvent: id, to: identities) }
    func redactIdempotencyRecords(mentioning text: String, createdIn range: ClosedRange<Timestamp>?) throws {
        try base.redactIdempotencyRecords(mentioning: text, createdIn: range)
    }
    func setOwner(ofOrder id: OrderID, to customer: CustomerID) throws { try base.setOwner(ofOrder: id, to: customer) }
    func insertMerge(_ record: MergeRecord) throws { try base.insertMerge(record) }
    func updateMerge(_ record: MergeRecord) throws { try base.updateMerge(record) }
    func appendProfileChange(_ change: ProfileChange) throws { try base.appendProfileChange(change) }
    func updateProfileChange(_ change: ProfileChange) throws { try base.updateProfileChange(change) }
    func putAttributeDefinition(_ definition: AttributeDefinition) throws { try base.putAttributeDefinition(definition) }
    func apiKey(_ id: APIKeyID) throws -> APIKey? { try base.apiKey(id) }
    func apiKey(secretHash: String) throws -> APIKey? { try base.apiKey(secretHash: secretHash) }
    func apiKeys() throws -> [APIKey] { try base.apiKeys() }
    func idempotencyRecord(_ key: String) throws -> IdempotencyRecord? { try base.idempotencyRecord(key) }
    func changes(after cursor: Int64, limit: Int) throws -> [Change] { try base.changes(after: cursor, limit: limit) }
    func latestChangeCursor() throws -> Int64 { try base.latestChangeCursor() }
    func oldestChangeCursor() throws -> Int64? { try base.oldestChangeCursor() }
    func deleteChanges(before time: Timestamp, limit: Int) throws -> Int { try base.deleteChanges(before: time, limit: limit) }
    func insertAPIKey(_ key: APIKey) throws { try base.insertAPIKey(key) }
    func updateAPIKey(_ key: APIKey) throws { try base.updateAPIKey(key) }
    func insertIdempotencyRecord(_ record: IdempotencyRecord) throws { try base.insertIdempotencyRecord(record) }
    func deleteIdempotencyRecords(before time: Timestamp) throws { try base.deleteIdempotencyRecords(before: time) }
    func appendChange(
        kind: ChangeKind, customerID: CustomerID, otherCustomerID: CustomerID?, mergeID: MergeID?, segmentID: SegmentID?, at: Timestamp
    ) throws -> Int64 {
        try base.appendChange(kind: kind, customerID: customerID, otherCustomerID: otherCustomerID, mergeID: mergeID, segmentID: segmentID, at: at)
    }
}

extension FailingWriter {
    func definitionsVersion() throws -> Int64 { try base.definitionsVersion() }
    func eventTypeDefinitions() throws -> [EventTypeDefinition] { try base.eventTypeDefinitions() }
    func segment(_ id: SegmentID) throws -> Segment? { try base.segment(id) }
    func segment(key: String) throws -> Segment? { try base.segment(key: key) }
    func segments() throws -> [Segment] { try base.segments() }
    func isDynamicMember(segment: SegmentID, customer: CustomerID) throws -> Bool { try base.isDynamicMember(segment: segment, customer: customer) }
    func isListMember(segment: SegmentID, customer: CustomerID) throws -> Bool { try base.isListMember(segment: segment, customer: customer) }
    func memberships(of customer: CustomerID) throws -> [SegmentMembership] { try base.memberships(of: customer) }
    func segmentIDs(of customer: CustomerID) throws -> Set<SegmentID> { try base.segmentIDs(of: customer) }
    func members(of segment: SegmentID, after: CustomerID?, limit: Int) throws -> [SegmentMembership] { try base.members(of: segment, after: after, limit: limit) }
    func listMemberships(ownedBy customer: CustomerID) throws -> [ListMembershipRecord] { try base.listMemberships(ownedBy: customer) }
    func rule(_ id: RuleID) throws -> Rule? { try base.rule(id) }
    func rules() throws -> [Rule] { try base.rules() }
    func ruleDefinition(_ id: RuleID, version: Int64) throws -> RuleDefinition? { try base.ruleDefinition(id, version: version) }
    func run(_ id: RunID) throws -> RuleRun? { try base.run(id) }
    func runs(_ query: RunQuery) throws -> [RuleRun] { try base.runs(query) }
    func waitingRun(rule: RuleID, customer: CustomerID) throws -> RuleRun? { try base.waitingRun(rule: rule, customer: customer) }
    func latestRun(rule: RuleID, customer: CustomerID) throws -> RuleRun? { try base.latestRun(rule: rule, customer: customer) }
    func ruleCounter(rule: RuleID, customer: CustomerID) throws -> RuleCounter? { try base.ruleCounter(rule: rule, customer: customer) }
    func ruleFiredCount(rule: RuleID, day: Int64) throws -> Int64 { try base.ruleFiredCount(rule: rule, day: day) }
    func job(_ key: String) throws -> ScheduledJob? { try base.job(key) }
    func dueJobs(at time: Timestamp, limit: Int) throws -> [ScheduledJob] { try base.dueJobs(at: time, limit: limit) }
    func nextJobDue() throws -> Timestamp? { try base.nextJobDue() }
    func outboxEntry(_ id: OutboxEntryID) throws -> OutboxEntry? { try base.outboxEntry(id) }
    func outboxEntry(idempotencyKey: String) throws -> OutboxEntry? { try base.outboxEntry(idempotencyKey: idempotencyKey) }
    func outboxEntries(_ query: OutboxQuery) throws -> [OutboxEntry] { try base.outboxEntries(query) }
    func deliverableOutboxEntries(at time: Timestamp, after: Int64, limit: Int) throws -> [OutboxEntry] {
        try base.deliverableOutboxEntries(at: time, after: after, limit: limit)
    }
    func firstOpenOutboxSequence(of customer: CustomerID) throws -> Int64? { try base.firstOpenOutboxSequence(of: customer) }
    func bumpDefinitionsVersion() throws { try base.bumpDefinitionsVersion() }
    func putEventTypeDefinition(_ definition: EventTypeDefinition) throws { try base.putEventTypeDefinition(definition) }
    func insertSegment(_ segment: Segment) throws { try base.insertSegment(segment) }
    func updateSegment(_ segment: Segment) throws { try base.updateSegment(segment) }
    func deleteSegment(_ id: SegmentID) throws { try base.deleteSegment(id) }
    func insertDynamicMembership(_ membership: SegmentMembership) throws { try base.insertDynamicMembership(membership) }
    func deleteDynamicMembership(segment: SegmentID, customer: CustomerID) throws { try base.deleteDynamicMembership(segment: segment, customer: customer) }
    func deleteDynamicMemberships(of customer: CustomerID) throws { try base.deleteDynamicMemberships(of: customer) }
    func insertListMembership(_ record: ListMembershipRecord) throws { try base.insertListMembership(record) }
    func deleteListMemberships(segment: SegmentID, customer: CustomerID) throws -> Int { try base.deleteListMemberships(segment: segment, customer: customer) }
    func insertRule(_ rule: Rule) throws { try base.insertRule(rule) }
    func updateRule(_ rule: Rule) throws { try base.updateRule(rule) }
    func deleteRule(_ id: RuleID) throws { try base.deleteRule(id) }
    func insertRuleDefinition(_ definition: RuleDefinition, rule: RuleID, version: Int64) throws { try base.insertRuleDefinition(definition, rule: rule, version: version) }
    func insertRun(_ run: RuleRun) throws { try base.insertRun(run) }
    func updateRun(_ run: RuleRun) throws { try base.updateRun(run) }
    func putRuleCounter(_ counter: RuleCounter) throws { try base.putRuleCounter(counter) }
    func incrementRuleFiredCount(rule: RuleID, day: Int64) throws { try base.incrementRuleFiredCount(rule: rule, day: day) }
    func putJob(_ job: ScheduledJob) throws { try base.putJob(job) }
    func deleteJob(_ key: String) throws {
        // "build:*" fails every key starting with "build:".
        if let failing = failOnJobKey, key == failing || (failing.hasSuffix("*") && key.hasPrefix(failing.dropLast())) { throw InjectedFailure() }
        try base.deleteJob(key)
    }
    func deleteJobs(keyPrefix prefix: String) throws { try base.deleteJobs(keyPrefix: prefix) }
    func insertOutboxEntry(_ entry: OutboxEntry) throws { try base.insertOutboxEntry(entry) }
    func updateOutboxEntry(_ entry: OutboxEntry) throws { try base.updateOutboxEntry(entry) }
    func deleteRuns(endedBefore time: Timestamp) throws { try base.deleteRuns(endedBefore: time) }
    func deleteOutboxEntries(closedBefore time: Timestamp) throws { try base.deleteOutboxEntries(closedBefore: time) }
}
