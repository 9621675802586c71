import Foundation
import Rapport
import RapportCore
import RapportTesting
import Testing

/// The five recipes of the documentation, end to end with a manual clock: what a shop sets up on day one.
@Suite("Recipes")
struct RecipeTests {
    func messages(_ crm: RapportEngine) async throws -> [OutboxMessage] {
        try await crm.outboxEntries(page: PageRequest(size: 1000)).entries.compactMap { entry in
            if case .message(let message) = entry.payload { message } else { nil }
        }
    }

    func grantEmailMarketing(_ crm: RapportEngine, _ email: String) async throws {
        let id = try #require(try await crm.findCustomer(.email(email))).id
        _ = try await crm.recordConsent(ConsentInput(customerID: id, channel: .email, purpose: .marketing, status: .granted, source: "signup"))
    }

    @Test func welcomeNewCustomers() async throws {
        let test = TestRapport()
        _ = try await test.crm.createRule(
            RuleDefinition(
                name: "Welcome", trigger: .event(type: "customer.created"),
                actions: [
                    .addTag("welcomed"),
                    .sendMessage(
                        MessageAction(
                            channel: .email, purpose: .transactional, template: "welcome", subject: "Welcome, {{ customer.given_name ?? \"friend\" }}!",
                            body: "<p>Hello {{ customer.given_name ?? \"there\" }}</p>", html: true)),
                ], limits: RuleLimits(frequency: .oncePerCustomer)))
        // A customer created through the API, and one that ingest creates from a first event.
        let ada = try await test.crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Ada <3"), identities: [.email("ada@example.com")]))
        _ = try await test.crm.ingest([event("e1", "page.viewed", at: test.clock.now(), .email("bob@example.com"))])
        _ = try await test.crm.ingest([event("e2", "page.viewed", at: test.clock.now(), .email("bob@example.com"))])  // not new: no second welcome
        let sent = try await messages(test.crm)
        #expect(sent.map(\.recipient) == ["ada@example.com", "bob@example.com"])
        #expect(sent.map(\.subject) == ["Welcome, Ada <3!", "Welcome, friend!"])
        #expect(sent[0].body == "<p>Hello Ada &lt;3</p>")
        #expect(sent.map(\.html) == [true, true], "the sender is told the body is HTML")
        #expect(try await test.crm.customer(ada.id).profile.tags == ["welcomed"])
    }

    @Test func remindAnAbandonedCartAfterAnHour() async throws {
        let test = TestRapport()
        _ = try await test.crm.defineEventType(EventTypeDefinition(type: "checkout.started", properties: [EventPropertyDefinition(key: "value_minor", type: .int)]))
        let rule = try await test.crm.createRule(
            RuleDefinition(
                name: "Abandoned cart", trigger: .event(type: "checkout.started"),
                wait: RuleWait(duration: .seconds(3600), recheck: "orders_count(since: event.occurred_at) == 0"),
                actions: [
                    .sendMessage(
                        MessageAction(
                            channel: .email, template: "cart-reminder", subject: "You left something behind",
                            data: ["cart_value": "{{ event.properties.value_minor }}"]))
                ],
                limits: RuleLimits(
                    frequency: .oncePerCustomerPer(milliseconds: 86_400_000), requiredConsent: RequiredConsent(channel: .email, purpose: .marketing),
                    retrigger: .restart)))
        for email in ["ada@example.com", "bob@example.com", "cy@example.com"] {
            _ = try await test.crm.createCustomer(NewCustomer(identities: [.email(email)]))
        }
        try await grantEmailMarketing(test.crm, "ada@example.com")
        try await grantEmailMarketing(test.crm, "bob@example.com")
        for email in ["ada@example.com", "bob@example.com", "cy@example.com"] {
            _ = try await test.crm.ingest([event("s-\(email)", "checkout.started", at: test.clock.now(), .email(email), properties: ["value_minor": .int(4999)])])
        }
        // Cy has no consent. Bob orders within the hour. Ada starts checkout again after 20 minutes: the hour restarts.
        try await test.advance(by: .seconds(20 * 60))
        _ = try await test.crm.ingest([event("s2", "checkout.started", at: test.clock.now(), .email("ada@example.com"), properties: ["value_minor": .int(7500)])])
        _ = try await test.crm.ingest([order("b1", at: test.clock.now(), .email("bob@example.com"))])
        try await test.advance(by: .seconds(45 * 60))
        #expect(try await messages(test.crm).isEmpty)  // 65 minutes after the first checkout, 45 after Ada's second
        try await test.advance(by: .seconds(15 * 60))
        let sent = try await messages(test.crm)
        #expect(sent.map(\.recipient) == ["ada@example.com"])
        #expect(sent.first?.data == ["cart_value": "7500"])
        let outcomes = try await test.crm.runs(rule: rule.id, page: PageRequest(size: 100)).runs.map { "\($0.status.rawValue): \($0.reason)" }.sorted()
        let fired = try #require(try await test.crm.runs(rule: rule.id, status: .fired).runs.first)
        #expect(outcomes == [
            "cancelled: replaced by run \(fired.id), triggered again", "fired: ",
            "skipped: the customer does not consent to email for marketing", "skipped: the re-check was false after waiting 1h",
        ].sorted())
    }

    @Test func greetOnTheBirthdayAtNineInTheCustomersTimeZone() async throws {
        let test = TestRapport()  // 2026-01-01T00:00Z
        let ada = try await test.crm.createCustomer(
            NewCustomer(
                profile: CustomerProfile(givenName: "Ada", birthday: LocalDate(year: 1990, month: 3, day: 5), timeZone: "America/New_York"),
                identities: [.email("ada@example.com")]))
        _ = try await test.crm.createRule(
            RuleDefinition(
                name: "Happy birthday", trigger: .date(DateTrigger(field: .birthday, at: LocalTime(hour: 9))),
                actions: [
                    .sendMessage(MessageAction(channel: .email, purpose: .transactional, template: "birthday", subject: "Happy birthday, {{ customer.given_name }}! You are {{ customer.age }} today"))
                ]))
        // 2026-03-05 09:00 in New York is 14:00 UTC (EST, before daylight saving starts on 8 March).
        let nineInNewYork = Timestamp(millisecondsSinceEpoch: 1_772_719_200_000)
        #expect(try await test.crm.nextJobDue() == nineInNewYork)
        try await test.advance(to: nineInNewYork - .milliseconds(1))
        #expect(try await messages(test.crm).isEmpty)
        try await test.advance(to: nineInNewYork)
        #expect(try await messages(test.crm).map(\.subject) == ["Happy birthday, Ada! You are 36 today"])
        // Next year's greeting is planned; moving to Berlin moves it to 09:00 there.
        _ = try await test.crm.updateCustomer(ada.id) { $0.timeZone = "Europe/Berlin" }
        #expect(try await test.crm.nextJobDue() == Timestamp(millisecondsSinceEpoch: 1_804_233_600_000))  // 2027-03-05T08:00Z
    }

    @Test func offerARepurchaseIncentiveThirtyDaysAfterTheLastOrder() async throws {
        let test = TestRapport()
        let quiet = try await test.crm.createSegment(
            .dynamic(key: "repurchase_due", name: "30 days since the last order", expression: "stats.order_count > 0 and time_since(stats.last_order_at) >= 30d"))
        _ = try await test.crm.createRule(
            RuleDefinition(
                name: "Repurchase incentive", trigger: .segmentEntered(quiet.id),
                actions: [.sendMessage(MessageAction(channel: .email, template: "come-back-10", subject: "10% off your next order"))],
                limits: RuleLimits(requiredConsent: RequiredConsent(channel: .email, purpose: .marketing))))
        _ = try await test.crm.ingest([order("a1", at: test.clock.now(), .email("ada@example.com")), order("b1", at: test.clock.now(), .email("bob@example.com"))])
        try await grantEmailMarketing(test.crm, "ada@example.com")
        try await grantEmailMarketing(test.crm, "bob@example.com")
        try await test.advance(by: .seconds(10 * 86_400))
        _ = try await test.crm.ingest([order("b2", at: test.clock.now(), .email("bob@example.com"))])  // Bob orders again on day 10
        try await test.advance(by: .seconds(20 * 86_400) - .milliseconds(1))
        #expect(try await messages(test.crm).isEmpty)
        try await test.advance(by: .milliseconds(1))  // day 30 for Ada
        #expect(try await messages(test.crm).map(\.recipient) == ["ada@example.com"])
        try await test.advance(by: .seconds(10 * 86_400))  // day 40: 30 days after Bob's last order
        #expect(try await messages(test.crm).map(\.recipient) == ["ada@example.com", "bob@example.com"])
        #expect(try await test.crm.segment(quiet.id).memberCount == 2)
    }

    @Test func warnWhenAGoodCustomerHasNotOrderedForNinetyDays() async throws {
        let test = TestRapport()
        let atRisk = try await test.crm.createSegment(
            .dynamic(
                key: "good_customer_gone_quiet", name: "Good customers with no order in 90 days",
                expression: "stats.order_count >= 3 and time_since(stats.last_order_at) > 90d"))
        _ = try await test.crm.createRule(
            RuleDefinition(
                name: "Churn warning", trigger: .segmentEntered(atRisk.id),
                actions: [
                    .setLifecycleStage(.atRisk), .addTag("churn_risk"),
                    .callWebhook(
                        WebhookAction(
                            url: "https://hooks.example.com/churn",
                            payload: ["customer": "customer.id", "orders": "stats.order_count", "spent": "total_spent(\"EUR\")", "last_order": "stats.last_order_at"])),
                ]))
        _ = try await test.crm.ingest([
            order("a1", at: test.clock.now(), .email("ada@example.com"), totalMinor: 5000), order("a2", at: test.clock.now(), .email("ada@example.com"), totalMinor: 5000),
            order("a3", at: test.clock.now(), .email("ada@example.com"), totalMinor: 5000), order("b1", at: test.clock.now(), .email("bob@example.com")),
        ])
        let ada = try #require(try await test.crm.findCustomer(.email("ada@example.com")))
        try await test.advance(by: .seconds(90 * 86_400))
        #expect(try await test.crm.outboxEntries().entries.isEmpty)  // exactly 90 days: not yet
        try await test.advance(by: .milliseconds(1))
        let entries = try await test.crm.outboxEntries().entries
        #expect(entries.count == 1)  // only Ada is a good customer
        guard case .webhook(let url, let body)? = entries.first?.payload else {
            Issue.record("expected a webhook")
            return
        }
        #expect(url == "https://hooks.example.com/churn")
        #expect(body == "{\"customer\":\"\(ada.id.rawValue)\",\"last_order\":\"2026-01-01T00:00:00.000Z\",\"orders\":3,\"spent\":{\"minor_units\":15000,\"currency\":\"EUR\"}}")
        let profile = try await test.crm.customer(ada.id).profile
        #expect(profile.lifecycleStage == .atRisk)
        #expect(profile.tags == ["churn_risk"])
    }
}
