import Testing
@testable import RapportCore

/// Runs `body`, expects it to throw `RapportError.invalidArgument`, and returns the violations (empty, with a
/// recorded issue, when it returned a value or threw another case).
func invalidArgumentViolations<T>(
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws(RapportError) -> T
) -> [FieldViolation] {
    do {
        let value = try body()
        Issue.record("expected invalidArgument, got \(value)", sourceLocation: sourceLocation)
        return []
    } catch {
        guard case .invalidArgument(let violations) = error else {
            Issue.record("expected invalidArgument, got \(error)", sourceLocation: sourceLocation)
            return []
        }
        return violations
    }
}

/// Expects exactly one violation, on `field`, whose problem contains every string of `mentions`.
func expectSingleViolation<T>(
    field: String,
    mentions: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws(RapportError) -> T
) {
    let violations = invalidArgumentViolations(sourceLocation: sourceLocation, body)
    guard violations.count == 1, let violation = violations.first else {
        Issue.record("expected one violation, got \(violations)", sourceLocation: sourceLocation)
        return
    }
    #expect(violation.field == field, sourceLocation: sourceLocation)
    for text in mentions {
        #expect(violation.problem.contains(text), "problem '\(violation.problem)' should mention '\(text)'", sourceLocation: sourceLocation)
    }
}

/// A small deterministic generator (SplitMix64), so that "random" test data is the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// 2026-01-01T00:00:00Z.
let newYear2026 = Timestamp(millisecondsSinceEpoch: 1_767_225_600_000)

func currency(_ code: String) -> CurrencyCode {
    // The codes used in tests are valid; a typo should fail loudly.
    try! CurrencyCode(code)
}

func customerRecord(
    id: String = "cus_1",
    profile: CustomerProfile = CustomerProfile(),
    createdAt: Timestamp = newYear2026,
    updatedAt: Timestamp = newYear2026
) -> CustomerRecord {
    CustomerRecord(
        id: CustomerID(uncheckedRawValue: id), profile: profile, fieldTimes: [:], state: .active,
        createdAt: createdAt, updatedAt: updatedAt, version: 1
    )
}

func order(
    id: String,
    customer: CustomerID = CustomerID(uncheckedRawValue: "cus_1"),
    status: OrderStatus = .paid,
    currency code: String = "EUR",
    totalMinor: Int64,
    placedAt: Timestamp
) -> Order {
    let cur = currency(code)
    let zero = Money(minorUnits: 0, currency: cur)
    let total = Money(minorUnits: totalMinor, currency: cur)
    return Order(
        id: OrderID(uncheckedRawValue: id), key: OrderKey(source: "web", externalID: id), channel: .web, customerID: customer,
        identities: [], lines: [OrderLine(sku: "SKU", quantity: 1, unitPriceMinor: totalMinor)], currency: cur,
        subtotal: total, discount: zero, shipping: zero, tax: zero, total: total, status: status,
        statusHistory: [OrderStatusChange(status: status, at: placedAt)], placedAt: placedAt, updatedAt: placedAt
    )
}
