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
}
