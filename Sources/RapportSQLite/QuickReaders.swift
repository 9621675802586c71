import Foundation
import GRDB
import Synchronization

/// Read connections of the store's own, for ``SQLiteStore/quickRead(_:)``: short reads on the calling thread
/// without GRDB's pool bookkeeping, each in a `BEGIN`/`COMMIT` pair of cached statements.
///
/// Connections are opened on first use, up to `limit`, and handed out under a lock; when all are busy (or the
/// store is closed) ``withReader(_:)`` returns nil and the caller uses GRDB's pool instead. A read sees the last
/// commit before its first query, like a read of the pool.
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
        self.path = path
        self.configuration = readOnly
        self.limit = limit
    }

    /// Runs `body` in a read transaction on an idle connection; nil (and `body` not run) when none is free.
    func withReader<T>(_ body: (Database) throws -> T) throws -> T? {
        guard let queue = try take() else { return nil }
        defer { giveBack(queue) }
        return try queue.inDatabase { db in
            try db.cachedStatement(sql: "BEGIN DEFERRED").execute()
            let value: T
            do {
                value = try body(db)
            } catch {
                try? db.cachedStatement(sql: "ROLLBACK").execute()
                throw error
            }
            try db.cachedStatement(sql: "COMMIT").execute()
            return value
        }
    }

    /// Closes every idle connection; a busy one is closed when its read gives it back.
    func close() throws {
        let idle = state.withLock { state in
            state.closed = true
            defer { state.idle.removeAll() }
            return state.idle
        }
        for queue in idle { try queue.close() }
    }

    private func take() throws -> DatabaseQueue? {
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
            do {
                return try DatabaseQueue(path: path, configuration: configuration)
            } catch {
                state.withLock { $0.opened -= 1 }
                throw error
            }
        }
    }

    private func giveBack(_ queue: DatabaseQueue) {
        let keep = state.withLock { state in
            guard !state.closed else { return false }
            state.idle.append(queue)
            return true
        }
        if !keep { try? queue.close() }
    }
}
