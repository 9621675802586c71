import RapportCore
import Testing

/// Everything one customer can own, for the cascade and reassignment tests.
struct Holdings: Equatable, Sendable {
    var identities: [IdentityRecord]
    var events: [EventRecord]
    var orders: [OrderRecord]
    var interactions: [InteractionRecord]
    var consents: [ConsentRecord]

    init(of customer: CustomerID, in tx: any StoreReader) throws {
        identities = try tx.identities(of: customer)
        events = try tx.events(of: customer, before: nil, limit: 1000)
        orders = try tx.orders(of: customer, before: nil, limit: 1000)
        interactions = try tx.interactions(of: customer, before: nil, limit: 1000)
        consents = try tx.consents(of: customer)
    }

    var isEmpty: Bool { identities.isEmpty && events.isEmpty && orders.isEmpty && interactions.isEmpty && consents.isEmpty }
}

extension StoreConformance {
    /// Records of every kind owned by `owner`, one for each home in `homes`; sequences start at `base`.
    func insertHoldings(owner: String, homes: [String], base: Int64, into tx: any StoreWriter) throws {
        for (offset, home) in homes.enumerated() {
            let tag = "\(owner)\(home)"
            let sequence = base + Int64(offset) * 10
            try tx.insertIdentity(F.identity("\(tag)@example.com", owner: owner, home: home))
            try tx.insertEvent(F.event("e-\(tag)", owner: owner, home: home, at: sequence, sequence: sequence))
            try tx.insertOrder(F.order(tag, owner: owner, home: home, at: sequence, sequence: sequence + 1))
            try tx.insertInteraction(F.interaction(tag, owner: owner, home: home, at: sequence, sequence: sequence + 2))
            try tx.insertConsent(F.consent(tag, owner: owner, home: home, at: sequence, sequence: sequence + 3))
        }
    }

    @Test(arguments: Backend.allCases)
    func deleteCustomerRemovesEverythingItOwnsNow(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try tx.insertCustomer(F.customer("a"))
            try tx.insertCustomer(F.customer("b"))
            try insertHoldings(owner: "a", homes: ["a", "b"], base: 100, into: tx)
            try insertHoldings(owner: "b", homes: ["a", "b"], base: 200, into: tx)
            try tx.putStats(CustomerStats(customerID: F.customerID("a"), eventCount: 2))
            try tx.putStats(CustomerStats(customerID: F.customerID("b"), eventCount: 2))
            try tx.appendProfileChange(F.profileChange("a", sequence: 1))
            try tx.appendProfileChange(F.profileChange("b", sequence: 2))
            try tx.insertMerge(F.merge("1", survivor: "a", absorbed: "x", sequence: 3))
            try tx.insertMerge(F.merge("2", survivor: "y", absorbed: "a", sequence: 4))
            try tx.insertMerge(F.merge("3", survivor: "b", absorbed: "z", sequence: 5))
        }
        let holdingsOfB = try await store.read { try Holdings(of: F.customerID("b"), in: $0) }

        try await store.write { try $0.deleteCustomer(F.customerID("a")) }

        try await store.read { tx throws in
            #expect(try tx.customer(F.customerID("a")) == nil)
            #expect(try Holdings(of: F.customerID("a"), in: tx).isEmpty)
            // Records a owned are gone, even those whose home is b; records b owns stay, even those from a.
            #expect(try tx.identity(Identity(kind: .email, value: "ab@example.com")) == nil)
            #expect(try tx.event(id: "e-ab") == nil)
            #expect(try tx.order(F.orderID("aa")) == nil)
            #expect(try tx.order(key: OrderKey(source: "web", externalID: "ab")) == nil)
            #expect(try tx.interaction(F.interactionID("aa")) == nil)
            #expect(try Holdings(of: F.customerID("b"), in: tx) == holdingsOfB)
            #expect(try tx.eventSummary(of: F.customerID("a")) == EventSummary(count: 0, lastOccurredAt: nil))
            #expect(try tx.stats(of: F.customerID("a")) == nil)
            #expect(try tx.stats(of: F.customerID("b")) != nil)
            #expect(try tx.profileChanges(of: F.customerID("a"), after: 0).isEmpty)
            #expect(try tx.profileChanges(of: F.customerID("b"), after: 0).count == 1)
            #expect(try tx.merge(F.mergeID("1")) == nil)
            #expect(try tx.merge(F.mergeID("2")) == nil)
            #expect(try tx.merges(into: F.customerID("a")).isEmpty)
            #expect(try tx.merges(into: F.customerID("y")).isEmpty)
            #expect(try tx.merges(into: F.customerID("b")).map(\.id) == [F.mergeID("3")])
            #expect(try tx.merges(absorbed: F.customerID("a")).isEmpty)
            #expect(try tx.merges(absorbed: F.customerID("x")).isEmpty)
            #expect(try tx.merges(absorbed: F.customerID("z")).map(\.id) == [F.mergeID("3")])
            #expect(try tx.customer(F.customerID("b")) != nil)
        }
        // The deleted records' keys are free again.
        try await store.write { tx in
            try tx.insertOrder(F.order("aa", owner: "b", at: 1, sequence: 300))
            try tx.insertEvent(F.event("e-ab", owner: "b", at: 1, sequence: 301))
            try tx.insertIdentity(F.identity("ab@example.com", owner: "b"))
        }
    }

    /// `holdings` as they read once `to` owns them.
    func owned(by to: String, _ holdings: Holdings) -> Holdings {
        var moved = holdings
        let id = F.customerID(to)
        for index in moved.identities.indices { moved.identities[index].customerID = id }
        for index in moved.events.indices { moved.events[index].event.customerID = id }
        for index in moved.orders.indices { moved.orders[index].order.customerID = id }
        for index in moved.interactions.indices { moved.interactions[index].interaction.customerID = id }
        for index in moved.consents.indices { moved.consents[index].consent.customerID = id }
        return moved
    }

    @Test(arguments: Backend.allCases)
    func reassignAllMovesEverythingAndKeepsHomes(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try insertHoldings(owner: "a", homes: ["a", "c"], base: 100, into: tx)
            try insertHoldings(owner: "b", homes: ["b"], base: 105, into: tx)
        }
        let (ofA, ofB) = try await store.read { (try Holdings(of: F.customerID("a"), in: $0), try Holdings(of: F.customerID("b"), in: $0)) }

        try await store.write { try $0.reassignAll(from: F.customerID("a"), to: F.customerID("b")) }

        let (nowA, nowB) = try await store.read { (try Holdings(of: F.customerID("a"), in: $0), try Holdings(of: F.customerID("b"), in: $0)) }
        #expect(nowA.isEmpty)
        let moved = owned(by: "b", ofA)
        #expect(nowB.identities == (moved.identities + ofB.identities).sorted { $0.identity.key < $1.identity.key })
        let events = (moved.events + ofB.events).sorted { ($0.event.occurredAt, $0.sequence) > ($1.event.occurredAt, $1.sequence) }
        #expect(nowB.events == events)
        #expect(nowB.orders == (moved.orders + ofB.orders).sorted { ($0.order.placedAt, $0.sequence) > ($1.order.placedAt, $1.sequence) })
        #expect(
            nowB.interactions == (moved.interactions + ofB.interactions).sorted { ($0.interaction.occurredAt, $0.sequence) > ($1.interaction.occurredAt, $1.sequence) })
        #expect(nowB.consents == (moved.consents + ofB.consents).sorted { ($0.consent.occurredAt, $0.sequence) < ($1.consent.occurredAt, $1.sequence) })
        #expect(try await store.read { try $0.event(id: "e-ac") }?.event.customerID == F.customerID("b"))
        #expect(try await store.read { try $0.eventSummary(of: F.customerID("b")) }.count == 3)
    }

    @Test(arguments: Backend.allCases)
    func reassignMovesOnlyWhatCameFromTheGivenHomes(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try insertHoldings(owner: "a", homes: ["a", "b", "c"], base: 100, into: tx)
        }
        let before = try await store.read { try Holdings(of: F.customerID("a"), in: $0) }

        try await store.write { try $0.reassign(owner: F.customerID("a"), homes: [], to: F.customerID("d")) }
        #expect(try await store.read { try Holdings(of: F.customerID("a"), in: $0) } == before)

        try await store.write { try $0.reassign(owner: F.customerID("a"), homes: [F.customerID("b"), F.customerID("c"), F.customerID("q")], to: F.customerID("d")) }
        let (nowA, nowD) = try await store.read { (try Holdings(of: F.customerID("a"), in: $0), try Holdings(of: F.customerID("d"), in: $0)) }
        func fromHomes(_ homes: Set<String>, _ holdings: Holdings) -> Holdings {
            let ids = Set(homes.map(F.customerID))
            var kept = holdings
            kept.identities.removeAll { !ids.contains($0.homeCustomerID) }
            kept.events.removeAll { !ids.contains($0.homeCustomerID) }
            kept.orders.removeAll { !ids.contains($0.homeCustomerID) }
            kept.interactions.removeAll { !ids.contains($0.homeCustomerID) }
            kept.consents.removeAll { !ids.contains($0.homeCustomerID) }
            return kept
        }
        #expect(nowA == fromHomes(["a"], before))
        #expect(nowD == owned(by: "d", fromHomes(["b", "c"], before)))
        #expect(nowD.events.count == 2)
    }

    @Test(arguments: Backend.allCases)
    func setOwnerMovesOneEventOrOrder(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try insertHoldings(owner: "a", homes: ["a", "b"], base: 100, into: tx)
        }
        try await store.write { tx in
            try tx.setOwner(ofEvent: "e-ab", to: F.customerID("c"))
            try tx.setOwner(ofOrder: F.orderID("aa"), to: F.customerID("c"))
        }
        try await store.read { tx throws in
            #expect(try tx.events(of: F.customerID("a"), before: nil, limit: 10).map(\.event.id) == ["e-aa"])
            let moved = try tx.events(of: F.customerID("c"), before: nil, limit: 10)
            #expect(moved.map(\.event.id) == ["e-ab"])
            #expect(moved.first?.event.customerID == F.customerID("c"))
            #expect(moved.first?.homeCustomerID == F.customerID("c"))
            #expect(try tx.order(F.orderID("aa"))?.homeCustomerID == F.customerID("c"))
            #expect(try tx.orders(of: F.customerID("a"), before: nil, limit: 10).map(\.order.id) == [F.orderID("ab")])
            #expect(try tx.order(F.orderID("aa"))?.order.customerID == F.customerID("c"))
            #expect(try tx.order(key: OrderKey(source: "web", externalID: "aa"))?.order.customerID == F.customerID("c"))
            #expect(try tx.eventSummary(of: F.customerID("c")).count == 1)
        }
        await #expect(throws: RapportError.notFound(entity: "event", id: "nope")) {
            try await store.write { try $0.setOwner(ofEvent: "nope", to: F.customerID("c")) }
        }
        await #expect(throws: RapportError.notFound(entity: "order", id: "ord_nope")) {
            try await store.write { try $0.setOwner(ofOrder: F.orderID("nope"), to: F.customerID("c")) }
        }
        // An event's identities can be replaced (an erasure takes a person's out); nothing else of it changes.
        let before = try #require(try await store.read { try $0.event(id: "e-ab") })
        let kept = [Identity(kind: .email, value: "kept@example.com")]
        try await store.write { try $0.setIdentities(ofEvent: "e-ab", to: kept) }
        var expected = before
        expected.event.identities = kept
        #expect(try await store.read { try $0.event(id: "e-ab") } == expected)
        try await store.write { try $0.setIdentities(ofEvent: "e-ab", to: []) }
        #expect(try await store.read { try $0.event(id: "e-ab")?.event.identities } == [])
        await #expect(throws: RapportError.notFound(entity: "event", id: "nope")) {
            try await store.write { try $0.setIdentities(ofEvent: "nope", to: []) }
        }
    }

    @Test(arguments: Backend.allCases)
    func mergesRoundTripAndAreListedBySequence(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let late = F.merge("1", survivor: "a", absorbed: "b", sequence: 9)
        let early = F.merge("2", survivor: "a", absorbed: "c", sequence: 4, reason: .sharedIdentity(recordID: "evt-77"), unmerged: 30)
        let elsewhere = F.merge("3", survivor: "d", absorbed: "a", sequence: 5)
        try await store.write { tx in
            try tx.insertMerge(late)
            try tx.insertMerge(early)
            try tx.insertMerge(elsewhere)
        }
        #expect(try await store.read { try $0.merge(late.id) } == late)
        #expect(try await store.read { try $0.merge(early.id) } == early)
        #expect(try await store.read { try $0.merge(F.mergeID("9")) } == nil)
        #expect(try await store.read { try $0.merges(into: F.customerID("a")) } == [early, late])
        #expect(try await store.read { try $0.merges(into: F.customerID("b")) } == [])
        #expect(try await store.read { try $0.merges(absorbed: F.customerID("a")) } == [elsewhere])
        #expect(try await store.read { try $0.merges(absorbed: F.customerID("c")) } == [early])
        #expect(try await store.read { try $0.merges(absorbed: F.customerID("d")) } == [])

        await #expect(throws: RapportError.alreadyExists(entity: "merge", id: "mrg_1")) {
            try await store.write { try $0.insertMerge(F.merge("1", survivor: "x", absorbed: "y", sequence: 11)) }
        }
        let undone = { var merge = late; merge.unmergedAt = F.time(40); return merge }()
        try await store.write { try $0.updateMerge(undone) }
        #expect(try await store.read { try $0.merge(late.id) } == undone)
        #expect(try await store.read { try $0.merges(into: F.customerID("a")) } == [early, undone])
        #expect(try await store.read { try $0.merges(absorbed: F.customerID("b")) } == [undone])
        await #expect(throws: RapportError.notFound(entity: "merge", id: "mrg_9")) {
            try await store.write { try $0.updateMerge(F.merge("9", survivor: "a", absorbed: "b", sequence: 12)) }
        }
    }

    @Test(arguments: Backend.allCases)
    func profileChangesRoundTripBySequence(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let changes = [
            F.profileChange("a", sequence: 5), F.profileChange("a", sequence: 2, fields: [.tags, .lifecycleStage, .attributes]),
            F.profileChange("a", sequence: 9, fields: []), F.profileChange("b", sequence: 3),
        ]
        try await store.write { tx in for change in changes { try tx.appendProfileChange(change) } }
        #expect(try await store.read { try $0.profileChanges(of: F.customerID("a"), after: 0) } == [changes[1], changes[0], changes[2]])
        #expect(try await store.read { try $0.profileChanges(of: F.customerID("a"), after: 2) } == [changes[0], changes[2]])
        #expect(try await store.read { try $0.profileChanges(of: F.customerID("a"), after: 9) } == [])
        #expect(try await store.read { try $0.profileChanges(of: F.customerID("b"), after: 0) } == [changes[3]])

        // A change is rewritten in place, found by its customer and number.
        let rewritten = {
            var change = changes[0]
            change.profile.tags = ["y"]
            change.fields = [.tags]
            change.at = F.time(50)
            return change
        }()
        try await store.write { try $0.updateProfileChange(rewritten) }
        #expect(try await store.read { try $0.profileChanges(of: F.customerID("a"), after: 0) } == [changes[1], rewritten, changes[2]])
        #expect(try await store.read { try $0.profileChanges(of: F.customerID("b"), after: 0) } == [changes[3]])
        let elsewhere = {
            var change = changes[3]
            change.sequence = 5  // b logged no change 5 (a did)
            return change
        }()
        await #expect(throws: RapportError.notFound(entity: "profile change", id: "cus_b/5")) {
            try await store.write { try $0.updateProfileChange(elsewhere) }
        }
        #expect(try await store.read { try $0.profileChanges(of: F.customerID("a"), after: 0) } == [changes[1], rewritten, changes[2]])
    }
}
