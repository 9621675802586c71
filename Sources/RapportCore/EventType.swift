/// The declaration of an event type and the types of its properties, so that rules and segments can use them.
///
/// Declaring is optional for ingest (undeclared types and properties are stored as sent) but required to refer to
/// a property in an expression. A declared property's type cannot change; an ingested event whose declared
/// property has another type is rejected.
///
/// ```swift
/// try await crm.defineEventType(EventTypeDefinition(type: "cart.updated", properties: [
///     EventPropertyDefinition(key: "value_minor", type: .int),
///     EventPropertyDefinition(key: "skus", type: .stringList),
/// ]))
/// ```
public struct EventTypeDefinition: Hashable, Sendable, Codable {
    /// The event type (`cart.updated`).
    public var type: String
    /// What the event means, for people.
    public var description: String
    /// The declared properties, sorted by key.
    public var properties: [EventPropertyDefinition]

    public init(type: String, description: String = "", properties: [EventPropertyDefinition] = []) {
        self.type = type
        self.description = description
        self.properties = properties.sorted { $0.key < $1.key }
    }

    /// The type of each declared property, by key.
    public var propertyTypes: [String: AttributeType] {
        Dictionary(properties.map { ($0.key, $0.type) }, uniquingKeysWith: { first, _ in first })
    }

    /// The event types Rapport itself produces for rules to trigger on: order placements and status changes,
    /// customer creation, and segment entries and exits. They cannot be redeclared.
    public static let builtIn: [EventTypeDefinition] = {
        let order = [
            EventPropertyDefinition(key: "order_id", type: .string, description: "Rapport's id of the order (ord_...)"),
            EventPropertyDefinition(key: "source", type: .string, description: "where the order came from"),
            EventPropertyDefinition(key: "external_id", type: .string, description: "the order's id in its source"),
            EventPropertyDefinition(key: "status", type: .string, description: "the order's status"),
            EventPropertyDefinition(key: "currency", type: .string, description: "ISO 4217 code"),
            EventPropertyDefinition(key: "total_minor", type: .int, description: "the order's total in minor units"),
            EventPropertyDefinition(key: "item_count", type: .int, description: "the sum of the lines' quantities"),
            EventPropertyDefinition(key: "skus", type: .stringList, description: "the SKUs of the lines"),
        ]
        let segment = [
            EventPropertyDefinition(key: "segment_id", type: .string, description: "the segment's id (seg_...)"),
            EventPropertyDefinition(key: "segment_key", type: .string, description: "the segment's key"),
        ]
        return OrderStatus.allCases.map { EventTypeDefinition(type: "order.\($0.rawValue)", description: "an order was \($0.rawValue)", properties: order) }
            + [
                EventTypeDefinition(type: "customer.created", description: "a customer was created, by the API or by ingest"),
                EventTypeDefinition(type: "segment.entered", description: "the customer entered a segment", properties: segment),
                EventTypeDefinition(type: "segment.exited", description: "the customer left a segment", properties: segment),
            ]
    }()

    /// Whether `type` is one of the ``builtIn`` types.
    public static func isBuiltIn(_ type: String) -> Bool { builtInTypes.contains(type) }

    private static let builtInTypes = Set(builtIn.map(\.type))

    /// Checks the type name and the properties; throws every violation at once.
    public func validate() throws(RapportError) {
        var validator = Validator()
        if !Self.isEventTypeName(type) {
            validator.add("type", "'\(type)' must be lower-case words of letters, digits and '_' joined by '.' (at most 64 characters)")
        } else if Self.isBuiltIn(type) {
            validator.add("type", "'\(type)' is a built-in event type and cannot be declared")
        }
        if description.unicodeScalars.count > 1000 { validator.add("description", "is longer than 1000 characters") }
        if properties.count > 100 { validator.add("properties", "at most 100 properties, got \(properties.count)") }
        var seen = Set<String>()
        for (index, property) in properties.enumerated() {
            validator.capture("") { () throws(RapportError) in try AttributeDefinition.validateKey(property.key, field: "properties[\(index)].key") }
            if !seen.insert(property.key).inserted { validator.add("properties[\(index)].key", "'\(property.key)' is declared twice") }
            if property.description.unicodeScalars.count > 1000 { validator.add("properties[\(index)].description", "is longer than 1000 characters") }
        }
        try validator.check()
    }

    /// Lower-case words of letters, digits and `_` joined by `.`, at most 64 characters (`checkout.started`).
    public static func isEventTypeName(_ type: String) -> Bool {
        guard !type.isEmpty, type.utf8.count <= 64 else { return false }
        // Words of [a-z0-9_] that start with a letter, joined by single dots.
        var wordStart = true
        for byte in type.utf8 {
            if byte == 46 {
                guard !wordStart else { return false }
                wordStart = true
            } else if wordStart {
                guard byte >= 97, byte <= 122 else { return false }
                wordStart = false
            } else {
                guard (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) || byte == 95 else { return false }
            }
        }
        return !wordStart
    }
}

/// One declared property of an event type.
public struct EventPropertyDefinition: Hashable, Sendable, Codable {
    public var key: String
    public var type: AttributeType
    public var description: String

    public init(key: String, type: AttributeType, description: String = "") {
        self.key = key
        self.type = type
        self.description = description
    }
}
