import Foundation
import GRDB
import Synchronization

/// Read connections of the store's own, for ``SQLiteStore/quickRead(_:)``: short reads on the calling thread
/// without GRDB's pool bookkeeping, each in a `BEGIN`/`COMMIT` pair of cached statements.
///
/// Connections are opened on first use, up to `limit`, and handed out under a lock; when all are busy, one cannot
/// be opened, or the store is closed, ``withReader(_:)`` returns nil and the caller uses GRDB's pool instead. A read
/// sees the last commit before its first query, like a read of the pool.
final class QuickReaders: Sendable {
    private struct State {
        var idle: [DatabaseQueue] = []
        var opened = 0
        var closed = false
    }

    private let state = Mutex(State())
    private let path: String
    private let configuration: Configuration
    private let limit: Int

    init(path: String, configuration: Configuration, limit: Int) {
        var readOnly = configuration
        readOnly.readonly = true
        readOnly.label = "Rapport.quickRead"
        // The transaction is ended here, on every path; a connection that cannot end it is closed, not reused
        // (without this, GRDB would stop the process when such a connection is left inside a transaction).
        readOnly.allowsUnsafeTransactions = true
        self.path = path
        self.configuration = readOnly
        self.limit = limit
    }

    /// Runs `body` in a read transaction on an idle connection; nil (and `body` not run) when there is none.
    func withReader<T>(_ body: (Database) throws -> T) throws -> T? {
        guard let queue = take() else { return nil }
        var reusable = true
        defer { giveBack(queue, reusable: reusable) }
        return try queue.inDatabase { db in
            try db.cachedStatement(sql: "BEGIN DEFERRED").execute()
            defer {
                if db.isInsideTransaction { try? db.cachedStatement(sql: "ROLLBACK").execute() }
                reusable = !db.isInsideTransaction
            }
            let value = try body(db)
            try db.cachedStatement(sql: "COMMIT").execute()
            return value
        }
    }

    /// Closes every idle connection (a busy one is closed when its read gives it back); the first failure is
    /// thrown after all were tried.
    func close() throws {
        let idle = state.withLock { state in
            state.closed = true
            defer { state.idle.removeAll() }
            return state.idle
        }
        var failure: (any Error)?
        for queue in idle {
            do {
                try queue.close()
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
    }

    private func take() -> DatabaseQueue? {
        enum Next {
            case reuse(DatabaseQueue)
            case open
            case none
        }
        let next: Next = state.withLock { state in
            if state.closed { return .none }
            if let queue = state.idle.popLast() { return .reuse(queue) }
            guard state.opened < limit else { return .none }
            state.opened += 1
            return .open
        }
        switch next {
        case .reuse(let queue): return queue
        case .none: return nil
        case .open:
            if let queue = try? DatabaseQueue(path: path, configuration: configuration) {
                // Opened outside the lock: a close() that came meanwhile must not find it used after it returned.
                let closed = state.withLock { state in
                    if state.closed { state.opened -= 1 }
                    return state.closed
                }
                guard closed else { return queue }
                try? queue.close()
                return nil
            }
            state.withLock { $0.opened -= 1 }  // the pool serves this read (and says why, if the file is gone)
            return nil
        }
    }

    private func giveBack(_ queue: DatabaseQueue, reusable: Bool) {
        let keep = state.withLock { state in
            guard !state.closed, reusable else {
                state.opened -= 1
                return false
            }
            state.idle.append(queue)
            return true
        }
        if !keep { try? queue.close() }
    }
}
