import RapportCore
import Testing

extension StoreConformance {
    static let transactionUniverse = Universe(
        customers: ["a", "b", "c", "n"].map(F.customerID), eventIDs: ["e-aa", "e-ab", "e-new"], orderIDs: ["aa", "ab", "new"].map(F.orderID),
        orderKeys: ["aa", "new"].map { OrderKey(source: "web", externalID: $0) }, interactionIDs: ["aa", "new"].map(F.interactionID),
        identities: ["aa@example.com", "n@example.com"].map { Identity(kind: .email, value: $0) }, mergeIDs: ["1", "2"].map(F.mergeID),
        apiKeyIDs: ["a", "n"].map(F.apiKeyID), secretHashes: ["hash-a", "rotated", "hash-n"], requestKeys: ["r1", "r2", "new"]
    )

    /// A store with a bit of everything, and its full snapshot.
    func makeBaseline(_ backend: Backend) async throws -> (any Store, [String: Reading]) {
        let store = try backend.makeStore()
        try await store.write { tx in
            _ = try tx.allocateSequence(200)
            try tx.insertCustomer(F.customer("a", tags: ["vip"]))
            try tx.insertCustomer(F.customer("b"))
            try insertHoldings(owner: "a", homes: ["a", "b"], base: 100, into: tx)
            try tx.putStats(CustomerStats(customerID: F.customerID("a"), eventCount: 2))
            try tx.insertMerge(F.merge("1", survivor: "a", absorbed: "b", sequence: 50))
            try tx.appendProfileChange(F.profileChange("a", sequence: 51))
            try tx.putAttributeDefinition(AttributeDefinition(key: "vip", type: .bool))
            try tx.insertAPIKey(F.apiKey("a"))
            try tx.insertIdempotencyRecord(F.request("r1", at: 1))
            try tx.insertIdempotencyRecord(F.request("r2", at: 2))
            _ = try tx.appendChange(kind: .customerCreated, customerID: F.customerID("a"), otherCustomerID: nil, mergeID: nil, at: F.time(1))
        }
        let snapshot = try await store.read { try Self.transactionUniverse.snapshot($0) }
        return (store, snapshot)
    }

    /// Changes something of every kind.
    func writeEverything(_ tx: any StoreWriter) throws {
        let sequence = try tx.allocateSequence(10)
        try tx.insertCustomer(F.customer("n"))
        var ada = F.customer("a", tags: ["changed"])
        ada.version = 7
        try tx.updateCustomer(ada)
        try tx.putStats(CustomerStats(customerID: F.customerID("a"), eventCount: 99))
        try tx.insertIdentity(F.identity("n@example.com", owner: "n"))
        try tx.deleteIdentity(Identity(kind: .email, value: "aa@example.com"))
        try tx.insertEvent(F.event("e-new", owner: "a", at: 1, sequence: sequence))
        try tx.insertOrder(F.order("new", owner: "a", at: 1, sequence: sequence + 1))
        try tx.updateOrder(F.order("ab", owner: "c", at: 1, sequence: sequence + 2, status: .cancelled))
        try tx.insertInteraction(F.interaction("new", owner: "a", at: 1, sequence: sequence + 3))
        try tx.insertConsent(F.consent("new", owner: "a", at: 1, sequence: sequence + 4))
        try tx.setOwner(ofEvent: "e-aa", to: F.customerID("c"))
        try tx.reassign(owner: F.customerID("a"), homes: [F.customerID("b")], to: F.customerID("b"))
        try tx.reassignAll(from: F.customerID("a"), to: F.customerID("c"))
        try tx.insertMerge(F.merge("2", survivor: "a", absorbed: "c", sequence: sequence + 5))
        var undone = F.merge("1", survivor: "a", absorbed: "b", sequence: 50)
        undone.unmergedAt = F.time(9)
        try tx.updateMerge(undone)
        try tx.appendProfileChange(F.profileChange("a", sequence: sequence + 6))
        try tx.putAttributeDefinition(AttributeDefinition(key: "vip", type: .string))
        try tx.putAttributeDefinition(AttributeDefinition(key: "zone", type: .string))
        try tx.deleteCustomer(F.customerID("b"))
        try tx.insertAPIKey(F.apiKey("n"))
        try tx.updateAPIKey(F.apiKey("a", hash: "rotated", revoked: 3))
        try tx.deleteIdempotencyRecords(before: F.time(2))
        try tx.insertIdempotencyRecord(F.request("new", at: 5))
        _ = try tx.appendChange(kind: .customerDeleted, customerID: F.customerID("b"), otherCustomerID: nil, mergeID: nil, at: F.time(5))
    }

    @Test(arguments: Backend.allCases)
    func aThrowingWriteChangesNothingAndRethrowsItsError(_ backend: Backend) async throws {
        let (store, before) = try await makeBaseline(backend)
        await #expect(throws: Abort()) {
            try await store.write { tx in
                try writeEverything(tx)
                throw Abort()
            }
        }
        expectSameReads(before, try await store.read { try Self.transactionUniverse.snapshot($0) }, "after a custom error")

        // A storage error that the body does not catch rolls back the earlier writes too.
        await #expect(throws: RapportError.alreadyExists(entity: "customer", id: "cus_a")) {
            try await store.write { tx in
                try writeEverything(tx)
                try tx.insertCustomer(F.customer("a"))
            }
        }
        expectSameReads(before, try await store.read { try Self.transactionUniverse.snapshot($0) }, "after a duplicate insert")
    }

    @Test(arguments: Backend.allCases)
    func aWriteSeesItsOwnChangesAndCommitsThemAll(_ backend: Backend) async throws {
        let (store, _) = try await makeBaseline(backend)
        let inside = try await store.write { tx in
            try writeEverything(tx)
            return try Self.transactionUniverse.snapshot(tx)
        }
        let after = try await store.read { try Self.transactionUniverse.snapshot($0) }
        expectSameReads(inside, after, "after commit")
        #expect(after["currentSequence"] == .number(210))
        #expect(after["customer(cus_b)"] == .customer(nil))
    }

    @Test(arguments: Backend.allCases)
    func aFailedOperationCaughtByTheBodyLeavesTheTransactionUsable(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { try $0.insertCustomer(F.customer("a")) }
        let caught = try await store.write { tx -> RapportError? in
            var caught: RapportError?
            do {
                try tx.insertCustomer(F.customer("a", created: 5))
            } catch let error as RapportError {
                caught = error
            }
            try tx.insertCustomer(F.customer("b"))
            return caught
        }
        #expect(caught == .alreadyExists(entity: "customer", id: "cus_a"))
        #expect(try await store.read { try $0.customer(F.customerID("a")) } == F.customer("a"))
        #expect(try await store.read { try $0.customer(F.customerID("b")) } == F.customer("b"))
    }

    @Test(arguments: Backend.allCases)
    func aQuickReadSeesWhatAReadSeesAndRethrowsItsError(_ backend: Backend) async throws {
        let (store, before) = try await makeBaseline(backend)
        expectSameReads(before, try await store.quickRead { try Self.transactionUniverse.snapshot($0) }, "quick read")
        await #expect(throws: Abort()) {
            try await store.quickRead { _ in throw Abort() }
        }
        try await store.write { try writeEverything($0) }
        let after = try await store.read { try Self.transactionUniverse.snapshot($0) }
        expectSameReads(after, try await store.quickRead { try Self.transactionUniverse.snapshot($0) }, "quick read after a write")
        #expect(after["currentSequence"] == .number(210))
    }
}
