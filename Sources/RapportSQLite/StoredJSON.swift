import Foundation
import RapportCore

// The JSON held in the file's TEXT columns. These forms spell every key explicitly (snake_case) instead of
// relying on the synthesized `Codable` of core types: the file format is a public promise, and it must not change
// when a Swift property of a core type is renamed. `AttributeValue` is the exception: its own coding is already an
// explicit `{"type", "value"}` form.
//
// The hot columns (profiles, field times, stats totals, event identities and properties, order details) are read and
// written by ColumnJSON.swift's hand-written coder; these forms remain their definition, and the tests hold the two
// to the same text both ways.

/// `{"kind": "email", "source": "", "value": "ada@example.com"}`.
struct StoredIdentity: Codable {
    var kind: IdentityKind
    var source: String
    var value: String

    init(_ identity: Identity) {
        kind = identity.kind
        source = identity.source
        value = identity.value
    }

    var identity: Identity { Identity(kind: kind, source: source, value: value) }
}

struct StoredDate: Codable {
    var year: Int?
    var month: Int
    var day: Int

    init(_ date: LocalDate) {
        year = date.year
        month = date.month
        day = date.day
    }

    var date: LocalDate { LocalDate(year: year, month: month, day: day) }
}

struct StoredAddress: Codable {
    var label: String
    var line1: String
    var line2: String
    var city: String
    var region: String
    var postalCode: String
    var country: String

    enum CodingKeys: String, CodingKey {
        case label, line1, line2, city, region, country
        case postalCode = "postal_code"
    }

    init(_ address: PostalAddress) {
        label = address.label
        line1 = address.line1
        line2 = address.line2
        city = address.city
        region = address.region
        postalCode = address.postalCode
        country = address.country
    }

    var address: PostalAddress {
        PostalAddress(label: label, line1: line1, line2: line2, city: city, region: region, postalCode: postalCode, country: country)
    }
}

struct StoredProfile: Codable {
    var givenName: String
    var familyName: String
    var birthday: StoredDate?
    var locale: String
    var timeZone: String
    var addresses: [StoredAddress]
    var tags: [String]
    var lifecycleStage: LifecycleStage?
    var attributes: [String: AttributeValue]

    enum CodingKeys: String, CodingKey {
        case birthday, locale, addresses, tags, attributes
        case givenName = "given_name"
        case familyName = "family_name"
        case timeZone = "time_zone"
        case lifecycleStage = "lifecycle_stage"
    }

    init(_ profile: CustomerProfile) {
        givenName = profile.givenName
        familyName = profile.familyName
        birthday = profile.birthday.map(StoredDate.init)
        locale = profile.locale
        timeZone = profile.timeZone
        addresses = profile.addresses.map(StoredAddress.init)
        tags = profile.tags
        lifecycleStage = profile.lifecycleStage
        attributes = profile.attributes
    }

    var profile: CustomerProfile {
        CustomerProfile(
            givenName: givenName, familyName: familyName, birthday: birthday?.date, locale: locale, timeZone: timeZone,
            addresses: addresses.map(\.address), tags: tags, lifecycleStage: lifecycleStage, attributes: attributes
        )
    }
}

/// A whole customer record, as kept inside a merge record.
struct StoredCustomer: Codable {
    var id: String
    var profile: StoredProfile
    var fieldTimes: [String: Int64]
    /// Nil while active.
    var mergedInto: String?
    var mergeID: String?
    var createdAt: Int64
    var updatedAt: Int64
    var version: Int64

    enum CodingKeys: String, CodingKey {
        case id, profile, version
        case fieldTimes = "field_times"
        case mergedInto = "merged_into"
        case mergeID = "merge_id"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    init(_ record: CustomerRecord) {
        id = record.id.rawValue
        profile = StoredProfile(record.profile)
        fieldTimes = record.fieldTimes.mapValues(\.millisecondsSinceEpoch)
        if case .merged(let survivor, let merge) = record.state {
            mergedInto = survivor.rawValue
            mergeID = merge.rawValue
        }
        createdAt = record.createdAt.millisecondsSinceEpoch
        updatedAt = record.updatedAt.millisecondsSinceEpoch
        version = record.version
    }

    var record: CustomerRecord {
        CustomerRecord(
            id: CustomerID(uncheckedRawValue: id), profile: profile.profile, fieldTimes: fieldTimes.mapValues(Timestamp.init(millisecondsSinceEpoch:)),
            state: CustomerState(mergedInto: mergedInto, mergeID: mergeID), createdAt: Timestamp(millisecondsSinceEpoch: createdAt),
            updatedAt: Timestamp(millisecondsSinceEpoch: updatedAt), version: version
        )
    }
}

extension CustomerState {
    /// The state stored as two nullable columns (or keys): both set means merged.
    init(mergedInto: String?, mergeID: String?) {
        if let mergedInto, let mergeID {
            self = .merged(into: CustomerID(uncheckedRawValue: mergedInto), by: MergeID(uncheckedRawValue: mergeID))
        } else {
            self = .active
        }
    }
}

struct StoredMoney: Codable {
    var minorUnits: Int64
    var currency: CurrencyCode

    enum CodingKeys: String, CodingKey {
        case currency
        case minorUnits = "minor_units"
    }

    init(_ money: Money) {
        minorUnits = money.minorUnits
        currency = money.currency
    }

    var money: Money { Money(minorUnits: minorUnits, currency: currency) }
}

struct StoredOrderLine: Codable {
    var sku: String
    var name: String
    var quantity: Int64
    var unitPriceMinor: Int64

    enum CodingKeys: String, CodingKey {
        case sku, name, quantity
        case unitPriceMinor = "unit_price_minor"
    }

    init(_ line: OrderLine) {
        sku = line.sku
        name = line.name
        quantity = line.quantity
        unitPriceMinor = line.unitPriceMinor
    }

    var line: OrderLine { OrderLine(sku: sku, name: name, quantity: quantity, unitPriceMinor: unitPriceMinor) }
}

struct StoredStatusChange: Codable {
    var status: OrderStatus
    var at: Int64
    /// Written only when true.
    var estimated: Bool?

    init(_ change: OrderStatusChange) {
        status = change.status
        at = change.at.millisecondsSinceEpoch
        estimated = change.estimated ? true : nil
    }

    var change: OrderStatusChange { OrderStatusChange(status: status, at: Timestamp(millisecondsSinceEpoch: at), estimated: estimated ?? false) }
}

/// The parts of an order that no query looks into. Amounts keep their own currency so a round trip is exact.
struct StoredOrderDetails: Codable {
    var identities: [StoredIdentity]
    var lines: [StoredOrderLine]
    var subtotal: StoredMoney
    var discount: StoredMoney
    var shipping: StoredMoney
    var tax: StoredMoney
    var total: StoredMoney
    var statusHistory: [StoredStatusChange]

    enum CodingKeys: String, CodingKey {
        case identities, lines, subtotal, discount, shipping, tax, total
        case statusHistory = "status_history"
    }

    init(_ order: Order) {
        identities = order.identities.map(StoredIdentity.init)
        lines = order.lines.map(StoredOrderLine.init)
        subtotal = StoredMoney(order.subtotal)
        discount = StoredMoney(order.discount)
        shipping = StoredMoney(order.shipping)
        tax = StoredMoney(order.tax)
        total = StoredMoney(order.total)
        statusHistory = order.statusHistory.map(StoredStatusChange.init)
    }
}

struct StoredCurrencyTotal: Codable {
    var currency: CurrencyCode
    var totalMinor: Int64
    var orderCount: Int64

    enum CodingKeys: String, CodingKey {
        case currency
        case totalMinor = "total_minor"
        case orderCount = "order_count"
    }

    init(_ total: CurrencyTotal) {
        currency = total.currency
        totalMinor = total.totalMinor
        orderCount = total.orderCount
    }

    var total: CurrencyTotal { CurrencyTotal(currency: currency, totalMinor: totalMinor, orderCount: orderCount) }
}

/// The parts of a merge record that no query looks into.
struct StoredMergeDetails: Codable {
    /// `manual` or `shared_identity`.
    var reason: String
    /// The record id of a `shared_identity` merge.
    var recordID: String?
    var survivorBefore: StoredCustomer
    var absorbedBefore: StoredCustomer
    /// The absorbed customer's dynamic memberships when merged; absent when none (and in files before it).
    var absorbedSegments: [StoredMembership]?
    /// The ids of the absorbed customer's waiting runs the survivor took over; absent when none (and in older files).
    var adoptedRuns: [String]?

    enum CodingKeys: String, CodingKey {
        case reason
        case recordID = "record_id"
        case survivorBefore = "survivor_before"
        case absorbedBefore = "absorbed_before"
        case absorbedSegments = "absorbed_segments"
        case adoptedRuns = "adopted_runs"
    }

    /// A membership as a merge remembers it.
    struct StoredMembership: Codable {
        var segmentID: String
        /// Milliseconds since the epoch.
        var since: Int64

        enum CodingKeys: String, CodingKey {
            case segmentID = "segment_id"
            case since
        }
    }

    init(_ record: MergeRecord) {
        switch record.reason {
        case .manual:
            reason = "manual"
        case .sharedIdentity(let id):
            reason = "shared_identity"
            recordID = id
        }
        survivorBefore = StoredCustomer(record.survivorBefore)
        absorbedBefore = StoredCustomer(record.absorbedBefore)
        if !record.absorbedSegments.isEmpty {
            absorbedSegments = record.absorbedSegments.map { StoredMembership(segmentID: $0.segmentID.rawValue, since: $0.since.millisecondsSinceEpoch) }
        }
        if !record.adoptedRuns.isEmpty { adoptedRuns = record.adoptedRuns.map(\.rawValue) }
    }

    /// The memberships for a merge of `absorbed`.
    func memberships(of absorbed: CustomerID) -> [SegmentMembership] {
        (absorbedSegments ?? []).map {
            SegmentMembership(segmentID: SegmentID(uncheckedRawValue: $0.segmentID), customerID: absorbed, since: Timestamp(millisecondsSinceEpoch: $0.since))
        }
    }

    func mergeReason() throws -> MergeReason {
        switch reason {
        case "manual": return .manual
        case "shared_identity": return .sharedIdentity(recordID: recordID ?? "")
        default: throw RapportError.storage("unknown merge reason '\(reason)' in the database")
        }
    }
}
