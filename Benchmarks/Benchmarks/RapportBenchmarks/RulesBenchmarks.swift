import Benchmark
import Foundation
import Rapport
import RapportCore
import RapportMemory
import RapportRules

// Rules and segments: one segment evaluated over a million in-memory profiles against a hand-written loop; ingest
// with 20 active rules and 10 segments against ingest with none; and the latency from an ingested event to the
// segment membership it changes.

enum SegmentWorkload {
    static let profileCount = 1_000_000
    static let expression = #"stats.order_count >= 3 and has_tag("newsletter") and customer.lifecycle_stage == "active" and stats.last_order_at > now - 90d"#

    /// A million customers with profiles and running aggregates, as segment evaluation reads them.
    static func contexts() -> [EvaluationContext] {
        var random = SeededGenerator(seed: 1_000_000)
        let eur = try! CurrencyCode("EUR")
        let stages: [LifecycleStage?] = [nil, .prospect, .newCustomer, .active, .active, .loyal, .atRisk]
        let tagSets = [["newsletter"], ["newsletter", "vip"], [], ["vip"], ["newsletter", "sale"], ["b2b"]]
        return (0..<profileCount).map { index in
            let id = CustomerID(uncheckedRawValue: "cus_\(index)")
            let orders = Int64.random(in: 0...8, using: &random)
            let lastOrder = Workload.now - .seconds(Int64.random(in: 0...200, using: &random) * 86_400)
            let profile = CustomerProfile(
                givenName: "Given\(index % 1000)", familyName: "Family\(index % 777)", locale: "en-GB",
                tags: tagSets[Int.random(in: 0..<tagSets.count, using: &random)], lifecycleStage: stages[Int.random(in: 0..<stages.count, using: &random)])
            let record = CustomerRecord(
                id: id, profile: profile, fieldTimes: [:], state: .active, createdAt: Workload.now - .seconds(400 * 86_400), updatedAt: Workload.now, version: 1)
            let stats = CustomerStats(
                customerID: id, orderCount: orders, spent: orders > 0 ? [CurrencyTotal(currency: eur, totalMinor: orders * 4999, orderCount: orders)] : [],
                firstOrderAt: orders > 0 ? lastOrder - .seconds(86_400 * orders) : nil, lastOrderAt: orders > 0 ? lastOrder : nil, eventCount: orders * 3)
            return EvaluationContext(customer: record, stats: stats, now: Workload.now)
        }
    }

    /// The same predicate, written by hand over the same values (read in place, in the same order, stopping at
    /// the first false part, as the compiled `and` does).
    @inline(never)
    static func handWritten(_ contexts: [EvaluationContext]) -> Int {
        let cutoff = (Workload.now - .seconds(90 * 86_400)).millisecondsSinceEpoch
        var count = 0
        for index in contexts.indices {
            guard contexts[index].stats.orderCount >= 3, contexts[index].customer.profile.tags.contains("newsletter"),
                contexts[index].customer.profile.lifecycleStage == .active, let last = contexts[index].stats.lastOrderAt,
                last.millisecondsSinceEpoch > cutoff
            else { continue }
            count += 1
        }
        return count
    }

    @inline(never)
    static func compiled(_ predicate: CompiledExpression, _ contexts: [EvaluationContext]) -> Int {
        predicate.count(in: contexts)
    }
}

/// What the rules benchmarks keep between setup, iterations and teardown.
final class RulesState: @unchecked Sendable {
    var contexts: [EvaluationContext] = []
    var predicate: CompiledExpression?
    var ratios: [Double] = []
    var compiledRates: [Double] = []
    var loopRates: [Double] = []
    var withRules: [Double] = []
    var without: [Double] = []
    var latencies: [Double] = []
    var engine: RapportEngine?
    var next = 0
    var segment: SegmentID?
}

/// Ten segments and twenty rules a shop could run, over the ingest workload's traffic.
enum AutomationSetup {
    static let segments: [SegmentInput] = [
        .dynamic(key: "engaged", name: "Engaged", expression: "stats.event_count >= 10"),
        .dynamic(key: "power_users", name: "Power users", expression: "stats.event_count >= 50"),
        .dynamic(key: "vip", name: "VIP", expression: #"has_tag("vip")"#),
        .dynamic(key: "recent_carts", name: "Added to cart this week", expression: #"events_count("cart.added", within: 7d) > 0"#),
        .dynamic(key: "active_30d", name: "Seen in 30 days", expression: "stats.last_seen_at > now - 30d"),
        .dynamic(key: "browsers", name: "Browsers who never bought", expression: "stats.order_count == 0 and stats.event_count >= 5"),
        .dynamic(key: "prospects", name: "Prospects", expression: #"customer.lifecycle_stage == "prospect""#),
        .dynamic(key: "engaged_not_power", name: "Engaged, not power users", expression: #"in_segment("engaged") and not in_segment("power_users")"#),
        .dynamic(key: "viewers", name: "Product viewers", expression: #"has_tag("viewer")"#),
        .dynamic(key: "checkout_no_order", name: "Checked out without ordering today", expression: #"events_count("checkout.started", within: 1d) > 0 and orders_count(within: 1d) == 0"#),
    ]

    static func rules(segments: [String: SegmentID]) -> [RuleDefinition] {
        var rules: [RuleDefinition] = [
            RuleDefinition(name: "Tag viewers", trigger: .event(type: "product.viewed"), actions: [.addTag("viewer")], limits: RuleLimits(frequency: .oncePerCustomer)),
            RuleDefinition(
                name: "Cart reminder", trigger: .event(type: "cart.added"), wait: RuleWait(duration: .seconds(3600), recheck: "orders_count(since: event.occurred_at) == 0"),
                actions: [.sendMessage(MessageAction(channel: .email, purpose: .transactional, template: "cart", subject: "Your cart, {{ customer.given_name ?? \"friend\" }}"))]),
            RuleDefinition(
                name: "Checkout follow-up", trigger: .event(type: "checkout.started"), condition: "stats.order_count == 0",
                actions: [.emitEvent(type: "checkout.followup", properties: ["sku": "event.properties.sku"])], limits: RuleLimits(frequency: .oncePerCustomerPer(milliseconds: 86_400_000))),
            RuleDefinition(
                name: "Best seller view", trigger: .event(type: "product.viewed", filter: #"event.properties.sku == "SKU-1""#), actions: [.addTag("best_seller_fan")]),
            RuleDefinition(name: "Prospect", trigger: .event(type: "page.viewed", filter: "stats.event_count == 1"), actions: [.setLifecycleStage(.prospect)]),
            RuleDefinition(name: "Engaged", trigger: .segmentEntered(segments["engaged"]!), actions: [.setLifecycleStage(.active)]),
            RuleDefinition(name: "Power", trigger: .segmentEntered(segments["power_users"]!), actions: [.addTag("power")]),
            RuleDefinition(name: "Lapsed", trigger: .segmentExited(segments["active_30d"]!), actions: [.addTag("lapsed")]),
            RuleDefinition(
                name: "Browser nudge", trigger: .segmentEntered(segments["browsers"]!),
                actions: [.callWebhook(WebhookAction(url: "https://hooks.example.com/browser", payload: ["customer": "customer.id", "events": "stats.event_count"]))]),
            RuleDefinition(name: "Followup tag", trigger: .event(type: "checkout.followup"), actions: [.addTag("followed_up")], limits: RuleLimits(frequency: .oncePerCustomer)),
        ]
        // Ten more rules on the same events whose filters rarely hold, as most rules of a real shop.
        for index in 0..<10 {
            let type = Workload.eventTypes[index % Workload.eventTypes.count]
            rules.append(
                RuleDefinition(
                    name: "Campaign \(index)", trigger: .event(type: type, filter: "event.properties.sku == \"SKU-\(400 + index)\" and stats.event_count > 3"),
                    actions: [.addTag("campaign_\(index)")], limits: RuleLimits(frequency: .oncePerCustomer)))
        }
        return rules
    }

    /// An engine with the segments and rules, and the event types the rules read declared.
    static func engine() async throws -> RapportEngine {
        let engine = makeEngine(MemoryStore())
        for type in Workload.eventTypes {
            _ = try await engine.defineEventType(EventTypeDefinition(type: type, properties: [EventPropertyDefinition(key: "sku", type: .string)]))
        }
        _ = try await engine.defineEventType(EventTypeDefinition(type: "checkout.followup", properties: [EventPropertyDefinition(key: "sku", type: .string)]))
        var ids: [String: SegmentID] = [:]
        for segment in segments { ids[segment.key] = try await engine.createSegment(segment).id }
        for rule in rules(segments: ids) { _ = try await engine.createRule(rule) }
        return engine
    }
}

func registerRulesBenchmarks() {
    // MARK: One segment over a million profiles, against a hand-written loop

    let segmentState = RulesState()
    Benchmark(
        "Segment/1M-profiles",
        configuration: .init(metrics: [.wallClock, RapportMetric.itemsPerSecond], warmupIterations: 1, maxDuration: .seconds(30), maxIterations: 10)
    ) { benchmark in
        let contexts = segmentState.contexts
        let predicate = segmentState.predicate!
        let clock = ContinuousClock()
        benchmark.startMeasurement()
        let start = clock.now
        let matched = SegmentWorkload.compiled(predicate, contexts)
        let compiledTime = start.duration(to: clock.now)
        benchmark.stopMeasurement()
        let loopStart = clock.now
        let expected = SegmentWorkload.handWritten(contexts)
        let loopTime = loopStart.duration(to: clock.now)
        guard matched == expected else { throw BenchmarkFailure("the compiled segment matched \(matched), the loop \(expected)") }
        let compiledRate = Double(contexts.count) / compiledTime.seconds
        let loopRate = Double(contexts.count) / loopTime.seconds
        benchmark.measurement(RapportMetric.itemsPerSecond, Int(compiledRate))
        if benchmark.currentIteration > 0 {
            segmentState.compiledRates.append(compiledRate)
            segmentState.loopRates.append(loopRate)
            segmentState.ratios.append(compiledRate / loopRate)
        }
    } setup: {
        segmentState.contexts = SegmentWorkload.contexts()
        segmentState.predicate = try CompiledExpression(SegmentWorkload.expression, schema: ExpressionSchema(), scope: .customer)
    } teardown: {
        let ratios = segmentState.ratios.sorted()
        guard !ratios.isEmpty else { return }
        let compiled = percentile(segmentState.compiledRates.sorted(), 50)
        let loop = percentile(segmentState.loopRates.sorted(), 50)
        report(
            "Segment/1M-profiles: compiled \(formatRate(compiled)) profiles/s (\(fixed(1e9 / compiled, 1)) ns each); hand-written loop \(formatRate(loop))/s "
                + "(\(fixed(1e9 / loop, 1)) ns each), medians of \(ratios.count) runs")
        let ratio = percentile(ratios, 50)
        report("ratio segment/hand-written-loop = \(fixed(ratio, 3)) (min \(fixed(ratios.first!, 3)), max \(fixed(ratios.last!, 3)); goal ≥ 0.25: \(ratio >= 0.25 ? "met" : "MISSED"))")
        segmentState.contexts = []
    }

    // MARK: Ingest with 20 rules and 10 segments, against ingest with none

    let ingestState = RulesState()
    Benchmark(
        "Ingest/memory/20-rules-10-segments",
        configuration: .init(metrics: [.wallClock, RapportMetric.itemsPerSecond], warmupIterations: 1, maxDuration: .seconds(60), maxIterations: 6)
    ) { benchmark in
        let batches = IngestWorkload.batches
        let clock = ContinuousClock()
        // The two runs alternate within an iteration, so both see the same machine.
        let plain = makeEngine(MemoryStore())
        let plainStart = clock.now
        for batch in batches { _ = try await ingestChecked(plain, batch) }
        let plainTime = plainStart.duration(to: clock.now)

        let automated = try await AutomationSetup.engine()
        benchmark.startMeasurement()
        let start = clock.now
        for batch in batches { _ = try await ingestChecked(automated, batch) }
        let automatedTime = start.duration(to: clock.now)
        benchmark.stopMeasurement()
        let count = Double(IngestWorkload.eventCount)
        benchmark.measurement(RapportMetric.itemsPerSecond, Int(count / automatedTime.seconds))
        if benchmark.currentIteration > 0 {
            ingestState.withRules.append(count / automatedTime.seconds)
            ingestState.without.append(count / plainTime.seconds)
        }
        let runs = try await automated.runs(page: PageRequest(size: 1)).runs
        guard !runs.isEmpty else { throw BenchmarkFailure("no rule ran") }
    } setup: {
        _ = IngestWorkload.batches
    } teardown: {
        guard !ingestState.withRules.isEmpty else { return }
        let with = percentile(ingestState.withRules.sorted(), 50)
        let without = percentile(ingestState.without.sorted(), 50)
        let ratios = zip(ingestState.withRules, ingestState.without).map { $0 / $1 }.sorted()
        report("Ingest/memory with 20 rules and 10 segments: \(formatRate(with)) events/s; without: \(formatRate(without)) events/s (medians of \(ratios.count) runs)")
        let ratio = percentile(ratios, 50)
        report("ratio ingest-with-rules/ingest-without = \(fixed(ratio, 3)) (min \(fixed(ratios.first!, 3)), max \(fixed(ratios.last!, 3)); goal ≥ 0.60: \(ratio >= 0.60 ? "met" : "MISSED"))")
    }

    // MARK: From an ingested event to the segment membership it changes

    let latencyState = RulesState()
    Benchmark(
        "Segment/entry-latency",
        configuration: .init(
            metrics: [.wallClock, RapportMetric.latencyMicroseconds], timeUnits: .microseconds, warmupIterations: 100, maxDuration: .seconds(10),
            maxIterations: 20_000)
    ) { benchmark in
        let engine = latencyState.engine!
        let index = latencyState.next
        latencyState.next += 1
        // The customer's third event takes them into the segment, inside the ingest's transaction.
        let item = IngestItem.event(
            EventInput(id: "third-\(index)", type: "page.viewed", occurredAt: Workload.now, identities: [.email("member\(index)@example.com")]))
        let clock = ContinuousClock()
        benchmark.startMeasurement()
        let start = clock.now
        _ = try await engine.ingest([item])
        let elapsed = start.duration(to: clock.now)
        benchmark.stopMeasurement()
        latencyState.latencies.append(elapsed.microseconds)
        benchmark.measurement(RapportMetric.latencyMicroseconds, Int(elapsed.microseconds))
    } setup: {
        let engine = try await AutomationSetup.engine()
        let segment = try await engine.createSegment(.dynamic(key: "three_events", name: "Three events", expression: "stats.event_count >= 3"))
        // 25,000 customers with two events each: each third event is an entry.
        var items: [IngestItem] = []
        for index in 0..<25_000 {
            for step in 0..<2 {
                items.append(.event(EventInput(id: "m\(index)-\(step)", type: "page.viewed", occurredAt: Workload.now - .seconds(60), identities: [.email("member\(index)@example.com")])))
            }
        }
        for batch in Workload.batches(items, size: 5_000) { _ = try await ingestChecked(engine, batch) }
        latencyState.engine = engine
        latencyState.segment = segment.id
    } teardown: {
        guard let engine = latencyState.engine, let segment = latencyState.segment else { return }
        let entered = try await engine.segment(segment).memberCount
        let measured = latencyState.next
        let sorted = latencyState.latencies.sorted()
        report(
            "Segment/entry-latency: ingest of one event to committed membership: p50 \(fixed(percentile(sorted, 50), 1)) µs, p99 \(fixed(percentile(sorted, 99), 1)) µs "
                + "over \(sorted.count) entries (members after the run: \(entered), events: \(measured); the membership changes in the ingest's own transaction)")
        report("segment entry p99 = \(fixed(percentile(sorted, 99) / 1000, 3)) ms (goal ≤ 1 ms in-process: \(percentile(sorted, 99) <= 1000 ? "met" : "MISSED"))")
        guard entered == Int64(measured) else { throw BenchmarkFailure("\(measured) third events made \(entered) members") }
    }
}
