import Foundation
import RapportCore

/// A checked and compiled node: its static type, how it changes with time, and its code.
struct Checked {
    var type: ValueType
    var code: Code
    /// For timestamps and durations: how many milliseconds the value moves per millisecond of `now`.
    var slope: Int64 = 0
    /// The value, when it is known before evaluation (literals).
    var constant: Value? = nil
    /// An int that counts the days to the customer's next birthday (`days_until_birthday()`): compared with a
    /// constant, the comparison works out the midnight at which its truth changes, rather than every midnight.
    var birthdayCountdown = false
    /// The only values a string can take (lifecycle stages, channels...), to check literals compared with it.
    var allowed: (what: String, values: [String])? = nil
    var requirements = Requirements()
    /// Already reported: the parents of a failed node stay quiet.
    var failed = false

    static let failure = Checked(type: .null, code: .null, failed: true)
}

/// Type-checks ``Syntax`` against a schema and a scope and compiles it into closures, in one pass.
struct Compiler {
    /// What a window function's `where:` looks at.
    enum Item {
        case order
        /// Events of these types (any type when nil).
        case event(types: [String]?)
    }

    let source: String
    let schema: ExpressionSchema
    let scope: ExpressionScope
    let recorder: ExplainRecorder?
    var issues: [ExpressionIssue] = []
    var item: Item?

    init(source: String, schema: ExpressionSchema, scope: ExpressionScope, recorder: ExplainRecorder? = nil) {
        self.source = source
        self.schema = schema
        self.scope = scope
        self.recorder = recorder
    }

    mutating func fail(_ message: String, _ range: SourceRange) -> Checked {
        if issues.count < ExpressionLimits.maxIssues { issues.append(ExpressionIssue(message, at: range, in: source)) }
        return .failure
    }

    /// The largest rate of change with time a value may have (a million milliseconds per millisecond).
    static let maxSlope: Int64 = 1 << 20

    /// A combined slope when it is in range; nil when it overflowed or changes with time too fast to plan for.
    static func slope(_ result: (partialValue: Int64, overflow: Bool)) -> Int64? {
        result.overflow || result.partialValue.magnitude > UInt64(maxSlope) ? nil : result.partialValue
    }

    static let slopeMessage = "this value changes with time too fast to evaluate (a factor too large)"

    mutating func check(_ syntax: Syntax) -> Checked {
        let firstChild = recorder?.count ?? 0
        var result = checkNode(syntax)
        if let recorder, item == nil, !result.failed {
            let id = recorder.add(text: syntax.description, range: syntax.range, type: result.type, firstChild: firstChild)
            if let constant = result.constant {
                recorder.set(id, constant)  // a literal's value is known even where it is not evaluated
            } else {
                result.code = result.code.recording { value in recorder.set(id, value) }
            }
        }
        return result
    }

    private mutating func checkNode(_ syntax: Syntax) -> Checked {
        switch syntax.kind {
        case .integer(let value): return literal(.int(value), .int)
        case .decimal(let value, _): return literal(.decimal(value), .decimal)
        case .string(let value): return literal(.string(value), .string)
        case .bool(let value): return literal(.bool(value), .bool)
        case .null: return literal(.null, .null)
        case .duration(let value, _): return literal(.duration(value), .duration)
        case .timestamp(let value, _): return literal(.timestamp(Timestamp(millisecondsSinceEpoch: value)), .timestamp)
        case .money(let amount, let code):
            guard let currency = try? CurrencyCode(code) else { return fail("'\(code)' is not an ISO 4217 currency code", syntax.range) }
            guard let minor = Self.minorUnits(amount, digits: currency.minorUnitDigits) else {
                return fail(
                    "'\(amount) \(code)' is not an amount of \(code): at most \(currency.minorUnitDigits) decimal places and \(Self.wholeDigits(currency.minorUnitDigits)) digits before the point",
                    syntax.range)
            }
            return literal(.money(Money(minorUnits: minor, currency: currency)), .money(currency))
        case .path(let parts): return path(parts, syntax.range)
        case .list(let items): return list(items, syntax.range)
        case .call(let name, let arguments): return call(name, arguments, syntax.range)
        case .unary(.not, let operand):
            let inner = check(operand)
            guard !inner.failed else { return .failure }
            guard let f = inner.code.boolFn else { return fail("'not' needs a condition (bool), got \(inner.type)", operand.range) }
            var result = Checked(type: .bool, code: .bool { c, s in f(c, &s) != true })
            result.requirements = inner.requirements
            return result
        case .unary(.negate, let operand): return negate(check(operand), operand.range)
        case .binary(let op, let lhs, let rhs): return binary(op, lhs, rhs, syntax.range)
        }
    }

    private func literal(_ value: Value, _ type: ValueType) -> Checked {
        Checked(type: type, code: .constant(value), constant: value)
    }

    /// `49.99` in a currency with 2 digits is 4999; nil when there are too many decimals or digits.
    /// How many digits an amount may have before the point: 15, fewer when the minor units would not fit 18 digits.
    static func wholeDigits(_ minorDigits: Int) -> Int { min(15, 18 - minorDigits) }

    static func minorUnits(_ amount: String, digits: Int) -> Int64? {
        let parts = amount.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let wholeText = parts.first, wholeText.count <= wholeDigits(digits), let whole = Int64(wholeText) else { return nil }
        let fraction = parts.count == 2 ? String(parts[1]) : ""
        guard fraction.count <= digits else { return nil }
        var scale: Int64 = 1
        for _ in 0..<digits { scale *= 10 }
        let padded = fraction + String(repeating: "0", count: digits - fraction.count)
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        let (minor, late) = scaled.addingReportingOverflow(padded.isEmpty ? 0 : Int64(padded)!)
        return late ? nil : minor
    }

    // MARK: Lists

    private mutating func list(_ items: [Syntax], _ range: SourceRange) -> Checked {
        let checked = items.map { check($0) }
        guard !checked.contains(where: \.failed) else { return .failure }
        var requirements = Requirements()
        for item in checked { requirements.formUnion(item.requirements) }
        if checked.isEmpty || checked.allSatisfy({ $0.type == .string }) {
            if checked.allSatisfy({ $0.constant != nil }) {
                let values = checked.map { (item: Checked) -> String in if case .string(let text)? = item.constant { text } else { "" } }
                return Checked(type: .stringList, code: .constant(.stringList(values)), constant: .stringList(values))
            }
            let fns = checked.map { $0.code.stringFn! }
            var result = Checked(type: .stringList, code: .stringList { c, s in fns.compactMap { $0(c, &s) } })
            result.requirements = requirements
            return result
        }
        if checked.allSatisfy({ $0.type == .int }) {
            if checked.allSatisfy({ $0.constant != nil }) {
                let values = checked.map { (item: Checked) -> Int64 in if case .int(let value)? = item.constant { value } else { 0 } }
                return Checked(type: .intList, code: .constant(.intList(values)), constant: .intList(values))
            }
            let fns = checked.map { $0.code.intFn! }
            var result = Checked(type: .intList, code: .intList { c, s in fns.compactMap { $0(c, &s) } })
            result.requirements = requirements
            return result
        }
        let types = Set(checked.map(\.type.description)).sorted().joined(separator: ", ")
        return fail("a list holds only strings or only integers; this one holds \(types)", range)
    }

    // MARK: Unary minus

    private mutating func negate(_ inner: Checked, _ range: SourceRange) -> Checked {
        guard !inner.failed else { return .failure }
        var result = inner
        result.allowed = nil
        result.birthdayCountdown = false  // a negated count no longer counts down
        switch inner.code {
        case .int(let f):
            if case .int(let value)? = inner.constant, value != .min { return literal(.int(-value), .int) }
            result.code = .int { c, s in f(c, &s).flatMap { $0 == .min ? nil : -$0 } }
        case .decimal(let f):
            if case .decimal(let value)? = inner.constant { return literal(.decimal(-value), .decimal) }
            result.code = .decimal { c, s in f(c, &s).map { -$0 } }
        case .money(let f):
            if case .money(let value)? = inner.constant, value.minorUnits != .min {
                return literal(.money(Money(minorUnits: -value.minorUnits, currency: value.currency)), inner.type)
            }
            result.code = .money { c, s in f(c, &s).flatMap { $0.minorUnits == .min ? nil : Money(minorUnits: -$0.minorUnits, currency: $0.currency) } }
        case .duration(let f):
            if case .duration(let value)? = inner.constant, value != .min { return literal(.duration(-value), .duration) }
            result.code = .duration { c, s in f(c, &s).flatMap { $0 == .min ? nil : -$0 } }
            result.slope = -inner.slope
        default:
            return fail("'-' needs a number, money or a duration, got \(inner.type)", range)
        }
        result.constant = nil
        return result
    }
}
