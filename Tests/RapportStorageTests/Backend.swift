import Foundation
import RapportCore
import RapportMemory
import RapportSQLite
import Testing

/// The backends every conformance test runs on; each case makes a fresh, empty store.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case sqlite

    func makeStore() throws -> any Store {
        switch self {
        case .memory: MemoryStore()
        case .sqlite: try SQLiteStore.temporary()
        }
    }

    var testDescription: String { rawValue }
}

/// Builders of records with every field set to something worth round-tripping.
enum Fixture {
    /// 2026-01-01T00:00:00Z.
    static let epoch: Int64 = 1_767_225_600_000

    /// `minutes` after the fixture epoch.
    static func time(_ minutes: Int64) -> Timestamp {
        Timestamp(millisecondsSinceEpoch: epoch + minutes * 60_000)
    }

    static func eur(_ minor: Int64) -> Money {
        Money(minorUnits: minor, currency: try! CurrencyCode("EUR"))
    }

    static func customerID(_ name: String) -> CustomerID { CustomerID(uncheckedRawValue: "cus_\(name)") }

    static func customer(
        _ name: String, created: Int64 = 0, updated: Int64? = nil, tags: [String] = [], stage: LifecycleStage? = nil,
        state: CustomerState = .active, version: Int64 = 1
    ) -> CustomerRecord {
        let profile = CustomerProfile(
            givenName: "Ada \(name)", familyName: "Lovelace", birthday: LocalDate(year: 1990, month: 4, day: 17), locale: "en-GB",
            timeZone: "Europe/London",
            addresses: [PostalAddress(label: "home", line1: "1 Main St", line2: "Flat 2", city: "London", region: "LDN", postalCode: "N1", country: "GB")],
            tags: tags, lifecycleStage: stage,
            attributes: [
                "shoe_size": .decimal(Decimal(string: "42.5")!), "vip": .bool(true), "points": .int(-12), "nickname": .string("ada"),
                "last_visit": .timestamp(time(3)), "sizes": .stringList(["M", "L"]),
            ]
        )
        return CustomerRecord(
            id: customerID(name), profile: profile, fieldTimes: ["given_name": time(1), "attributes.vip": time(2)], state: state,
            createdAt: time(created), updatedAt: time(updated ?? created), version: version
        )
    }

    static func identity(_ value: String, owner: String, home: String? = nil, kind: IdentityKind = .email) -> IdentityRecord {
        let identity = kind == .externalID ? Identity(kind: kind, source: "shopify", value: value) : Identity(kind: kind, value: value)
        return IdentityRecord(identity: identity, customerID: customerID(owner), homeCustomerID: customerID(home ?? owner), createdAt: time(0))
    }

    static func event(_ id: String, owner: String, home: String? = nil, at minutes: Int64, sequence: Int64, type: String = "page.viewed") -> EventRecord {
        let event = Event(
            id: id, type: type, occurredAt: time(minutes), channel: .web,
            identities: [Identity(kind: .email, value: "ada@example.com"), Identity(kind: .externalID, source: "shopify", value: "42")],
            properties: ["url": .string("/shoes"), "price": .decimal(Decimal(string: "19.99")!), "count": .int(2), "tags": .stringList(["a"])],
            customerID: customerID(owner), receivedAt: time(minutes + 1)
        )
        return EventRecord(event: event, homeCustomerID: customerID(home ?? owner), sequence: sequence)
    }

    static func orderID(_ name: String) -> OrderID { OrderID(uncheckedRawValue: "ord_\(name)") }

    static func order(
        _ name: String, key: String? = nil, owner: String, home: String? = nil, at minutes: Int64, sequence: Int64, status: OrderStatus = .paid
    ) -> OrderRecord {
        let order = Order(
            id: orderID(name), key: OrderKey(source: "web", externalID: key ?? name), channel: .web, customerID: customerID(owner),
            identities: [Identity(kind: .email, value: "ada@example.com")],
            lines: [OrderLine(sku: "SKU-1", name: "Shoe", quantity: 2, unitPriceMinor: 4_999), OrderLine(sku: "SKU-2", quantity: 1, unitPriceMinor: 500)],
            currency: try! CurrencyCode("EUR"), subtotal: eur(10_498), discount: eur(1_000), shipping: eur(495), tax: eur(0), total: eur(9_993),
            status: status, statusHistory: [OrderStatusChange(status: .placed, at: time(minutes)), OrderStatusChange(status: status, at: time(minutes + 5))],
            placedAt: time(minutes), updatedAt: time(minutes + 5)
        )
        return OrderRecord(order: order, homeCustomerID: customerID(home ?? owner), sequence: sequence)
    }

    static func interactionID(_ name: String) -> InteractionID { InteractionID(uncheckedRawValue: "int_\(name)") }

    static func interaction(_ name: String, owner: String, home: String? = nil, at minutes: Int64, sequence: Int64) -> InteractionRecord {
        let interaction = Interaction(
            id: interactionID(name), customerID: customerID(owner), channel: .phone, direction: .inbound, subject: "Size question",
            summary: "Asked about sizes", agent: "agent_7", occurredAt: time(minutes)
        )
        return InteractionRecord(interaction: interaction, homeCustomerID: customerID(home ?? owner), sequence: sequence)
    }

    static func consentID(_ name: String) -> ConsentID { ConsentID(uncheckedRawValue: "cns_\(name)") }

    static func consent(_ name: String, owner: String, home: String? = nil, at minutes: Int64, sequence: Int64, status: ConsentStatus = .granted) -> ConsentRecord {
        let consent = Consent(
            id: consentID(name), customerID: customerID(owner), channel: .email, purpose: .marketing, status: status, source: "checkout",
            occurredAt: time(minutes), recordedAt: time(minutes + 1)
        )
        return ConsentRecord(consent: consent, homeCustomerID: customerID(home ?? owner), sequence: sequence)
    }

    static func mergeID(_ name: String) -> MergeID { MergeID(uncheckedRawValue: "mrg_\(name)") }

    static func merge(_ name: String, survivor: String, absorbed: String, sequence: Int64, reason: MergeReason = .manual, unmerged: Int64? = nil) -> MergeRecord {
        MergeRecord(
            id: mergeID(name), survivorID: customerID(survivor), absorbedID: customerID(absorbed), reason: reason, mergedAt: time(sequence),
            sequence: sequence, survivorBefore: customer(survivor, tags: ["vip"], stage: .loyal),
            absorbedBefore: customer(absorbed, created: 5, state: .merged(into: customerID(survivor), by: mergeID(name)), version: 3),
            absorbedSegments: [
                SegmentMembership(segmentID: SegmentID(uncheckedRawValue: "seg_a\(name)"), customerID: customerID(absorbed), since: time(sequence - 2)),
                SegmentMembership(segmentID: SegmentID(uncheckedRawValue: "seg_b\(name)"), customerID: customerID(absorbed), since: time(sequence - 1)),
            ],
            adoptedRuns: [RunID(uncheckedRawValue: "run_\(name)")],
            unmergedAt: unmerged.map(time)
        )
    }

    static func profileChange(_ owner: String, sequence: Int64, fields: Set<CustomerField> = [.givenName, .attribute("vip")]) -> ProfileChange {
        ProfileChange(customerID: customerID(owner), sequence: sequence, at: time(sequence), fields: fields, profile: customer(owner, tags: ["x"]).profile)
    }
}

/// Thrown by test bodies to force a rollback.
struct Abort: Error, Equatable {}
