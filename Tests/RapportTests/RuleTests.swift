import Foundation
import Rapport
import RapportCore
import RapportMemory
import RapportRules
import RapportTesting
import Testing

@Suite("Rules")
struct RuleTests {
    func customer(_ crm: RapportEngine, _ email: String) async throws -> CustomerID {
        try #require(try await crm.findCustomer(.email(email))).id
    }

    func runs(_ crm: RapportEngine, _ rule: RuleID) async throws -> [RuleRun] {
        try await crm.runs(rule: rule, page: PageRequest(size: 1000)).runs
    }

    @Test(arguments: Backend.allCases)
    func eventTriggersRunInTheIngestTransactionAndEveryRunIsRecorded(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.defineEventType(EventTypeDefinition(type: "cart.updated", properties: [EventPropertyDefinition(key: "value_minor", type: .int)]))
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Big carts", trigger: .event(type: "cart.updated", filter: "event.properties.value_minor > 0"),
                condition: "event.properties.value_minor >= 10000", actions: [.addTag("big_cart")]))
        _ = try await crm.ingest([
            event("e1", "cart.updated", at: clock.now(), .email("ada@example.com"), properties: ["value_minor": .int(25_000)]),
            event("e2", "cart.updated", at: clock.now(), .email("bob@example.com"), properties: ["value_minor": .int(500)]),
            event("e3", "cart.updated", at: clock.now(), .email("cy@example.com"), properties: ["value_minor": .int(0)]),  // filtered out: no run
            event("e4", "page.viewed", at: clock.now(), .email("dan@example.com")),
        ])
        let ada = try await customer(crm, "ada@example.com")
        let bob = try await customer(crm, "bob@example.com")
        #expect(try await crm.customer(ada).profile.tags == ["big_cart"])
        #expect(try await crm.customer(bob).profile.tags == [])
        let recorded = try await runs(crm, rule.id).sorted { $0.customerID < $1.customerID }
        #expect(recorded.map(\.customerID) == [ada, bob])
        #expect(recorded.map(\.status) == [.fired, .skipped])
        #expect(recorded[1].reason == "the condition is false")
        #expect(recorded[0].eventID == "e1")
        #expect(recorded[0].event == nil)  // the snapshot is kept only while a run waits
        #expect(recorded[0].actions == [ActionOutcome(action: "add_tag", status: .applied, detail: "tagged 'big_cart'")])
        #expect(try await crm.runs(customer: ada).runs.map(\.id) == [recorded[0].id])
    }

    @Test(arguments: Backend.allCases)
    func aWaitCountsFromWhenTheTriggerHappenedButNeverFromTheFuture(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let rule = try await crm.createRule(
            RuleDefinition(name: "Nudge", trigger: .event(type: "cart.added"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("nudged")]))
        clock.advance(by: .seconds(7200))
        _ = try await crm.ingest([
            // Arrived late: it happened 50 minutes ago, so 10 minutes are left to wait.
            event("late", "cart.added", at: clock.now() - .seconds(3000), .email("ada@example.com")),
            // A sender's clock 30 minutes ahead: the hour counts from now, not from a time still to come.
            event("ahead", "cart.added", at: clock.now() + .seconds(1800), .email("bob@example.com")),
        ])
        let waiting = try await runs(crm, rule.id).sorted { ($0.eventID ?? "") < ($1.eventID ?? "") }
        #expect(waiting.map(\.eventID) == ["ahead", "late"])
        #expect(waiting.map(\.resumeAt) == [clock.now() + .seconds(3600), clock.now() + .seconds(600)])
    }

    @Test(arguments: Backend.allCases)
    func aWaitingRunRechecksAndKeepsTheVersionItStartedWith(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Follow up", trigger: .event(type: "checkout.started"),
                wait: RuleWait(duration: .seconds(3600), recheck: "orders_count(since: event.occurred_at) == 0"), actions: [.addTag("v1")]))
        _ = try await crm.ingest([
            event("a", "checkout.started", at: clock.now(), .email("ada@example.com")),
            event("b", "checkout.started", at: clock.now(), .email("bob@example.com")),
        ])
        let waiting = try await runs(crm, rule.id)
        #expect(waiting.map(\.status) == [.waiting, .waiting])
        #expect(waiting.allSatisfy { $0.resumeAt == start + .seconds(3600) && $0.step == .wait })
        // A second trigger while waiting does not start a second run.
        _ = try await crm.ingest([event("a2", "checkout.started", at: clock.now(), .email("ada@example.com"))])
        #expect(try await runs(crm, rule.id).first?.reason == "a run of this rule is already waiting for the customer")

        // Version 2 tags differently; the waiting runs finish with version 1.
        _ = try await crm.updateRule(rule.id, RuleDefinition(name: "Follow up", trigger: .event(type: "checkout.started"), actions: [.addTag("v2")]))
        clock.advance(by: .seconds(1800))
        _ = try await crm.ingest([order("1", at: clock.now(), .email("bob@example.com"))])  // Bob buys: his re-check fails
        try await crm.advanceManualClock(to: start + .seconds(3600))
        let ada = try await customer(crm, "ada@example.com")
        let bob = try await customer(crm, "bob@example.com")
        #expect(try await crm.customer(ada).profile.tags == ["v1"])
        #expect(try await crm.customer(bob).profile.tags == [])
        let done = try await runs(crm, rule.id).filter { $0.eventID != "a2" }.sorted { $0.customerID < $1.customerID }
        #expect(done.map(\.status) == [.fired, .skipped])
        #expect(done.map(\.ruleVersion) == [1, 1])
        #expect(done[1].reason == "the re-check was false after waiting 1h")
    }

    @Test(arguments: Backend.allCases)
    func aSegmentStaysWhileRunsWaitWithARuleVersionThatReadsIt(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let vip = try await crm.createSegment(.list(key: "vip", name: "VIP"))
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "VIP follow up", trigger: .event(type: "checkout.started"),
                wait: RuleWait(duration: .seconds(3600), recheck: "in_segment(\"vip\")"), actions: [.addTag("followed")]))
        _ = try await crm.ingest([event("a", "checkout.started", at: clock.now(), .email("ada@example.com"))])
        let ada = try await customer(crm, "ada@example.com")
        _ = try await crm.addToList(vip.id, customers: [ada])
        // Version 2 no longer reads the segment, but Ada's run waits with version 1, which does.
        _ = try await crm.updateRule(rule.id, RuleDefinition(name: "VIP follow up", trigger: .event(type: "checkout.started"), actions: [.addTag("v2")]))
        // A rule triggered by entering another segment does not hold this one.
        let buyers = try await crm.createSegment(.dynamic(key: "buyers", name: "Buyers", expression: "stats.order_count > 0"))
        let other = try await crm.createSegment(.list(key: "other", name: "Other"))
        _ = try await crm.createRule(RuleDefinition(name: "Welcome buyers", trigger: .segmentEntered(buyers.id), actions: [.addTag("buyer")]))
        _ = try await crm.createRule(RuleDefinition(name: "Left buyers", trigger: .segmentExited(buyers.id), actions: [.addTag("lapsed")]))
        try await crm.deleteSegment(other.id)
        let refused = await captureError { try await crm.deleteSegment(vip.id) }
        #expect(refused == .failedPrecondition("segment 'vip' is used by runs of rule \(rule.id) (VIP follow up) waiting with its version 1; change or delete them first"))
        #expect(try await crm.segment(vip.id).memberCount == 1)

        try await crm.advanceManualClock(to: start + .seconds(3600))
        #expect(try await crm.customer(ada).profile.tags == ["followed"])
        try await crm.deleteSegment(vip.id)
        #expect(try await crm.segments().map(\.key) == ["buyers"])
    }

    @Test(arguments: Backend.allCases)
    func partialUpdatesChangeOnlyTheirFieldsAndReplayByRequestID(_ backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Follow up", trigger: .event(type: "checkout.started"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("v1")]))
        // Someone changes the actions; a rename made afterwards from the old version keeps them.
        _ = try await crm.updateRule(rule.id, RuleChanges(actions: [.addTag("v2")]))
        let renamed = try await crm.updateRule(rule.id, RuleChanges(name: "Follow up (v3)"), requestID: "rename-1")
        #expect(renamed.version == 3)
        #expect(renamed.definition.name == "Follow up (v3)")
        #expect(renamed.definition.actions == [.addTag("v2")])
        #expect(renamed.definition.wait == RuleWait(duration: .seconds(3600)))

        // A retry of the same request returns the stored answer even though the rule moved on.
        let unwaited = try await crm.updateRule(rule.id, RuleChanges(wait: .some(nil)))
        #expect(unwaited.version == 4 && unwaited.definition.wait == nil && unwaited.definition.name == "Follow up (v3)")
        #expect(try await crm.updateRule(rule.id, RuleChanges(name: "Follow up (v3)"), requestID: "rename-1") == renamed)
        // The same request id with other changes is refused, and removing the wait differs from leaving it.
        let reused = RapportError.failedPrecondition("request_id 'rename-1' was already used for a different updateRule request")
        await #expect(throws: reused) { try await crm.updateRule(rule.id, RuleChanges(name: "Other"), requestID: "rename-1") }
        _ = try await crm.updateRule(rule.id, RuleChanges(wait: .some(nil)), requestID: "unwait")
        await #expect(throws: RapportError.failedPrecondition("request_id 'unwait' was already used for a different updateRule request")) {
            try await crm.updateRule(rule.id, RuleChanges(), requestID: "unwait")
        }

        // Changes are checked like whole definitions, and an etag still guards them.
        await #expect {
            try await crm.updateRule(rule.id, RuleChanges(condition: "stats.order_count >"))
        } throws: { error in
            guard case RapportError.invalidArgument(let violations) = error else { return false }
            return violations.map(\.field) == ["condition"]
        }
        await #expect(throws: RapportError.etagMismatch(entity: "rule", id: rule.id.rawValue, expected: "\"1\"", actual: "\"4\"")) {
            try await crm.updateRule(rule.id, RuleChanges(priority: 2), ifMatch: "\"1\"")
        }
        #expect(try await crm.rule(rule.id).version == 4)
    }

    @Test(arguments: Backend.allCases)
    func disablingCancelsWaitingRuns(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let rule = try await crm.createRule(
            RuleDefinition(name: "Later", trigger: .event(type: "signed_up"), wait: RuleWait(duration: .seconds(86_400)), actions: [.addTag("later")]))
        _ = try await crm.ingest([event("a", "signed_up", at: clock.now(), .email("ada@example.com"))])
        let disabled = try await crm.setRuleEnabled(rule.id, false)
        #expect(!disabled.enabled)
        let run = try #require(try await runs(crm, rule.id).first)
        #expect(run.status == .cancelled)
        #expect(run.reason == "the rule was disabled")
        #expect(try await crm.nextJobDue() == nil)
        try await crm.advanceManualClock(to: start + .seconds(2 * 86_400))
        #expect(try await crm.customer(try await customer(crm, "ada@example.com")).profile.tags == [])
        // Re-enabled, it triggers again.
        _ = try await crm.setRuleEnabled(rule.id, true)
        _ = try await crm.ingest([event("b", "signed_up", at: clock.now(), .email("bob@example.com"))])
        #expect(try await runs(crm, rule.id).first?.status == .waiting)
    }

    @Test func limitsStopRunsAndSayWhy() async throws {
        let test = TestRapport()
        let crm = test.crm
        let once = try await crm.createRule(
            RuleDefinition(name: "Once", trigger: .event(type: "visit"), actions: [.addTag("seen")], limits: RuleLimits(frequency: .oncePerCustomer)))
        let weekly = try await crm.createRule(
            RuleDefinition(
                name: "Weekly", trigger: .event(type: "visit"), actions: [.emitEvent(type: "weekly.nudge")],
                limits: RuleLimits(frequency: .oncePerCustomerPer(milliseconds: 7 * 86_400_000))))
        let capped = try await crm.createRule(
            RuleDefinition(name: "Capped", trigger: .event(type: "visit"), actions: [.emitEvent(type: "capped.nudge")], limits: RuleLimits(dailyCap: 2)))
        let consented = try await crm.createRule(
            RuleDefinition(
                name: "Consented", trigger: .event(type: "visit"), actions: [.emitEvent(type: "consented.nudge")],
                limits: RuleLimits(requiredConsent: RequiredConsent(channel: .sms, purpose: .marketing))))
        for (index, email) in ["a", "b", "c"].enumerated() {
            _ = try await crm.ingest([event("v\(index)", "visit", at: test.clock.now(), .email("\(email)@example.com"))])
        }
        _ = try await crm.ingest([event("v3", "visit", at: test.clock.now(), .email("a@example.com"))])
        func statuses(_ rule: Rule) async throws -> [RunStatus] { try await runs(crm, rule.id).reversed().map(\.status) }
        #expect(try await statuses(once) == [.fired, .fired, .fired, .skipped])
        #expect(try await runs(crm, once.id).first?.reason.hasPrefix("the rule fires once per customer and fired for this customer at") == true)
        #expect(try await statuses(weekly) == [.fired, .fired, .fired, .skipped])
        #expect(try await runs(crm, weekly.id).first?.reason.hasPrefix("the rule fired for this customer within the last 7d") == true)
        #expect(try await statuses(capped) == [.fired, .fired, .skipped, .skipped])
        #expect(try await runs(crm, capped.id).first?.reason == "the rule reached its daily cap of 2 runs")
        // The same skip again for a customer is folded into its latest record: a's second visit adds no run.
        #expect(try await statuses(consented) == [.skipped, .skipped, .skipped])
        let refused = try #require(try await runs(crm, consented.id).last)
        #expect(refused.reason == "the customer does not consent to sms for marketing")
        #expect(refused.customerID == (try await customer(crm, "a@example.com")))
        #expect(refused.repeats == 1)
        #expect(refused.eventID == "v3")
        #expect(try await runs(crm, consented.id).dropLast().map(\.repeats) == [0, 0])

        // A week later the weekly rule fires again; the next day the cap is fresh.
        try await test.advance(by: .seconds(7 * 86_400))
        let a = try await customer(crm, "a@example.com")
        _ = try await crm.recordConsent(ConsentInput(customerID: a, channel: .sms, purpose: .marketing, status: .granted, source: "form"))
        _ = try await crm.ingest([event("v4", "visit", at: test.clock.now(), .email("a@example.com"))])
        #expect(try await runs(crm, weekly.id).first?.status == .fired)
        #expect(try await runs(crm, capped.id).first?.status == .fired)
        #expect(try await runs(crm, consented.id).first?.status == .fired)
    }

    @Test func quietHoursDeferTheRunToTheirEndInTheCustomersZone() async throws {
        // 2026-01-01T22:30 in Berlin is 21:30 UTC.
        let test = TestRapport(now: Timestamp(millisecondsSinceEpoch: 1_767_303_000_000))
        let crm = test.crm
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Polite", trigger: .event(type: "visit"), actions: [.addTag("greeted")],
                limits: RuleLimits(quietHours: QuietHours(start: LocalTime(hour: 21), end: LocalTime(hour: 8)))))
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(timeZone: "Europe/Berlin"), identities: [.email("ada@example.com")]))
        _ = try await crm.ingest([event("v", "visit", at: test.clock.now(), .email("ada@example.com"))])
        let run = try #require(try await runs(crm, rule.id).first)
        #expect(run.status == .waiting)
        #expect(run.step == .quietHours)
        // 08:00 in Berlin the next morning is 07:00 UTC.
        #expect(run.resumeAt == Timestamp(millisecondsSinceEpoch: 1_767_337_200_000))
        try await test.advance(by: .seconds(9 * 3600))
        #expect(try await crm.customer(ada.id).profile.tags == [])  // 06:30 in Berlin: still quiet
        try await test.advance(by: .seconds(3600))
        #expect(try await crm.customer(ada.id).profile.tags == ["greeted"])
        #expect(try await crm.run(run.id).status == .fired)
    }

    /// Runs held by quiet hours fire at their end, a local clock time: a once-a-day rule does not skip the next morning's
    /// run because the scheduler reached yesterday's a few minutes later.
    @Test func quietHoursRunsOfAOnceADayRuleFireEveryMorning() async throws {
        // 2026-01-01T22:30 in Berlin is 21:30 UTC; the quiet hours end at 08:00 Berlin, 07:00 UTC.
        let test = TestRapport(now: Timestamp(millisecondsSinceEpoch: 1_767_303_000_000))
        let crm = test.crm
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Nightly visitor", trigger: .event(type: "visit"), actions: [.addTag("greeted")],
                limits: RuleLimits(frequency: .oncePerCustomerPer(milliseconds: 86_400_000), quietHours: QuietHours(start: LocalTime(hour: 21), end: LocalTime(hour: 8)))))
        _ = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(timeZone: "Europe/Berlin"), identities: [.email("ada@example.com")]))
        _ = try await crm.ingest([event("v1", "visit", at: test.clock.now(), .email("ada@example.com"))])
        test.clock.advance(by: .seconds(9 * 3600 + 30 * 60 + 180))  // 07:03 UTC: the scheduler is three minutes late
        try await crm.runDueJobs()
        test.clock.advance(by: .seconds(14 * 3600 + 27 * 60))  // 21:30 UTC, 22:30 in Berlin
        // Explained now, the run would be held till the morning and fire then, as the run itself does.
        let ada = try #require(try await crm.findCustomer(.email("ada@example.com"))).id
        let why = try await crm.explainRule(rule.id, customer: ada, event: EventInput(id: "x", type: "visit", occurredAt: test.clock.now(), identities: []))
        #expect(why.limit == nil && why.wouldFire)
        _ = try await crm.ingest([event("v2", "visit", at: test.clock.now(), .email("ada@example.com"))])
        test.clock.advance(by: .seconds(9 * 3600 + 30 * 60 + 60))  // 07:01 UTC: 23h58m after the first
        try await crm.runDueJobs()
        let statuses = try await runs(crm, rule.id).map(\.status)
        #expect(statuses == [.fired, .fired])
        // A run quiet hours do not hold gets no slack: fired at noon, the same rule 22.5 hours later is skipped.
        test.clock.advance(by: .seconds(4 * 3600))  // 11:01 UTC, 12:01 in Berlin
        _ = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(timeZone: "Europe/Berlin"), identities: [.email("bob@example.com")]))
        _ = try await crm.ingest([event("b1", "visit", at: test.clock.now(), .email("bob@example.com"))])
        test.clock.advance(by: .seconds(22 * 3600 + 1800))  // 10:31 in Berlin the next day
        _ = try await crm.ingest([event("b2", "visit", at: test.clock.now(), .email("bob@example.com"))])
        let bob = try #require(try await crm.findCustomer(.email("bob@example.com"))).id
        let bobs = try await crm.runs(rule: rule.id, customer: bob).runs
        #expect(bobs.map(\.status) == [.skipped, .fired])
    }

    @Test func quietHoursEndingAtATimeTheClocksSkipEndWhenTheyJump() async throws {
        // 2026-03-08T06:30Z is 01:30 EST in New York; at 07:00Z (02:00 EST) clocks jump to 03:00 EDT, skipping 02:30.
        let test = TestRapport(now: Timestamp(millisecondsSinceEpoch: 1_772_951_400_000))
        let crm = test.crm
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Polite", trigger: .event(type: "visit"), actions: [.addTag("greeted")],
                limits: RuleLimits(quietHours: QuietHours(start: LocalTime(hour: 22), end: LocalTime(hour: 2, minute: 30)))))
        _ = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(timeZone: "America/New_York"), identities: [.email("ada@example.com")]))
        _ = try await crm.ingest([event("v", "visit", at: test.clock.now(), .email("ada@example.com"))])
        let run = try #require(try await runs(crm, rule.id).first)
        #expect(run.step == .quietHours)
        #expect(run.resumeAt == Timestamp(millisecondsSinceEpoch: 1_772_953_200_000))  // 07:00Z, 03:00 EDT, not 03:30
    }

    @Test func quietHoursEndingInAnHourShownTwiceEndAtItsSecondPass() async throws {
        // 2026-11-01T06:10Z is 01:10 EST in New York, the second pass of 01:xx after clocks went back at 02:00 EDT.
        let test = TestRapport(now: Timestamp(millisecondsSinceEpoch: 1_793_513_400_000))
        let crm = test.crm
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Polite", trigger: .event(type: "visit"), actions: [.addTag("greeted")],
                limits: RuleLimits(quietHours: QuietHours(start: LocalTime(hour: 21), end: LocalTime(hour: 1, minute: 30)))))
        _ = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(timeZone: "America/New_York"), identities: [.email("ada@example.com")]))
        _ = try await crm.ingest([event("v", "visit", at: test.clock.now(), .email("ada@example.com"))])
        let run = try #require(try await runs(crm, rule.id).first)
        #expect(run.step == .quietHours)
        // 01:30 EST, twenty minutes later (not 01:30 on the next night).
        #expect(run.resumeAt == Timestamp(millisecondsSinceEpoch: 1_793_514_600_000))
    }

    @Test func aNewTimeZoneNeitherRepeatsNorSkipsTheDaysOccurrence() async throws {
        let birthday = LocalDate(year: 1990, month: 6, day: 15)
        let tokyoNine = Timestamp(millisecondsSinceEpoch: 1_781_481_600_000)  // 2026-06-15T00:00Z, 09:00 in Tokyo
        let fiveZ = Timestamp(millisecondsSinceEpoch: 1_781_499_600_000)  // 05:00Z: past 09:00 in Tokyo, before 09:00 in New York
        let test = TestRapport()
        let crm = test.crm
        let rule = try await crm.createRule(RuleDefinition(name: "Birthday", trigger: .date(DateTrigger(field: .birthday)), actions: [.addTag("greeted")]))
        let ada = try await crm.createCustomer(
            NewCustomer(profile: CustomerProfile(birthday: birthday, timeZone: "Asia/Tokyo"), identities: [.email("ada@example.com")]))
        let bob = try await crm.createCustomer(
            NewCustomer(profile: CustomerProfile(birthday: birthday, timeZone: "America/New_York"), identities: [.email("bob@example.com")]))
        try await crm.advanceManualClock(to: tokyoNine)
        #expect(try await crm.runs(rule: rule.id).runs.map(\.customerID) == [ada.id])

        // At 05:00Z Ada moves to New York, where her birthday's 09:00 is still ahead: she was greeted today already.
        // Bob moves to Tokyo, where 09:00 has passed: his greeting, due at 09:00 in New York, comes now, not next year.
        try await crm.advanceManualClock(to: fiveZ)
        _ = try await crm.updateCustomer(ada.id) { $0.timeZone = "America/New_York" }
        _ = try await crm.updateCustomer(bob.id) { $0.timeZone = "Asia/Tokyo" }
        try await crm.advanceManualClock(to: fiveZ + .seconds(1))
        #expect(try await crm.runs(rule: rule.id).runs.map(\.customerID).sorted() == [ada.id, bob.id].sorted())
        try await crm.advanceManualClock(to: fiveZ + .seconds(86_400))
        #expect(try await crm.runs(rule: rule.id).runs.count == 2)
        // Next year's come as planned, once each.
        try await crm.advanceManualClock(to: fiveZ + .seconds(366 * 86_400))
        #expect(try await crm.runs(rule: rule.id).runs.count == 4)
    }

    @Test(arguments: Backend.allCases)
    func editingARulesTextKeepsTheOccurrencesDueAndAnotherTriggerReplans(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let rule = try await crm.createRule(RuleDefinition(name: "Birthday", trigger: .date(DateTrigger(field: .birthday)), actions: [.addTag("greeted")]))
        for email in ["ada@example.com", "bob@example.com"] {
            _ = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(birthday: LocalDate(month: 1, day: 10)), identities: [.email(email)]))
        }
        clock.advance(to: start + .seconds(9 * 86_400 + 9 * 3600))  // 2026-01-10T09:00Z
        #expect(try await crm.runDueJobs(limit: 1) == 1)
        // Edited while the 09:00 jobs run: the second one still fires today, with the new version.
        _ = try await crm.updateRule(rule.id, RuleChanges(name: "Happy birthday"))
        try await crm.runDueJobs()
        let runs = try await crm.runs(rule: rule.id).runs
        #expect(runs.count == 2)
        #expect(Set(runs.map(\.ruleVersion)) == [1, 2])
        // A new trigger plans anew: next year's birthday at 10:00 instead of 09:00.
        _ = try await crm.updateRule(rule.id, RuleChanges(trigger: .date(DateTrigger(field: .birthday, at: LocalTime(hour: 10)))))
        #expect(try await crm.nextJobDue() == Timestamp(millisecondsSinceEpoch: 1_799_575_200_000))  // 2027-01-10T10:00Z
    }

    @Test func aDateAttributeMovedToTheDayAfterItFiredFiresAgain() async throws {
        let test = TestRapport()  // 2026-01-01T00:00Z, UTC
        let crm = test.crm
        _ = try await crm.defineAttribute(AttributeDefinition(key: "appointment_at", type: .timestamp))
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Reminder", trigger: .date(DateTrigger(field: .attribute("appointment_at"), offsetDays: -1)), actions: [.addTag("reminded")]))
        let day: Int64 = 86_400_000
        let ada = try await crm.createCustomer(
            NewCustomer(
                profile: CustomerProfile(attributes: ["appointment_at": .timestamp(Timestamp(millisecondsSinceEpoch: start.millisecondsSinceEpoch + 9 * day + 12 * 3_600_000))]),
                identities: [.email("ada@example.com")]))
        try await crm.advanceManualClock(to: start + .seconds(8 * 86_400 + 10 * 3600))  // Jan 9, 10:00: the reminder went out at 09:00
        #expect(try await crm.runs(rule: rule.id).runs.count == 1)
        // The appointment moves to Jan 11: a reminder on Jan 10 at 09:00.
        _ = try await crm.updateCustomer(ada.id) {
            $0.attributes["appointment_at"] = .timestamp(Timestamp(millisecondsSinceEpoch: start.millisecondsSinceEpoch + 10 * day + 12 * 3_600_000))
        }
        try await crm.advanceManualClock(to: start + .seconds(9 * 86_400 + 9 * 3600))
        #expect(try await crm.runs(rule: rule.id).runs.count == 2)
    }

    @Test func signupDatesCountFromTheDayAfterWhateverTheTimeOfSignup() async throws {
        let test = TestRapport()  // 2026-01-01T00:00Z, UTC
        let crm = test.crm
        let nextDay = try await crm.createRule(
            RuleDefinition(name: "Day after signup", trigger: .date(DateTrigger(field: .createdAt, offsetDays: 1)), actions: [.addTag("day_two")]))
        let anniversary = try await crm.createRule(
            RuleDefinition(name: "Anniversary", trigger: .date(DateTrigger(field: .createdAt)), actions: [.addTag("anniversary")]))
        let early = try await crm.createCustomer(NewCustomer(identities: [.email("early@example.com")]))
        try await test.advance(by: .seconds(10 * 3600))  // 10:00, after the day's 09:00
        let late = try await crm.createCustomer(NewCustomer(identities: [.email("late@example.com")]))
        try await crm.advanceManualClock(to: start + .seconds(86_400 + 9 * 3600))  // 2026-01-02T09:00Z
        #expect(Set(try await crm.runs(rule: nextDay.id).runs.map(\.customerID)) == [early.id, late.id])
        #expect(try await crm.runs(rule: anniversary.id).runs.isEmpty, "not on the day of signup")
        try await crm.advanceManualClock(to: start + .seconds(365 * 86_400 + 9 * 3600))  // 2027-01-01T09:00Z
        #expect(try await crm.runs(rule: anniversary.id).runs.count == 2)
    }

    @Test func aDailyScheduleLimitedToOnceADayFiresOnTheDayClocksGoForward() async throws {
        let test = TestRapport(now: Timestamp(millisecondsSinceEpoch: 1_774_656_000_000))  // 2026-03-28T00:00Z
        let crm = test.crm
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Daily digest", trigger: .schedule(RuleSchedule(frequency: .daily, at: LocalTime(hour: 9), timeZone: "Europe/Berlin")),
                actions: [.addTag("digest")], limits: RuleLimits(frequency: .oncePerCustomerPer(milliseconds: 86_400_000))))
        _ = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        // 09:00 in Berlin is 08:00Z on the 28th and 07:00Z on the 29th, 23 hours later.
        try await crm.advanceManualClock(to: Timestamp(millisecondsSinceEpoch: 1_774_771_200_000))  // 2026-03-29T08:00Z
        #expect(try await crm.runs(rule: rule.id).runs.map(\.status) == [.fired, .fired])
        try await crm.advanceManualClock(to: Timestamp(millisecondsSinceEpoch: 1_774_857_600_000))  // 2026-03-30T08:00Z
        #expect(try await crm.runs(rule: rule.id).runs.map(\.status) == [.fired, .fired, .fired])
    }

    @Test(arguments: Backend.allCases)
    func dateRulesDueTogetherRunByPriority(_ backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        // The greeting is older (its jobs come first in the queue) but ranks lower than the coupon.
        let greeting = try await crm.createRule(
            RuleDefinition(
                name: "Greeting", trigger: .date(DateTrigger(field: .birthday)), condition: "not has_tag(\"coupon\")", actions: [.addTag("greeted")]))
        let coupon = try await crm.createRule(
            RuleDefinition(name: "Coupon", trigger: .date(DateTrigger(field: .birthday)), actions: [.addTag("coupon")], priority: 10))
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(birthday: LocalDate(month: 1, day: 10)), identities: [.email("ada@example.com")]))
        try await crm.advanceManualClock(to: start + .seconds(9 * 86_400 + 9 * 3600))  // 2026-01-10T09:00Z
        #expect(try await crm.customer(ada.id).profile.tags == ["coupon"])
        #expect(try await crm.runs(rule: coupon.id).runs.map(\.status) == [.fired])
        #expect(try await crm.runs(rule: greeting.id).runs.map(\.status) == [.skipped])
        // Both are planned for next year again, once each.
        try await crm.advanceManualClock(to: start + .seconds(374 * 86_400 + 9 * 3600))  // 2027-01-10T09:00Z
        #expect(try await crm.runs(rule: coupon.id).runs.count == 2)
        // The same skip again adds to the repeats of the greeting's record.
        #expect(try await crm.runs(rule: greeting.id).runs.map(\.repeats) == [1])
    }

    @Test func dateTriggersAYearBeforeTheDateKeepFiringEveryYear() async throws {
        let test = TestRapport()  // 2026-01-01T00:00Z
        let rule = try await test.crm.createRule(
            RuleDefinition(
                name: "A year ahead", trigger: .date(DateTrigger(field: .birthday, offsetDays: -366, at: LocalTime(hour: 9))), actions: [.addTag("early")]))
        _ = try await test.crm.createCustomer(
            NewCustomer(profile: CustomerProfile(birthday: LocalDate(year: 1990, month: 1, day: 1), timeZone: "UTC"), identities: [.email("ada@example.com")]))
        // 366 days before 2028-01-01 is 2026-12-31; the one after is 366 days before 2029-01-01: 2028-01-01.
        let first = Timestamp(millisecondsSinceEpoch: 1_798_707_600_000)
        #expect(try await test.crm.nextJobDue() == first)
        try await test.advance(to: first)
        #expect(try await runs(test.crm, rule.id).map(\.status) == [.fired])
        #expect(try await test.crm.nextJobDue() == Timestamp(millisecondsSinceEpoch: 1_830_330_000_000))
    }

    @Test(arguments: Backend.allCases)
    func dateRulesDueAtTheSameTimeAllFireWhenTheFirstChangesTheProfile(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)  // 2026-01-01T00:00Z
        let nine = DateTrigger(field: .birthday, at: LocalTime(hour: 9))
        let tagger = try await crm.createRule(RuleDefinition(name: "Tag", trigger: .date(nine), actions: [.addTag("birthday")]))
        let greeter = try await crm.createRule(RuleDefinition(name: "Greet", trigger: .date(nine), actions: [.addTag("greeted")]))
        _ = try await crm.createCustomer(
            NewCustomer(profile: CustomerProfile(birthday: LocalDate(year: 1990, month: 1, day: 10), timeZone: "UTC"), identities: [.email("ada@example.com")]))
        let nineOnTheTenth = start + day * 9 + .seconds(9 * 3600)
        #expect(try await crm.nextJobDue() == nineOnTheTenth)
        // Both jobs are due; the first one's tag changes the profile, which re-plans date triggers: the second,
        // due and not yet run, keeps this year's occurrence.
        clock.advance(to: nineOnTheTenth)
        #expect(try await crm.runDueJobs() == 2)
        #expect(try await runs(crm, tagger.id).map(\.status) == [.fired])
        #expect(try await runs(crm, greeter.id).map(\.status) == [.fired])
        #expect(try await crm.findCustomer(.email("ada@example.com"))?.profile.tags == ["birthday", "greeted"])
        #expect(try await crm.nextJobDue() == nineOnTheTenth + day * 365)
    }

    @Test func actionsChangeTheProfileAndEmittedEventsTriggerRules() async throws {
        let test = TestRapport()
        let crm = test.crm
        _ = try await crm.defineAttribute(AttributeDefinition(key: "points", type: .int))
        let first = try await crm.createRule(
            RuleDefinition(
                name: "Points", trigger: .event(type: "order.placed"),
                actions: [
                    .setAttribute(key: "points", value: "(customer.attributes.points ?? 0) + 10"),
                    .setLifecycleStage(.active), .emitEvent(type: "points.earned", properties: ["points": "10", "order": "order.id"]),
                ]))
        let second = try await crm.createRule(
            RuleDefinition(name: "Tag earners", trigger: .event(type: "points.earned"), condition: "customer.attributes.points >= 10", actions: [.addTag("earner")]))
        _ = try await crm.ingest([order("1", at: test.clock.now(), .email("ada@example.com"))])
        let ada = try await customer(crm, "ada@example.com")
        let profile = try await crm.customer(ada).profile
        #expect(profile.attributes["points"] == .int(10))
        #expect(profile.lifecycleStage == .active)
        #expect(profile.tags == ["earner"])
        #expect(try await runs(crm, first.id).first?.actions.map(\.status) == [.applied, .applied, .applied])
        #expect(try await runs(crm, second.id).first?.status == .fired)
        let view = try await crm.customer360(ada)
        let emitted = view.timeline.entries.compactMap { entry -> Event? in if case .event(let event) = entry { event } else { nil } }
        #expect(emitted.first?.type == "points.earned")
        #expect(emitted.first?.properties["order"] == .string(try #require(view.recentOrders.first).id.rawValue))
    }

    /// An instant beyond the years Rapport keeps is missing: a rule does not store one (a date rule on it trapped
    /// on overflow when it was planned, in the ingest and at every restart).
    @Test func aRuleDoesNotStoreAnInstantBeyondTheYearsKept() async throws {
        let test = TestRapport()
        let crm = test.crm
        _ = try await crm.defineAttribute(AttributeDefinition(key: "renews_at", type: .timestamp))
        _ = try await crm.createRule(
            RuleDefinition(name: "Renewal", trigger: .date(DateTrigger(field: .attribute("renews_at"), offsetDays: 366)), actions: [.addTag("renewing")]))
        let bump = try await crm.createRule(
            RuleDefinition(
                name: "Bump", trigger: .event(type: "bump"),
                actions: [.setAttribute(key: "renews_at", value: "now + 1ms * 9223354000000000000"), .setAttribute(key: "renews_at", value: "now + 1000d")]))
        _ = try await crm.ingest([event("b1", "bump", at: test.clock.now(), .email("ada@example.com"))])
        let run = try #require(try await runs(crm, bump.id).first)
        #expect(run.actions.map(\.status) == [.skipped, .applied])
        let ada = try await customer(crm, "ada@example.com")
        #expect(try await crm.customer(ada).profile.attributes["renews_at"] == .timestamp(test.clock.now() + .seconds(1000 * 86_400)))
    }

    /// A value a rule sets is held to what an update may store: no NUL, lists of at most 1,000 items.
    @Test func aSetAttributeKeepsTheLimitsOfAnUpdate() async throws {
        let test = TestRapport()
        let crm = test.crm
        _ = try await crm.defineAttribute(AttributeDefinition(key: "note", type: .string))
        _ = try await crm.defineAttribute(AttributeDefinition(key: "seen", type: .stringList))
        _ = try await crm.defineEventType(EventTypeDefinition(type: "noted", properties: [EventPropertyDefinition(key: "text", type: .string)]))
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Note", trigger: .event(type: "noted"),
                actions: [.setAttribute(key: "note", value: "event.properties.text"), .setAttribute(key: "seen", value: "[event.properties.text]")]))
        _ = try await crm.ingest([
            .event(EventInput(id: "n1", type: "noted", occurredAt: test.clock.now(), identities: [.email("ada@example.com")], properties: ["text": .string("a\u{0}b")]))
        ])
        let run = try #require(try await runs(crm, rule.id).first)
        #expect(run.actions.map(\.status) == [.failed, .failed])
        let ada = try await customer(crm, "ada@example.com")
        #expect(try await crm.customer(ada).profile.attributes.isEmpty)
    }

    /// An event a rule emits is the rule's doing, not the customer's: their event count and last seen time stay
    /// (a win-back message on entering "not seen in 90 days" must not make the customer seen), computed again too.
    @Test(arguments: Backend.allCases)
    func anEmittedEventIsNotTheCustomersActivity(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.createRule(
            RuleDefinition(name: "Follow up", trigger: .event(type: "visit"), wait: RuleWait(duration: .seconds(3600)), actions: [.emitEvent(type: "visit.followed_up")]))
        let visited = clock.now()
        _ = try await crm.ingest([event("v1", "visit", at: visited, .email("ada@example.com"))])
        clock.advance(by: .seconds(3600))
        try await crm.runDueJobs()
        let ada = try await customer(crm, "ada@example.com")
        #expect(try await crm.timeline(ada).entries.count == 2)
        let stats = try await crm.stats(of: ada)
        #expect(stats.eventCount == 1)
        #expect(stats.lastSeenAt == visited)
        // The same when computed from what the customer owns (a merge and its undoing).
        let bob = try await crm.createCustomer(NewCustomer(identities: [.email("bob@example.com")]))
        let merge = try await crm.mergeCustomers(ada, bob.id)
        _ = try await crm.unmerge(merge.merge.id)
        #expect(try await crm.stats(of: ada) == stats)
    }

    /// An emitted event keeps the limits ingest keeps: a value ingest would refuse fails the action, not stored.
    @Test func anEmittedEventKeepsTheLimitsOfIngest() async throws {
        let test = TestRapport()
        let crm = test.crm
        _ = try await crm.defineEventType(EventTypeDefinition(type: "note.added", properties: [EventPropertyDefinition(key: "text", type: .string)]))
        let rule = try await crm.createRule(
            RuleDefinition(name: "Echo", trigger: .event(type: "note.added"), actions: [.emitEvent(type: "note.echoed", properties: ["twice": "event.properties.text + event.properties.text"])]))
        let text = String(repeating: "n", count: 6_000)
        let result = try await crm.ingest([
            .event(EventInput(id: "n1", type: "note.added", occurredAt: test.clock.now(), identities: [.email("ada@example.com")], properties: ["text": .string(text)]))
        ])
        #expect(result.acceptedCount == 1)
        let run = try #require(try await runs(crm, rule.id).first)
        #expect(run.actions.map(\.status) == [.failed])
        #expect(run.actions.first?.detail.contains("properties.twice") == true)
        let ada = try await customer(crm, "ada@example.com")
        #expect(try await crm.stats(of: ada).eventCount == 1)
    }

    @Test func rulesThatTriggerEachOtherStopAtTheDepthLimit() async throws {
        let test = TestRapport()
        _ = try await test.crm.createRule(RuleDefinition(name: "Ping", trigger: .event(type: "ping"), actions: [.emitEvent(type: "pong")]))
        _ = try await test.crm.createRule(RuleDefinition(name: "Pong", trigger: .event(type: "pong"), actions: [.emitEvent(type: "ping")]))
        _ = try await test.crm.ingest([event("p", "ping", at: test.clock.now(), .email("ada@example.com"))])
        let all = try await test.crm.runs(page: PageRequest(size: 100)).runs
        // Depths 0 to 8 fire (ping, pong, ping...); the tenth link is stopped and says why.
        #expect(all.count == 10)
        #expect(all.filter { $0.status == .fired }.count == 9)
        let stopped = try #require(all.first)
        #expect(stopped.status == .skipped)
        #expect(stopped.reason.contains("deeper than 8") == true)
    }

    /// Rules that each emit the event they trigger on would double their runs at every level of the chain (2⁸
    /// runs and events for one ingested event): the runs one started run may trigger are capped, and the first
    /// refused run of each rule says why.
    @Test(arguments: Backend.allCases)
    func rulesThatMultiplyTheirRunsStopAtTheChainBudget(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let one = try await crm.createRule(RuleDefinition(name: "Echo one", trigger: .event(type: "ping"), actions: [.emitEvent(type: "ping")]))
        let two = try await crm.createRule(RuleDefinition(name: "Echo two", trigger: .event(type: "ping"), actions: [.emitEvent(type: "ping")]))
        _ = try await crm.ingest([event("p", "ping", at: clock.now(), .email("ada@example.com"))])
        let all = try await crm.runs(page: PageRequest(size: 1000)).runs
        // The ingested ping starts two runs, which may trigger 2 × 100 more between them.
        #expect(all.filter { $0.status == .fired }.count == 2 + 2 * maxChainedRunsPerStartForTests)
        let refused = all.filter { $0.reason.contains("more than 100 times") }
        #expect(Set(refused.map(\.ruleID)) == [one.id, two.id])
        #expect(refused.allSatisfy { $0.status == .skipped })
        let ada = try await customer(crm, "ada@example.com")
        // The ingested ping, and what the fired runs emitted: the rules', not counted as the customer's activity.
        #expect(try await crm.stats(of: ada).eventCount == 1)
        var events = 0
        var page = PageRequest(size: 100)
        repeat {
            let timeline = try await crm.timeline(ada, page: page)
            events += timeline.entries.count
            page.token = timeline.nextPageToken
        } while page.token != nil
        #expect(events == 1 + 2 + 2 * maxChainedRunsPerStartForTests)
        // A second write starts with a budget of its own.
        _ = try await crm.ingest([event("q", "ping", at: clock.now(), .email("ada@example.com"))])
        #expect(try await crm.runs(page: PageRequest(size: 2000)).runs.filter { $0.status == .fired }.count == 2 * (2 + 2 * maxChainedRunsPerStartForTests))
    }

    /// A once-a-day rule that waits an hour and keeps quiet 21:00–08:00 (customers in UTC): it fired at 08:30 on
    /// 2026-01-01 and is triggered again at 20:30, its wait ending in quiet hours.
    func nudgedAt0830AndTriggeredAt2030(_ backend: Backend) async throws -> (RapportEngine, ManualClock, Rule) {
        let (crm, clock) = try makeEngine(backend)  // 2026-01-01T00:00Z
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Nudge", trigger: .event(type: "cart.added"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("nudged")],
                limits: RuleLimits(frequency: .oncePerCustomerPer(milliseconds: 86_400_000), quietHours: QuietHours(start: LocalTime(hour: 21), end: LocalTime(hour: 8)))))
        clock.advance(by: .seconds(7 * 3600 + 1800))  // 07:30
        _ = try await crm.ingest([event("c1", "cart.added", at: clock.now(), .email("ada@example.com"))])
        clock.advance(by: .seconds(3600))  // 08:30: fires
        try await crm.runDueJobs()
        clock.advance(by: .seconds(12 * 3600))  // 20:30
        _ = try await crm.ingest([event("c2", "cart.added", at: clock.now(), .email("ada@example.com"))])
        return (crm, clock, rule)
    }

    /// A rule that waits into quiet hours is judged as of their end, with the slack of a run they hold: triggered
    /// at 20:30 with an hour's wait, it fires at 08:00, 23½ hours after the last, within a day less two hours' slack.
    @Test(arguments: Backend.allCases)
    func aWaitEndingInQuietHoursIsJudgedAtTheirEnd(_ backend: Backend) async throws {
        let (crm, clock, rule) = try await nudgedAt0830AndTriggeredAt2030(backend)
        #expect(try await runs(crm, rule.id).first?.status == .waiting)
        clock.advance(by: .seconds(3600))  // 21:30: the wait ends in quiet hours
        try await crm.runDueJobs()
        clock.advance(by: .seconds(10 * 3600 + 1800))  // 08:00 the next day
        try await crm.runDueJobs()
        #expect(try await runs(crm, rule.id).map(\.status) == [.fired, .fired])
        // A wait that ended in quiet hours is one wait of the chain, not two.
        #expect(try await runs(crm, rule.id).map(\.waits) == [1, 1])
        // What a customer's export says of a message whose lease ran out is what the outbox says: pending.
        _ = try await crm.createRule(
            RuleDefinition(name: "Mail", trigger: .event(type: "mail.me"), actions: [.sendMessage(MessageAction(channel: .email, purpose: .transactional, template: "t"))]))
        _ = try await crm.ingest([event("m1", "mail.me", at: clock.now(), .email("ada@example.com"))])
        #expect(try await crm.leaseOutbox(consumer: "mailer", leaseDuration: .seconds(60)).count == 1)
        clock.advance(by: .seconds(61))
        let ada = try await customer(crm, "ada@example.com")
        #expect(try await crm.exportCustomer(ada).messages.map(\.state) == [.pending])
    }

    /// The same when the scheduler comes late, after the quiet hours the wait ended in: the run is held by them all
    /// the same, and fires with their slack.
    @Test(arguments: Backend.allCases)
    func aWaitEndingInQuietHoursResumedLateIsStillHeldByThem(_ backend: Backend) async throws {
        let (crm, clock, rule) = try await nudgedAt0830AndTriggeredAt2030(backend)
        clock.advance(by: .seconds(11 * 3600 + 40 * 60))  // 08:10 the next day, 23h40 after the last: the scheduler was down
        try await crm.runDueJobs()
        #expect(try await runs(crm, rule.id).map(\.status) == [.fired, .fired])
    }

    /// A rule that re-triggers itself through a wait counts the waits of its chain: it stops after 100 instead of
    /// running (and emitting) forever. A drip of ten waiting steps, each its own rule, runs to its end.
    @Test(arguments: Backend.allCases)
    func aChainThroughWaitsStopsAfterAHundredWaits(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let rule = try await crm.createRule(
            RuleDefinition(name: "Again", trigger: .event(type: "tick"), wait: RuleWait(duration: .seconds(60)), actions: [.emitEvent(type: "tick")]))
        var drip: [Rule] = []
        for step in 1...10 {
            drip.append(
                try await crm.createRule(
                    RuleDefinition(
                        name: "Drip \(step)", trigger: .event(type: "drip.step\(step)"), wait: RuleWait(duration: .seconds(60)),
                        actions: [.addTag("drip_\(step)"), .emitEvent(type: "drip.step\(step + 1)")])))
        }
        _ = try await crm.ingest([
            event("t", "tick", at: clock.now(), .email("ada@example.com")), event("d", "drip.step1", at: clock.now(), .email("bob@example.com")),
        ])
        for _ in 0..<110 {
            clock.advance(by: .seconds(60))
            try await crm.runDueJobs()
        }
        let all = try await runs(crm, rule.id)
        #expect(all.filter { $0.status == .fired }.map(\.waits).sorted() == Array(1...101))
        #expect(all.filter { $0.status == .waiting }.isEmpty)
        let stopped = try #require(all.first)
        #expect(stopped.status == .skipped)
        #expect(stopped.reason.contains("more than 100 waits") == true)
        let bob = try await customer(crm, "bob@example.com")
        #expect(try await crm.customer(bob).profile.tags == (1...10).map { "drip_\($0)" }.sorted())
        #expect(try await runs(crm, drip[9].id).map(\.status) == [.fired])
    }

    /// The frequency of a rule that waits is judged at when the run would fire, not at its trigger: a cart
    /// abandoned 23½ hours after the last reminder fired waits its hour and is reminded 24½ hours after that one.
    @Test(arguments: Backend.allCases)
    func theFrequencyOfARuleThatWaitsIsJudgedWhenItWouldFire(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Cart reminder", trigger: .event(type: "cart.added"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("reminded")],
                limits: RuleLimits(frequency: .oncePerCustomerPer(milliseconds: 86_400_000))))
        _ = try await crm.ingest([event("c1", "cart.added", at: clock.now(), .email("ada@example.com"))])
        clock.advance(by: .seconds(3600))
        try await crm.runDueJobs()
        #expect(try await runs(crm, rule.id).map(\.status) == [.fired])
        clock.advance(by: .seconds(23 * 3600 + 1800))  // 23½ hours after the reminder
        let ada = try await customer(crm, "ada@example.com")
        #expect(try await crm.explainRule(rule.id, customer: ada).limit == nil)  // as a run started now is judged
        _ = try await crm.ingest([event("c2", "cart.added", at: clock.now(), .email("ada@example.com"))])
        #expect(try await runs(crm, rule.id).first?.status == .waiting)
        clock.advance(by: .seconds(3600))
        try await crm.runDueJobs()
        #expect(try await runs(crm, rule.id).map(\.status) == [.fired, .fired])
        // Triggered again 10 minutes later: it would fire 70 minutes after the last reminder, so it is skipped now.
        clock.advance(by: .seconds(600))
        _ = try await crm.ingest([event("c3", "cart.added", at: clock.now(), .email("ada@example.com"))])
        let latest = try #require(try await runs(crm, rule.id).first)
        #expect(latest.status == .skipped)
        #expect(latest.reason.contains("within the last 1d") == true)
    }

    /// An emitted event's property values are checked when the rule is saved: of a type an event property holds,
    /// and of the type its event type declares (a whole number is a decimal), not dropped or failed at every run.
    @Test func emittedPropertiesAreCheckedAgainstWhatAnEventHolds() async throws {
        let test = TestRapport()
        _ = try await test.crm.defineEventType(
            EventTypeDefinition(type: "points.earned", properties: [EventPropertyDefinition(key: "points", type: .int), EventPropertyDefinition(key: "rate", type: .decimal)]))
        let definition = RuleDefinition(
            name: "Points", trigger: .event(type: "visit"),
            actions: [
                .emitEvent(type: "points.earned", properties: ["points": "1.5", "rate": "2"]),
                .emitEvent(type: "visit.noted", properties: ["spent": "total_spent(\"EUR\")", "gap": "1d", "nothing": "null", "count": "stats.order_count"]),
            ])
        let issues = try await test.crm.validateRule(definition)
        #expect(issues.map(\.field).sorted() == ["actions[0].emit_event.properties.points", "actions[1].emit_event.properties.gap",
            "actions[1].emit_event.properties.nothing", "actions[1].emit_event.properties.spent"])
        #expect(issues.first { $0.field.hasSuffix("points") }?.message == "is decimal, but event type 'points.earned' declares 'points' as int")
        #expect(issues.first { $0.field.hasSuffix("gap") }?.message.contains("is duration, which an event property cannot hold") == true)
    }

    @Test func definitionsAreCheckedWithPositionedErrorsAndNothingIsSaved() async throws {
        let test = TestRapport()
        let definition = RuleDefinition(
            name: "", trigger: .event(type: "cart.updated", filter: "event.properties.value > 1"), condition: "stats.order_count >= \"3\"",
            wait: RuleWait(duration: .milliseconds(10), recheck: "orders_count(wthin: 1h) == 0"),
            actions: [
                .addTag("a,b"), .setAttribute(key: "undeclared", value: "1"), .emitEvent(type: "order.placed"),
                .sendMessage(MessageAction(channel: .email, template: "", subject: "Hi {{ customer.nme }}")),
                .callWebhook(WebhookAction(url: "ftp://example.com", payload: ["x": "now +"])),
            ], limits: RuleLimits(dailyCap: 0, quietHours: QuietHours(start: LocalTime(hour: 8), end: LocalTime(hour: 8))))
        let issues = try await test.crm.validateRule(definition)
        #expect(Set(issues.map(\.field)) == [
            // The names of the proto request's fields, as the gRPC layer reports them under `rule.`.
            "name", "trigger.event.filter", "condition", "wait.duration", "wait.recheck", "actions[0].add_tag", "actions[1].set_attribute.key",
            "actions[2].emit_event.event_type", "actions[3].send_message.template", "actions[3].send_message.subject", "actions[4].call_webhook.url",
            "actions[4].call_webhook.payload.x", "limits.daily_cap", "limits.quiet_hours",
        ])
        let subject = try #require(issues.first { $0.field == "actions[3].send_message.subject" })
        #expect(subject.line == 1)
        #expect(subject.column == 7)
        #expect(subject.message.contains("unknown field 'customer.nme'"))
        let filter = try #require(issues.first { $0.field == "trigger.event.filter" })
        #expect(filter.message.contains("event type 'cart.updated' is not declared"))
        let error = await captureError { try await test.crm.createRule(definition) }
        #expect(error?.fieldViolations.count == issues.count)
        #expect(try await test.crm.rules().isEmpty)
    }

    /// A definition holds at most 100 message data and webhook payload entries, and its problems are reported up
    /// to 50: every template and expression past them is not compiled (each problem costs a pass over its text).
    @Test func aDefinitionsEntriesAndReportedProblemsAreBounded() async throws {
        let test = TestRapport()
        let many = Dictionary(uniqueKeysWithValues: (0..<101).map { ("k\($0)", "{{ customer.given_name }}") })
        let wide = RuleDefinition(
            name: "Wide", trigger: .event(type: "visit"),
            actions: [
                .sendMessage(MessageAction(channel: .email, template: "t", data: many)),
                .callWebhook(WebhookAction(url: "https://example.com/hook", payload: many.mapValues { _ in "customer.id" })),
            ])
        let fields = try await test.crm.validateRule(wide).map(\.field)
        #expect(fields == ["actions[0].send_message.data", "actions[1].call_webhook.payload"])
        let bad = String(repeating: "$", count: 4_000)
        let noisy = RuleDefinition(
            name: "Noisy", trigger: .event(type: "visit"),
            actions: (0..<20).map { _ in .sendMessage(MessageAction(channel: .email, template: "t", subject: "{{ \(bad) }}", body: "{{ \(bad) }}")) })
        let issues = try await test.crm.validateRule(noisy)
        #expect(issues.count <= 50 + 20)
        #expect(issues.count >= 50)
        #expect(issues.first?.field == "actions[0].send_message.subject")
    }

    /// A birthday that fired for a customer merged into another the same day is not fired again for the survivor,
    /// which took that birthday (it was set later than its own).
    @Test func aMergeDoesNotFireABirthdayTwiceTheSameDay() async throws {
        let test = TestRapport()
        let crm = test.crm
        let survivor = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(birthday: LocalDate(month: 1, day: 2)), identities: [.email("s@example.com")]))
        try await test.advance(by: .seconds(60))
        let absorbed = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(birthday: LocalDate(month: 1, day: 1)), identities: [.email("x@example.com")]))
        let rule = try await crm.createRule(
            RuleDefinition(name: "Birthday", trigger: .date(DateTrigger(field: .birthday, at: LocalTime(hour: 9))), actions: [.addTag("greeted")]))
        try await test.advance(by: .seconds(12 * 3600))  // 09:00 passes: the absorbed-to-be customer is greeted
        #expect(try await crm.runs(rule: rule.id, status: .fired).runs.map(\.customerID) == [absorbed.id])
        let merged = try await crm.mergeCustomers(survivor.id, absorbed.id)
        #expect(merged.survivor.profile.birthday == LocalDate(month: 1, day: 1))
        try await test.advance(by: .seconds(3600))
        #expect(try await crm.runs(rule: rule.id, status: .fired).runs.count == 1)
        #expect(try await crm.nextJobDue().map { $0 > test.clock.now() + .seconds(300 * 86_400) } == true, "next year's")
    }

    @Test func aMessageIsNotSentForProfiling() async throws {
        let test = TestRapport()
        let promo = RuleDefinition(
            name: "Promo", trigger: .event(type: "visit"), actions: [.sendMessage(MessageAction(channel: .email, purpose: .profiling, template: "promo"))])
        let issues = try await test.crm.validateRule(promo)
        #expect(issues.map(\.field) == ["actions[0].send_message.purpose"])
        await expectError(.invalidArgument([FieldViolation(field: "actions[0].send_message.purpose", problem: issues[0].message)])) {
            try await test.crm.createRule(promo)
        }
        var marketing = promo
        marketing.actions = [.sendMessage(MessageAction(channel: .email, purpose: .marketing, template: "promo"))]
        #expect(try await test.crm.validateRule(marketing).isEmpty)
    }

    @Test func anHTMLBodyIsForEmail() async throws {
        let test = TestRapport()
        let sms = RuleDefinition(
            name: "Text", trigger: .event(type: "visit"), actions: [.sendMessage(MessageAction(channel: .sms, template: "t", body: "<b>Hi</b>", html: true))])
        let issues = try await test.crm.validateRule(sms)
        #expect(issues.map(\.field) == ["actions[0].send_message.html"])
        #expect(issues.first?.message == "an HTML body is for e-mail; a sms message is plain text")
        var email = sms
        email.actions = [.sendMessage(MessageAction(channel: .email, template: "t", body: "<b>Hi</b>", html: true))]
        #expect(try await test.crm.validateRule(email).isEmpty)

        // A rule saved before (written here straight to the store) can still be renamed; a changed action is held to it.
        let saved = try await test.crm.createRule(email)
        try test.store.writeSync { tx in
            var rule = try #require(try tx.rule(saved.id))
            rule.definition.actions = sms.actions
            try tx.updateRule(rule)
            try tx.bumpDefinitionsVersion()
        }
        #expect(try await test.crm.updateRule(saved.id, RuleChanges(name: "Renamed")).definition.name == "Renamed")
        let changed = await captureError {
            try await test.crm.updateRule(
                saved.id, RuleChanges(actions: [.sendMessage(MessageAction(channel: .sms, template: "t2", body: "<b>Hi</b>", html: true))]))
        }
        #expect(changed?.fieldViolations.map(\.field) == ["actions[0].send_message.html"])
    }

    /// A rule saved with more than 100 message data entries (before the limit) can still be edited elsewhere, even
    /// when such kept problems are many: they do not use up the problems after which no more are looked for.
    @Test func aRuleSavedWithManyDataEntriesCanStillBeEdited() async throws {
        let test = TestRapport()
        let action = RuleAction.sendMessage(MessageAction(channel: .email, template: "t", data: ["k": "{{ customer.given_name }}"]))
        let saved = try await test.crm.createRule(RuleDefinition(name: "Wide", trigger: .event(type: "visit"), actions: Array(repeating: action, count: 20)))
        let many = Dictionary(uniqueKeysWithValues: (0..<150).map { ("k\($0)", "{{ customer.given_name }}") })
        try test.store.writeSync { tx in
            var rule = try #require(try tx.rule(saved.id))
            rule.definition.actions = Array(repeating: .sendMessage(MessageAction(channel: .sms, purpose: .profiling, template: "t", body: "<b>Hi</b>", html: true, data: many)), count: 20)
            try tx.updateRule(rule)
            try tx.bumpDefinitionsVersion()
        }
        #expect(try await test.crm.updateRule(saved.id, RuleChanges(name: "Renamed")).definition.name == "Renamed")
        // 60 kept problems, and a new one past them is still found.
        let bad = await captureError { try await test.crm.updateRule(saved.id, RuleChanges(condition: "stats.nope > 1")) }
        #expect(bad?.fieldViolations.map(\.field) == ["condition"])
    }

    @Test func segmentEventsAreTriggeredPerSegmentNotAsEventTypes() async throws {
        let test = TestRapport()
        for type in ["segment.entered", "segment.exited"] {
            let definition = RuleDefinition(name: "Any segment", trigger: .event(type: type, filter: ""), actions: [.addTag("moved")])
            let issues = try await test.crm.validateRule(definition)
            #expect(issues.map(\.field) == ["trigger.event.event_type"])
            #expect(issues.first?.message.contains("fires per segment: use the segment_") == true)
            let error = await captureError { try await test.crm.createRule(definition) }
            #expect(error?.fieldViolations.map(\.field) == ["trigger.event.event_type"])
        }
        // Other built-in types are events rules trigger on.
        #expect(try await test.crm.validateRule(RuleDefinition(name: "New", trigger: .event(type: "customer.created", filter: ""), actions: [.addTag("new")])).isEmpty)
        #expect(try await test.crm.rules().isEmpty)
    }

    @Test func rulesMayNotCopyPersonalDataIntoAttributesOrEventProperties() async throws {
        let test = TestRapport()
        _ = try await test.crm.defineAttribute(AttributeDefinition(key: "contacts", type: .stringList))
        _ = try await test.crm.defineAttribute(AttributeDefinition(key: "day", type: .int))
        _ = try await test.crm.defineAttribute(AttributeDefinition(key: "reachable", type: .bool))
        _ = try await test.crm.defineAttribute(AttributeDefinition(key: "born", type: .int))
        let definition = RuleDefinition(
            name: "Copy", trigger: .event(type: "page.viewed"),
            actions: [
                .setAttribute(key: "contacts", value: "customer.tags ?? customer.emails"),
                .setAttribute(key: "day", value: "customer.birthday.day"),
                .emitEvent(type: "contact.copied", properties: ["phones": "customer.phones", "count": "1"]),
                // A yes or no about them, and the birthday's year (shown unmasked anyway), may be stored.
                .setAttribute(key: "reachable", value: "customer.emails != [] or customer.phones != []"),
                .setAttribute(key: "born", value: "customer.birthday.year ?? 0"),
                // A countdown to the birthday dates it (run daily, it says the day).
                .setAttribute(key: "day", value: "days_until_birthday() ?? 0"),
                .setAttribute(key: "reachable", value: "days_until_birthday() == 0"),
                .setAttribute(key: "born", value: "customer.age ?? 0"),  // changes on the birthday: dates it too
            ])
        let issues = try await test.crm.validateRule(definition)
        #expect(
            issues.map(\.field).sorted() == [
                "actions[0].set_attribute.value", "actions[1].set_attribute.value", "actions[2].emit_event.properties.phones",
                "actions[5].set_attribute.value", "actions[7].set_attribute.value",
            ])
        #expect(issues.first { $0.field == "actions[5].set_attribute.value" }?.message.contains("'days_until_birthday()' is personal data") == true)
        #expect(issues.last?.message.contains("'customer.age' is personal data") == true)
        let copy = try #require(issues.first)
        #expect(copy.message.contains("'customer.emails' is personal data"))
        #expect(copy.column == 18)
        #expect(copy.excerpt.hasSuffix("^^^^^^^^^^^^^^^"))
        let error = await captureError { try await test.crm.createRule(definition) }
        #expect(error?.fieldViolations.count == 5)
        #expect(try await test.crm.rules().isEmpty)
    }

    @Test func explainRuleSaysWhyItWouldOrWouldNotFire() async throws {
        let test = TestRapport()
        _ = try await test.crm.ingest([order("1", at: test.clock.now(), .email("ada@example.com"), totalMinor: 5000)])
        let ada = try await customer(test.crm, "ada@example.com")
        let rule = try await test.crm.createRule(
            RuleDefinition(
                name: "Repeat buyers", trigger: .event(type: "visit"), condition: "stats.order_count >= 2", actions: [.addTag("repeat")],
                limits: RuleLimits(frequency: .oncePerCustomer)))
        let explanation = try await test.crm.explainRule(
            rule.id, customer: ada, event: EventInput(id: "x", type: "visit", occurredAt: test.clock.now(), identities: [.email("ada@example.com")]))
        #expect(!explanation.wouldFire)
        #expect(explanation.condition?.value == .bool(false))
        #expect(explanation.condition?.root.children.first?.value == .int(1))
        #expect(explanation.limit == nil)
    }

    /// An order event names its order: the explanation sees it (`order.*`, the event's properties) as a run would.
    @Test func explainingAnOrderTriggerSeesTheOrderItNames() async throws {
        let test = TestRapport()
        _ = try await test.crm.ingest([
            order("1", at: test.clock.now(), .email("ada@example.com"), totalMinor: 15_000), order("2", at: test.clock.now(), .email("bob@example.com")),
        ])
        let ada = try await customer(test.crm, "ada@example.com")
        let adas = try #require(try await test.crm.customer360(ada).recentOrders.first)
        let bobs = try #require(try await test.crm.customer360(try await customer(test.crm, "bob@example.com")).recentOrders.first)
        let rule = try await test.crm.createRule(
            RuleDefinition(
                name: "Big orders", trigger: .event(type: "order.placed"), condition: "order.total >= 100 EUR and event.properties.total_minor >= 10000",
                actions: [.addTag("big")]))
        func imagined(_ order: OrderID?) -> EventInput {
            EventInput(
                id: "x", type: "order.placed", occurredAt: test.clock.now(), identities: [],
                properties: order.map { ["order_id": .string($0.rawValue)] } ?? [:])
        }
        let explanation = try await test.crm.explainRule(rule.id, customer: ada, event: imagined(adas.id))
        #expect(explanation.condition?.value == .bool(true))
        #expect(explanation.wouldFire)
        #expect(try await test.crm.explainExpression("order.total", customer: ada, event: imagined(adas.id)).value == .money(Money(minorUnits: 15_000, currency: CurrencyCode("EUR"))))
        // Without an order the parts that read it are missing; another customer's order is refused.
        #expect(try await test.crm.explainRule(rule.id, customer: ada, event: imagined(nil)).condition?.value == .bool(false))
        await expectError(.invalid("event.properties.order_id", "'\(bobs.id.rawValue)' is not an order of customer \(ada)")) {
            try await test.crm.explainRule(rule.id, customer: ada, event: imagined(bobs.id))
        }
    }

    @Test func deletingARuleKeepsItsFinishedRuns() async throws {
        let test = TestRapport()
        let rule = try await test.crm.createRule(RuleDefinition(name: "Tag", trigger: .event(type: "visit"), actions: [.addTag("x")]))
        _ = try await test.crm.ingest([event("v", "visit", at: test.clock.now(), .email("ada@example.com"))])
        try await test.crm.deleteRule(rule.id)
        await expectError(.notFound(entity: "rule", id: rule.id.rawValue)) { try await test.crm.rule(rule.id) }
        #expect(try await test.crm.runs(rule: rule.id).runs.map(\.status) == [.fired])
    }

    /// A reminder rule that waits an hour, with a waiting run for Ada (at the start) and one for Bob (ten minutes
    /// later), two separate customers.
    func twoWaitingReminders(_ crm: RapportEngine, _ clock: ManualClock, _ policy: RetriggerPolicy) async throws
        -> (rule: Rule, ada: CustomerID, bob: CustomerID, adaRun: RuleRun, bobRun: RuleRun)
    {
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Reminder", trigger: .event(type: "checkout.started"), wait: RuleWait(duration: .seconds(3600)), actions: [.addTag("reminded")],
                limits: RuleLimits(retrigger: policy)))
        _ = try await crm.ingest([event("a", "checkout.started", at: clock.now(), .email("ada@example.com"))])
        clock.advance(by: .seconds(600))
        _ = try await crm.ingest([event("b", "checkout.started", at: clock.now(), .email("bob@example.com"))])
        let ada = try await customer(crm, "ada@example.com")
        let bob = try await customer(crm, "bob@example.com")
        let before = try await runs(crm, rule.id)
        let adaRun = try #require(before.first { $0.customerID == ada })
        let bobRun = try #require(before.first { $0.customerID == bob })
        #expect([adaRun.status, bobRun.status] == [.waiting, .waiting])
        return (rule, ada, bob, adaRun, bobRun)
    }

    @Test(arguments: Backend.allCases, [RetriggerPolicy.ignore, .restart])
    func aMergeLeavesOneWaitingRunPerRuleAsTheRetriggerPolicySays(_ backend: Backend, _ policy: RetriggerPolicy) async throws {
        let (crm, clock) = try makeEngine(backend)
        let (rule, ada, bob, adaRun, bobRun) = try await twoWaitingReminders(crm, clock, policy)

        _ = try await crm.mergeCustomers(ada, bob)
        // Ignoring new triggers keeps the older run (Ada's); restarting keeps the newer one (Bob's), now Ada's.
        let (kept, dropped) = policy == .ignore ? (adaRun, bobRun) : (bobRun, adaRun)
        let merged = Dictionary(uniqueKeysWithValues: try await runs(crm, rule.id).map { ($0.id, $0) })
        #expect(merged[kept.id]?.status == .waiting)
        #expect(merged[kept.id]?.customerID == ada)
        #expect(merged[dropped.id]?.status == .cancelled)
        #expect(merged[dropped.id]?.reason == "the customer was merged with \(policy == .ignore ? ada : bob), whose run \(kept.id) of this rule continues")
        #expect(try await crm.nextJobDue() == kept.resumeAt)

        // A trigger through the absorbed customer's identity now meets the one waiting run.
        clock.advance(by: .seconds(600))
        _ = try await crm.ingest([event("b2", "checkout.started", at: clock.now(), .email("bob@example.com"))])
        let after = try await runs(crm, rule.id)
        #expect(after.filter { $0.status == .waiting }.count == 1)
        try await crm.advanceManualClock(to: start + .seconds(3 * 3600))
        let fired = try await runs(crm, rule.id).filter { $0.status == .fired }
        #expect(fired.map(\.customerID) == [ada])
        #expect(fired.map(\.eventID) == [policy == .ignore ? "a" : "b2"])
        #expect(try await crm.customer(ada).profile.tags == ["reminded"])
    }

    @Test(arguments: Backend.allCases)
    func onceLimitsCountTheMergedCustomersAndAnUnmergeSeparatesThem(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let rule = try await crm.createRule(
            RuleDefinition(name: "Welcome", trigger: .event(type: "signed_up"), actions: [.addTag("welcomed")], limits: RuleLimits(frequency: .oncePerCustomer)))
        // Ada (older) never signed up; Bob did and was welcomed.
        _ = try await crm.ingest([
            event("a", "page.viewed", at: clock.now(), .email("ada@example.com")),
            event("b", "signed_up", at: clock.now(), .email("bob@example.com")),
        ])
        let ada = try await customer(crm, "ada@example.com")
        let bob = try await customer(crm, "bob@example.com")
        // Bob is merged into Ada: the person was welcomed, so signing up as Ada does not welcome them again.
        let merge = try await crm.mergeCustomers(ada, bob)
        #expect(merge.survivor.id == ada)
        _ = try await crm.ingest([event("a2", "signed_up", at: clock.now(), .email("ada@example.com"))])
        var latest = try #require(try await runs(crm, rule.id).first)
        #expect(latest.status == .skipped)
        #expect(latest.customerID == ada)
        #expect(latest.reason.hasPrefix("the rule fires once per customer and fired for this customer"))
        // After the unmerge Ada has her own count again (none): she is welcomed.
        _ = try await crm.unmerge(merge.merge.id)
        _ = try await crm.ingest([event("a3", "signed_up", at: clock.now(), .email("ada@example.com"))])
        latest = try #require(try await runs(crm, rule.id).first)
        #expect(latest.status == .fired)
        #expect(latest.customerID == ada)
        #expect(latest.eventID == "a3")
        #expect(try await runs(crm, rule.id).filter { $0.status == .fired }.count == 2)
    }

    @Test(arguments: Backend.allCases)
    func aCustomersRunsIncludeThoseOfTheCustomersMergedIntoIt(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let rule = try await crm.createRule(RuleDefinition(name: "Visit", trigger: .event(type: "visit"), actions: [.addTag("visited")]))
        for index in 0..<3 {
            _ = try await crm.ingest([event("a\(index)", "visit", at: clock.now(), .email("ada@example.com"))])
            clock.advance(by: .seconds(1))
            _ = try await crm.ingest([event("b\(index)", "visit", at: clock.now(), .email("bob@example.com"))])
            clock.advance(by: .seconds(1))
        }
        let ada = try await customer(crm, "ada@example.com")
        let bob = try await customer(crm, "bob@example.com")
        _ = try await crm.mergeCustomers(ada, bob)
        // Paged two at a time, newest first, through both customers' runs; Bob's id lists the same.
        for id in [ada, bob] {
            var events: [String] = []
            var token: String?
            repeat {
                let page = try await crm.runs(rule: rule.id, customer: id, page: PageRequest(size: 2, token: token))
                events += page.runs.compactMap(\.eventID)
                token = page.nextPageToken
            } while token != nil
            #expect(events == ["b2", "a2", "b1", "a1", "b0", "a0"])
        }
        await expectError(.notFound(entity: "customer", id: "cus_nobody")) {
            try await crm.runs(customer: CustomerID(uncheckedRawValue: "cus_nobody"))
        }
    }

    @Test(arguments: Backend.allCases)
    func whatAnEarlierRecordOfABatchStartedHappensBeforeAMergeLaterInIt(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.createRule(RuleDefinition(name: "Subscriber", trigger: .event(type: "newsletter.subscribed"), actions: [.addTag("newsletter")]))
        _ = try await crm.ingest([event("a0", "page.viewed", at: clock.now(), .email("ada@example.com"))])
        clock.advance(by: .seconds(1))
        // Bob subscribes, then a login with both e-mails merges him into Ada: all in one batch.
        let batch = try await crm.ingest([
            event("b1", "newsletter.subscribed", at: clock.now(), .email("bob@example.com")),
            event("x1", "login", at: clock.now(), .email("ada@example.com"), .email("bob@example.com")),
        ])
        let ada = try await customer(crm, "ada@example.com")
        #expect(try await crm.customer(ada).profile.tags == ["newsletter"])
        let merge = try await crm.merge(try #require(batch.merges.first))
        // The merge remembers Bob as subscribed: as had the batch been two, the tag goes back with him.
        #expect(merge.absorbedBefore.profile.tags == ["newsletter"])
        _ = try await crm.unmerge(merge.id)
        #expect(try await crm.customer(merge.absorbedID).profile.tags == ["newsletter"])
        #expect(try await crm.customer(ada).profile.tags == [])
    }

    @Test(arguments: Backend.allCases)
    func aRunThatFiredWhileMergedGoesBackWithTheRecordThatStartedIt(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Welcome", trigger: .event(type: "signed_up"), actions: [.addTag("welcomed")],
                limits: RuleLimits(frequency: .oncePerCustomerPer(milliseconds: 30 * 86_400_000))))
        _ = try await crm.ingest([
            event("a", "page.viewed", at: clock.now(), .email("ada@example.com")),
            event("b", "page.viewed", at: clock.now(), .email("bob@example.com")),
        ])
        let ada = try await customer(crm, "ada@example.com")
        let bob = try await customer(crm, "bob@example.com")
        let merge = try await crm.mergeCustomers(ada, bob)
        // Bob signs up while merged: the rule fires for Ada, the customer he is part of.
        clock.advance(by: .seconds(60))
        _ = try await crm.ingest([event("b2", "signed_up", at: clock.now(), .email("bob@example.com"))])
        #expect(try await runs(crm, rule.id).map(\.customerID) == [ada])
        clock.advance(by: .seconds(60))
        _ = try await crm.unmerge(merge.merge.id)
        // The run, and the count it made, are Bob's: Ada signing up is welcomed; Bob signing up again is not.
        #expect(try await runs(crm, rule.id).map(\.customerID) == [bob])
        #expect(try await crm.runs(rule: rule.id, customer: bob).runs.map(\.eventID) == ["b2"])
        clock.advance(by: .seconds(60))
        _ = try await crm.ingest([
            event("a3", "signed_up", at: clock.now(), .email("ada@example.com")),
            event("b3", "signed_up", at: clock.now(), .email("bob@example.com")),
        ])
        let latest = try await runs(crm, rule.id).prefix(2)
        #expect(Dictionary(uniqueKeysWithValues: latest.map { ($0.customerID, $0.status) }) == [ada: .fired, bob: .skipped])
    }

    @Test(arguments: Backend.allCases)
    func theSameSkipAgainIsFoldedIntoTheCustomersLatestRun(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.defineEventType(EventTypeDefinition(type: "visit", properties: [EventPropertyDefinition(key: "pages", type: .int)]))
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Deep visits", trigger: .event(type: "visit"), condition: "event.properties.pages >= 5", actions: [.addTag("deep")],
                limits: RuleLimits(frequency: .oncePerCustomer)))
        func visit(_ id: String, pages: Int64) async throws {
            _ = try await crm.ingest([event(id, "visit", at: clock.now(), .email("ada@example.com"), properties: ["pages": .int(pages)])])
            clock.advance(by: .seconds(60))
        }
        for (index, pages) in [1, 2, 3].enumerated() { try await visit("shallow\(index)", pages: Int64(pages)) }
        var recorded = try await runs(crm, rule.id)
        #expect(recorded.map(\.status) == [.skipped])
        #expect(recorded[0].repeats == 2)
        #expect(recorded[0].eventID == "shallow2")
        #expect(recorded[0].createdAt == start)
        #expect(recorded[0].updatedAt == start + .seconds(120))
        // Firing, then a skip for another reason, then that reason again: two new records, the last one counted.
        try await visit("deep", pages: 9)
        try await visit("deep2", pages: 9)
        try await visit("deep3", pages: 9)
        try await visit("shallow3", pages: 1)
        recorded = try await runs(crm, rule.id)
        #expect(recorded.map(\.status) == [.skipped, .skipped, .fired, .skipped])
        #expect(recorded.map(\.repeats) == [0, 1, 0, 2])
        #expect(recorded.map(\.eventID) == ["shallow3", "deep3", "deep", "shallow2"])
        #expect(recorded[1].reason.hasPrefix("the rule fires once per customer"))
        // A new version of the rule starts a new record.
        _ = try await crm.updateRule(rule.id, RuleChanges(name: "Deep visits v2"))
        try await visit("shallow4", pages: 1)
        recorded = try await runs(crm, rule.id)
        #expect(recorded.count == 5)
        #expect(recorded[0].ruleVersion == 2)
        #expect(recorded[0].repeats == 0)
    }

    @Test func aManualClockMovesOnlyForwardAndNoFurtherThanTheYear9999() async throws {
        let (crm, clock) = try makeEngine()
        #expect(try await crm.advanceManualClock(to: start - .seconds(1)) == 0)
        #expect(clock.now() == start)
        await expectError(.invalid("target", "is after \(Timestamp.latest), the latest time Rapport keeps")) {
            try await crm.advanceManualClock(to: Timestamp.latest + .milliseconds(1))
        }
        #expect(clock.now() == start)
        #expect(try await crm.advanceManualClock(to: .latest) == 0)
        #expect(clock.now() == .latest)
    }

    @Test(arguments: Backend.allCases)
    func aSkipAfterTheRuleFiredStartsANewRecord(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.defineEventType(EventTypeDefinition(type: "visit", properties: [EventPropertyDefinition(key: "pages", type: .int)]))
        let rule = try await crm.createRule(
            RuleDefinition(
                name: "Follow deep visits", trigger: .event(type: "visit"), condition: "event.properties.pages >= 5", wait: RuleWait(duration: .seconds(3600)),
                actions: [.addTag("deep")], limits: RuleLimits(retrigger: .restart)))
        func visit(_ id: String, pages: Int64) async throws {
            _ = try await crm.ingest([event(id, "visit", at: clock.now(), .email("ada@example.com"), properties: ["pages": .int(pages)])])
        }
        try await visit("deep", pages: 9)  // waits an hour
        clock.advance(by: .seconds(60))
        try await visit("shallow1", pages: 1)  // skipped: the condition is false (the waiting run stays)
        try await crm.advanceManualClock(to: start + .seconds(2 * 3600))  // the waiting run fires
        try await visit("shallow2", pages: 1)  // the same reason, but the rule fired since: a new record
        let recorded = try await runs(crm, rule.id)
        #expect(recorded.map(\.status) == [.skipped, .skipped, .fired])
        #expect(recorded.map(\.eventID) == ["shallow2", "shallow1", "deep"])
        #expect(recorded.map(\.repeats) == [0, 0, 0])
    }

    @Test(arguments: Backend.allCases, [RetriggerPolicy.ignore, .restart])
    func waitingRunsLeftUnderMergedCustomersByAnOlderVersionFireOnce(_ backend: Backend, _ policy: RetriggerPolicy) async throws {
        let (crm, clock) = try makeEngine(backend)
        let (rule, ada, bob, adaRun, bobRun) = try await twoWaitingReminders(crm, clock, policy)
        _ = try await crm.mergeCustomers(ada, bob)
        // Put both runs back as a file written before merges moved waiting runs holds them: each waiting under its
        // own customer, with its own job.
        try await crm.store.write { tx in
            for run in [adaRun, bobRun] {
                try tx.updateRun(run)
                try tx.putJob(ScheduledJob(key: "wait:\(run.id.rawValue)", dueAt: run.resumeAt!, kind: .resumeRun(run.id), customerID: run.customerID))
            }
        }
        try await crm.advanceManualClock(to: start + .seconds(3 * 3600))
        let after = Dictionary(uniqueKeysWithValues: try await runs(crm, rule.id).map { ($0.id, $0) })
        let (kept, dropped) = policy == .ignore ? (adaRun, bobRun) : (bobRun, adaRun)
        #expect(after[kept.id]?.status == .fired)
        #expect(after[kept.id]?.customerID == ada)
        #expect(after[dropped.id]?.status == .cancelled)
        #expect(after[dropped.id]?.reason == "the customer was merged with \(kept.customerID), whose run \(kept.id) of this rule continues")
        #expect(try await crm.customer(ada).profile.tags == ["reminded"])
        #expect(try await crm.nextJobDue() == nil)
    }
}

/// The engine's cap on the runs one started run may trigger in one write (`maxChainedRunsPerStart`).
let maxChainedRunsPerStartForTests = 100
