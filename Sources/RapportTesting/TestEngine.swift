public import Rapport
public import RapportCore
public import RapportMemory
import Logging

/// An engine for tests: in-memory storage, a manual clock, deterministic ids. One line, no files, no sleeps.
///
/// ```swift
/// import Rapport
/// import RapportTesting
///
/// let test = TestRapport()
/// let ada = try await test.crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
/// try await test.advance(by: .seconds(90 * 86_400))   // 90 days pass; waits, date triggers and re-checks run on time
/// ```
public struct TestRapport: Sendable {
    /// The engine under test.
    public let crm: RapportEngine
    /// The clock the engine reads; advance it to let time pass.
    public let clock: ManualClock
    /// The in-memory backend, for direct inspection.
    public let store: MemoryStore

    /// A fresh engine whose clock stands at `now` (by default 2026-01-01T00:00:00Z).
    public init(now: Timestamp = Timestamp(millisecondsSinceEpoch: 1_767_225_600_000), defaultPhoneRegion: String = "US") {
        clock = ManualClock(now: now)
        store = MemoryStore()
        crm = RapportEngine(
            store: store, clock: clock, ids: SequentialIDGenerator(), defaultPhoneRegion: defaultPhoneRegion,
            logger: Logger(label: "rapport.test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// Lets time pass: moves the clock forward and runs every scheduled job at its own due time, in order (rule
    /// waits, date triggers, schedules, segment re-checks), as a scheduler would have.
    @discardableResult
    public func advance(by duration: Duration) async throws(RapportError) -> Int {
        try await crm.advanceManualClock(to: clock.now() + duration)
    }

    /// Lets time pass up to `instant` (see ``advance(by:)``).
    @discardableResult
    public func advance(to instant: Timestamp) async throws(RapportError) -> Int {
        try await crm.advanceManualClock(to: instant)
    }
}
