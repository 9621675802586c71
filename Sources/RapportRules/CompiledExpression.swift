import Foundation
public import RapportCore
import Synchronization

/// An expression parsed, type-checked and compiled once, ready to evaluate many times.
///
/// ```swift
/// let vip = try CompiledExpression(#"total_spent("EUR") >= 500 EUR and has_consent("email", "marketing")"#,
///                                  schema: schema, scope: .customer)
/// if vip.matches(context) { ... }
/// ```
public struct CompiledExpression: Sendable {
    /// The text as given.
    public let source: String
    /// The parsed tree (its `description` is the canonical text).
    public let syntax: Syntax
    /// The type of the result.
    public let type: ValueType
    /// What evaluation reads: load only that into the context.
    public let requirements: Requirements
    let code: Code
    let boolCode: Fn<Bool>?
    let valueCode: Fn<Value>

    /// Parses, checks and compiles `source`.
    ///
    /// - Parameters:
    ///   - schema: the declared attributes, event types and segments the expression may name.
    ///   - scope: where the expression is used: a segment (`.customer`) or a rule triggered by an event type.
    ///   - expecting: the type the result must have (`.bool` for conditions); nil accepts any type.
    /// - Throws: ``ExpressionError`` with every problem found, each with its line, column and excerpt.
    public init(_ source: String, schema: ExpressionSchema, scope: ExpressionScope, expecting: ValueType? = .bool) throws(ExpressionError) {
        let syntax = try Parser.parse(source)
        try self.init(source: source, syntax: syntax, schema: schema, scope: scope, expecting: expecting, recorder: nil)
    }

    init(source: String, syntax: Syntax, schema: ExpressionSchema, scope: ExpressionScope, expecting: ValueType?, recorder: ExplainRecorder?)
        throws(ExpressionError)
    {
        var compiler = Compiler(source: source, schema: schema, scope: scope, recorder: recorder)
        let checked = compiler.check(syntax)
        if !checked.failed, let expecting, !Self.accepts(expecting, checked.type) {
            _ = compiler.fail(
                expecting == .bool ? "a condition must be true or false (bool), but this is \(checked.type)" : "expected \(expecting), got \(checked.type)",
                syntax.range)
        }
        guard compiler.issues.isEmpty else { throw ExpressionError(compiler.issues) }
        self.source = source
        self.syntax = syntax
        self.type = checked.type
        self.requirements = checked.requirements
        self.code = checked.code
        self.boolCode = checked.code.boolFn
        self.valueCode = checked.code.value
    }

    private static func accepts(_ expected: ValueType, _ actual: ValueType) -> Bool {
        switch (expected, actual) {
        case (_, .null): true
        case (.money, .money): true
        case (.decimal, .int): true
        default: expected == actual
        }
    }

    /// Whether a condition holds for `context`; a missing value counts as false.
    public func matches(_ context: borrowing EvaluationContext) -> Bool {
        guard let boolCode else { return false }
        var scratch = EvaluationScratch()
        return withUnsafePointer(to: context) { boolCode($0, &scratch) == true }
    }

    /// How many of `contexts` match: a segment over many customers, without copying any of them.
    ///
    /// ```swift
    /// let vip = try CompiledExpression("total_spent(\"EUR\") >= 1000 EUR", schema: schema, scope: .customer)
    /// let count = vip.count(in: profiles)
    /// ```
    public func count(in contexts: [EvaluationContext]) -> Int {
        guard let boolCode else { return 0 }
        return contexts.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return 0 }
            var scratch = EvaluationScratch()
            var count = 0
            for index in 0..<buffer.count where boolCode(base + index, &scratch) == true { count += 1 }
            return count
        }
    }

    /// The positions of the contexts that match, in order.
    public func matchingIndices(in contexts: [EvaluationContext]) -> [Int] {
        guard let boolCode else { return [] }
        return contexts.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return [] }
            var scratch = EvaluationScratch()
            return (0..<buffer.count).filter { boolCode(base + $0, &scratch) == true }
        }
    }

    /// The value of the expression for `context`.
    public func evaluate(_ context: borrowing EvaluationContext) -> Value {
        var scratch = EvaluationScratch()
        return withUnsafePointer(to: context) { valueCode($0, &scratch) } ?? .null
    }

    /// The value, and the earliest instant at which the passing of time alone may change it (nil if never).
    ///
    /// Segment memberships are re-checked at that instant: a customer enters "no order in 90 days" on day 91
    /// without any new event.
    public func evaluateWithNextChange(_ context: borrowing EvaluationContext) -> (value: Value, nextChange: Timestamp?) {
        var scratch = EvaluationScratch()
        let value = withUnsafePointer(to: context) { valueCode($0, &scratch) } ?? .null
        let next = scratch.nextChange == .max ? nil : Timestamp(millisecondsSinceEpoch: scratch.nextChange)
        return (value, next)
    }

    /// ``matches(_:)`` and the next instant at which time alone may change the answer.
    public func matchesWithNextChange(_ context: borrowing EvaluationContext) -> (matches: Bool, nextChange: Timestamp?) {
        var scratch = EvaluationScratch()
        let result = withUnsafePointer(to: context) { boolCode?($0, &scratch) } == true
        return (result, scratch.nextChange == .max ? nil : Timestamp(millisecondsSinceEpoch: scratch.nextChange))
    }

    /// Evaluates `source` for `context` and returns the value of every part of it, so a person can see why it
    /// matched or not.
    ///
    /// ```swift
    /// let why = try CompiledExpression.explain("stats.order_count >= 3 and has_tag(\"vip\")", schema: schema,
    ///                                          scope: .customer, context: context)
    /// print(why)   // stats.order_count >= 3 and has_tag("vip") → false
    ///              //   stats.order_count >= 3 → true ...
    /// ```
    public static func explain(
        _ source: String, schema: ExpressionSchema, scope: ExpressionScope, context: borrowing EvaluationContext, expecting: ValueType? = nil
    ) throws(ExpressionError) -> Explanation {
        let syntax = try Parser.parse(source)
        let recorder = ExplainRecorder()
        let compiled = try CompiledExpression(source: source, syntax: syntax, schema: schema, scope: scope, expecting: expecting, recorder: recorder)
        let (value, next) = compiled.evaluateWithNextChange(context)
        return Explanation(root: recorder.tree(), value: value, nextChange: next)
    }
}

/// The value of every part of an expression for one customer (and event): why it matched or not.
public struct Explanation: Hashable, Sendable, CustomStringConvertible {
    /// One part of the expression and its value.
    public struct Node: Hashable, Sendable {
        /// The part, in canonical text.
        public var text: String
        public var range: SourceRange
        public var type: ValueType
        /// Its value; nil when it was not evaluated (the other side of an `and` that was already false...).
        public var value: Value?
        public var children: [Node]
    }

    public var root: Node
    /// The value of the whole expression.
    public var value: Value
    /// When the passing of time alone may change the value, if it can.
    public var nextChange: Timestamp?

    /// One line per part, indented by depth: `stats.order_count >= 3 → true`.
    public var description: String {
        var lines: [String] = []
        func visit(_ node: Node, _ depth: Int) {
            let shown = node.value.map(\.description) ?? "(not evaluated)"
            lines.append(String(repeating: "  ", count: depth) + "\(node.text) → \(shown)")
            for child in node.children { visit(child, depth + 1) }
        }
        visit(root, 0)
        if let nextChange { lines.append("may change at \(nextChange) without any new data") }
        return lines.joined(separator: "\n")
    }
}

/// Collects the value of each part while an explained expression is evaluated.
final class ExplainRecorder: Sendable {
    private struct Entry {
        var text: String
        var range: SourceRange
        var type: ValueType
        var value: Value?
        var parent: Int?
    }

    private let entries = Mutex<[Entry]>([])

    var count: Int { entries.withLock { $0.count } }

    /// Adds a node whose children are the parentless nodes added since `firstChild`; returns its id.
    func add(text: String, range: SourceRange, type: ValueType, firstChild: Int) -> Int {
        entries.withLock { entries in
            let id = entries.count
            for index in firstChild..<id where entries[index].parent == nil { entries[index].parent = id }
            entries.append(Entry(text: text, range: range, type: type, value: nil, parent: nil))
            return id
        }
    }

    func set(_ id: Int, _ value: Value) {
        entries.withLock { $0[id].value = value }
    }

    func tree() -> Explanation.Node {
        let all = entries.withLock { $0 }
        func node(_ id: Int) -> Explanation.Node {
            let children = all.indices.filter { all[$0].parent == id }.map(node)
            return Explanation.Node(text: all[id].text, range: all[id].range, type: all[id].type, value: all[id].value, children: children)
        }
        guard let root = all.indices.last(where: { all[$0].parent == nil }) else {
            return Explanation.Node(text: "", range: SourceRange(start: 0, end: 0), type: .null, value: nil, children: [])
        }
        return node(root)
    }
}
