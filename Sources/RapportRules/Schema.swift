public import RapportCore

/// What expressions may refer to beyond the built-in fields: declared custom attributes, declared event types
/// with their properties, and segments by key.
public struct ExpressionSchema: Sendable {
    /// Declared custom attributes by key.
    public var attributes: [String: AttributeType]
    /// Property types by event type, built-in types included.
    public var eventTypes: [String: [String: AttributeType]]
    /// Segment ids by key.
    public var segments: [String: String]

    /// A schema from the stored declarations; the built-in event types are always part of it.
    public init(attributes: [AttributeDefinition] = [], eventTypes: [EventTypeDefinition] = [], segments: [String: String] = [:]) {
        self.attributes = Dictionary(attributes.map { ($0.key, $0.type) }, uniquingKeysWith: { _, last in last })
        var types: [String: [String: AttributeType]] = [:]
        for definition in EventTypeDefinition.builtIn + eventTypes { types[definition.type] = definition.propertyTypes }
        self.eventTypes = types
        self.segments = segments
    }
}

/// Where an expression is used, which decides what it may refer to.
public enum ExpressionScope: Hashable, Sendable {
    /// A segment definition, a scheduled or date-triggered rule: the customer, no triggering event.
    case customer
    /// A rule triggered by events of `type`: `event.*`, and `order.*` for the built-in `order.*` types.
    case event(type: String)

    /// The triggering event type, if any.
    public var eventType: String? {
        if case .event(let type) = self { return type }
        return nil
    }

    /// Whether the trigger is about an order (`order.placed`, `order.paid`...).
    var hasOrder: Bool { eventType?.hasPrefix("order.") == true && EventTypeDefinition.isBuiltIn(eventType!) }
}
