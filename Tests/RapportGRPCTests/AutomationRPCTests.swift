import Foundation
import GRPCCore
import GRPCProtobuf
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf
import Testing

@Suite("Segments, rules, outbox and clock over gRPC")
struct AutomationRPCTests {
    static func dynamicSegment(_ key: String, _ expression: String) -> Rapport_V1_CreateSegmentRequest {
        .with { $0.segment = .with { $0.key = key; $0.name = key; $0.kind = .dynamic; $0.expression = expression } }
    }

    @Test func segmentsAreCreatedListedUpdatedAndGuarded() async throws {
        try await withRapport { c in
            _ = try await c.ingest.ingestEvents(.with { $0.items = [orderItem("1", .email("ada@example.com"), unitPrice: 60_000), orderItem("2", .email("bob@example.com"))] })
            let segment = try await c.segments.createSegment(Self.dynamicSegment("big", "total_spent(\"EUR\") >= 500 EUR"))
            #expect(segment.state == .ready)
            #expect(segment.memberCount == 1)
            #expect(segment.etag == "\"1\"")
            let members = try await c.segments.listSegmentMembers(.with { $0.segmentID = segment.id })
            #expect(members.totalSize == 1)
            let ada = try await c.customers.findCustomer(.with { $0.identity = .email("ada@example.com") })
            #expect(members.members.map(\.customerID) == [ada.id])
            #expect(try await c.segments.listCustomerSegments(.with { $0.customerID = ada.id }).memberships.map(\.segmentID) == [segment.id])

            // An expression error names the field and where in the text.
            let error = await expectRPCError(.invalidArgument) {
                try await c.segments.createSegment(Self.dynamicSegment("bad", "stats.order_count >\n  \"x\""))
            }
            #expect(violationFields(error) == ["segment.expression"])
            #expect(error?.message.contains("line 1, column 1: cannot compare int with string") == true)

            // Updates check the etag; a stale one is ABORTED.
            var changed = segment
            changed.name = "Big spenders"
            changed.etag = "\"9\""
            await expectRPCError(.aborted) {
                try await c.segments.updateSegment(.with { $0.segment = changed; $0.updateMask = .with { $0.paths = ["name"] } })
            }
            changed.etag = segment.etag
            let renamed = try await c.segments.updateSegment(.with { $0.segment = changed; $0.updateMask = .with { $0.paths = ["name"] } })
            #expect(renamed.name == "Big spenders")
            #expect(renamed.etag == "\"2\"")
            await expectRPCError(.invalidArgument) {
                try await c.segments.updateSegment(.with { $0.segment = changed; $0.updateMask = .with { $0.paths = ["key"] } })
            }

            // A segment another one names cannot be deleted.
            _ = try await c.segments.createSegment(Self.dynamicSegment("big_too", "in_segment(\"big\")"))
            let refused = await expectRPCError(.failedPrecondition) { try await c.segments.deleteSegment(.with { $0.id = segment.id }) }
            #expect(refused?.message == "segment 'big' is used by segment big_too; change or delete them first")
            await expectRPCError(.alreadyExists) { try await c.segments.createSegment(Self.dynamicSegment("big", "true")) }
            await expectRPCError(.notFound) { try await c.segments.getSegment(.with { $0.id = "seg_missing" }) }
        }
    }

    @Test func previewsAndExplanationsNeedTheRightToSeePersonalData() async throws {
        try await withRapport { c in
            _ = try await c.customers.createCustomer(.with { $0.customer = adaProto })
            let full = try await c.segments.previewSegment(.with { $0.expression = "has_tag(\"vip\")"; $0.sampleSize = 5 })
            #expect(full.count == 1)
            #expect(printed(full).contains(adaEmail))
            // An analyst's preview could test a masked field one guess at a time: refused, like an explanation.
            await expectRPCError(.permissionDenied) {
                try await c.as(.analyst) {
                    try await c.segments.previewSegment(.with { $0.expression = "customer.emails contains \"\(adaEmail)\"" })
                }
            }
            await expectRPCError(.permissionDenied) {
                try await c.as(.analyst) { try await c.segments.explainSegment(.with { $0.segmentID = "seg_x"; $0.customerID = "cus_x" }) }
            }
        }
    }

    static var cartRule: Rapport_V1_Rule {
        .with {
            $0.name = "Abandoned cart"
            $0.trigger = .with { $0.event = .with { $0.eventType = "checkout.started" } }
            $0.wait = .with {
                $0.duration = Google_Protobuf_Duration(seconds: 3600)
                $0.recheck = "orders_count(since: event.occurred_at) == 0"
            }
            $0.actions = [
                .with { $0.addTag = "cart" },
                .with {
                    $0.sendMessage = .with {
                        $0.channel = .email
                        $0.purpose = .transactional
                        $0.template = "cart"
                        $0.subject = "Hi {{ customer.given_name ?? \"there\" }}"
                        $0.data = ["first": "{{ customer.given_name }}"]
                    }
                },
                .with { $0.callWebhook = .with { $0.url = "https://example.com/hook"; $0.payload = ["orders": "stats.order_count"] } },
                .with { $0.setLifecycleStage = .prospect },
            ]
            $0.limits = .with {
                $0.oncePerCustomerPer = Google_Protobuf_Duration(seconds: 86_400)
                $0.dailyCap = 100
                $0.quietHours = .with { $0.start = "12:00"; $0.end = "13:00" }
                $0.retrigger = .restart
            }
            $0.priority = 5
        }
    }

    @Test(.timeLimit(.minutes(1))) func aRuleRoundTripsAndRunsThroughTheClockAndTheOutbox() async throws {
        try await withRapport { c in
            let created = try await c.rules.createRule(.with { $0.rule = Self.cartRule; $0.requestID = "create-cart" })
            var expected = Self.cartRule
            expected.id = created.id
            expected.enabled = true
            expected.version = 1
            expected.createTime = created.createTime
            expected.updateTime = created.updateTime
            expected.etag = "\"1\""
            #expect(created == expected)
            #expect(try await c.rules.getRule(.with { $0.id = created.id }) == created)
            // The same request id returns the first answer.
            #expect(try await c.rules.createRule(.with { $0.rule = Self.cartRule; $0.requestID = "create-cart" }).id == created.id)
            #expect(try await c.rules.listRules(.init()).rules.count == 1)

            _ = try await c.customers.createCustomer(.with { $0.customer = .with { $0.givenName = "Ada"; $0.identities = [.email("ada@example.com")] } })
            _ = try await c.ingest.ingestEvents(.with { $0.items = [eventItem("c1", "checkout.started", .email("ada@example.com"))] })
            let waiting = try await c.rules.listRuleRuns(.with { $0.ruleID = created.id }).runs
            #expect(waiting.map(\.status) == [.waiting])
            #expect(waiting.first?.waitingFor == "wait")

            let time = try await c.clockService.getTime(.init())
            #expect(time.manual)
            #expect(time.nextJobTime == at(3600))
            let advanced = try await c.clockService.advanceClock(.with { $0.by = Google_Protobuf_Duration(seconds: 3600) })
            #expect(advanced.jobsRun == 1)
            let fired = try await c.rules.getRuleRun(.with { $0.id = waiting[0].id })
            #expect(fired.status == .fired)
            #expect(fired.actions.map(\.status) == ["applied", "applied", "applied", "applied"])

            // A worker streams the outbox: Ada's webhook comes once her message is acknowledged; it fails for good.
            try await c.outbox.streamOutbox(.with { $0.consumer = "worker"; $0.batchSize = 10 }) { response in
                var entries = response.messages.makeAsyncIterator()
                let message = try #require(try await entries.next())
                #expect(message.message.subject == "Hi Ada")
                #expect(message.message.recipient == "ada@example.com")
                #expect(message.message.data == ["first": "Ada"])
                #expect(message.state == .leased && message.leaseOwner == "worker" && message.idempotencyKey.hasPrefix(fired.id))
                _ = try await c.outbox.acknowledgeOutbox(.with { $0.ids = [message.id] })
                let webhook = try #require(try await entries.next())
                #expect(webhook.webhook.url == "https://example.com/hook")
                #expect(webhook.webhook.body == "{\"orders\":0}")
                let failed = try await c.outbox.failOutboxEntry(.with { $0.id = webhook.id; $0.error = "410 Gone" })
                #expect(failed.state == .failed)
            }
            let delivered = try await c.outbox.listOutbox(.with { $0.states = [.delivered] }).entries
            #expect(delivered.count == 1)
            await expectRPCError(.failedPrecondition) {
                try await c.outbox.failOutboxEntry(.with { $0.id = delivered[0].id; $0.error = "again" })
            }
        }
    }

    @Test func invalidRulesNameEveryFieldWithPositions() async throws {
        try await withRapport { c in
            var rule = Self.cartRule
            rule.condition = "stats.order_count >"
            rule.actions[1].sendMessage.subject = "Hi {{ customer.nme }}"
            rule.limits.quietHours.start = "25:00"
            let validation = try await c.rules.validateRule(.with { $0.rule = rule })
            #expect(validation.issues.map(\.field) == ["rule.limits.quiet_hours.start"])  // the wire form is checked first
            rule.limits.quietHours.start = "22:00"
            let issues = try await c.rules.validateRule(.with { $0.rule = rule }).issues
            #expect(issues.map(\.field).sorted() == ["rule.actions[1].send_message.subject", "rule.condition"])
            let subject = try #require(issues.first { $0.field == "rule.actions[1].send_message.subject" })
            #expect(subject.line == 1)
            #expect(subject.column == 7)
            #expect(subject.excerpt.hasSuffix("^^^^^^^^^^^^"))
            let error = await expectRPCError(.invalidArgument) { try await c.rules.createRule(.with { $0.rule = rule }) }
            #expect(violationFields(error).sorted() == ["rule.actions[1].send_message.subject", "rule.condition"])
            #expect(try await c.rules.listRules(.init()).rules.isEmpty)
            await expectRPCError(.invalidArgument) { try await c.rules.createRule(.with { $0.rule = .with { $0.name = "No trigger" } }) }
            // A schedule without a frequency, a date trigger without its date: refused, not guessed.
            let noFrequency = await expectRPCError(.invalidArgument) {
                try await c.rules.createRule(
                    .with { $0.rule = .with { $0.name = "Digest"; $0.trigger.schedule = .with { $0.at = "08:00" }; $0.actions = [.with { $0.addTag = "x" }] } })
            }
            #expect(violationFields(noFrequency) == ["rule.trigger.schedule"])
            let noDate = await expectRPCError(.invalidArgument) {
                try await c.rules.createRule(
                    .with { $0.rule = .with { $0.name = "Reminder"; $0.trigger.date = .with { $0.offsetDays = 3 }; $0.actions = [.with { $0.addTag = "x" }] } })
            }
            #expect(violationFields(noDate) == ["rule.trigger.date"])
            // Marker booleans set to false (a client's `once_per_customer=False`) are refused, not read as true.
            let falseMarkers: [(String, Rapport_V1_Rule)] = [
                ("rule.trigger.schedule.daily", .with { $0.trigger.schedule = .with { $0.daily = false; $0.at = "08:00" } }),
                ("rule.trigger.date.birthday", .with { $0.trigger.date = .with { $0.birthday = false } }),
                ("rule.trigger.date.created", .with { $0.trigger.date = .with { $0.created = false } }),
                ("rule.limits.once_per_customer", .with { $0.trigger.event = .with { $0.eventType = "page.viewed" }; $0.limits.oncePerCustomer = false }),
                ("rule.limits.unlimited", .with { $0.trigger.event = .with { $0.eventType = "page.viewed" }; $0.limits.unlimited = false }),
            ]
            for (field, var rule) in falseMarkers {
                rule.name = "Marker"
                rule.actions = [.with { $0.addTag = "x" }]
                let error = await expectRPCError(.invalidArgument) { try await c.rules.createRule(.with { $0.rule = rule }) }
                #expect(violationFields(error) == [field])
                #expect(error?.message.contains("must be true when set") == true)
            }
            #expect(try await c.rules.listRules(.init()).rules.isEmpty)
        }
    }

    @Test func updatesWithAMaskMakeANewVersionAndDisablingCancelsWaitingRuns() async throws {
        try await withRapport { c in
            let created = try await c.rules.createRule(.with { $0.rule = Self.cartRule })
            _ = try await c.ingest.ingestEvents(.with { $0.items = [eventItem("c1", "checkout.started", .email("ada@example.com"))] })
            var change = Rapport_V1_Rule.with { $0.id = created.id; $0.name = "Renamed"; $0.etag = created.etag }
            let updated = try await c.rules.updateRule(.with { $0.rule = change; $0.updateMask = .with { $0.paths = ["name"] } })
            #expect(updated.name == "Renamed")
            #expect(updated.version == 2)
            #expect(updated.actions == created.actions)
            // The etag of version 1 is stale now.
            await expectRPCError(.aborted) { try await c.rules.updateRule(.with { $0.rule = change; $0.updateMask = .with { $0.paths = ["name"] } }) }
            // An etag that is not one is named where the request carries it.
            change.etag = "garbage"
            let malformed = await expectRPCError(.invalidArgument) {
                try await c.rules.updateRule(.with { $0.rule = change; $0.updateMask = .with { $0.paths = ["name"] } })
            }
            #expect(violationFields(malformed) == ["rule.etag"])
            // Without an etag, a masked update changes only its fields of the current version.
            let prioritize = Rapport_V1_UpdateRuleRequest.with {
                $0.rule = .with { $0.id = created.id; $0.priority = 7 }
                $0.updateMask = .with { $0.paths = ["priority"] }
                $0.requestID = "prioritize-1"
            }
            let prioritized = try await c.rules.updateRule(prioritize)
            #expect(prioritized.name == "Renamed")
            #expect(prioritized.priority == 7)
            #expect(prioritized.version == 3)
            // A retry of that request after another change returns its stored answer.
            let renamedAgain = try await c.rules.updateRule(.with { $0.rule = .with { $0.id = created.id; $0.name = "Renamed again" }; $0.updateMask = .with { $0.paths = ["name"] } })
            #expect(renamedAgain.version == 4 && renamedAgain.priority == 7)
            #expect(try await c.rules.updateRule(prioritize) == prioritized)
            let disabled = try await c.rules.disableRule(.with { $0.id = created.id })
            #expect(!disabled.enabled)
            let runs = try await c.rules.listRuleRuns(.with { $0.ruleID = created.id }).runs
            #expect(runs.map(\.status) == [.cancelled])
            #expect(runs.first?.reason == "the rule was disabled")
        }
    }

    @Test func durationsAndTimestampsOutOfRangeAreInvalidArguments() async throws {
        try await withRapport { c in
            let lease = await expectRPCError(.invalidArgument) {
                try await c.outbox.leaseOutbox(.with { $0.consumer = "w"; $0.leaseDuration = .with { $0.seconds = 10_000_000_000_000_000 } })
            }
            #expect(violationFields(lease) == ["lease_duration"])
            let retry = await expectRPCError(.invalidArgument) {
                try await c.outbox.failOutboxEntry(.with { $0.id = "obx_1"; $0.retryAfter = .with { $0.seconds = -10_000_000_000_000_000 } })
            }
            #expect(violationFields(retry) == ["retry_after"])
            var rule = Self.cartRule
            rule.wait.duration = .with { $0.seconds = 1; $0.nanos = -5 }
            let wait = await expectRPCError(.invalidArgument) { try await c.rules.createRule(.with { $0.rule = rule }) }
            #expect(violationFields(wait).contains("rule.wait.duration"))
            var far = eventItem("far", "page.viewed", .email("ada@example.com"))
            far.event.occurTime = .with { $0.seconds = 100_000_000_000_000_000 }
            let response = try await c.ingest.ingestEvents(.with { $0.items = [far] })
            #expect(response.results[0].violations.map(\.field) == ["occur_time"])
        }
    }

    @Test func explanationsAndEventTypes() async throws {
        try await withRapport { c in
            let declared = try await c.rules.defineEventType(
                .with { $0.eventType = .with { $0.type = "cart.updated"; $0.properties = [.with { $0.key = "value_minor"; $0.type = .int }] } })
            #expect(declared.properties.map(\.key) == ["value_minor"])
            await expectRPCError(.invalidArgument) {
                try await c.rules.defineEventType(.with { $0.eventType = .with { $0.type = "cart.updated"; $0.properties = [.with { $0.key = "value_minor"; $0.type = .string }] } })
            }
            #expect(try await c.rules.listEventTypes(.init()).eventTypes.map(\.type) == ["cart.updated"])
            let ada = try await c.customers.createCustomer(.with { $0.customer = .with { $0.tags = ["vip"]; $0.identities = [.email("ada@example.com")] } })
            let explanation = try await c.rules.explainExpression(.with {
                $0.expression = "has_tag(\"vip\") and event.properties.value_minor > 100"
                $0.customerID = ada.id
                $0.event = .with {
                    $0.id = "x"
                    $0.type = "cart.updated"
                    $0.occurTime = at(0)
                    $0.identities = [.email("ada@example.com")]
                    $0.properties = ["value_minor": .with { $0.intValue = 250 }]
                }
            })
            #expect(explanation.value == "true")
            #expect(explanation.root.children.map(\.value) == ["true", "true"])
            #expect(explanation.root.children[1].start == 19)
            #expect(explanation.text.hasPrefix("has_tag(\"vip\") and event.properties.value_minor > 100 → true"))
        }
    }

    @Test(.timeLimit(.minutes(1))) func theChangeFeedNamesSegmentsAndTheClockIsRefusedWithoutAManualClock() async throws {
        try await withRapport { c in
            let segment = try await c.segments.createSegment(.with { $0.segment = .with { $0.key = "list"; $0.name = "List"; $0.kind = .list } })
            let ada = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("ada@example.com")] } })
            let added = try await c.segments.addToList(.with { $0.segmentID = segment.id; $0.customerIds = [ada.id] })
            #expect(added.changedCustomerIds == [ada.id])
            try await c.changes.watchChanges(.init()) { response in
                let changes = try await response.messages.first(2)
                #expect(changes.last?.kind == .segmentEntered)
                #expect(changes.last?.segmentID == segment.id)
            }
            await expectRPCError(.invalidArgument) { try await c.clockService.advanceClock(.with { $0.by = Google_Protobuf_Duration(seconds: -1) }) }
            // Past the year 9999: refused, naming the field sent, and the clock stays; an earlier instant changes nothing.
            let before = try await c.clockService.getTime(.init()).now
            let tooFar = await expectRPCError(.invalidArgument) {
                try await c.clockService.advanceClock(.with { $0.by = Google_Protobuf_Duration(seconds: 9_000 * 366 * 86_400) })
            }
            #expect(violationFields(tooFar) == ["by"])
            #expect(tooFar?.message.contains("the latest time Rapport keeps") == true)
            #expect(try await c.clockService.getTime(.init()).now == before)
            let backwards = try await c.clockService.advanceClock(.with { $0.to = Google_Protobuf_Timestamp(seconds: before.seconds - 60) })
            #expect(backwards.now == before)
            await expectRPCError(.permissionDenied) { try await c.as(.marketing) { try await c.clockService.advanceClock(.with { $0.by = Google_Protobuf_Duration(seconds: 1) }) } }
        }
    }
}
