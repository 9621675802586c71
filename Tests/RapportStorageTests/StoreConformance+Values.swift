import Foundation
import RapportCore
import Testing

extension StoreConformance {
    /// Text that needs escaping in JSON, non-ASCII text, extreme integers, empty and missing values: what goes in
    /// comes back equal, from both backends.
    @Test(arguments: Backend.allCases)
    func unusualValuesRoundTripExactly(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let text = "Zoë \"Q\" back\\slash a/b\ttab\nline \u{1}\u{1f} 👩‍💻 日本"
        var unusual = F.customer("u", tags: ["", text])
        unusual.profile.givenName = text
        unusual.profile.birthday = LocalDate(year: nil, month: 2, day: 29)
        unusual.profile.addresses = [PostalAddress(label: text, line1: "", city: text, country: "")]
        unusual.profile.attributes = [
            text: .string(text), "max": .int(.max), "min": .int(.min), "list": .stringList(["", text]), "tiny": .decimal(Decimal(string: "-0.000001")!),
            "epoch": .timestamp(Timestamp(millisecondsSinceEpoch: -1)),
        ]
        unusual.fieldTimes = [text: F.time(1), "given_name": Timestamp(millisecondsSinceEpoch: .min)]
        var plain = F.customer("p")
        plain.profile.birthday = nil
        plain.profile.addresses = []
        plain.profile.attributes = [:]
        plain.fieldTimes = [:]

        var bare = F.event("e-bare", owner: "u", at: 1, sequence: 10)
        bare.event.identities = []
        bare.event.properties = [:]
        var odd = F.event("e-odd", owner: "u", at: 2, sequence: 11)
        odd.event.identities = [Identity(kind: .externalID, source: text, value: text)]
        odd.event.properties = [text: .string(text), "empty": .string(""), "n": .int(.min), "none": .stringList([])]
        var order = F.order("u", owner: "u", at: 3, sequence: 12)
        order.order.lines = [OrderLine(sku: text, name: text, quantity: .max, unitPriceMinor: .min)]
        order.order.statusHistory = []
        let stats = CustomerStats(
            customerID: unusual.id, orderCount: 2,
            spent: [CurrencyTotal(currency: try CurrencyCode("EUR"), totalMinor: .max, orderCount: 1), CurrencyTotal(currency: try CurrencyCode("JPY"), totalMinor: -5, orderCount: 1)],
            eventCount: 2)
        let change = ProfileChange(customerID: unusual.id, sequence: 13, at: F.time(4), fields: [.givenName], profile: unusual.profile)

        try await store.write { [unusual, plain, bare, odd, order] tx in
            _ = try tx.allocateSequence(20)
            try tx.insertCustomer(unusual)
            try tx.insertCustomer(plain)
            try tx.insertEvent(bare)
            try tx.insertEvent(odd)
            try tx.insertOrder(order)
            try tx.putStats(stats)
            try tx.appendProfileChange(change)
        }
        let read = try await store.read { [unusual, plain, order] tx in
            (
                try tx.customer(unusual.id), try tx.customer(plain.id), try tx.event(id: "e-bare"), try tx.event(id: "e-odd"), try tx.order(order.order.id),
                try tx.stats(of: unusual.id), try tx.profileChanges(of: unusual.id, after: 0)
            )
        }
        #expect(read.0 == unusual)
        #expect(read.1 == plain)
        #expect(read.2 == bare)
        #expect(read.3 == odd)
        #expect(read.4 == order)
        #expect(read.5 == stats)
        #expect(read.6 == [change])
    }
}
