import Foundation
import Rapport
import RapportCore
import RapportSQLite
import Testing

@Suite("Request ids, API keys and the change feed")
struct RequestIDTests {
    @Test(arguments: Backend.allCases)
    func aRetriedMutationReturnsTheFirstResultAndAppliesNothingTwice(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let input = NewCustomer(profile: CustomerProfile(givenName: "Ada"), identities: [.email("ada@example.com")])
        let first = try await crm.createCustomer(input, requestID: "req-1")
        clock.advance(by: .seconds(5))
        let retry = try await crm.createCustomer(input, requestID: "req-1")
        #expect(retry == first)
        #expect(try await crm.customerCount() == 1)

        // The same id for a different request is refused, and changes nothing.
        await expectError(.failedPrecondition("request_id 'req-1' was already used for a different createCustomer request")) {
            try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Eve")), requestID: "req-1")
        }
        // One id is one request, whatever the call: on another operation it is refused too, and applies nothing.
        let batch = [event("e1", at: start, .email("ada@example.com"))]
        await expectError(.failedPrecondition("request_id 'req-1' was already used for a createCustomer request; use a new id for each request")) {
            try await crm.ingest(batch, requestID: "req-1")
        }
        #expect(try await crm.stats(of: first.id).eventCount == 0)
        let ingested = try await crm.ingest(batch, requestID: "req-1b")
        #expect(try await crm.ingest(batch, requestID: "req-1b") == ingested)
        // The same items all or nothing are another request: its promise differs.
        await expectError(.failedPrecondition("request_id 'req-1b' was already used for a different ingest request")) {
            try await crm.ingest(batch, mode: .allOrNothing, requestID: "req-1b")
        }
        #expect(ingested.outcomes == [.accepted(first.id)])

        let update = try await crm.updateCustomer(first.id, set: CustomerProfile(familyName: "King"), fields: [.familyName], requestID: "req-2")
        clock.advance(by: .seconds(5))
        // A retry after someone else's change still returns the first answer instead of failing on the etag.
        _ = try await crm.updateCustomer(first.id) { $0.tags = ["vip"] }
        #expect(try await crm.updateCustomer(first.id, set: CustomerProfile(familyName: "King"), fields: [.familyName], requestID: "req-2") == update)
        #expect(try await crm.customer(first.id).version == 3)

        try await crm.deleteCustomer(first.id, requestID: "req-3")
        try await crm.deleteCustomer(first.id, requestID: "req-3")  // a retry does not fail with NOT_FOUND
        await expectError(.notFound(entity: "customer", id: first.id.rawValue)) { try await crm.deleteCustomer(first.id, requestID: "req-4") }

        // Request ids are remembered for a day.
        clock.advance(by: .seconds(25 * 3600))
        _ = try await crm.createCustomer(NewCustomer(identities: [.email("other@example.com")]), requestID: "req-5")
        let again = try await crm.createCustomer(input, requestID: "req-1")
        #expect(again.id != first.id)
        await expectError(.invalid("request_id", "must be at most 128 bytes (UTF-8) on one line, without NUL")) {
            try await crm.createCustomer(input, requestID: String(repeating: "x", count: 129))
        }
    }

    @Test(arguments: Backend.allCases)
    func aRetryReturnsTheFirstAnswersReasonsEvenWhenTimeChangedThem(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        // More than a day ahead of the clock: refused now, acceptable a day later.
        let batch = [event("early", at: start + day + .seconds(1800), .email("ada@example.com")), event("ok", at: start, .email("ada@example.com"))]
        let first = try await crm.ingest(batch, requestID: "r-time")
        guard case .rejected(let reasons) = first.outcomes[0] else { throw RapportError.failedPrecondition("not rejected") }
        #expect(reasons.map(\.field) == ["occur_time"])
        clock.advance(by: .seconds(3600))  // the early event would be accepted now
        #expect(try await crm.ingest(batch, requestID: "r-time") == first)
    }

    @Test(arguments: Backend.allCases)
    func aRequestIDIsForgottenAfterADayEvenBeforeHousekeeping(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let first = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Ada")), requestID: "quiet")
        clock.advance(by: day)
        // Exactly a day later it is still the same request...
        await expectError(.failedPrecondition("request_id 'quiet' was already used for a different createCustomer request")) {
            try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Eve")), requestID: "quiet")
        }
        // ...a moment later a new one, though nothing wrote since to clear the old record away.
        clock.advance(by: .milliseconds(1))
        let eve = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Eve")), requestID: "quiet")
        #expect(eve.id != first.id)
        #expect(try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Eve")), requestID: "quiet") == eve)
    }

    @Test(arguments: Backend.allCases)
    func retriesTellADisabledRuleAndAClearedDescriptionApart(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let definition = RuleDefinition(name: "Tag", trigger: .event(type: "visit"), actions: [.addTag("seen")])
        let rule = try await crm.createRule(definition, requestID: "rule")
        #expect(try await crm.createRule(definition, requestID: "rule") == rule)
        await expectError(.failedPrecondition("request_id 'rule' was already used for a different createRule request")) {
            try await crm.createRule(definition, enabled: false, requestID: "rule")
        }
        #expect(try await crm.rules().count == 1)

        let segment = try await crm.createSegment(.dynamic(key: "seen", name: "Seen", expression: "has_tag(\"seen\")", description: "tagged"))
        let renamed = try await crm.updateSegment(segment.id, SegmentChanges(name: "Seen them"), requestID: "segment")
        #expect(renamed.description == "tagged")
        await expectError(.failedPrecondition("request_id 'segment' was already used for a different updateSegment request")) {
            try await crm.updateSegment(segment.id, SegmentChanges(name: "Seen them", description: ""), requestID: "segment")
        }
        #expect(try await crm.segment(segment.id).description == "tagged")
    }

    @Test(arguments: Backend.allCases)
    func anErasedCustomerLeavesNoCopyInStoredAnswersAndRetriesAreRefused(backend: Backend) async throws {
        let store = try backend.makeStore()
        let clock = ManualClock(now: start)
        let crm = RapportEngine(store: store, clock: clock, ids: SequentialIDGenerator(), logger: quietLogger)
        let input = NewCustomer(profile: CustomerProfile(givenName: "Ada", familyName: "Lovelace"), identities: [.email("ada@example.com")])
        let ada = try await crm.createCustomer(input, requestID: "create-ada")
        let bob = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Bob")), requestID: "create-bob")
        let batch = [event("e1", at: start, .email("ada@example.com"))]
        _ = try await crm.ingest(batch, requestID: "ingest-1")
        try await crm.deleteCustomer(ada.id)

        let stored = try await store.read { tx in try ["request:create-ada", "request:ingest-1"].map { try tx.idempotencyRecord($0) } }
        #expect(stored.map { $0?.response } == [[], []])
        // A retry is recognised and refused: applying it again would bring the erased customer back.
        let refused = RapportError.failedPrecondition("request_id 'create-ada' was applied already; its answer held data of a customer erased since, so it is not kept")
        await expectError(refused) { try await crm.createCustomer(input, requestID: "create-ada") }
        await expectError(.failedPrecondition("request_id 'ingest-1' was applied already; its answer held data of a customer erased since, so it is not kept")) {
            try await crm.ingest(batch, requestID: "ingest-1")
        }
        #expect(try await crm.customerCount() == 1)
        // Other customers' answers are kept.
        #expect(try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Bob")), requestID: "create-bob") == bob)

        // Housekeeping forgets every answer after the day request ids are remembered.
        try await store.write { try $0.putJob(ScheduledJob(key: "housekeeping", dueAt: start, kind: .housekeeping)) }
        clock.advance(by: .seconds(25 * 3600))
        try await crm.runDueJobs()
        #expect(try await store.read { try $0.idempotencyRecord("request:create-bob") } == nil)
    }

    @Test(arguments: Backend.allCases)
    func answersGivenWhileACustomerWasMergedAwayAreEmptiedWhenItIsErased(backend: Backend) async throws {
        let store = try backend.makeStore()
        let clock = ManualClock(now: start)
        let crm = RapportEngine(store: store, clock: clock, ids: SequentialIDGenerator(), logger: quietLogger)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]), requestID: "before")
        clock.advance(by: .seconds(3600))
        let bea = try await crm.createCustomer(NewCustomer(identities: [.email("bea@example.com")]))
        clock.advance(by: .seconds(3600))
        let merge = try await crm.mergeCustomers(ada.id, bea.id)
        clock.advance(by: .seconds(3600))
        // While merged (an hour each way: the window has a few minutes' margin), answers name the survivor but hold
        // Bea's data: her interaction, her e-mail address.
        let note = InteractionInput(customerID: bea.id, channel: .phone, direction: .inbound, summary: "Bea's complaint")
        _ = try await crm.recordInteraction(note, requestID: "note")
        _ = try await crm.updateCustomer(ada.id, set: CustomerProfile(givenName: "Ada"), fields: [.givenName], requestID: "edit")
        clock.advance(by: .seconds(3600))
        _ = try await crm.unmerge(merge.merge.id)
        clock.advance(by: .seconds(3600))
        _ = try await crm.updateCustomer(ada.id, set: CustomerProfile(familyName: "Lovelace"), fields: [.familyName], requestID: "after")
        try await crm.deleteCustomer(bea.id)

        let answers = try await store.read { tx in
            try ["request:before", "request:note", "request:edit", "request:after"].map { try tx.idempotencyRecord($0)!.response.isEmpty }
        }
        #expect(answers == [false, true, true, false])
        await expectError(.failedPrecondition("request_id 'note' was applied already; its answer held data of a customer erased since, so it is not kept")) {
            try await crm.recordInteraction(note, requestID: "note")
        }
    }

    @Test(arguments: Backend.allCases)
    func answersOfTheCustomerAChainMergedAnErasedOneIntoAreEmptiedToo(backend: Backend) async throws {
        let store = try backend.makeStore()
        let clock = ManualClock(now: start)
        let crm = RapportEngine(store: store, clock: clock, ids: SequentialIDGenerator(), logger: quietLogger)
        let zed = try await crm.createCustomer(NewCustomer(identities: [.email("zed@example.com")]))
        clock.advance(by: .seconds(60))
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        clock.advance(by: .seconds(60))
        let bea = try await crm.createCustomer(NewCustomer(identities: [.email("bea@example.com")]))
        let first = try await crm.mergeCustomers(ada.id, bea.id)
        clock.advance(by: .seconds(3600))
        let second = try await crm.mergeCustomers(zed.id, ada.id)  // Bea's e-mail is Zed's now, through Ada
        clock.advance(by: .seconds(3600))
        _ = try await crm.updateCustomer(zed.id, set: CustomerProfile(givenName: "Zed"), fields: [.givenName], requestID: "zed-while")
        clock.advance(by: .seconds(3600))
        _ = try await crm.unmerge(second.merge.id)
        _ = try await crm.unmerge(first.merge.id)
        clock.advance(by: .seconds(3600))
        _ = try await crm.updateCustomer(zed.id, set: CustomerProfile(familyName: "Z"), fields: [.familyName], requestID: "zed-after")
        try await crm.deleteCustomer(bea.id)
        let answers = try await store.read { tx in try ["request:zed-while", "request:zed-after"].map { try tx.idempotencyRecord($0)!.response.isEmpty } }
        #expect(answers == [true, false])
    }

    @Test func aKeyRevokedWhileItIsBeingCheckedIsNotRememberedAsActive() async throws {
        let store = RevokingStore(base: try Backend.memory.makeStore())
        let crm = RapportEngine(store: store, clock: ManualClock(now: start), ids: SequentialIDGenerator(), logger: quietLogger)
        let created = try await crm.createAPIKey(name: "ci", role: .analyst)
        // The revocation commits after the check read the key (still active) and before it keeps the answer.
        store.afterQuickRead = { _ = try? await crm.revokeAPIKey(created.key.id) }
        #expect(try await crm.authenticate(secret: created.secret)?.id == created.key.id)  // it was active when read
        store.afterQuickRead = nil
        #expect(try await crm.authenticate(secret: created.secret) == nil)  // the clock did not move: not from a cache
    }

    /// A first key nobody saw (the server could not print it) is revoked: the next start makes another.
    @Test func aFirstKeyNobodySawIsRevokedAndTheNextStartMakesAnother() async throws {
        let (crm, _) = try makeEngine(.memory)
        let bootstrap = try #require(try await crm.bootstrapAdminKey())
        try await crm.revokeUnseenBootstrapKey(bootstrap.key.id)
        let again = try #require(try await crm.bootstrapAdminKey())
        #expect(again.key.id != bootstrap.key.id)
        #expect(try await crm.authenticate(secret: bootstrap.secret) == nil)
        #expect(try await crm.authenticate(secret: again.secret)?.id == again.key.id)
        #expect(try await crm.bootstrapAdminKey() == nil)
    }

    @Test(arguments: Backend.allCases)
    func apiKeysAreStoredHashedAndRevocable(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let bootstrap = try #require(try await crm.bootstrapAdminKey())
        #expect(bootstrap.key.role == .admin)
        #expect(try await crm.bootstrapAdminKey() == nil)  // only into a store without an active key

        let created = try await crm.createAPIKey(name: " checkout ", role: .marketing, requestID: "k1")
        #expect(created.key.name == "checkout")
        #expect(created.secret.hasPrefix("rpk_"))
        #expect(created.key.secretHash != created.secret)
        #expect(!created.key.secretHash.contains(created.secret))
        // A retried create does not reveal the secret again: it was never stored.
        let retried = try await crm.createAPIKey(name: " checkout ", role: .marketing, requestID: "k1")
        #expect(retried.key == created.key)
        #expect(retried.secret.isEmpty)

        #expect(try await crm.authenticate(secret: created.secret) == created.key)
        #expect(try await crm.authenticate(secret: created.secret + "x") == nil)
        #expect(try await crm.authenticate(secret: "") == nil)
        let revoked = try await crm.revokeAPIKey(created.key.id)
        #expect(revoked.revokedAt != nil)
        #expect(try await crm.authenticate(secret: created.secret) == nil)
        #expect(try await crm.apiKeys().map(\.id) == [bootstrap.key.id, created.key.id])
        await expectError(.notFound(entity: "api key", id: "key_nope")) { try await crm.revokeAPIKey(APIKeyID(rawValue: "key_nope")!) }
        let error = await captureError { try await crm.createAPIKey(name: "  ", role: .analyst) }
        #expect(error?.fieldViolations.map(\.field) == ["name"])

        // The last active admin key stays: without one nobody could manage keys (and no new one is bootstrapped).
        await expectError(
            .failedPrecondition(
                "api key \(bootstrap.key.id) is the last active admin key: create another admin key before revoking it, or nobody could manage keys")
        ) { try await crm.revokeAPIKey(bootstrap.key.id) }
        #expect(try await crm.authenticate(secret: bootstrap.secret)?.role == .admin)
        let second = try await crm.createAPIKey(name: "second admin", role: .admin)
        #expect(try await crm.revokeAPIKey(bootstrap.key.id).revokedAt != nil)
        await expectError(
            .failedPrecondition(
                "api key \(second.key.id) is the last active admin key: create another admin key before revoking it, or nobody could manage keys")
        ) { try await crm.revokeAPIKey(second.key.id) }
    }

    @Test func rolesGrantWhatTheyShould() {
        #expect(Role.admin.permissions == Set(Permission.allCases))
        #expect(Role.analyst.seesPersonalData == false)
        #expect(Role.readOnly.seesPersonalData == false)
        #expect(Role.marketing.seesPersonalData)
        #expect(Role.readOnly.permissions == [.readCustomers])
        for role in Role.allCases where role != .admin { #expect(!role.permissions.contains(.manageAPIKeys)) }
        #expect(Role.sales.permissions.contains(.ingest) == false)
        #expect(Role.marketing.permissions.contains(.ingest))
    }

    /// A request id an older version kept under its operation (`createCustomer:<id>`, the hash alone as fingerprint)
    /// is still a retry within its day: the first answer comes back, nothing is applied again.
    @Test(arguments: Backend.allCases)
    func aRequestIDKeptByAnOlderVersionIsStillFound(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let input = NewCustomer(identities: [.email("ada@example.com")])
        let first = try await crm.createCustomer(input, requestID: "new-1")
        try await crm.store.write { tx in
            let kept = try #require(try tx.idempotencyRecord("request:new-1"))
            #expect(kept.fingerprint.hasPrefix("createCustomer:"))
            try tx.insertIdempotencyRecord(
                IdempotencyRecord(key: "createCustomer:old-1", fingerprint: String(kept.fingerprint.dropFirst("createCustomer:".count)), response: kept.response, createdAt: kept.createdAt))
        }
        #expect(try await crm.createCustomer(input, requestID: "old-1") == first)
        #expect(try await crm.customerCount() == 1)
        await expectError(.failedPrecondition("request_id 'old-1' was already used for a different createCustomer request")) {
            try await crm.createCustomer(NewCustomer(identities: [.email("eve@example.com")]), requestID: "old-1")
        }
    }

    /// Housekeeping forgets changes older than their retention: a follower that fell further behind is told to list
    /// again, instead of reading on past what it missed.
    @Test(arguments: Backend.allCases)
    func aCursorOlderThanTheFeedKeepsIsRefused(backend: Backend) async throws {
        let clock = ManualClock(now: start)
        let crm = RapportEngine(
            store: try backend.makeStore(), clock: clock, ids: SequentialIDGenerator(), logger: quietLogger,
            automation: AutomationSettings(changeRetention: .seconds(7 * 86_400)))
        _ = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))  // cursor 1
        _ = try await crm.createCustomer(NewCustomer(identities: [.email("bob@example.com")]))  // cursor 2
        clock.advance(by: .seconds(8 * 86_400))
        let cy = try await crm.createCustomer(NewCustomer(identities: [.email("cy@example.com")]))  // cursor 3
        try await crm.startHousekeeping()
        _ = try await crm.runDueJobs()
        #expect(try await crm.changes(after: 2).map(\.customerID) == [cy.id])  // nothing missed from 2
        let refused = RapportError.failedPrecondition(
            "after_cursor 1 is older than the change feed keeps (its oldest change is 3): list the customers again and follow the feed from the listing's change_cursor")
        await expectError(refused) { try await crm.changes(after: 1) }
        await expectError(refused) {
            var iterator = crm.watchChanges(after: 1).makeAsyncIterator()
            _ = try await iterator.next()
        }
        // 0 is no position: it reads from the oldest change kept.
        #expect(try await crm.changes(after: 0).map(\.customerID) == [cy.id])
        // A listing's cursor is one to follow from.
        let cursor = try await crm.listCustomers().changeCursor
        #expect(try await crm.changes(after: cursor).isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func requestIDsAreEachCallersOwn(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let ada = try await RapportEngine.$requestScope.withValue("billing") {
            try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]), requestID: "42")
        }
        let bob = try await RapportEngine.$requestScope.withValue("shop") {
            try await crm.createCustomer(NewCustomer(identities: [.email("bob@example.com")]), requestID: "42")
        }
        #expect(ada.id != bob.id)
        // Each caller's retry is its own first answer.
        let again = try await RapportEngine.$requestScope.withValue("billing") {
            try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]), requestID: "42")
        }
        #expect(again == ada)
        #expect(try await crm.customerCount() == 2)
        // A scope and an id are not cut another way ("shop" + "4:2" is not "shop:4" + "2"), nor spelled by an id alone.
        let dan = try await RapportEngine.$requestScope.withValue("shop") {
            try await crm.createCustomer(NewCustomer(identities: [.email("dan@example.com")]), requestID: "4:2")
        }
        let cy = try await RapportEngine.$requestScope.withValue("shop:4") {
            try await crm.createCustomer(NewCustomer(identities: [.email("cy@example.com")]), requestID: "2")
        }
        #expect(Set([dan.id, cy.id, bob.id]).count == 3)
        let eve = try await crm.createCustomer(NewCustomer(identities: [.email("eve@example.com")]), requestID: "@4:shop:42")
        #expect(eve.id != bob.id)
    }

    @Test(arguments: Backend.allCases)
    func activityOfACustomerAbsorbedInTheSameBatchIsReportedUnderTheSurvivor(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        clock.advance(by: .seconds(1))
        let phone = try await crm.createCustomer(NewCustomer(identities: [.phone("+14155550123")]))
        let before = try await crm.changes(after: 0).count
        _ = try await crm.ingest([
            event("p1", at: start, .phone("+14155550123")),
            event("both", at: start, .email("ada@example.com"), .phone("+14155550123")),
        ])
        let batch = try await crm.changes(after: Int64(before))
        #expect(batch.map(\.kind) == [.customersMerged, .activityRecorded])
        #expect(batch.map(\.customerID) == [ada.id, ada.id])
        #expect(batch[0].otherCustomerID == phone.id)
    }

    /// An identity an ingested record adds to a known customer changes the customer: the feed says so, once a batch.
    @Test(arguments: Backend.allCases)
    func identitiesAddedByIngestAreACustomerUpdate(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        let before = try await crm.changes(after: 0).count
        _ = try await crm.ingest([
            event("a1", at: start, .email("ada@example.com"), .anonymousID("device-1")),
            event("a2", at: start, .email("ada@example.com"), .anonymousID("device-2")),
            event("a3", at: start, .email("ada@example.com")),
        ])
        let batch = try await crm.changes(after: Int64(before))
        #expect(batch.map(\.kind) == [.customerUpdated, .activityRecorded])
        #expect(batch.map(\.customerID) == [ada.id, ada.id])
        // Nothing new: activity only.
        _ = try await crm.ingest([event("a4", at: start, .email("ada@example.com"), .anonymousID("device-1"))])
        #expect(try await crm.changes(after: Int64(before + 2)).map(\.kind) == [.activityRecorded])
    }

    @Test(.timeLimit(.minutes(1)), arguments: Backend.allCases)
    func theChangeFeedReportsEveryChangeInOrderAndResumes(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        let bob = try await crm.createCustomer(NewCustomer(identities: [.email("bob@example.com")]))
        _ = try await crm.ingest([
            event("e1", at: start, .email("ada@example.com")), event("e2", at: start, .email("ada@example.com")), event("e3", at: start, .email("new@example.com")),
        ])
        _ = try await crm.updateCustomer(ada.id) { $0.givenName = "Ada" }
        let merge = try await crm.mergeCustomers(ada.id, bob.id).merge
        _ = try await crm.unmerge(merge.id)
        _ = try await crm.recordInteraction(InteractionInput(customerID: bob.id, channel: .chat, direction: .inbound))
        try await crm.deleteCustomer(bob.id)

        let all = try await crm.changes(after: 0)
        let newcomer = try #require(try await crm.findCustomer(.email("new@example.com")))
        let expected: [(ChangeKind, CustomerID)] = [
            (.customerCreated, ada.id), (.customerCreated, bob.id), (.customerCreated, newcomer.id), (.activityRecorded, ada.id),
            (.activityRecorded, newcomer.id), (.customerUpdated, ada.id), (.customersMerged, ada.id), (.customersUnmerged, ada.id),
            (.engagementRecorded, bob.id), (.customerDeleted, bob.id),
        ]
        #expect(all.map(\.kind) == expected.map(\.0))
        #expect(all.map(\.customerID) == expected.map(\.1))
        #expect(all.map(\.cursor) == Array(1...Int64(expected.count)))
        #expect(all[6].otherCustomerID == bob.id && all[6].mergeID == merge.id)
        #expect(try await crm.changes(after: 7).map(\.cursor) == [8, 9, 10])

        // A watcher gets the backlog after its cursor, then what is committed while it waits.
        var iterator = crm.watchChanges(after: 8).makeAsyncIterator()
        #expect(try await iterator.next()?.kind == .engagementRecorded)
        #expect(try await iterator.next()?.kind == .customerDeleted)
        let carol = try await crm.createCustomer(NewCustomer(identities: [.email("carol@example.com")]))
        #expect(try await iterator.next() == Change(cursor: 11, kind: .customerCreated, customerID: carol.id, at: start))

        // A watcher of one customer sees only the changes that name it.
        var carolsChanges = crm.watchChanges(after: 0, customerID: carol.id).makeAsyncIterator()
        #expect(try await carolsChanges.next()?.cursor == 11)
        _ = try await crm.createCustomer(NewCustomer(identities: [.email("dave@example.com")]))
        let merged = try await crm.mergeCustomers(carol.id, ada.id).merge
        let next = try #require(try await carolsChanges.next())
        #expect(next.kind == .customersMerged)
        #expect(next.mergeID == merged.id)
        #expect(next.otherCustomerID == carol.id)
        await expectError(.invalid("after_cursor", "must not be negative")) { try await crm.changes(after: -1) }
        await expectError(.invalid("limit", "must not be negative, got -5")) { try await crm.changes(after: 0, limit: -5) }
        #expect(try await crm.changes(after: 0, limit: 0).count == 13)  // 0: the default page
    }

    @Test(arguments: Backend.allCases)
    func aWatcherReadsALongHistoryPageByPageExactlyOnceThenWaitsAndEndsAtShutdown(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        // Over 1,600 changes (each new customer is created and active), pages of 500; Ada's activity among them.
        let items = (0..<800).map { index in event("e\(index)", at: start, .email("other\(index)@example.com")) }
        _ = try await crm.ingest(Array(items[..<400]) + [event("ada-1", at: start, .email("ada@example.com"))] + Array(items[400...]))
        var total: Int64 = 0
        while let last = try await crm.changes(after: total, limit: 1000).last { total = last.cursor }
        #expect(total > 1_600)
        var all = crm.watchChanges(after: 0).makeAsyncIterator()
        var cursors: [Int64] = []
        while cursors.count < Int(total), let change = try await all.next() { cursors.append(change.cursor) }
        #expect(cursors == Array(1...total))
        // A watcher of one customer skips the others across pages.
        var adas = crm.watchChanges(after: 0, customerID: ada.id).makeAsyncIterator()
        #expect(try await adas.next()?.kind == .customerCreated)
        #expect(try await adas.next()?.kind == .activityRecorded)
        // Caught up, a watcher waits; shutting the engine's watchers down ends it.
        let waiting = Task { [adas] in
            var iterator = adas
            return try await iterator.next()
        }
        crm.finishChangeWatchers()
        #expect(try await waiting.value == nil)
    }
}

extension RequestIDTests {
    @Test(.timeLimit(.minutes(1)))
    func aCaughtUpWatcherSeesWhatAnotherProcessCommitsToTheSameFileWithinThePollInterval() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-feed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("crm.sqlite").path
        let clock = ManualClock(now: start)
        // Two engines on one file, as a server and another process writing to it: commits of one wake no watcher of
        // the other.
        let watching = RapportEngine(store: try SQLiteStore(path: path), clock: clock, logger: quietLogger)
        let writing = RapportEngine(store: try SQLiteStore(path: path), clock: clock, logger: quietLogger)
        let ada = try await writing.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        var iterator = watching.watchChanges(after: 0).makeAsyncIterator()
        #expect(try await iterator.next()?.customerID == ada.id)
        let next = Task { [iterator] in
            var caughtUp = iterator
            return try await caughtUp.next()
        }
        while clock.sleeps.waiting == 0 { await Task.yield() }  // caught up and waiting
        let bob = try await writing.createCustomer(NewCustomer(identities: [.email("bob@example.com")]))
        clock.advance(by: ChangeWatch.pollInterval)
        #expect(try await next.value?.customerID == bob.id)
    }
}

/// A store that runs a hook after each quick read, before the caller gets the result.
final class RevokingStore: Store, @unchecked Sendable {
    let base: any Store
    nonisolated(unsafe) var afterQuickRead: (@Sendable () async -> Void)?

    init(base: any Store) { self.base = base }

    func read<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T { try await base.read(body) }
    func write<T: Sendable>(_ body: @Sendable (any StoreWriter) throws -> T) async throws -> T { try await base.write(body) }
    func quickRead<T: Sendable>(_ body: @Sendable (any StoreReader) throws -> T) async throws -> T {
        let result = try await base.quickRead(body)
        if let hook = afterQuickRead {
            afterQuickRead = nil
            await hook()
        }
        return result
    }
}
