import Foundation
import RapportCore

/// Turns expression text into ``Syntax``, or reports every problem with its position.
///
/// Never crashes and never recurses deeper than ``ExpressionLimits/maxDepth``: any input ends in a tree or in
/// issues, in time linear in its length.
public enum Parser {
    /// Parses a whole expression.
    ///
    /// ```swift
    /// let tree = try Parser.parse(#"stats.order_count >= 3 and has_tag("vip")"#)
    /// ```
    /// - Throws: ``ExpressionError`` naming the line, column and problem.
    public static func parse(_ source: String) throws(ExpressionError) -> Syntax {
        guard source.utf8.count <= ExpressionLimits.maxLength else {
            throw ExpressionError([
                ExpressionIssue(
                    "the expression is \(source.utf8.count) bytes long; the limit is \(ExpressionLimits.maxLength)",
                    at: SourceRange(start: ExpressionLimits.maxLength, end: source.utf8.count), in: source)
            ])
        }
        var lexer = Lexer(source)
        let tokens = lexer.tokenize()
        guard lexer.issues.isEmpty else { throw ExpressionError(lexer.issues) }
        var state = State(tokens: tokens, source: source)
        do throws(ExpressionIssue) {
            let tree = try state.expression()
            guard case .end = state.current.kind else {
                throw state.issue("expected an operator or the end of the expression, found \(state.describe(state.current))", state.current.range)
            }
            if tree.nodeCount > ExpressionLimits.maxNodes {
                throw state.issue("the expression has \(tree.nodeCount) parts; the limit is \(ExpressionLimits.maxNodes)", tree.range)
            }
            if tree.height > ExpressionLimits.heightLimit { throw state.tooDeep(tree, "\(tree.height)") }
            return tree
        } catch {
            throw ExpressionError([error])
        }
    }

    static let keywords: Set<String> = ["and", "or", "not", "in", "contains", "starts_with", "ends_with", "true", "false", "null"]

    private struct State {
        let tokens: [Token]
        let source: String
        var position = 0
        var depth = 0

        var current: Token { tokens[position] }

        func issue(_ message: String, _ range: SourceRange) -> ExpressionIssue {
            ExpressionIssue(message, at: range, in: source)
        }

        func tooDeep(_ tree: Syntax, _ levels: String) -> ExpressionIssue {
            issue(
                "the expression is \(levels) levels deep (each operand of a chain of 'and', 'or', '+'... is one); the limit is "
                    + "\(ExpressionLimits.heightLimit): write a list of values with 'in [...]', or split it into segments",
                tree.range)
        }

        /// A chain of `links` operators is a tree more than `links` levels deep: one past the limit is refused as it
        /// is read, before thousands of levels are built (which checking, counting and freeing would recurse through).
        func checkChain(_ links: Int, _ tree: Syntax) throws(ExpressionIssue) {
            guard links >= ExpressionLimits.heightLimit else { return }
            throw tooDeep(tree, "at least \(links + 1)")
        }

        func describe(_ token: Token) -> String {
            switch token.kind {
            case .end: "the end of the expression"
            case .identifier(let name): "'\(name)'"
            case .symbol(let symbol): "'\(symbol.rawValue)'"
            case .string: "a string"
            case .integer(let value): "'\(value)'"
            case .decimal(_, let text), .duration(_, let text), .timestamp(_, let text): "'\(text)'"
            }
        }

        mutating func advance() -> Token {
            let token = tokens[position]
            if position < tokens.count - 1 { position += 1 }
            return token
        }

        func isKeyword(_ word: String) -> Bool {
            if case .identifier(word) = current.kind { return true }
            return false
        }

        func isSymbol(_ symbol: Token.Symbol) -> Bool {
            if case .symbol(symbol) = current.kind { return true }
            return false
        }

        mutating func expect(_ symbol: Token.Symbol, _ context: @autoclosure () -> String) throws(ExpressionIssue) -> Token {
            guard isSymbol(symbol) else { throw issue("expected '\(symbol.rawValue)' \(context()), found \(describe(current))", current.range) }
            return advance()
        }

        mutating func nested<T>(_ range: SourceRange, _ body: (inout State) throws(ExpressionIssue) -> T) throws(ExpressionIssue) -> T {
            depth += 1
            defer { depth -= 1 }
            guard depth <= ExpressionLimits.maxDepth else {
                throw issue("the expression nests deeper than \(ExpressionLimits.maxDepth) levels", range)
            }
            return try body(&self)
        }

        mutating func expression() throws(ExpressionIssue) -> Syntax {
            try nested(current.range) { (state: inout State) throws(ExpressionIssue) in try state.or() }
        }

        mutating func or() throws(ExpressionIssue) -> Syntax {
            var lhs = try and()
            var links = 0
            while isKeyword("or") || isSymbol(.bars) {
                _ = advance()
                let rhs = try and()
                lhs = Syntax(.binary(.or, lhs, rhs), lhs.range.union(rhs.range))
                links += 1
                try checkChain(links, lhs)
            }
            return lhs
        }

        mutating func and() throws(ExpressionIssue) -> Syntax {
            var lhs = try not()
            var links = 0
            while isKeyword("and") || isSymbol(.ampersands) {
                _ = advance()
                let rhs = try not()
                lhs = Syntax(.binary(.and, lhs, rhs), lhs.range.union(rhs.range))
                links += 1
                try checkChain(links, lhs)
            }
            return lhs
        }

        mutating func not() throws(ExpressionIssue) -> Syntax {
            if isKeyword("not") || isSymbol(.bang) {
                let start = advance().range
                return try nested(start) { (state: inout State) throws(ExpressionIssue) in
                    let operand = try state.not()
                    return Syntax(.unary(.not, operand), start.union(operand.range))
                }
            }
            return try comparison()
        }

        mutating func comparisonOperator() -> BinaryOperator? {
            switch current.kind {
            case .symbol(.equal): return .equal
            case .symbol(.notEqual): return .notEqual
            case .symbol(.less): return .less
            case .symbol(.lessOrEqual): return .lessOrEqual
            case .symbol(.greater): return .greater
            case .symbol(.greaterOrEqual): return .greaterOrEqual
            case .identifier("in"): return .in
            case .identifier("contains"): return .contains
            case .identifier("starts_with"): return .startsWith
            case .identifier("ends_with"): return .endsWith
            case .identifier("not"):
                if position + 1 < tokens.count, case .identifier("in") = tokens[position + 1].kind { return .notIn }
                return nil
            default: return nil
            }
        }

        mutating func comparison() throws(ExpressionIssue) -> Syntax {
            let lhs = try additive()
            guard let op = comparisonOperator() else { return lhs }
            _ = advance()
            if op == .notIn { _ = advance() }
            let rhs = try additive()
            if let next = comparisonOperator() {
                throw issue("comparisons do not chain: '\(next.rawValue)' after '\(op.rawValue)'; join them with 'and'", current.range)
            }
            return Syntax(.binary(op, lhs, rhs), lhs.range.union(rhs.range))
        }

        mutating func additive() throws(ExpressionIssue) -> Syntax {
            var lhs = try multiplicative()
            var links = 0
            while true {
                let op: BinaryOperator
                if isSymbol(.plus) { op = .add } else if isSymbol(.minus) { op = .subtract } else { return lhs }
                _ = advance()
                let rhs = try multiplicative()
                lhs = Syntax(.binary(op, lhs, rhs), lhs.range.union(rhs.range))
                links += 1
                try checkChain(links, lhs)
            }
        }

        mutating func multiplicative() throws(ExpressionIssue) -> Syntax {
            var lhs = try coalesce()
            var links = 0
            while true {
                let op: BinaryOperator
                if isSymbol(.star) { op = .multiply } else if isSymbol(.slash) { op = .divide } else if isSymbol(.percent) { op = .remainder } else { return lhs }
                _ = advance()
                let rhs = try coalesce()
                lhs = Syntax(.binary(op, lhs, rhs), lhs.range.union(rhs.range))
                links += 1
                try checkChain(links, lhs)
            }
        }

        mutating func coalesce() throws(ExpressionIssue) -> Syntax {
            let lhs = try unary()
            guard isSymbol(.coalesce) else { return lhs }
            let start = advance().range
            return try nested(start) { (state: inout State) throws(ExpressionIssue) in
                let rhs = try state.coalesce()
                return Syntax(.binary(.coalesce, lhs, rhs), lhs.range.union(rhs.range))
            }
        }

        mutating func unary() throws(ExpressionIssue) -> Syntax {
            if isSymbol(.minus) {
                let start = advance().range
                return try nested(start) { (state: inout State) throws(ExpressionIssue) in
                    let operand = try state.unary()
                    return Syntax(.unary(.negate, operand), start.union(operand.range))
                }
            }
            return try primary()
        }

        /// A currency code following a number: `49.99 EUR`.
        mutating func currency(after amount: String, _ range: SourceRange) throws(ExpressionIssue) -> Syntax? {
            guard case .identifier(let code) = current.kind, code.utf8.count == 3, code.utf8.allSatisfy({ $0 >= 65 && $0 <= 90 }) else { return nil }
            let codeRange = advance().range
            guard (try? CurrencyCode(code)) != nil else { throw issue("'\(code)' is not an ISO 4217 currency code", codeRange) }
            return Syntax(.money(amount: amount, currency: code), range.union(codeRange))
        }

        mutating func primary() throws(ExpressionIssue) -> Syntax {
            let token = current
            switch token.kind {
            case .integer(let value):
                _ = advance()
                return try currency(after: String(value), token.range) ?? Syntax(.integer(value), token.range)
            case .decimal(let value, let text):
                _ = advance()
                return try currency(after: text, token.range) ?? Syntax(.decimal(value, text: text), token.range)
            case .string(let text):
                _ = advance()
                return Syntax(.string(text), token.range)
            case .duration(let value, let text):
                _ = advance()
                return Syntax(.duration(value, text: text), token.range)
            case .timestamp(let value, let text):
                _ = advance()
                return Syntax(.timestamp(value, text: text), token.range)
            case .symbol(.leftParen):
                _ = advance()
                return try nested(token.range) { (state: inout State) throws(ExpressionIssue) in
                    var inner = try state.or()
                    let source = state.source
                    let close = try state.expect(.rightParen, "to close the '(' at column \(ExpressionIssue("", at: token.range, in: source).column)")
                    inner.range = token.range.union(close.range)
                    return inner
                }
            case .symbol(.leftBracket):
                _ = advance()
                return try nested(token.range) { (state: inout State) throws(ExpressionIssue) in
                    var items: [Syntax] = []
                    if !state.isSymbol(.rightBracket) {
                        repeat {
                            if state.isSymbol(.rightBracket) { break }  // a trailing comma
                            items.append(try state.or())
                        } while state.isSymbol(.comma) && { _ = state.advance(); return true }()
                    }
                    let close = try state.expect(.rightBracket, "to close the list")
                    return Syntax(.list(items), token.range.union(close.range))
                }
            case .identifier(let name):
                switch name {
                case "true", "false":
                    _ = advance()
                    return Syntax(.bool(name == "true"), token.range)
                case "null":
                    _ = advance()
                    return Syntax(.null, token.range)
                case _ where Parser.keywords.contains(name):
                    throw issue("expected a value, found the operator '\(name)'", token.range)
                default:
                    break
                }
                _ = advance()
                if isSymbol(.leftParen) { return try call(name, token.range) }
                var parts = [name]
                var range = token.range
                while isSymbol(.dot) {
                    _ = advance()
                    guard case .identifier(let part) = current.kind else {
                        throw issue("expected a field name after '.', found \(describe(current))", current.range)
                    }
                    range = range.union(advance().range)
                    parts.append(part)
                    guard parts.count <= 8 else { throw issue("a path has at most 8 parts", range) }
                }
                return Syntax(.path(parts), range)
            case .end:
                throw issue("the expression ends where a value is expected", token.range)
            default:
                throw issue("expected a value, found \(describe(token))", token.range)
            }
        }

        mutating func call(_ name: String, _ nameRange: SourceRange) throws(ExpressionIssue) -> Syntax {
            let open = advance()
            return try nested(open.range) { (state: inout State) throws(ExpressionIssue) in
                var arguments: [Argument] = []
                while !state.isSymbol(.rightParen) {
                    if case .identifier(let label) = state.current.kind, state.position + 1 < state.tokens.count,
                        case .symbol(.colon) = state.tokens[state.position + 1].kind
                    {
                        let labelRange = state.advance().range
                        _ = state.advance()
                        arguments.append(Argument(label: label, labelRange: labelRange, value: try state.or()))
                    } else {
                        arguments.append(Argument(value: try state.or()))
                    }
                    guard arguments.count <= 16 else { throw state.issue("a call takes at most 16 arguments", state.current.range) }
                    if state.isSymbol(.comma) {
                        _ = state.advance()
                    } else if !state.isSymbol(.rightParen) {
                        throw state.issue("expected ',' or ')' in the arguments of \(name), found \(state.describe(state.current))", state.current.range)
                    }
                }
                let close = state.advance()
                return Syntax(.call(name: name, arguments: arguments), nameRange.union(close.range))
            }
        }
    }
}
