import Foundation
import RapportCore
import RapportRules
import Testing

@Suite("Evaluation")
struct EvaluationTests {
    static let ada = customer(
        tags: ["eu", "vip"], stage: .active, birthday: LocalDate(year: 1990, month: 4, day: 17),
        attributes: ["shoe_size": .decimal(Decimal(string: "42.5")!), "vip": .bool(true), "points": .int(120), "sizes": .stringList(["M", "L"])])
    static let orders = [
        order("1", at: at(days: -200), minor: 10_000), order("2", at: at(days: -40), minor: 2_500), order("3", at: at(days: -10), minor: 5_000),
        order("4", at: at(days: -5), minor: 7_000, currency: usd), order("5", at: at(days: -3), minor: 99_999, status: .cancelled),
    ]
    static let events = [
        event("e1", "product.viewed", at: at(days: -2), ["sku": .string("SKU-1"), "price": .decimal(19.99)]),
        event("e2", "product.viewed", at: at(days: -1), ["sku": .string("SKU-2"), "price": .decimal(5)]),
        event("e3", "cart.updated", at: at(days: -20), ["sku": .string("SKU-1"), "value_minor": .int(1999)]),
        event("e4", "page.viewed", at: at(days: -1), ["sku": .string("not an int")]),
    ]
    static var full: EvaluationContext { context(ada, orders: orders, events: events) }

    @Test(arguments: [
        // Profile fields, missing values and defaults.
        ("customer.given_name", Value.string("Ada")),
        ("customer.locale", .string("en-GB")),
        ("customer.time_zone", .null),
        ("customer.time_zone ?? \"UTC\"", .string("UTC")),
        ("customer.lifecycle_stage == \"active\"", .bool(true)),
        ("customer.tags", .stringList(["eu", "vip"])),
        ("has_tag(\"vip\") and not has_tag(\"new\")", .bool(true)),
        ("\"vip\" in customer.tags", .bool(true)),
        ("customer.tags contains \"eu\"", .bool(true)),
        ("customer.countries", .stringList(["GB"])),
        ("customer.birthday.month * 100 + customer.birthday.day", .int(417)),
        ("customer.age", .int(35)),
        ("customer.attributes.shoe_size > 42", .bool(true)),
        ("customer.attributes.points + 1", .int(121)),
        ("customer.attributes.nickname", .null),
        ("customer.attributes.nickname == null", .bool(true)),
        ("customer.attributes.nickname != \"x\"", .bool(true)),
        ("customer.attributes.nickname == \"x\"", .bool(false)),
        ("customer.attributes.nickname < \"x\"", .bool(false)),
        ("not (customer.attributes.nickname < \"x\")", .bool(true)),
        ("customer.attributes.vip", .bool(true)),
        ("length(customer.attributes.sizes)", .int(2)),
        ("is_set(customer.attributes.nickname)", .bool(false)),
        ("is_set(customer.tags) and is_set(customer.given_name)", .bool(true)),
        ("is_set(trim(\"  \")) or is_set(\"\") or is_set(customer.attributes.nickname ?? \"\")", .bool(false)),  // "" is not set
        ("customer.attributes.nickname not in [\"x\"]", .bool(true)),
        // Arithmetic.
        ("7 / 2", .decimal(Decimal(string: "3.5")!)),
        ("7 % 3 + 2 * 3", .int(7)),
        ("1 / 0", .null),
        ("9223372036854775807 + 1", .null),
        ("999999999999999999999999999999999999.9 * 999999999999999999999999999999999999.9 * 999999999999999999999999999999999999.9 * 999999999999999999999999999999999999.9 * 999999999999999999999999999999999999.9 * 999999999999999999999999999999999999.9", .null),  // too large for a decimal
        ("1 + 0.5", .decimal(Decimal(string: "1.5")!)),
        ("\"a\" + \"b\"", .string("ab")),
        ("lower(\"ÄB\") + upper(\"c\") + trim(\"  d \")", .string("äbCd")),
        ("49.99 EUR + 0.01 EUR", .money(Money(minorUnits: 5000, currency: eur))),
        ("-5 EUR * 3", .money(Money(minorUnits: -1500, currency: eur))),
        ("1000 JPY", .money(Money(minorUnits: 1000, currency: try! CurrencyCode("JPY")))),
        ("@2026-01-02 - @2026-01-01", .duration(86_400_000)),
        ("now + 1h", .timestamp(at(days: 0, hours: 1))),
        ("2 * 90d", .duration(180 * 86_400_000)),
        // Running aggregates.
        ("stats.order_count", .int(4)),
        ("total_spent(\"EUR\")", .money(Money(minorUnits: 17_500, currency: eur))),
        ("total_spent(\"GBP\")", .money(Money(minorUnits: 0, currency: try! CurrencyCode("GBP")))),
        ("average_order_value(\"EUR\")", .money(Money(minorUnits: 5833, currency: eur))),
        ("average_order_value(\"GBP\")", .null),
        ("stats.currencies", .stringList(["EUR", "USD"])),
        ("time_since(stats.last_order_at) == 5d", .bool(true)),
        ("stats.first_order_at < now - 180d", .bool(true)),
        // Windows.
        ("orders_count()", .int(4)),
        ("orders_count(within: 30d)", .int(2)),
        ("orders_count(within: 30d, where: order.currency == \"EUR\")", .int(1)),
        ("orders_count(since: @2025-12-01)", .int(2)),
        ("orders_sum(\"EUR\", within: 365d)", .money(Money(minorUnits: 17_500, currency: eur))),
        ("orders_avg(\"EUR\", within: 100d)", .money(Money(minorUnits: 3750, currency: eur))),
        ("orders_avg(\"GBP\")", .null),
        ("orders_count(where: \"SKU-1\" in order.skus and order.total >= 50 EUR)", .int(2)),
        ("events_count(\"product.viewed\", within: 7d)", .int(2)),
        ("events_count(\"product.viewed\", within: 7d, where: event.properties.price > 10)", .int(1)),
        ("events_count([\"product.viewed\", \"cart.updated\"], within: 30d, where: event.properties.sku == \"SKU-1\")", .int(2)),
        ("events_count(within: 30d)", .int(4)),
        ("events_count(\"page.viewed\", where: event.properties.sku > 0)", .int(0)),  // a mistyped property is missing
        ("time_since(last_event_at(\"cart.updated\"))", .duration(20 * 86_400_000)),
        ("last_event_at(\"never.happened\") == null", .bool(true)),
        // Membership and consent.
        ("in_segment(\"big_spenders\")", .bool(false)),
        ("customer.lifecycle_stage in [\"active\", \"loyal\"]", .bool(true)),
        ("stats.order_count in [1, 2, 3]", .bool(false)),
        ("stats.order_count not in [1, 2, 3]", .bool(true)),
        // A default may be compared with: it is one of the values.
        ("(customer.lifecycle_stage ?? \"none\") in [\"none\", \"loyal\"]", .bool(false)),
        // An empty list holds nothing of any type (a list a form leaves empty).
        ("stats.order_count not in []", .bool(true)),
        ("stats.order_count in []", .bool(false)),
        ("customer.lifecycle_stage in []", .bool(false)),
        ("has_consent(\"email\", \"marketing\")", .bool(false)),
        ("has_consent(\"email\", \"transactional\")", .bool(true)),  // allowed until refused, as the outbox decides
        ("customer.given_name starts_with \"A\" and customer.given_name ends_with \"a\" and customer.given_name contains \"d\"", .bool(true)),
        ("customer.given_name contains \"\" and customer.given_name starts_with \"\"", .bool(true)),
        // An instant outside the years Rapport keeps (1 to 9999) is missing: nothing could store or schedule it.
        ("@1970-01-01 + 1ms * 9223372036854775807 == null", .bool(true)),
        ("@1970-01-01 - 1ms * 9223372036854775807 == null", .bool(true)),
        ("now + 365000d * 9 == null", .bool(true)),
        ("now - 365000d * 3 == null", .bool(true)),
        ("now + 365000d * 7 > now", .bool(true)),
    ])
    func evaluates(_ source: String, _ expected: Value) throws {
        #expect(try value(source, Self.full) == expected, "\(source)")
    }

    /// A default stands for a missing stage, and may be compared with as one of the values.
    @Test func aDefaultStandsForAMissingStage() throws {
        #expect(try value(#"(customer.lifecycle_stage ?? "none") == "none""#, context(customer())) == .bool(true))
        #expect(try value(#"(customer.lifecycle_stage ?? "none") == "none""#, context(customer(stage: .active))) == .bool(false))
    }

    @Test func moneyOfAnotherCurrencyNeitherEqualsNorOrders() throws {
        let context = context(triggerOrder: order("t", at: at(days: -1), minor: 5000, currency: usd))
        let scope = ExpressionScope.event(type: "order.placed")
        #expect(try value("order.total > 10 EUR", context, scope: scope) == .bool(false))
        #expect(try value("order.total < 10 EUR", context, scope: scope) == .bool(false))
        #expect(try value("order.total != 50 EUR", context, scope: scope) == .bool(true))
        #expect(try value("order.total == 50 USD", context, scope: scope) == .bool(true))
        #expect(try value("order.total + 1 EUR", context, scope: scope) == .null)
    }

    @Test func triggerEventAndOrderAreReadable() throws {
        let viewed = event("v", "product.viewed", at: at(days: 0), ["sku": .string("SKU-9"), "price": .decimal(12)])
        let scope = ExpressionScope.event(type: "product.viewed")
        #expect(try value("event.properties.sku == \"SKU-9\" and event.properties.price >= 12", context(trigger: viewed), scope: scope) == .bool(true))
        #expect(try value("event.type + \"/\" + event.channel", context(trigger: viewed), scope: scope) == .string("product.viewed/web"))
        let placed = order("p", at: at(days: 0), minor: 12_345, skus: ["A", "B"])
        let orderScope = ExpressionScope.event(type: "order.placed")
        #expect(try value("order.item_count == 2 and order.total == 123.45 EUR and order.status == \"paid\"", context(triggerOrder: placed), scope: orderScope) == .bool(true))
        // An order built by hand may hold anything: a count that overflows is missing, not a crash.
        var huge = placed
        huge.lines = huge.lines.map { line in
            var line = line
            line.quantity = .max
            return line
        }
        #expect(try value("order.item_count", context(triggerOrder: huge), scope: orderScope) == .null)
    }

    @Test func consentAndSegmentsComeFromTheContext() throws {
        let granted = Consent(
            id: ConsentID(uncheckedRawValue: "cns_1"), customerID: CustomerID(uncheckedRawValue: "cus_1"), channel: .email, purpose: .marketing,
            status: .granted, source: "checkout", occurredAt: at(days: -1), recordedAt: at(days: -1))
        var revoked = granted
        revoked.channel = .sms
        revoked.status = .revoked
        let engaged = context(consents: [granted, revoked], segments: ["seg_1"])
        #expect(try value("has_consent(\"email\", \"marketing\") and not has_consent(\"sms\", \"marketing\")", engaged) == .bool(true))
        #expect(try value("in_segment(\"big_spenders\") and not in_segment(\"newsletter\")", engaged) == .bool(true))
        let identities = [Identity(kind: .email, value: "ada@example.com"), Identity(kind: .phone, value: "+14155550123")]
        #expect(try value("customer.emails", context(identities: identities)) == .stringList(["ada@example.com"]))
        #expect(try value("\"+14155550123\" in customer.phones", context(identities: identities)) == .bool(true))
    }

    @Test func requirementsSayWhatToLoad() throws {
        #expect(try compile("has_tag(\"vip\")").requirements.data == [.profile])
        #expect(try compile("stats.order_count > 1").requirements.data == [.stats])
        #expect(try compile("orders_count(within: 30d) > 1").requirements.data == [.orders, .time])
        #expect(try compile("events_count(\"cart.updated\") > 1").requirements.data == [.events, .time])
        #expect(try compile("customer.emails").requirements.data == [.identities])
        #expect(try compile("has_consent(\"sms\", \"marketing\")").requirements.data == [.consents])
        let segment = try compile("in_segment(\"newsletter\")")
        #expect(segment.requirements.data == [.segments])
        #expect(segment.requirements.segmentIDs == ["seg_2"])
        #expect(try compile("time_since(customer.created_at) > 7d").requirements.data == [.time])
        #expect(try compile("event.properties.sku", scope: .event(type: "cart.updated")).requirements.data == [.trigger])
    }
}
