import Foundation
import RapportCore
import Testing

/// Every storage behaviour, checked on every backend. A behaviour is tested here once, for all backends.
@Suite("Store conformance")
struct StoreConformance {
    typealias F = Fixture

    @Test(arguments: Backend.allCases)
    func anEmptyStoreHoldsNothing(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.read { tx throws in
            #expect(try tx.currentSequence() == 0)
            #expect(try tx.customerCount() == 0)
            #expect(try tx.customers(CustomerQuery()).isEmpty)
            #expect(try tx.customer(F.customerID("a")) == nil)
            #expect(try tx.stats(of: F.customerID("a")) == nil)
            #expect(try tx.event(id: "e1") == nil)
            #expect(try tx.events(of: F.customerID("a"), before: nil, limit: 10).isEmpty)
            #expect(try tx.eventSummary(of: F.customerID("a")) == EventSummary(count: 0, lastOccurredAt: nil))
            #expect(try tx.order(F.orderID("1")) == nil)
            #expect(try tx.order(key: OrderKey(source: "web", externalID: "1")) == nil)
            #expect(try tx.consents(of: F.customerID("a")).isEmpty)
            #expect(try tx.merges(into: F.customerID("a")).isEmpty)
            #expect(try tx.attributeDefinitions().isEmpty)
        }
    }

    @Test(arguments: Backend.allCases)
    func sequencesAreHandedOutOnceAndInOrder(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let (first, second, empty) = try await store.write { tx in
            (try tx.allocateSequence(1), try tx.allocateSequence(5), try tx.allocateSequence(0))
        }
        #expect(first == 1)
        #expect(second == 2)
        #expect(empty == 7)  // nothing handed out: the next number is still 7
        #expect(try await store.read { try $0.currentSequence() } == 6)
        #expect(try await store.write { try $0.allocateSequence(3) } == 7)
        #expect(try await store.read { try $0.currentSequence() } == 9)
    }

    @Test(arguments: Backend.allCases)
    func customersRoundTripUpdateAndDelete(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let ada = F.customer("a", created: 1, tags: ["eu", "vip"], stage: .loyal)
        try await store.write { try $0.insertCustomer(ada) }
        #expect(try await store.read { try $0.customer(ada.id) } == ada)

        await #expect(throws: RapportError.alreadyExists(entity: "customer", id: "cus_a")) {
            try await store.write { try $0.insertCustomer(F.customer("a", created: 9)) }
        }

        var update = ada
        update.profile.givenName = "Augusta"
        update.profile.tags = ["us"]
        update.profile.lifecycleStage = nil
        update.profile.attributes["vip"] = .bool(false)
        update.fieldTimes["given_name"] = F.time(50)
        update.state = .merged(into: F.customerID("b"), by: F.mergeID("1"))
        update.updatedAt = F.time(50)
        update.version = 2
        let changed = update
        try await store.write { try $0.updateCustomer(changed) }
        #expect(try await store.read { try $0.customer(ada.id) } == changed)

        await #expect(throws: RapportError.notFound(entity: "customer", id: "cus_zz")) {
            try await store.write { try $0.updateCustomer(F.customer("zz")) }
        }

        try await store.write { try $0.deleteCustomer(ada.id) }
        #expect(try await store.read { try $0.customer(ada.id) } == nil)
        await #expect(throws: RapportError.notFound(entity: "customer", id: "cus_a")) {
            try await store.write { try $0.deleteCustomer(ada.id) }
        }
        // The id is free again.
        try await store.write { try $0.insertCustomer(ada) }
        #expect(try await store.read { try $0.customer(ada.id) } == ada)
    }

    @Test(arguments: Backend.allCases)
    func customerCountCountsActiveCustomersOnly(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try tx.insertCustomer(F.customer("a"))
            try tx.insertCustomer(F.customer("b"))
            try tx.insertCustomer(F.customer("c", state: .merged(into: F.customerID("a"), by: F.mergeID("1"))))
        }
        #expect(try await store.read { try $0.customerCount() } == 2)
    }

    @Test(arguments: Backend.allCases)
    func statsArePutReplacedAndRead(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let eur = try CurrencyCode("EUR")
        let usd = try CurrencyCode("USD")
        let stats = CustomerStats(
            customerID: F.customerID("a"), orderCount: 3,
            spent: [CurrencyTotal(currency: eur, totalMinor: 12_345, orderCount: 2), CurrencyTotal(currency: usd, totalMinor: 999, orderCount: 1)],
            firstOrderAt: F.time(1), lastOrderAt: F.time(9), eventCount: 17, lastSeenAt: F.time(10)
        )
        try await store.write { try $0.putStats(stats) }
        #expect(try await store.read { try $0.stats(of: F.customerID("a")) } == stats)

        let empty = CustomerStats(customerID: F.customerID("a"))
        try await store.write { try $0.putStats(empty) }
        #expect(try await store.read { try $0.stats(of: F.customerID("a")) } == empty)
        #expect(try await store.read { try $0.stats(of: F.customerID("b")) } == nil)
    }

    @Test(arguments: Backend.allCases)
    func identitiesAreUniqueByKeyAndListedByKey(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let zed = F.identity("zed@example.com", owner: "a")
        let amy = F.identity("amy@example.com", owner: "a", home: "b")
        let shop = F.identity("99", owner: "a", kind: .externalID)
        let other = F.identity("bob@example.com", owner: "b")
        try await store.write { tx in
            for record in [zed, amy, shop, other] { try tx.insertIdentity(record) }
        }
        #expect(try await store.read { try $0.identity(amy.identity) } == amy)
        #expect(try await store.read { try $0.identity(Identity(kind: .email, value: "nobody@example.com")) } == nil)
        // Sorted by key: "email:amy..." < "email:zed..." < "external_id:shopify:99".
        #expect(try await store.read { try $0.identities(of: F.customerID("a")) } == [amy, zed, shop])

        await #expect(throws: RapportError.alreadyExists(entity: "identity", id: "email:amy@example.com")) {
            try await store.write { try $0.insertIdentity(F.identity("amy@example.com", owner: "c")) }
        }

        try await store.write { try $0.deleteIdentity(zed.identity) }
        #expect(try await store.read { try $0.identities(of: F.customerID("a")) } == [amy, shop])
        #expect(try await store.read { try $0.identity(zed.identity) } == nil)
        await #expect(throws: RapportError.notFound(entity: "identity", id: "email:zed@example.com")) {
            try await store.write { try $0.deleteIdentity(zed.identity) }
        }
    }

    @Test(arguments: Backend.allCases)
    func attributeDefinitionsAreReplacedAndSortedByKey(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try tx.putAttributeDefinition(AttributeDefinition(key: "vip", type: .bool))
            try tx.putAttributeDefinition(AttributeDefinition(key: "shoe_size", type: .decimal, description: "EU size"))
            try tx.putAttributeDefinition(AttributeDefinition(key: "birthday_club", type: .string))
        }
        try await store.write { try $0.putAttributeDefinition(AttributeDefinition(key: "vip", type: .int, description: "level")) }
        #expect(
            try await store.read { try $0.attributeDefinitions() } == [
                AttributeDefinition(key: "birthday_club", type: .string),
                AttributeDefinition(key: "shoe_size", type: .decimal, description: "EU size"),
                AttributeDefinition(key: "vip", type: .int, description: "level"),
            ])
    }
}
