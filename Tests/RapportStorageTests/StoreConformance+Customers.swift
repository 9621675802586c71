import RapportCore
import Testing

extension StoreConformance {
    /// Five active customers with ties on creation time, and one merged customer that listings never show.
    func makeCustomerPopulation(_ backend: Backend) async throws -> any Store {
        let store = try backend.makeStore()
        try await store.write { tx in
            try tx.insertCustomer(F.customer("a", created: 1, updated: 10, tags: ["eu", "vip"], stage: .loyal))
            try tx.insertCustomer(F.customer("b", created: 2, updated: 3, tags: ["vip"], stage: .newCustomer))
            try tx.insertCustomer(F.customer("c", created: 2, updated: 12, tags: ["eu"]))
            try tx.insertCustomer(F.customer("d", created: 5, updated: 5, tags: ["eu", "vip", "x"], stage: .atRisk))
            try tx.insertCustomer(F.customer("e", created: 0, updated: 20, tags: ["eu", "vip"], stage: .loyal, state: .merged(into: F.customerID("a"), by: F.mergeID("1"))))
            try tx.insertCustomer(F.customer("f", created: 8, updated: 8, stage: .prospect))
        }
        return store
    }

    func listedNames(_ store: any Store, _ query: CustomerQuery) async throws -> [String] {
        try await store.read { try $0.customers(query) }.map { String($0.id.rawValue.dropFirst(4)) }
    }

    @Test(arguments: Backend.allCases)
    func customerListingFiltersActiveCustomers(_ backend: Backend) async throws {
        let store = try await makeCustomerPopulation(backend)
        func names(_ filter: CustomerFilter) async throws -> [String] {
            try await listedNames(store, CustomerQuery(filter: filter))
        }
        #expect(try await names(CustomerFilter()) == ["a", "b", "c", "d", "f"])
        // Tags: all of them.
        #expect(try await names(CustomerFilter(tags: ["vip"])) == ["a", "b", "d"])
        #expect(try await names(CustomerFilter(tags: ["vip", "eu"])) == ["a", "d"])
        #expect(try await names(CustomerFilter(tags: ["vip", "nope"])) == [])
        // A tag named twice is one; any number of them works (SQLite binds the list as one value).
        #expect(try await names(CustomerFilter(tags: ["eu", "vip", "eu"])) == ["a", "d"])
        #expect(try await names(CustomerFilter(tags: ["vip"] + (0..<1500).map { "t\($0)" })) == [])
        #expect(try await names(CustomerFilter(lifecycleStages: [.loyal, .loyal, .atRisk, .loyal])) == ["a", "d"])
        // Stages: any of them; a customer without a stage never matches a stage filter.
        #expect(try await names(CustomerFilter(lifecycleStages: [.loyal, .atRisk])) == ["a", "d"])
        #expect(try await names(CustomerFilter(lifecycleStages: [.prospect])) == ["f"])
        #expect(try await names(CustomerFilter(lifecycleStages: [.churned])) == [])
        // Creation: from inclusive, before exclusive.
        #expect(try await names(CustomerFilter(createdFrom: F.time(2))) == ["b", "c", "d", "f"])
        #expect(try await names(CustomerFilter(createdBefore: F.time(5))) == ["a", "b", "c"])
        #expect(try await names(CustomerFilter(createdFrom: F.time(2), createdBefore: F.time(5))) == ["b", "c"])
        // Update: from inclusive.
        #expect(try await names(CustomerFilter(updatedFrom: F.time(10))) == ["a", "c"])
        #expect(try await names(CustomerFilter(tags: ["eu"], updatedFrom: F.time(5))) == ["a", "c", "d"])
    }

    @Test(arguments: Backend.allCases)
    func customerListingFollowsUpdates(_ backend: Backend) async throws {
        let store = try await makeCustomerPopulation(backend)
        try await store.write { tx in
            // a loses its tags and stage; f is merged away; e (merged) comes back with a tag.
            try tx.updateCustomer(F.customer("a", created: 1, updated: 30, tags: ["x"]))
            try tx.updateCustomer(F.customer("f", created: 8, updated: 8, stage: .prospect, state: .merged(into: F.customerID("b"), by: F.mergeID("2"))))
            try tx.updateCustomer(F.customer("e", created: 0, updated: 20, tags: ["vip"], stage: .loyal))
        }
        #expect(try await listedNames(store, CustomerQuery()) == ["e", "a", "b", "c", "d"])
        #expect(try await listedNames(store, CustomerQuery(filter: CustomerFilter(tags: ["vip"]))) == ["e", "b", "d"])
        #expect(try await listedNames(store, CustomerQuery(filter: CustomerFilter(tags: ["x"]))) == ["a", "d"])
        #expect(try await listedNames(store, CustomerQuery(filter: CustomerFilter(lifecycleStages: [.loyal]))) == ["e"])
        #expect(try await listedNames(store, CustomerQuery(filter: CustomerFilter(lifecycleStages: [.prospect]))) == [])
        #expect(try await listedNames(store, CustomerQuery(order: CustomerOrder(.updatedAt, descending: true), limit: 2)) == ["a", "e"])
        #expect(try await store.read { try $0.customerCount() } == 5)
    }

    @Test(arguments: Backend.allCases)
    func customerListingFollowsTheOrderWithTiesBrokenByID(_ backend: Backend) async throws {
        let store = try await makeCustomerPopulation(backend)
        #expect(try await listedNames(store, CustomerQuery(order: CustomerOrder(.createdAt))) == ["a", "b", "c", "d", "f"])
        #expect(try await listedNames(store, CustomerQuery(order: CustomerOrder(.createdAt, descending: true))) == ["f", "d", "c", "b", "a"])
        #expect(try await listedNames(store, CustomerQuery(order: CustomerOrder(.updatedAt))) == ["b", "d", "f", "a", "c"])
        #expect(try await listedNames(store, CustomerQuery(order: CustomerOrder(.updatedAt, descending: true))) == ["c", "a", "f", "d", "b"])
        #expect(try await listedNames(store, CustomerQuery(limit: 2)) == ["a", "b"])
        #expect(try await listedNames(store, CustomerQuery(limit: 0)) == [])
    }

    @Test(arguments: Backend.allCases)
    func customerListingStartsStrictlyAfterTheCursor(_ backend: Backend) async throws {
        let store = try await makeCustomerPopulation(backend)
        let two = F.time(2).millisecondsSinceEpoch
        // A cursor need not name a stored customer: (2, "cus_bb") falls between b and c.
        #expect(try await listedNames(store, CustomerQuery(after: CustomerCursor(value: two, id: CustomerID(uncheckedRawValue: "cus_bb")))) == ["c", "d", "f"])
        #expect(try await listedNames(store, CustomerQuery(after: CustomerCursor(value: two, id: F.customerID("b")))) == ["c", "d", "f"])
        let descending = CustomerOrder(.createdAt, descending: true)
        #expect(try await listedNames(store, CustomerQuery(order: descending, after: CustomerCursor(value: two, id: F.customerID("c")))) == ["b", "a"])
        #expect(
            try await listedNames(store, CustomerQuery(filter: CustomerFilter(tags: ["vip"]), after: CustomerCursor(value: two, id: F.customerID("b")))) == ["d"])
    }

    @Test(arguments: Backend.allCases)
    func cursorPagingVisitsEveryActiveCustomerOnce(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        // 30 customers on 7 distinct creation and update times: many ties.
        try await store.write { tx in
            for index in 0..<30 {
                try tx.insertCustomer(F.customer("p\(index)", created: Int64(index % 7), updated: Int64((index * 5) % 7)))
            }
            try tx.insertCustomer(F.customer("gone", created: 3, state: .merged(into: F.customerID("p1"), by: F.mergeID("1"))))
        }
        for key in CustomerOrder.Key.allCases {
            for descending in [false, true] {
                let order = CustomerOrder(key, descending: descending)
                let everyone = try await store.read { try $0.customers(CustomerQuery(order: order, limit: 100)) }
                #expect(everyone.count == 30)
                for pageSize in [1, 4, 7] {
                    var seen: [CustomerRecord] = []
                    var cursor: CustomerCursor?
                    // Bounded, so that a cursor that is not exclusive fails instead of looping forever.
                    for _ in 0...everyone.count {
                        let query = CustomerQuery(order: order, after: cursor, limit: pageSize)
                        let page = try await store.read { try $0.customers(query) }
                        guard let last = page.last else { break }
                        #expect(page.count <= pageSize)
                        seen += page
                        cursor = CustomerCursor(value: order.value(of: last), id: last.id)
                    }
                    #expect(seen == everyone, "\(key) descending: \(descending), page size \(pageSize)")
                }
                // The listing is sorted by (value, id) in the order's direction.
                let keys = everyone.map { (order.value(of: $0), $0.id.rawValue) }
                #expect(zip(keys, keys.dropFirst()).allSatisfy { descending ? $0 > $1 : $0 < $1 })
            }
        }
    }
}
