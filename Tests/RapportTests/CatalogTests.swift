@testable import Rapport
import RapportCore
import RapportTesting
import Synchronization
import Testing

@Suite("Compiled definitions")
struct CatalogTests {
    @Test func transactionsShareOneCompiledCatalogPerDefinitionsVersion() async throws {
        let test = TestRapport()
        _ = try await test.crm.createSegment(.dynamic(key: "vip", name: "VIP", expression: "has_tag(\"vip\")"))
        _ = try await test.crm.createRule(RuleDefinition(name: "Tag", trigger: .event(type: "visit"), actions: [.addTag("visited")]))
        _ = try await test.crm.ingest([event("warm-up", "visit", at: test.clock.now(), .email("ada@example.com"))])
        let before = test.crm.catalogs.builds.load(ordering: .relaxed)
        for index in 0..<20 {
            _ = try await test.crm.ingest([event("e\(index)", "visit", at: test.clock.now(), .email("c\(index)@example.com"))])
        }
        #expect(test.crm.catalogs.builds.load(ordering: .relaxed) == before)
        // A new definition compiles a new catalog, once.
        _ = try await test.crm.createRule(RuleDefinition(name: "Other", trigger: .event(type: "visit"), actions: [.addTag("other")]))
        for index in 0..<5 {
            _ = try await test.crm.ingest([event("f\(index)", "visit", at: test.clock.now(), .email("d\(index)@example.com"))])
        }
        #expect(test.crm.catalogs.builds.load(ordering: .relaxed) == before + 1)
    }
    @Test(arguments: Backend.allCases)
    func declaringAnEventTypeAgainAddsPropertiesAndKeepsDescriptions(_ backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        _ = try await crm.defineEventType(
            EventTypeDefinition(
                type: "cart.updated", description: "The cart changed",
                properties: [EventPropertyDefinition(key: "value_minor", type: .int, description: "Cart value in minor units")]))
        // A client adds one property, sending the type without its description and a known property without its own.
        let grown = try await crm.defineEventType(
            EventTypeDefinition(
                type: "cart.updated",
                properties: [EventPropertyDefinition(key: "value_minor", type: .int), EventPropertyDefinition(key: "items", type: .int, description: "Lines")]))
        #expect(grown.description == "The cart changed")
        let properties = Dictionary(uniqueKeysWithValues: grown.properties.map { ($0.key, $0.description) })
        #expect(properties == ["value_minor": "Cart value in minor units", "items": "Lines"])
        #expect(try await crm.eventTypes().first { $0.type == "cart.updated" } == grown)
        // A description sent replaces the old one.
        let renamed = try await crm.defineEventType(EventTypeDefinition(type: "cart.updated", description: "Cart changed", properties: []))
        #expect(renamed.description == "Cart changed")
        #expect(renamed.properties.count == 2)
    }
}
