import Foundation
import RapportCore
import RapportRules
import Testing

/// The parser, the checker and the evaluator never crash and never hang, whatever the input: a bounded fuzz
/// test over random bytes, random token soups and mutations of valid expressions.
@Suite("Robustness")
struct FuzzTests {
    static let valid = [
        "stats.order_count >= 3 and has_tag(\"vip\")",
        "time_since(stats.last_order_at) > 90d or orders_count(within: 30d, where: order.total > 50 EUR) == 0",
        "customer.lifecycle_stage in [\"active\", \"loyal\"] and not in_segment(\"big_spenders\")",
        "events_count(\"product.viewed\", within: 7d, where: event.properties.price > 10) >= 2",
        "customer.attributes.shoe_size ?? 40 > 41.5 and customer.age >= 18",
        "orders_sum(\"EUR\", since: @2026-01-01T00:00:00Z) - 5 EUR * 2 > total_spent(\"EUR\")",
        "lower(customer.given_name ?? \"\") starts_with \"a\" and length(customer.tags) % 2 == 0",
        "has_consent(\"email\", \"marketing\") and days_until_birthday() <= 7 and now < @2027-01-01",
        "-(1 + 2) * 3 / 4 == -2.25",
        "days_until_birthday() > -9223372036854775807 and customer.age < 9223372036854775807",
    ]
    static let tokens = [
        "(", ")", "[", "]", ",", ".", ":", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "??", "and", "or", "not", "in", "contains",
        "starts_with", "1", "0", "9223372036854775807", "2.5", "\"s\"", "'", "\"", "30d", "99999999999999999d", "@2026-01-01", "@", "EUR", "customer",
        "stats", "event", "order", "now", "orders_count", "events_count", "where", "within", "since", "properties", "attributes", "tags", "null",
        "true", "#", "\n", " ", "\\", "{{", "}}", "é", "💥", "\u{0}", "days_until_birthday()", "customer.age", "time_since", "-9223372036854775808",
    ]

    /// Parses, checks (in both scopes), evaluates and explains `source`; only ExpressionError may come out.
    func exercise(_ source: String) {
        let context = context(customer(tags: ["vip"], birthday: LocalDate(year: 1990, month: 2, day: 29)), orders: [order("1", at: at(days: -3), minor: 100)],
            events: [event("e", "product.viewed", at: at(days: -1), ["price": .int(12)])])
        for scope in [ExpressionScope.customer, .event(type: "order.placed")] {
            if let compiled = try? CompiledExpression(source, schema: schema, scope: scope, expecting: nil) {
                _ = compiled.evaluateWithNextChange(context)
                _ = compiled.matches(context)
                _ = try? CompiledExpression.explain(source, schema: schema, scope: scope, context: context)
            }
            _ = try? Template("x {{ \(source) }} y", schema: schema, scope: scope)
        }
        if let tree = try? Parser.parse(source) { _ = try? Parser.parse(tree.description) }
    }

    @Test func randomBytesNeverCrash() {
        var generator = SplitMix(seed: 1)
        for _ in 0..<1500 {
            let length = Int.random(in: 0..<80, using: &generator)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            exercise(String(decoding: bytes, as: UTF8.self))
        }
    }

    @Test func tokenSoupsNeverCrash() {
        var generator = SplitMix(seed: 2)
        for _ in 0..<2500 {
            let count = Int.random(in: 0..<40, using: &generator)
            exercise((0..<count).map { _ in Self.tokens.randomElement(using: &generator)! }.joined(separator: Bool.random(using: &generator) ? " " : ""))
        }
    }

    @Test func mutationsOfValidExpressionsNeverCrash() {
        var generator = SplitMix(seed: 3)
        for _ in 0..<2500 {
            var characters = Array(Self.valid.randomElement(using: &generator)!)
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = Int.random(in: 0...characters.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0 where position < characters.count: characters.remove(at: position)
                case 1: characters.insert(contentsOf: Self.tokens.randomElement(using: &generator)!, at: position)
                default:
                    if position < characters.count { characters[position] = Self.tokens.randomElement(using: &generator)!.first ?? " " }
                }
            }
            exercise(String(characters))
        }
    }

    @Test func theValidSeedsAreValid() throws {
        for source in Self.valid {
            _ = try compile(source, expecting: .bool)
        }
    }

    @Test func pathologicalInputsEndQuickly() {
        // Deep nesting, long chains and huge literals: each ends in an error or a value, never in a crash.
        exercise(String(repeating: "(", count: 5000))
        exercise(String(repeating: "-", count: 5000) + "1")
        exercise(String(repeating: "not ", count: 2000) + "true")
        exercise(String(repeating: "a.", count: 3000) + "b")
        exercise("[" + String(repeating: "1,", count: 3000) + "1]")
        exercise(String(repeating: "\"", count: 8000))
        exercise(String(repeating: "1 ?? ", count: 1000) + "1")
        exercise(String(repeating: "f(", count: 3000))
        exercise("9223372036854775807 * 9223372036854775807 + -9223372036854775807 - 9223372036854775807 % -1")
        exercise("-(-9223372036854775807 - 1) == 1")
        exercise("9223372036854775807 EUR + 9223372036854775807 EUR > 1 EUR")
    }
}

@Suite("Long operator chains")
struct LongChainTests {
    /// The deepest trees the limits let through (a chain of 63 operands under one more level) compile, evaluate and
    /// explain on a thread with a 512 KB stack (optimized), a secondary thread's on Apple platforms: checking and
    /// evaluating recurse once per level. A longer chain is refused with a clear error instead of overflowing the stack
    /// (a chain of 512, which the other limits allowed, crashed the process).
    @Test func theLongestChainsRunOnASmallStack() async throws {
        let ands = Array(repeating: "true", count: 63).joined(separator: " and ")
        let ors = "not (" + Array(repeating: "false", count: 62).joined(separator: " or ") + ")"
        let sums = Array(repeating: "stats.order_count", count: 62).joined(separator: " + ") + " >= 0"
        let calls = Array(repeating: #"has_tag("vip")"#, count: 63).joined(separator: " or ")
        let sources = [ands, ors, sums, calls]
        let results: [Bool] = try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result {
                    try sources.map { source in
                        let compiled = try CompiledExpression(source, schema: schema, scope: .customer)
                        let value = compiled.matches(context(customer(tags: ["vip"])))
                        _ = try CompiledExpression.explain(source, schema: schema, scope: .customer, context: context()).description
                        return value
                    }
                })
            }
            // Unoptimized builds (this suite's) take ten times the stack per level: 2 MB there, 512 KB optimized.
            #if DEBUG
            thread.stackSize = 2048 * 1024
            #else
            thread.stackSize = 512 * 1024
            #endif
            thread.start()
        }
        #expect(results == [true, true, true, true])

        let longer = Array(repeating: "true", count: 65).joined(separator: " and ")
        #expect(throws: ExpressionError.self) { try Parser.parse(longer) }
        do {
            _ = try Parser.parse(longer)
        } catch {
            #expect(error.issues.first?.message.hasPrefix("the expression is at least 65 levels deep") == true)
        }
        // A chain of thousands is refused as it is read, at the 65th operand, not built and walked.
        do {
            _ = try Parser.parse(Array(repeating: "1", count: 4_000).joined(separator: "+"))
            Issue.record("parsed")
        } catch {
            #expect(error.issues.first?.message.hasPrefix("the expression is at least 65 levels deep") == true)
            #expect(error.issues.first?.range.end ?? 0 < 200)
        }
        #expect(throws: ExpressionError.self) { try Parser.parse(Array(repeating: "true", count: 512).joined(separator: " and ")) }
    }
}
