public import Foundation
public import RapportCore

/// Where window functions (`orders_count`, `events_count`...) read a customer's history.
///
/// The engine implements it over a storage transaction and caches what it loaded; the rules module itself never
/// reads storage.
public protocol ActivitySource: AnyObject {
    /// The customer's orders that count (neither cancelled nor refunded), oldest first by placed time.
    func countingOrders() -> [Order]
    /// The customer's events that occurred at or after `start` (every event when nil), oldest first.
    func events(since start: Timestamp?) -> ArraySlice<Event>
    /// The customer's most recent event of one of `types` (of any type when nil) that occurred at `now` or before,
    /// and the time of the first such event dated after `now` (ingest accepts a little of the future): when the
    /// answer changes by time alone.
    func latestEvent(ofTypes types: Set<String>?, notAfter now: Timestamp) -> (latest: Event?, nextAfter: Timestamp?)
}

/// Everything an expression can read about one customer at one moment.
///
/// Fill what the expression's ``Requirements`` ask for; the rest may stay empty.
public struct EvaluationContext {
    public var customer: CustomerRecord
    public var stats: CustomerStats
    /// The instant the expression is evaluated at (`now`).
    public var now: Timestamp
    /// The customer's identities (for `customer.emails` and `customer.phones`).
    public var identities: [Identity]
    /// The customer's current consent: the latest statement per channel and purpose.
    public var consents: [Consent]
    /// The ids of the segments the customer is in.
    public var segments: Set<String>
    /// The event that triggered the rule, if any.
    public var event: Event? {
        get { trigger?.event }
        set { trigger = newValue == nil && order == nil ? nil : Trigger(event: newValue, order: order) }
    }
    /// The order the triggering event is about (`order.placed`...), if any.
    public var order: Order? {
        get { trigger?.order }
        set { trigger = newValue == nil && event == nil ? nil : Trigger(event: event, order: newValue) }
    }
    /// The triggering event and order, out of line: most evaluations have none, and a context stays small.
    private var trigger: Trigger?
    /// The customer's history, for window functions.
    public var activity: (any ActivitySource)?
    /// The zone of `customer.age` and `days_until_birthday()` when the customer has none (UTC by default).
    public var defaultTimeZone: TimeZone

    public init(
        customer: CustomerRecord, stats: CustomerStats, now: Timestamp, identities: [Identity] = [], consents: [Consent] = [],
        segments: Set<String> = [], event: Event? = nil, order: Order? = nil, activity: (any ActivitySource)? = nil,
        defaultTimeZone: TimeZone = TimeZone(identifier: "UTC")!
    ) {
        self.customer = customer
        self.stats = stats
        self.now = now
        self.identities = identities
        self.consents = consents
        self.segments = segments
        self.trigger = event == nil && order == nil ? nil : Trigger(event: event, order: order)
        self.activity = activity
        self.defaultTimeZone = defaultTimeZone
    }

    /// Immutable, replaced on every change: copies of a context never share a change.
    private final class Trigger: Sendable {
        let event: Event?
        let order: Order?

        init(event: Event?, order: Order?) {
            self.event = event
            self.order = order
        }
    }

    /// The customer's own time zone, or the default one.
    public var timeZone: TimeZone {
        customer.profile.timeZone.isEmpty ? defaultTimeZone : (TimeZone(identifier: customer.profile.timeZone) ?? defaultTimeZone)
    }
}

/// What evaluation carries from node to node: the earliest instant at which the result may change by the
/// passing of time alone, and the item a window function's `where:` is looking at.
public struct EvaluationScratch {
    /// Milliseconds since the epoch; `Int64.max` when time alone never changes the result.
    var nextChange: Int64 = .max
    /// Set only while a window function runs its `where:`, so that the common case stays two words.
    var item: WindowItem?

    public init() {}

    mutating func changes(at instant: Int64) {
        if instant < nextChange { nextChange = instant }
    }

    var itemOrder: Order? { item?.order }
    var itemEvent: Event? { item?.event }
}

/// The order or event a window function's `where:` is looking at.
final class WindowItem {
    var order: Order?
    var event: Event?
}

/// What an expression reads, so the caller loads only that.
public struct Requirements: Hashable, Sendable {
    public struct Data: OptionSet, Hashable, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        /// Profile fields, tags, attributes.
        public static let profile = Data(rawValue: 1 << 0)
        /// E-mails and phones.
        public static let identities = Data(rawValue: 1 << 1)
        /// The running aggregates.
        public static let stats = Data(rawValue: 1 << 2)
        /// Orders, through window functions.
        public static let orders = Data(rawValue: 1 << 3)
        /// Events, through window functions.
        public static let events = Data(rawValue: 1 << 4)
        /// Current consent.
        public static let consents = Data(rawValue: 1 << 5)
        /// Segment memberships.
        public static let segments = Data(rawValue: 1 << 6)
        /// The result can change by the passing of time alone.
        public static let time = Data(rawValue: 1 << 7)
        /// The triggering event or order.
        public static let trigger = Data(rawValue: 1 << 8)
    }

    public var data: Data = []
    /// The ids of the segments `in_segment` names.
    public var segmentIDs: Set<String> = []

    public init(data: Data = [], segmentIDs: Set<String> = []) {
        self.data = data
        self.segmentIDs = segmentIDs
    }

    /// Adds what `other` reads.
    public mutating func formUnion(_ other: Requirements) {
        data.formUnion(other.data)
        segmentIDs.formUnion(other.segmentIDs)
    }
}
