import Foundation
import RapportMemory
import Rapport
import RapportCore
import RapportSQLite
import Testing

/// A database file written by one version of Rapport stays readable by every later one. `Fixtures/` holds files
/// written by earlier versions (never rewritten: a version that changes the schema adds its own file, named after its
/// last migration, and a test for it); each is opened by this version, compared with the same history written today,
/// and used further (jobs due, an unmerge, a replayed request, the outbox).
@Suite("File compatibility")
struct FileCompatibilityTests {
    /// When the history `populate` writes ends (2026-01-01T02:00:00Z): runs created until then are in the fixtures.
    static let historyEnd = Timestamp(millisecondsSinceEpoch: 1_767_232_800_000)
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    /// The admin key's secret in each file (printed by `writeFixture` when it made it).
    static let adminSecrets = [
        "v4-latest-runs": "rpk_ngdbsd7l34pypdwlelpnag2xxgrhtudie47fwixwp3fqu5mw33qk",
        "v5-merge-segments": "rpk_kqindc65ugjsufhfxcqw5sc3hrzynpd6arikgjroagqzidmrdyas",
        "v6-open-and-closed-indexes": "rpk_l4l56gyrqssudqxuz45z64c4ongwyvaefxva3evh74bfzhgjwh46",
    ]

    /// A few days of a small shop: attributes and event types, keys, customers with every kind of record, segments
    /// (one that waits for time to pass), rules (a wait, a segment trigger, a birthday, a weekly schedule), a merge,
    /// a fired rule's message in the outbox, a run still waiting, and a request id to replay.
    static func populate(_ crm: RapportEngine, _ clock: ManualClock) async throws -> CreatedAPIKey {
        _ = try await crm.defineAttribute(AttributeDefinition(key: "shoe_size", type: .int))
        _ = try await crm.defineEventType(EventTypeDefinition(type: "checkout.started", properties: [EventPropertyDefinition(key: "value_minor", type: .int)]))
        let admin = try await crm.createAPIKey(name: "fixture admin", role: .admin)
        let analyst = try await crm.createAPIKey(name: "fixture analyst", role: .analyst)
        _ = try await crm.revokeAPIKey(analyst.key.id)

        let buyers = try await crm.createSegment(.dynamic(key: "buyers", name: "Buyers", expression: "stats.order_count > 0"))
        _ = try await crm.createSegment(
            .dynamic(key: "lapsed", name: "No order in 30 days", expression: "stats.order_count > 0 and time_since(stats.last_order_at) > 30d"))
        let press = try await crm.createSegment(.list(key: "press", name: "Press contacts"))
        _ = try await crm.createRule(
            RuleDefinition(
                name: "Cart reminder", trigger: .event(type: "checkout.started"),
                wait: RuleWait(duration: .seconds(3600), recheck: "orders_count(since: event.occurred_at) == 0"),
                actions: [
                    .sendMessage(
                        MessageAction(
                            channel: .email, purpose: .transactional, template: "cart", subject: "{{ customer.given_name ?? \"Hello\" }}, your cart",
                            data: ["value": "{{ event.properties.value_minor }}"]))
                ]))
        _ = try await crm.createRule(RuleDefinition(name: "Welcome buyers", trigger: .segmentEntered(buyers.id), actions: [.addTag("buyer")]))
        _ = try await crm.createRule(RuleDefinition(name: "Birthday", trigger: .date(DateTrigger(field: .birthday)), actions: [.addTag("birthday")]))
        _ = try await crm.createRule(
            RuleDefinition(
                name: "Weekly buyers", trigger: .schedule(RuleSchedule(frequency: .weekly(weekday: 1), at: LocalTime(hour: 8), audience: buyers.id)),
                actions: [.setLifecycleStage(.active)]))

        var profile = CustomerProfile()
        profile.givenName = "Ada"
        profile.familyName = "Lovelace"
        profile.birthday = LocalDate(year: 1990, month: 1, day: 10)
        profile.timeZone = "Europe/London"
        profile.tags = ["vip"]
        profile.attributes = ["shoe_size": .int(38)]
        let ada = try await crm.createCustomer(NewCustomer(profile: profile, identities: [.email("ada@example.com"), .phone("+442079460000")]))
        _ = try await crm.ingest([
            event("e1", at: clock.now(), .email("ada@example.com")),
            event("e2", "checkout.started", at: clock.now(), .anonymousID("device-bob"), properties: ["value_minor": .int(4999)]),
            order("o1", at: clock.now(), .anonymousID("device-bob"), .email("bob@example.com"), totalMinor: 4999),
            order("o2", at: clock.now(), .email("bob@example.com"), totalMinor: 1500),
            event("e3", "checkout.started", at: clock.now(), .email("cy@example.com"), properties: ["value_minor": .int(1200)]),
        ])
        _ = try await crm.ingest([order("o2", at: clock.now(), .email("bob@example.com"), totalMinor: 1500, status: .cancelled, statusAt: clock.now())])
        _ = try await crm.recordInteraction(InteractionInput(customerID: ada.id, channel: .phone, direction: .inbound, subject: "Sizes", agent: "sam"))
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .marketing, status: .granted, source: "checkout"))
        _ = try await crm.addToList(press.id, customers: [ada.id])
        let bob = try #require(try await crm.findCustomer(.email("bob@example.com")))
        _ = try await crm.mergeCustomers(ada.id, bob.id, requestID: "fixture-merge")
        _ = try await crm.ingest([event("e4", at: clock.now(), .anonymousID("device-bob"))])  // after the merge

        // Cy's reminder fires into the outbox; Dan's still waits.
        _ = try await crm.advanceManualClock(to: clock.now() + .seconds(7200))
        _ = try await crm.ingest([event("e5", "checkout.started", at: clock.now(), .email("dan@example.com"), properties: ["value_minor": .int(800)])])
        _ = try await crm.createCustomer(NewCustomer(identities: [.email("eve@example.com")]), requestID: "fixture-create-eve")
        return admin
    }

    /// Everything the store holds, read through the storage protocol.
    struct StoredState: Hashable {
        var customers: [CustomerSnapshot] = []
        var memberships: [[SegmentMembership]] = []
        var merges: [[MergeRecord]] = []
        var attributes: [AttributeDefinition] = []
        var eventTypes: [EventTypeDefinition] = []
        var apiKeys: [APIKey] = []
        var segments: [Segment] = []
        var rules: [Rule] = []
        var runs: [RuleRun] = []
        var outbox: [OutboxEntry] = []
        var jobs: [ScheduledJob] = []
        var changes: [Change] = []
    }

    static func state(_ crm: RapportEngine) async throws -> StoredState {
        let ids = try await crm.store.read { tx in
            let active = try tx.customers(CustomerQuery(limit: 1000)).map(\.id)
            return active + (try active.flatMap { try tx.merges(into: $0).map(\.absorbedID) })
        }
        var state = StoredState()
        for id in ids.sorted() { state.customers.append(try await snapshot(crm, id)) }
        state = try await crm.store.read { [state] tx in
            var state = state
            let ids = state.customers.map(\.record.id)
            state.memberships = try ids.map { try tx.memberships(of: $0) }
            state.merges = try ids.map { try tx.merges(into: $0) }
            state.attributes = try tx.attributeDefinitions()
            state.eventTypes = try tx.eventTypeDefinitions()
            // The secrets are random: the same history has other hashes.
            state.apiKeys = try tx.apiKeys().map { key in
                var key = key
                key.secretHash = ""
                return key
            }
            state.segments = try tx.segments()
            state.rules = try tx.rules()
            state.runs = try tx.runs(RunQuery(limit: .max))
            state.outbox = try tx.outboxEntries(OutboxQuery(limit: .max))
            state.jobs = try tx.dueJobs(at: Timestamp(millisecondsSinceEpoch: 253_402_300_799_000), limit: .max)
            state.changes = try tx.changes(after: 0, limit: .max)
            return state
        }
        return state
    }

    /// Compares part by part, so that a difference names what differs.
    /// Feed entries this version records in a fixture's history that the fixtures' versions did not (a later
    /// fixture that has them would need this to depend on its version).
    static func addedSinceFixtures(_ change: Change) -> Bool {
        // A merged customer leaving its dynamic segments (recorded since the version after v4-latest-runs).
        change.kind == .segmentExited && change.mergeID != nil
    }

    /// What a file of `version` cannot hold, left out of `state` to compare it with that file: the waiting runs a
    /// merge took over are recorded since v5-merge-segments (older merges' runs go back as they did); customers'
    /// versions of merges' survivors in fixtures before v6, since a merge puts the survivor above both customers'
    /// versions (those versions added one); the waits of runs' chains, recorded since v6-open-and-closed-indexes
    /// (runs read from the fixtures say 0).
    static func comparable(_ state: StoredState, version: String) -> StoredState {
        var state = state
        // The revision segments were evaluated with is recorded since v6-open-and-closed-indexes.
        state.segments = state.segments.map { segment in
            var segment = segment
            segment.evaluatedWithRevision = nil
            return segment
        }
        state.runs = state.runs.map { run in
            var run = run
            if run.createdAt <= Self.historyEnd { run.waits = 0 }
            return run
        }
        let survivors = ["v4-latest-runs", "v5-merge-segments"].contains(version) ? Set(state.merges.flatMap { $0 }.map(\.survivorID)) : []
        state.customers = state.customers.map { snapshot in
            var snapshot = snapshot
            if survivors.contains(snapshot.record.id) { snapshot.record.version = 0 }
            return snapshot
        }
        guard version == "v4-latest-runs" else { return state }
        state.merges = state.merges.map { merges in
            merges.map { merge in
                var merge = merge
                merge.adoptedRuns = []
                return merge
            }
        }
        return state
    }

    static func expectSame(
        _ file: StoredState, _ today: StoredState, version: String, _ moment: Comment, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let file = comparable(file, version: version)
        let today = comparable(today, version: version)
        #expect(file.customers.map(\.record.id) == today.customers.map(\.record.id), moment, sourceLocation: sourceLocation)
        for (read, written) in zip(file.customers, today.customers) {
            #expect(read == written, "\(moment): customer \(read.record.id)", sourceLocation: sourceLocation)
        }
        #expect(file.memberships == today.memberships, "\(moment): memberships", sourceLocation: sourceLocation)
        #expect(file.merges == today.merges, "\(moment): merges", sourceLocation: sourceLocation)
        #expect(file.attributes == today.attributes, "\(moment): attributes", sourceLocation: sourceLocation)
        #expect(file.eventTypes == today.eventTypes, "\(moment): event types", sourceLocation: sourceLocation)
        #expect(file.apiKeys == today.apiKeys, "\(moment): API keys", sourceLocation: sourceLocation)
        #expect(file.segments == today.segments, "\(moment): segments", sourceLocation: sourceLocation)
        #expect(file.rules == today.rules, "\(moment): rules", sourceLocation: sourceLocation)
        #expect(file.runs == today.runs, "\(moment): runs", sourceLocation: sourceLocation)
        #expect(file.outbox == today.outbox, "\(moment): outbox", sourceLocation: sourceLocation)
        #expect(file.jobs == today.jobs, "\(moment): jobs", sourceLocation: sourceLocation)
        // The feed as the fixture's version wrote it: entries this version adds are left out, and cursors (which
        // number them) are compared by order only.
        func entries(_ changes: [Change]) -> [Change] {
            changes.filter { !Self.addedSinceFixtures($0) }.map { change in
                var change = change
                change.cursor = 0
                return change
            }
        }
        #expect(entries(file.changes) == entries(today.changes), "\(moment): change feed", sourceLocation: sourceLocation)
        #expect(file.changes.map(\.cursor) == file.changes.map(\.cursor).sorted(), "\(moment): cursors", sourceLocation: sourceLocation)
    }

    static func engine(_ store: any Store, ids: SequentialIDGenerator = SequentialIDGenerator()) -> (RapportEngine, ManualClock) {
        let clock = ManualClock(now: start)
        return (RapportEngine(store: store, clock: clock, ids: ids, logger: quietLogger), clock)
    }

    @Test(arguments: ["v4-latest-runs", "v5-merge-segments", "v6-open-and-closed-indexes"])
    func aFileWrittenByAnEarlierVersionOpensAndGoesOn(_ version: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-fixture-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("crm.sqlite").path
        // The committed file is never opened in place: opening migrates it.
        try FileManager.default.copyItem(atPath: Self.fixtures.appendingPathComponent("\(version).sqlite").path, toPath: path)

        // The same history, written today.
        let todayIDs = SequentialIDGenerator()
        let (today, todayClock) = Self.engine(MemoryStore(), ids: todayIDs)
        _ = try await Self.populate(today, todayClock)
        let store = try SQLiteStore(path: path)
        defer { try? store.close() }
        // The clock goes on from where the history stopped; ids continue after the file's.
        let (old, oldClock) = Self.engine(store, ids: SequentialIDGenerator(after: todayIDs.issued))
        oldClock.advance(to: todayClock.now())
        Self.expectSame(try await Self.state(old), try await Self.state(today), version: version, "as opened")

        // What the file holds is usable, not only readable.
        #expect(try await old.authenticate(secret: try #require(Self.adminSecrets[version]))?.role == .admin)
        let ada = try #require(try await old.findCustomer(.email("bob@example.com")))
        #expect(try await old.findCustomer(.email("ada@example.com"))?.id == ada.id)
        #expect(try await old.customer(ada.id).profile.tags == ["buyer", "vip"])
        let cart = try await old.outboxEntries(states: [.pending]).entries
        #expect(cart.count == 1)
        #expect(try await old.runs(status: .waiting).runs.count == 1)

        for (crm, clock) in [(old, oldClock), (today, todayClock)] {
            // A replayed request answers as the first time.
            let eve = try await crm.createCustomer(NewCustomer(identities: [.email("eve@example.com")]), requestID: "fixture-create-eve")
            #expect(try await crm.findCustomer(.email("eve@example.com"))?.id == eve.id)
            // Jobs come due: Dan's reminder, Monday's schedule, Ada's birthday, the lapse after 30 days.
            _ = try await crm.advanceManualClock(to: clock.now() + .seconds(40 * 86_400))
            let merge = try #require(try await crm.merges(into: ada.id).first)
            _ = try await crm.unmerge(merge.id, requestID: "fixture-unmerge")
            _ = try await crm.leaseOutbox(consumer: "fixture")
        }
        Self.expectSame(try await Self.state(old), try await Self.state(today), version: version, "after going on")
        #expect(try await old.runs(status: .waiting).runs.isEmpty)
        #expect(try await old.customer(ada.id).profile.tags.contains("birthday"))
        let lapsed = try #require(try await old.segments().first { $0.key == "lapsed" })
        #expect(lapsed.memberCount == 1)
    }

    /// Writes the fixture of this version: `RAPPORT_WRITE_FIXTURE=<path> .build/debug/RapportPackageTests.xctest
    /// --testing-library swift-testing --filter writeFixture`, then `sqlite3 <path> 'PRAGMA wal_checkpoint(TRUNCATE)'`,
    /// copy the file into `Fixtures/` under the name of the last migration, put the printed secret in `adminSecrets`
    /// under that name, and add the name to the test's arguments.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["RAPPORT_WRITE_FIXTURE"] != nil))
    func writeFixture() async throws {
        let path = try #require(ProcessInfo.processInfo.environment["RAPPORT_WRITE_FIXTURE"])
        #expect(!FileManager.default.fileExists(atPath: path), "\(path) exists already")
        let store = try SQLiteStore(path: path)
        let (crm, clock) = Self.engine(store)
        let admin = try await Self.populate(crm, clock)
        try store.close()
        print("admin secret: \(admin.secret)")
    }
}
