import Benchmark
import Foundation
import Rapport
import RapportCore
import RapportMemory
import RapportSQLite

// Customer 360: the latency of `customer360(id)` for random existing customers of a store of 100,000 customers,
// each with 3 events and 2 orders (built through the engine's ingest before any measurement).

enum Customer360Workload {
    static let customerCount = 100_000
    static let batchSize = 10_000

    /// Five items per customer: order, event, event, order, event, an hour apart, customers 10 ms apart.
    static func items() -> [IngestItem] {
        let start = Workload.now - .seconds(30 * 86_400)
        var items: [IngestItem] = []
        items.reserveCapacity(customerCount * 5)
        for customer in 0..<customerCount {
            let identity = IdentityInput.email("c\(customer)@example.com")
            let base = start + .milliseconds(10 * customer)
            for step in 0..<5 {
                let at = base + .seconds(3600 * step)
                if step == 0 || step == 3 {
                    items.append(
                        .order(
                            OrderInput(
                                source: "web", externalID: "o\(customer)-\(step)", identities: [identity],
                                lines: [OrderLine(sku: "SKU-\(customer % 500)", name: "Item \(customer % 500)", quantity: Int64(1 + step), unitPriceMinor: 1999)],
                                currency: "EUR", shippingMinor: 490, status: step == 0 ? .delivered : .paid, placedAt: at)))
                } else {
                    items.append(
                        .event(
                            EventInput(
                                id: "c\(customer)-e\(step)", type: Workload.eventTypes[step % Workload.eventTypes.count], occurredAt: at,
                                identities: [identity], properties: ["sku": .string("SKU-\(customer % 500)")])))
                }
            }
        }
        return items
    }

    /// Ingests the workload and returns the customers it created, in creation order.
    static func populate(_ engine: RapportEngine) async throws -> [CustomerID] {
        var customers: [CustomerID] = []
        customers.reserveCapacity(customerCount)
        for batch in Workload.batches(items(), size: batchSize) {
            customers += try await ingestChecked(engine, batch).createdCustomers
        }
        guard customers.count == customerCount else { throw BenchmarkFailure("expected \(customerCount) customers, got \(customers.count)") }
        return customers
    }
}

/// What a Customer360 benchmark keeps between setup, iterations and teardown.
final class Customer360State: @unchecked Sendable {
    var engine: RapportEngine?
    var customers: [CustomerID] = []
    var random = SeededGenerator(seed: 360)
    var latencies: [Double] = []
    var sqlitePath: String?
}

func registerCustomer360Benchmarks() {
    let goalMicroseconds = 50.0

    for backend in ["memory", "sqlite"] {
        let state = Customer360State()
        Benchmark(
            "Customer360/\(backend)",
            configuration: .init(
                metrics: [.wallClock, .throughput, RapportMetric.latencyMicroseconds], timeUnits: .microseconds, warmupIterations: 200,
                maxDuration: .seconds(8), maxIterations: 20_000)
        ) { benchmark in
            let engine = state.engine!
            let id = state.customers[Int.random(in: 0..<state.customers.count, using: &state.random)]
            let clock = ContinuousClock()
            benchmark.startMeasurement()
            let start = clock.now
            let view = try await engine.customer360(id)
            let elapsed = start.duration(to: clock.now)
            benchmark.stopMeasurement()
            guard view.timeline.entries.count == 5, view.recentOrders.count == 2 else {
                throw BenchmarkFailure("unexpected 360 of \(id): \(view.timeline.entries.count) timeline entries, \(view.recentOrders.count) orders")
            }
            state.latencies.append(elapsed.microseconds)
            benchmark.measurement(RapportMetric.latencyMicroseconds, max(1, Int(elapsed.microseconds.rounded())))
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
            let engine = makeEngine(store)
            state.customers = try await Customer360Workload.populate(engine)
            state.engine = engine
            report("Customer360/\(backend): built \(state.customers.count) customers with 3 events and 2 orders each in \(fixed(start.duration(to: clock.now).seconds, 1)) s")
        } teardown: {
            // The warm-up iterations are recorded too: leave them out.
            let sorted = state.latencies.dropFirst(200).sorted()
            if !sorted.isEmpty {
                let p50 = percentile(sorted, 50)
                let p99 = percentile(sorted, 99)
                var line = "Customer360/\(backend): p50 \(fixed(p50, 1)) µs, p99 \(fixed(p99, 1)) µs over \(sorted.count) calls"
                if backend == "sqlite" { line += " (goal p50 ≤ \(fixed(goalMicroseconds, 0)) µs: \(p50 <= goalMicroseconds ? "met" : "MISSED"))" }
                report(line)
            }
            if let engine = state.engine {
                try await Customer360Raw.measureEmptyRead(engine.store, backend: backend)
            }
            if backend == "sqlite", let path = state.sqlitePath {
                try Customer360Raw.measureFloor(path: path, customers: state.customers)
            }
            state.engine = nil
        }
    }
}

/// The floor under the SQLite 360: the same 8 queries `SQLiteStore` runs for one 360 (one orders read serves the
/// recent orders and the timeline), through plain prepared statements on the same file, every row stepped and every
/// column read as text or integer, nothing decoded.
enum Customer360Raw {
    static let queries = [
        "SELECT id, merged_into, merge_id, profile, field_times, created_at, updated_at, version FROM customers WHERE id = ?1",
        "SELECT kind, source, value, customer_id, home_customer_id, created_at FROM identities WHERE customer_id = ?1 ORDER BY key",
        "SELECT order_count, spent, first_order_at, last_order_at, event_count, last_seen_at FROM customer_stats WHERE customer_id = ?1",
        "SELECT sequence, id, customer_id, home_customer_id, channel, purpose, status, source, occurred_at, recorded_at FROM consents WHERE customer_id = ?1 ORDER BY occurred_at, sequence",
        "SELECT id, survivor_id, absorbed_id, sequence, merged_at, unmerged_at, details FROM merges WHERE survivor_id = ?1 ORDER BY sequence, rowid",
        "SELECT sequence, id, customer_id, home_customer_id, type, occurred_at, received_at, channel, identities, properties FROM events WHERE customer_id = ?1 ORDER BY occurred_at DESC, sequence DESC LIMIT 21",
        "SELECT sequence, id, source, external_id, channel, customer_id, home_customer_id, status, currency, placed_at, updated_at, details FROM orders WHERE customer_id = ?1 ORDER BY placed_at DESC, sequence DESC LIMIT 21",
        "SELECT sequence, id, customer_id, home_customer_id, channel, direction, subject, summary, agent, occurred_at FROM interactions WHERE customer_id = ?1 ORDER BY occurred_at DESC, sequence DESC LIMIT 21",
    ]

    /// The cost of one `Store.read` that does nothing: the backend's transaction and (for SQLite) the hop to a
    /// reader connection's queue and back, which every 360 pays before its first query.
    static func measureEmptyRead(_ store: any Store, backend: String) async throws {
        let clock = ContinuousClock()
        var latencies: [Double] = []
        for round in 0..<21_000 {
            let start = clock.now
            let sequence = try await store.read { tx in try tx.currentSequence() }
            let elapsed = start.duration(to: clock.now)
            blackHole(sequence)
            if round >= 1_000 { latencies.append(elapsed.microseconds) }
        }
        let sorted = latencies.sorted()
        report(
            "Customer360/\(backend) for comparison: an empty Store.read (one trivial query) costs "
                + "p50 \(fixed(percentile(sorted, 50), 1)) µs, p99 \(fixed(percentile(sorted, 99), 1)) µs")
    }

    static func measureFloor(path: String, customers: [CustomerID]) throws {
        let db = try RawConnection(path: path)
        let statements = try queries.map(db.prepare)
        var random = SeededGenerator(seed: 361)
        let clock = ContinuousClock()
        var latencies: [Double] = []
        var bytes = 0
        for round in 0..<21_000 {
            let id = customers[Int.random(in: 0..<customers.count, using: &random)].rawValue
            let start = clock.now
            try db.execute("BEGIN")
            for statement in statements {
                statement.bind(1, id)
                while try statement.step() {
                    for column in 0..<statement.columnCount { bytes &+= statement.isNull(column) ? 0 : statement.text(column).utf8.count }
                }
                statement.reset()
            }
            try db.execute("COMMIT")
            if round >= 1_000 { latencies.append(start.duration(to: clock.now).microseconds) }
        }
        blackHole(bytes)
        let sorted = latencies.sorted()
        report(
            "Customer360/sqlite raw floor (the same 8 SELECTs in one read transaction, plain prepared statements, no decoding): "
                + "p50 \(fixed(percentile(sorted, 50), 1)) µs, p99 \(fixed(percentile(sorted, 99), 1)) µs")
    }
}
