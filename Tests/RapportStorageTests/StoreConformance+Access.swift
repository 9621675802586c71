import RapportCore
import Testing

extension Fixture {
    static func apiKeyID(_ name: String) -> APIKeyID { APIKeyID(uncheckedRawValue: "key_\(name)") }

    static func apiKey(_ name: String, role: Role = .marketing, hash: String? = nil, created: Int64 = 0, revoked: Int64? = nil) -> APIKey {
        APIKey(id: apiKeyID(name), name: "Key \(name)", role: role, secretHash: hash ?? "hash-\(name)", createdAt: time(created), revokedAt: revoked.map(time))
    }

    static func request(_ key: String, at minutes: Int64, response: [UInt8] = [0, 1, 127, 128, 255]) -> IdempotencyRecord {
        IdempotencyRecord(key: key, fingerprint: "fp-\(key)", response: response, createdAt: time(minutes))
    }
}

extension StoreConformance {
    @Test(arguments: Backend.allCases)
    func apiKeysAreUniqueByIDAndSecretHashAndListedByCreation(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let late = F.apiKey("a", role: .admin, created: 2)
        let early = F.apiKey("c", role: .readOnly, created: 1, revoked: 5)
        let tied = F.apiKey("d", created: 1)
        try await store.write { tx in
            for key in [late, tied, early] { try tx.insertAPIKey(key) }
        }
        #expect(try await store.read { try $0.apiKey(F.apiKeyID("a")) } == late)
        #expect(try await store.read { try $0.apiKey(secretHash: "hash-c") } == early)
        #expect(try await store.read { try $0.apiKey(F.apiKeyID("zz")) } == nil)
        #expect(try await store.read { try $0.apiKey(secretHash: "nope") } == nil)
        // By creation time, then id.
        #expect(try await store.read { try $0.apiKeys() } == [early, tied, late])

        await #expect(throws: RapportError.alreadyExists(entity: "api key", id: "key_a")) {
            try await store.write { try $0.insertAPIKey(F.apiKey("a", hash: "fresh")) }
        }
        await #expect(throws: RapportError.alreadyExists(entity: "api key", id: "hash-a")) {
            try await store.write { try $0.insertAPIKey(F.apiKey("b", hash: "hash-a")) }
        }
        #expect(try await store.read { try $0.apiKey(F.apiKeyID("b")) } == nil)
    }

    @Test(arguments: Backend.allCases)
    func updateAPIKeyReplacesTheKeyWithTheSameID(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try tx.insertAPIKey(F.apiKey("a"))
            try tx.insertAPIKey(F.apiKey("b"))
        }
        let rotated = F.apiKey("a", role: .service, hash: "rotated", created: 3, revoked: 9)
        try await store.write { try $0.updateAPIKey(rotated) }
        #expect(try await store.read { try $0.apiKey(F.apiKeyID("a")) } == rotated)
        #expect(try await store.read { try $0.apiKey(secretHash: "rotated") } == rotated)
        #expect(try await store.read { try $0.apiKey(secretHash: "hash-a") } == nil)
        // The old hash is free again.
        try await store.write { try $0.insertAPIKey(F.apiKey("c", hash: "hash-a")) }

        await #expect(throws: RapportError.alreadyExists(entity: "api key", id: "hash-b")) {
            try await store.write { try $0.updateAPIKey(F.apiKey("a", hash: "hash-b")) }
        }
        // A missing key is not found, even when its hash is taken.
        await #expect(throws: RapportError.notFound(entity: "api key", id: "key_zz")) {
            try await store.write { try $0.updateAPIKey(F.apiKey("zz", hash: "hash-b")) }
        }
        #expect(try await store.read { try $0.apiKey(F.apiKeyID("a")) } == rotated)
    }

    @Test(arguments: Backend.allCases)
    func requestRecordsAreStoredOnceAndForgottenByAge(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let records = [F.request("r1", at: 1), F.request("r2", at: 2, response: []), F.request("r3", at: 3), F.request("r4", at: 3)]
        try await store.write { tx in for record in records { try tx.insertIdempotencyRecord(record) } }
        #expect(try await store.read { try $0.idempotencyRecord("r2") } == records[1])
        #expect(try await store.read { try $0.idempotencyRecord("r9") } == nil)
        await #expect(throws: RapportError.alreadyExists(entity: "request", id: "r1")) {
            try await store.write { try $0.insertIdempotencyRecord(F.request("r1", at: 7)) }
        }
        // Strictly before: records stored at minute 3 stay.
        try await store.write { try $0.deleteIdempotencyRecords(before: F.time(3)) }
        let left = try await store.read { tx in try ["r1", "r2", "r3", "r4"].map { try tx.idempotencyRecord($0) } }
        #expect(left == [nil, nil, records[2], records[3]])
        // A forgotten key can be stored again.
        try await store.write { try $0.insertIdempotencyRecord(F.request("r1", at: 8)) }
        #expect(try await store.read { try $0.idempotencyRecord("r1") } == F.request("r1", at: 8))
    }

    @Test(arguments: Backend.allCases)
    func requestRecordsMentioningATextAreRedacted(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let records = [
            F.request("ada", at: 1, response: Array(#"{"id":"cus_ada","name":"Ada"}"#.utf8)),
            F.request("adam", at: 2, response: Array(#"{"id":"cus_adam"}"#.utf8)),
            F.request("bob", at: 3, response: Array(#"{"id":"cus_bob"}"#.utf8)),
        ]
        try await store.write { tx in for record in records { try tx.insertIdempotencyRecord(record) } }
        // A failed write forgets nothing.
        await #expect(throws: RapportError.self) {
            try await store.write { tx in
                try tx.redactIdempotencyRecords(mentioning: "cus_bob")
                throw RapportError.storage("rolled back")
            }
        }
        #expect(try await store.read { try $0.idempotencyRecord("bob") } == records[2])
        try await store.write { try $0.redactIdempotencyRecords(mentioning: "cus_ada\"") }
        var redacted = records[0]
        redacted.response = []
        let left = try await store.read { tx in try ["ada", "adam", "bob"].map { try tx.idempotencyRecord($0) } }
        #expect(left == [redacted, records[1], records[2]])
        try await store.write { try $0.redactIdempotencyRecords(mentioning: "") }  // nothing, rather than everything
        #expect(try await store.read { try $0.idempotencyRecord("adam") } == records[1])
        // Within a time range only (both ends included).
        try await store.write { try $0.redactIdempotencyRecords(mentioning: "cus_", createdIn: F.time(3)...F.time(5)) }
        var bobRedacted = records[2]
        bobRedacted.response = []
        #expect(try await store.read { tx in try ["adam", "bob"].map { try tx.idempotencyRecord($0) } } == [records[1], bobRedacted])
        try await store.write { try $0.redactIdempotencyRecords(mentioning: "cus_", createdIn: F.time(2)...F.time(2)) }
        #expect(try await store.read { try $0.idempotencyRecord("adam")?.response } == [])
        // Redacted records are forgotten by age like the others.
        try await store.write { try $0.deleteIdempotencyRecords(before: F.time(3)) }
        #expect(try await store.read { tx in try ["ada", "adam", "bob"].map { try tx.idempotencyRecord($0) } } == [nil, nil, bobRedacted])
    }

    @Test(arguments: Backend.allCases)
    func requestRecordsStoredOutOfTimeOrderAreForgottenByAge(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try tx.insertIdempotencyRecord(F.request("late", at: 5))
            try tx.insertIdempotencyRecord(F.request("early", at: 1))
        }
        try await store.write { try $0.deleteIdempotencyRecords(before: F.time(3)) }
        let early = try await store.read { try $0.idempotencyRecord("early") }
        #expect(early == nil)
        #expect(try await store.read { try $0.idempotencyRecord("late") } == F.request("late", at: 5))
    }

    @Test(arguments: Backend.allCases)
    func theChangeFeedHandsOutIncreasingCursorsAndPagesOldestFirst(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        #expect(try await store.read { try $0.latestChangeCursor() } == 0)
        let cursors = try await store.write { tx in
            [
                try tx.appendChange(kind: .customerCreated, customerID: F.customerID("a"), otherCustomerID: nil, mergeID: nil, at: F.time(1)),
                try tx.appendChange(kind: .customersMerged, customerID: F.customerID("a"), otherCustomerID: F.customerID("b"), mergeID: F.mergeID("1"), at: F.time(2)),
            ]
        }
        let third = try await store.write { try $0.appendChange(kind: .activityRecorded, customerID: F.customerID("b"), otherCustomerID: nil, mergeID: nil, at: F.time(2)) }
        #expect(cursors[0] < cursors[1])
        #expect(cursors[1] < third)
        let expected = [
            Change(cursor: cursors[0], kind: .customerCreated, customerID: F.customerID("a"), at: F.time(1)),
            Change(cursor: cursors[1], kind: .customersMerged, customerID: F.customerID("a"), otherCustomerID: F.customerID("b"), mergeID: F.mergeID("1"), at: F.time(2)),
            Change(cursor: third, kind: .activityRecorded, customerID: F.customerID("b"), at: F.time(2)),
        ]
        #expect(try await store.read { try $0.changes(after: 0, limit: 10) } == expected)
        #expect(try await store.read { try $0.changes(after: cursors[0], limit: 1) } == [expected[1]])
        #expect(try await store.read { try $0.changes(after: third, limit: 10) } == [])
        #expect(try await store.read { try $0.changes(after: 0, limit: 0) } == [])
        #expect(try await store.read { try $0.changes(after: cursors[0], limit: .max) } == Array(expected.dropFirst()))
        #expect(try await store.read { try $0.latestChangeCursor() } == third)

        // A rolled-back append leaves no change behind, and later cursors still increase.
        await #expect(throws: Abort()) {
            try await store.write { tx in
                _ = try tx.appendChange(kind: .customerDeleted, customerID: F.customerID("a"), otherCustomerID: nil, mergeID: nil, at: F.time(3))
                throw Abort()
            }
        }
        #expect(try await store.read { try $0.latestChangeCursor() } == third)
        let fourth = try await store.write { try $0.appendChange(kind: .customerUpdated, customerID: F.customerID("a"), otherCustomerID: nil, mergeID: nil, at: F.time(4)) }
        #expect(fourth > third)
        #expect(try await store.read { try $0.changes(after: third, limit: 10) }.map(\.kind) == [.customerUpdated])
    }

    @Test(arguments: Backend.allCases)
    func theOldestChangesAreForgottenByTimeKeepingTheNewest(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        #expect(try await store.read { try $0.oldestChangeCursor() } == nil)
        #expect(try await store.write { try $0.deleteChanges(before: F.time(10), limit: 10) } == 0)  // nothing to forget
        let cursors = try await store.write { tx in
            try (1...4).map { minute in
                try tx.appendChange(kind: .activityRecorded, customerID: F.customerID("a"), otherCustomerID: nil, mergeID: nil, at: F.time(Int64(minute)))
            }
        }
        #expect(try await store.read { try $0.oldestChangeCursor() } == cursors[0])
        // Undone with its transaction.
        await #expect(throws: Abort()) {
            try await store.write { tx in
                _ = try tx.deleteChanges(before: F.time(3), limit: 10)
                throw Abort()
            }
        }
        #expect(try await store.read { try $0.changes(after: 0, limit: 10) }.map(\.cursor) == cursors)
        // At most `limit` at a time.
        #expect(try await store.write { try $0.deleteChanges(before: F.time(3), limit: 1) } == 1)
        #expect(try await store.read { try $0.oldestChangeCursor() } == cursors[1])
        #expect(try await store.write { try $0.deleteChanges(before: F.time(3), limit: 10) } == 1)
        #expect(try await store.read { try $0.oldestChangeCursor() } == cursors[2])
        #expect(try await store.read { try $0.changes(after: 0, limit: 10) }.map(\.cursor) == Array(cursors[2...]))
        // Everything is old: the newest stays, and the next change follows it.
        #expect(try await store.write { try $0.deleteChanges(before: F.time(100), limit: .max) } == 1)  // .max: all
        #expect(try await store.read { try $0.changes(after: 0, limit: 10) }.map(\.cursor) == [cursors[3]])
        #expect(try await store.read { try $0.latestChangeCursor() } == cursors[3])
        let next = try await store.write { try $0.appendChange(kind: .customerUpdated, customerID: F.customerID("a"), otherCustomerID: nil, mergeID: nil, at: F.time(101)) }
        #expect(next == cursors[3] + 1)
    }
}
