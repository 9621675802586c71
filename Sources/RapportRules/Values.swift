public import Foundation
public import RapportCore

/// The static type of an expression or of one of its parts.
public enum ValueType: Hashable, Sendable, CustomStringConvertible {
    case bool, int, decimal, string
    /// Money; the currency when it is known before evaluation (`49.99 EUR`, `total_spent("EUR")`).
    case money(CurrencyCode?)
    case duration, timestamp
    /// A calendar date without a zone (a birthday).
    case date
    case stringList, intList
    /// The type of the `null` literal, which compares with anything.
    case null

    public var description: String {
        switch self {
        case .bool: "bool"
        case .int: "int"
        case .decimal: "decimal"
        case .string: "string"
        case .money(let currency): currency.map { "money(\($0))" } ?? "money"
        case .duration: "duration"
        case .timestamp: "timestamp"
        case .date: "date"
        case .stringList: "string list"
        case .intList: "int list"
        case .null: "null"
        }
    }

    /// The type of a custom attribute or event property of this type.
    public init(_ attributeType: AttributeType) {
        switch attributeType {
        case .string: self = .string
        case .int: self = .int
        case .decimal: self = .decimal
        case .bool: self = .bool
        case .timestamp: self = .timestamp
        case .stringList: self = .stringList
        }
    }

    /// The attribute or event property type that holds values of this type; nil for money, durations, dates, int
    /// lists and null, which none holds.
    public var attributeType: AttributeType? {
        AttributeType.allCases.first { ValueType($0) == self }
    }

    var isNumeric: Bool { self == .int || self == .decimal }
    var isMoney: Bool {
        if case .money = self { return true }
        return false
    }
    var isList: Bool { self == .stringList || self == .intList }
    /// The element type of a list type.
    var element: ValueType? {
        switch self {
        case .stringList: .string
        case .intList: .int
        default: nil
        }
    }
}

/// A value an expression produced, as ``explain`` shows it and templates print it.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    /// Missing: a field without a value, an attribute not set, a function with nothing to compute.
    case null
    case bool(Bool)
    case int(Int64)
    case decimal(Decimal)
    case string(String)
    case money(Money)
    /// Milliseconds.
    case duration(Int64)
    case timestamp(Timestamp)
    case date(LocalDate)
    case stringList([String])
    case intList([Int64])

    /// As an expression would print it: strings quoted, money with its currency, durations in their largest
    /// whole unit (`90d`), timestamps in ISO 8601.
    public var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): value ? "true" : "false"
        case .int(let value): String(value)
        case .decimal(let value): value.description
        case .string(let value): Syntax.quoted(value)
        case .money(let value): value.description
        case .duration(let value): Self.durationText(value)
        case .timestamp(let value): value.description
        case .date(let value): value.description
        case .stringList(let value): "[" + value.map(Syntax.quoted).joined(separator: ", ") + "]"
        case .intList(let value): "[" + value.map(String.init).joined(separator: ", ") + "]"
        }
    }

    /// As a template prints it: strings bare, lists joined by ", ", null as nothing.
    public var text: String {
        switch self {
        case .null: ""
        case .string(let value): value
        case .stringList(let value): value.joined(separator: ", ")
        case .intList(let value): value.map(String.init).joined(separator: ", ")
        default: description
        }
    }

    /// `90d`, `1h`, `-30m`, `1500ms`: the largest unit that divides the duration.
    public static func durationText(_ milliseconds: Int64) -> String {
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        where milliseconds != 0 && milliseconds % size == 0 {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(milliseconds)ms"
    }

    /// The value of a custom attribute or event property.
    public init(_ attribute: AttributeValue?) {
        switch attribute {
        case nil: self = .null
        case .string(let value): self = .string(value)
        case .int(let value): self = .int(value)
        case .decimal(let value): self = .decimal(value)
        case .bool(let value): self = .bool(value)
        case .timestamp(let value): self = .timestamp(value)
        case .stringList(let value): self = .stringList(value)
        }
    }

    /// The attribute value this value can be stored as (rules' `set_attribute` and `emit_event`), if any.
    public var attributeValue: AttributeValue? {
        switch self {
        case .string(let value): .string(value)
        case .int(let value): .int(value)
        case .decimal(let value): .decimal(value)
        case .bool(let value): .bool(value)
        case .timestamp(let value): .timestamp(value)
        case .stringList(let value): .stringList(value)
        default: nil
        }
    }
}
