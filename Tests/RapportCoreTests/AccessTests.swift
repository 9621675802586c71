import Testing
@testable import RapportCore

@Suite("Roles and API keys")
struct AccessTests {
    @Test func adminHasEveryPermission() {
        #expect(Role.admin.permissions == Set(Permission.allCases))
    }

    @Test func onlyAdminManagesAPIKeys() {
        #expect(Role.allCases.filter { $0.permissions.contains(.manageAPIKeys) } == [.admin])
    }

    static let documented: [(Role, Set<Permission>)] = [
        (
            .marketing,
            [
                .readCustomers, .readPersonalData, .writeCustomers, .defineAttributes, .ingest, .merge, .writeConsent, .readActivity, .watchChanges,
                .readAutomation, .manageAutomation, .consumeOutbox,
            ]
        ),
        (.sales, [.readCustomers, .readPersonalData, .writeCustomers, .merge, .writeInteractions, .readActivity, .watchChanges, .readAutomation]),
        (
            .service,
            [.readCustomers, .readPersonalData, .writeCustomers, .merge, .writeInteractions, .writeConsent, .readActivity, .watchChanges, .readAutomation]
        ),
        (.analyst, [.readCustomers, .readActivity, .watchChanges, .readAutomation]),
        (.readOnly, [.readCustomers]),
    ]

    @Test func onlyAdminMovesTheClock() {
        #expect(Role.allCases.filter { $0.permissions.contains(.controlClock) } == [.admin])
    }

    @Test(arguments: documented)
    func rolePermissions(role: Role, permissions: Set<Permission>) {
        #expect(role.permissions == permissions)
    }

    @Test func everyRoleReadsCustomers() {
        #expect(Role.allCases.allSatisfy { $0.permissions.contains(.readCustomers) })
    }

    @Test func analystAndReadOnlySeePersonalDataMasked() {
        #expect(Role.allCases.filter { !$0.seesPersonalData } == [.analyst, .readOnly])
        #expect(Role.readOnly.rawValue == "read_only")
    }

    @Test func apiKeyIDsAndRevocation() throws {
        let id = try APIKeyID(parsing: "key_01ABC", field: "id")
        expectSingleViolation(field: "id", mentions: ["api key id", "'key_'"]) { () throws(RapportError) in try APIKeyID(parsing: "cus_1", field: "id") }
        var key = APIKey(id: id, name: "checkout-service", role: .marketing, secretHash: String(repeating: "a", count: 64), createdAt: newYear2026)
        #expect(key.isActive)
        key.revokedAt = newYear2026 + .seconds(1)
        #expect(!key.isActive)
    }
}
