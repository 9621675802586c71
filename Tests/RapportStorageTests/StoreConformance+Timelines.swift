import RapportCore
import Testing

extension StoreConformance {
    /// Walks a newest-first listing page by page, each page starting strictly before the last record of the one
    /// before, and checks it against `expected`: every record once, in order, and `before` excluding its own record.
    func checkTimeline<R: Equatable & Sendable>(
        expected: [R], position: (R) -> TimelinePosition, list: (TimelinePosition?, Int) async throws -> [R]
    ) async throws {
        #expect(try await list(nil, 1000) == expected)
        #expect(try await list(nil, 0).isEmpty)
        for pageSize in [1, 2, 3] {
            var seen: [R] = []
            var before: TimelinePosition?
            // Bounded, so that a backend whose `before` is not exclusive fails instead of looping forever.
            for _ in 0...expected.count {
                let page = try await list(before, pageSize)
                #expect(page.count <= pageSize)
                guard let last = page.last else { break }
                seen += page
                before = position(last)
            }
            #expect(seen == expected, "page size \(pageSize)")
        }
        for (index, record) in expected.enumerated() {
            #expect(try await list(position(record), 1000) == Array(expected[(index + 1)...]))
        }
    }

    @Test(arguments: Backend.allCases)
    func eventsRoundTripAndRejectDuplicateIDs(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let event = F.event("e1", owner: "a", home: "b", at: 3, sequence: 1)
        try await store.write { try $0.insertEvent(event) }
        #expect(try await store.read { try $0.event(id: "e1") } == event)
        await #expect(throws: RapportError.alreadyExists(entity: "event", id: "e1")) {
            try await store.write { try $0.insertEvent(F.event("e1", owner: "c", at: 9, sequence: 2)) }
        }
        #expect(try await store.read { try $0.event(id: "e1") } == event)
    }

    @Test(arguments: Backend.allCases)
    func eventsAreListedNewestFirstWithTiesBrokenBySequence(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        // Inserted out of time order; three events share minute 5.
        let events = [
            F.event("e1", owner: "a", at: 5, sequence: 4), F.event("e2", owner: "a", at: 1, sequence: 2),
            F.event("e3", owner: "a", at: 5, sequence: 9), F.event("e4", owner: "a", at: 7, sequence: 3),
            F.event("e5", owner: "a", at: 5, sequence: 6), F.event("x1", owner: "b", at: 6, sequence: 5),
        ]
        try await store.write { tx in for event in events { try tx.insertEvent(event) } }
        let expected = ["e4", "e3", "e5", "e1", "e2"].map { id in events.first { $0.event.id == id }! }
        try await checkTimeline(expected: expected, position: { TimelinePosition(time: $0.event.occurredAt, sequence: $0.sequence) }) { before, limit in
            try await store.read { try $0.events(of: F.customerID("a"), before: before, limit: limit) }
        }
        #expect(try await store.read { try $0.eventSummary(of: F.customerID("a")) } == EventSummary(count: 5, lastOccurredAt: F.time(7)))
        #expect(try await store.read { try $0.eventSummary(of: F.customerID("b")) } == EventSummary(count: 1, lastOccurredAt: F.time(6)))
        // An event a rule emitted (a run's id, no identity) is on the timeline but not in the summary.
        var emitted = F.event("run_1.0", owner: "a", at: 9, sequence: 11)
        emitted.event.identities = []
        try await store.write { [emitted] in try $0.insertEvent(emitted) }
        #expect(try await store.read { try $0.events(of: F.customerID("a"), before: nil, limit: 1).first?.event.id } == "run_1.0")
        #expect(try await store.read { try $0.eventSummary(of: F.customerID("a")) } == EventSummary(count: 5, lastOccurredAt: F.time(7)))
    }

    @Test(arguments: Backend.allCases)
    func ordersRoundTripAndAreUniqueByIDAndByKey(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let order = F.order("1", key: "W-1", owner: "a", home: "b", at: 2, sequence: 1)
        try await store.write { try $0.insertOrder(order) }
        #expect(try await store.read { try $0.order(F.orderID("1")) } == order)
        #expect(try await store.read { try $0.order(key: OrderKey(source: "web", externalID: "W-1")) } == order)
        #expect(try await store.read { try $0.order(key: OrderKey(source: "app", externalID: "W-1")) } == nil)

        await #expect(throws: RapportError.alreadyExists(entity: "order", id: "ord_1")) {
            try await store.write { try $0.insertOrder(F.order("1", key: "W-2", owner: "a", at: 3, sequence: 2)) }
        }
        await #expect(throws: RapportError.alreadyExists(entity: "order", id: "web/W-1")) {
            try await store.write { try $0.insertOrder(F.order("2", key: "W-1", owner: "a", at: 3, sequence: 3)) }
        }
        #expect(try await store.read { try $0.order(F.orderID("2")) } == nil)
    }

    @Test(arguments: Backend.allCases)
    func updateOrderReplacesTheOrderWithTheSameID(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try tx.insertOrder(F.order("1", key: "W-1", owner: "a", at: 2, sequence: 1))
            try tx.insertOrder(F.order("2", key: "W-2", owner: "a", at: 4, sequence: 2))
        }
        // New status, new key, moved later in the timeline and to another owner.
        let changed = {
            var order = F.order("1", key: "W-9", owner: "b", home: "a", at: 8, sequence: 1, status: .refunded)
            order.order.lines.removeLast()
            return order
        }()
        try await store.write { try $0.updateOrder(changed) }
        #expect(try await store.read { try $0.order(F.orderID("1")) } == changed)
        #expect(try await store.read { try $0.order(key: OrderKey(source: "web", externalID: "W-9")) } == changed)
        #expect(try await store.read { try $0.order(key: OrderKey(source: "web", externalID: "W-1")) } == nil)
        #expect(try await store.read { try $0.orders(of: F.customerID("a"), before: nil, limit: 10) }.map(\.order.id.rawValue) == ["ord_2"])
        #expect(try await store.read { try $0.orders(of: F.customerID("b"), before: nil, limit: 10) } == [changed])

        await #expect(throws: RapportError.notFound(entity: "order", id: "ord_3")) {
            try await store.write { try $0.updateOrder(F.order("3", owner: "a", at: 1, sequence: 3)) }
        }
        await #expect(throws: RapportError.alreadyExists(entity: "order", id: "web/W-2")) {
            try await store.write { try $0.updateOrder(F.order("1", key: "W-2", owner: "b", at: 8, sequence: 1)) }
        }
        #expect(try await store.read { try $0.order(F.orderID("1")) } == changed)
    }

    @Test(arguments: Backend.allCases)
    func ordersAreListedNewestFirstWithTiesBrokenBySequence(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let orders = [
            F.order("1", owner: "a", at: 3, sequence: 7), F.order("2", owner: "a", at: 3, sequence: 2),
            F.order("3", owner: "a", at: 9, sequence: 1), F.order("4", owner: "a", at: 0, sequence: 8),
            F.order("5", owner: "b", at: 4, sequence: 3), F.order("6", owner: "a", home: "b", at: 3, sequence: 5),
        ]
        try await store.write { tx in for order in orders { try tx.insertOrder(order) } }
        let expected = ["3", "1", "6", "2", "4"].map { name in orders.first { $0.order.id == F.orderID(name) }! }
        try await checkTimeline(expected: expected, position: { TimelinePosition(time: $0.order.placedAt, sequence: $0.sequence) }) { before, limit in
            try await store.read { try $0.orders(of: F.customerID("a"), before: before, limit: limit) }
        }
    }

    @Test(arguments: Backend.allCases)
    func interactionsRoundTripAndAreListedNewestFirst(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let interactions = [
            F.interaction("1", owner: "a", home: "b", at: 4, sequence: 3), F.interaction("2", owner: "a", at: 4, sequence: 9),
            F.interaction("3", owner: "a", at: 1, sequence: 10), F.interaction("4", owner: "b", at: 2, sequence: 4),
        ]
        try await store.write { tx in for interaction in interactions { try tx.insertInteraction(interaction) } }
        #expect(try await store.read { try $0.interaction(F.interactionID("1")) } == interactions[0])
        #expect(try await store.read { try $0.interaction(F.interactionID("9")) } == nil)
        await #expect(throws: RapportError.alreadyExists(entity: "interaction", id: "int_1")) {
            try await store.write { try $0.insertInteraction(F.interaction("1", owner: "c", at: 0, sequence: 11)) }
        }
        let expected = [interactions[1], interactions[0], interactions[2]]
        try await checkTimeline(expected: expected, position: { TimelinePosition(time: $0.interaction.occurredAt, sequence: $0.sequence) }) { before, limit in
            try await store.read { try $0.interactions(of: F.customerID("a"), before: before, limit: limit) }
        }
    }

    @Test(arguments: Backend.allCases)
    func consentsAreListedOldestFirstByTimeThenSequence(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let consents = [
            F.consent("1", owner: "a", at: 5, sequence: 8, status: .revoked), F.consent("2", owner: "a", home: "b", at: 2, sequence: 9),
            F.consent("3", owner: "a", at: 5, sequence: 3, status: .denied), F.consent("4", owner: "b", at: 1, sequence: 1),
        ]
        try await store.write { tx in for consent in consents { try tx.insertConsent(consent) } }
        #expect(try await store.read { try $0.consents(of: F.customerID("a")) } == [consents[1], consents[2], consents[0]])
        #expect(try await store.read { try $0.consents(of: F.customerID("b")) } == [consents[3]])
        await #expect(throws: RapportError.alreadyExists(entity: "consent", id: "cns_2")) {
            try await store.write { try $0.insertConsent(F.consent("2", owner: "a", at: 7, sequence: 12)) }
        }
        #expect(try await store.read { try $0.consents(of: F.customerID("a")) }.count == 3)
    }
}
