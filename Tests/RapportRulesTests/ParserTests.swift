import Foundation
import RapportCore
import RapportRules
import Testing

@Suite("Parsing and printing")
struct ParserTests {
    @Test(arguments: [
        ("a.b == 1", "a.b == 1"),
        ("not   x.y and y.z or w.v", "not x.y and y.z or w.v"),
        ("not (a.b and c.d)", "not (a.b and c.d)"),
        ("a.b and (c.d or e.f)", "a.b and (c.d or e.f)"),
        ("(a.b and c.d) or e.f", "a.b and c.d or e.f"),
        ("1 + 2 * 3", "1 + 2 * 3"),
        ("(1 + 2) * 3", "(1 + 2) * 3"),
        ("1 - (2 - 3)", "1 - (2 - 3)"),
        ("(1 - 2) - 3", "1 - 2 - 3"),
        ("-(-1)", "-(-1)"),
        ("- 5", "-5"),
        ("a.b ?? c.d ?? \"x\"", "a.b ?? c.d ?? \"x\""),
        ("(a.b ?? c.d) ?? 1", "(a.b ?? c.d) ?? 1"),
        ("x.y not in ['a', \"b\",]", "x.y not in [\"a\", \"b\"]"),
        ("49.99 EUR > 5 USD", "49.99 EUR > 5 USD"),
        ("orders_count(within: 30d, where: order.total > 50 EUR)", "orders_count(within: 30d, where: order.total > 50 EUR)"),
        ("now - 90d > @2026-01-01", "now - 90d > @2026-01-01"),
        ("'it\\'s' + \"\\n\\u{1F600}\"", "\"it's\" + \"\\n😀\""),
        ("a.b && c.d || !e.f", "a.b and c.d or not e.f"),
        ("(not a.b) == c.d", "(not a.b) == c.d"),
        ("f() # a comment\n + 1", "f() + 1"),
    ])
    func parsesAndPrintsCanonically(_ input: String, _ expected: String) throws {
        let tree = try Parser.parse(input)
        #expect(tree.description == expected)
        #expect(try Parser.parse(expected).description == expected)
    }

    @Test func literalsHaveTheirValues() throws {
        #expect(try Parser.parse("90d").kind == .duration(90 * 86_400_000, text: "90d"))
        #expect(try Parser.parse("1500ms").kind == .duration(1500, text: "1500ms"))
        #expect(try Parser.parse("2w").kind == .duration(14 * 86_400_000, text: "2w"))
        #expect(try Parser.parse("@2026-01-01T09:30:00Z").kind == .timestamp(1_767_259_800_000, text: "@2026-01-01T09:30:00Z"))
        #expect(try Parser.parse("@2026-01-01T11:30:00+02:00").kind == .timestamp(1_767_259_800_000, text: "@2026-01-01T11:30:00+02:00"))
        #expect(try Parser.parse("@2026-01-01T09:30:00.250Z").kind == .timestamp(1_767_259_800_250, text: "@2026-01-01T09:30:00.250Z"))
        #expect(try Parser.parse("9223372036854775807").kind == .integer(.max))
        // Dates before 1970 (a member since 1965) and up to year 9999, as instants are kept; none past them.
        #expect(try Parser.parse("@1965-01-01").kind == .timestamp(-157_766_400_000, text: "@1965-01-01"))
        #expect(try Parser.parse("@9999-12-31T23:59:59.999Z").kind == .timestamp(Timestamp.latest.millisecondsSinceEpoch, text: "@9999-12-31T23:59:59.999Z"))
        #expect(throws: ExpressionError.self) { try Parser.parse("@0001-01-01T00:00:00+01:00") }  // year 0 in UTC
        #expect(throws: ExpressionError.self) { try Parser.parse("@0000-12-31") }
        // 38 digits are exact; the point is not a digit.
        let digits = "1.2345678901234567890123456789012345678"
        #expect(try Parser.parse(digits).kind == .decimal(Decimal(string: digits, locale: Locale(identifier: "en_US_POSIX"))!, text: digits))
        #expect(throws: ExpressionError.self) { try Parser.parse("1.23456789012345678901234567890123456789") }
    }

    @Test func errorsCarryLineColumnAndCaret() {
        func issue(_ source: String) -> ExpressionIssue? {
            do {
                _ = try Parser.parse(source)
                return nil
            } catch {
                return error.issues.first
            }
        }
        let unclosed = issue("a.b == 1 and\n  (c.d or e.f")
        #expect(unclosed?.line == 2)
        #expect(unclosed?.column == 14)
        #expect(unclosed?.message.contains("expected ')' to close the '(' at column 3") == true)
        #expect(unclosed?.excerpt == "    (c.d or e.f\n" + String(repeating: " ", count: 15) + "^")

        let assignment = issue("customer.given_name = \"Ada\"")
        #expect(assignment?.column == 21)
        #expect(assignment?.message == "'=' is not an operator: compare with '=='")
        #expect(assignment?.description == "line 1, column 21: '=' is not an operator: compare with '=='\n  customer.given_name = \"Ada\"\n" + String(repeating: " ", count: 22) + "^")

        #expect(issue("a.b < b.c < c.d")?.message.contains("comparisons do not chain") == true)
        #expect(issue("5x")?.message == "'x' is not a duration unit (ms, s, m, h, d, w)")
        #expect(issue("1.5d")?.message == "a duration is a whole number of units: '1.5d'")
        #expect(issue("\"open")?.message.contains("not closed") == true)
        #expect(issue("@2026-02-30")?.message.contains("is not a timestamp") == true)
        #expect(issue("9223372036854775808")?.message.contains("larger than the largest integer") == true)
        #expect(issue("a.b ==")?.message == "the expression ends where a value is expected")
        #expect(issue("a.b c.d")?.message.contains("expected an operator or the end") == true)
        #expect(issue("f(a.b c.d)")?.message.contains("expected ',' or ')'") == true)
        #expect(issue("5 XYZ")?.message == "'XYZ' is not an ISO 4217 currency code")
        #expect(issue("and")?.message == "expected a value, found the operator 'and'")
        #expect(issue("'\\q'")?.message.contains("unknown escape") == true)
        #expect(issue("")?.message == "the expression ends where a value is expected")
    }

    @Test func multiByteCharactersCountAsOneColumn() throws {
        do {
            _ = try Parser.parse("\"héllo wörld\" == ?")
            Issue.record("parsed")
        } catch {
            #expect(error.issues.first?.column == 18)
            #expect(error.issues.first?.excerpt == "  \"héllo wörld\" == ?\n" + String(repeating: " ", count: 19) + "^")
        }
    }

    @Test func limitsAreEnforcedWithClearErrors() {
        let deep = String(repeating: "(", count: 200) + "1" + String(repeating: ")", count: 200)
        #expect(throws: ExpressionError.self) { try Parser.parse(deep) }
        do {
            _ = try Parser.parse(deep)
        } catch {
            #expect(error.issues.first?.message.contains("nests deeper than") == true)
        }
        let notChain = String(repeating: "not ", count: 500) + "a.b"
        #expect(throws: ExpressionError.self) { try Parser.parse(notChain) }
        let long = String(repeating: "1 + ", count: 3000) + "1"
        do {
            _ = try Parser.parse(long)
            Issue.record("parsed")
        } catch {
            #expect(error.issues.first?.message.contains("bytes long; the limit is 8192") == true)
        }
        let wide = "1 in [" + (0..<1100).map { _ in "1" }.joined(separator: ",") + "]"
        do {
            _ = try Parser.parse(wide)
            Issue.record("parsed")
        } catch {
            #expect(error.issues.first?.message.contains("parts; the limit is 1024") == true)
        }
    }

    /// A text of thousands of bad characters, or of many unknown names, reports its first 20 problems, not one
    /// each: every report names its line, a pass over the text.
    @Test func atMostTwentyProblemsAreReported() throws {
        let dollars = issues(String(repeating: "$", count: 8_000))
        #expect(dollars.count == ExpressionLimits.maxIssues)
        #expect(dollars.first?.column == 1)
        let unknown = issues((0..<60).map { "customer.attributes.nope\($0) == 1" }.joined(separator: " or "))
        #expect(unknown.count == ExpressionLimits.maxIssues)
        #expect(unknown.first?.message.contains("nope0") == true)
        let placeholders = String(repeating: "{{ " + String(repeating: "$", count: 8_000) + " }}", count: 4)
        do {
            _ = try Template(placeholders, schema: schema, scope: .customer)
            Issue.record("compiled")
        } catch {
            #expect(error.issues.count == ExpressionLimits.maxIssues)
        }
    }

    /// Random well-formed trees print to text that parses back to the same canonical text.
    @Test func printThenParseRoundTrips() throws {
        var generator = SplitMix(seed: 42)
        for _ in 0..<2000 {
            let text = RandomExpression.make(&generator, depth: 0)
            let tree = try Parser.parse(text)
            let printed = tree.description
            let reparsed = try Parser.parse(printed)
            #expect(reparsed.description == printed, "\(text) printed as \(printed) reparsed as \(reparsed.description)")
            #expect(Self.shape(reparsed) == Self.shape(tree), "\(text) changed meaning when printed as \(printed)")
        }
    }

    /// The tree without source positions.
    static func shape(_ syntax: Syntax) -> String {
        switch syntax.kind {
        case .binary(let op, let lhs, let rhs): "(\(op.rawValue) \(shape(lhs)) \(shape(rhs)))"
        case .unary(let op, let operand): "(\(op.rawValue) \(shape(operand)))"
        case .list(let items): "[" + items.map(shape).joined(separator: " ") + "]"
        case .call(let name, let arguments): "(\(name) " + arguments.map { ($0.label ?? "") + ":" + shape($0.value) }.joined(separator: " ") + ")"
        default: syntax.description
        }
    }
}

/// A small deterministic random number generator for property tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random expression text over every construct of the grammar (not necessarily well-typed).
enum RandomExpression {
    static let operators = ["and", "or", "==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "starts_with", "ends_with", "+", "-", "*", "/", "%", "??"]
    static let leaves = [
        "1", "42", "3.25", "\"a b\"", "'q\\'s'", "true", "false", "null", "30d", "1h", "@2026-01-01", "49.99 EUR", "5 JPY", "now", "customer.tags",
        "stats.order_count", "event.properties.sku", "[1, 2]", "[\"x\"]", "[]",
    ]

    static func make<G: RandomNumberGenerator>(_ g: inout G, depth: Int) -> String {
        if depth > 5 || Int.random(in: 0..<10, using: &g) < 3 { return leaves.randomElement(using: &g)! }
        switch Int.random(in: 0..<10, using: &g) {
        case 0: return "not " + make(&g, depth: depth + 1)
        case 1: return "-" + wrap(make(&g, depth: depth + 1))
        case 2: return "(" + make(&g, depth: depth + 1) + ")"
        case 3: return "orders_count(within: 30d, where: " + make(&g, depth: depth + 1) + ")"
        case 4: return "f(" + make(&g, depth: depth + 1) + ", x: " + make(&g, depth: depth + 1) + ")"
        default:
            let op = operators.randomElement(using: &g)!
            // Comparisons do not chain: keep their operands free of other comparisons.
            let lhs = make(&g, depth: depth + 1)
            let rhs = make(&g, depth: depth + 1)
            return wrap(lhs) + " \(op) " + wrap(rhs)
        }
    }

    /// Parenthesized, so that random compositions stay parseable (the printer decides what it can drop).
    static func wrap(_ text: String) -> String { "(" + text + ")" }
}
