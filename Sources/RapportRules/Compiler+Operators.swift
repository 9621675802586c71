import Foundation
import RapportCore

extension Compiler {
    mutating func binary(_ op: BinaryOperator, _ lhsSyntax: Syntax, _ rhsSyntax: Syntax, _ range: SourceRange) -> Checked {
        let lhs = check(lhsSyntax)
        let rhs = check(rhsSyntax)
        guard !lhs.failed, !rhs.failed else { return .failure }
        var result: Checked
        switch op {
        case .and, .or:
            guard let a = lhs.code.boolFn else { return fail("'\(op.rawValue)' needs conditions (bool) on both sides, got \(lhs.type)", lhsSyntax.range) }
            guard let b = rhs.code.boolFn else { return fail("'\(op.rawValue)' needs conditions (bool) on both sides, got \(rhs.type)", rhsSyntax.range) }
            result = Checked(type: .bool, code: op == .and ? .bool { c, s in a(c, &s) == true && b(c, &s) == true } : .bool { c, s in a(c, &s) == true || b(c, &s) == true })
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let compared = compare(op, lhs, rhs, lhsSyntax.range, rhsSyntax.range, range) else { return .failure }
            result = compared
        case .in, .notIn:
            guard let member = membership(element: lhs, list: rhs, negated: op == .notIn, lhsSyntax.range, rhsSyntax.range) else { return .failure }
            result = member
        case .contains:
            if let text = lhs.code.stringFn, let part = rhs.code.stringFn {
                result = Checked(type: .bool, code: .bool { c, s in
                    guard let t = text(c, &s), let p = part(c, &s) else { return false }
                    return p.isEmpty || t.contains(p)  // Foundation's contains finds no empty string; starts_with does
                })
            } else if lhs.type.isList {
                guard let member = membership(element: rhs, list: lhs, negated: false, rhsSyntax.range, lhsSyntax.range) else { return .failure }
                result = member
            } else {
                return fail("'contains' needs a string or a list on its left, got \(lhs.type)", lhsSyntax.range)
            }
        case .startsWith, .endsWith:
            guard let text = lhs.code.stringFn, let part = rhs.code.stringFn else {
                return fail("'\(op.rawValue)' needs strings on both sides, got \(lhs.type) and \(rhs.type)", range)
            }
            result = Checked(type: .bool, code: op == .startsWith
                ? .bool { c, s in
                    guard let t = text(c, &s), let p = part(c, &s) else { return false }
                    return t.hasPrefix(p)
                }
                : .bool { c, s in
                    guard let t = text(c, &s), let p = part(c, &s) else { return false }
                    return t.hasSuffix(p)
                })
        case .add, .subtract, .multiply, .divide, .remainder:
            guard let computed = arithmetic(op, lhs, rhs, lhsSyntax.range, rhsSyntax.range, range) else { return .failure }
            result = computed
        case .coalesce:
            guard let coalesced = coalesce(lhs, rhs, range) else { return .failure }
            result = coalesced
        }
        result.requirements.formUnion(lhs.requirements)
        result.requirements.formUnion(rhs.requirements)
        return result
    }

    // MARK: Comparison

    /// Checks that a string literal compared with an enumerated field is one of its values.
    private mutating func checkAllowed(_ field: Checked, against literal: Checked, _ range: SourceRange) -> Bool {
        guard let allowed = field.allowed else { return true }
        var values: [String] = []
        switch literal.constant {
        case .string(let value)?: values = [value]
        case .stringList(let list)?: values = list
        default: return true
        }
        for value in values where !allowed.values.contains(value) {
            let hint = Suggestions.closest(to: value, in: allowed.values).map { " (did you mean '\($0)'?)" } ?? ""
            _ = fail("'\(value)' is not \(allowed.what)\(hint); one of: \(allowed.values.joined(separator: ", "))", range)
            return false
        }
        return true
    }

    private mutating func compare(
        _ op: BinaryOperator, _ lhs: Checked, _ rhs: Checked, _ lhsRange: SourceRange, _ rhsRange: SourceRange, _ range: SourceRange
    ) -> Checked? {
        guard checkAllowed(lhs, against: rhs, rhsRange), checkAllowed(rhs, against: lhs, lhsRange) else { return nil }
        let equality = op == .equal || op == .notEqual
        // `x == null`, `x != null`.
        if lhs.type == .null || rhs.type == .null {
            guard equality else { return fail("only '==' and '!=' compare with null", range) }
            let missing = Self.isMissing(lhs.type == .null ? rhs.code : lhs.code)
            return Checked(type: .bool, code: op == .equal ? .bool(missing) : .bool { c, s in missing(c, &s) != true })
        }
        switch (lhs.code, rhs.code) {
        case (.int(let a), .int(let b)):
            if lhs.birthdayCountdown, case .int(let k)? = rhs.constant {
                return Checked(type: .bool, code: .bool(Self.birthdayCountdown(op, a, k)))
            }
            if rhs.birthdayCountdown, case .int(let k)? = lhs.constant {
                return Checked(type: .bool, code: .bool(Self.birthdayCountdown(op.mirrored, b, k)))
            }
            return Checked(type: .bool, code: .bool(Self.ordered(op, a, b, constant: rhs.constant.flatMap { if case .int(let v) = $0 { v } else { nil } })))
        case (.int, .decimal), (.decimal, .int), (.decimal, .decimal):
            return Checked(type: .bool, code: .bool(Self.ordered(op, lhs.code.decimalFn!, rhs.code.decimalFn!, constant: nil)))
        case (.string(let a), .string(let b)):
            return Checked(type: .bool, code: .bool(Self.ordered(op, a, b, constant: rhs.constant.flatMap { if case .string(let v) = $0 { v } else { nil } })))
        case (.money(let a), .money(let b)):
            if case .money(let left?) = lhs.type, case .money(let right?) = rhs.type, left != right {
                return fail("cannot compare money in \(left) with money in \(right)", range)
            }
            // Amounts in different currencies are never equal and never ordered.
            return Checked(type: .bool, code: .bool { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return op == .notEqual }
                guard x.currency == y.currency else { return op == .notEqual }
                return Self.holds(op, x.minorUnits, y.minorUnits)
            })
        case (.timestamp(let a), .timestamp(let b)), (.duration(let a), .duration(let b)):
            guard let slope = Self.slope(lhs.slope.subtractingReportingOverflow(rhs.slope)) else { return fail(Self.slopeMessage, range) }
            if slope == 0 {
                return Checked(type: .bool, code: .bool(Self.ordered(op, a, b, constant: nil)))
            }
            return Checked(type: .bool, code: .bool { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return op == .notEqual }
                let (difference, overflow) = x.subtractingReportingOverflow(y)
                if !overflow, let after = Self.crossing(difference, slope: slope, op) {
                    let (instant, late) = c.pointee.now.millisecondsSinceEpoch.addingReportingOverflow(after)
                    if !late { s.changes(at: instant) }
                }
                return Self.holds(op, x, y)
            })
        case (.bool(let a), .bool(let b)) where equality:
            return Checked(type: .bool, code: .bool(Self.equal(op, a, b)))
        case (.date(let a), .date(let b)) where equality:
            return Checked(type: .bool, code: .bool(Self.equal(op, a, b)))
        case (.stringList(let a), .stringList(let b)) where equality:
            return Checked(type: .bool, code: .bool(Self.equal(op, a, b)))
        case (.intList(let a), .intList(let b)) where equality:
            return Checked(type: .bool, code: .bool(Self.equal(op, a, b)))
        default:
            if lhs.type == rhs.type {
                return fail("\(lhs.type) values can only be compared with '==' and '!='", range)
            }
            return fail("cannot compare \(lhs.type) with \(rhs.type)", range)
        }
    }

    static func holds<T: Comparable>(_ op: BinaryOperator, _ x: T, _ y: T) -> Bool {
        switch op {
        case .equal: x == y
        case .notEqual: x != y
        case .less: x < y
        case .lessOrEqual: x <= y
        case .greater: x > y
        default: x >= y
        }
    }

    /// An ordered comparison; a missing side makes it false (true for `!=`). Specialized for a constant right side.
    static func ordered<T: Comparable & Sendable>(_ op: BinaryOperator, _ a: @escaping Fn<T>, _ b: @escaping Fn<T>, constant: T?) -> Fn<Bool> {
        let missing = op == .notEqual
        if let k = constant {
            switch op {
            case .equal: return { c, s in a(c, &s).map { $0 == k } ?? missing }
            case .notEqual: return { c, s in a(c, &s).map { $0 != k } ?? missing }
            case .less: return { c, s in a(c, &s).map { $0 < k } ?? missing }
            case .lessOrEqual: return { c, s in a(c, &s).map { $0 <= k } ?? missing }
            case .greater: return { c, s in a(c, &s).map { $0 > k } ?? missing }
            default: return { c, s in a(c, &s).map { $0 >= k } ?? missing }
            }
        }
        return { c, s in
            guard let x = a(c, &s), let y = b(c, &s) else { return missing }
            return holds(op, x, y)
        }
    }

    static func equal<T: Equatable & Sendable>(_ op: BinaryOperator, _ a: @escaping Fn<T>, _ b: @escaping Fn<T>) -> Fn<Bool> {
        let wanted = op == .equal
        return { c, s in
            guard let x = a(c, &s), let y = b(c, &s) else { return !wanted }
            return (x == y) == wanted
        }
    }

    /// Whether a node's value is missing.
    static func isMissing(_ code: Code) -> Fn<Bool> {
        func missing<T>(_ f: @escaping Fn<T>) -> Fn<Bool> { { c, s in f(c, &s) == nil } }
        switch code {
        case .bool(let f): return missing(f)
        case .int(let f), .duration(let f), .timestamp(let f): return missing(f)
        case .decimal(let f): return missing(f)
        case .string(let f): return missing(f)
        case .money(let f): return missing(f)
        case .date(let f): return missing(f)
        case .stringList(let f): return missing(f)
        case .intList(let f): return missing(f)
        case .null: return { _, _ in true }
        }
    }

    /// How many milliseconds after now `f(t) = difference + slope·(t − now)` first changes the truth of
    /// `f op 0`; nil when time alone never changes it.
    static func crossing(_ difference: Int64, slope: Int64, _ op: BinaryOperator) -> Int64? {
        func ceilDiv(_ a: Int64, _ b: Int64) -> Int64 { a / b + (a % b == 0 ? 0 : 1) }
        // The instant after `a / b`; nil when it is past what Int64 holds (the change never comes in time).
        func after(_ a: Int64, _ b: Int64) -> Int64? {
            let (next, overflow) = (a / b).addingReportingOverflow(1)
            return overflow ? nil : next
        }
        guard difference != .min, slope != .min else { return nil }
        let speed = slope.magnitude > Int64.max.magnitude ? Int64.max : Int64(slope.magnitude)
        switch op {
        case .greater, .lessOrEqual:  // truth of f > 0
            if difference > 0 { return slope < 0 ? max(1, ceilDiv(difference, speed)) : nil }
            return slope > 0 ? after(-difference, speed) : nil
        case .greaterOrEqual, .less:  // truth of f >= 0
            if difference >= 0 { return slope < 0 ? after(difference, speed) : nil }
            return slope > 0 ? max(1, ceilDiv(-difference, speed)) : nil
        default:  // f == 0
            if difference == 0 { return 1 }
            if (difference > 0) == (slope > 0) { return nil }
            return max(1, ceilDiv(Swift.abs(difference), speed))
        }
    }

    // MARK: Membership

    private mutating func membership(element: Checked, list: Checked, negated: Bool, _ elementRange: SourceRange, _ listRange: SourceRange) -> Checked? {
        guard checkAllowed(element, against: list, listRange) else { return nil }
        switch (element.code, list.code) {
        case (.string(let e), .stringList(let l)):
            if case .stringList(let values)? = list.constant {
                if values.count > 8 {
                    let set = Set(values)
                    return Checked(type: .bool, code: .bool { c, s in e(c, &s).map { set.contains($0) != negated } ?? negated })
                }
                return Checked(type: .bool, code: .bool { c, s in e(c, &s).map { values.contains($0) != negated } ?? negated })
            }
            return Checked(type: .bool, code: .bool { c, s in
                guard let x = e(c, &s), let values = l(c, &s) else { return negated }
                return values.contains(x) != negated
            })
        case (.int(let e), .intList(let l)):
            return Checked(type: .bool, code: .bool { c, s in
                guard let x = e(c, &s), let values = l(c, &s) else { return negated }
                return values.contains(x) != negated
            })
        case (_, .stringList) where list.constant == .stringList([]), (_, .intList) where list.constant == .intList([]):
            // `[]` holds nothing of any type: `x in []` is false, `x not in []` true.
            return Checked(type: .bool, code: .constant(.bool(negated)), constant: .bool(negated))
        case (_, .stringList), (_, .intList):
            return fail("\(element.type) cannot be an element of a \(list.type)", elementRange)
        default:
            return fail("'in' needs a list on its right, got \(list.type)", listRange)
        }
    }

    // MARK: Arithmetic

    private mutating func arithmetic(
        _ op: BinaryOperator, _ lhs: Checked, _ rhs: Checked, _ lhsRange: SourceRange, _ rhsRange: SourceRange, _ range: SourceRange
    ) -> Checked? {
        switch (op, lhs.code, rhs.code) {
        case (_, .int(let a), .int(let b)) where op != .divide:
            let code: Fn<Int64>
            switch op {
            case .add: code = { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return nil }
                let (r, o) = x.addingReportingOverflow(y)
                return o ? nil : r
            }
            case .subtract: code = { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return nil }
                let (r, o) = x.subtractingReportingOverflow(y)
                return o ? nil : r
            }
            case .multiply: code = { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return nil }
                let (r, o) = x.multipliedReportingOverflow(by: y)
                return o ? nil : r
            }
            default: code = { c, s in
                guard let x = a(c, &s), let y = b(c, &s), y != 0 else { return nil }
                let (r, o) = x.remainderReportingOverflow(dividingBy: y)
                return o ? nil : r
            }
            }
            return Checked(type: .int, code: .int(code))
        case (.remainder, _, _):
            return fail("'%' needs integers on both sides, got \(lhs.type) and \(rhs.type)", range)
        case (_, .int, .int), (_, .int, .decimal), (_, .decimal, .int), (_, .decimal, .decimal):
            let a = lhs.code.decimalFn!
            let b = rhs.code.decimalFn!
            let code: Fn<Decimal>
            switch op {
            // A result Decimal cannot hold (NaN) is missing, as an integer overflow is.
            case .add: code = { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return nil }
                let result = x + y
                return result.isNaN ? nil : result
            }
            case .subtract: code = { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return nil }
                let result = x - y
                return result.isNaN ? nil : result
            }
            case .multiply: code = { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return nil }
                let result = x * y
                return result.isNaN ? nil : result
            }
            default: code = { c, s in
                guard let x = a(c, &s), let y = b(c, &s), !y.isZero else { return nil }
                let result = x / y
                return result.isNaN ? nil : result
            }
            }
            return Checked(type: .decimal, code: .decimal(code))
        case (.add, .string(let a), .string(let b)):
            return Checked(type: .string, code: .string { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return nil }
                return x + y
            })
        case (.add, .money(let a), .money(let b)), (.subtract, .money(let a), .money(let b)):
            if case .money(let left?) = lhs.type, case .money(let right?) = rhs.type, left != right {
                return fail("cannot \(op == .add ? "add" : "subtract") money in \(left) and money in \(right)", range)
            }
            let adding = op == .add
            return Checked(type: Self.moneyType(lhs.type, rhs.type), code: .money { c, s in
                guard let x = a(c, &s), let y = b(c, &s), x.currency == y.currency else { return nil }
                let (r, o) = adding ? x.minorUnits.addingReportingOverflow(y.minorUnits) : x.minorUnits.subtractingReportingOverflow(y.minorUnits)
                return o ? nil : Money(minorUnits: r, currency: x.currency)
            })
        case (.multiply, .money(let a), .int(let b)), (.multiply, .int(let b), .money(let a)):
            let type = lhs.type.isMoney ? lhs.type : rhs.type
            return Checked(type: type, code: .money { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return nil }
                let (r, o) = x.minorUnits.multipliedReportingOverflow(by: y)
                return o ? nil : Money(minorUnits: r, currency: x.currency)
            })
        case (.add, .timestamp(let a), .duration(let b)), (.add, .duration(let b), .timestamp(let a)):
            var result = Checked(type: .timestamp, code: .timestamp(Self.kept(Self.sum(a, b, sign: 1))))
            guard let slope = Self.slope(lhs.slope.addingReportingOverflow(rhs.slope)) else { return fail(Self.slopeMessage, range) }
            result.slope = slope
            return result
        case (.subtract, .timestamp(let a), .duration(let b)):
            var result = Checked(type: .timestamp, code: .timestamp(Self.kept(Self.sum(a, b, sign: -1))))
            guard let slope = Self.slope(lhs.slope.subtractingReportingOverflow(rhs.slope)) else { return fail(Self.slopeMessage, range) }
            result.slope = slope
            return result
        case (.subtract, .timestamp(let a), .timestamp(let b)):
            var result = Checked(type: .duration, code: .duration(Self.sum(a, b, sign: -1)))
            guard let slope = Self.slope(lhs.slope.subtractingReportingOverflow(rhs.slope)) else { return fail(Self.slopeMessage, range) }
            result.slope = slope
            return result
        case (.add, .duration(let a), .duration(let b)), (.subtract, .duration(let a), .duration(let b)):
            var result = Checked(type: .duration, code: .duration(Self.sum(a, b, sign: op == .add ? 1 : -1)))
            let combined = op == .add ? lhs.slope.addingReportingOverflow(rhs.slope) : lhs.slope.subtractingReportingOverflow(rhs.slope)
            guard let slope = Self.slope(combined) else { return fail(Self.slopeMessage, range) }
            result.slope = slope
            return result
        case (.multiply, .duration(let a), .int(let b)), (.multiply, .int(let b), .duration(let a)):
            let duration = lhs.type == .duration ? lhs : rhs
            let factor = lhs.type == .duration ? rhs : lhs
            var result = Checked(type: .duration, code: .duration { c, s in
                guard let x = a(c, &s), let y = b(c, &s) else { return nil }
                let (r, o) = x.multipliedReportingOverflow(by: y)
                return o ? nil : r
            })
            if duration.slope != 0 {
                guard case .int(let k)? = factor.constant else {
                    return fail("a duration that changes with time can only be multiplied by a number written out", range)
                }
                guard let slope = Self.slope(duration.slope.multipliedReportingOverflow(by: k)) else { return fail(Self.slopeMessage, range) }
                result.slope = slope
            }
            return result
        default:
            return fail("'\(op.rawValue)' cannot combine \(lhs.type) and \(rhs.type)", range)
        }
    }

    static func sum(_ a: @escaping Fn<Int64>, _ b: @escaping Fn<Int64>, sign: Int64) -> Fn<Int64> {
        { c, s in
            guard let x = a(c, &s), let y = b(c, &s) else { return nil }
            let (r, o) = sign > 0 ? x.addingReportingOverflow(y) : x.subtractingReportingOverflow(y)
            return o ? nil : r
        }
    }

    /// An instant outside the years Rapport keeps (1 to 9999) is missing: no stored value or schedule can hold it.
    static func kept(_ instant: @escaping Fn<Int64>) -> Fn<Int64> {
        { c, s in
            guard let value = instant(c, &s), Timestamp(millisecondsSinceEpoch: value).isKept else { return nil }
            return value
        }
    }

    static func moneyType(_ a: ValueType, _ b: ValueType) -> ValueType {
        if case .money(let currency?) = a { return .money(currency) }
        if case .money(let currency?) = b { return .money(currency) }
        return .money(nil)
    }

    // MARK: Coalesce

    private mutating func coalesce(_ lhs: Checked, _ rhs: Checked, _ range: SourceRange) -> Checked? {
        func pick<T>(_ a: @escaping Fn<T>, _ b: @escaping Fn<T>) -> Fn<T> { { c, s in a(c, &s) ?? b(c, &s) } }
        if lhs.type == .null { return rhs }
        if rhs.type == .null { return lhs }
        if (lhs.type == .timestamp || lhs.type == .duration), lhs.slope != rhs.slope {
            return fail("the two sides of '??' must move with time alike (both follow now, or neither)", range)
        }
        var result = Checked(type: lhs.type, code: .null, slope: lhs.slope)
        // What it can be: either side's values (`stage ?? "none"` may be "none"); anything when either side may be.
        switch (lhs.allowed, rhs.allowed, rhs.constant) {
        case (let left?, let right?, _): result.allowed = (left.what, left.values + right.values.filter { !left.values.contains($0) })
        case (let left?, nil, .string(let value)?): result.allowed = (left.what, left.values.contains(value) ? left.values : left.values + [value])
        default: result.allowed = nil
        }
        switch (lhs.code, rhs.code) {
        case (.bool(let a), .bool(let b)): result.code = .bool(pick(a, b))
        case (.int(let a), .int(let b)): result.code = .int(pick(a, b))
        case (.int, .decimal), (.decimal, .int), (.decimal, .decimal):
            result.type = .decimal
            result.code = .decimal(pick(lhs.code.decimalFn!, rhs.code.decimalFn!))
        case (.string(let a), .string(let b)): result.code = .string(pick(a, b))
        case (.money(let a), .money(let b)):
            if case .money(let left?) = lhs.type, case .money(let right?) = rhs.type, left != right {
                return fail("'??' cannot mix money in \(left) and money in \(right)", range)
            }
            // Either side may be the value: its currency is known only when both sides' are (and they agree).
            if case .money(let left?) = lhs.type, case .money(let right?) = rhs.type, left == right {
                result.type = .money(left)
            } else {
                result.type = .money(nil)
            }
            result.code = .money(pick(a, b))
        case (.duration(let a), .duration(let b)): result.code = .duration(pick(a, b))
        case (.timestamp(let a), .timestamp(let b)): result.code = .timestamp(pick(a, b))
        case (.date(let a), .date(let b)): result.code = .date(pick(a, b))
        case (.stringList(let a), .stringList(let b)): result.code = .stringList(pick(a, b))
        case (.intList(let a), .intList(let b)): result.code = .intList(pick(a, b))
        default:
            return fail("'??' needs the same type on both sides, got \(lhs.type) and \(rhs.type)", range)
        }
        return result
    }
}

/// "Did you mean" hints: the closest candidate by edit distance, if it is close enough.
enum Suggestions {
    static func closest(to word: String, in candidates: [String]) -> String? {
        let target = Array(word.lowercased().prefix(64))
        var best: (distance: Int, candidate: String)?
        for candidate in candidates {
            let distance = editDistance(target, Array(candidate.lowercased().prefix(64)))
            if distance <= max(1, min(3, target.count / 3)), best == nil || distance < best!.distance { best = (distance, candidate) }
        }
        return best?.candidate
    }

    /// Edits (insert, delete, substitute, swap two neighbours) between two words.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1) }
            }
        }
        return table[a.count][b.count]
    }
}
