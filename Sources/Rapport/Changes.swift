import Synchronization
public import RapportCore

/// Wakes the change-feed watchers after every committed write.
final class ChangeNotifier: Sendable {
    private let watchers = Mutex<(all: [Int: AsyncStream<Void>.Continuation], finished: Bool)>(([:], false))
    private let nextID = Atomic<Int>(0)

    /// A stream that yields after each commit, until `cancel(id)`; already finished after ``finishAll()``.
    func subscribe() -> (id: Int, signals: AsyncStream<Void>) {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let finished = watchers.withLock { state in
            if !state.finished { state.all[id] = continuation }
            return state.finished
        }
        if finished { continuation.finish() }
        return (id, stream)
    }

    /// True once ``finishAll()`` was called: the engine's long-lived sequences end.
    var isFinished: Bool { watchers.withLock { $0.finished } }

    func cancel(_ id: Int) {
        watchers.withLock { $0.all.removeValue(forKey: id) }?.finish()
    }

    func notify() {
        let all = watchers.withLock { Array($0.all.values) }
        for continuation in all { continuation.yield() }
    }

    /// How a ``wait(for:orUntil:on:)`` ended.
    enum WaitEnd: Sendable { case committed, deadline, finished }

    /// Waits until `signals` yields (a commit after its subscription) or `clock` reaches `deadline`. A wait that
    /// ends at the deadline finishes `signals` (cancelling an `AsyncStream`'s iteration ends the stream), so each
    /// wait needs a subscription of its own. `.finished`: the notifier was finished or the task cancelled.
    @discardableResult
    static func wait(for signals: AsyncStream<Void>, orUntil deadline: Timestamp, on clock: any RapportClock) async -> WaitEnd {
        await wait(for: signals, orAfter: { try await clock.sleep(until: deadline) })
    }

    /// Waits until `signals` yields or `duration` passes on `clock` (as ``RapportClock/sleep(for:)`` counts it).
    @discardableResult
    static func wait(for signals: AsyncStream<Void>, orFor duration: Duration, on clock: any RapportClock) async -> WaitEnd {
        await wait(for: signals, orAfter: { try await clock.sleep(for: duration) })
    }

    /// Waits until `signals` yields or `sleep` returns.
    private static func wait(for signals: AsyncStream<Void>, orAfter sleep: @escaping @Sendable () async throws -> Void) async -> WaitEnd {
        await withTaskGroup(of: WaitEnd.self) { group in
            group.addTask {
                try? await sleep()
                return .deadline
            }
            group.addTask {
                var iterator = signals.makeAsyncIterator()
                return await iterator.next() == nil ? .finished : .committed
            }
            let end = await group.next() ?? .finished
            group.cancelAll()
            return end
        }
    }

    /// Ends every subscription, and those made later: their watchers finish once they have caught up.
    func finishAll() {
        let all = watchers.withLock { state in
            defer {
                state.all.removeAll()
                state.finished = true
            }
            return Array(state.all.values)
        }
        for continuation in all { continuation.finish() }
    }
}

extension RapportEngine {
    /// Up to `limit` changes after `cursor`, oldest first (0 means 500; at most 1000).
    public func changes(after cursor: Int64, limit: Int = 500) async throws(RapportError) -> [Change] {
        guard cursor >= 0 else { throw .invalid("after_cursor", "must not be negative") }
        guard limit >= 0 else { throw .invalid("limit", "must not be negative, got \(limit)") }
        let size = limit == 0 ? 500 : min(limit, 1000)
        return try await read { tx in
            try Self.checkKept(cursor, tx: tx)
            return try tx.changes(after: cursor, limit: size)
        }
    }

    /// Refuses a cursor whose next changes were forgotten (``AutomationSettings/changeRetention``): reading on
    /// from it would skip them unnoticed. 0 is no position: it starts from the oldest change kept.
    static func checkKept(_ cursor: Int64, tx: any StoreReader) throws {
        guard cursor > 0, let oldest = try tx.oldestChangeCursor(), cursor < oldest - 1 else { return }
        throw RapportError.failedPrecondition(
            "after_cursor \(cursor) is older than the change feed keeps (its oldest change is \(oldest)): list the customers again and follow the feed from the listing's change_cursor")
    }

    /// Ends every ``watchChanges(after:customerID:)`` sequence once it has delivered what is committed, and every
    /// ``outboxDeliveries(consumer:leaseDuration:batchSize:)`` sequence (handing back the entries it leased but did
    /// not hand out), now and from now on: for a server that shuts down and must not wait for streams that never end.
    public func finishChangeWatchers() {
        changeNotifier.finishAll()
    }

    /// True once ``finishChangeWatchers()`` was called: a sequence that ended did so for the shutdown.
    public var changeWatchersFinished: Bool { changeNotifier.isFinished }

    /// Returns once ``finishChangeWatchers()`` is called (at once if it was), or when the calling task is cancelled:
    /// for a long-lived handler that waits on something else and must stop for a shutdown.
    public func changeWatchersFinish() async {
        let (id, signals) = changeNotifier.subscribe()
        defer { changeNotifier.cancel(id) }
        for await _ in signals {}  // a commit yields; the shutdown, or cancelling the task, ends the stream
    }

    /// The changes after `cursor`, then new ones as they are committed, until the consumer stops iterating.
    ///
    /// Changes are read a page at a time as the consumer asks for them: a slow consumer of a long history holds
    /// one page in memory, not the history.
    ///
    /// ```swift
    /// for try await change in crm.watchChanges(after: lastProcessed) {
    ///     handle(change)
    ///     lastProcessed = change.cursor
    /// }
    /// ```
    /// - Parameter customerID: only the changes that name this customer (as the customer or the other one).
    public func watchChanges(after cursor: Int64, customerID: CustomerID? = nil) -> ChangeWatch {
        ChangeWatch(engine: self, cursor: cursor, customerID: customerID)
    }
}

/// The changes after a cursor, then new ones as they are committed: ``RapportEngine/watchChanges(after:customerID:)``.
/// It ends when the consumer stops iterating, its task is cancelled, or the engine's watchers are finished (once
/// caught up).
public struct ChangeWatch: AsyncSequence, Sendable {
    public typealias Element = Change

    let engine: RapportEngine
    let cursor: Int64
    let customerID: CustomerID?

    /// How often a caught-up watcher reads the store without a commit of this engine to wake it (on the engine's
    /// clock): the longest it takes to see a change another process committed to the same SQLite file.
    public static let pollInterval: Duration = .seconds(5)

    public func makeAsyncIterator() -> Iterator {
        Iterator(engine: engine, position: cursor, customerID: customerID)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let engine: RapportEngine
        var position: Int64
        let customerID: CustomerID?
        var buffer: [Change] = []
        var index = 0
        var checked = false

        public mutating func next() async throws -> Change? {
            let pageSize = 500
            if !checked {
                checked = true
                // A cursor this store never made (a restored backup, a restarted in-memory server) would wait for
                // changes that are not coming while the ones it missed are never delivered: it is refused.
                // (One older than the feed keeps is refused by the first page read below.)
                let latest = try await engine.read { tx in try tx.latestChangeCursor() }
                if position > latest {
                    throw RapportError.failedPrecondition(
                        "after_cursor \(position) is beyond the latest change (\(latest)): this store did not make that cursor; read again from 0")
                }
            }
            while true {
                while index < buffer.count {
                    let change = buffer[index]
                    index += 1
                    if let customerID, change.customerID != customerID, change.otherCustomerID != customerID { continue }
                    return change
                }
                // A cancelled consumer's sequence ends, as a stream's would (a read cut short may fail otherwise).
                if Task.isCancelled { return nil }
                // Subscribed before reading, so that a commit made meanwhile ends the wait below at once.
                let (subscription, signals) = engine.changeNotifier.subscribe()
                defer { engine.changeNotifier.cancel(subscription) }
                do {
                    buffer = try await engine.changes(after: position, limit: pageSize)
                } catch {
                    if Task.isCancelled { return nil }
                    throw error
                }
                index = 0
                if let last = buffer.last { position = last.cursor }
                guard buffer.count < pageSize else { continue }
                if !buffer.isEmpty { continue }  // hand these out first; the next read finds out whether to wait
                // Caught up: wait for the next commit. Another process writing the same SQLite file signals nothing
                // here: its changes are looked for every few seconds. A finished notifier (shutdown) ends the sequence.
                let clock = engine.clock
                let end = await ChangeNotifier.wait(for: signals, orFor: ChangeWatch.pollInterval, on: clock)
                if end == .finished { return nil }
            }
        }
    }
}
