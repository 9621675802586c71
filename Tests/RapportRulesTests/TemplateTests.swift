import Foundation
import RapportCore
import RapportRules
import Testing

@Suite("Templates and explanations")
struct TemplateTests {
    @Test func placeholdersAreFilledWithDefaultsForMissingValues() throws {
        let template = try Template("Hello {{ customer.given_name ?? \"there\" }}, you spent {{ total_spent(\"EUR\") }}.{{customer.time_zone}}", schema: schema, scope: .customer)
        let orders = [order("1", at: at(days: -1), minor: 1999)]
        #expect(template.render(context(orders: orders)) == "Hello Ada, you spent 19.99 EUR.")
        #expect(template.render(context(customer(given: ""))) == "Hello there, you spent 0.00 EUR.")
    }

    /// An empty string in an attribute or event property is missing, as an empty name is: `??` replaces it.
    @Test func anEmptyAttributeOrPropertyTakesTheDefault() throws {
        let template = try Template(
            "{{ customer.attributes.nickname ?? \"friend\" }}: {{ event.properties.sku ?? \"no sku\" }}", schema: schema, scope: .event(type: "product.viewed"))
        let viewed = Event(
            id: "e1", type: "product.viewed", occurredAt: at(days: 0), channel: .web, identities: [], properties: ["sku": .string("")], customerID: CustomerID(uncheckedRawValue: "cus_1"),
            receivedAt: at(days: 0))
        #expect(template.render(context(customer(attributes: ["nickname": .string("")]), trigger: viewed)) == "friend: no sku")
        let named = try compile(#"customer.attributes.nickname == "" or is_set(customer.attributes.nickname)"#)
        #expect(named.matches(context(customer(attributes: ["nickname": .string("")]))) == false)
    }

    /// A `#` comment in a placeholder may hold quotes: "guest's" opens no string that would swallow the text after.
    @Test func aCommentInAPlaceholderMayHoldAnApostrophe() throws {
        let template = try Template(
            "Hi {{ customer.given_name ?? \"there\" # guest's fallback }}! Don't miss {{ customer.family_name }}.", schema: schema, scope: .customer)
        #expect(template.render(context()) == "Hi Ada! Don't miss Lovelace.")
        // The comment ends with its line: a string on the next one is a string again, "}}" in it included.
        let multiline = try Template("<{{ customer.attributes.nickname # it's\n ?? \"}}\" }}>", schema: schema, scope: .customer)
        #expect(multiline.render(context()) == "<}}>")
    }

    @Test func valuesAreNeverReadAsTemplatesAndAreEscaped() throws {
        let hostile = customer(given: "{{ customer.family_name }}<script>alert('x')</script>")
        let plain = try Template("Hi {{customer.given_name}}", schema: schema, scope: .customer)
        #expect(plain.render(context(hostile)) == "Hi {{ customer.family_name }}<script>alert('x')</script>")
        let html = try Template("<p>Hi {{customer.given_name}}</p>", schema: schema, scope: .customer, escaping: .html)
        #expect(html.render(context(hostile)) == "<p>Hi {{ customer.family_name }}&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>")
        let subject = try Template("Re: {{customer.given_name}}", schema: schema, scope: .customer, escaping: .singleLine)
        #expect(subject.render(context(customer(given: "Ada\r\nBcc: all@example.com"))) == "Re: Ada  Bcc: all@example.com")
    }

    @Test func htmlEscapingWorksScalarByScalar() throws {
        // A quote followed by a combining mark is one Swift Character but still a quote to a browser.
        let attribute = try Template("<a title=\"{{customer.given_name}}\">", schema: schema, scope: .customer, escaping: .html)
        let rendered = attribute.render(context(customer(given: "\"\u{301} onmouseover=alert(1) '\u{301}&\u{200D}<\u{301}`")))
        #expect(rendered == "<a title=\"&quot;\u{301} onmouseover=alert(1) &#39;\u{301}&amp;\u{200D}&lt;\u{301}&#96;\">")
        #expect(!rendered.unicodeScalars.dropFirst(10).dropLast(2).contains { $0 == "\"" || $0 == "'" || $0 == "<" })
    }

    @Test func subjectsLoseEveryKindOfLineBreak() throws {
        let subject = try Template("Re: {{customer.given_name}}", schema: schema, scope: .customer, escaping: .singleLine)
        #expect(subject.render(context(customer(given: "Ada\u{2028}Bcc: x\u{2029}y\u{85}z\u{0}"))) == "Re: Ada Bcc: x y z")
    }

    @Test func templateErrorsArePositionedInTheTemplate() throws {
        do {
            _ = try Template("Line one\nHello {{ customer.nmae }} and {{ stats.order_count + }}", schema: schema, scope: .customer)
            Issue.record("compiled")
        } catch {
            #expect(error.issues.count == 2)
            #expect(error.issues[0].line == 2)
            #expect(error.issues[0].column == 10)
            #expect(error.issues[0].message.contains("unknown field 'customer.nmae'"))
            #expect(error.issues[0].excerpt == "  Hello {{ customer.nmae }} and {{ stats.order_count + }}\n" + String(repeating: " ", count: 11) + "^^^^^^^^^^^^^")
            #expect(error.issues[1].message == "the expression ends where a value is expected")
        }
        #expect(throws: ExpressionError.self) { try Template("Hi {{ customer.given_name", schema: schema, scope: .customer) }
        #expect(throws: ExpressionError.self) { try Template("Hi {{ }}", schema: schema, scope: .customer) }
        // "}}" inside a string literal does not close the placeholder.
        #expect(try Template("{{ \"}}\" }}!", schema: schema, scope: .customer).render(context()) == "}}!")
    }

    @Test func jsonValuesAreEscaped() {
        #expect(Value.string("a\"b\\c\n\u{1}").json == "\"a\\\"b\\\\c\\n\\u0001\"")
        #expect(Value.money(Money(minorUnits: 1999, currency: eur)).json == "{\"minor_units\":1999,\"currency\":\"EUR\"}")
        #expect(Value.stringList(["a", "b"]).json == "[\"a\",\"b\"]")
        #expect(Value.null.json == "null")
    }

    @Test func explainShowsEveryPartAndWhatWasNotEvaluated() throws {
        let orders = [order("1", at: at(days: -1), minor: 1999)]
        let explanation = try CompiledExpression.explain(
            "stats.order_count >= 3 and has_tag(\"vip\") or time_since(stats.last_order_at) < 7d", schema: schema, scope: .customer,
            context: context(customer(tags: ["vip"]), orders: orders))
        #expect(explanation.value == .bool(true))
        #expect(explanation.nextChange == at(days: 6))
        #expect(explanation.description == """
            stats.order_count >= 3 and has_tag("vip") or time_since(stats.last_order_at) < 7d → true
              stats.order_count >= 3 and has_tag("vip") → false
                stats.order_count >= 3 → false
                  stats.order_count → 1
                  3 → 3
                has_tag("vip") → (not evaluated)
                  "vip" → "vip"
              time_since(stats.last_order_at) < 7d → true
                time_since(stats.last_order_at) → 1d
                  stats.last_order_at → 2025-12-31T00:00:00.000Z
                7d → 7d
            may change at 2026-01-07T00:00:00.000Z without any new data
            """)
    }
}
