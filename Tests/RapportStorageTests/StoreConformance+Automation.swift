import Foundation
import RapportCore
import Testing

/// Builders of automation records.
extension Fixture {
    static func segmentID(_ name: String) -> SegmentID { SegmentID(uncheckedRawValue: "seg_\(name)") }
    static func ruleID(_ name: String) -> RuleID { RuleID(uncheckedRawValue: "rul_\(name)") }
    static func runID(_ name: String) -> RunID { RunID(uncheckedRawValue: "run_\(name)") }
    static func outboxID(_ name: String) -> OutboxEntryID { OutboxEntryID(uncheckedRawValue: "obx_\(name)") }

    static func segment(_ name: String, key: String? = nil, kind: SegmentKind = .dynamic) -> Segment {
        Segment(
            id: segmentID(name), key: key ?? name, name: "Segment \(name)", description: "about \(name)", kind: kind,
            expression: kind == .dynamic ? "stats.order_count > 1" : "", version: 2, state: .building,
            buildCursor: CustomerCursor(value: 5, id: customerID("x")), buildStartedAt: time(1), memberCount: 0, createdAt: time(1), updatedAt: time(2))
    }

    static func ruleDefinition(_ name: String) -> RuleDefinition {
        RuleDefinition(
            name: name, description: "does \(name)", trigger: .event(type: "cart.updated", filter: "true"), condition: "stats.order_count == 0",
            wait: RuleWait(duration: .seconds(3600), recheck: "true"),
            actions: [
                .addTag("t"), .setAttribute(key: "vip", value: "true"), .emitEvent(type: "x.y", properties: ["a": "1"]),
                .sendMessage(MessageAction(channel: .sms, purpose: .transactional, template: "tpl", subject: "s", body: "b", html: true, data: ["k": "v"])),
                .callWebhook(WebhookAction(url: "https://example.com/hook", payload: ["p": "now"])), .setLifecycleStage(.loyal), .removeTag("u"),
            ],
            limits: RuleLimits(
                frequency: .oncePerCustomerPer(milliseconds: 86_400_000), dailyCap: 5, quietHours: QuietHours(start: LocalTime(hour: 21), end: LocalTime(hour: 8)),
                requiredConsent: RequiredConsent(channel: .email, purpose: .marketing)), priority: 3)
    }

    static func run(_ name: String, rule: String = "1", customer: String = "a", at minutes: Int64, status: RunStatus = .fired) -> RuleRun {
        RuleRun(
            id: runID(name), ruleID: ruleID(rule), ruleVersion: 2, customerID: customerID(customer), trigger: "cart.updated",
            event: event("e-\(name)", owner: customer, at: minutes, sequence: 1).event, status: status, reason: status == .skipped ? "no" : "",
            resumeAt: status == .waiting ? time(minutes + 60) : nil, step: status == .waiting ? .wait : nil,
            actions: status == .fired ? [ActionOutcome(action: "send_message", status: .applied, detail: "queued", outboxEntryID: outboxID("q"))] : [],
            createdAt: time(minutes), updatedAt: time(minutes))
    }

    static func job(_ key: String, due minutes: Int64, customer: String? = nil) -> ScheduledJob {
        ScheduledJob(key: key, dueAt: time(minutes), kind: .scheduledRule(rule: ruleID("1"), occurrence: time(minutes), after: CustomerCursor(value: 1, id: customerID("a"))),
            customerID: customer.map(customerID), attempts: 1)
    }

    static func outbox(_ name: String, customer: String, sequence: Int64, state: OutboxState = .pending, lease: Int64? = nil, available: Int64 = 0, updated: Int64 = 0)
        -> OutboxEntry
    {
        OutboxEntry(
            id: outboxID(name), sequence: sequence, customerID: customerID(customer), idempotencyKey: "key-\(name)",
            payload: name.hasPrefix("w")
                ? .webhook(url: "https://example.com", body: "{\"a\":1}")
                : .message(OutboxMessage(channel: .email, purpose: .marketing, template: "t", recipient: "ada@example.com", subject: "S", body: "B", data: ["x": "y"])),
            ruleID: ruleID("1"), runID: runID(name), state: state, attempts: 1, leaseOwner: lease == nil ? nil : "worker", leaseExpiresAt: lease.map(time),
            availableAt: time(available), lastError: "", createdAt: time(0), updatedAt: time(updated))
    }
}

extension StoreConformance {
    @Test(arguments: Backend.allCases)
    func definitionsVersionMovesOnAndRollsBack(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        #expect(try await store.read { try $0.definitionsVersion() } == 0)
        try await store.write { try $0.bumpDefinitionsVersion() }
        let first = try await store.read { try $0.definitionsVersion() }
        #expect(first != 0)
        await #expect(throws: Abort.self) {
            try await store.write { tx in
                try tx.bumpDefinitionsVersion()
                throw Abort()
            }
        }
        #expect(try await store.read { try $0.definitionsVersion() } == first)
        try await store.write { try $0.bumpDefinitionsVersion() }
        #expect(try await store.read { try $0.definitionsVersion() } != first)
    }

    @Test(arguments: Backend.allCases)
    func eventTypesRoundTripSortedByType(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let viewed = EventTypeDefinition(type: "product.viewed", description: "d", properties: [EventPropertyDefinition(key: "sku", type: .string, description: "s")])
        let cart = EventTypeDefinition(type: "cart.updated", properties: [EventPropertyDefinition(key: "value", type: .int)])
        try await store.write { tx in
            try tx.putEventTypeDefinition(viewed)
            try tx.putEventTypeDefinition(cart)
        }
        #expect(try await store.read { try $0.eventTypeDefinitions() } == [cart, viewed])
        var changed = cart
        changed.properties.append(EventPropertyDefinition(key: "x", type: .bool))
        try await store.write { [changed] in try $0.putEventTypeDefinition(changed) }
        #expect(try await store.read { try $0.eventTypeDefinitions() } == [changed, viewed])
    }

    @Test(arguments: Backend.allCases)
    func segmentsAndDynamicMemberships(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let vip = F.segment("1", key: "vip")
        try await store.write { tx in
            try tx.insertSegment(vip)
            try tx.insertSegment(F.segment("2", key: "alpha"))
        }
        #expect(try await store.read { try $0.segment(vip.id) } == vip)
        #expect(try await store.read { try $0.segment(key: "vip") } == vip)
        #expect(try await store.read { try $0.segments().map(\.key) } == ["alpha", "vip"])
        await #expect(throws: RapportError.alreadyExists(entity: "segment", id: "seg_1")) { try await store.write { try $0.insertSegment(vip) } }
        await #expect(throws: RapportError.alreadyExists(entity: "segment", id: "vip")) {
            try await store.write { try $0.insertSegment(F.segment("3", key: "vip")) }
        }

        try await store.write { tx in
            for name in ["c", "a", "b"] { try tx.insertDynamicMembership(SegmentMembership(segmentID: vip.id, customerID: F.customerID(name), since: F.time(3))) }
        }
        await #expect(throws: RapportError.alreadyExists(entity: "segment membership", id: "seg_1/cus_a")) {
            try await store.write { try $0.insertDynamicMembership(SegmentMembership(segmentID: vip.id, customerID: F.customerID("a"), since: F.time(4))) }
        }
        try await store.read { tx throws in
            #expect(try tx.segment(vip.id)?.memberCount == 3)
            #expect(try tx.isDynamicMember(segment: vip.id, customer: F.customerID("b")))
            #expect(try !tx.isDynamicMember(segment: F.segmentID("2"), customer: F.customerID("b")))
            #expect(try tx.members(of: vip.id, after: nil, limit: 2).map(\.customerID) == [F.customerID("a"), F.customerID("b")])
            #expect(try tx.members(of: vip.id, after: F.customerID("b"), limit: 2) == [SegmentMembership(segmentID: vip.id, customerID: F.customerID("c"), since: F.time(3))])
            #expect(try tx.memberships(of: F.customerID("a")) == [SegmentMembership(segmentID: vip.id, customerID: F.customerID("a"), since: F.time(3))])
            #expect(try tx.segmentIDs(of: F.customerID("a")) == [vip.id])
        }
        // The store keeps the count: an update that carries another count does not change it.
        var renamed = vip
        renamed.name = "Renamed"
        renamed.revealedPersonalData = "customer.birthday.month"
        renamed.memberCount = 99
        try await store.write { [renamed] tx in
            try tx.updateSegment(renamed)
            try tx.deleteDynamicMembership(segment: vip.id, customer: F.customerID("c"))
        }
        #expect(try await store.read { try $0.segment(vip.id)?.memberCount } == 2)
        #expect(try await store.read { try $0.segment(vip.id)?.name } == "Renamed")
        #expect(try await store.read { try $0.segment(vip.id)?.revealedPersonalData } == "customer.birthday.month")
        await #expect(throws: RapportError.notFound(entity: "segment membership", id: "seg_1/cus_c")) {
            try await store.write { try $0.deleteDynamicMembership(segment: vip.id, customer: F.customerID("c")) }
        }
        try await store.write { try $0.deleteDynamicMemberships(of: F.customerID("a")) }
        #expect(try await store.read { try $0.members(of: vip.id, after: nil, limit: 10).map(\.customerID) } == [F.customerID("b")])
        try await store.write { try $0.deleteSegment(vip.id) }
        #expect(try await store.read { try $0.segment(vip.id) } == nil)
        #expect(try await store.read { try $0.memberships(of: F.customerID("b")) }.isEmpty)
        #expect(try await store.read { try $0.segmentIDs(of: F.customerID("b")) }.isEmpty)
        await #expect(throws: RapportError.notFound(entity: "segment", id: "seg_1")) { try await store.write { try $0.deleteSegment(vip.id) } }
        await #expect(throws: RapportError.notFound(entity: "segment", id: "seg_1")) { try await store.write { try $0.updateSegment(vip) } }
    }

    /// A segment's key can change: the old key is free again, the new one found, and a key another segment holds
    /// is refused, leaving the segment as it was. What a segment was evaluated with is kept.
    @Test(arguments: Backend.allCases)
    func aSegmentsKeyMovesAndItsRevisionIsKept(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let vip = {
            var segment = F.segment("1", key: "vip")
            segment.evaluatedWithRevision = 2
            return segment
        }()
        try await store.write { tx in
            try tx.insertSegment(vip)
            try tx.insertSegment(F.segment("2", key: "alpha"))
        }
        #expect(try await store.read { try $0.segment(vip.id)?.evaluatedWithRevision } == 2)
        var moved = vip
        moved.key = "gold"
        try await store.write { [moved] in try $0.updateSegment(moved) }
        #expect(try await store.read { try $0.segment(key: "gold")?.id } == vip.id)
        #expect(try await store.read { try $0.segment(key: "vip") } == nil)
        try await store.write { try $0.insertSegment(F.segment("3", key: "vip")) }  // free again
        var clash = moved
        clash.key = "alpha"
        await #expect(throws: RapportError.alreadyExists(entity: "segment", id: "alpha")) { try await store.write { [clash] in try $0.updateSegment(clash) } }
        #expect(try await store.read { try $0.segment(vip.id)?.key } == "gold")
        #expect(try await store.read { try $0.segments().map(\.key) } == ["alpha", "gold", "vip"])
    }

    @Test(arguments: Backend.allCases)
    func listMembershipsFollowOwnershipAndCountDistinctOwners(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let list = F.segment("l", key: "press", kind: .list)
        let a = F.customerID("a"), b = F.customerID("b"), c = F.customerID("c")
        try await store.write { tx in
            try tx.insertSegment(list)
            try tx.insertListMembership(ListMembershipRecord(segmentID: list.id, customerID: a, homeCustomerID: a, addedAt: F.time(5)))
            try tx.insertListMembership(ListMembershipRecord(segmentID: list.id, customerID: b, homeCustomerID: b, addedAt: F.time(3)))
        }
        await #expect(throws: RapportError.alreadyExists(entity: "list membership", id: "seg_l/cus_a")) {
            try await store.write { try $0.insertListMembership(ListMembershipRecord(segmentID: list.id, customerID: a, homeCustomerID: a, addedAt: F.time(9))) }
        }
        #expect(try await store.read { try $0.segment(list.id)?.memberCount } == 2)
        // b is absorbed by a: a owns both memberships, one member, since the earliest.
        try await store.write { try $0.reassignAll(from: b, to: a) }
        try await store.read { tx throws in
            #expect(try tx.segment(list.id)?.memberCount == 1)
            #expect(try tx.isListMember(segment: list.id, customer: a))
            #expect(try !tx.isListMember(segment: list.id, customer: b))
            #expect(try tx.members(of: list.id, after: nil, limit: 10) == [SegmentMembership(segmentID: list.id, customerID: a, since: F.time(3))])
            #expect(try tx.memberships(of: a) == [SegmentMembership(segmentID: list.id, customerID: a, since: F.time(3))])
            #expect(try tx.segmentIDs(of: a) == [list.id])
            #expect(try tx.listMemberships(ownedBy: a).map(\.homeCustomerID) == [a, b])
        }
        // The unmerge gives b's membership back.
        try await store.write { try $0.reassign(owner: a, homes: [b], to: b) }
        try await store.read { tx throws in
            #expect(try tx.segment(list.id)?.memberCount == 2)
            #expect(try tx.members(of: list.id, after: nil, limit: 10).map(\.customerID) == [a, b])
        }
        // Moving to a customer that is not a member yet.
        try await store.write { try $0.reassignAll(from: b, to: c) }
        #expect(try await store.read { try $0.members(of: list.id, after: nil, limit: 10).map(\.customerID) } == [a, c])
        #expect(try await store.write { try $0.deleteListMemberships(segment: list.id, customer: c) } == 1)
        #expect(try await store.write { try $0.deleteListMemberships(segment: list.id, customer: c) } == 0)
        #expect(try await store.read { try $0.segment(list.id)?.memberCount } == 1)
    }

    @Test(arguments: Backend.allCases)
    func rulesVersionsRunsAndCounters(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let definition = F.ruleDefinition("one")
        let rule = Rule(id: F.ruleID("1"), version: 1, definition: definition, enabled: true, createdAt: F.time(1), updatedAt: F.time(1))
        try await store.write { tx in
            try tx.insertRule(rule)
            try tx.insertRuleDefinition(definition, rule: rule.id, version: 1)
            try tx.insertRule(Rule(id: F.ruleID("0"), version: 1, definition: F.ruleDefinition("zero"), enabled: false, createdAt: F.time(2), updatedAt: F.time(2)))
        }
        #expect(try await store.read { try $0.rule(rule.id) } == rule)
        #expect(try await store.read { try $0.rules().map(\.id) } == [F.ruleID("0"), F.ruleID("1")])
        #expect(try await store.read { try $0.ruleDefinition(rule.id, version: 1) } == definition)
        #expect(try await store.read { try $0.ruleDefinition(rule.id, version: 2) } == nil)
        await #expect(throws: RapportError.alreadyExists(entity: "rule", id: "rul_1")) { try await store.write { try $0.insertRule(rule) } }
        await #expect(throws: RapportError.alreadyExists(entity: "rule version", id: "rul_1@1")) {
            try await store.write { try $0.insertRuleDefinition(definition, rule: rule.id, version: 1) }
        }
        var updated = rule
        updated.version = 2
        updated.enabled = false
        try await store.write { [updated] in try $0.updateRule(updated) }
        #expect(try await store.read { try $0.rule(rule.id) } == updated)
        let missing = Rule(id: F.ruleID("9"), version: 1, definition: definition, enabled: true, createdAt: F.time(1), updatedAt: F.time(1))
        await #expect(throws: RapportError.notFound(entity: "rule", id: "rul_9")) { try await store.write { try $0.updateRule(missing) } }
        await #expect(throws: RapportError.notFound(entity: "rule", id: "rul_9")) { try await store.write { try $0.deleteRule(missing.id) } }

        let runs = [
            F.run("1", at: 10), F.run("2", customer: "b", at: 20, status: .skipped), F.run("3", at: 20, status: .waiting), F.run("4", rule: "0", at: 30),
        ]
        try await store.write { tx in for run in runs { try tx.insertRun(run) } }
        try await store.read { tx throws in
            #expect(try tx.run(F.runID("3")) == runs[2])
            #expect(try tx.runs(RunQuery()).map(\.id.rawValue) == ["run_4", "run_3", "run_2", "run_1"])
            #expect(try tx.runs(RunQuery(ruleID: F.ruleID("1"))).map(\.id.rawValue) == ["run_3", "run_2", "run_1"])
            #expect(try tx.runs(RunQuery(customerID: F.customerID("a"), limit: 2)).map(\.id.rawValue) == ["run_4", "run_3"])
            #expect(try tx.runs(RunQuery(customerID: F.customerID("a"), before: RunCursor(runs[2]))).map(\.id.rawValue) == ["run_1"])
            #expect(try tx.runs(RunQuery(status: .skipped)).map(\.id.rawValue) == ["run_2"])
            #expect(try tx.waitingRun(rule: F.ruleID("1"), customer: F.customerID("a"))?.id == F.runID("3"))
            #expect(try tx.waitingRun(rule: F.ruleID("1"), customer: F.customerID("b")) == nil)
            #expect(try tx.latestRun(rule: F.ruleID("1"), customer: F.customerID("a"))?.id == F.runID("3"))
            #expect(try tx.latestRun(rule: F.ruleID("0"), customer: F.customerID("a"))?.id == F.runID("4"))
            #expect(try tx.latestRun(rule: F.ruleID("1"), customer: F.customerID("b")) == runs[1])
            #expect(try tx.latestRun(rule: F.ruleID("0"), customer: F.customerID("b")) == nil)
        }
        // A skipped run counting a repeat keeps its place and round-trips the count.
        var repeated = runs[1]
        repeated.repeats = 3
        repeated.eventID = "e-later"
        repeated.updatedAt = F.time(24)
        try await store.write { [repeated] in try $0.updateRun(repeated) }
        #expect(try await store.read { try $0.latestRun(rule: F.ruleID("1"), customer: F.customerID("b")) } == repeated)
        #expect(try await store.read { try $0.runs(RunQuery(status: .skipped)) } == [repeated])
        var resumed = runs[2]
        resumed.status = .fired
        resumed.updatedAt = F.time(90)
        try await store.write { [resumed] in try $0.updateRun(resumed) }
        #expect(try await store.read { try $0.waitingRun(rule: F.ruleID("1"), customer: F.customerID("a")) } == nil)
        // After a merge two runs can wait for one customer: the newest is the waiting run, and ending the other
        // one leaves it so.
        try await store.write { tx in
            try tx.insertRun(F.run("6", customer: "b", at: 1, status: .waiting))
            try tx.insertRun(F.run("7", customer: "a", at: 2, status: .waiting))
        }
        var moved = try #require(try await store.read { try $0.run(F.runID("6")) })
        moved.customerID = F.customerID("a")
        try await store.write { [moved] in try $0.updateRun(moved) }
        #expect(try await store.read { try $0.waitingRun(rule: F.ruleID("1"), customer: F.customerID("a"))?.id } == F.runID("7"))
        #expect(try await store.read { try $0.waitingRun(rule: F.ruleID("1"), customer: F.customerID("b")) } == nil)
        #expect(try await store.read { try $0.latestRun(rule: F.ruleID("1"), customer: F.customerID("b"))?.id } == F.runID("2"))
        moved.status = .fired
        moved.updatedAt = F.time(21)
        try await store.write { [moved] in try $0.updateRun(moved) }
        #expect(try await store.read { try $0.waitingRun(rule: F.ruleID("1"), customer: F.customerID("a"))?.id } == F.runID("7"))
        var newest = try #require(try await store.read { try $0.run(F.runID("7")) })
        newest.status = .cancelled
        newest.updatedAt = F.time(22)
        try await store.write { [newest] in try $0.updateRun(newest) }
        #expect(try await store.read { try $0.waitingRun(rule: F.ruleID("1"), customer: F.customerID("a")) } == nil)
        await #expect(throws: RapportError.notFound(entity: "rule run", id: "run_9")) { try await store.write { try $0.updateRun(F.run("9", at: 1)) } }

        try await store.write { tx in
            try tx.putRuleCounter(RuleCounter(ruleID: rule.id, customerID: F.customerID("a"), lastFiredAt: F.time(5), firedCount: 2))
            try tx.incrementRuleFiredCount(rule: rule.id, day: 20_000)
            try tx.incrementRuleFiredCount(rule: rule.id, day: 20_000)
        }
        try await store.read { tx throws in
            #expect(try tx.ruleCounter(rule: rule.id, customer: F.customerID("a"))?.firedCount == 2)
            #expect(try tx.ruleFiredCount(rule: rule.id, day: 20_000) == 2)
            #expect(try tx.ruleFiredCount(rule: rule.id, day: 20_001) == 0)
        }
        // Runs that ended before a time are forgotten; waiting ones never are.
        try await store.write { tx in
            try tx.insertRun(F.run("5", at: 5, status: .waiting))
            try tx.deleteRuns(endedBefore: F.time(25))
        }
        #expect(try await store.read { try $0.runs(RunQuery()).map(\.id.rawValue) } == ["run_4", "run_3", "run_5"])
        try await store.write { try $0.deleteRule(rule.id) }
        try await store.read { tx throws in
            #expect(try tx.rule(rule.id) == nil)
            #expect(try tx.ruleDefinition(rule.id, version: 1) == nil)
            #expect(try tx.ruleCounter(rule: rule.id, customer: F.customerID("a")) == nil)
            #expect(try tx.ruleFiredCount(rule: rule.id, day: 20_000) == 0)
            #expect(try tx.runs(RunQuery(ruleID: rule.id)).count == 2)  // runs stay on record
        }
    }

    @Test(arguments: Backend.allCases)
    func jobsAreOrderedByDueTimeAndMovedByKey(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try tx.putJob(F.job("date:rul_1:cus_a", due: 30, customer: "a"))
            try tx.putJob(F.job("date:rul_10:cus_a", due: 10))
            try tx.putJob(F.job("date:rul_1:cus_b", due: 10, customer: "b"))
            try tx.putJob(F.job("wait:run_1", due: 20))
        }
        try await store.read { tx throws in
            #expect(try tx.nextJobDue() == F.time(10))
            #expect(try tx.dueJobs(at: F.time(20), limit: 10).map(\.key) == ["date:rul_10:cus_a", "date:rul_1:cus_b", "wait:run_1"])
            #expect(try tx.dueJobs(at: F.time(20), limit: 1).map(\.key) == ["date:rul_10:cus_a"])
            #expect(try tx.job("date:rul_1:cus_a") == F.job("date:rul_1:cus_a", due: 30, customer: "a"))
        }
        // Putting a job with a pending key moves it.
        try await store.write { try $0.putJob(F.job("date:rul_10:cus_a", due: 40)) }
        #expect(try await store.read { try $0.dueJobs(at: F.time(100), limit: 10).map(\.key) } == ["date:rul_1:cus_b", "wait:run_1", "date:rul_1:cus_a", "date:rul_10:cus_a"])
        // A prefix deletes only what it names.
        try await store.write { tx in
            try tx.deleteJobs(keyPrefix: "date:rul_1:")
            try tx.deleteJob("wait:run_1")
            try tx.deleteJob("wait:missing")
        }
        #expect(try await store.read { try $0.dueJobs(at: F.time(100), limit: 10).map(\.key) } == ["date:rul_10:cus_a"])
        try await store.write { try $0.deleteJob("date:rul_10:cus_a") }
        #expect(try await store.read { try $0.nextJobDue() } == nil)
        // A prefix names keys by their bytes: a combining mark or a modifier after it does not hide a key.
        try await store.write { tx in
            for key in ["k:q\u{301}", "k:q日", "k:👍🏽", "k:r"] { try tx.putJob(F.job(key, due: 1)) }
            try tx.deleteJobs(keyPrefix: "k:q")
            try tx.deleteJobs(keyPrefix: "k:👍")
        }
        #expect(try await store.read { try $0.dueJobs(at: F.time(100), limit: 10).map(\.key) } == ["k:r"])
    }

    @Test(arguments: Backend.allCases)
    func aRefusedOutboxUpdateCaughtByTheBodyLeavesTheEntryAsItWas(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let (first, second) = (F.outbox("a1", customer: "a", sequence: 1), F.outbox("a2", customer: "a", sequence: 2))
        let errors = try await store.write { tx -> [RapportError] in
            try tx.insertOutboxEntry(first)
            try tx.insertOutboxEntry(second)
            var errors: [RapportError] = []
            var sameKey = first
            sameKey.idempotencyKey = second.idempotencyKey
            var sameSequence = first
            sameSequence.sequence = 2
            for clash in [sameKey, sameSequence] {
                do { try tx.updateOutboxEntry(clash) } catch let error as RapportError { errors.append(error) }
            }
            return errors
        }
        #expect(errors == [.alreadyExists(entity: "outbox entry", id: "key-a2"), .alreadyExists(entity: "outbox entry", id: "sequence 2")])
        try await store.read { tx throws in
            #expect(try tx.outboxEntry(first.id) == first)
            #expect(try tx.outboxEntry(second.id) == second)
            #expect(try tx.deliverableOutboxEntries(at: F.time(0), limit: 10).map(\.id) == [first.id])
        }
    }

    @Test(arguments: Backend.allCases)
    func outboxDeliversInOrderPerCustomerAndRedeliversExpiredLeases(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try tx.insertOutboxEntry(F.outbox("a1", customer: "a", sequence: 1))
            try tx.insertOutboxEntry(F.outbox("b1", customer: "b", sequence: 2, state: .leased, lease: 50))
            try tx.insertOutboxEntry(F.outbox("a2", customer: "a", sequence: 3))
            try tx.insertOutboxEntry(F.outbox("c1", customer: "c", sequence: 4, available: 30))
            try tx.insertOutboxEntry(F.outbox("w1", customer: "d", sequence: 5, state: .delivered))
            try tx.insertOutboxEntry(F.outbox("d2", customer: "d", sequence: 6))
        }
        await #expect(throws: RapportError.alreadyExists(entity: "outbox entry", id: "obx_a1")) {
            try await store.write { try $0.insertOutboxEntry(F.outbox("a1", customer: "a", sequence: 9)) }
        }
        var sameKey = F.outbox("zz", customer: "a", sequence: 9)
        sameKey.idempotencyKey = "key-a1"
        await #expect(throws: RapportError.alreadyExists(entity: "outbox entry", id: "key-a1")) { try await store.write { [sameKey] in try $0.insertOutboxEntry(sameKey) } }
        func deliverable(_ minutes: Int64) async throws -> [String] {
            try await store.read { try $0.deliverableOutboxEntries(at: F.time(minutes), limit: 10).map(\.id.rawValue) }
        }
        // a2 waits for a1; b1 is leased; c1 is not available yet; d's delivered entry does not hold d2 back.
        #expect(try await deliverable(10) == ["obx_a1", "obx_d2"])
        // On from a sequence, and no more than asked for.
        #expect(try await store.read { try $0.deliverableOutboxEntries(at: F.time(10), after: 1, limit: 10).map(\.id.rawValue) } == ["obx_d2"])
        #expect(try await store.read { try $0.deliverableOutboxEntries(at: F.time(10), after: 0, limit: 1).map(\.id.rawValue) } == ["obx_a1"])
        #expect(try await store.read { try $0.deliverableOutboxEntries(at: F.time(10), after: 6, limit: 10) }.isEmpty)
        #expect(try await deliverable(30) == ["obx_a1", "obx_c1", "obx_d2"])
        #expect(try await deliverable(50) == ["obx_a1", "obx_b1", "obx_c1", "obx_d2"])  // the lease expired
        var delivered = F.outbox("a1", customer: "a", sequence: 1, state: .delivered, updated: 20)
        delivered.attempts = 2
        try await store.write { [delivered] in try $0.updateOutboxEntry(delivered) }
        #expect(try await deliverable(10) == ["obx_a2", "obx_d2"])
        try await store.read { [delivered] tx throws in
            #expect(try tx.outboxEntry(F.outboxID("a1")) == delivered)
            #expect(try tx.outboxEntry(idempotencyKey: "key-a2")?.id == F.outboxID("a2"))
            #expect(try tx.outboxEntries(OutboxQuery(customerID: F.customerID("a"))).map(\.id.rawValue) == ["obx_a1", "obx_a2"])
            #expect(try tx.outboxEntries(OutboxQuery(states: [.delivered])).map(\.id.rawValue) == ["obx_a1", "obx_w1"])
            #expect(try tx.outboxEntries(OutboxQuery(afterSequence: 4, limit: 1)).map(\.id.rawValue) == ["obx_w1"])
            // A customer's open entries (what a withdrawal of consent fails), by state and from a sequence.
            #expect(try tx.outboxEntries(OutboxQuery(customerID: F.customerID("a"), states: [.pending, .leased])).map(\.id.rawValue) == ["obx_a2"])
            #expect(try tx.outboxEntries(OutboxQuery(customerID: F.customerID("a"), states: [.pending], afterSequence: 3)).isEmpty)
            #expect(try tx.outboxEntries(OutboxQuery(customerID: F.customerID("b"), states: [.pending])).isEmpty)
            #expect(try tx.outboxEntries(OutboxQuery(customerID: F.customerID("b"), states: [.leased])).map(\.id.rawValue) == ["obx_b1"])
            #expect(try tx.outboxEntries(OutboxQuery(customerID: F.customerID("d"), states: [.pending, .leased], limit: 1)).map(\.id.rawValue) == ["obx_d2"])
            // The oldest open entry of each customer: a delivered one is not open.
            #expect(try tx.firstOpenOutboxSequence(of: F.customerID("a")) == 3)
            #expect(try tx.firstOpenOutboxSequence(of: F.customerID("b")) == 2)
            #expect(try tx.firstOpenOutboxSequence(of: F.customerID("d")) == 6)
            #expect(try tx.firstOpenOutboxSequence(of: F.customerID("e")) == nil)
        }
        try await store.write { try $0.deleteOutboxEntries(closedBefore: F.time(10)) }
        #expect(try await store.read { try $0.outboxEntries(OutboxQuery()).map(\.id.rawValue) } == ["obx_a1", "obx_b1", "obx_a2", "obx_c1", "obx_d2"])
    }

    @Test(arguments: Backend.allCases)
    func erasingACustomerErasesItsAutomationRecords(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        let a = F.customerID("a")
        try await store.write { tx in
            try tx.insertCustomer(F.customer("a"))
            try tx.insertCustomer(F.customer("b"))
            try tx.insertSegment(F.segment("1"))
            try tx.insertSegment(F.segment("l", key: "list", kind: .list))
            try tx.insertDynamicMembership(SegmentMembership(segmentID: F.segmentID("1"), customerID: a, since: F.time(1)))
            try tx.insertListMembership(ListMembershipRecord(segmentID: F.segmentID("l"), customerID: a, homeCustomerID: a, addedAt: F.time(1)))
            try tx.insertRun(F.run("1", at: 1))
            try tx.insertRun(F.run("2", customer: "b", at: 1))
            try tx.putRuleCounter(RuleCounter(ruleID: F.ruleID("1"), customerID: a, lastFiredAt: F.time(1), firedCount: 1))
            try tx.putJob(F.job("recheck:cus_a", due: 5, customer: "a"))
            try tx.putJob(F.job("housekeeping", due: 5))
            try tx.insertOutboxEntry(F.outbox("a1", customer: "a", sequence: 1))
            try tx.insertOutboxEntry(F.outbox("a2", customer: "a", sequence: 2, state: .delivered))
            try tx.insertOutboxEntry(F.outbox("b1", customer: "b", sequence: 3))
            try tx.deleteCustomer(a)
        }
        try await store.read { tx throws in
            #expect(try tx.memberships(of: a).isEmpty)
            #expect(try tx.segmentIDs(of: a).isEmpty)
            #expect(try tx.segment(F.segmentID("1"))?.memberCount == 0)
            #expect(try tx.segment(F.segmentID("l"))?.memberCount == 0)
            #expect(try tx.runs(RunQuery()).map(\.id.rawValue) == ["run_2"])
            #expect(try tx.ruleCounter(rule: F.ruleID("1"), customer: a) == nil)
            #expect(try tx.dueJobs(at: F.time(10), limit: 10).map(\.key) == ["housekeeping"])
            #expect(try tx.outboxEntries(OutboxQuery()).map(\.id.rawValue) == ["obx_b1"])
        }
    }

    @Test(arguments: Backend.allCases)
    func automationWritesRollBackWithTheTransaction(_ backend: Backend) async throws {
        let store = try backend.makeStore()
        try await store.write { tx in
            try tx.insertSegment(F.segment("1"))
            try tx.insertDynamicMembership(SegmentMembership(segmentID: F.segmentID("1"), customerID: F.customerID("a"), since: F.time(1)))
            try tx.putJob(F.job("a", due: 1))
            try tx.insertOutboxEntry(F.outbox("a1", customer: "a", sequence: 1))
        }
        let before = try await store.read { tx throws in
            (try tx.segments(), try tx.members(of: F.segmentID("1"), after: nil, limit: 10), try tx.dueJobs(at: F.time(100), limit: 10),
             try tx.outboxEntries(OutboxQuery()), try tx.runs(RunQuery()), try tx.rules(), try tx.eventTypeDefinitions())
        }
        await #expect(throws: Abort.self) {
            try await store.write { tx in
                try tx.putEventTypeDefinition(EventTypeDefinition(type: "x"))
                var segment = F.segment("1")
                segment.name = "changed"
                try tx.updateSegment(segment)
                try tx.insertSegment(F.segment("2"))
                try tx.deleteDynamicMembership(segment: F.segmentID("1"), customer: F.customerID("a"))
                try tx.insertDynamicMembership(SegmentMembership(segmentID: F.segmentID("1"), customerID: F.customerID("b"), since: F.time(2)))
                try tx.insertRule(Rule(id: F.ruleID("1"), version: 1, definition: F.ruleDefinition("x"), enabled: true, createdAt: F.time(1), updatedAt: F.time(1)))
                try tx.insertRun(F.run("1", at: 1))
                try tx.putJob(F.job("a", due: 50))
                try tx.putJob(F.job("b", due: 2))
                var leased = F.outbox("a1", customer: "a", sequence: 1, state: .leased, lease: 9)
                leased.attempts = 3
                try tx.updateOutboxEntry(leased)
                try tx.insertOutboxEntry(F.outbox("a2", customer: "a", sequence: 2))
                throw Abort()
            }
        }
        let after = try await store.read { tx throws in
            (try tx.segments(), try tx.members(of: F.segmentID("1"), after: nil, limit: 10), try tx.dueJobs(at: F.time(100), limit: 10),
             try tx.outboxEntries(OutboxQuery()), try tx.runs(RunQuery()), try tx.rules(), try tx.eventTypeDefinitions())
        }
        #expect(after.0 == before.0)
        #expect(after.1 == before.1)
        #expect(after.2 == before.2)
        #expect(after.3 == before.3)
        #expect(after.4 == before.4)
        #expect(after.5 == before.5)
        #expect(after.6 == before.6)
        #expect(try await store.read { try $0.deliverableOutboxEntries(at: F.time(0), limit: 10).map(\.id.rawValue) } == ["obx_a1"])
    }
}
