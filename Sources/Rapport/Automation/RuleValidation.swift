import Foundation
import RapportCore
import RapportRules

extension RapportEngine {
    /// Throws `invalidArgument` with every problem of a definition, each naming its field.
    static func requireValid(_ definition: RuleDefinition, tx: any StoreReader) throws {
        let issues = try issues(of: definition, tx: tx)
        guard issues.isEmpty else { throw RapportError.invalidArgument(issues.map(\.violation)) }
    }

    /// Every problem of a rule definition, checked against the schema `tx` sees.
    /// The first path of `syntax` that reads personal data masked for some roles (`customer.emails`,
    /// `customer.phones`, `customer.birthday` but its year, and what dates it: `days_until_birthday()`, and
    /// `customer.age`, which changes on the birthday), with where it is written.
    static func personalPath(in syntax: Syntax) -> (String, SourceRange)? {
        switch syntax.kind {
        case .path(let parts):
            guard parts.count >= 2, parts[0] == "customer" else { return nil }
            switch parts[1] {
            case "emails", "phones", "age": return (parts.joined(separator: "."), syntax.range)
            case "birthday" where parts.count == 2 || parts[2] != "year": return (parts.joined(separator: "."), syntax.range)
            default: return nil
            }
        case .list(let items): return items.lazy.compactMap(personalPath).first
        case .call("days_until_birthday", _): return ("days_until_birthday()", syntax.range)
        case .call(_, let arguments): return arguments.lazy.compactMap { personalPath(in: $0.value) }.first
        case .unary(_, let operand): return personalPath(in: operand)
        case .binary(_, let left, let right): return personalPath(in: left) ?? personalPath(in: right)
        case .integer, .decimal, .string, .bool, .null, .duration, .timestamp, .money: return nil
        }
    }

    /// How many problems with a definition are enough to stop looking for more expressions' and templates'.
    static let maxIssues = 50

    /// The problems of `definition`, except those of the fields in `kept` (an unchanged action keeps what it was
    /// saved with).
    static func issues(of definition: RuleDefinition, tx: any StoreReader, kept: Set<String> = []) throws -> [DefinitionIssue] {
        let schema = try expressionSchema(tx)
        var issues: [DefinitionIssue] = [] {
            didSet { issues.removeAll { kept.contains($0.field) } }
        }
        func add(_ field: String, _ message: String) { issues.append(DefinitionIssue(field: field, message: message)) }
        let scope: ExpressionScope = definition.trigger.eventType.map { .event(type: $0) } ?? .customer
        @discardableResult
        func expression(_ text: String, _ field: String, expecting: ValueType? = .bool, storesValue: Bool = false) -> CompiledExpression? {
            // Past a screenful of problems the rest are not looked for: each costs a pass over its text.
            guard issues.count < Self.maxIssues else { return nil }
            do {
                let compiled = try CompiledExpression(text, schema: schema, scope: scope, expecting: expecting)
                // An attribute or event property is shown unmasked to roles without the right to personal data: a
                // value that may hold an e-mail, a phone or a birthday's month and day must not be copied there
                // (a yes or no about them may).
                if storesValue, compiled.type != .bool, let (path, range) = Self.personalPath(in: compiled.syntax) {
                    issues.append(
                        DefinitionIssue(
                            field: field,
                            ExpressionIssue(
                                "'\(path)' is personal data: a stored attribute or event property would show it unmasked to every role; "
                                    + "send it in a message or webhook instead", at: range, in: text)))
                }
                return compiled
            } catch {
                issues += error.issues.map { DefinitionIssue(field: field, $0) }
                return nil
            }
        }
        func template(_ text: String, _ field: String) {
            guard issues.count < Self.maxIssues else { return }
            do {
                _ = try Template(text, schema: schema, scope: scope)
            } catch {
                issues += error.issues.map { DefinitionIssue(field: field, $0) }
            }
        }
        func key(_ key: String, _ field: String) {
            do throws(RapportError) {
                try AttributeDefinition.validateKey(key, field: field)
            } catch {
                for violation in error.fieldViolations { add(violation.field, violation.problem) }
            }
        }
        func segmentExists(_ id: SegmentID, _ field: String) throws {
            if try tx.segment(id) == nil { add(field, "segment '\(id)' not found") }
        }

        if definition.name.trimmingCharacters(in: .whitespaces).isEmpty || definition.name.unicodeScalars.count > 200 { add("name", "must be 1 to 200 characters") }
        if definition.description.unicodeScalars.count > 2000 { add("description", "is longer than 2000 characters") }
        if !(-1000...1000).contains(definition.priority) { add("priority", "must be -1000 to 1000, got \(definition.priority)") }

        switch definition.trigger {
        case .event(let type, let filter):
            if !EventTypeDefinition.isEventTypeName(type) {
                add("trigger.event.event_type", "'\(type)' must be lower-case words of letters, digits and '_' joined by '.' (at most 64 characters)")
            } else if type == "segment.entered" || type == "segment.exited" {
                // These fire per segment: an event trigger for them would never fire.
                let field = type == "segment.entered" ? "segment_entered" : "segment_exited"
                add("trigger.event.event_type", "'\(type)' fires per segment: use the \(field) trigger with the segment's id")
            } else if !filter.isEmpty {
                expression(filter, "trigger.event.filter")
            }
        case .segmentEntered(let id):
            try segmentExists(id, "trigger.segment_entered")
        case .segmentExited(let id):
            try segmentExists(id, "trigger.segment_exited")
        case .schedule(let schedule):
            if TimeZone(identifier: schedule.timeZone) == nil { add("trigger.schedule.time_zone", "'\(schedule.timeZone)' is not an IANA time zone such as 'Europe/Berlin'") }
            do throws(RapportError) { try schedule.at.validate(field: "trigger.schedule.at") } catch { for v in error.fieldViolations { add(v.field, v.problem) } }
            switch schedule.frequency {
            case .daily: break
            case .weekly(let weekday) where !(1...7).contains(weekday): add("trigger.schedule.weekly_on_weekday", "must be 1 (Monday) to 7 (Sunday), got \(weekday)")
            case .monthly(let day) where !(1...31).contains(day): add("trigger.schedule.monthly_on_day", "must be 1 to 31, got \(day)")
            default: break
            }
            if let audience = schedule.audience { try segmentExists(audience, "trigger.schedule.audience_segment_id") }
        case .date(let trigger):
            do throws(RapportError) { try trigger.at.validate(field: "trigger.date.at") } catch { for v in error.fieldViolations { add(v.field, v.problem) } }
            if !(-366...366).contains(trigger.offsetDays) { add("trigger.date.offset_days", "must be -366 to 366, got \(trigger.offsetDays)") }
            if case .attribute(let attribute) = trigger.field {
                if schema.attributes[attribute] != .timestamp {
                    add("trigger.date.attribute", "'attributes.\(attribute)' must be a declared timestamp attribute")
                }
            }
        }

        if !definition.condition.isEmpty { expression(definition.condition, "condition") }
        if let wait = definition.wait {
            if wait.milliseconds < 1000 || wait.milliseconds > 366 * 86_400_000 { add("wait.duration", "must be 1 second to 366 days") }
            if !wait.recheck.isEmpty { expression(wait.recheck, "wait.recheck") }
        }

        if definition.actions.isEmpty || definition.actions.count > 20 { add("actions", "a rule has 1 to 20 actions, got \(definition.actions.count)") }
        for (index, action) in definition.actions.enumerated() {
            let field = "actions[\(index)]"
            switch action {
            case .addTag(let tag), .removeTag(let tag):
                if tag.isEmpty || tag.unicodeScalars.count > 64 || tag.contains(where: { $0.isNewline || $0 == "," }) || tag.containsNUL
                    || tag != tag.trimmingCharacters(in: .whitespaces)
                {
                    let kind = if case .addTag = action { "add_tag" } else { "remove_tag" }
                    add("\(field).\(kind)", "'\(tag)' must be 1 to 64 characters without commas, line breaks, NUL or surrounding spaces")
                }
            case .setLifecycleStage: break
            case .setAttribute(let attribute, let value):
                if let type = schema.attributes[attribute] {
                    expression(value, "\(field).set_attribute.value", expecting: ValueType(type), storesValue: true)
                } else {
                    add("\(field).set_attribute.key", "'\(attribute)' is not a declared attribute")
                }
            case .emitEvent(let type, let properties):
                if !EventTypeDefinition.isEventTypeName(type) {
                    add("\(field).emit_event.event_type", "'\(type)' must be lower-case words of letters, digits and '_' joined by '.'")
                } else if EventTypeDefinition.isBuiltIn(type) {
                    add("\(field).emit_event.event_type", "'\(type)' is a built-in event type that only Rapport records")
                }
                if properties.count > 100 { add("\(field).emit_event.properties", "at most 100 properties") }
                // Each value must be one an event property holds, of the type the event type declares: a value that
                // is not would be dropped, or fail every run, only when the rule fires.
                let declared = schema.eventTypes[type]
                for name in properties.keys.sorted() {
                    let path = "\(field).emit_event.properties.\(name)"
                    key(name, path)
                    guard let compiled = expression(properties[name]!, path, expecting: nil, storesValue: true) else { continue }
                    let stored = compiled.type.attributeType
                    if let expected = declared?[name] {
                        if stored != expected && !(expected == .decimal && stored == .int) {
                            add(path, "is \(compiled.type), but event type '\(type)' declares '\(name)' as \(expected.rawValue)")
                        }
                    } else if stored == nil {
                        add(path, "is \(compiled.type), which an event property cannot hold (string, int, decimal, bool, timestamp or string list)")
                    }
                }
            case .sendMessage(let message):
                if message.template.isEmpty || message.template.unicodeScalars.count > 200 || message.template.contains(where: \.isNewline) {
                    add("\(field).send_message.template", "must be 1 to 200 characters on one line")
                }
                template(message.subject, "\(field).send_message.subject")
                template(message.body, "\(field).send_message.body")
                if message.purpose == .profiling {
                    // Profiling is a use of data, not a reason to write to someone: a grant of it must not carry a
                    // message its customer refused as marketing.
                    add("\(field).send_message.purpose", "a message is transactional or marketing; profiling is not a purpose to contact someone for")
                }
                if message.html, message.channel != .email {
                    add("\(field).send_message.html", "an HTML body is for e-mail; a \(message.channel.rawValue) message is plain text")
                }
                if message.data.count > 100 { add("\(field).send_message.data", "at most 100 entries, got \(message.data.count)") }
                for name in message.data.keys.sorted() {
                    key(name, "\(field).send_message.data.\(name)")
                    template(message.data[name]!, "\(field).send_message.data.\(name)")
                }
            case .callWebhook(let webhook):
                if let url = URL(string: webhook.url), let scheme = url.scheme?.lowercased(), ["https", "http"].contains(scheme), url.host?.isEmpty == false,
                    webhook.url.count <= 2000
                {
                } else {
                    add("\(field).call_webhook.url", "'\(webhook.url)' is not an absolute http or https URL")
                }
                if webhook.payload.count > 100 { add("\(field).call_webhook.payload", "at most 100 entries, got \(webhook.payload.count)") }
                for name in webhook.payload.keys.sorted() {
                    key(name, "\(field).call_webhook.payload.\(name)")
                    expression(webhook.payload[name]!, "\(field).call_webhook.payload.\(name)", expecting: nil)
                }
            }
        }

        let limits = definition.limits
        if case .oncePerCustomerPer(let milliseconds) = limits.frequency, milliseconds < 1000 {
            add("limits.once_per_customer_per", "must be at least 1 second")
        }
        if let cap = limits.dailyCap, cap < 1 { add("limits.daily_cap", "must be at least 1, got \(cap)") }
        if let quiet = limits.quietHours {
            do throws(RapportError) {
                try quiet.start.validate(field: "limits.quiet_hours.start")
                try quiet.end.validate(field: "limits.quiet_hours.end")
            } catch {
                for v in error.fieldViolations { add(v.field, v.problem) }
            }
            if quiet.start == quiet.end { add("limits.quiet_hours", "start and end are the same time") }
        }
        return issues
    }
}
