import Foundation
import RapportCore
import RapportRules
import Synchronization

/// A dynamic segment with its compiled expression.
final class CompiledSegment: Sendable {
    let segment: Segment
    let predicate: CompiledExpression

    init(segment: Segment, predicate: CompiledExpression) {
        self.segment = segment
        self.predicate = predicate
    }
}

/// One action of a rule, compiled.
enum CompiledAction: Sendable {
    case addTag(String)
    case removeTag(String)
    case setAttribute(key: String, type: AttributeType, value: CompiledExpression)
    case setLifecycleStage(LifecycleStage)
    case emitEvent(type: String, properties: [(key: String, value: CompiledExpression)])
    case sendMessage(MessageAction, subject: Template, body: Template, data: [(key: String, value: Template)])
    case callWebhook(url: String, payload: [(key: String, value: CompiledExpression)])
}

/// A version of a rule with its expressions and templates compiled.
final class CompiledRule: Sendable {
    let id: RuleID
    let version: Int64
    let definition: RuleDefinition
    let filter: CompiledExpression?
    let condition: CompiledExpression?
    let recheck: CompiledExpression?
    let actions: [CompiledAction]
    /// What evaluating any of its expressions reads.
    let requirements: Requirements

    var scope: ExpressionScope { definition.trigger.eventType.map { .event(type: $0) } ?? .customer }

    init(
        id: RuleID, version: Int64, definition: RuleDefinition, filter: CompiledExpression?, condition: CompiledExpression?, recheck: CompiledExpression?,
        actions: [CompiledAction], requirements: Requirements
    ) {
        self.id = id
        self.version = version
        self.definition = definition
        self.filter = filter
        self.condition = condition
        self.recheck = recheck
        self.actions = actions
        self.requirements = requirements
    }
}

/// Everything automation needs, compiled once per definitions version and shared by the transactions that see
/// that version. A class, so that handing it around costs one reference; never changed once built.
final class AutomationCatalog: @unchecked Sendable {
    var version: Int64
    var schema: ExpressionSchema
    var attributes: AttributeSchema
    var eventTypes: [String: EventTypeDefinition]
    var segments: [SegmentID: Segment]
    /// Dynamic segments, each after the segments its expression names.
    var dynamicSegments: [CompiledSegment]
    /// Enabled rules by what triggers them, highest priority first.
    var rulesByEventType: [String: [CompiledRule]]
    var rulesBySegmentEntered: [SegmentID: [CompiledRule]]
    var rulesBySegmentExited: [SegmentID: [CompiledRule]]
    var dateRules: [CompiledRule]
    /// The current version of every rule, enabled or not.
    var rules: [RuleID: CompiledRule]
    /// What the dynamic segments read: a customer's segments are re-evaluated with only that loaded.
    var segmentRequirements: Requirements
    /// The dynamic segments whose membership tells personal data, with the path that does (or why it is assumed).
    var revealingPersonalData: [SegmentID: String] = [:]
    /// What ``revealingPersonalData`` says of a segment whose expression does not compile: nothing is shown that might.
    static let unreadable = "an expression that cannot be read"

    /// Nothing to maintain and nothing to trigger: transactions skip automation entirely.
    var isIdle: Bool { dynamicSegments.isEmpty && rulesByEventType.isEmpty && rulesBySegmentEntered.isEmpty && rulesBySegmentExited.isEmpty && dateRules.isEmpty }

    init(version: Int64) {
        self.version = version
        schema = ExpressionSchema()
        attributes = AttributeSchema()
        eventTypes = [:]
        segments = [:]
        dynamicSegments = []
        rulesByEventType = [:]
        rulesBySegmentEntered = [:]
        rulesBySegmentExited = [:]
        dateRules = []
        rules = [:]
        segmentRequirements = Requirements()
    }
}

/// Builds catalogs and keeps the latest one, and compiled older rule versions for waiting runs.
final class CatalogCache: Sendable {
    private let latest = Mutex<AutomationCatalog?>(nil)
    private let versions = Mutex<[String: CompiledRule]>([:])
    /// How many catalogs were compiled (tests check that transactions share them).
    let builds = Atomic<Int>(0)

    /// The catalog for the definitions `tx` sees, compiled if it changed since the last one.
    func catalog(_ tx: any StoreReader, logger: (String) -> Void) throws -> AutomationCatalog {
        let version = try tx.definitionsVersion()
        if let cached = latest.withLock({ $0 }), cached.version == version { return cached }
        let catalog = try Self.build(tx, version: version, logger: logger)
        builds.add(1, ordering: .relaxed)
        // Versions are random, not ordered: the last one built is the one to keep (a stale one only costs a rebuild).
        latest.withLock { $0 = catalog }
        return catalog
    }

    /// A rule version for a waiting run: the catalog's when current, else compiled from the stored version.
    func rule(_ id: RuleID, version: Int64, catalog: AutomationCatalog, tx: any StoreReader) throws -> CompiledRule? {
        if let current = catalog.rules[id], current.version == version { return current }
        let key = "\(id.rawValue)@\(version)"
        if let cached = versions.withLock({ $0[key] }) { return cached }
        guard let definition = try tx.ruleDefinition(id, version: version) else { return nil }
        guard let compiled = try? Self.compile(rule: id, version: version, definition: definition, schema: catalog.schema) else { return nil }
        versions.withLock { $0[key] = compiled }
        return compiled
    }

    static func build(_ tx: any StoreReader, version: Int64, logger: (String) -> Void) throws -> AutomationCatalog {
        let attributeDefinitions = try tx.attributeDefinitions()
        let eventTypes = try tx.eventTypeDefinitions()
        let segments = try tx.segments()
        let schema = ExpressionSchema(
            attributes: attributeDefinitions, eventTypes: eventTypes, segments: Dictionary(segments.map { ($0.key, $0.id.rawValue) }, uniquingKeysWith: { a, _ in a }))
        let catalog = AutomationCatalog(version: version)
        catalog.schema = schema
        catalog.attributes = AttributeSchema(attributeDefinitions)
        catalog.eventTypes = Dictionary(eventTypes.map { ($0.type, $0) }, uniquingKeysWith: { a, _ in a })
        catalog.segments = Dictionary(segments.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })

        var compiled: [CompiledSegment] = []
        for segment in segments where segment.kind == .dynamic {
            do {
                // Saved already: held to the limits of when it was saved.
                let predicate = try ExpressionLimits.$heightLimit.withValue(ExpressionLimits.maxStoredHeight) {
                    try CompiledExpression(segment.expression, schema: schema, scope: .customer)
                }
                compiled.append(CompiledSegment(segment: segment, predicate: predicate))
            } catch {
                logger("segment \(segment.id) (\(segment.key)) no longer compiles and is not maintained: \(error)")
            }
        }
        catalog.dynamicSegments = orderedByDependencies(compiled)
        for entry in catalog.dynamicSegments { catalog.segmentRequirements.formUnion(entry.predicate.requirements) }
        // Membership that tells personal data: a segment reading it, or naming one that does (dependencies come
        // first). One that does not compile is taken to: nothing is shown that might.
        for segment in segments where segment.kind == .dynamic { catalog.revealingPersonalData[segment.id] = AutomationCatalog.unreadable }
        for entry in catalog.dynamicSegments {
            let id = entry.segment.id
            catalog.revealingPersonalData[id] = nil
            if let (path, _) = RapportEngine.personalPath(in: entry.predicate.syntax) {
                catalog.revealingPersonalData[id] = path
            } else if let earlier = entry.segment.revealedPersonalData {
                catalog.revealingPersonalData[id] = "an earlier expression: \(earlier)"
            } else if let through = entry.predicate.requirements.segmentIDs.sorted().lazy.map(SegmentID.init(uncheckedRawValue:))
                .first(where: { catalog.revealingPersonalData[$0] != nil })
            {
                catalog.revealingPersonalData[id] = "in_segment of \(through): \(catalog.revealingPersonalData[through]!)"
            }
        }

        for rule in try tx.rules() {
            let compiledRule: CompiledRule
            do {
                compiledRule = try compile(rule: rule.id, version: rule.version, definition: rule.definition, schema: schema)
            } catch {
                logger("rule \(rule.id) (\(rule.definition.name)) no longer compiles and does not run: \(error)")
                continue
            }
            catalog.rules[rule.id] = compiledRule
            guard rule.enabled else { continue }
            switch rule.definition.trigger {
            case .event(let type, _): catalog.rulesByEventType[type, default: []].append(compiledRule)
            case .segmentEntered(let segment): catalog.rulesBySegmentEntered[segment, default: []].append(compiledRule)
            case .segmentExited(let segment): catalog.rulesBySegmentExited[segment, default: []].append(compiledRule)
            case .date: catalog.dateRules.append(compiledRule)
            case .schedule: break
            }
        }
        let byPriority: (CompiledRule, CompiledRule) -> Bool = { ($0.definition.priority, $1.id) > ($1.definition.priority, $0.id) }
        catalog.rulesByEventType = catalog.rulesByEventType.mapValues { $0.sorted(by: byPriority) }
        catalog.rulesBySegmentEntered = catalog.rulesBySegmentEntered.mapValues { $0.sorted(by: byPriority) }
        catalog.rulesBySegmentExited = catalog.rulesBySegmentExited.mapValues { $0.sorted(by: byPriority) }
        catalog.dateRules.sort(by: byPriority)
        return catalog
    }

    /// Segments after the segments their expressions name (the definitions refuse cycles).
    static func orderedByDependencies(_ segments: [CompiledSegment]) -> [CompiledSegment] {
        let byID = Dictionary(segments.map { ($0.segment.id.rawValue, $0) }, uniquingKeysWith: { a, _ in a })
        var ordered: [CompiledSegment] = []
        var state: [String: Bool] = [:]  // false: visiting, true: done
        func visit(_ segment: CompiledSegment) {
            let id = segment.segment.id.rawValue
            if state[id] != nil { return }
            state[id] = false
            for dependency in segment.predicate.requirements.segmentIDs.sorted() {
                if let next = byID[dependency] { visit(next) }
            }
            state[id] = true
            ordered.append(segment)
        }
        for segment in segments.sorted(by: { $0.segment.key < $1.segment.key }) { visit(segment) }
        return ordered
    }

    /// Compiles every expression and template of a rule version.
    static func compile(rule id: RuleID, version: Int64, definition: RuleDefinition, schema: ExpressionSchema) throws -> CompiledRule {
        let scope: ExpressionScope = definition.trigger.eventType.map { .event(type: $0) } ?? .customer
        var requirements = Requirements()
        func expression(_ text: String, expecting: ValueType? = .bool) throws -> CompiledExpression {
            // A saved version: held to the limits of when it was saved (new ones are checked before they are saved).
            let compiled = try ExpressionLimits.$heightLimit.withValue(ExpressionLimits.maxStoredHeight) {
                try CompiledExpression(text, schema: schema, scope: scope, expecting: expecting)
            }
            requirements.formUnion(compiled.requirements)
            return compiled
        }
        func template(_ text: String, _ escaping: Template.Escaping) throws -> Template {
            let compiled = try ExpressionLimits.$heightLimit.withValue(ExpressionLimits.maxStoredHeight) {
                try Template(text, schema: schema, scope: scope, escaping: escaping)
            }
            requirements.formUnion(compiled.requirements)
            return compiled
        }
        var filter: CompiledExpression?
        if case .event(_, let text) = definition.trigger, !text.isEmpty { filter = try expression(text) }
        let condition = definition.condition.isEmpty ? nil : try expression(definition.condition)
        let recheck = (definition.wait?.recheck ?? "").isEmpty ? nil : try expression(definition.wait!.recheck)
        var actions: [CompiledAction] = []
        for action in definition.actions {
            switch action {
            case .addTag(let tag): actions.append(.addTag(tag))
            case .removeTag(let tag): actions.append(.removeTag(tag))
            case .setLifecycleStage(let stage): actions.append(.setLifecycleStage(stage))
            case .setAttribute(let key, let value):
                guard let type = schema.attributes[key] else { throw RapportError.invalid("set_attribute.key", "'\(key)' is not a declared attribute") }
                actions.append(.setAttribute(key: key, type: type, value: try expression(value, expecting: ValueType(type))))
            case .emitEvent(let type, let properties):
                let compiled = try properties.keys.sorted().map { key in (key: key, value: try expression(properties[key]!, expecting: nil)) }
                actions.append(.emitEvent(type: type, properties: compiled))
            case .sendMessage(let message):
                requirements.data.insert(.consents)  // consent is checked when the entry is created
                let data = try message.data.keys.sorted().map { key in (key: key, value: try template(message.data[key]!, .text)) }
                actions.append(
                    .sendMessage(
                        message, subject: try template(message.subject, .singleLine), body: try template(message.body, message.html ? .html : .text), data: data))
            case .callWebhook(let webhook):
                let payload = try webhook.payload.keys.sorted().map { key in (key: key, value: try expression(webhook.payload[key]!, expecting: nil)) }
                actions.append(.callWebhook(url: webhook.url, payload: payload))
            }
        }
        if definition.limits.requiredConsent != nil { requirements.data.insert(.consents) }
        if definition.limits.quietHours != nil { requirements.data.insert(.profile) }
        return CompiledRule(
            id: id, version: version, definition: definition, filter: filter, condition: condition, recheck: recheck, actions: actions, requirements: requirements)
    }
}
