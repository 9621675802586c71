import Benchmark
import Foundation
import Rapport
import RapportCore
import RapportMemory
import RapportSQLite

// Identity resolution against 1,000,000 customers: each iteration ingests one batch of 1,000 events, 90% of them
// from existing customers picked at random (the lookup hits) and 10% from new e-mail addresses (a miss, then a new
// customer). A resolution here is one event taken through the public ingest: validation, normalization, the identity
// lookup, the event row and the customer's aggregates.

enum IdentityWorkload {
    static let customerCount = 1_000_000
    static let batchSize = 1_000
    static let newPerBatch = 100

    static func existingEmail(_ index: Int) -> String { "p\(index)@example.com" }

    /// Writes the customers straight through `Store.write` (customer and e-mail identity rows, 10,000 per
    /// transaction): much faster than ingesting, and the same rows the engine would hold.
    static func populate(_ store: any Store) async throws {
        let ids = SortableRandomIDGenerator()
        let created = Workload.now - .seconds(90 * 86_400)
        for first in stride(from: 0, to: customerCount, by: 10_000) {
            let records = (first..<min(first + 10_000, customerCount)).map { index in
                let id = ids.make(CustomerID.self, at: created)
                return (
                    CustomerRecord(id: id, profile: CustomerProfile(), fieldTimes: [:], state: .active, createdAt: created, updatedAt: created, version: 1),
                    IdentityRecord(identity: Identity(kind: .email, value: existingEmail(index)), customerID: id, homeCustomerID: id, createdAt: created)
                )
            }
            try await store.write { tx in
                for (customer, identity) in records {
                    try tx.insertCustomer(customer)
                    try tx.insertIdentity(identity)
                }
            }
        }
    }

    /// Batch `round`: 900 known e-mails at random, 100 new ones, unique event ids.
    static func batch(round: Int, random: inout SeededGenerator) -> [IngestItem] {
        (0..<batchSize).map { index in
            let email =
                index % (batchSize / newPerBatch) == 0
                ? "new-\(round)-\(index)@example.com" : existingEmail(Int.random(in: 0..<customerCount, using: &random))
            return .event(
                EventInput(
                    id: "r\(round)-\(index)", type: "page.viewed", occurredAt: Workload.now - .seconds(60) + .milliseconds(index),
                    identities: [.email(email)], properties: ["path": .string("/p/\(index % 100)")]))
        }
    }
}

final class IdentityState: @unchecked Sendable {
    var store: (any Store)?
    var engine: RapportEngine?
    var sqlitePath: String?
    var random = SeededGenerator(seed: 1_000_000)
    var round = 0
    var rates: [Double] = []
}

func registerIdentityResolutionBenchmarks() {
    for backend in ["memory", "sqlite"] {
        let state = IdentityState()
        Benchmark(
            "IdentityResolution/1M/\(backend)",
            configuration: .init(
                metrics: [.wallClock, RapportMetric.itemsPerSecond], warmupIterations: 2, maxDuration: .seconds(10),
                maxIterations: backend == "memory" ? 200 : 60)
        ) { benchmark in
            let engine = state.engine!
            state.round += 1
            let items = IdentityWorkload.batch(round: state.round, random: &state.random)
            let clock = ContinuousClock()
            benchmark.startMeasurement()
            let start = clock.now
            let result = try await ingestChecked(engine, items)
            let elapsed = start.duration(to: clock.now)
            benchmark.stopMeasurement()
            guard result.createdCustomers.count == IdentityWorkload.newPerBatch else {
                throw BenchmarkFailure("expected \(IdentityWorkload.newPerBatch) new customers, got \(result.createdCustomers.count)")
            }
            let rate = Double(items.count) / elapsed.seconds
            state.rates.append(rate)
            benchmark.measurement(RapportMetric.itemsPerSecond, Int(rate))
        } setup: {
            let clock = ContinuousClock()
            let start = clock.now
            let store: any Store
            if backend == "sqlite" {
                let sqlite = try SQLiteStore.temporary()
                state.sqlitePath = sqlite.path
                store = sqlite
            } else {
                store = MemoryStore()
            }
            try await IdentityWorkload.populate(store)
            state.store = store
            state.engine = makeEngine(store)
            report("IdentityResolution/1M/\(backend): wrote 1,000,000 customers and identities in \(fixed(start.duration(to: clock.now).seconds, 1)) s")
        } teardown: {
            let sorted = state.rates.dropFirst(2).sorted()
            if !sorted.isEmpty {
                report(
                    "IdentityResolution/1M/\(backend): \(formatRate(percentile(sorted, 50))) resolutions/s median "
                        + "(batches of 1,000 events: 90% existing customers, 10% new), over \(sorted.count) batches")
            }
            if let store = state.store {
                try await lookupFloor(store, backend: backend, sqlitePath: state.sqlitePath)
            }
            state.engine = nil
            state.store = nil
        }
    }
}

/// For comparison in the same run: the identity lookups alone, through `Store.read` (the backend's cost without the
/// engine) and, for SQLite, through plain prepared statements on the same file (the SQLite floor).
private func lookupFloor(_ store: any Store, backend: String, sqlitePath: String?) async throws {
    var random = SeededGenerator(seed: 7)
    let keys = (0..<100_000).map { _ in Identity(kind: .email, value: IdentityWorkload.existingEmail(Int.random(in: 0..<IdentityWorkload.customerCount, using: &random))) }
    let clock = ContinuousClock()
    let storeTime = try await clock.measure {
        for first in stride(from: 0, to: keys.count, by: 1_000) {
            let slice = Array(keys[first..<first + 1_000])
            let found = try await store.read { tx in try slice.reduce(0) { $0 + (try tx.identity($1) == nil ? 0 : 1) } }
            guard found == slice.count else { throw BenchmarkFailure("lookup missed") }
        }
    }
    var line = "IdentityResolution/1M/\(backend) for comparison: identity lookups alone via Store.read \(formatRate(Double(keys.count) / storeTime.seconds))/s"
    if let sqlitePath {
        let db = try RawConnection(path: sqlitePath)
        let find = try db.prepare("SELECT customer_id FROM identities WHERE key = ?")
        let rawTime = try clock.measure {
            try db.execute("BEGIN")
            for key in keys {
                find.bind(1, key.key)
                guard try find.step() else { throw BenchmarkFailure("raw lookup missed") }
                blackHole(find.text(0))
                find.reset()
            }
            try db.execute("COMMIT")
        }
        line += ", via plain prepared statements \(formatRate(Double(keys.count) / rawTime.seconds))/s"
    }
    report(line)
}
