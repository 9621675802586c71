import RapportCore

extension MemoryTransaction {
    func apiKey(_ id: APIKeyID) throws -> APIKey? { db.apiKeys[id] }

    func apiKey(secretHash: String) throws -> APIKey? { db.apiKeyIDsByHash[secretHash].flatMap { db.apiKeys[$0] } }

    func apiKeys() throws -> [APIKey] { db.apiKeys.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) } }

    func insertAPIKey(_ key: APIKey) throws {
        guard db.apiKeys[key.id] == nil else { throw RapportError.alreadyExists(entity: "api key", id: key.id.rawValue) }
        guard db.apiKeyIDsByHash[key.secretHash] == nil else { throw RapportError.alreadyExists(entity: "api key", id: key.secretHash) }
        set(\.apiKeys, key.id, key)
        set(\.apiKeyIDsByHash, key.secretHash, key.id)
    }

    func updateAPIKey(_ key: APIKey) throws {
        guard let old = db.apiKeys[key.id] else { throw RapportError.notFound(entity: "api key", id: key.id.rawValue) }
        if old.secretHash != key.secretHash {
            guard db.apiKeyIDsByHash[key.secretHash] == nil else { throw RapportError.alreadyExists(entity: "api key", id: key.secretHash) }
            set(\.apiKeyIDsByHash, old.secretHash, nil)
            set(\.apiKeyIDsByHash, key.secretHash, key.id)
        }
        set(\.apiKeys, key.id, key)
    }

    func idempotencyRecord(_ key: String) throws -> IdempotencyRecord? { db.idempotencyRecords[key] }

    func insertIdempotencyRecord(_ record: IdempotencyRecord) throws {
        guard db.idempotencyRecords[record.key] == nil else { throw RapportError.alreadyExists(entity: "request", id: record.key) }
        set(\.idempotencyRecords, record.key, record)
        // Kept sorted by time (appending is the common case), so expiry can stop at the first record it keeps.
        let db = self.db
        var index = db.idempotencyOrder.count
        while index > 0, let previous = db.idempotencyRecords[db.idempotencyOrder[index - 1]], previous.createdAt > record.createdAt {
            index -= 1
        }
        db.idempotencyOrder.insert(record.key, at: index)
        addUndo { db.idempotencyOrder.remove(at: index) }
    }

    func redactIdempotencyRecords(mentioning text: String, createdIn range: ClosedRange<Timestamp>?) throws {
        let needle = Array(text.utf8)
        guard !needle.isEmpty else { return }
        for (key, var record) in db.idempotencyRecords where range?.contains(record.createdAt) ?? true && record.response.firstRange(of: needle) != nil {
            record.response = []
            set(\.idempotencyRecords, key, record)
        }
    }

    func deleteIdempotencyRecords(before time: Timestamp) throws {
        var expired = 0
        for key in db.idempotencyOrder {
            guard let record = db.idempotencyRecords[key] else {
                expired += 1
                continue
            }
            guard record.createdAt < time else { break }
            set(\.idempotencyRecords, key, nil)
            expired += 1
        }
        guard expired > 0 else { return }
        let db = self.db
        let removed = Array(db.idempotencyOrder.prefix(expired))
        db.idempotencyOrder.removeFirst(expired)
        addUndo { db.idempotencyOrder.insert(contentsOf: removed, at: 0) }
    }

    func changes(after cursor: Int64, limit: Int) throws -> [Change] {
        // Cursors increase along the array: binary search for the first one after `cursor`.
        var low = 0
        var high = db.changes.count
        while low < high {
            let middle = (low + high) / 2
            if db.changes[middle].cursor <= cursor { low = middle + 1 } else { high = middle }
        }
        return Array(db.changes[low..<(low + min(max(0, limit), db.changes.count - low))])
    }

    func latestChangeCursor() throws -> Int64 { db.changes.last?.cursor ?? 0 }

    func oldestChangeCursor() throws -> Int64? { db.changes.first?.cursor }

    func deleteChanges(before time: Timestamp, limit: Int) throws -> Int {
        let db = self.db
        let limit = min(max(0, limit), db.changes.count)  // `.max` means all
        let count = min(limit, db.changes.prefix(limit + 1).firstIndex { $0.at >= time } ?? max(0, db.changes.count - 1))
        guard count > 0 else { return 0 }
        let removed = Array(db.changes.prefix(count))
        db.changes.removeFirst(count)
        addUndo { db.changes.insert(contentsOf: removed, at: 0) }
        return count
    }

    func appendChange(
        kind: ChangeKind, customerID: CustomerID, otherCustomerID: CustomerID?, mergeID: MergeID?, segmentID: SegmentID?, at: Timestamp
    ) throws -> Int64 {
        let db = self.db
        let previous = db.lastChangeCursor
        db.lastChangeCursor += 1
        db.changes.append(
            Change(
                cursor: db.lastChangeCursor, kind: kind, customerID: customerID, otherCustomerID: otherCustomerID, mergeID: mergeID, segmentID: segmentID,
                at: at))
        addUndo {
            db.changes.removeLast()
            db.lastChangeCursor = previous
        }
        return db.lastChangeCursor
    }
}
