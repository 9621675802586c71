import Foundation
import GRDB
import GRDBSQLite
import RapportCore

/// The current row of a stepped statement, read column by column straight from SQLite.
///
/// Valid only until the statement steps again; every value is copied out.
struct ColumnRow {
    let handle: SQLiteStatement

    private func column(_ index: Int) -> Int32 { Int32(index) }

    private func null(_ index: Int) -> RapportError {
        .storage("unexpected NULL in column \(index)")
    }

    func isNull(atIndex index: Int) -> Bool {
        sqlite3_column_type(handle, column(index)) == SQLITE_NULL
    }

    func decode(_ type: String.Type, atIndex index: Int) throws -> String {
        // Text first, then its length, as SQLite documents.
        guard let text = sqlite3_column_text(handle, column(index)) else { throw null(index) }
        let count = Int(sqlite3_column_bytes(handle, column(index)))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    func decode(_ type: String?.Type, atIndex index: Int) throws -> String? {
        isNull(atIndex: index) ? nil : try decode(String.self, atIndex: index)
    }

    func decode(_ type: Int64.Type, atIndex index: Int) throws -> Int64 {
        guard !isNull(atIndex: index) else { throw null(index) }
        return sqlite3_column_int64(handle, column(index))
    }

    func decode(_ type: Int64?.Type, atIndex index: Int) throws -> Int64? {
        isNull(atIndex: index) ? nil : sqlite3_column_int64(handle, column(index))
    }

    func decode(_ type: Int.Type, atIndex index: Int) throws -> Int {
        Int(try decode(Int64.self, atIndex: index))
    }

    func decode(_ type: Bool.Type, atIndex index: Int) throws -> Bool {
        try decode(Int64.self, atIndex: index) != 0
    }

    func decode(_ type: Data.Type, atIndex index: Int) throws -> Data {
        try withUnsafeBytes(atIndex: index) { bytes in
            guard let bytes else { throw null(index) }
            return Data(bytes)
        }
    }

    /// The column's bytes (text or blob) without a copy, or nil for NULL.
    func withUnsafeBytes<T>(atIndex index: Int, _ body: (UnsafeRawBufferPointer?) throws -> T) throws -> T {
        if isNull(atIndex: index) { return try body(nil) }
        // Blob first, then its length; an empty value may come back as a NULL pointer.
        let pointer = sqlite3_column_blob(handle, column(index))
        let count = Int(sqlite3_column_bytes(handle, column(index)))
        guard let pointer, count > 0 else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

extension Database {
    /// ``forEachRow(_:_:_:)`` for a read-only statement whose parameters are `text` (and `int`), bound straight
    /// through SQLite without GRDB's argument values; the bindings are cleared before it returns.
    func forEachRow(_ statement: Statement, text: String, int: Int64?, _ row: (ColumnRow) throws -> Bool) throws {
        guard statement.isReadonly else {
            return try forEachRow(statement, int.map { [text, $0] } ?? [text], row)
        }
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        var utf8 = text  // withUTF8 may make the string contiguous first
        try utf8.withUTF8 { bytes in
            defer {
                sqlite3_reset(handle)
                sqlite3_clear_bindings(handle)
            }
            // No destructor: SQLite reads the bytes in place, which stay valid until the bindings are cleared.
            if let base = bytes.baseAddress {
                sqlite3_bind_text(handle, 1, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), Int32(bytes.count), nil)
            } else {
                sqlite3_bind_text(handle, 1, "", 0, nil)
            }
            if let int { sqlite3_bind_int64(handle, 2, int) }
            try step(statement, arguments: int.map { [text, $0] } ?? [text], row)
        }
    }

    /// Binds `arguments`, steps through the rows calling `row` for each until it returns false, and resets.
    ///
    /// Read-only statements are stepped here, straight through SQLite; others (`UPDATE … RETURNING`) through GRDB's
    /// cursor, so that GRDB sees every write it runs.
    func forEachRow(_ statement: Statement, _ arguments: StatementArguments, _ row: (ColumnRow) throws -> Bool) throws {
        let handle = statement.sqliteStatement
        let current = ColumnRow(handle: handle)
        guard statement.isReadonly else {
            let cursor = try Row.fetchCursor(statement, arguments: arguments)
            while try cursor.next() != nil {
                guard try row(current) else { return }
            }
            return
        }
        try statement.setArguments(arguments)
        defer { sqlite3_reset(handle) }
        try step(statement, arguments: arguments, row)
    }

    /// Steps a bound read-only statement through SQLite, calling `row` for each row until it returns false;
    /// `arguments` only name the bindings in an error.
    private func step(_ statement: Statement, arguments: @autoclosure () -> StatementArguments, _ row: (ColumnRow) throws -> Bool) throws {
        let handle = statement.sqliteStatement
        let current = ColumnRow(handle: handle)
        while true {
            switch sqlite3_step(handle) {
            case SQLITE_ROW:
                guard try row(current) else { return }
            case SQLITE_DONE:
                return
            case let code:
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: lastErrorMessage, sql: statement.sql, arguments: arguments())
            }
        }
    }
}
