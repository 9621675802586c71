import Foundation
import GRDB
import RapportCore
@testable import RapportSQLite
import Testing

/// What only a file-backed store can show: data outlives the process's handle on the file.
@Suite("SQLite file")
struct SQLiteFileTests {
    typealias F = Fixture

    @Test
    func aPathThatCannotBeADatabaseSaysWhy() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(throws: RapportError.storage("cannot open the database '\(directory.path)': it is a directory; name a file in it")) {
            try SQLiteStore(path: directory.path)
        }
        let missing = directory.appendingPathComponent("no/such/dir")
        #expect(throws: RapportError.storage("cannot create the database '\(missing.path)/crm.sqlite': the directory '\(missing.path)' does not exist")) {
            try SQLiteStore(path: missing.path + "/crm.sqlite")
        }
        let garbage = directory.appendingPathComponent("notes.sqlite")
        try Data("not a database, just text that is long enough to be read as a header of some file".utf8).write(to: garbage)
        do {
            _ = try SQLiteStore(path: garbage.path)
            Issue.record("a text file opened as a database")
        } catch RapportError.storage(let problem) {
            #expect(problem.hasPrefix("cannot open the database '\(garbage.path)': "), "\(problem)")
        }
    }

    @Test
    func dataSurvivesClosingAndReopeningTheFile() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("crm.sqlite").path
        let universe = StoreConformance.transactionUniverse

        let first = try SQLiteStore(path: path)
        try await first.write { tx in
            _ = try tx.allocateSequence(200)
            try tx.insertCustomer(F.customer("a", tags: ["vip"], stage: .loyal))
            try tx.insertIdentity(F.identity("aa@example.com", owner: "a"))
            try tx.insertEvent(F.event("e-aa", owner: "a", at: 1, sequence: 100))
            try tx.insertOrder(F.order("aa", owner: "a", at: 2, sequence: 101))
            try tx.insertInteraction(F.interaction("aa", owner: "a", at: 3, sequence: 102))
            try tx.insertConsent(F.consent("aa", owner: "a", at: 4, sequence: 103))
            try tx.putStats(CustomerStats(customerID: F.customerID("a"), eventCount: 1))
            try tx.insertMerge(F.merge("1", survivor: "a", absorbed: "b", sequence: 104))
            try tx.appendProfileChange(F.profileChange("a", sequence: 105))
            try tx.putAttributeDefinition(AttributeDefinition(key: "vip", type: .bool))
            try tx.insertAPIKey(F.apiKey("a"))
            try tx.insertIdempotencyRecord(F.request("r1", at: 1))
            _ = try tx.appendChange(kind: .customerCreated, customerID: F.customerID("a"), otherCustomerID: nil, mergeID: nil, at: F.time(1))
        }
        let written = try await first.read { try universe.snapshot($0) }
        #expect(try await first.appliedMigrations() == Schema.migrationNames)
        #expect(Schema.migrationNames.first == "v1")
        try first.close()

        // Opening an existing, up-to-date file runs no migration and finds everything where it was.
        let second = try SQLiteStore(path: path)
        #expect(try await second.appliedMigrations() == Schema.migrationNames)
        expectSameReads(written, try await second.read { try universe.snapshot($0) }, "after reopening")
        #expect(written["customer(cus_a)"] == .customer(F.customer("a", tags: ["vip"], stage: .loyal)))
        #expect(try await second.write { try $0.allocateSequence(1) } == 201)
        try second.close()

        let third = try SQLiteStore(path: path)
        #expect(try await third.read { try $0.currentSequence() } == 201)
        try third.close()
    }

    /// Earlier versions counted the events rules emitted as the customer's activity: v7 computes the aggregates of
    /// the customers that own such events again.
    @Test
    func migrationV7LeavesEmittedEventsOutOfStoredStats() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("crm.sqlite").path
        let queue = try DatabaseQueue(path: path)
        try Schema.migrator.migrate(queue, upTo: "v6-open-and-closed-indexes")
        try queue.inDatabase { db in
            let tx = SQLiteTransaction(db)
            for name in ["a", "b"] { try tx.insertCustomer(F.customer(name)) }
            try tx.insertEvent(F.event("e1", owner: "a", at: 5, sequence: 1))
            var emitted = F.event("run_1.0", owner: "a", at: 9, sequence: 2)
            emitted.event.identities = []
            try tx.insertEvent(emitted)
            try tx.insertEvent(F.event("e2", owner: "b", at: 7, sequence: 3))
            // As an earlier version kept them: the emitted event counted.
            try tx.putStats(CustomerStats(customerID: F.customerID("a"), eventCount: 2, lastSeenAt: F.time(9)))
            try tx.putStats(CustomerStats(customerID: F.customerID("b"), eventCount: 1, lastSeenAt: F.time(7)))
        }
        try queue.close()
        let store = try SQLiteStore(path: path)
        defer { try? store.close() }
        #expect(try await store.appliedMigrations() == Schema.migrationNames)
        #expect(try await store.read { try $0.stats(of: F.customerID("a")) } == CustomerStats(customerID: F.customerID("a"), eventCount: 1, lastSeenAt: F.time(5)))
        #expect(try await store.read { try $0.stats(of: F.customerID("b")) } == CustomerStats(customerID: F.customerID("b"), eventCount: 1, lastSeenAt: F.time(7)))
    }

    @Test
    func migrationV5ReadsTheSegmentsOfStandingMergesBackFromTheChangeFeed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("crm.sqlite").path
        // A file of the schema before v5-merge-segments: two standing merges and one undone, their details without
        // `absorbed_segments`.
        let queue = try DatabaseQueue(path: path)
        try Schema.migrator.migrate(queue, upTo: "v4-latest-runs")
        func merge(_ name: String, absorbed: String, at minutes: Int64, undone: Bool = false) throws -> [(any DatabaseValueConvertible)?] {
            var record = F.merge(name, survivor: "a", absorbed: absorbed, sequence: minutes, unmerged: undone ? minutes + 1 : nil)
            record.absorbedSegments = []
            record.adoptedRuns = []
            let details = String(decoding: try JSONEncoder().encode(StoredMergeDetails(record)), as: UTF8.self)
            return ["cus_a", "cus_\(absorbed)", minutes, F.time(minutes).millisecondsSinceEpoch, undone ? F.time(minutes + 1).millisecondsSinceEpoch : nil, details, "mrg_\(name)"]
        }
        try queue.inDatabase { db in
            for values in [try merge("1", absorbed: "b", at: 10), try merge("2", absorbed: "c", at: 20), try merge("3", absorbed: "d", at: 30, undone: true)] {
                try db.execute(
                    sql: "INSERT INTO merges (survivor_id, absorbed_id, sequence, merged_at, unmerged_at, details, id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    arguments: StatementArguments(values))
            }
            func change(_ kind: String, _ customer: String, merge: String? = nil, segment: String? = nil, at minutes: Int64) throws {
                try db.execute(
                    sql: "INSERT INTO changes (kind, customer_id, other_customer_id, merge_id, at, segment_id) VALUES (?, ?, NULL, ?, ?, ?)",
                    arguments: [kind, "cus_\(customer)", merge.map { "mrg_\($0)" }, F.time(minutes).millisecondsSinceEpoch, segment.map { "seg_\($0)" }])
            }
            // b (a file whose merges wrote exits): in "built" since a segment build (no entry), in "vip" since minute 2,
            // out of "left" again; the merge's exits name exactly what it was in.
            try change("segment_entered", "b", segment: "vip", at: 2)
            try change("segment_entered", "b", segment: "left", at: 3)
            try change("segment_exited", "b", segment: "left", at: 4)
            try change("segment_exited", "b", merge: "1", segment: "built", at: 10)
            try change("segment_exited", "b", merge: "1", segment: "vip", at: 10)
            try change("customers_merged", "a", merge: "1", at: 10)
            // c (an older file: merges wrote no exits): its entries and exits before the merge say it.
            try change("segment_entered", "c", segment: "vip", at: 5)
            try change("segment_entered", "c", segment: "left", at: 6)
            try change("segment_exited", "c", segment: "left", at: 7)
            try change("customers_merged", "a", merge: "2", at: 20)
            try change("segment_entered", "c", segment: "later", at: 21)  // after the merge: not its
            // d's merge was undone: nothing to learn.
            try change("segment_entered", "d", segment: "vip", at: 25)
            try change("customers_merged", "a", merge: "3", at: 30)
        }
        try queue.close()

        let store = try SQLiteStore(path: path)
        defer { try? store.close() }
        #expect(try await store.appliedMigrations() == Schema.migrationNames)
        func segments(_ name: String) async throws -> [String] {
            try await store.read { tx in try tx.merge(F.mergeID(name))!.absorbedSegments.map { "\($0.segmentID.rawValue)@\($0.since == F.time(0) ? 0 : ($0.since.millisecondsSinceEpoch - F.time(0).millisecondsSinceEpoch) / 60_000)" } }
        }
        #expect(try await segments("1") == ["seg_built@10", "seg_vip@2"])  // the build's membership: since the merge
        #expect(try await segments("2") == ["seg_vip@5"])
        #expect(try await segments("3") == [])
        #expect(try await store.read { tx in try tx.merge(F.mergeID("1"))!.absorbedSegments.map(\.customerID) } == [F.customerID("b"), F.customerID("b")])
    }

    @Test
    func aFileFromANewerVersionIsRefusedAndLeftAlone() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("crm.sqlite").path

        let newer = try SQLiteStore(path: path, options: .init(), temporaryDirectory: nil, migrator: Schema.migrator(plus: ["v999-future"]))
        try await newer.write { try $0.insertCustomer(F.customer("a")) }
        try newer.close()

        #expect {
            try SQLiteStore(path: path)
        } throws: { error in
            guard case .storage(let message) = error as? RapportError else { return false }
            return message.contains("newer version") && message.contains("v999-future")
        }
        // The refusal changed nothing: the newer version still opens its file.
        let again = try SQLiteStore(path: path, options: .init(), temporaryDirectory: nil, migrator: Schema.migrator(plus: ["v999-future"]))
        #expect(try await again.read { try $0.customer(F.customerID("a")) } == F.customer("a"))
        try again.close()
    }

    /// Two stores (as two processes would) opening one file that lacks a migration both open it: the one that
    /// finds the migration applied by the other meanwhile skips it instead of failing on it.
    @Test
    func twoStoresUpgradingAFileAtOnceBothOpenIt() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A newer version's migration that takes a while, as v5's pass over the change feed does on a big file.
        var upgrade = Schema.migrator
        upgrade.registerMigration("v999-slow") { db in
            try db.execute(sql: "SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x FROM c)")
        }
        for round in 0..<3 {
            let path = directory.appendingPathComponent("crm-\(round).sqlite").path
            try SQLiteStore(path: path).close()  // the file as the version before wrote it
            let upgrade = upgrade
            async let first = onThread { try SQLiteStore(path: path, options: .init(), temporaryDirectory: nil, migrator: upgrade) }
            async let second = onThread { try SQLiteStore(path: path, options: .init(), temporaryDirectory: nil, migrator: upgrade) }
            let stores = try await [first, second]
            for store in stores {
                #expect(try await store.quickRead { try $0.customerCount() } == 0)
                try store.close()
            }
        }
    }

    @Test
    func aClosedStoreThrowsStorageErrors() async throws {
        let store = try SQLiteStore.temporary()
        #expect(try await store.quickRead { try $0.customerCount() } == 0)  // opens a quick reader before the close
        try store.close()
        for read in [{ try await store.read { try $0.customerCount() } }, { try await store.quickRead { try $0.customerCount() } }] {
            await #expect {
                try await read()
            } throws: { error in
                if case .storage = error as? RapportError { return true }
                return false
            }
        }
    }

    @Test
    func aQuickReadKeepsItsSnapshotWhileTheWriterCommits() async throws {
        let store = try SQLiteStore.temporary()
        try await store.write { try $0.insertCustomer(F.customer("a")) }
        // Between the body's two queries the writer commits a customer: the body still sees one. (The read runs on a
        // thread of its own, so that waiting inside it never holds one of the few threads async work runs on.)
        let (first, second) = try await onThread {
            try store.readOnCallingThread { tx in
                let first = try tx.customerCount()
                let committed = DispatchSemaphore(value: 0)
                Task.detached {
                    try await store.write { try $0.insertCustomer(F.customer("b")) }
                    committed.signal()
                }
                #expect(committed.wait(timeout: .now() + 20) == .success)
                return (first, try tx.customerCount())
            }
        }
        #expect(first == 1)
        #expect(second == 1)
        #expect(try await store.quickRead { try $0.customerCount() } == 2)
    }

    @Test
    func moreQuickReadsThanReadersAllSucceedBesideTheWriter() async throws {
        let store = try SQLiteStore.temporary(configuration: .init(maximumReaderCount: 1))
        try await store.write { try $0.insertCustomer(F.customer("a")) }
        // The one quick reader is busy while a second quick read runs: that one is served by the pool.
        let (outer, inner) = try await onThread {
            try store.readOnCallingThread { tx in
                let inner = DispatchQueue.global().sync { try? store.readOnCallingThread { try $0.customerCount() } }
                return (try tx.customerCount(), inner)
            }
        }
        #expect(outer == 1)
        #expect(inner == 1)
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                for index in 0..<20 { try await store.write { try $0.insertCustomer(F.customer("w\(index)")) } }
                return -1
            }
            for _ in 0..<32 {
                group.addTask { try await store.quickRead { try $0.customerCount() } }
            }
            var counts: [Int] = []
            for try await count in group where count >= 0 { counts.append(count) }
            return counts
        }
        #expect(counts.count == 32)
        #expect(counts.allSatisfy { (1...21).contains($0) })
        #expect(try await store.quickRead { try $0.customerCount() } == 21)
    }
}

/// Runs `body` on a thread of Dispatch's, not one of Swift concurrency's.
private func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
