/// Identifies an automation rule (`rul_`).
public struct RuleID: PrefixedID {
    public static let prefix = "rul_"
    public static let entity = "rule"
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// Identifies one run of a rule for one customer (`run_`).
public struct RunID: PrefixedID {
    public static let prefix = "run_"
    public static let entity = "rule run"
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// An automation: when the trigger happens for a customer and the condition holds, (optionally wait and check
/// again, then) apply the actions, within the limits.
///
/// ```swift
/// let cart = RuleDefinition(
///     name: "Abandoned cart",
///     trigger: .event(type: "checkout.started"),
///     wait: RuleWait(duration: .seconds(3600), recheck: "orders_count(since: event.occurred_at) == 0"),
///     actions: [.sendMessage(MessageAction(channel: .email, template: "cart-reminder",
///                                          subject: "You left something, {{ customer.given_name ?? \"friend\" }}"))],
///     limits: RuleLimits(frequency: .oncePerCustomerPer(milliseconds: 86_400_000)))
/// ```
public struct RuleDefinition: Hashable, Sendable, Codable {
    public var name: String
    public var description: String
    public var trigger: RuleTrigger
    /// A condition in the rules language checked when the trigger happens; empty means always.
    public var condition: String
    /// Wait, then check again before acting.
    public var wait: RuleWait?
    /// Applied in order.
    public var actions: [RuleAction]
    public var limits: RuleLimits
    /// Rules triggered by the same thing run from the highest priority down (then by id); so do date rules due for
    /// a customer at the same time.
    public var priority: Int

    public init(
        name: String, description: String = "", trigger: RuleTrigger, condition: String = "", wait: RuleWait? = nil, actions: [RuleAction],
        limits: RuleLimits = RuleLimits(), priority: Int = 0
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
}

/// What starts a rule for a customer.
public enum RuleTrigger: Hashable, Sendable, Codable {
    /// An event of this type (ingested, emitted by a rule, or built in: `order.placed`, `order.paid`...,
    /// `customer.created`), optionally only when `filter` (an expression about the event) holds.
    case event(type: String, filter: String = "")
    /// The customer entered the segment.
    case segmentEntered(SegmentID)
    /// The customer left the segment.
    case segmentExited(SegmentID)
    /// A recurring time, for every member of an audience (every active customer without one).
    case schedule(RuleSchedule)
    /// A date of the customer's, with an offset, at a local time in the customer's time zone.
    case date(DateTrigger)

    /// The event type the rule's expressions see as `event`, if any.
    public var eventType: String? {
        switch self {
        case .event(let type, _): type
        case .segmentEntered: "segment.entered"
        case .segmentExited: "segment.exited"
        case .schedule, .date: nil
        }
    }
}

/// A recurring time: every day, or every week on one weekday, at a local time in a time zone.
public struct RuleSchedule: Hashable, Sendable, Codable {
    public enum Frequency: Hashable, Sendable, Codable {
        case daily
        /// 1 is Monday … 7 is Sunday (ISO 8601).
        case weekly(weekday: Int)
        /// On this day of every month (29, 30 and 31 mean the month's last day when it is shorter).
        case monthly(day: Int)
    }

    public var frequency: Frequency
    public var at: LocalTime
    /// IANA time zone of `at`.
    public var timeZone: String
    /// Only members of this segment; every active customer when nil.
    public var audience: SegmentID?

    public init(frequency: Frequency, at: LocalTime, timeZone: String = "UTC", audience: SegmentID? = nil) {
        self.frequency = frequency
        self.at = at
        self.timeZone = timeZone
        self.audience = audience
    }
}

/// A date of the customer's that triggers a rule: each year for a birthday or a signup anniversary, once for a
/// timestamp attribute.
public struct DateTrigger: Hashable, Sendable, Codable {
    public enum Field: Hashable, Sendable, Codable {
        /// Every year on the birthday (29 February is 28 February in other years).
        case birthday
        /// Every year on the day the customer was created.
        case createdAt
        /// Once, on the day a timestamp attribute names (in the customer's time zone).
        case attribute(String)
    }

    public var field: Field
    /// Days after (negative: before) the date.
    public var offsetDays: Int
    /// The local time of day, in the customer's time zone.
    public var at: LocalTime

    public init(field: Field, offsetDays: Int = 0, at: LocalTime = LocalTime(hour: 9)) {
        self.field = field
        self.offsetDays = offsetDays
        self.at = at
    }
}

/// Wait after the trigger, then continue only if `recheck` holds then.
public struct RuleWait: Hashable, Sendable, Codable {
    /// How long to wait, in milliseconds.
    public var milliseconds: Int64
    /// A condition checked when the wait is over; empty means continue.
    public var recheck: String

    public init(duration: Duration, recheck: String = "") {
        self.milliseconds = duration.milliseconds
        self.recheck = recheck
    }

    public var duration: Duration { .milliseconds(milliseconds) }
}

/// One thing a rule does.
public enum RuleAction: Hashable, Sendable, Codable {
    case addTag(String)
    case removeTag(String)
    /// Sets a declared custom attribute to the value of an expression (`"true"`, `"stats.order_count * 10"`).
    case setAttribute(key: String, value: String)
    case setLifecycleStage(LifecycleStage)
    /// Records an event of `type` for the customer; property values are expressions. Rules can trigger on it.
    case emitEvent(type: String, properties: [String: String] = [:])
    /// Queues a message in the outbox, if the customer consents to the channel and purpose.
    case sendMessage(MessageAction)
    /// Queues a call to a webhook in the outbox with a JSON body of expression values.
    case callWebhook(WebhookAction)

    /// The action's name in the API (`add_tag`, `send_message`...).
    public var name: String {
        switch self {
        case .addTag: "add_tag"
        case .removeTag: "remove_tag"
        case .setAttribute: "set_attribute"
        case .setLifecycleStage: "set_lifecycle_stage"
        case .emitEvent: "emit_event"
        case .sendMessage: "send_message"
        case .callWebhook: "call_webhook"
        }
    }
}

/// A message to queue: the channel and purpose consent is checked for, the template the sender renders with,
/// and personalized text rendered by Rapport (`{{ expression }}` placeholders).
public struct MessageAction: Hashable, Sendable, Codable {
    public var channel: ConsentChannel
    public var purpose: ConsentPurpose
    /// The sender's template id (`welcome-v2`).
    public var template: String
    /// A single line (line breaks removed from values): the subject or title.
    public var subject: String
    /// The body.
    public var body: String
    /// The body is HTML: values inserted in it are HTML-escaped (e-mail only; ``OutboxMessage/html`` says so).
    public var html: Bool
    /// More personalization for the sender's template: key → template text. Its values are rendered as plain text,
    /// never HTML-escaped (even with `html`): the sender escapes them for where its template puts them. At most
    /// 100 entries.
    public var data: [String: String]

    public init(
        channel: ConsentChannel, purpose: ConsentPurpose = .marketing, template: String, subject: String = "", body: String = "", html: Bool = false,
        data: [String: String] = [:]
    ) {
        self.channel = channel
        self.purpose = purpose
        self.template = template
        self.subject = subject
        self.body = body
        self.html = html
        self.data = data
    }
}

/// A webhook call to queue: an https (or http) URL and a JSON body whose fields are expression values.
public struct WebhookAction: Hashable, Sendable, Codable {
    public var url: String
    /// Field → expression; the body is a JSON object of their values. At most 100 entries.
    public var payload: [String: String]

    public init(url: String, payload: [String: String] = [:]) {
        self.url = url
        self.payload = payload
    }
}

/// How often a rule may fire for the same customer.
public enum RuleFrequency: Hashable, Sendable, Codable {
    case unlimited
    /// Once per customer, ever.
    case oncePerCustomer
    /// At most once per customer within the period (milliseconds). A period of a day or more has two hours' slack
    /// for runs a schedule or a date starts, or that quiet hours held, which come at local clock times (a day may
    /// have 23 hours).
    case oncePerCustomerPer(milliseconds: Int64)
}

/// Hours of the day in which a rule does not act; a run that would act then waits for their end.
public struct QuietHours: Hashable, Sendable, Codable {
    /// Start, in the customer's time zone.
    public var start: LocalTime
    /// End (may be on the next day: 21:00–08:00).
    public var end: LocalTime

    public init(start: LocalTime, end: LocalTime) {
        self.start = start
        self.end = end
    }

    /// Whether `minutes` after midnight fall inside.
    public func contains(minutes: Int) -> Bool {
        start.minutes <= end.minutes ? (minutes >= start.minutes && minutes < end.minutes) : (minutes >= start.minutes || minutes < end.minutes)
    }
}

/// What a trigger does while a run of the same rule waits for the same customer.
public enum RetriggerPolicy: String, Hashable, Sendable, Codable, CaseIterable {
    /// The waiting run goes on; the new trigger is recorded as skipped.
    case ignore
    /// The waiting run is cancelled and a new one starts (a reminder one hour after the *last* cart update). A new
    /// trigger whose condition is false, or that a limit stops, leaves the waiting run as it is.
    case restart
}

/// The limits a rule fires within.
public struct RuleLimits: Hashable, Sendable, Codable {
    public var frequency: RuleFrequency
    /// At most this many runs fire per UTC day, across all customers.
    public var dailyCap: Int?
    public var quietHours: QuietHours?
    /// The rule fires only for customers who consent to this channel and purpose.
    public var requiredConsent: RequiredConsent?
    /// What a new trigger does while a run waits for the customer.
    public var retrigger: RetriggerPolicy

    public init(
        frequency: RuleFrequency = .unlimited, dailyCap: Int? = nil, quietHours: QuietHours? = nil, requiredConsent: RequiredConsent? = nil,
        retrigger: RetriggerPolicy = .ignore
    ) {
        self.frequency = frequency
        self.dailyCap = dailyCap
        self.quietHours = quietHours
        self.requiredConsent = requiredConsent
        self.retrigger = retrigger
    }

    private enum CodingKeys: String, CodingKey { case frequency, dailyCap, quietHours, requiredConsent, retrigger }

    public init(from decoder: any Decoder) throws {
        // Stored definitions outlive versions: a limit added later decodes to its default.
        let container = try decoder.container(keyedBy: CodingKeys.self)
        frequency = try container.decodeIfPresent(RuleFrequency.self, forKey: .frequency) ?? .unlimited
        dailyCap = try container.decodeIfPresent(Int.self, forKey: .dailyCap)
        quietHours = try container.decodeIfPresent(QuietHours.self, forKey: .quietHours)
        requiredConsent = try container.decodeIfPresent(RequiredConsent.self, forKey: .requiredConsent)
        retrigger = try container.decodeIfPresent(RetriggerPolicy.self, forKey: .retrigger) ?? .ignore
    }
}

/// A channel and purpose the customer must consent to.
public struct RequiredConsent: Hashable, Sendable, Codable {
    public var channel: ConsentChannel
    public var purpose: ConsentPurpose

    public init(channel: ConsentChannel, purpose: ConsentPurpose) {
        self.channel = channel
        self.purpose = purpose
    }
}

/// A rule as stored: its current definition and version, and whether it is on.
public struct Rule: Hashable, Sendable, Codable {
    public var id: RuleID
    /// Grows by one on every change of the definition; runs keep the version they started with.
    public var version: Int64
    public var definition: RuleDefinition
    public var enabled: Bool
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(id: RuleID, version: Int64, definition: RuleDefinition, enabled: Bool, createdAt: Timestamp, updatedAt: Timestamp) {
        self.id = id
        self.version = version
        self.definition = definition
        self.enabled = enabled
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// The optimistic-concurrency tag of this version.
    public var etag: String { "\"\(version)\"" }
}

/// Where a run stands.
public enum RunStatus: String, Hashable, Sendable, Codable, CaseIterable {
    /// Waiting for its wait (or quiet hours) to end.
    case waiting
    /// Fired: its actions were applied (each action's outcome is recorded).
    case fired
    /// Did not fire; the reason says why (condition false, limit reached, no consent...).
    case skipped
    /// Stopped before it fired: the rule was disabled or deleted, or the customer erased.
    case cancelled
}

/// What a waiting run waits for.
public enum RunStep: String, Hashable, Sendable, Codable {
    /// The rule's wait; the re-check follows.
    case wait
    /// The end of quiet hours.
    case quietHours = "quiet_hours"
}

/// What became of one action of a fired run.
public struct ActionOutcome: Hashable, Sendable, Codable {
    public enum Status: String, Hashable, Sendable, Codable {
        case applied, skipped, failed
    }

    public var action: String
    public var status: Status
    /// Why it was skipped or failed; what it did otherwise.
    public var detail: String
    /// The outbox entry it queued, if any.
    public var outboxEntryID: OutboxEntryID?

    public init(action: String, status: Status, detail: String = "", outboxEntryID: OutboxEntryID? = nil) {
        self.action = action
        self.status = status
        self.detail = detail
        self.outboxEntryID = outboxEntryID
    }
}

/// One run of a rule for one customer: what triggered it and what became of it.
public struct RuleRun: Hashable, Sendable, Codable {
    public var id: RunID
    public var ruleID: RuleID
    /// The version of the rule the run follows from start to end.
    public var ruleVersion: Int64
    public var customerID: CustomerID
    /// What triggered it: an event type (`cart.updated`, `segment.entered`...), `schedule` or `date`.
    public var trigger: String
    /// The id of the triggering event, if any (built-in triggers have ids such as `order.placed:ord_...`).
    public var eventID: String?
    /// The triggering event, kept while the run waits (its re-check reads it); nil once the run ended.
    public var event: Event?
    /// The order a built-in `order.*` trigger is about, kept while the run waits.
    public var order: Order?
    public var status: RunStatus
    /// Why it was skipped or cancelled.
    public var reason: String
    /// While waiting: when it continues.
    public var resumeAt: Timestamp?
    /// While waiting: what for.
    public var step: RunStep?
    /// For fired runs: each action's outcome, in order.
    public var actions: [ActionOutcome]
    /// For skipped runs: how many later triggers were skipped for the same reason and folded into this record
    /// (the customer's latest run of the rule) instead of adding one each; `eventID` and `updatedAt` then tell
    /// the latest of them. A once-per-customer rule on page views keeps one skipped record, not one per view.
    public var repeats: Int
    /// How many waits (and quiet hours' holds) the chain of rules that led to this run went through, its own
    /// included once it resumed: a drip of waiting steps counts one per step, and a chain stops after 100.
    public var waits: Int
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(
        id: RunID, ruleID: RuleID, ruleVersion: Int64, customerID: CustomerID, trigger: String, eventID: String? = nil, event: Event? = nil,
        order: Order? = nil,
        status: RunStatus, reason: String = "", resumeAt: Timestamp? = nil, step: RunStep? = nil, actions: [ActionOutcome] = [], repeats: Int = 0,
        waits: Int = 0, createdAt: Timestamp, updatedAt: Timestamp
    ) {
        self.id = id
        self.ruleID = ruleID
        self.ruleVersion = ruleVersion
        self.customerID = customerID
        self.trigger = trigger
        self.eventID = eventID ?? event?.id
        self.event = event
        self.order = order
        self.status = status
        self.reason = reason
        self.resumeAt = resumeAt
        self.step = step
        self.actions = actions
        self.repeats = repeats
        self.waits = waits
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    private enum CodingKeys: String, CodingKey {
        case id, ruleID, ruleVersion, customerID, trigger, eventID, event, order, status, reason, resumeAt, step, actions, repeats, waits, createdAt
        case updatedAt
    }

    public init(from decoder: any Decoder) throws {
        // Runs stored by earlier versions have no `repeats` or `waits`.
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(RunID.self, forKey: .id)
        ruleID = try container.decode(RuleID.self, forKey: .ruleID)
        ruleVersion = try container.decode(Int64.self, forKey: .ruleVersion)
        customerID = try container.decode(CustomerID.self, forKey: .customerID)
        trigger = try container.decode(String.self, forKey: .trigger)
        eventID = try container.decodeIfPresent(String.self, forKey: .eventID)
        event = try container.decodeIfPresent(Event.self, forKey: .event)
        order = try container.decodeIfPresent(Order.self, forKey: .order)
        status = try container.decode(RunStatus.self, forKey: .status)
        reason = try container.decode(String.self, forKey: .reason)
        resumeAt = try container.decodeIfPresent(Timestamp.self, forKey: .resumeAt)
        step = try container.decodeIfPresent(RunStep.self, forKey: .step)
        actions = try container.decode([ActionOutcome].self, forKey: .actions)
        repeats = try container.decodeIfPresent(Int.self, forKey: .repeats) ?? 0
        waits = try container.decodeIfPresent(Int.self, forKey: .waits) ?? 0
        createdAt = try container.decode(Timestamp.self, forKey: .createdAt)
        updatedAt = try container.decode(Timestamp.self, forKey: .updatedAt)
    }

    /// Ends a waiting run (skipped or cancelled, and why): it no longer keeps its trigger or a resume time.
    public mutating func end(_ status: RunStatus, reason: String, at time: Timestamp) {
        self.status = status
        self.reason = reason
        event = nil
        order = nil
        step = nil
        resumeAt = nil
        updatedAt = time
    }
}

/// How often a rule fired for one customer, for its frequency limit.
public struct RuleCounter: Hashable, Sendable, Codable {
    public var ruleID: RuleID
    public var customerID: CustomerID
    public var lastFiredAt: Timestamp
    public var firedCount: Int64

    public init(ruleID: RuleID, customerID: CustomerID, lastFiredAt: Timestamp, firedCount: Int64) {
        self.ruleID = ruleID
        self.customerID = customerID
        self.lastFiredAt = lastFiredAt
        self.firedCount = firedCount
    }
}
