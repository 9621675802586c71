import Foundation
import Rapport
import RapportCore
@testable import RapportSQLite
import Testing

@Suite("Scheduler")
struct SchedulerTests {
    /// A server shutting down cancels the scheduler: a job that fails then did not fail, it is not counted against
    /// its tries, and runs at the next start.
    @Test func aJobThatFailsBecauseItsTaskWasCancelledKeepsItsTries() async throws {
        let store = FailingStore(base: try Backend.memory.makeStore())
        let clock = ManualClock(now: start)
        let crm = RapportEngine(store: store, clock: clock, ids: SequentialIDGenerator(), logger: quietLogger)
        try await crm.startHousekeeping()
        store.failOnJobKey = "housekeeping"
        // Cancelled before: nothing runs.
        let before = await Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try? await crm.runDueJobs()
        }.value
        #expect(before == 0)
        // Cancelled while the job runs (its write fails then): not counted.
        store.cancelOnFailedWrite = true
        let during = await Task { try? await crm.runDueJobs() }.value
        store.cancelOnFailedWrite = false
        #expect(during == 0)
        #expect(try await crm.store.read { tx in try tx.job("housekeeping") }?.attempts == 0)
        // Not cancelled, the same failure counts.
        _ = try await crm.runDueJobs()
        #expect(try await crm.store.read { tx in try tx.job("housekeeping") }?.attempts == 1)
    }

    @Test
    func aJobThisVersionCannotReadIsKeptAndDoesNotStopTheOthers() async throws {
        let (crm, clock) = try makeEngine(.sqlite)
        _ = try await crm.createRule(
            RuleDefinition(name: "Follow up", trigger: .event(type: "checkout.started"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("followed")]))
        _ = try await crm.ingest([
            event("a", "checkout.started", at: clock.now(), .email("ada@example.com")),
            event("b", "checkout.started", at: clock.now(), .email("bob@example.com")),
        ])
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com"))).id
        let bob = try #require(try await crm.findCustomer(.email("bob@example.com"))).id
        let adaRun = try #require(try await crm.runs(customer: ada).runs.first)
        let key = "wait:\(adaRun.id.rawValue)"
        // Ada's job as a later version (or a damaged file) might have stored it.
        let stored = #"{"resumeRunLater":{"_0":"run_x","by":"a later version"}}"#
        try await crm.store.write { tx in
            try (tx as! SQLiteTransaction).execute("UPDATE jobs SET kind = '\(stored)' WHERE key = '\(key)'")
        }

        try await crm.advanceManualClock(to: start + .seconds(2 * 3600))
        // Bob's job ran; Ada's is still there, as stored, tried again later, and her run still waits.
        #expect(try await crm.customer(bob).profile.tags == ["followed"])
        #expect(try await crm.customer(ada).profile.tags == [])
        let job = try #require(try await crm.store.read { try $0.job(key) })
        #expect(job.kind == .unreadable(stored))
        #expect(job.attempts >= 1)
        #expect(job.dueAt > clock.now())
        #expect(try await crm.store.read { try $0.dueJobs(at: clock.now(), limit: 10) }.isEmpty)
        #expect(try await crm.runs(customer: ada).runs.first?.status == .waiting)
        let raw = try await crm.store.read { tx in
            try (tx as! SQLiteTransaction).fetchOne("SELECT kind FROM jobs WHERE key = ?", text: key) { try $0.decode(String.self, atIndex: 0) }
        }
        #expect(raw == stored)

        // However often it is tried, it is never given up (a later version may read it).
        try await crm.advanceManualClock(to: start + .seconds(30 * 86_400))
        let later = try #require(try await crm.store.read { try $0.job(key) })
        #expect(later.attempts > 12)
        #expect(later.kind == .unreadable(stored))
    }
}
