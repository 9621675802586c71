public import Foundation
import Logging
public import RapportCore

/// How automation reads time zones and how long it keeps its records.
public struct AutomationSettings: Sendable {
    /// The time zone of customers who have none: quiet hours, date triggers, `customer.age`.
    public var defaultTimeZone: TimeZone
    /// How long runs that ended are kept.
    public var runRetention: Duration
    /// How long delivered and failed outbox entries are kept.
    public var outboxRetention: Duration
    /// How long change-feed entries are kept: a cursor older than the oldest one kept is refused (list again, and
    /// follow the feed from the listing's cursor).
    public var changeRetention: Duration

    public init(
        defaultTimeZone: TimeZone = TimeZone(identifier: "UTC")!, runRetention: Duration = .seconds(90 * 86_400), outboxRetention: Duration = .seconds(30 * 86_400),
        changeRetention: Duration = .seconds(90 * 86_400)
    ) {
        self.defaultTimeZone = defaultTimeZone
        self.runRetention = runRetention
        self.outboxRetention = outboxRetention
        self.changeRetention = changeRetention
    }
}

extension RapportEngine {
    /// Runs every job due by now (waits that ended, date triggers, schedules, segment re-checks and builds), each
    /// in its own transaction, until none is due. Returns how many ran.
    ///
    /// A server runs ``runScheduler()`` instead; tests call this after advancing their clock (or use
    /// `TestRapport.advance(by:)`, which also stops at each job's due time).
    @discardableResult
    public func runDueJobs(limit: Int = 100_000) async throws(RapportError) -> Int {
        var ran = 0
        while ran < limit, !Task.isCancelled {  // a server shutting down stops between jobs
            let now = clock.now()
            let due = try await read { tx in try tx.dueJobs(at: now, limit: 64) }
            guard !due.isEmpty else { break }
            var progressed = false
            for job in due where ran < limit && !Task.isCancelled {
                if try await runJob(job.key, now: now) {
                    ran += 1
                    progressed = true
                }
            }
            if !progressed { break }
        }
        return ran
    }

    /// When the earliest job is due, if there is one.
    public func nextJobDue() async throws(RapportError) -> Timestamp? {
        try await read { tx in try tx.nextJobDue() }
    }

    /// Runs one due job; a job that fails goes back with a growing delay, so that it never holds up the jobs
    /// after it. A job is given up after 10 failed tries, or 100 when storage failed (often a passing problem); what
    /// waited for it is settled then (its rule run is cancelled with the reason, a schedule goes on with its next
    /// occurrence). Segment re-checks keep being tried, an hour apart at most.
    func runJob(_ key: String, now: Timestamp) async throws(RapportError) -> Bool {
        do {
            let ran: Bool = try await write { [self] tx in
                guard let job = try tx.job(key), job.dueAt <= now else { return false }
                try tx.deleteJob(key)
                // At the time it runs, not the batch's: a customer changed since the batch began was evaluated at a
                // later time already, which an older one would undo (a re-check leaving a segment just entered).
                var session = WriteSession(tx: tx, engine: self, now: max(now, clock.now()))
                try session.perform(job)
                try session.finish()
                return true
            }
            changeNotifier.notify()
            return ran
        } catch {
            // Cancelled (a server shutting down): the job did not fail, it stays due for the next start.
            if Task.isCancelled { return false }
            logger.error("scheduled job failed", metadata: ["job": "\(key)", "error": "\(error)"])
            var isStorage = false
            if case .storage = error { isStorage = true }
            // Storage errors may pass (a busy or full disk): such a job gets many more tries (days, with the growing
            // delay) before it is dropped, but not endless ones, since a row that cannot be read fails for good too.
            let problem = "\(error)"
            // The retry's delay counts from now: the batch's time may be long past.
            let failedAt = max(now, clock.now())
            let givenUp: ScheduledJob? = try await write { [isStorage] tx in
                // A job put under the same key since (not due yet: a rule's next occurrence) is another job: left as it is.
                guard var job = try tx.job(key), job.dueAt <= now else { return nil }
                job.attempts += 1
                // A segment re-check is never given up: nothing else would plan it for a customer who changes no more.
                // Nor is a segment's build or a date rule's planning: given up, the segment would stay building (its
                // later customers never evaluated, their entries silent) and the rule unplanned for the rest. Nor is
                // a job this version cannot read: a later version may (its data is not this version's to drop).
                let keep: Bool
                switch job.kind {
                case .recheckSegments, .buildSegment, .planDateTrigger, .unreadable: keep = true
                default: keep = false
                }
                guard job.attempts < (isStorage ? 100 : 10) || keep else { return job }
                job.dueAt = failedAt + .seconds(Int64(min(3600, 1 << min(job.attempts, 12))))
                try tx.putJob(job)
                return nil
            }
            guard let givenUp else { return true }
            logger.error("scheduled job given up", metadata: ["job": "\(key)", "attempts": "\(givenUp.attempts)"])
            do {
                try await write { [self] tx in
                    // Still the job given up (not one put under its key since).
                    guard let current = try tx.job(key), current.dueAt == givenUp.dueAt, current.attempts + 1 == givenUp.attempts else { return }
                    try tx.deleteJob(key)
                    var session = WriteSession(tx: tx, engine: self, now: now)
                    try session.giveUp(givenUp, problem: problem)
                    try session.finish()
                }
            } catch {
                // What depended on the job cannot be settled either: at least the job goes.
                logger.error("scheduled job given up without settling what waits for it", metadata: ["job": "\(key)", "error": "\(error)"])
                try await write { tx in if let current = try tx.job(key), current.dueAt == givenUp.dueAt { try tx.deleteJob(key) } }
            }
            return true
        }
    }

    /// Schedules the daily housekeeping job, unless it is already: it forgets finished rule runs and delivered or
    /// failed outbox entries and change-feed entries after their retention (``AutomationSettings``), and old
    /// request-id records. Segments whose members were found by an earlier revision of the expression language that
    /// meant something else (``ExpressionRevisions``) are built again.
    /// ``runScheduler()`` calls it; an app that runs ``runDueJobs(limit:)`` itself calls it at every start.
    public func startHousekeeping() async throws(RapportError) {
        try await write { [catalogs, logger] tx in
            let now = self.clock.now()
            if try tx.job("housekeeping") == nil { try tx.putJob(ScheduledJob(key: "housekeeping", dueAt: now, kind: .housekeeping)) }
            let outdated = try tx.segments().filter { ($0.evaluatedWithRevision ?? 1) < ExpressionRevisions.current }
            guard !outdated.isEmpty else { return }
            // Only a segment the catalog holds can be built (one whose expression no longer compiles stays as it is).
            let compiled = Set(try catalogs.catalog(tx) { logger.error("\($0)") }.dynamicSegments.map(\.segment.id))
            var rebuilt = false
            for var segment in outdated {
                if compiled.contains(segment.id), ExpressionRevisions.changedMeaning(of: segment.expression, since: segment.evaluatedWithRevision) {
                    segment.state = .building
                    segment.buildCursor = nil
                    segment.buildStartedAt = now
                    try tx.putJob(ScheduledJob(key: "build:\(segment.id.rawValue)", dueAt: now, kind: .buildSegment(segment.id)))
                    rebuilt = true
                }
                segment.evaluatedWithRevision = ExpressionRevisions.current
                try tx.updateSegment(segment)
            }
            if rebuilt { try tx.bumpDefinitionsVersion() }
        }
    }

    /// Runs jobs as they come due, waking at the next due time (read from the engine's clock) or when a commit
    /// may have scheduled an earlier one, until the task is cancelled. For servers; housekeeping is scheduled
    /// on first start.
    public func runScheduler() async {
        var housekeeping = false
        while !Task.isCancelled {
            // Subscribed before looking at the jobs, so that a commit made meanwhile ends the wait below at once.
            let (subscription, signals) = changeNotifier.subscribe()
            defer { changeNotifier.cancel(subscription) }
            var next: Timestamp?
            do {
                // Until it is scheduled once: a store busy at start must not leave the data it forgets forever.
                if !housekeeping {
                    try await startHousekeeping()
                    housekeeping = true
                }
                try await runDueJobs()
                next = try await nextJobDue()
            } catch {
                if Task.isCancelled { break }
                logger.error(housekeeping ? "scheduler failed; retrying" : "cannot schedule housekeeping; retrying", metadata: ["error": "\(error)"])
                next = clock.now() + .seconds(5)
            }
            let wake = min(next ?? clock.now() + .seconds(60), clock.now() + .seconds(60))
            if changeNotifier.isFinished {
                try? await clock.sleep(until: wake)  // no more commit signals (the engine's watchers were finished)
            } else {
                await ChangeNotifier.wait(for: signals, orUntil: wake, on: clock)
            }
        }
    }

    /// Moves a manual clock forward to `target`, stopping at each job's due time to run it, so that everything
    /// happens at the time it would have in real life. For tests and the server's manual-clock mode.
    ///
    /// A target before the clock's time leaves the clock where it is (and runs what is due now).
    ///
    /// - Throws: `failedPrecondition` when the engine's clock is not a ``ManualClock``; `invalidArgument` for a
    ///   target after ``Timestamp/latest``.
    @discardableResult
    public func advanceManualClock(to target: Timestamp) async throws(RapportError) -> Int {
        guard let manual = clock as? ManualClock else {
            throw .failedPrecondition("the engine runs on the system clock; only a manual clock can be advanced")
        }
        if target > .latest { throw .invalid("target", "is after \(Timestamp.latest), the latest time Rapport keeps") }
        var ran = try await runDueJobs()
        while !Task.isCancelled, let next = try await nextJobDue(), next <= target {
            manual.advance(to: next)
            let count = try await runDueJobs()
            ran += count
            if count == 0, manual.now() >= next { break }
        }
        manual.advance(to: target)
        ran += try await runDueJobs()
        // Time moved without a commit maybe: waiters look again (an outbox entry whose retry or lease came due).
        changeNotifier.notify()
        return ran
    }
}
