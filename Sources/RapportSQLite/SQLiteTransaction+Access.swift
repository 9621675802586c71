import Foundation
import GRDB
import RapportCore

extension SQLiteTransaction {
    // MARK: API keys

    private static let apiKeyColumns = "id, name, role, secret_hash, created_at, revoked_at"

    private func decodeAPIKey(_ row: ColumnRow) throws -> APIKey {
        APIKey(
            id: APIKeyID(uncheckedRawValue: try row.decode(String.self, atIndex: 0)), name: try row.decode(String.self, atIndex: 1),
            role: try decodeEnum(Role.self, row, 2), secretHash: try row.decode(String.self, atIndex: 3), createdAt: try time(row, 4),
            revokedAt: try optionalTime(row, 5))
    }

    func apiKey(_ id: APIKeyID) throws -> APIKey? {
        try fetchOne("SELECT \(Self.apiKeyColumns) FROM api_keys WHERE id = ?", [id.rawValue], decodeAPIKey)
    }

    func apiKey(secretHash: String) throws -> APIKey? {
        try fetchOne("SELECT \(Self.apiKeyColumns) FROM api_keys WHERE secret_hash = ?", [secretHash], decodeAPIKey)
    }

    func apiKeys() throws -> [APIKey] {
        try fetchAll("SELECT \(Self.apiKeyColumns) FROM api_keys ORDER BY created_at, id", [], decodeAPIKey)
    }

    func insertAPIKey(_ key: APIKey) throws {
        if try exists("SELECT 1 FROM api_keys WHERE id = ?", [key.id.rawValue]) {
            throw RapportError.alreadyExists(entity: "api key", id: key.id.rawValue)
        }
        if try exists("SELECT 1 FROM api_keys WHERE secret_hash = ?", [key.secretHash]) {
            throw RapportError.alreadyExists(entity: "api key", id: key.secretHash)
        }
        try execute(
            "INSERT INTO api_keys (\(Self.apiKeyColumns)) VALUES (?, ?, ?, ?, ?, ?)",
            [key.id.rawValue, key.name, key.role.rawValue, key.secretHash, key.createdAt.millisecondsSinceEpoch, key.revokedAt?.millisecondsSinceEpoch])
    }

    func updateAPIKey(_ key: APIKey) throws {
        // A missing key is reported before a hash collision, as for every other update.
        guard try exists("SELECT 1 FROM api_keys WHERE id = ?", [key.id.rawValue]) else {
            throw RapportError.notFound(entity: "api key", id: key.id.rawValue)
        }
        if try exists("SELECT 1 FROM api_keys WHERE secret_hash = ? AND id <> ?", [key.secretHash, key.id.rawValue]) {
            throw RapportError.alreadyExists(entity: "api key", id: key.secretHash)
        }
        try execute(
            "UPDATE api_keys SET name = ?, role = ?, secret_hash = ?, created_at = ?, revoked_at = ? WHERE id = ?",
            [key.name, key.role.rawValue, key.secretHash, key.createdAt.millisecondsSinceEpoch, key.revokedAt?.millisecondsSinceEpoch, key.id.rawValue])
    }

    // MARK: Request ids

    func idempotencyRecord(_ key: String) throws -> IdempotencyRecord? {
        try fetchOne("SELECT key, fingerprint, response, created_at FROM idempotency_records WHERE key = ?", [key]) { row in
            IdempotencyRecord(
                key: try row.decode(String.self, atIndex: 0), fingerprint: try row.decode(String.self, atIndex: 1),
                response: Array(try row.decode(Data.self, atIndex: 2)), createdAt: try time(row, 3))
        }
    }

    func insertIdempotencyRecord(_ record: IdempotencyRecord) throws {
        if try exists("SELECT 1 FROM idempotency_records WHERE key = ?", [record.key]) {
            throw RapportError.alreadyExists(entity: "request", id: record.key)
        }
        try execute(
            "INSERT INTO idempotency_records (key, fingerprint, response, created_at) VALUES (?, ?, ?, ?)",
            [record.key, record.fingerprint, Data(record.response), record.createdAt.millisecondsSinceEpoch])
    }

    func deleteIdempotencyRecords(before time: Timestamp) throws {
        try execute("DELETE FROM idempotency_records WHERE created_at < ?", [time.millisecondsSinceEpoch])
    }

    func redactIdempotencyRecords(mentioning text: String, createdIn range: ClosedRange<Timestamp>?) throws {
        guard !text.isEmpty else { return }
        // Byte search in the response blob (`instr` on two blobs compares bytes).
        let from = range?.lowerBound.millisecondsSinceEpoch ?? .min
        let to = range?.upperBound.millisecondsSinceEpoch ?? .max
        try execute(
            "UPDATE idempotency_records SET response = x'' WHERE created_at BETWEEN ? AND ? AND instr(response, ?) > 0", [from, to, Data(text.utf8)])
    }

    // MARK: Change feed

    func changes(after cursor: Int64, limit: Int) throws -> [Change] {
        try fetchAll(
            "SELECT cursor, kind, customer_id, other_customer_id, merge_id, at, segment_id FROM changes WHERE cursor > ? ORDER BY cursor LIMIT ?",
            [cursor, max(0, limit)]
        ) { row in
            Change(
                cursor: try row.decode(Int64.self, atIndex: 0), kind: try decodeEnum(ChangeKind.self, row, 1),
                customerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 2)),
                otherCustomerID: try row.decode(String?.self, atIndex: 3).map(CustomerID.init(uncheckedRawValue:)),
                mergeID: try row.decode(String?.self, atIndex: 4).map(MergeID.init(uncheckedRawValue:)),
                segmentID: try row.decode(String?.self, atIndex: 6).map(SegmentID.init(uncheckedRawValue:)), at: try time(row, 5))
        }
    }

    func latestChangeCursor() throws -> Int64 {
        let latest: Int64?? = try fetchOne("SELECT MAX(cursor) FROM changes", []) { try $0.decode(Int64?.self, atIndex: 0) }
        return (latest ?? nil) ?? 0
    }

    func oldestChangeCursor() throws -> Int64? {
        let oldest: Int64?? = try fetchOne("SELECT MIN(cursor) FROM changes", []) { try $0.decode(Int64?.self, atIndex: 0) }
        return oldest ?? nil
    }

    func deleteChanges(before time: Timestamp, limit: Int) throws -> Int {
        guard limit > 0, let oldest = try oldestChangeCursor() else { return 0 }
        let limit = Int64(min(limit, Int(Int32.max)))  // `.max` means all (and must not overflow the cursor)
        // Walked from the oldest (cursor order) to the first one to keep, `limit` rows at most.
        let keep: Int64?? = try fetchOne(
            "SELECT cursor FROM changes WHERE cursor <= ? AND at >= ? ORDER BY cursor LIMIT 1", [oldest + limit, time.millisecondsSinceEpoch]
        ) { try $0.decode(Int64?.self, atIndex: 0) }
        let first = try min((keep ?? nil) ?? latestChangeCursor(), latestChangeCursor(), oldest + limit)
        return try changes("DELETE FROM changes WHERE cursor < ?", [first])
    }

    func appendChange(
        kind: ChangeKind, customerID: CustomerID, otherCustomerID: CustomerID?, mergeID: MergeID?, segmentID: SegmentID?, at: Timestamp
    ) throws -> Int64 {
        try execute(
            "INSERT INTO changes (kind, customer_id, other_customer_id, merge_id, segment_id, at) VALUES (?, ?, ?, ?, ?, ?)",
            [kind.rawValue, customerID.rawValue, otherCustomerID?.rawValue, mergeID?.rawValue, segmentID?.rawValue, at.millisecondsSinceEpoch])
        return db.lastInsertedRowID
    }
}
