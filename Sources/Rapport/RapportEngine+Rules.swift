import Foundation
public import RapportCore
public import RapportRules

/// A problem with a rule definition: the field it is in and, for expressions and templates, where in the text.
public struct DefinitionIssue: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The field (`condition`, `trigger.filter`, `actions[1].subject`...).
    public var field: String
    public var message: String
    /// 1-based line and column in the field's text; 0 when the issue is not about a position.
    public var line: Int
    public var column: Int
    /// The line of text with a caret under the problem; empty when not about a position.
    public var excerpt: String

    public init(field: String, message: String, line: Int = 0, column: Int = 0, excerpt: String = "") {
        self.field = field
        self.message = message
        self.line = line
        self.column = column
        self.excerpt = excerpt
    }

    init(field: String, _ issue: ExpressionIssue) {
        self.init(field: field, message: issue.message, line: issue.line, column: issue.column, excerpt: issue.excerpt)
    }

    public var description: String {
        line > 0 ? "\(field): line \(line), column \(column): \(message)\n\(excerpt)" : "\(field): \(message)"
    }

    var violation: FieldViolation {
        FieldViolation(field: field, problem: line > 0 ? "line \(line), column \(column): \(message)\n\(excerpt)" : message)
    }
}

/// One page of rule runs, newest first.
public struct RunPage: Hashable, Sendable {
    public var runs: [RuleRun]
    public var nextPageToken: String?
}

/// Why a rule would or would not fire for a customer now.
public struct RuleExplanation: Hashable, Sendable {
    /// The trigger's filter, if the rule has one.
    public var filter: Explanation?
    /// The condition, if the rule has one.
    public var condition: Explanation?
    /// The limit that would stop it (frequency, daily cap, consent), if any.
    public var limit: String?
    /// Whether it would fire (or start waiting) now.
    public var wouldFire: Bool
}

extension RapportEngine {
    /// Creates a rule (enabled by default). Every expression and template is checked against the schema now;
    /// an error names the field and, in text, the line and column.
    ///
    /// ```swift
    /// let welcome = try await crm.createRule(RuleDefinition(
    ///     name: "Welcome", trigger: .event(type: "customer.created"),
    ///     actions: [.addTag("new"), .sendMessage(MessageAction(channel: .email, purpose: .transactional, template: "welcome",
    ///                                                          subject: "Welcome, {{ customer.given_name ?? \"friend\" }}"))],
    ///     limits: RuleLimits(frequency: .oncePerCustomer)))
    /// ```
    public func createRule(_ definition: RuleDefinition, enabled: Bool = true, requestID: String? = nil) async throws(RapportError) -> Rule {
        let now = clock.now()
        let id = ids.make(RuleID.self, at: now)
        let rule: Rule = try await mutate("createRule", requestID: requestID, fingerprint: RuleCreation(definition: definition, enabled: enabled)) { tx in
            try Self.requireValid(definition, tx: tx)
            let rule = Rule(id: id, version: 1, definition: definition, enabled: enabled, createdAt: now, updatedAt: now)
            try tx.insertRule(rule)
            try tx.insertRuleDefinition(definition, rule: id, version: 1)
            try tx.bumpDefinitionsVersion()
            if enabled { try Self.scheduleJobs(of: rule, tx: tx, now: now) }
            return rule
        }
        try await planPromptly(rule)
        return rule
    }

    /// Replaces a rule's definition with a new version. Waiting runs finish with the version they started with.
    public func updateRule(_ id: RuleID, _ definition: RuleDefinition, ifMatch: String? = nil, requestID: String? = nil) async throws(RapportError) -> Rule {
        try await updateRule(id, ifMatch: ifMatch, requestID: requestID, fingerprint: UpdateRuleFingerprint(id: id, definition: definition, ifMatch: ifMatch)) { _ in
            definition
        }
    }

    /// Changes only the fields `changes` sets, in one transaction with reading the current version: an update of
    /// other fields made meanwhile is never reverted. Waiting runs finish with the version they started with.
    ///
    /// ```swift
    /// let renamed = try await crm.updateRule(rule.id, RuleChanges(name: "Welcome (v2)", wait: .some(nil)))
    /// ```
    public func updateRule(_ id: RuleID, _ changes: RuleChanges, ifMatch: String? = nil, requestID: String? = nil) async throws(RapportError) -> Rule {
        try await updateRule(id, ifMatch: ifMatch, requestID: requestID, fingerprint: UpdateRuleChangesFingerprint(id: id, changes: changes, ifMatch: ifMatch)) {
            changes.applied(to: $0)
        }
    }

    /// Writes the definition `change` makes of the current one as a new version, unless it is the same.
    private func updateRule(
        _ id: RuleID, ifMatch: String?, requestID: String?, fingerprint: some Encodable, change: @Sendable @escaping (RuleDefinition) -> RuleDefinition
    ) async throws(RapportError) -> Rule {
        let now = clock.now()
        let rule: Rule = try await mutate("updateRule", requestID: requestID, fingerprint: fingerprint) { tx in
            guard var rule = try tx.rule(id) else { throw RapportError.notFound(entity: "rule", id: id.rawValue) }
            try Self.check(etag: ifMatch, version: rule.version, entity: "rule", id: id.rawValue)
            let definition = change(rule.definition)
            // An action saved before HTML bodies were limited to e-mail, messages to a purpose of contact, and data
            // and payloads to 100 entries, keeps them: only a changed one is held to it.
            let kept = Set(
                definition.actions.indices.filter { $0 < rule.definition.actions.count && definition.actions[$0] == rule.definition.actions[$0] }
                    .flatMap {
                        [
                            "actions[\($0)].send_message.html", "actions[\($0)].send_message.purpose", "actions[\($0)].send_message.data",
                            "actions[\($0)].call_webhook.payload",
                        ]
                    })
            let issues = try Self.issues(of: definition, tx: tx, kept: kept)
            guard issues.isEmpty else { throw RapportError.invalidArgument(issues.map(\.violation)) }
            guard definition != rule.definition else { return rule }
            let replan = definition.trigger != rule.definition.trigger
            rule.version += 1
            rule.definition = definition
            rule.updatedAt = now
            try tx.updateRule(rule)
            try tx.insertRuleDefinition(definition, rule: id, version: rule.version)
            try tx.bumpDefinitionsVersion()
            // The same trigger keeps its jobs: the occurrences due or part-way through (09:00's birthdays while
            // the rule's text is edited) run with the new version rather than move to their next occurrence.
            if replan {
                try Self.unscheduleJobs(of: id, tx: tx)
                if rule.enabled { try Self.scheduleJobs(of: rule, tx: tx, now: now) }
            }
            return rule
        }
        try await planPromptly(rule)  // runs only a planning a new trigger scheduled
        return rule
    }

    /// Turns a rule on or off. Turning it off cancels its waiting runs and its date and schedule jobs.
    public func setRuleEnabled(_ id: RuleID, _ enabled: Bool, requestID: String? = nil) async throws(RapportError) -> Rule {
        let now = clock.now()
        let rule: Rule = try await mutate(enabled ? "enableRule" : "disableRule", requestID: requestID, fingerprint: id) { tx in
            guard var rule = try tx.rule(id) else { throw RapportError.notFound(entity: "rule", id: id.rawValue) }
            guard rule.enabled != enabled else { return rule }
            rule.enabled = enabled
            rule.updatedAt = now
            try tx.updateRule(rule)
            try tx.bumpDefinitionsVersion()
            try Self.unscheduleJobs(of: id, tx: tx)
            if enabled {
                try Self.scheduleJobs(of: rule, tx: tx, now: now)
            } else {
                try Self.cancelWaitingRuns(of: id, reason: "the rule was disabled", tx: tx, now: now)
            }
            return rule
        }
        try await planPromptly(rule)
        return rule
    }

    /// Deletes a rule: its waiting runs are cancelled; its finished runs stay on record.
    public func deleteRule(_ id: RuleID, requestID: String? = nil) async throws(RapportError) {
        let now = clock.now()
        let _: Done = try await mutate("deleteRule", requestID: requestID, fingerprint: id) { tx in
            guard try tx.rule(id) != nil else { throw RapportError.notFound(entity: "rule", id: id.rawValue) }
            try Self.cancelWaitingRuns(of: id, reason: "the rule was deleted", tx: tx, now: now)
            try Self.unscheduleJobs(of: id, tx: tx)
            try tx.deleteRule(id)
            try tx.bumpDefinitionsVersion()
            return Done()
        }
    }

    /// One rule.
    public func rule(_ id: RuleID) async throws(RapportError) -> Rule {
        try await read { tx in
            guard let rule = try tx.rule(id) else { throw RapportError.notFound(entity: "rule", id: id.rawValue) }
            return rule
        }
    }

    /// Every rule, by id.
    public func rules() async throws(RapportError) -> [Rule] {
        try await read { tx in try tx.rules() }
    }

    /// Every problem of a definition, without saving anything: empty when it is valid.
    public func validateRule(_ definition: RuleDefinition) async throws(RapportError) -> [DefinitionIssue] {
        try await read { tx in try Self.issues(of: definition, tx: tx) }
    }

    /// Why a rule would fire or not for a customer now (and an event, for event-triggered rules).
    public func explainRule(_ id: RuleID, customer: CustomerID, event: EventInput? = nil) async throws(RapportError) -> RuleExplanation {
        let now = clock.now()
        let zone = automationSettings.defaultTimeZone
        let identities = try event.map { event throws(RapportError) in try normalize(event.identities, parent: "event.identities") } ?? []
        return try await read { tx in
            guard let rule = try tx.rule(id) else { throw RapportError.notFound(entity: "rule", id: id.rawValue) }
            let record = try tx.activeCustomer(customer)
            let scope: ExpressionScope = rule.definition.trigger.eventType.map { .event(type: $0) } ?? .customer
            let (trigger, order) = try Self.imagined(event, identities: identities, customer: record.id, tx: tx, now: now)
            if let trigger, trigger.type != rule.definition.trigger.eventType {
                throw RapportError.invalid("event.type", "the rule triggers on '\(rule.definition.trigger.eventType ?? "no event")', not '\(trigger.type)'")
            }
            var explanation = RuleExplanation(filter: nil, condition: nil, limit: nil, wouldFire: true)
            if case .event(_, let filter) = rule.definition.trigger, !filter.isEmpty {
                explanation.filter = try Self.explain(
                    filter, scope: scope, customer: record.id, event: trigger, order: order, tx: tx, now: now, zone: zone, field: "trigger.filter", stored: true)
                if explanation.filter?.value != .bool(true) { explanation.wouldFire = false }
            }
            if !rule.definition.condition.isEmpty {
                explanation.condition = try Self.explain(
                    rule.definition.condition, scope: scope, customer: record.id, event: trigger, order: order, tx: tx, now: now, zone: zone, field: "condition",
                    stored: true)
                if explanation.condition?.value != .bool(true) { explanation.wouldFire = false }
            }
            let catalog = try CatalogCache.build(tx, version: 0) { _ in }
            if let compiled = catalog.rules[id] {
                // As a run started now would be: limited as of when it would fire.
                let customerZone = record.profile.timeZone.isEmpty ? zone : TimeZone(identifier: record.profile.timeZone) ?? zone
                let (_, firesAt, held) = WriteSession.firing(compiled.definition, event: trigger, now: now, zone: customerZone)
                explanation.limit = try WriteSession.limitReached(
                    compiled, customer: record.id, consents: currentConsents(try tx.consents(of: record.id)), tx: tx, now: firesAt, held: held)
            }
            if explanation.limit != nil { explanation.wouldFire = false }
            if !rule.enabled { explanation.wouldFire = false }
            return explanation
        }
    }

    /// The value of every part of an expression for a customer (and `event`, for an expression that reads `event.*`).
    public func explainExpression(_ expression: String, customer: CustomerID, event: EventInput? = nil) async throws(RapportError) -> Explanation {
        let now = clock.now()
        let zone = automationSettings.defaultTimeZone
        let identities = try event.map { event throws(RapportError) in try normalize(event.identities, parent: "event.identities") } ?? []
        return try await read { tx in
            let record = try tx.activeCustomer(customer)
            let (trigger, order) = try Self.imagined(event, identities: identities, customer: record.id, tx: tx, now: now)
            return try Self.explain(
                expression, scope: trigger.map { .event(type: $0.type) } ?? .customer, customer: record.id, event: trigger, order: order, tx: tx, now: now,
                zone: zone, field: "expression")
        }
    }

    /// The event an explanation imagines, and its order: an order event (`order.placed`, ...) naming one of the
    /// customer's orders in `properties.order_id` is the event a run of it gets, with the order (`order.*`).
    static func imagined(_ input: EventInput?, identities: [Identity], customer: CustomerID, tx: any StoreReader, now: Timestamp) throws
        -> (event: Event?, order: Order?)
    {
        guard let input else { return (nil, nil) }
        let event = Event(
            id: input.id, type: input.type, occurredAt: input.occurredAt, channel: input.channel, identities: identities, properties: input.properties,
            customerID: customer, receivedAt: now)
        guard input.type.hasPrefix("order."), let status = OrderStatus(rawValue: String(input.type.dropFirst("order.".count))),
              case .string(let id)? = input.properties["order_id"]
        else { return (event, nil) }
        guard let stored = try tx.order(OrderID(uncheckedRawValue: id)), try tx.activeCustomer(stored.order.customerID).id == customer else {
            throw RapportError.invalid("event.properties.order_id", "'\(id)' is not an order of customer \(customer)")
        }
        return (BuiltInEvent.order(stored.order, status: status, at: input.occurredAt, now: now), stored.order)
    }

    /// Runs of rules, newest first, filtered by rule, customer and status.
    ///
    /// A customer's runs are those of everyone merged into it too; the id of a customer merged away lists its
    /// survivor's (as every read by a merged id does); an unknown one is `notFound`.
    public func runs(rule: RuleID? = nil, customer: CustomerID? = nil, status: RunStatus? = nil, page: PageRequest = PageRequest()) async throws(RapportError)
        -> RunPage
    {
        let size = try PageToken.pageSize(page.size)
        let scope = "\(rule?.rawValue ?? "")|\(customer?.rawValue ?? "")|\(status?.rawValue ?? "")"
        let before = try page.token.map { token throws(RapportError) in try PageToken.decodeRun(token, scope: scope) }
        return try await read { tx in
            var found: [RuleRun]
            if let customer {
                // Each customer of the merged side, newest first, merged into one list.
                let side = try WriteSession.standingSide(of: try tx.activeCustomer(customer).id, tx: tx)
                found = []
                for member in side {
                    found += try tx.runs(RunQuery(ruleID: rule, customerID: member, status: status, before: before, limit: size + 1))
                }
                found = Array(found.sorted { RunCursor($0) > RunCursor($1) }.prefix(size + 1))
            } else {
                found = try tx.runs(RunQuery(ruleID: rule, status: status, before: before, limit: size + 1))
            }
            let shown = Array(found.prefix(size))
            return RunPage(runs: shown, nextPageToken: found.count > size ? shown.last.map { PageToken.encode(run: RunCursor($0), scope: scope) } : nil)
        }
    }

    /// One run.
    public func run(_ id: RunID) async throws(RapportError) -> RuleRun {
        try await read { tx in
            guard let run = try tx.run(id) else { throw RapportError.notFound(entity: "rule run", id: id.rawValue) }
            return run
        }
    }

    /// Declares an event type's properties so that expressions can use them. Declarations only grow: a declared
    /// property keeps its type, new ones can be added; an empty description keeps the one declared before.
    public func defineEventType(_ definition: EventTypeDefinition, requestID: String? = nil) async throws(RapportError) -> EventTypeDefinition {
        try definition.validate()
        return try await mutate("defineEventType", requestID: requestID, fingerprint: definition) { tx in
            var merged = definition
            if let existing = try tx.eventTypeDefinitions().first(where: { $0.type == definition.type }) {
                var properties = Dictionary(existing.properties.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
                for (index, property) in definition.properties.enumerated() {
                    if let old = properties[property.key], old.type != property.type {
                        throw RapportError.invalidArgument([
                            FieldViolation(
                                field: "properties[\(index)].type",
                                problem: "'\(property.key)' is declared as \(old.type.rawValue) for '\(definition.type)'; its type cannot change")
                        ])
                    }
                    // A property sent again without its description keeps the one it has.
                    var property = property
                    if property.description.isEmpty, let old = properties[property.key] { property.description = old.description }
                    properties[property.key] = property
                }
                // Sent without a description (to add a property), the type keeps its own.
                let description = definition.description.isEmpty ? existing.description : definition.description
                merged = EventTypeDefinition(type: definition.type, description: description, properties: Array(properties.values))
            }
            try tx.putEventTypeDefinition(merged)
            try tx.bumpDefinitionsVersion()
            return merged
        }
    }

    /// The declared event types (not the built-in ones), by type.
    public func eventTypes() async throws(RapportError) -> [EventTypeDefinition] {
        try await read { tx in try tx.eventTypeDefinitions() }
    }

    // MARK: Jobs of rules

    /// Plans a date rule's first page of customers now, so that small stores have it planned on return.
    private func planPromptly(_ rule: Rule) async throws(RapportError) {
        guard rule.enabled, case .date = rule.definition.trigger else { return }
        for _ in 0..<20 {
            guard try await runJob("plan:\(rule.id.rawValue)", now: clock.now()) else { break }
        }
    }

    static func scheduleJobs(of rule: Rule, tx: any StoreWriter, now: Timestamp) throws {
        switch rule.definition.trigger {
        case .date:
            try tx.putJob(ScheduledJob(key: "plan:\(rule.id.rawValue)", dueAt: now, kind: .planDateTrigger(rule: rule.id, after: nil)))
        case .schedule(let schedule):
            let next = WriteSession.nextOccurrence(schedule, after: now)
            try tx.putJob(ScheduledJob(key: "schedule:\(rule.id.rawValue)", dueAt: next, kind: .scheduledRule(rule: rule.id, occurrence: next, after: nil)))
        default: break
        }
    }

    static func unscheduleJobs(of id: RuleID, tx: any StoreWriter) throws {
        try tx.deleteJob("plan:\(id.rawValue)")
        try tx.deleteJob("schedule:\(id.rawValue)")
        try tx.deleteJobs(keyPrefix: WriteSession.dateJobKeyPrefix(id))
    }

    static func cancelWaitingRuns(of id: RuleID, reason: String, tx: any StoreWriter, now: Timestamp) throws {
        while true {
            let waiting = try tx.runs(RunQuery(ruleID: id, status: .waiting, limit: 500))
            for var run in waiting {
                run.end(.cancelled, reason: reason, at: now)
                try tx.updateRun(run)
                try tx.deleteJob("wait:\(run.id.rawValue)")
            }
            if waiting.count < 500 { return }
        }
    }
}

/// What identifies an update request, for request-id retries.
struct UpdateRuleFingerprint: Encodable {
    var id: RuleID
    var definition: RuleDefinition
    var ifMatch: String?
}

/// Some fields of a rule's definition to change; nil leaves a field as it is.
public struct RuleChanges: Hashable, Sendable {
    public var name: String?
    public var description: String?
    public var trigger: RuleTrigger?
    public var condition: String?
    /// `.some(nil)` removes the wait.
    public var wait: RuleWait??
    public var actions: [RuleAction]?
    public var limits: RuleLimits?
    public var priority: Int?

    public init(
        name: String? = nil, description: String? = nil, trigger: RuleTrigger? = nil, condition: String? = nil, wait: RuleWait?? = nil,
        actions: [RuleAction]? = nil, limits: RuleLimits? = nil, priority: Int? = nil
    ) {
        self.name = name
        self.description = description
        self.trigger = trigger
        self.condition = condition
        self.wait = wait
        self.actions = actions
        self.limits = limits
        self.priority = priority
    }

    /// `definition` with these changes made.
    public func applied(to definition: RuleDefinition) -> RuleDefinition {
        var result = definition
        if let name { result.name = name }
        if let description { result.description = description }
        if let trigger { result.trigger = trigger }
        if let condition { result.condition = condition }
        if let wait { result.wait = wait }
        if let actions { result.actions = actions }
        if let limits { result.limits = limits }
        if let priority { result.priority = priority }
        return result
    }
}

/// What identifies a partial update request, for request-id retries (a removed wait is told from an untouched one).
struct UpdateRuleChangesFingerprint: Encodable {
    var id: RuleID
    var changes: RuleChanges
    var ifMatch: String?

    enum CodingKeys: String, CodingKey { case id, ifMatch, name, description, trigger, condition, wait, removesWait, actions, limits, priority }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(ifMatch, forKey: .ifMatch)
        try container.encodeIfPresent(changes.name, forKey: .name)
        try container.encodeIfPresent(changes.description, forKey: .description)
        try container.encodeIfPresent(changes.trigger, forKey: .trigger)
        try container.encodeIfPresent(changes.condition, forKey: .condition)
        if case .some(let wait) = changes.wait {
            if let wait { try container.encode(wait, forKey: .wait) } else { try container.encode(true, forKey: .removesWait) }
        }
        try container.encodeIfPresent(changes.actions, forKey: .actions)
        try container.encodeIfPresent(changes.limits, forKey: .limits)
        try container.encodeIfPresent(changes.priority, forKey: .priority)
    }
}

/// What a retried `createRule` must repeat: the definition, and whether the rule starts enabled. An enabled rule's
/// is the definition alone in a list, as before `enabled` counted, so that retries across an upgrade still match.
private struct RuleCreation: Encodable {
    var definition: RuleDefinition
    var enabled: Bool

    private enum CodingKeys: String, CodingKey { case definition, enabled }

    func encode(to encoder: any Encoder) throws {
        if enabled {
            var list = encoder.unkeyedContainer()
            try list.encode(definition)
        } else {
            var object = encoder.container(keyedBy: CodingKeys.self)
            try object.encode(definition, forKey: .definition)
            try object.encode(enabled, forKey: .enabled)
        }
    }
}
