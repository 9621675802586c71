import Foundation
import Logging
import Rapport
import RapportCore
import RapportMemory
import RapportSQLite
import Testing

/// The backends engine tests that lean on storage semantics run against.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case memory, sqlite

    var testDescription: String { rawValue }

    func makeStore() throws -> any Store {
        switch self {
        case .memory: MemoryStore()
        case .sqlite: try SQLiteStore.temporary()
        }
    }
}

/// Tests keep their output for test results.
let quietLogger = Logger(label: "rapport.test", factory: { _ in SwiftLogNoOpLogHandler() })

let day: Duration = .seconds(86_400)
let start = Timestamp(millisecondsSinceEpoch: 1_767_225_600_000)  // 2026-01-01T00:00:00Z

/// An engine over `backend` with a manual clock and sequential ids.
func makeEngine(_ backend: Backend = .memory) throws -> (RapportEngine, ManualClock) {
    let clock = ManualClock(now: start)
    return (RapportEngine(store: try backend.makeStore(), clock: clock, ids: SequentialIDGenerator(), logger: quietLogger), clock)
}

/// Everything the store holds about a set of customers, for exact before/after comparisons.
struct CustomerSnapshot: Hashable, Sendable {
    var record: CustomerRecord
    var identities: [IdentityRecord]
    var stats: CustomerStats?
    var orders: [OrderRecord]
    var events: [EventRecord]
    var interactions: [InteractionRecord]
    var consents: [ConsentRecord]

    /// The same snapshot without the bookkeeping that legitimately moves (version, update time).
    var content: CustomerSnapshot {
        var copy = self
        copy.record.version = 0
        copy.record.updatedAt = Timestamp(millisecondsSinceEpoch: 0)
        return copy
    }
}

func snapshot(_ crm: RapportEngine, _ id: CustomerID) async throws -> CustomerSnapshot {
    try await crm.store.read { tx in
        guard let record = try tx.customer(id) else { throw RapportError.notFound(entity: "customer", id: id.rawValue) }
        return CustomerSnapshot(
            record: record, identities: try tx.identities(of: id), stats: try tx.stats(of: id),
            orders: try tx.orders(of: id, before: nil, limit: .max), events: try tx.events(of: id, before: nil, limit: .max),
            interactions: try tx.interactions(of: id, before: nil, limit: .max), consents: try tx.consents(of: id))
    }
}

func event(_ id: String, _ type: String = "page.viewed", at time: Timestamp, _ identities: IdentityInput..., properties: [String: AttributeValue] = [:])
    -> IngestItem
{
    .event(EventInput(id: id, type: type, occurredAt: time, channel: .web, identities: identities, properties: properties))
}

func order(
    _ externalID: String, at time: Timestamp, _ identities: IdentityInput..., totalMinor: Int64 = 1000, currency: String = "EUR",
    status: OrderStatus = .placed, statusAt: Timestamp? = nil
) -> IngestItem {
    .order(
        OrderInput(
            source: "web", externalID: externalID, identities: identities, lines: [OrderLine(sku: "SKU-\(externalID)", quantity: 1, unitPriceMinor: totalMinor)],
            currency: currency, status: status, placedAt: time, statusChangedAt: statusAt))
}

/// Asserts that `body` throws exactly `expected`.
func expectError<T>(_ expected: RapportError, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T) async {
    do {
        _ = try await body()
        Issue.record("expected \(expected), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as RapportError {
        #expect(error == expected, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(expected), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Returns the RapportError `body` throws (recording an issue when it throws none).
func captureError<T>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T) async -> RapportError? {
    do {
        _ = try await body()
        Issue.record("expected an error, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as RapportError {
        return error
    } catch {
        Issue.record("expected a RapportError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A small seeded random generator, so property tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
