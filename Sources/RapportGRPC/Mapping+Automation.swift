import Foundation
import Rapport
import RapportCore
import RapportProto
import RapportRules
import SwiftProtobuf

// Proto ⇄ domain for segments, rules, runs, explanations, event types, the outbox and the clock. Mapping only.

extension Duration {
    /// A request's duration, within the range protobuf allows (±10,000 years); else `invalid` naming the field.
    init(_ proto: Google_Protobuf_Duration, field: String) throws(RapportError) {
        let seconds = proto.seconds
        let nanos = proto.nanos
        guard (-315_576_000_000...315_576_000_000).contains(seconds), (-999_999_999...999_999_999).contains(nanos),
            seconds == 0 || nanos == 0 || (seconds < 0) == (nanos < 0)
        else { throw .invalid(field, "is not a valid duration (seconds and nanos out of range or of different signs)") }
        self = .milliseconds(seconds * 1000 + Int64(nanos / 1_000_000))
    }

    var proto: Google_Protobuf_Duration {
        let millis = milliseconds
        return Google_Protobuf_Duration(seconds: millis / 1000, nanos: Int32((millis % 1000) * 1_000_000))
    }
}

// MARK: Segments

extension Segment {
    var proto: Rapport_V1_Segment {
        .with {
            $0.id = id.rawValue
            $0.key = key
            $0.name = name
            $0.description_p = description
            $0.kind = kind == .dynamic ? .dynamic : .list
            $0.expression = expression
            $0.state = state == .ready ? .ready : .building
            $0.memberCount = memberCount
            $0.createTime = createdAt.proto
            $0.updateTime = updatedAt.proto
            $0.etag = etag
        }
    }
}

extension SegmentMembership {
    var proto: Rapport_V1_SegmentMembership {
        .with {
            $0.segmentID = segmentID.rawValue
            $0.customerID = customerID.rawValue
            $0.sinceTime = since.proto
        }
    }
}

func segmentInput(_ proto: Rapport_V1_Segment) throws(RapportError) -> SegmentInput {
    let kind: SegmentKind
    switch proto.kind {
    case .dynamic: kind = .dynamic
    case .list: kind = .list
    case .unspecified: kind = proto.expression.isEmpty ? .list : .dynamic
    case .UNRECOGNIZED(let value): throw .invalid("segment.kind", "\(value) is not a segment kind")
    }
    return SegmentInput(key: proto.key, name: proto.name, description: proto.description_p, kind: kind, expression: proto.expression)
}

// MARK: Explanations

extension Explanation {
    var proto: Rapport_V1_Explanation {
        .with {
            $0.root = Self.nodeProto(root)
            $0.value = value.description
            if let nextChange { $0.nextChangeTime = nextChange.proto }
            $0.text = description
        }
    }

    static func nodeProto(_ node: Explanation.Node) -> Rapport_V1_ExplanationNode {
        .with {
            $0.text = node.text
            $0.start = Int32(node.range.start)
            $0.end = Int32(node.range.end)
            $0.type = node.type.description
            $0.value = node.value?.description ?? ""
            $0.evaluated = node.value != nil
            $0.children = node.children.map(nodeProto)
        }
    }
}

// MARK: Rules

/// The time of day of a request field, `HH:MM`.
func localTime(_ text: String, field: String, default fallback: LocalTime? = nil) throws(RapportError) -> LocalTime {
    if text.isEmpty, let fallback { return fallback }
    return try LocalTime(parsing: text, field: field)
}

func ruleDefinition(_ proto: Rapport_V1_Rule, field: String = "rule") throws(RapportError) -> RuleDefinition {
    var validator = Validator()
    let trigger = validator.capture("") { () throws(RapportError) in try ruleTrigger(proto, field: "\(field).trigger") }
    var wait: RuleWait?
    if proto.hasWait {
        let duration = validator.capture("") { () throws(RapportError) in try Duration(proto.wait.duration, field: "\(field).wait.duration") }
        wait = RuleWait(duration: duration ?? .zero, recheck: proto.wait.recheck)
    }
    var actions: [RuleAction] = []
    for (index, action) in proto.actions.enumerated() {
        if let mapped = validator.capture("", { () throws(RapportError) in try ruleAction(action, field: "\(field).actions[\(index)]") }) { actions.append(mapped) }
    }
    let limits = validator.capture("") { () throws(RapportError) in try ruleLimits(proto.limits, field: "\(field).limits") }
    try validator.check()
    return RuleDefinition(
        name: proto.name, description: proto.description_p, trigger: trigger!, condition: proto.condition, wait: wait, actions: actions, limits: limits!,
        priority: Int(proto.priority))
}

func ruleTrigger(_ rule: Rapport_V1_Rule, field: String) throws(RapportError) -> RuleTrigger {
    guard rule.hasTrigger, let kind = rule.trigger.kind else { throw .invalid(field, "is required: an event, a segment entered or exited, a schedule or a date") }
    switch kind {
    case .event(let event): return .event(type: event.eventType, filter: event.filter)
    case .segmentEntered(let id): return .segmentEntered(try parseID(SegmentID.self, id, field: "\(field).segment_entered"))
    case .segmentExited(let id): return .segmentExited(try parseID(SegmentID.self, id, field: "\(field).segment_exited"))
    case .schedule(let schedule):
        let frequency: RuleSchedule.Frequency
        switch schedule.frequency {
        case nil: throw .invalid("\(field).schedule", "names no frequency: daily, weekly_on_weekday or monthly_on_day")
        case .daily(let set):
            // A marker: false would read as "not daily" in the caller's language, which is no frequency at all.
            guard set else { throw .invalid("\(field).schedule.daily", "must be true when set") }
            frequency = .daily
        case .weeklyOnWeekday(let weekday): frequency = .weekly(weekday: Int(weekday))
        case .monthlyOnDay(let day): frequency = .monthly(day: Int(day))
        }
        let audience = schedule.audienceSegmentID.isEmpty ? nil : try parseID(SegmentID.self, schedule.audienceSegmentID, field: "\(field).schedule.audience_segment_id")
        return .schedule(
            RuleSchedule(
                frequency: frequency, at: try localTime(schedule.at, field: "\(field).schedule.at"),
                timeZone: schedule.timeZone.isEmpty ? "UTC" : schedule.timeZone, audience: audience))
    case .date(let date):
        let dateField: DateTrigger.Field
        switch date.field {
        case nil: throw .invalid("\(field).date", "names no date: birthday, created or attribute")
        case .birthday(let set):
            guard set else { throw .invalid("\(field).date.birthday", "must be true when set") }
            dateField = .birthday
        case .created(let set):
            guard set else { throw .invalid("\(field).date.created", "must be true when set") }
            dateField = .createdAt
        case .attribute(let key): dateField = .attribute(key)
        }
        return .date(DateTrigger(field: dateField, offsetDays: Int(date.offsetDays), at: try localTime(date.at, field: "\(field).date.at", default: LocalTime(hour: 9))))
    }
}

func ruleAction(_ proto: Rapport_V1_RuleAction, field: String) throws(RapportError) -> RuleAction {
    switch proto.kind {
    case .addTag(let tag): return .addTag(tag)
    case .removeTag(let tag): return .removeTag(tag)
    case .setAttribute(let action): return .setAttribute(key: action.key, value: action.value)
    case .setLifecycleStage(let stage):
        guard let stage = try LifecycleStage.from(stage, field: "\(field).set_lifecycle_stage") else { throw .invalid("\(field).set_lifecycle_stage", "names no stage") }
        return .setLifecycleStage(stage)
    case .emitEvent(let action): return .emitEvent(type: action.eventType, properties: action.properties)
    case .sendMessage(let action):
        let purpose: ConsentPurpose = action.purpose == .unspecified ? .marketing : try ConsentPurpose(action.purpose, field: "\(field).send_message.purpose")
        return .sendMessage(
            MessageAction(
                channel: try ConsentChannel(action.channel, field: "\(field).send_message.channel"), purpose: purpose, template: action.template,
                subject: action.subject, body: action.body, html: action.html, data: action.data))
    case .callWebhook(let action): return .callWebhook(WebhookAction(url: action.url, payload: action.payload))
    case nil: throw .invalid(field, "names no action")
    }
}

func ruleLimits(_ proto: Rapport_V1_RuleLimits, field: String) throws(RapportError) -> RuleLimits {
    var limits = RuleLimits()
    switch proto.frequency {
    case nil: limits.frequency = .unlimited
    case .unlimited(let set):
        guard set else { throw .invalid("\(field).unlimited", "must be true when set") }
        limits.frequency = .unlimited
    case .oncePerCustomer(let set):
        guard set else { throw .invalid("\(field).once_per_customer", "must be true when set") }
        limits.frequency = .oncePerCustomer
    case .oncePerCustomerPer(let period):
        limits.frequency = .oncePerCustomerPer(milliseconds: try Duration(period, field: "\(field).once_per_customer_per").milliseconds)
    }
    if proto.dailyCap != 0 { limits.dailyCap = Int(proto.dailyCap) }
    if proto.hasQuietHours {
        limits.quietHours = QuietHours(
            start: try localTime(proto.quietHours.start, field: "\(field).quiet_hours.start"), end: try localTime(proto.quietHours.end, field: "\(field).quiet_hours.end"))
    }
    switch (proto.requiredConsentChannel, proto.requiredConsentPurpose) {
    case (.unspecified, .unspecified): break
    case (.unspecified, _): throw .invalid("\(field).required_consent_channel", "is required with required_consent_purpose")
    case (_, .unspecified): throw .invalid("\(field).required_consent_purpose", "is required with required_consent_channel")
    default:
        limits.requiredConsent = RequiredConsent(
            channel: try ConsentChannel(proto.requiredConsentChannel, field: "\(field).required_consent_channel"),
            purpose: try ConsentPurpose(proto.requiredConsentPurpose, field: "\(field).required_consent_purpose"))
    }
    switch proto.retrigger {
    case .unspecified, .ignore: limits.retrigger = .ignore
    case .restart: limits.retrigger = .restart
    case .UNRECOGNIZED(let value): throw .invalid("\(field).retrigger", "\(value) is not a retrigger policy")
    }
    return limits
}

extension Rule {
    var proto: Rapport_V1_Rule {
        var message = definition.proto
        message.id = id.rawValue
        message.enabled = enabled
        message.version = version
        message.createTime = createdAt.proto
        message.updateTime = updatedAt.proto
        message.etag = etag
        return message
    }
}

extension RuleDefinition {
    var proto: Rapport_V1_Rule {
        .with {
            $0.name = name
            $0.description_p = description
            $0.trigger = trigger.proto
            $0.condition = condition
            if let wait { $0.wait = .with { $0.duration = wait.duration.proto; $0.recheck = wait.recheck } }
            $0.actions = actions.map(\.proto)
            $0.limits = limits.proto
            $0.priority = Int32(clamping: priority)
        }
    }
}

extension RuleTrigger {
    var proto: Rapport_V1_RuleTrigger {
        .with {
            switch self {
            case .event(let type, let filter): $0.event = .with { $0.eventType = type; $0.filter = filter }
            case .segmentEntered(let id): $0.segmentEntered = id.rawValue
            case .segmentExited(let id): $0.segmentExited = id.rawValue
            case .schedule(let schedule):
                $0.schedule = .with {
                    switch schedule.frequency {
                    case .daily: $0.daily = true
                    case .weekly(let weekday): $0.weeklyOnWeekday = Int32(clamping: weekday)
                    case .monthly(let day): $0.monthlyOnDay = Int32(clamping: day)
                    }
                    $0.at = schedule.at.description
                    $0.timeZone = schedule.timeZone
                    $0.audienceSegmentID = schedule.audience?.rawValue ?? ""
                }
            case .date(let date):
                $0.date = .with {
                    switch date.field {
                    case .birthday: $0.birthday = true
                    case .createdAt: $0.created = true
                    case .attribute(let key): $0.attribute = key
                    }
                    $0.offsetDays = Int32(clamping: date.offsetDays)
                    $0.at = date.at.description
                }
            }
        }
    }
}

extension RuleAction {
    var proto: Rapport_V1_RuleAction {
        .with {
            switch self {
            case .addTag(let tag): $0.addTag = tag
            case .removeTag(let tag): $0.removeTag = tag
            case .setAttribute(let key, let value): $0.setAttribute = .with { $0.key = key; $0.value = value }
            case .setLifecycleStage(let stage): $0.setLifecycleStage = Optional(stage).proto
            case .emitEvent(let type, let properties): $0.emitEvent = .with { $0.eventType = type; $0.properties = properties }
            case .sendMessage(let message):
                $0.sendMessage = .with {
                    $0.channel = message.channel.proto
                    $0.purpose = message.purpose.proto
                    $0.template = message.template
                    $0.subject = message.subject
                    $0.body = message.body
                    $0.html = message.html
                    $0.data = message.data
                }
            case .callWebhook(let webhook): $0.callWebhook = .with { $0.url = webhook.url; $0.payload = webhook.payload }
            }
        }
    }
}

extension RuleLimits {
    var proto: Rapport_V1_RuleLimits {
        .with {
            switch frequency {
            case .unlimited: $0.unlimited = true
            case .oncePerCustomer: $0.oncePerCustomer = true
            case .oncePerCustomerPer(let milliseconds): $0.oncePerCustomerPer = Duration.milliseconds(milliseconds).proto
            }
            $0.dailyCap = Int32(clamping: dailyCap ?? 0)
            if let quietHours { $0.quietHours = .with { $0.start = quietHours.start.description; $0.end = quietHours.end.description } }
            if let requiredConsent {
                $0.requiredConsentChannel = requiredConsent.channel.proto
                $0.requiredConsentPurpose = requiredConsent.purpose.proto
            }
            $0.retrigger = retrigger == .restart ? .restart : .ignore
        }
    }
}

extension DefinitionIssue {
    var proto: Rapport_V1_DefinitionIssue {
        .with {
            $0.field = field
            $0.message = message
            $0.line = Int32(clamping: line)
            $0.column = Int32(clamping: column)
            $0.excerpt = excerpt
        }
    }
}

extension RunStatus {
    init(_ proto: Rapport_V1_RunStatus, field: String) throws(RapportError) {
        switch proto {
        case .waiting: self = .waiting
        case .fired: self = .fired
        case .skipped: self = .skipped
        case .cancelled: self = .cancelled
        case .unspecified, .UNRECOGNIZED: throw .invalid(field, "is not a run status")
        }
    }

    var proto: Rapport_V1_RunStatus {
        switch self {
        case .waiting: .waiting
        case .fired: .fired
        case .skipped: .skipped
        case .cancelled: .cancelled
        }
    }
}

extension RuleRun {
    var proto: Rapport_V1_RuleRun {
        .with {
            $0.id = id.rawValue
            $0.ruleID = ruleID.rawValue
            $0.ruleVersion = ruleVersion
            $0.customerID = customerID.rawValue
            $0.trigger = trigger
            $0.eventID = eventID ?? ""
            if let event { $0.event = event.proto }
            $0.status = status.proto
            $0.reason = reason
            $0.repeats = Int64(repeats)
            if let resumeAt { $0.resumeTime = resumeAt.proto }
            $0.waitingFor = step?.rawValue ?? ""
            $0.actions = actions.map { outcome in
                .with {
                    $0.action = outcome.action
                    $0.status = outcome.status.rawValue
                    $0.detail = outcome.detail
                    $0.outboxEntryID = outcome.outboxEntryID?.rawValue ?? ""
                }
            }
            $0.createTime = createdAt.proto
            $0.updateTime = updatedAt.proto
        }
    }
}

extension RuleExplanation {
    var proto: Rapport_V1_RuleExplanation {
        .with {
            if let filter { $0.filter = filter.proto }
            if let condition { $0.condition = condition.proto }
            $0.limit = limit ?? ""
            $0.wouldFire = wouldFire
        }
    }
}

extension EventTypeDefinition {
    init(_ proto: Rapport_V1_EventType, field: String) throws(RapportError) {
        var validator = Validator()
        let properties = proto.properties.enumerated().compactMap { index, property in
            validator.capture("") { () throws(RapportError) in
                EventPropertyDefinition(
                    key: property.key, type: try AttributeType(property.type, field: "\(field).properties[\(index)].type"), description: property.description_p)
            }
        }
        try validator.check()
        self.init(type: proto.type, description: proto.description_p, properties: properties)
    }

    var proto: Rapport_V1_EventType {
        .with {
            $0.type = type
            $0.description_p = description
            $0.properties = properties.map { property in .with { $0.key = property.key; $0.type = property.type.proto; $0.description_p = property.description } }
        }
    }
}

// MARK: Outbox

extension OutboxState {
    init(_ proto: Rapport_V1_OutboxState, field: String) throws(RapportError) {
        switch proto {
        case .pending: self = .pending
        case .leased: self = .leased
        case .delivered: self = .delivered
        case .failed: self = .failed
        case .unspecified, .UNRECOGNIZED: throw .invalid(field, "is not an outbox state")
        }
    }

    var proto: Rapport_V1_OutboxState {
        switch self {
        case .pending: .pending
        case .leased: .leased
        case .delivered: .delivered
        case .failed: .failed
        }
    }
}

extension OutboxEntry {
    var proto: Rapport_V1_OutboxEntry {
        .with {
            $0.id = id.rawValue
            $0.sequence = sequence
            $0.customerID = customerID.rawValue
            $0.idempotencyKey = idempotencyKey
            switch payload {
            case .message(let message):
                $0.message = .with {
                    $0.channel = message.channel.proto
                    $0.purpose = message.purpose.proto
                    $0.template = message.template
                    $0.recipient = message.recipient
                    $0.html = message.html
                    $0.subject = message.subject
                    $0.body = message.body
                    $0.data = message.data
                }
            case .webhook(let url, let body): $0.webhook = .with { $0.url = url; $0.body = body }
            }
            $0.ruleID = ruleID?.rawValue ?? ""
            $0.runID = runID?.rawValue ?? ""
            $0.state = state.proto
            $0.attempts = Int32(clamping: attempts)
            $0.leaseOwner = leaseOwner ?? ""
            if let leaseExpiresAt { $0.leaseExpireTime = leaseExpiresAt.proto }
            $0.availableTime = availableAt.proto
            $0.lastError = lastError
            $0.createTime = createdAt.proto
            $0.updateTime = updatedAt.proto
        }
    }
}
