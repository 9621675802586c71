import Foundation
import Rapport
import RapportCore
import RapportSQLite
import RapportTesting
import Testing

@Suite("Outbox and scheduler")
struct OutboxTests {
    /// A rule that queues one message per `visit` event, and a customer who consents.
    func setUp(_ crm: RapportEngine, customers: [String] = ["ada@example.com"]) async throws {
        _ = try await crm.createRule(
            RuleDefinition(
                name: "Notify", trigger: .event(type: "visit"),
                actions: [.sendMessage(MessageAction(channel: .email, template: "visit", subject: "{{ event.id }}"))]))
        for email in customers {
            let customer = try await crm.createCustomer(NewCustomer(identities: [.email(email)]))
            _ = try await crm.recordConsent(ConsentInput(customerID: customer.id, channel: .email, purpose: .marketing, status: .granted, source: "form"))
        }
    }

    func visit(_ crm: RapportEngine, _ id: String, _ email: String, at time: Timestamp) async throws {
        _ = try await crm.ingest([event(id, "visit", at: time, .email(email))])
    }

    /// An engine on a manual clock over a store that can be made to fail.
    func failingEngine() throws -> (store: FailingStore, clock: ManualClock, crm: RapportEngine) {
        let store = FailingStore(base: try Backend.memory.makeStore())
        let clock = ManualClock(now: start)  // 2026-01-01
        return (store, clock, RapportEngine(store: store, clock: clock, ids: SequentialIDGenerator(), logger: quietLogger))
    }

    /// A rule that tags a customer an hour after `signed_up`, and Ada's run of it, waiting.
    func waitingRun(_ crm: RapportEngine, _ clock: ManualClock) async throws -> (rule: Rule, run: RuleRun) {
        let rule = try await crm.createRule(
            RuleDefinition(name: "Later", trigger: .event(type: "signed_up"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("later")]))
        _ = try await crm.ingest([event("s1", "signed_up", at: clock.now(), .email("ada@example.com"))])
        return (rule, try #require(try await crm.runs(rule: rule.id).runs.first))
    }

    func subject(_ entry: OutboxEntry) -> String {
        if case .message(let message) = entry.payload { message.subject } else { "" }
    }

    @Test(arguments: Backend.allCases)
    func leasesGoOutInOrderPerCustomerAndExpiredLeasesComeBack(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        try await setUp(crm, customers: ["ada@example.com", "bob@example.com"])
        try await visit(crm, "a1", "ada@example.com", at: clock.now())
        try await visit(crm, "b1", "bob@example.com", at: clock.now())
        try await visit(crm, "a2", "ada@example.com", at: clock.now())
        // Ada's second message waits for her first.
        let first = try await crm.leaseOutbox(consumer: "mailer", leaseDuration: .seconds(30))
        #expect(first.map(subject) == ["a1", "b1"])
        #expect(first.allSatisfy { $0.state == .leased && $0.leaseOwner == "mailer" && $0.attempts == 1 })
        #expect(try await crm.leaseOutbox(consumer: "other").isEmpty)
        // Bob's is acknowledged; Ada's lease runs out and she is offered again, with the same idempotency key.
        try await crm.acknowledgeOutbox([first[1].id])
        clock.advance(by: .seconds(31))
        // Its lease expired, Ada's first entry reads as pending, held by nobody.
        let expired = try await crm.outboxEntry(first[0].id)
        #expect(expired.state == .pending && expired.leaseOwner == nil && expired.leaseExpiresAt == nil && expired.attempts == 1)
        #expect(try await crm.outboxEntries(states: [.pending]).entries.map(subject) == ["a1", "a2"])
        #expect(try await crm.outboxEntries(states: [.leased]).entries.isEmpty)
        #expect(try await crm.outboxEntries(states: [.pending], page: PageRequest(size: 1)).entries.map(subject) == ["a1"])
        let again = try await crm.leaseOutbox(consumer: "other")
        #expect(again.map(\.id) == [first[0].id])
        #expect(again.first?.idempotencyKey == first[0].idempotencyKey)
        #expect(again.first?.attempts == 2)
        // An acknowledgement from the first consumer still counts; then a2 is next.
        try await crm.acknowledgeOutbox([first[0].id])
        #expect(try await crm.leaseOutbox(consumer: "mailer").map(subject) == ["a2"])
        #expect(try await crm.outboxEntries(states: [.delivered]).entries.count == 2)
        #expect(try await crm.acknowledgeOutbox([OutboxEntryID(uncheckedRawValue: "obx_missing")]).isEmpty)
    }

    /// A lease or a failure report retried with its request id answers as the first call did: the same entries,
    /// none leased again; not that the entry is failed already.
    @Test(arguments: Backend.allCases)
    func leasesAndFailuresRetriedWithTheirRequestIDAnswerAsTheFirstTime(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        try await setUp(crm, customers: ["ada@example.com", "bob@example.com"])
        try await visit(crm, "a1", "ada@example.com", at: clock.now())
        try await visit(crm, "b1", "bob@example.com", at: clock.now())
        let first = try await crm.leaseOutbox(consumer: "mailer", limit: 1, requestID: "lease-1")
        #expect(first.map(subject) == ["a1"])
        #expect(try await crm.leaseOutbox(consumer: "mailer", limit: 1, requestID: "lease-1") == first)
        #expect(try await crm.outboxEntries(states: [.leased]).entries.map(subject) == ["a1"])
        // Later, the retry returns only what the lease still holds: nothing once it ran out.
        clock.advance(by: .seconds(61))
        #expect(try await crm.leaseOutbox(consumer: "mailer", limit: 1, requestID: "lease-1").isEmpty)
        await expectError(.failedPrecondition("request_id 'lease-1' was already used for a different leaseOutbox request")) {
            try await crm.leaseOutbox(consumer: "mailer", limit: 2, requestID: "lease-1")
        }
        let failed = try await crm.failOutboxEntry(first[0].id, consumer: "mailer", error: "bounced", requestID: "fail-1")
        #expect(failed.state == .failed)
        #expect(try await crm.failOutboxEntry(first[0].id, consumer: "mailer", error: "bounced", requestID: "fail-1") == failed)
        await expectError(.failedPrecondition("outbox entry \(first[0].id) is failed already")) {
            try await crm.failOutboxEntry(first[0].id, consumer: "mailer", error: "bounced")
        }
    }

    @Test(arguments: Backend.allCases)
    func aConsumerThatStopsEarlyHandsBackWhatItWasNotGiven(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        try await setUp(crm, customers: ["ada@example.com", "bob@example.com", "cy@example.com"])
        for (id, email) in [("a1", "ada@example.com"), ("b1", "bob@example.com"), ("c1", "cy@example.com"), ("a2", "ada@example.com")] {
            try await visit(crm, id, email, at: clock.now())
        }
        var iterator = crm.outboxDeliveries(consumer: "mailer", leaseDuration: .seconds(3600), batchSize: 10).makeAsyncIterator()
        let first = try #require(try await iterator.next())  // a1, b1 and c1 were leased together
        #expect(subject(first) == "a1")
        #expect(try await crm.outboxEntries(states: [.leased]).entries.count == 3)
        // The consumer stops: b1 and c1 go back at once, not counted as tries; a1, handed out, stays leased.
        await iterator.release()
        let pending = try await crm.outboxEntries(states: [.pending]).entries
        #expect(Set(pending.map(subject)) == ["b1", "c1", "a2"])
        #expect(pending.allSatisfy { $0.attempts == 0 && $0.leaseOwner == nil })
        #expect(try await crm.leaseOutbox(consumer: "other").map(subject).sorted() == ["b1", "c1"])
        // Only the consumer's own live leases are handed back, and only the very lease it was given.
        #expect(try await crm.releaseOutboxEntries([first], consumer: "other") == 0)
        clock.advance(by: .seconds(3601))
        #expect(try await crm.releaseOutboxEntries([first], consumer: "mailer") == 0)  // its lease expired
        let again = try #require(try await crm.leaseOutbox(consumer: "mailer").first { $0.id == first.id })  // a second stream, same name
        #expect(try await crm.releaseOutboxEntries([first], consumer: "mailer") == 0)  // the first stream's lease is not this one
        #expect(try await crm.outboxEntry(first.id) == again)
        #expect(again.attempts == 2)
    }

    @Test func finishingTheEnginesWatchersEndsDeliveriesAndHandsBackTheirLeases() async throws {
        let test = TestRapport()
        try await setUp(test.crm, customers: ["ada@example.com", "bob@example.com"])
        try await visit(test.crm, "a1", "ada@example.com", at: test.clock.now())
        try await visit(test.crm, "b1", "bob@example.com", at: test.clock.now())
        var iterator = test.crm.outboxDeliveries(consumer: "mailer", batchSize: 10).makeAsyncIterator()
        #expect(try await iterator.next().map(subject) == "a1")
        test.crm.finishChangeWatchers()  // a server shutting down
        #expect(try await iterator.next() == nil)
        #expect(try await test.crm.outboxEntries(states: [.pending]).entries.map(subject) == ["b1"])
        // A sequence started afterwards ends at once too, leasing nothing.
        var late = test.crm.outboxDeliveries(consumer: "late").makeAsyncIterator()
        #expect(try await late.next() == nil)
        #expect(try await test.crm.outboxEntries(states: [.pending]).entries.map(subject) == ["b1"])
    }

    @Test func failuresRetryLaterOrGiveUpAndLetTheQueueMoveOn() async throws {
        let test = TestRapport()
        try await setUp(test.crm)
        try await visit(test.crm, "a1", "ada@example.com", at: test.clock.now())
        try await visit(test.crm, "a2", "ada@example.com", at: test.clock.now())
        let leased = try #require(try await test.crm.leaseOutbox(consumer: "mailer").first)
        await expectError(.invalid("attempt", "must be the attempt the entry was leased with (1 or more)")) {
            try await test.crm.failOutboxEntry(leased.id, attempt: 0, error: "SMTP 451")
        }
        let retried = try await test.crm.failOutboxEntry(leased.id, error: "SMTP 451", retryAfter: .seconds(600))
        #expect(retried.state == .pending)
        #expect(retried.lastError == "SMTP 451")
        #expect(try await test.crm.leaseOutbox(consumer: "mailer").isEmpty)  // held back, and a2 waits behind it
        test.clock.advance(by: .seconds(600))
        let second = try #require(try await test.crm.leaseOutbox(consumer: "mailer").first)
        #expect(second.id == leased.id)
        let failed = try await test.crm.failOutboxEntry(second.id, error: "mailbox does not exist")
        #expect(failed.state == .failed)
        #expect(try await test.crm.leaseOutbox(consumer: "mailer").map(subject) == ["a2"])
        await expectError(.failedPrecondition("outbox entry \(leased.id) is failed already")) {
            try await test.crm.failOutboxEntry(leased.id, error: "again")
        }
    }

    @Test func consentIsCheckedWhenTheEntryIsCreated() async throws {
        let test = TestRapport()
        let rule = try await test.crm.createRule(
            RuleDefinition(
                name: "Promo", trigger: .event(type: "visit"),
                actions: [.sendMessage(MessageAction(channel: .sms, template: "promo")), .sendMessage(MessageAction(channel: .email, purpose: .transactional, template: "receipt"))]))
        try await visit(test.crm, "v1", "ada@example.com", at: test.clock.now())
        let run = try #require(try await test.crm.runs(rule: rule.id).runs.first)
        #expect(run.actions.map(\.status) == [.skipped, .applied])
        #expect(run.actions[0].detail == "the customer does not consent to sms for marketing")
        #expect(try await test.crm.outboxEntries().entries.count == 1)
        // A refusal after the entry was created withdraws it (no sender has it yet), and the next one is not created.
        let ada = try #require(try await test.crm.findCustomer(.email("ada@example.com")))
        _ = try await test.crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .transactional, status: .denied, source: "settings"))
        try await visit(test.crm, "v2", "ada@example.com", at: test.clock.now())
        let entries = try await test.crm.outboxEntries().entries
        #expect(entries.map(\.state) == [.failed])
        #expect(entries.first?.lastError.hasPrefix("withdrawn: the customer stopped allowing email for transactional") == true)
        #expect(try await test.crm.leaseOutbox(consumer: "mailer").isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func aWithdrawnConsentStopsTheMessagesNoSenderHasYet(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        try await setUp(crm, customers: ["ada@example.com", "bob@example.com"])
        for id in ["a1", "a2", "a3"] { try await visit(crm, id, "ada@example.com", at: clock.now()) }
        try await visit(crm, "b1", "bob@example.com", at: clock.now())
        let leased = try await crm.leaseOutbox(consumer: "mailer")
        #expect(leased.map(subject) == ["a1", "b1"])
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com"))).id
        // An older statement changes nothing that is current: nothing is withdrawn.
        _ = try await crm.recordConsent(
            ConsentInput(customerID: ada, channel: .email, purpose: .marketing, status: .revoked, source: "old form", occurredAt: start - .seconds(60)))
        #expect(try await crm.outboxEntries(customer: ada, states: [.pending]).entries.count == 2)
        // Another channel or purpose changes nothing either.
        _ = try await crm.recordConsent(ConsentInput(customerID: ada, channel: .sms, purpose: .marketing, status: .revoked, source: "settings"))
        _ = try await crm.recordConsent(ConsentInput(customerID: ada, channel: .email, purpose: .transactional, status: .denied, source: "settings"))
        #expect(try await crm.outboxEntries(customer: ada, states: [.pending]).entries.count == 2)

        clock.advance(by: .seconds(1))
        _ = try await crm.recordConsent(ConsentInput(customerID: ada, channel: .email, purpose: .marketing, status: .revoked, source: "unsubscribe link"))
        let entries = try await crm.outboxEntries(customer: ada).entries
        #expect(entries.map(subject) == ["a1", "a2", "a3"])
        // The one a sender holds may be on its way: it is left to the sender.
        #expect(entries.map(\.state) == [.leased, .failed, .failed])
        #expect(try await crm.acknowledgeOutbox([leased[0].id]).map(\.state) == [.delivered])
        #expect(try await crm.leaseOutbox(consumer: "mailer").isEmpty)
        // Bob's are his own.
        #expect(try await crm.outboxEntry(leased[1].id).state == .leased)
        // Granting again sends nothing that was withdrawn.
        _ = try await crm.recordConsent(ConsentInput(customerID: ada, channel: .email, purpose: .marketing, status: .granted, source: "form"))
        #expect(try await crm.leaseOutbox(consumer: "mailer").isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func aMessageThatComesBackAfterTheConsentWasWithdrawnIsNotLeasedAgain(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        try await setUp(crm, customers: ["ada@example.com", "bob@example.com", "cy@example.com"])
        try await visit(crm, "a1", "ada@example.com", at: clock.now())
        try await visit(crm, "a2", "ada@example.com", at: clock.now())
        try await visit(crm, "b1", "bob@example.com", at: clock.now())
        try await visit(crm, "c1", "cy@example.com", at: clock.now())
        let leased = try await crm.leaseOutbox(consumer: "crashed", leaseDuration: .seconds(60))
        #expect(leased.map(subject) == ["a1", "b1", "c1"])
        // Bob's sender reports a failure to retry; Cy's hands his back; Ada's crashes and its lease runs out.
        try await crm.failOutboxEntry(leased[1].id, consumer: "crashed", error: "smtp 451", retryAfter: .seconds(1))
        _ = try await crm.releaseOutboxEntries([leased[2]], consumer: "crashed")
        clock.advance(by: .seconds(120))
        // Meanwhile all three withdraw their consent: no sender held their messages then, but none is pending.
        for email in ["ada@example.com", "bob@example.com", "cy@example.com"] {
            let id = try #require(try await crm.findCustomer(.email(email))).id
            _ = try await crm.recordConsent(ConsentInput(customerID: id, channel: .email, purpose: .marketing, status: .revoked, source: "unsubscribe"))
        }
        // None goes out again; Ada's next message (pending) was failed by the withdrawal itself.
        #expect(try await crm.leaseOutbox(consumer: "mailer").isEmpty)
        let entries = try await crm.outboxEntries().entries
        #expect(entries.map(subject) == ["a1", "a2", "b1", "c1"])
        #expect(entries.map(\.state) == [.failed, .failed, .failed, .failed])
        #expect(entries.allSatisfy { $0.lastError.hasPrefix("withdrawn: the customer") })
    }

    /// A store that cannot tell for a moment does not end the watch of a key: the revocation after it still ends
    /// the wait (a server ends the key's streams with it).
    @Test func aFailedReadDoesNotStopTheWatchForARevocation() async throws {
        let (store, _, crm) = try failingEngine()
        let key = try await crm.createAPIKey(name: "worker", role: .marketing)
        store.failingReads = 1
        let waiter = Task { await crm.waitForRevocation(of: key.key.id) }
        while store.failingReads > 0 { await Task.yield() }  // its first look failed
        _ = try await crm.revokeAPIKey(key.key.id)
        #expect(await waiter.value)
    }

    @Test(arguments: Backend.allCases)
    func messagesTheOtherCustomersRefusalWithdrewWhileMergedComeBackWithAnUnmerge(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        try await setUp(crm, customers: ["bob@example.com", "ada@example.com", "cy@example.com"])  // Bob is older: he survives
        try await visit(crm, "a1", "ada@example.com", at: clock.now())
        try await visit(crm, "c1", "cy@example.com", at: clock.now())
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com"))).id
        let bob = try #require(try await crm.findCustomer(.email("bob@example.com"))).id
        let cy = try #require(try await crm.findCustomer(.email("cy@example.com"))).id
        let merge = try await crm.mergeCustomers(bob, ada)
        let second = try await crm.mergeCustomers(bob, cy)
        // Bob unsubscribes while Ada and Cy are part of him: their queued messages fail as withdrawn. Cy had
        // unsubscribed himself too.
        clock.advance(by: .seconds(60))
        _ = try await crm.recordConsent(ConsentInput(customerID: cy, channel: .email, purpose: .marketing, status: .revoked, source: "unsubscribe"))
        _ = try await crm.recordConsent(ConsentInput(customerID: bob, channel: .email, purpose: .marketing, status: .revoked, source: "unsubscribe"))
        #expect(try await crm.outboxEntries().entries.map(\.state) == [.failed, .failed])
        // Undone: the refusal was Bob's, not Ada's, whose message goes out after all; Cy's own stays.
        clock.advance(by: .seconds(60))
        _ = try await crm.unmerge(merge.merge.id)
        _ = try await crm.unmerge(second.merge.id)
        let entries = try await crm.outboxEntries().entries
        #expect(entries.map(subject) == ["a1", "c1"])
        #expect(entries.map(\.state) == [.pending, .failed])
        #expect(entries.map(\.customerID) == [ada, cy])
        #expect(try await crm.leaseOutbox(consumer: "mailer").map(subject) == ["a1"])
    }

    @Test(arguments: Backend.allCases)
    func eachCustomerKeepsTheirQueueThroughAMergeSoAnUnmergeOrAnErasureTakesItAlong(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        try await setUp(crm, customers: ["bob@example.com", "ada@example.com"])  // Bob is older: he survives
        for id in ["a1", "a2", "a3"] { try await visit(crm, id, "ada@example.com", at: clock.now()) }
        #expect(try await crm.leaseOutbox(consumer: "mailer").map(subject) == ["a1"])
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com"))).id
        let bob = try #require(try await crm.findCustomer(.email("bob@example.com"))).id
        let merge = try await crm.mergeCustomers(bob, ada)
        try await visit(crm, "b1", "bob@example.com", at: clock.now())
        #expect(try await crm.outboxEntries(customer: ada).entries.map(subject) == ["a1", "a2", "a3"])
        #expect(try await crm.outboxEntries(customer: bob).entries.map(subject) == ["b1"])
        #expect(try await crm.leaseOutbox(consumer: "mailer").isEmpty, "one person's queue: nothing goes while a1 is out")
        // While they are one, the survivor's withdrawal stops what the absorbed customer had queued too.
        clock.advance(by: .seconds(1))
        _ = try await crm.recordConsent(ConsentInput(customerID: bob, channel: .email, purpose: .transactional, status: .revoked, source: "settings"))
        _ = try await crm.recordConsent(ConsentInput(customerID: bob, channel: .email, purpose: .marketing, status: .revoked, source: "settings"))
        #expect(try await crm.outboxEntries(customer: ada).entries.map(\.state) == [.leased, .failed, .failed])
        #expect(try await crm.outboxEntries(customer: bob).entries.map(\.state) == [.failed])

        // After the unmerge Ada's queue is hers: erasing her takes it along. (b1, queued while merged, went to the
        // merged customer's first address, Ada's: it is in her queue now, and Bob's is empty.)
        _ = try await crm.unmerge(merge.merge.id)
        try await visit(crm, "a4", "ada@example.com", at: clock.now())
        #expect(try await crm.outboxEntries(customer: ada).entries.map(subject) == ["a1", "a2", "a3", "b1", "a4"])
        #expect(try await crm.outboxEntries(customer: bob).entries.isEmpty)
        try await crm.deleteCustomer(ada)
        #expect(try await crm.outboxEntries().entries.isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func customersMergedTogetherShareOneQueueAndWhatWaitsLeavesRoomForOthers(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        try await setUp(crm, customers: ["bob@example.com", "ada@example.com", "cy@example.com"])  // Bob survives
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com"))).id
        let bob = try #require(try await crm.findCustomer(.email("bob@example.com"))).id
        try await visit(crm, "a1", "ada@example.com", at: clock.now())
        try await visit(crm, "a2", "ada@example.com", at: clock.now())
        let a1 = try #require(try await crm.leaseOutbox(consumer: "mailer", limit: 1).first)
        #expect(subject(a1) == "a1")
        _ = try await crm.mergeCustomers(bob, ada)
        try await visit(crm, "b1", "bob@example.com", at: clock.now())
        try await visit(crm, "c1", "cy@example.com", at: clock.now())
        // b1 (Bob's queue) comes after a1 and a2 (Ada's, the same person now): passed over, it leaves room for Cy's.
        #expect(try await crm.leaseOutbox(consumer: "mailer", limit: 1).map(subject) == ["c1"])
        try await crm.acknowledgeOutbox([a1.id])
        #expect(try await crm.leaseOutbox(consumer: "mailer").map(subject) == ["a2"])
        // Expired leases come again before anything queued after them.
        clock.advance(by: .seconds(61))
        let again = try await crm.leaseOutbox(consumer: "mailer")
        #expect(again.map(subject) == ["a2", "c1"])
        try await crm.acknowledgeOutbox(again.map(\.id))
        #expect(try await crm.leaseOutbox(consumer: "mailer").map(subject) == ["b1"])
    }

    @Test(arguments: Backend.allCases)
    func aMessageQueuedWhileMergedToTheRestoredCustomersAddressGoesBackWithThem(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        // Ada (older, the survivor) is known by her phone only; Bea by her e-mail.
        let ada = try await crm.createCustomer(NewCustomer(identities: [.phone("+14155550100")])).id
        clock.advance(by: .seconds(1))
        try await setUp(crm, customers: ["bea@example.com"])
        let bea = try #require(try await crm.findCustomer(.email("bea@example.com"))).id
        let merge = try await crm.mergeCustomers(ada, bea)
        // While merged, a visit by Ada's phone: the merged customer's only e-mail address is Bea's.
        _ = try await crm.ingest([event("by-phone", "visit", at: clock.now(), .phone("+14155550100"))])
        let queued = try #require(try await crm.outboxEntries(customer: ada).entries.first)
        guard case .message(let message) = queued.payload else { Issue.record("not a message"); return }
        #expect(message.recipient == "bea@example.com")

        _ = try await crm.unmerge(merge.merge.id)
        // It is addressed to Bea: it is in her queue, so her erasure (or her withdrawn consent) reaches it.
        #expect(try await crm.outboxEntry(queued.id).customerID == bea)
        #expect(try await crm.outboxEntries(customer: ada).entries.isEmpty)
        try await crm.deleteCustomer(bea)
        #expect(try await crm.outboxEntries().entries.isEmpty)
    }

    /// A webhook has no address: queued while merged by a rule a restored customer's record started, it goes back
    /// with that customer, so their erasure reaches what was made from their record.
    @Test(arguments: Backend.allCases)
    func aWebhookQueuedWhileMergedFollowsTheRecordThatStartedIt(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.defineEventType(EventTypeDefinition(type: "visit", properties: [EventPropertyDefinition(key: "page", type: .string)]))
        _ = try await crm.createRule(
            RuleDefinition(
                name: "Tell the CRM", trigger: .event(type: "visit"),
                actions: [.callWebhook(WebhookAction(url: "https://hooks.example.com/visit", payload: ["page": "event.properties.page"]))]))
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")])).id
        clock.advance(by: .seconds(1))
        let bea = try await crm.createCustomer(NewCustomer(identities: [.email("bea@example.com")])).id
        let merge = try await crm.mergeCustomers(ada, bea)
        _ = try await crm.ingest([
            event("bea-visit", "visit", at: clock.now(), .email("bea@example.com"), properties: ["page": .string("/bea")]),
            event("ada-visit", "visit", at: clock.now(), .email("ada@example.com"), properties: ["page": .string("/ada")]),
        ])
        #expect(try await crm.outboxEntries(customer: ada).entries.count == 2)
        _ = try await crm.unmerge(merge.merge.id)
        func pages(_ customer: CustomerID) async throws -> [String] {
            try await crm.outboxEntries(customer: customer).entries.map { entry in
                if case .webhook(_, let body) = entry.payload { body } else { "" }
            }
        }
        #expect(try await pages(bea).map { $0.contains("/bea") } == [true])
        #expect(try await pages(ada).map { $0.contains("/ada") } == [true])
        try await crm.deleteCustomer(bea)
        #expect(try await crm.outboxEntries().entries.count == 1)
    }

    /// A push message goes to a customer id: queued while merged, it follows the record that started its run too, and
    /// goes to the restored customer's id.
    @Test(arguments: Backend.allCases)
    func aPushMessageQueuedWhileMergedFollowsTheRecordThatStartedIt(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.defineEventType(EventTypeDefinition(type: "visit", properties: [EventPropertyDefinition(key: "page", type: .string)]))
        _ = try await crm.createRule(
            RuleDefinition(
                name: "Nudge", trigger: .event(type: "visit"), actions: [.sendMessage(MessageAction(channel: .push, template: "nudge", body: "{{ event.properties.page }}"))]))
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")])).id
        clock.advance(by: .seconds(1))
        let bea = try await crm.createCustomer(NewCustomer(identities: [.email("bea@example.com")])).id
        for customer in [ada, bea] {
            _ = try await crm.recordConsent(ConsentInput(customerID: customer, channel: .push, purpose: .marketing, status: .granted, source: "app"))
        }
        let merge = try await crm.mergeCustomers(ada, bea)
        _ = try await crm.ingest([
            event("bea-visit", "visit", at: clock.now(), .email("bea@example.com"), properties: ["page": .string("/bea")]),
            event("ada-visit", "visit", at: clock.now(), .email("ada@example.com"), properties: ["page": .string("/ada")]),
        ])
        _ = try await crm.unmerge(merge.merge.id)
        func pushes(_ customer: CustomerID) async throws -> [String] {
            try await crm.outboxEntries(customer: customer).entries.map { entry in
                if case .message(let message) = entry.payload { "\(message.recipient) \(message.body)" } else { "" }
            }
        }
        #expect(try await pushes(bea) == ["\(bea.rawValue) /bea"])
        #expect(try await pushes(ada) == ["\(ada.rawValue) /ada"])
        try await crm.deleteCustomer(bea)
        #expect(try await crm.outboxEntries().entries.count == 1)
    }

    @Test(arguments: Backend.allCases)
    func anAcknowledgementSkipsEntriesThatNoLongerExist(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        try await setUp(crm, customers: ["ada@example.com", "bob@example.com"])
        try await visit(crm, "a1", "ada@example.com", at: clock.now())
        try await visit(crm, "b1", "bob@example.com", at: clock.now())
        let leased = try await crm.leaseOutbox(consumer: "mailer")
        #expect(leased.map(subject) == ["a1", "b1"])
        // Ada is erased while her message is out; the sender acknowledges both.
        try await crm.deleteCustomer(try #require(try await crm.findCustomer(.email("ada@example.com"))).id)
        let acknowledged = try await crm.acknowledgeOutbox(leased.map(\.id))
        #expect(acknowledged.map(subject) == ["b1"])
        #expect(try await crm.outboxEntry(leased[1].id).state == .delivered)
        clock.advance(by: .seconds(3600))
        #expect(try await crm.leaseOutbox(consumer: "mailer").isEmpty, "Bob's message is not sent again")
    }

    @Test(.timeLimit(.minutes(1))) func theDeliveriesSequenceWaitsForNewEntriesAndExpiredLeases() async throws {
        let test = TestRapport()
        try await setUp(test.crm)
        let deliveries = test.crm.outboxDeliveries(consumer: "worker", leaseDuration: .seconds(60))
        let received = Task {
            var subjects: [String] = []
            for try await entry in deliveries {
                subjects.append(subject(entry))
                if subjects.count == 3 { break }
                if subjects.count == 1 { try await test.crm.acknowledgeOutbox([entry.id]) }
            }
            return subjects
        }
        try await visit(test.crm, "first", "ada@example.com", at: test.clock.now())
        try await visit(test.crm, "second", "ada@example.com", at: test.clock.now())
        // "second" is delivered but not acknowledged: after its lease expires it comes again.
        while try await test.crm.outboxEntries(states: [.leased]).entries.map(subject) != ["second"] { await Task.yield() }
        test.clock.advance(by: .seconds(61))
        #expect(try await received.value == ["first", "second", "second"])
    }

    @Test(.timeLimit(.minutes(1))) func theDeliveriesSequenceWakesWhenTheTestClockReachesARetry() async throws {
        let test = TestRapport()
        try await setUp(test.crm)
        try await visit(test.crm, "first", "ada@example.com", at: test.clock.now())
        var deliveries = test.crm.outboxDeliveries(consumer: "worker").makeAsyncIterator()
        let first = try #require(try await deliveries.next())
        _ = try await test.crm.failOutboxEntry(first.id, consumer: "worker", error: "timeout", retryAfter: .seconds(1))
        let again = Task { [deliveries] in
            var iterator = deliveries
            return try await iterator.next()
        }
        while test.clock.sleeps.waiting == 0 { await Task.yield() }  // the sequence waits
        // A second is less than the sequence's longest wait: advancing the test's time wakes it all the same.
        try await test.advance(by: .seconds(1))
        #expect(try await again.value?.id == first.id)
    }

    @Test(.timeLimit(.minutes(1))) func aCancelledConsumerGetsNothingMoreAndItsLeasesGoBack() async throws {
        let test = TestRapport()
        try await setUp(test.crm, customers: ["ada@example.com", "bob@example.com", "cy@example.com"])
        for email in ["ada@example.com", "bob@example.com", "cy@example.com"] { try await visit(test.crm, email, email, at: test.clock.now()) }
        let deliveries = test.crm.outboxDeliveries(consumer: "worker", leaseDuration: .seconds(3600), batchSize: 50)
        let outcome = await Task { () -> (first: String?, then: String) in
            var iterator = deliveries.makeAsyncIterator()
            let first = try? await iterator.next()  // leases all three, hands out one
            withUnsafeCurrentTask { $0?.cancel() }
            do {
                _ = try await iterator.next()
                return (first.map(subject), "another entry")
            } catch {
                return (first.map(subject), "\(type(of: error))")
            }
        }.value
        #expect(outcome.first == "ada@example.com")
        #expect(outcome.then == "CancellationError")
        // The two it was not handed are free at once (not after the hour's lease); the one it was handed is its.
        #expect(try await test.crm.leaseOutbox(consumer: "other").map(subject) == ["bob@example.com", "cy@example.com"])
    }

    @Test func jobsSurviveARestartAndRunOnceEvenWithTwoSchedulers() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-jobs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("crm.sqlite").path
        let clock = ManualClock(now: start)
        do {
            let store = try SQLiteStore(path: path)
            let crm = RapportEngine(store: store, clock: clock, logger: quietLogger)
            _ = try await crm.createRule(
                RuleDefinition(name: "Later", trigger: .event(type: "signed_up"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("later")]))
            _ = try await crm.ingest([event("s", "signed_up", at: clock.now(), .email("ada@example.com"))])
            try store.close()
        }
        clock.advance(by: .seconds(7200))
        // Two engines on the same file, as two server processes would be, run the due jobs at once.
        let first = RapportEngine(store: try SQLiteStore(path: path), clock: clock, logger: quietLogger)
        let second = RapportEngine(store: try SQLiteStore(path: path), clock: clock, logger: quietLogger)
        async let a = first.runDueJobs()
        async let b = second.runDueJobs()
        let ran = try await a + b
        #expect(ran == 1)
        let ada = try #require(try await first.findCustomer(.email("ada@example.com")))
        #expect(ada.profile.tags == ["later"])
        #expect(try await first.runs(status: .fired).runs.count == 1)
        #expect(try await first.runDueJobs() == 0)
    }

    @Test(.timeLimit(.minutes(1))) func theSchedulerRunsJobsAsTheClockReachesThem() async throws {
        let test = TestRapport()
        _ = try await test.crm.createRule(
            RuleDefinition(name: "Later", trigger: .event(type: "signed_up"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("later")]))
        _ = try await test.crm.ingest([event("s", "signed_up", at: test.clock.now(), .email("ada@example.com"))])
        let scheduler = Task { await test.crm.runScheduler() }
        defer { scheduler.cancel() }
        test.clock.advance(by: .seconds(3600))
        var tags: [String] = []
        for _ in 0..<10_000 {
            tags = try #require(try await test.crm.findCustomer(.email("ada@example.com"))).profile.tags
            if !tags.isEmpty { break }
            await Task.yield()
        }
        #expect(tags == ["later"])
    }

    @Test(.timeLimit(.minutes(1))) func housekeepingForgetsOldRunsAndDeliveredEntries() async throws {
        let test = TestRapport()
        try await setUp(test.crm)
        try await visit(test.crm, "a1", "ada@example.com", at: test.clock.now())
        let entry = try #require(try await test.crm.leaseOutbox(consumer: "m").first)
        try await test.crm.acknowledgeOutbox([entry.id])
        let scheduler = Task { await test.crm.runScheduler() }  // schedules housekeeping
        while try await test.crm.nextJobDue() == nil { await Task.yield() }
        scheduler.cancel()
        _ = await scheduler.value
        try await test.advance(by: .seconds(31 * 86_400))
        #expect(try await test.crm.outboxEntries().entries.isEmpty)
        #expect(try await test.crm.runs().runs.count == 1)  // runs are kept 90 days
        try await test.advance(by: .seconds(60 * 86_400))
        #expect(try await test.crm.runs().runs.isEmpty)
    }

    /// An app that runs due jobs itself starts housekeeping once; retention follows the settings it gave.
    @Test func housekeepingStartedByAnAppThatRunsDueJobsItselfFollowsItsRetention() async throws {
        let test = TestRapport(automation: AutomationSettings(outboxRetention: .seconds(7 * 86_400)))
        try await setUp(test.crm)
        try await visit(test.crm, "a1", "ada@example.com", at: test.clock.now())
        let entry = try #require(try await test.crm.leaseOutbox(consumer: "m").first)
        try await test.crm.acknowledgeOutbox([entry.id])
        try await test.crm.startHousekeeping()
        try await test.crm.startHousekeeping()  // once is enough; again changes nothing
        #expect(try await test.crm.nextJobDue() == test.clock.now())
        try await test.advance(by: .seconds(6 * 86_400))
        #expect(try await test.crm.outboxEntries().entries.count == 1)
        try await test.advance(by: .seconds(2 * 86_400))
        #expect(try await test.crm.outboxEntries().entries.isEmpty)
    }

    @Test func aConsumerWhoseLeaseExpiredCannotUndoAnotherConsumersLease() async throws {
        let test = TestRapport()
        try await setUp(test.crm)
        try await visit(test.crm, "a1", "ada@example.com", at: test.clock.now())
        let stale = try #require(try await test.crm.leaseOutbox(consumer: "a", leaseDuration: .seconds(30)).first)
        test.clock.advance(by: .seconds(31))
        let live = try #require(try await test.crm.leaseOutbox(consumer: "b", leaseDuration: .seconds(30)).first)
        #expect(live.id == stale.id)
        await expectError(.failedPrecondition("outbox entry \(live.id) is leased by 'b' until \(live.leaseExpiresAt!); the lease of 'a' expired")) {
            try await test.crm.failOutboxEntry(stale.id, consumer: "a", error: "timeout", retryAfter: .seconds(60))
        }
        #expect(try await test.crm.outboxEntry(live.id) == live)
        // Workers of one name tell their leases apart by the attempt: a report about the earlier one is refused.
        await expectError(.failedPrecondition("outbox entry \(live.id) was leased again since attempt 1 (it is at attempt 2)")) {
            try await test.crm.failOutboxEntry(stale.id, consumer: "b", attempt: stale.attempts, error: "timeout", retryAfter: .seconds(60))
        }
        #expect(try await test.crm.outboxEntry(live.id) == live)
        let failed = try await test.crm.failOutboxEntry(live.id, consumer: "b", attempt: live.attempts, error: "410 Gone")
        #expect(failed.state == .failed)
        // A message says whether its body is HTML (the rule's is not).
        guard case .message(let message) = failed.payload else { Issue.record("not a message"); return }
        #expect(!message.html)
    }

    @Test func deliveriesDoNotHandOutEntriesWhoseLeaseRanOutWhileBuffered() async throws {
        let test = TestRapport()
        try await setUp(test.crm, customers: ["ada@example.com", "bob@example.com"])
        try await visit(test.crm, "a1", "ada@example.com", at: test.clock.now())
        try await visit(test.crm, "b1", "bob@example.com", at: test.clock.now())
        var deliveries = test.crm.outboxDeliveries(consumer: "worker", leaseDuration: .seconds(60)).makeAsyncIterator()
        let first = try #require(try await deliveries.next())
        #expect(subject(first) == "a1")  // b1 was leased with it and waits in the iterator
        test.clock.advance(by: .seconds(61))
        // b1's lease ran out: it is not handed out stale; both are leased again, in order.
        let next = try #require(try await deliveries.next())
        #expect(subject(next) == "a1")
        #expect(next.attempts == 2)
        #expect(next.leaseExpiresAt == test.clock.now() + .seconds(60))
        let after = try #require(try await deliveries.next())
        #expect(subject(after) == "b1")
        #expect(after.attempts == 2)
    }

    @Test(.timeLimit(.minutes(1))) func deliveriesDoNotHandOutWhatWasErasedOrWithdrawnWhileBuffered() async throws {
        let test = TestRapport()
        try await setUp(test.crm, customers: ["ada@example.com", "bob@example.com", "cy@example.com"])
        for (id, email) in [("a1", "ada@example.com"), ("b1", "bob@example.com"), ("c1", "cy@example.com")] {
            try await visit(test.crm, id, email, at: test.clock.now())
        }
        var deliveries = test.crm.outboxDeliveries(consumer: "worker").makeAsyncIterator()
        let first = try #require(try await deliveries.next())
        #expect(subject(first) == "a1")  // b1 and c1 were leased with it and wait in the iterator
        try await test.crm.deleteCustomer(try #require(try await test.crm.findCustomer(.email("bob@example.com"))).id)
        let cy = try #require(try await test.crm.findCustomer(.email("cy@example.com"))).id
        _ = try await test.crm.recordConsent(ConsentInput(customerID: cy, channel: .email, purpose: .marketing, status: .revoked, source: "unsubscribe"))
        try await test.crm.acknowledgeOutbox([first.id])
        try await visit(test.crm, "a2", "ada@example.com", at: test.clock.now())
        // Bob's is gone with him; Cy's goes back and fails as withdrawn; Ada's next one comes.
        #expect(subject(try #require(try await deliveries.next())) == "a2")
        let cys = try await test.crm.outboxEntries(customer: cy).entries
        #expect(cys.map(\.state) == [.failed])
        #expect(cys.first?.lastError.hasPrefix("withdrawn:") == true)
    }

    @Test func aJobThatFailsOnStorageGoesBackWithoutHoldingUpTheOthers() async throws {
        let (store, clock, crm) = try failingEngine()
        let rule = try await crm.createRule(
            RuleDefinition(name: "Later", trigger: .event(type: "signed_up"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("later")]))
        _ = try await crm.ingest([event("s1", "signed_up", at: clock.now(), .email("ada@example.com"))])
        clock.advance(by: .seconds(60))
        _ = try await crm.ingest([event("s2", "signed_up", at: clock.now(), .email("bob@example.com"))])
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com")))
        let bob = try #require(try await crm.findCustomer(.email("bob@example.com")))
        let adaRun = try #require(try await crm.runs(rule: rule.id).runs.first { $0.customerID == ada.id })
        let key = "wait:\(adaRun.id.rawValue)"
        store.failOnJobKey = key
        clock.advance(by: .seconds(7200))
        try await crm.runDueJobs()
        // Ada's job failed on storage and went back with a delay; Bob's, due after it, ran.
        #expect(try await crm.customer(bob.id).profile.tags == ["later"])
        #expect(try await crm.customer(ada.id).profile.tags == [])
        let job = try #require(try await store.read { try $0.job(key) })
        #expect(job.attempts == 1)
        #expect(job.dueAt == clock.now() + .seconds(2))
        store.failOnJobKey = nil
        clock.advance(by: .seconds(2))
        try await crm.runDueJobs()
        #expect(try await crm.customer(ada.id).profile.tags == ["later"])
    }

    /// A segment's build that keeps failing is tried again (at least hourly), never given up: given up, the segment
    /// stayed building for good, its later customers never evaluated.
    @Test func aSegmentsBuildIsNeverGivenUp() async throws {
        let (store, clock, crm) = try failingEngine()
        _ = try await crm.ingest([event("s1", "signed_up", at: clock.now(), .email("ada@example.com"))])
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com")))
        store.failOnJobKey = "build:*"
        let segment = try await crm.createSegment(.dynamic(key: "signed", name: "Signed up", expression: "stats.event_count > 0"))
        // Past the 100 tries after which other jobs that fail on storage are given up.
        for _ in 0..<105 {
            clock.advance(by: .seconds(3600))
            try await crm.runDueJobs()
        }
        let job = try #require(try await store.read { try $0.job("build:\(segment.id.rawValue)") })
        #expect(job.attempts == 106)
        #expect(try await crm.segment(segment.id).state == .building)
        store.failOnJobKey = nil
        clock.advance(by: .seconds(3600))
        try await crm.runDueJobs()
        #expect(try await crm.segment(segment.id).state == .ready)
        #expect(try await crm.memberships(of: ada.id).map(\.segmentID) == [segment.id])
    }

    @Test func aFailedJobReplacedMeanwhileIsLeftAsItsReplacementIs() async throws {
        let (store, clock, crm) = try failingEngine()
        let (_, run) = try await waitingRun(crm, clock)
        let key = "wait:\(run.id.rawValue)"
        store.failOnCustomerUpdate = true
        // Between the failure and its bookkeeping, another writer puts a job under the same key, due next week.
        let nextWeek = clock.now() + .seconds(7 * 86_400)
        store.afterFailedWrite = { base in
            try await base.write { tx in try tx.putJob(ScheduledJob(key: key, dueAt: nextWeek, kind: .resumeRun(run.id), customerID: run.customerID)) }
        }
        clock.advance(by: .seconds(3600))
        try await crm.runDueJobs()
        let job = try #require(try await store.read { try $0.job(key) })
        #expect(job.dueAt == nextWeek)  // not moved to a retry in seconds
        #expect(job.attempts == 0)
    }

    @Test func aJobThatKeepsFailingOnStorageIsDroppedAfterAHundredTries() async throws {
        let (store, clock, crm) = try failingEngine()
        let (rule, run) = try await waitingRun(crm, clock)
        let key = "wait:\(run.id.rawValue)"
        // The job's own work (tagging Ada) fails on storage every time it runs.
        store.failOnCustomerUpdate = true
        for _ in 0..<99 {
            clock.advance(by: .seconds(3600))
            try await crm.runDueJobs()
        }
        #expect(try await store.read { try $0.job(key) }?.attempts == 99)
        clock.advance(by: .seconds(3600))
        try await crm.runDueJobs()
        #expect(try await store.read { try $0.job(key) } == nil)
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com")))
        #expect(ada.profile.tags == [])
        // The run that waited for the job is cancelled, saying why, and no longer blocks the rule for Ada.
        let ended = try await crm.run(run.id)
        #expect(ended.status == .cancelled)
        #expect(ended.reason.contains("failed 100 times and was given up"))
        store.failOnCustomerUpdate = false
        _ = try await crm.ingest([event("s2", "signed_up", at: clock.now(), .email("ada@example.com"))])
        #expect(try await crm.runs(rule: rule.id, status: .waiting).runs.count == 1)
    }

    @Test func aDateJobRunningLateFiresOnlyIfItsDateStillHolds() async throws {
        let (store, clock, crm) = try failingEngine()
        let rule = try await crm.createRule(
            RuleDefinition(name: "Birthday", trigger: .date(DateTrigger(field: .birthday, at: LocalTime(hour: 9))), actions: [.addTag("greeted")]))
        func born(_ month: Int, _ day: Int, _ email: String) async throws -> CustomerID {
            try await crm.createCustomer(
                NewCustomer(profile: CustomerProfile(birthday: LocalDate(year: 1990, month: month, day: day), timeZone: "UTC"), identities: [.email(email)])
            ).id
        }
        let ada = try await born(1, 10, "ada@example.com")
        let bob = try await born(1, 11, "bob@example.com")
        // Ada's job fails at 09:00 on her birthday and runs a minute late: it still fires.
        store.failOnJobKey = "date:\(rule.id.rawValue):\(ada.rawValue)"
        clock.advance(to: start + day * 9 + .seconds(9 * 3600))
        try await crm.runDueJobs()
        store.failOnJobKey = nil
        clock.advance(by: .seconds(60))
        try await crm.runDueJobs()
        #expect(try await crm.customer(ada).profile.tags == ["greeted"])
        // Bob's fails too, and before its next try his birthday is corrected to 5 March: the late job fires nothing.
        store.failOnJobKey = "date:\(rule.id.rawValue):\(bob.rawValue)"
        clock.advance(to: start + day * 10 + .seconds(9 * 3600))
        try await crm.runDueJobs()
        store.failOnJobKey = nil
        _ = try await crm.updateCustomer(bob) { $0.birthday = LocalDate(year: 1990, month: 3, day: 5) }
        clock.advance(by: .seconds(60))
        try await crm.runDueJobs()
        #expect(try await crm.customer(bob).profile.tags == [])
        let bobsJob = try #require(try await store.read { try $0.job("date:\(rule.id.rawValue):\(bob.rawValue)") })
        #expect(bobsJob.dueAt == start + day * 63 + .seconds(9 * 3600))  // 2026-03-05T09:00Z
        // Cy's fails too, and she moves to New York, where 09:00 is 14:00Z: the same birthday, greeted at her 09:00.
        let cy = try await born(1, 12, "cy@example.com")
        store.failOnJobKey = "date:\(rule.id.rawValue):\(cy.rawValue)"
        clock.advance(to: start + day * 11 + .seconds(9 * 3600))
        try await crm.runDueJobs()
        store.failOnJobKey = nil
        _ = try await crm.updateCustomer(cy) { $0.timeZone = "America/New_York" }
        clock.advance(by: .seconds(60))
        try await crm.runDueJobs()
        #expect(try await crm.customer(cy).profile.tags == [])
        clock.advance(to: start + day * 11 + .seconds(14 * 3600))
        try await crm.runDueJobs()
        #expect(try await crm.customer(cy).profile.tags == ["greeted"])
    }

    @Test func aSegmentRecheckIsNeverGivenUp() async throws {
        let (store, clock, crm) = try failingEngine()
        _ = try await crm.createSegment(.dynamic(key: "lapsed", name: "Lapsed", expression: "stats.order_count > 0 and time_since(stats.last_order_at) > 90d"))
        _ = try await crm.ingest([order("o1", at: start, .email("ada@example.com"))])
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com"))).id
        let key = "recheck:\(ada.rawValue)"
        #expect(try await store.read { try $0.job(key) } != nil)
        store.failOnJobKey = key
        clock.advance(by: .seconds(91 * 86_400))
        for _ in 0..<120 {
            try await crm.runDueJobs()
            clock.advance(by: .seconds(3600))
        }
        #expect(try await store.read { try $0.job(key) }?.attempts == 120)
        store.failOnJobKey = nil
        try await crm.runDueJobs()
        #expect(try await crm.memberships(of: ada).count == 1)
    }

    @Test func aRunWhoseCustomerCannotBeReadWaitsForTheNextTryInsteadOfBeingCancelled() async throws {
        let (store, clock, crm) = try failingEngine()
        let (_, run) = try await waitingRun(crm, clock)
        store.failOnCustomerRead = true
        clock.advance(by: .seconds(3600))
        try await crm.runDueJobs()
        #expect(try await crm.run(run.id).status == .waiting)
        #expect(try await store.read { try $0.job("wait:\(run.id.rawValue)") }?.attempts == 1)
        store.failOnCustomerRead = false
        clock.advance(by: .seconds(3600))
        try await crm.runDueJobs()
        #expect(try await crm.run(run.id).status == .fired)
        #expect(try await crm.findCustomer(.email("ada@example.com"))?.profile.tags == ["later"])
    }

    @Test(.timeLimit(.minutes(1))) func theSchedulerWaitsQuietlyAfterATimeoutAndWakesOnACommit() async throws {
        let (crm, clock) = try makeEngine()
        let scheduler = Task { await crm.runScheduler() }
        defer { scheduler.cancel() }
        /// The sleeps made once the scheduler sleeps and stays asleep while the test reads the store and yields
        /// 200 times; nil when it never settles (a scheduler that spins makes a sleep after another).
        func settled() async throws -> Int? {
            for _ in 0..<500 {
                let before = clock.sleeps
                for _ in 0..<200 {
                    _ = try await crm.nextJobDue()
                    await Task.yield()  // other suites may hold the other threads: let the scheduler run
                }
                let after = clock.sleeps
                if after.made == before.made, after.waiting == 1 { return after.made }
            }
            return nil
        }
        let first = try #require(try await settled())
        // The wait times out (no job is due within 60 s): the scheduler looks once and waits again, quietly.
        clock.advance(by: .seconds(61))
        let afterTimeout = try #require(try await settled())
        #expect(afterTimeout == first + 1)
        // A commit still wakes it.
        _ = try await crm.createRule(
            RuleDefinition(name: "Later", trigger: .event(type: "signed_up"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("later")]))
        _ = try await crm.ingest([event("s", "signed_up", at: clock.now(), .email("ada@example.com"))])
        let afterCommit = try #require(try await settled())
        #expect(afterCommit > afterTimeout)
        #expect(try await crm.nextJobDue() == clock.now() + .seconds(3600))
    }
}
