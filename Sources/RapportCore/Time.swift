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
        self.millisecondsSinceEpoch = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

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
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
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
}

/// The wall clock of the machine.
public struct SystemClock: RapportClock {
    public init() {}

    public func now() -> Timestamp { Timestamp(Date()) }
}

/// A clock that moves only when told to: the clock for tests.
///
/// ```swift
/// let clock = ManualClock(now: Timestamp(millisecondsSinceEpoch: 1_700_000_000_000))
/// clock.advance(by: .seconds(3600))
/// ```
public final class ManualClock: RapportClock {
    private let current: Mutex<Timestamp>

    /// A clock standing at `now` (by default 2026-01-01T00:00:00Z).
    public init(now: Timestamp = Timestamp(millisecondsSinceEpoch: 1_767_225_600_000)) {
        current = Mutex(now)
    }

    public func now() -> Timestamp { current.withLock { $0 } }

    /// Moves the clock forward; a negative duration is ignored, time never goes back.
    public func advance(by duration: Duration) {
        current.withLock { now in
            if duration > .zero { now = now + duration }
        }
    }

    /// Sets the clock to `instant` if it is later than the current time.
    public func advance(to instant: Timestamp) {
        current.withLock { now in now = max(now, instant) }
    }
}
