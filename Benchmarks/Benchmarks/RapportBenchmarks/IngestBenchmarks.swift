import Benchmark
import Foundation
import Rapport
import RapportCore
import RapportMemory
import RapportSQLite

// Ingest: 100,000 events in batches of 1,000 into a fresh store, from 20,000 visitors (half known by e-mail, half
// by an anonymous device id), so every batch resolves identities, creates customers and updates aggregates.

enum IngestWorkload {
    static let eventCount = 100_000
    static let visitorCount = 20_000
    static let batchSize = 1_000

    /// The batches, built once per process (outside every measurement).
    static let batches: [[IngestItem]] = Workload.batches(
        Workload.events(count: eventCount, customers: visitorCount, seed: 42).map(IngestItem.event), size: batchSize)

    /// The same events as raw rows, for the raw SQLite baseline.
    static let rawBatches: [[RawEventRow]] = batches.map { batch in
        batch.map { item in
            guard case .event(let event) = item else { fatalError("events only") }
            return RawEventRow(event)
        }
    }
}

func registerIngestBenchmarks() {
    let goalEventsPerSecond = 1_000_000.0
    let goalPercentOfRaw = 50.0

    // MARK: Ingest/memory

    let memoryRates = Box<[Double]>([])
    Benchmark(
        "Ingest/memory",
        configuration: .init(
            metrics: [.wallClock, .peakMemoryResident, RapportMetric.itemsPerSecond], warmupIterations: 1,
            maxDuration: .seconds(20), maxIterations: 10)
    ) { benchmark in
        let engine = makeEngine(MemoryStore())
        let batches = IngestWorkload.batches
        let clock = ContinuousClock()
        benchmark.startMeasurement()
        let start = clock.now
        for batch in batches { _ = try await ingestChecked(engine, batch) }
        let elapsed = start.duration(to: clock.now)
        benchmark.stopMeasurement()
        let rate = Double(IngestWorkload.eventCount) / elapsed.seconds
        if benchmark.currentIteration > 0 { memoryRates.value.append(rate) }
        benchmark.measurement(RapportMetric.itemsPerSecond, Int(rate))
        blackHole(engine)
    } setup: {
        _ = IngestWorkload.batches
    } teardown: {
        let sorted = memoryRates.value.sorted()
        report(
            "Ingest/memory: \(formatRate(percentile(sorted, 50))) events/s median over \(sorted.count) runs of 100k events "
                + "(goal ≥ \(formatRate(goalEventsPerSecond)) events/s: \(percentile(sorted, 50) >= goalEventsPerSecond ? "met" : "MISSED"))")
    }

    // MARK: Ingest/sqlite, with the raw SQLite limit measured in the same iteration

    struct SQLiteRun {
        var engine: Double
        var raw: Double
        var eventsOnly: Double
    }
    let sqliteRuns = Box<[SQLiteRun]>([])
    let eventsOnlyCustomers = Box<[String: String]>([:])
    Benchmark(
        "Ingest/sqlite",
        configuration: .init(
            metrics: [.wallClock, RapportMetric.itemsPerSecond, RapportMetric.rawRowsPerSecond, RapportMetric.percentOfRaw, RapportMetric.percentOfRawEventsOnly],
            warmupIterations: 0, maxDuration: .seconds(60), maxIterations: 5)
    ) { benchmark in
        let clock = ContinuousClock()
        let directory = try makeTemporaryDirectory("ingest")
        defer { try? FileManager.default.removeItem(at: directory) }

        // Rapport on a fresh file.
        var engineElapsed = Duration.zero
        do {
            let store = try SQLiteStore(path: directory.appendingPathComponent("rapport.sqlite").path)
            let engine = makeEngine(store)
            let batches = IngestWorkload.batches
            benchmark.startMeasurement()
            let start = clock.now
            for batch in batches { _ = try await ingestChecked(engine, batch) }
            engineElapsed = start.duration(to: clock.now)
            benchmark.stopMeasurement()
            try store.close()
        }

        // The raw limit on fresh files of its own, same process, right after.
        let raw = try clock.measure {
            try RawIngest.full(IngestWorkload.rawBatches, path: directory.appendingPathComponent("raw.sqlite").path)
        }
        let eventsOnly = try clock.measure {
            try RawIngest.eventsOnly(IngestWorkload.rawBatches, customers: eventsOnlyCustomers.value, path: directory.appendingPathComponent("raw-events.sqlite").path)
        }

        // Both sides must have written the same rows, or the ratio means nothing.
        let engineRows = try RawIngest.rowCounts(path: directory.appendingPathComponent("rapport.sqlite").path)
        let rawRows = try RawIngest.rowCounts(path: directory.appendingPathComponent("raw.sqlite").path)
        guard engineRows == rawRows, engineRows["events"] == Int64(IngestWorkload.eventCount) else {
            throw BenchmarkFailure("the engine wrote \(engineRows), the raw baseline \(rawRows)")
        }

        let count = Double(IngestWorkload.eventCount)
        let run = SQLiteRun(engine: count / engineElapsed.seconds, raw: count / raw.seconds, eventsOnly: count / eventsOnly.seconds)
        sqliteRuns.value.append(run)
        benchmark.measurement(RapportMetric.itemsPerSecond, Int(run.engine))
        benchmark.measurement(RapportMetric.rawRowsPerSecond, Int(run.raw))
        benchmark.measurement(RapportMetric.percentOfRaw, Int((100 * run.engine / run.raw).rounded()))
        benchmark.measurement(RapportMetric.percentOfRawEventsOnly, Int((100 * run.engine / run.eventsOnly).rounded()))
        report(
            "Ingest/sqlite run \(sqliteRuns.value.count): engine \(formatRate(run.engine)) events/s, raw \(formatRate(run.raw))/s, "
                + "raw events-only \(formatRate(run.eventsOnly))/s")
    } setup: {
        _ = IngestWorkload.rawBatches
        let ids = SortableRandomIDGenerator()
        var customers: [String: String] = [:]
        for batch in IngestWorkload.rawBatches {
            for row in batch where customers[row.identityKey] == nil {
                customers[row.identityKey] = CustomerID.prefix + ids.next(at: Workload.now)
            }
        }
        eventsOnlyCustomers.value = customers
    } teardown: {
        let runs = sqliteRuns.value
        guard !runs.isEmpty else { return }
        let engine = percentile(runs.map(\.engine).sorted(), 50)
        let raw = percentile(runs.map(\.raw).sorted(), 50)
        let eventsOnly = percentile(runs.map(\.eventsOnly).sorted(), 50)
        let ratios = runs.map { $0.engine / $0.raw }.sorted()
        let ratio = percentile(ratios, 50)
        report("Ingest/sqlite: engine \(formatRate(engine)) events/s; raw SQLite (same statements) \(formatRate(raw)) rows/s; raw events rows only \(formatRate(eventsOnly)) rows/s (medians of \(runs.count) runs)")
        report(
            "ratio sqlite-ingest/raw-sqlite = \(fixed(ratio, 3)) (min \(fixed(ratios.first!, 3)), max \(fixed(ratios.last!, 3)); "
                + "goal ≥ \(fixed(goalPercentOfRaw / 100)): \(ratio * 100 >= goalPercentOfRaw ? "met" : "MISSED"))")
        report("ratio sqlite-ingest/raw-sqlite-events-only = \(fixed(engine / eventsOnly)) (for information: the events table alone)")
    }
}
