import Benchmark
import Foundation
import Rapport
import RapportCore

// Deterministic shop traffic shared by the benchmarks, plus the small helpers they use to time and report.

/// SplitMix64: a tiny seeded generator, so every run ingests exactly the same traffic.
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

enum Workload {
    /// The engine's clock in every benchmark: 2026-01-01T00:00:00Z, as `ManualClock` starts.
    static let now = Timestamp(millisecondsSinceEpoch: 1_767_225_600_000)
    /// Traffic starts a week before `now` and moves 5 ms per event.
    static let trafficStart = now - .seconds(7 * 86_400)

    static let eventTypes = ["page.viewed", "product.viewed", "cart.added", "checkout.started"]

    /// The identity of shop visitor `index`: even visitors are known by e-mail, odd ones by an anonymous device id.
    static func visitorIdentity(_ index: Int) -> IdentityInput {
        index % 2 == 0 ? .email("shopper\(index)@example.com") : .anonymousID("device-\(index)")
    }

    /// `count` events from `customers` visitors picked at random, each with one identity and one small property.
    static func events(count: Int, customers: Int, seed: UInt64, idPrefix: String = "evt") -> [EventInput] {
        var random = SeededGenerator(seed: seed)
        return (0..<count).map { index in
            let visitor = Int.random(in: 0..<customers, using: &random)
            return EventInput(
                id: "\(idPrefix)-\(index)", type: eventTypes[index % eventTypes.count],
                occurredAt: trafficStart + .milliseconds(5 * index), channel: .web,
                identities: [visitorIdentity(visitor)],
                properties: ["sku": .string("SKU-\(visitor % 500)")])
        }
    }

    /// Splits items into ingest batches.
    static func batches<T>(_ items: [T], size: Int) -> [[T]] {
        stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min($0 + size, items.count)]) }
    }
}

/// A fresh engine with the benchmarks' fixed clock.
func makeEngine(_ store: any Store) -> RapportEngine {
    RapportEngine(store: store, clock: ManualClock(now: Workload.now))
}

/// Ingests a batch and fails loudly if anything was rejected: a benchmark of rejected items would measure nothing.
func ingestChecked(_ engine: RapportEngine, _ items: [IngestItem]) async throws -> IngestResult {
    let result = try await engine.ingest(items)
    if result.rejectedCount > 0 {
        throw BenchmarkFailure("\(result.rejectedCount) of \(items.count) items were rejected: \(result.outcomes.first { if case .rejected = $0 { true } else { false } }!)")
    }
    return result
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A new empty directory under the system temp dir, for database files.
func makeTemporaryDirectory(_ label: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-bench-\(label)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

extension Duration {
    var seconds: Double {
        let (whole, atto) = components
        return Double(whole) + Double(atto) / 1e18
    }

    var microseconds: Double { seconds * 1e6 }
}

/// The `p`-th percentile (0...100) of sorted samples, nearest rank.
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

/// One line of the report, written at once so the lines of a run stay readable among the plugin's output.
func report(_ line: String) {
    FileHandle.standardError.write(Data(("[rapport] " + line + "\n").utf8))
}

/// `value` with `digits` decimals.
func fixed(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }

func formatRate(_ perSecond: Double) -> String {
    perSecond >= 1e6 ? String(format: "%.2fM", perSecond / 1e6) : String(format: "%.1fk", perSecond / 1e3)
}

/// Custom metrics: the framework records them per iteration beside its own wall clock.
enum RapportMetric {
    /// Items (events, resolutions) per second, measured with `ContinuousClock` around the measured part.
    static let itemsPerSecond = BenchmarkMetric.custom("items/s", polarity: .prefersLarger, useScalingFactor: false)
    /// The same work done by plain prepared statements (the raw SQLite limit), per second.
    static let rawRowsPerSecond = BenchmarkMetric.custom("raw items/s", polarity: .prefersLarger, useScalingFactor: false)
    /// Engine throughput as a percentage of the raw limit's.
    static let percentOfRaw = BenchmarkMetric.custom("% of raw", polarity: .prefersLarger, useScalingFactor: false)
    /// The same as a percentage of inserting the events rows alone.
    static let percentOfRawEventsOnly = BenchmarkMetric.custom("% of raw events-only", polarity: .prefersLarger, useScalingFactor: false)
    /// Latency of one call in microseconds.
    static let latencyMicroseconds = BenchmarkMetric.custom("µs", polarity: .prefersSmaller, useScalingFactor: false)
}

/// Mutable state a benchmark's setup hands to its iterations and teardown. Only touched by the benchmark's own
/// thread, one step after another, hence `@unchecked Sendable`.
final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
