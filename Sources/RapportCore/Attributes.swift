public import Foundation

/// The type of a custom attribute or an event property.
public enum AttributeType: String, Hashable, Sendable, Codable, CaseIterable {
    case string, int, decimal, bool, timestamp, stringList = "string_list"
}

/// A typed value of a custom attribute or an event property.
public enum AttributeValue: Hashable, Sendable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    /// An exact decimal (prices as decimals, scores); never a binary floating point.
    case decimal(Decimal)
    case bool(Bool)
    case timestamp(Timestamp)
    case stringList([String])

    public var type: AttributeType {
        switch self {
        case .string: .string
        case .int: .int
        case .decimal: .decimal
        case .bool: .bool
        case .timestamp: .timestamp
        case .stringList: .stringList
        }
    }

    /// True for the empty string and the empty list: values that lose to any other in a merge.
    public var isEmpty: Bool {
        switch self {
        case .string(let text): text.isEmpty
        case .stringList(let list): list.isEmpty
        default: false
        }
    }

    public var description: String {
        switch self {
        case .string(let value): "\"\(value)\""
        case .int(let value): String(value)
        case .decimal(let value): value.description
        case .bool(let value): String(value)
        case .timestamp(let value): value.description
        case .stringList(let value): "[" + value.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        }
    }
}

extension AttributeValue {
    /// A decimal written in full, `[+-]digits[.digits]` with at most 38 digits (`12.50`, `-3`), or nil: text that
    /// only starts like a number (`1.2.3`, `12-5`) or would lose digits is not one.
    package static func decimal(parsing text: String) -> Decimal? {
        var bytes = text.utf8[...]
        if let sign = bytes.first, sign == 43 || sign == 45 { bytes = bytes.dropFirst() }
        let whole = bytes.prefix { $0 >= 48 && $0 <= 57 }
        var rest = bytes.dropFirst(whole.count)
        var fraction = rest.prefix(0)
        if rest.first == 46 {
            rest = rest.dropFirst()
            fraction = rest.prefix { $0 >= 48 && $0 <= 57 }
            guard !fraction.isEmpty else { return nil }
            rest = rest.dropFirst(fraction.count)
        }
        guard !whole.isEmpty, rest.isEmpty, whole.count + fraction.count <= 38 else { return nil }
        return Decimal(string: text, locale: Locale(identifier: "en_US_POSIX"))
    }
}

extension AttributeValue: Codable {
    private enum CodingKeys: String, CodingKey { case type, value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(AttributeType.self, forKey: .type) {
        case .string: self = .string(try container.decode(String.self, forKey: .value))
        case .int: self = .int(try container.decode(Int64.self, forKey: .value))
        case .decimal:
            let text = try container.decode(String.self, forKey: .value)
            guard let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else {
                throw DecodingError.dataCorruptedError(forKey: .value, in: container, debugDescription: "bad decimal \(text)")
            }
            self = .decimal(value)
        case .bool: self = .bool(try container.decode(Bool.self, forKey: .value))
        case .timestamp: self = .timestamp(Timestamp(millisecondsSinceEpoch: try container.decode(Int64.self, forKey: .value)))
        case .stringList: self = .stringList(try container.decode([String].self, forKey: .value))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        switch self {
        case .string(let value): try container.encode(value, forKey: .value)
        case .int(let value): try container.encode(value, forKey: .value)
        case .decimal(let value): try container.encode(value.description, forKey: .value)
        case .bool(let value): try container.encode(value, forKey: .value)
        case .timestamp(let value): try container.encode(value.millisecondsSinceEpoch, forKey: .value)
        case .stringList(let value): try container.encode(value, forKey: .value)
        }
    }
}

/// The declaration of one custom customer attribute. Undeclared or mistyped values are rejected.
///
/// ```swift
/// try await crm.defineAttribute(AttributeDefinition(key: "shoe_size", type: .decimal))
/// ```
public struct AttributeDefinition: Hashable, Sendable, Codable {
    /// The key: lower-case letters, digits and underscores, starting with a letter, at most 64 characters.
    public var key: String
    public var type: AttributeType
    /// What the attribute means, for people.
    public var description: String

    public init(key: String, type: AttributeType, description: String = "") {
        self.key = key
        self.type = type
        self.description = description
    }

    /// Checks the key's form.
    public func validate() throws(RapportError) {
        try Self.validateKey(key, field: "key")
        if description.unicodeScalars.count > 1000 { throw .invalid("description", "is longer than 1000 characters") }
        if description.containsNUL { throw .invalid("description", "holds a NUL character (U+0000)") }
    }

    /// Checks that `key` is a valid attribute or property key.
    public static func validateKey(_ key: String, field: String) throws(RapportError) {
        guard let first = key.utf8.first, first >= 97, first <= 122 else {
            throw .invalid(field, "'\(key)' must start with a lower-case letter")
        }
        guard key.utf8.count <= 64 else { throw .invalid(field, "'\(key)' is longer than 64 characters") }
        guard key.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }) else {
            throw .invalid(field, "'\(key)' may hold only lower-case letters, digits and '_'")
        }
    }
}

/// The declared custom attributes, by key.
public struct AttributeSchema: Hashable, Sendable {
    public var definitions: [String: AttributeDefinition]

    public init(_ definitions: [AttributeDefinition] = []) {
        self.definitions = Dictionary(definitions.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// `attributes` with whole numbers given for decimal attributes made decimals (`42` → `42.0`), as ingest and
    /// rule actions take them; everything else as it is.
    public func coerced(_ attributes: [String: AttributeValue]) -> [String: AttributeValue] {
        var result = attributes
        for (key, value) in attributes {
            if case .int(let number) = value, definitions[key]?.type == .decimal { result[key] = .decimal(Decimal(number)) }
        }
        return result
    }

    /// Checks every value against its declaration; `parent` prefixes the field paths (`attributes`).
    public func validate(_ attributes: [String: AttributeValue], parent: String = "attributes") throws(RapportError) {
        var validator = Validator()
        for key in attributes.keys.sorted() {
            let value = attributes[key]!
            guard let definition = definitions[key] else {
                validator.add("\(parent).\(key)", "is not a declared attribute")
                continue
            }
            if definition.type != value.type {
                validator.add("\(parent).\(key)", "must be \(definition.type.rawValue), got \(value.type.rawValue)")
            }
            if case .decimal(let number) = value, number.isNaN { validator.add("\(parent).\(key)", "is not a number (NaN)") }
            if case .timestamp(let time) = value, !time.isKept { validator.add("\(parent).\(key)", Timestamp.outsideKeptRange) }
        }
        try validator.check()
    }
}
