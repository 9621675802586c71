import Foundation
import RapportCore
import RapportRules

extension WriteSession {
    /// Applies one action of a firing run and says what became of it.
    mutating func apply(_ action: CompiledAction, index: Int, run: RuleRun, depth: Int, context: inout EvaluationContext) throws -> ActionOutcome {
        let customer = context.customer.id
        switch action {
        case .addTag(let tag):
            return try editProfile("add_tag", depth: depth, context: &context) { profile in
                guard !profile.tags.contains(tag) else { return "already tagged '\(tag)'" }
                profile.tags.append(tag)
                return nil
            } ?? ActionOutcome(action: "add_tag", status: .applied, detail: "tagged '\(tag)'")
        case .removeTag(let tag):
            return try editProfile("remove_tag", depth: depth, context: &context) { profile in
                guard profile.tags.contains(tag) else { return "not tagged '\(tag)'" }
                profile.tags.removeAll { $0 == tag }
                return nil
            } ?? ActionOutcome(action: "remove_tag", status: .applied, detail: "removed tag '\(tag)'")
        case .setLifecycleStage(let stage):
            return try editProfile("set_lifecycle_stage", depth: depth, context: &context) { profile in
                guard profile.lifecycleStage != stage else { return "already \(stage.rawValue)" }
                profile.lifecycleStage = stage
                return nil
            } ?? ActionOutcome(action: "set_lifecycle_stage", status: .applied, detail: "set to \(stage.rawValue)")
        case .setAttribute(let key, let type, let expression):
            guard let value = Self.attributeValue(expression.evaluate(context), as: type) else {
                return ActionOutcome(action: "set_attribute", status: .skipped, detail: "the value of \(key) is missing")
            }
            return try editProfile("set_attribute", depth: depth, context: &context) { profile in
                guard profile.attributes[key] != value else { return "\(key) is already \(value)" }
                profile.attributes[key] = value
                return nil
            } ?? ActionOutcome(action: "set_attribute", status: .applied, detail: "set \(key) to \(value)")
        case .emitEvent(let type, let properties):
            var values: [String: AttributeValue] = [:]
            for (key, expression) in properties {
                if let value = expression.evaluate(context).attributeValue { values[key] = value }
            }
            if let declared = try catalog().eventTypes[type], let problem = Self.propertyProblem(values, declared) {
                return ActionOutcome(action: "emit_event", status: .failed, detail: problem)
            }
            // The limits ingest keeps (a string of 10,000 bytes, a list of 1,000 items): no event ingest would refuse.
            do throws(RapportError) {
                try RapportEngine.checkProperties(values)
            } catch {
                return ActionOutcome(action: "emit_event", status: .failed, detail: error.fieldViolations.map { "\($0.field): \($0.problem)" }.joined(separator: "; "))
            }
            let event = Event(
                id: "\(run.id.rawValue).\(index)", type: type, occurredAt: now, channel: .other, identities: [], properties: values, customerID: customer,
                receivedAt: now)
            try tx.insertEvent(EventRecord(event: event, homeCustomerID: customer, sequence: try tx.allocateSequence(1)))
            // Not something the customer did: their event count and last seen time stay (``Event/isEmittedByRule``).
            touch(customer)
            try markDirty(customer, [.events], depth: depth + 1)
            try trigger(customer, event, depth: depth + 1)
            return ActionOutcome(action: "emit_event", status: .applied, detail: "recorded event \(event.id) of type \(type)")
        case .sendMessage(let message, let subject, let body, let data):
            let consents = context.consents
            guard Self.allows(consents, channel: message.channel, purpose: message.purpose) else {
                return ActionOutcome(
                    action: "send_message", status: .skipped, detail: "the customer does not consent to \(message.channel.rawValue) for \(message.purpose.rawValue)")
            }
            let identities = try tx.identities(of: customer).map(\.identity)
            let recipient: String?
            switch message.channel {
            case .email: recipient = identities.first { $0.kind == .email }?.value
            case .sms, .phone: recipient = identities.first { $0.kind == .phone }.map { IdentityNormalizer.dialable($0).value }
            case .push: recipient = customer.rawValue
            }
            guard let recipient else {
                let what = message.channel == .email ? "e-mail address" : "phone number"
                return ActionOutcome(action: "send_message", status: .skipped, detail: "the customer has no \(what)")
            }
            var rendered: [String: String] = [:]
            for (key, template) in data { rendered[key] = template.render(context) }
            let payload = OutboxPayload.message(
                OutboxMessage(
                    channel: message.channel, purpose: message.purpose, template: message.template, recipient: recipient, subject: subject.render(context),
                    body: body.render(context), html: message.html, data: rendered))
            let entry = try enqueue(payload, run: run, index: index, customer: customer)
            return ActionOutcome(action: "send_message", status: .applied, detail: "queued \(message.channel.rawValue) '\(message.template)'", outboxEntryID: entry)
        case .callWebhook(let url, let payload):
            let body = "{" + payload.map { Value.jsonString($0.key) + ":" + $0.value.evaluate(context).json }.joined(separator: ",") + "}"
            let entry = try enqueue(.webhook(url: url, body: body), run: run, index: index, customer: customer)
            return ActionOutcome(action: "call_webhook", status: .applied, detail: "queued a call to \(url)", outboxEntryID: entry)
        }
    }

    /// Queues a side effect in the outbox, keyed by the run and the action so that it is never queued twice.
    private mutating func enqueue(_ payload: OutboxPayload, run: RuleRun, index: Int, customer: CustomerID) throws -> OutboxEntryID {
        let key = "\(run.id.rawValue):\(index)"
        if let existing = try tx.outboxEntry(idempotencyKey: key) { return existing.id }
        let entry = OutboxEntry(
            id: engine.ids.make(OutboxEntryID.self, at: now), sequence: try tx.allocateSequence(1), customerID: customer, idempotencyKey: key, payload: payload,
            ruleID: run.ruleID, runID: run.id, availableAt: now, createdAt: now, updatedAt: now)
        try tx.insertOutboxEntry(entry)
        return entry.id
    }

    /// Changes the customer's profile with `edit` (which returns why nothing needs doing, if so) and saves it as
    /// an update would; returns the outcome when nothing changed or the change is invalid, nil when applied.
    private mutating func editProfile(
        _ name: String, depth: Int, context: inout EvaluationContext, _ edit: (inout CustomerProfile) -> String?
    ) throws -> ActionOutcome? {
        guard var record = try tx.customer(context.customer.id) else { return ActionOutcome(action: name, status: .failed, detail: "the customer is gone") }
        var profile = record.profile
        if let unchanged = edit(&profile) { return ActionOutcome(action: name, status: .applied, detail: unchanged) }
        profile = profile.normalized()
        // Tags and stages were checked with the rule; attribute values have the declared type. What is left is
        // what a value computed now can break.
        // (A merge may have left more than 200 tags: removing one still works.)
        if profile.tags.count > 200, profile.tags.count > record.profile.tags.count {
            return ActionOutcome(action: name, status: .failed, detail: "the customer would have more than 200 tags")
        }
        for (key, value) in profile.attributes where value != record.profile.attributes[key] {
            // As an update would take it (``CustomerProfile/validate(schema:)``).
            switch value {
            case .string(let text) where text.unicodeScalars.count > 10_000 || text.containsNUL:
                return ActionOutcome(action: name, status: .failed, detail: "attributes.\(key) would be longer than 10000 characters or hold NUL")
            case .stringList(let items) where items.count > 1_000 || items.contains(where: { $0.unicodeScalars.count > 1_000 || $0.containsNUL }):
                return ActionOutcome(
                    action: name, status: .failed, detail: "attributes.\(key) would hold more than 1000 items, or one longer than 1000 characters or with NUL")
            default: break
            }
        }
        let changed = profile.changedFields(comparedTo: record.profile)
        guard !changed.isEmpty else { return ActionOutcome(action: name, status: .applied, detail: "nothing to change") }
        record.profile = profile
        try tx.saveProfile(&record, changed: changed, at: now)
        context.customer = record
        try markDirty(record.id, .profile, depth: depth + 1)
        return nil
    }

    /// A value as an attribute of `type` (an integer is a valid decimal), or nil.
    static func attributeValue(_ value: Value, as type: AttributeType) -> AttributeValue? {
        switch (value, type) {
        case (.int(let number), .decimal): .decimal(Decimal(number))
        case (.timestamp(let time), .timestamp) where !time.isKept: nil  // no instant Rapport keeps
        default: value.attributeValue.flatMap { $0.type == type ? $0 : nil }
        }
    }

    /// Why these properties do not fit the declared event type, if they do not.
    static func propertyProblem(_ properties: [String: AttributeValue], _ declared: EventTypeDefinition) -> String? {
        let types = declared.propertyTypes
        for key in properties.keys.sorted() {
            guard let type = types[key], let value = properties[key] else { continue }
            if value.type != type, !(type == .decimal && value.type == .int) {
                return "property '\(key)' must be \(type.rawValue) as declared for '\(declared.type)', got \(value.type.rawValue)"
            }
        }
        return nil
    }
}
