import RapportCore
import RapportRules
import Testing

@Suite("Type checking")
struct TypeCheckTests {
    @Test(arguments: [
        ("customer.given_nmae == \"Ada\"", "unknown field 'customer.given_nmae' (did you mean 'customer.given_name'?)"),
        ("custmer.given_name", "unknown name 'custmer' (did you mean 'customer'?)"),
        ("stats.order_count == \"3\"", "cannot compare int with string"),
        ("stats.order_count", "a condition must be true or false (bool), but this is int"),
        ("customer.lifecycle_stage == \"actve\"", "'actve' is not a lifecycle stage (did you mean 'active'?); one of: prospect, new_customer, active, loyal, at_risk, churned"),
        ("customer.lifecycle_stage in [\"loyal\", \"vip\"]", "'vip' is not a lifecycle stage"),
        // A default adds its own value, nothing else.
        ("(customer.lifecycle_stage ?? \"none\") == \"nope\"", "'nope' is not a lifecycle stage"),
        ("customer.attributes.shoesize > 40", "'shoesize' is not a declared attribute (did you mean 'shoe_size'?)"),
        ("event.type == \"x\"", "there is no event here"),
        ("order.total > 5 EUR", "there is no order here"),
        ("total_spent(\"EUR\") > 5 USD", "cannot compare money in EUR with money in USD"),
        ("total_spent(\"EURO\") > 5 EUR", "'EURO' is not an ISO 4217 currency code"),
        ("49.999 EUR > total_spent(\"EUR\")", "'49.999 EUR' is not an amount of EUR: at most 2 decimal places"),
        ("orders_count(within: 30) > 1", "'within:' takes a positive duration written out"),
        ("orders_count(within: 30d, since: now) > 1", "takes 'within:' or 'since:', not both"),
        ("orders_count(since: now - 1d) > 1", "'since:' must not move with now"),
        ("orders_count(wihtin: 30d) > 1", "orders_count has no argument 'wihtin' (did you mean 'within:'?)"),
        ("orders_count(where: orders_count() > 1) > 1", "window functions do not nest"),
        ("orders_count(where: order.totl > 1 EUR) > 1", "unknown field 'order.totl' (did you mean 'order.total'?)"),
        ("events_count(where: event.properties.sku == \"x\") > 1", "name the event type in events_count"),
        ("events_count(\"product.viewed\", where: event.properties.suk == \"x\") > 1", "'suk' is not a declared property of 'product.viewed' (did you mean 'sku'?)"),
        ("events_count([\"product.viewed\", \"page.viewed\"], where: event.properties.sku == \"x\") > 1", "property 'sku' is string in one event type and int in another"),
        ("events_count(\"unknown.type\", where: event.properties.x == 1) > 1", "event type 'unknown.type' is not declared"),
        ("in_segment(\"big_spender\")", "there is no segment with key 'big_spender' (did you mean 'big_spenders'?)"),
        ("has_consent(\"mail\", \"marketing\")", "'mail' is not a consent channel"),
        ("has_consent(customer.given_name, \"marketing\")", "the channel must be written out as a string literal"),
        ("has_tag(1)", "has_tag needs a string, got int"),
        ("orders_count", "'orders_count' is a function: call it with parentheses"),
        ("ordrs_count() > 1", "unknown function 'ordrs_count' (did you mean 'orders_count'?)"),
        ("1 + \"a\" == 2", "'+' cannot combine int and string"),
        ("stats.order_count and true", "'and' needs conditions (bool) on both sides, got int"),
        ("[1, \"a\"] == [1]", "a list holds only strings or only integers"),
        ("customer.tags < customer.tags", "string list values can only be compared with '==' and '!='"),
        ("now ?? stats.last_order_at", "the two sides of '??' must move with time alike"),
        ("time_since(customer.created_at) * stats.order_count > 1d", "a duration that changes with time can only be multiplied by a number written out"),
        ("customer.birthday.week == 1", "a birthday has year, month and day, not 'week'"),
        ("customer.attributes > 1", "name one attribute: customer.attributes.KEY"),
        ("null < 1", "only '==' and '!=' compare with null"),
        // Values that would overflow are refused at compile time, never trapped on.
        ("time_since(stats.last_order_at) * 9223372036854775807 * 2 > 1d", "changes with time too fast"),
        ("time_since(stats.last_order_at) * 1048576 * 2 > 1d", "changes with time too fast"),
        ("999999999999999 CLF > total_spent(\"CLF\")", "at most 4 decimal places and 14 digits before the point"),
    ])
    func rejectsWithAClearMessage(_ source: String, _ message: String) {
        let found = issues(source, expecting: .bool)
        #expect(found.contains { $0.message.contains(message) }, "\(source): \(found.map(\.message))")
    }

    @Test func everyProblemIsReportedAtItsPlace() {
        let found = issues("customer.nmae == 1 and stats.oder_count > 2", expecting: .bool)
        #expect(found.count == 2)
        #expect(found.map(\.column) == [1, 24])
        #expect(found[1].excerpt.hasSuffix("^^^^^^^^^^^^^^^"))
    }

    @Test func orderTriggersSeeTheOrderAndTheirProperties() throws {
        _ = try compile("order.total > 50 EUR and event.properties.item_count > 1", scope: .event(type: "order.placed"), expecting: .bool)
        // The order may be in any currency: a default in EUR does not make `??` an amount in EUR.
        _ = try compile("(order.total ?? 0 EUR) > 10 USD", scope: .event(type: "order.placed"), expecting: .bool)
        #expect(issues("(0 EUR ?? 1 EUR) > 10 USD", expecting: .bool).contains { $0.message.contains("cannot compare money in EUR with money in USD") })
        _ = try compile("event.properties.segment_key == \"vip\"", scope: .event(type: "segment.entered"), expecting: .bool)
        #expect(!issues("order.total > 50 EUR", scope: .event(type: "cart.updated")).isEmpty)
    }
}
