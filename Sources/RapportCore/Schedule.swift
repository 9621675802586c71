/// A piece of work due at a time, stored in the backend so that it survives restarts: a rule run's wait, a date
/// trigger, a schedule, a segment's re-check when a time window moves, a segment being built.
///
/// Running a job and deleting it happen in one transaction: a job runs once, even across restarts.
public struct ScheduledJob: Hashable, Sendable, Codable {
    /// Unique: scheduling a job with the key of a pending one moves it (`recheck:cus_...`, `wait:run_...`).
    public var key: String
    public var dueAt: Timestamp
    public var kind: JobKind
    /// The customer the job is about, if any: erasing the customer removes it.
    public var customerID: CustomerID?
    /// How many times it failed and was put back.
    public var attempts: Int

    public init(key: String, dueAt: Timestamp, kind: JobKind, customerID: CustomerID? = nil, attempts: Int = 0) {
        self.key = key
        self.dueAt = dueAt
        self.kind = kind
        self.customerID = customerID
        self.attempts = attempts
    }
}

/// What a scheduled job does.
public enum JobKind: Hashable, Sendable, Codable {
    /// Continues a waiting run.
    case resumeRun(RunID)
    /// Runs a date-triggered rule for a customer, then schedules the next occurrence. `occurrence` is the instant it
    /// stands for (nil in jobs stored by earlier versions): a job that runs late, after the customer's date changed,
    /// fires only if that instant is still an occurrence.
    case dateTrigger(rule: RuleID, customer: CustomerID, occurrence: Timestamp? = nil)
    /// Re-evaluates the time-dependent segments of a customer.
    case recheckSegments(CustomerID)
    /// A scheduled rule: at its next occurrence, runs it for its audience page by page (`after` is where the next
    /// page starts while an occurrence is under way).
    case scheduledRule(rule: RuleID, occurrence: Timestamp, after: CustomerCursor?)
    /// Evaluates a dynamic segment for the next page of existing customers.
    case buildSegment(SegmentID)
    /// Schedules a date-triggered rule for the next page of existing customers.
    case planDateTrigger(rule: RuleID, after: CustomerCursor?)
    /// Forgets old run records and delivered outbox entries.
    case housekeeping
    /// A stored job this version cannot read (written by a later version, or damaged), with its stored text. It is
    /// kept as it is, never run and never given up: the scheduler tries it again hourly and goes on with the others.
    case unreadable(String)
}

/// Identifies an outbox entry (`obx_`).
public struct OutboxEntryID: PrefixedID {
    public static let prefix = "obx_"
    public static let entity = "outbox entry"
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// Where an outbox entry stands.
public enum OutboxState: String, Hashable, Sendable, Codable, CaseIterable {
    /// Waiting for a consumer (or its lease expired).
    case pending
    /// A consumer holds it until the lease expires.
    case leased
    /// Acknowledged by a consumer.
    case delivered
    /// Given up on by a consumer; it stays for inspection.
    case failed
}

/// What an outbox entry asks the outside world to do.
public enum OutboxPayload: Hashable, Sendable, Codable {
    /// A message to send: rendered subject, body and data for the sender's template.
    case message(OutboxMessage)
    /// An HTTP POST of a JSON body to a URL.
    case webhook(url: String, body: String)
}

/// A rendered message.
public struct OutboxMessage: Hashable, Sendable, Codable {
    public var channel: ConsentChannel
    public var purpose: ConsentPurpose
    public var template: String
    /// Where to send it: the customer's e-mail or phone when known.
    public var recipient: String
    public var subject: String
    public var body: String
    /// True when the values inserted in `body` were HTML-escaped (the rule's body is HTML): send it as HTML.
    /// False: plain text.
    public var html: Bool
    public var data: [String: String]

    public init(
        channel: ConsentChannel, purpose: ConsentPurpose, template: String, recipient: String, subject: String, body: String, html: Bool = false,
        data: [String: String]
    ) {
        self.channel = channel
        self.purpose = purpose
        self.template = template
        self.recipient = recipient
        self.subject = subject
        self.body = body
        self.html = html
        self.data = data
    }

    private enum CodingKeys: String, CodingKey { case channel, purpose, template, recipient, subject, body, html, data }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        channel = try container.decode(ConsentChannel.self, forKey: .channel)
        purpose = try container.decode(ConsentPurpose.self, forKey: .purpose)
        template = try container.decode(String.self, forKey: .template)
        recipient = try container.decode(String.self, forKey: .recipient)
        subject = try container.decode(String.self, forKey: .subject)
        body = try container.decode(String.self, forKey: .body)
        html = try container.decodeIfPresent(Bool.self, forKey: .html) ?? false  // stored before 2026-12-07: no flag
        data = try container.decode([String: String].self, forKey: .data)
    }
}

/// A side effect that leaves Rapport (a message, a webhook), queued in the transaction that decided it and
/// delivered at least once, in order per customer, to consumers that lease and acknowledge entries.
public struct OutboxEntry: Hashable, Sendable, Codable {
    public var id: OutboxEntryID
    /// Store-wide order of creation.
    public var sequence: Int64
    public var customerID: CustomerID
    /// The same for every delivery of this entry: consumers deduplicate with it (`run_...:2`).
    public var idempotencyKey: String
    public var payload: OutboxPayload
    public var ruleID: RuleID?
    public var runID: RunID?
    public var state: OutboxState
    /// How many times it was leased.
    public var attempts: Int
    public var leaseOwner: String?
    public var leaseExpiresAt: Timestamp?
    /// Not delivered before this time (after a consumer asked to retry later).
    public var availableAt: Timestamp
    public var lastError: String
    public var createdAt: Timestamp
    public var updatedAt: Timestamp

    public init(
        id: OutboxEntryID, sequence: Int64, customerID: CustomerID, idempotencyKey: String, payload: OutboxPayload, ruleID: RuleID? = nil,
        runID: RunID? = nil, state: OutboxState = .pending, attempts: Int = 0, leaseOwner: String? = nil, leaseExpiresAt: Timestamp? = nil,
        availableAt: Timestamp, lastError: String = "", createdAt: Timestamp, updatedAt: Timestamp
    ) {
        self.id = id
        self.sequence = sequence
        self.customerID = customerID
        self.idempotencyKey = idempotencyKey
        self.payload = payload
        self.ruleID = ruleID
        self.runID = runID
        self.state = state
        self.attempts = attempts
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
        self.availableAt = availableAt
        self.lastError = lastError
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Whether it still waits for delivery (pending or leased).
    public var isOpen: Bool { state == .pending || state == .leased }

    /// The entry as a reader sees it at `time`: one whose lease expired is pending again (the store keeps it leased
    /// until a consumer takes it), without the owner it no longer has.
    public func seen(at time: Timestamp) -> OutboxEntry {
        guard state == .leased, let expiry = leaseExpiresAt, expiry <= time else { return self }
        var entry = self
        entry.state = .pending
        entry.leaseOwner = nil
        entry.leaseExpiresAt = nil
        return entry
    }
}
