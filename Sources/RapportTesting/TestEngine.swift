public import Rapport
public import RapportCore
public import RapportMemory
public import Logging

/// An engine for tests: in-memory storage, a manual clock, deterministic ids. One line, no files, no sleeps.
///
/// ```swift
/// import Rapport
/// import RapportCore
/// import RapportTesting
///
/// let test = TestRapport()
/// let ada = try await test.crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
/// try await test.advance(by: .seconds(90 * 86_400))   // 90 days pass; waits, date triggers and re-checks run on time
/// ```
public struct TestRapport: Sendable {
    /// The engine under test.
    public let crm: RapportEngine
    /// The clock the engine reads. Read it to stamp records (`test.clock.now()`); let time pass with
    /// ``advance(by:)``, which runs what comes due on the way (advancing the clock itself runs nothing).
    public let clock: ManualClock
    /// The in-memory backend, for direct inspection.
    public let store: MemoryStore

    /// A fresh engine whose clock stands at `now` (by default 2026-01-01T00:00:00Z).
    ///
    /// - Parameters:
    ///   - automation: the rules engine's settings (default time zone, retention, ...).
    ///   - logger: where the engine logs (nil: nowhere); pass one to see, for instance, a scheduled job that failed
    ///     while time passed (it is retried later, as on a server).
    public init(
        now: Timestamp = Timestamp(millisecondsSinceEpoch: 1_767_225_600_000), defaultPhoneRegion: String = "US",
        automation: AutomationSettings = AutomationSettings(), logger: Logger? = nil
    ) {
        clock = ManualClock(now: now)
        store = MemoryStore()
        crm = RapportEngine(
            store: store, clock: clock, ids: SequentialIDGenerator(), defaultPhoneRegion: defaultPhoneRegion,
            logger: logger ?? Logger(label: "rapport.test", factory: { _ in SwiftLogNoOpLogHandler() }), automation: automation)
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
