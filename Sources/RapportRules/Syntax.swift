public import Foundation

/// An expression as parsed: the tree of what was written, with where each part was written.
public struct Syntax: Hashable, Sendable {
    public indirect enum Kind: Hashable, Sendable {
        case integer(Int64)
        case decimal(Decimal, text: String)
        case string(String)
        case bool(Bool)
        case null
        /// Milliseconds, with the text as written (`90d`).
        case duration(Int64, text: String)
        /// Milliseconds since the epoch, with the text as written (`@2026-01-01`).
        case timestamp(Int64, text: String)
        /// An amount as written (`49.99`) and its currency code (`EUR`).
        case money(amount: String, currency: String)
        /// A dotted path: `customer.given_name`, `event.properties.sku`, `now`.
        case path([String])
        case list([Syntax])
        case call(name: String, arguments: [Argument])
        case unary(UnaryOperator, Syntax)
        case binary(BinaryOperator, Syntax, Syntax)
    }

    public var kind: Kind
    public var range: SourceRange

    public init(_ kind: Kind, _ range: SourceRange) {
        self.kind = kind
        self.range = range
    }
}

/// One argument of a call, positional (`"EUR"`) or named (`within: 30d`).
public struct Argument: Hashable, Sendable {
    public var label: String?
    public var labelRange: SourceRange?
    public var value: Syntax

    public init(label: String? = nil, labelRange: SourceRange? = nil, value: Syntax) {
        self.label = label
        self.labelRange = labelRange
        self.value = value
    }
}

public enum UnaryOperator: String, Hashable, Sendable {
    case not
    case negate = "-"
}

public enum BinaryOperator: String, Hashable, Sendable, CaseIterable {
    case or, and
    case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case `in`, notIn = "not in", contains, startsWith = "starts_with", endsWith = "ends_with"
    case add = "+", subtract = "-", multiply = "*", divide = "/", remainder = "%"
    case coalesce = "??"

    /// Binding strength: higher binds tighter.
    var precedence: Int {
        switch self {
        case .or: 1
        case .and: 2
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual, .in, .notIn, .contains, .startsWith, .endsWith: 4
        case .add, .subtract: 5
        case .multiply, .divide, .remainder: 6
        case .coalesce: 7
        }
    }

    var isComparison: Bool { precedence == 4 }

    /// The comparison with its sides swapped: `a < b` is `b > a`.
    var mirrored: BinaryOperator {
        switch self {
        case .less: .greater
        case .lessOrEqual: .greaterOrEqual
        case .greater: .less
        case .greaterOrEqual: .lessOrEqual
        default: self
        }
    }
}

extension Syntax {
    /// How deep the tree is: a chain `a and b and c` is as deep as it has operands (each joins the ones before).
    var height: Int {
        switch kind {
        case .list(let items): 1 + (items.map(\.height).max() ?? 0)
        case .call(_, let arguments): 1 + (arguments.map(\.value.height).max() ?? 0)
        case .unary(_, let operand): 1 + operand.height
        case .binary(_, let lhs, let rhs): 1 + max(lhs.height, rhs.height)
        default: 1
        }
    }

    /// How many nodes the tree has.
    var nodeCount: Int {
        switch kind {
        case .list(let items): 1 + items.reduce(0) { $0 + $1.nodeCount }
        case .call(_, let arguments): 1 + arguments.reduce(0) { $0 + $1.value.nodeCount }
        case .unary(_, let operand): 1 + operand.nodeCount
        case .binary(_, let lhs, let rhs): 1 + lhs.nodeCount + rhs.nodeCount
        default: 1
        }
    }
}
