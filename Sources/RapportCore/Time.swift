public import Foundation
import Synchronization

/// A UTC instant with millisecond precision, the only representation of time in Rapport.
public struct Timestamp: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    /// The instant of a Foundation date, truncated to the millisecond.
    public init(_ date: Date) {
        // Round to the microsecond first: a Double just below a whole millisecond must not lose it.
        let microseconds = (date.timeIntervalSince1970 * 1_000_000).rounded()
        self.millisecondsSinceEpoch = Int64((microseconds / 1000).rounded(.down))
    }

    /// The last millisecond of year 9999, the latest instant Rapport keeps (and protobuf's `Timestamp` allows).
    public static let latest = Timestamp(millisecondsSinceEpoch: 253_402_300_799_999)

    /// The first instant of year 1 (UTC), the earliest Rapport keeps (and protobuf's `Timestamp` allows).
    public static let earliest = Timestamp(millisecondsSinceEpoch: -62_135_596_800_000)

    /// The problem of an instant that is not ``isKept``.
    package static let outsideKeptRange = "is outside the years 1 to 9999 (UTC) that Rapport keeps"

    /// True from ``earliest`` to ``latest``: an instant Rapport keeps. Values outside are refused where they come in.
    public var isKept: Bool { self >= .earliest && self <= .latest }

    /// The same instant as a Foundation date.
    public var date: Date { Date(timeIntervalSince1970: Double(millisecondsSinceEpoch) / 1000) }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        Timestamp(millisecondsSinceEpoch: lhs.millisecondsSinceEpoch + rhs.milliseconds)
    }

    public static func - (lhs: Timestamp, rhs: Duration) -> Timestamp {
        Timestamp(millisecondsSinceEpoch: lhs.millisecondsSinceEpoch - rhs.milliseconds)
    }

    /// ISO 8601 in UTC with milliseconds, for example `2026-11-25T09:00:00.000Z`.
    public var description: String {
        // Civil-calendar arithmetic on the integer (no formatter, no floating point): rules write it into every
        // reason they record.
        let (days, rest) = millisecondsSinceEpoch.quotientAndRemainder(dividingBy: 86_400_000)
        let millisOfDay = rest < 0 ? rest + 86_400_000 : rest
        let date = LocalDate.civil(daysSinceEpoch: Int(rest < 0 ? days - 1 : days))
        func digits(_ value: Int64, _ count: Int) -> String {
            let text = String(value)
            return text.count >= count ? text : String(repeating: "0", count: count - text.count) + text
        }
        let year = Int64(date.year ?? 1970)
        let yearText = year < 0 ? "-" + digits(-year, 4) : digits(year, 4)
        return "\(yearText)-\(digits(Int64(date.month), 2))-\(digits(Int64(date.day), 2))T\(digits(millisOfDay / 3_600_000, 2)):"
            + "\(digits(millisOfDay / 60_000 % 60, 2)):\(digits(millisOfDay / 1000 % 60, 2)).\(digits(millisOfDay % 1000, 3))Z"
    }
}

extension Duration {
    /// The whole milliseconds of this duration.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Where the engine reads the current time. Inject a ``ManualClock`` in tests; nothing in Rapport sleeps.
public protocol RapportClock: Sendable {
    /// The current instant.
    func now() -> Timestamp
    /// Suspends until the clock reads `instant` or later (the scheduler waits for its next job this way).
    /// Throws `CancellationError` when the task is cancelled.
    func sleep(until instant: Timestamp) async throws
    /// Suspends for `duration` as this clock counts it (waits that poll every few seconds): the system clock
    /// sleeps that long whatever the wall clock does meanwhile (a step back would stretch a wait until an instant).
    /// Throws `CancellationError` when the task is cancelled.
    func sleep(for duration: Duration) async throws
}

extension RapportClock {
    /// Sleeps until this clock reads `duration` later than now.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now() + duration)
    }

    /// Sleeps on the system's clock for the time left, then checks this clock again.
    public func sleep(until instant: Timestamp) async throws {
        while now() < instant {
            let left = instant.millisecondsSinceEpoch - now().millisecondsSinceEpoch
            try await Task.sleep(for: .milliseconds(max(1, min(left, 60_000))))
        }
    }
}

/// The wall clock of the machine.
public struct SystemClock: RapportClock {
    public init() {}

    public func now() -> Timestamp { Timestamp(Date()) }

    /// Sleeps on the system's monotonic clock.
    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}

/// A clock that moves only when told to: the clock for tests.
///
/// ```swift
/// let clock = ManualClock(now: Timestamp(millisecondsSinceEpoch: 1_700_000_000_000))
/// clock.advance(by: .seconds(3600))
/// ```
public final class ManualClock: RapportClock {
    private struct State {
        var now: Timestamp
        var sleepers: [(until: Timestamp, id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID = 0
    }

    private let state: Mutex<State>

    /// A clock standing at `now` (by default 2026-01-01T00:00:00Z).
    public init(now: Timestamp = Timestamp(millisecondsSinceEpoch: 1_767_225_600_000)) {
        state = Mutex(State(now: now))
    }

    public func now() -> Timestamp { state.withLock { $0.now } }

    /// How many `sleep(until:)` calls were made, and how many are suspended now (for tests of waiting loops).
    package var sleeps: (made: Int, waiting: Int) { state.withLock { ($0.nextID, $0.sleepers.count) } }

    /// Moves the clock forward; a negative duration is ignored, time never goes back.
    public func advance(by duration: Duration) {
        guard duration > .zero else { return }
        move { $0 + duration }
    }

    /// Sets the clock to `instant` if it is later than the current time, and wakes the sleepers it reaches.
    public func advance(to instant: Timestamp) {
        move { max($0, instant) }
    }

    private func move(_ change: (Timestamp) -> Timestamp) {
        let woken = state.withLock { state in
            state.now = change(state.now)
            let now = state.now
            let due = state.sleepers.filter { $0.until <= now }
            state.sleepers.removeAll { $0.until <= now }
            return due.map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }

    /// Suspends until the clock is advanced to `instant` or later; never waits on real time.
    public func sleep(until instant: Timestamp) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.now >= instant || Task.isCancelled { return true }
                    state.sleepers.append((instant, id, continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            try Task.checkCancellation()
        } onCancel: {
            let cancelled = state.withLock { state in
                let found = state.sleepers.first { $0.id == id }?.continuation
                state.sleepers.removeAll { $0.id == id }
                return found
            }
            cancelled?.resume(throwing: CancellationError())
        }
    }
}
