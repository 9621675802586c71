public import RapportCore

/// One entry of a customer's timeline.
public enum TimelineEntry: Hashable, Sendable {
    case event(Event)
    case order(Order)
    case interaction(Interaction)

    /// When it happened (an order: when it was placed).
    public var time: Timestamp {
        switch self {
        case .event(let event): event.occurredAt
        case .order(let order): order.placedAt
        case .interaction(let interaction): interaction.occurredAt
        }
    }
}

/// One page of a customer's timeline, newest first.
public struct TimelinePage: Hashable, Sendable {
    public var entries: [TimelineEntry]
    /// Pass it back for older entries; nil when there are none.
    public var nextPageToken: String?
}

/// Everything Rapport knows about one customer, in one read.
public struct Customer360: Hashable, Sendable {
    public var customer: Customer
    public var stats: CustomerStats
    /// The latest orders, newest first.
    public var recentOrders: [Order]
    /// The current consent per channel and purpose.
    public var consents: [Consent]
    /// Merges into this customer that still stand.
    public var merges: [MergeRecord]
    /// The first page of the timeline: events, orders and interactions, newest first.
    public var timeline: TimelinePage
}

extension RapportEngine {
    /// The customer 360: profile, identities, aggregates, recent orders, consent, and the newest timeline page.
    ///
    /// ```swift
    /// let view = try await crm.customer360(ada.id)
    /// print(view.stats.totalSpent(in: try CurrencyCode("EUR")), view.timeline.entries.count)
    /// ```
    public func customer360(_ id: CustomerID, recentOrders: Int = 5, timelinePageSize: Int = 20) async throws(RapportError) -> Customer360 {
        guard recentOrders >= 0 else { throw .invalid("recent_orders", "must not be negative, got \(recentOrders)") }
        guard timelinePageSize >= 0 else { throw .invalid("timeline_page_size", "must not be negative, got \(timelinePageSize)") }
        let orderCount = min(recentOrders, 100)
        let size = try PageToken.pageSize(timelinePageSize)
        return try await quickRead { tx in
            let record = try tx.activeCustomer(id)
            // One read of the newest orders serves both the recent orders and the timeline's first page.
            let orders = try tx.orders(of: record.id, before: nil, limit: max(orderCount, size + 1))
            return Customer360(
                customer: try tx.assemble(record),
                stats: try tx.stats(of: record.id) ?? CustomerStats(customerID: record.id),
                recentOrders: orders.prefix(orderCount).map(\.order),
                consents: currentConsents(try tx.consents(of: record.id)),
                merges: try tx.merges(into: record.id).filter(\.isActive),
                timeline: try timelinePage(tx, record.id, before: nil, size: size, newestOrders: orders))
        }
    }

    /// A page of a customer's timeline: events, orders and interactions together, newest first.
    public func timeline(_ id: CustomerID, page: PageRequest = PageRequest()) async throws(RapportError) -> TimelinePage {
        let size = try PageToken.pageSize(page.size)
        return try await quickRead { tx in
            let customer = try tx.activeCustomer(id).id
            let before = try page.token.map { token throws(RapportError) in try PageToken.decodeTimelinePosition(token, .all, of: customer, requested: id) }
            return try timelinePage(tx, customer, before: before, size: size)
        }
    }

    /// The customer's aggregates: order count, spending per currency, first and last order, last seen.
    public func stats(of id: CustomerID) async throws(RapportError) -> CustomerStats {
        try await quickRead { tx in
            let record = try tx.activeCustomer(id)
            return try tx.stats(of: record.id) ?? CustomerStats(customerID: record.id)
        }
    }

    /// A page of a customer's orders, newest first.
    public func orders(of id: CustomerID, page: PageRequest = PageRequest()) async throws(RapportError) -> (orders: [Order], nextPageToken: String?) {
        let size = try PageToken.pageSize(page.size)
        return try await quickRead { tx in
            let customer = try tx.activeCustomer(id).id
            let before = try page.token.map { token throws(RapportError) in try PageToken.decodeTimelinePosition(token, .orders, of: customer, requested: id) }
            let records = try tx.orders(of: customer, before: before, limit: size + 1)
            let pageRecords = records.prefix(size)
            let next = records.count > size
                ? pageRecords.last.map { PageToken.encode(TimelinePosition(time: $0.order.placedAt, sequence: $0.sequence), .orders, of: customer) } : nil
            return (pageRecords.map(\.order), next)
        }
    }

    /// An order by its Rapport id.
    public func order(_ id: OrderID) async throws(RapportError) -> Order {
        try await quickRead { tx in
            guard let record = try tx.order(id) else { throw RapportError.notFound(entity: "order", id: id.rawValue) }
            return record.order
        }
    }

    /// An order by the shop's key.
    /// - Throws: `invalidArgument` for an empty source or external id; `notFound` for an unknown order.
    public func order(_ key: OrderKey) async throws(RapportError) -> Order {
        var violations: [FieldViolation] = []
        if key.source.isEmpty { violations.append(FieldViolation(field: "source", problem: "is required")) }
        if key.externalID.isEmpty { violations.append(FieldViolation(field: "external_id", problem: "is required")) }
        guard violations.isEmpty else { throw .invalidArgument(violations) }
        return try await quickRead { tx in
            guard let record = try tx.order(key: OrderKey(source: key.source.lowercased(), externalID: key.externalID.canonical)) else {
                throw RapportError.notFound(entity: "order", id: key.description)
            }
            return record.order
        }
    }

    /// An event by its id.
    public func event(_ id: String) async throws(RapportError) -> Event {
        try await quickRead { tx in
            guard let record = try tx.event(id: id.canonical) else { throw RapportError.notFound(entity: "event", id: id) }
            return record.event
        }
    }
}

/// Merges the three newest-first listings into one page.
private func timelinePage(
    _ tx: any StoreReader, _ customer: CustomerID, before: TimelinePosition?, size: Int, newestOrders: [OrderRecord]? = nil
) throws -> TimelinePage {
    var entries: [(TimelinePosition, TimelineEntry)] = []
    entries += try tx.events(of: customer, before: before, limit: size + 1).map {
        (TimelinePosition(time: $0.event.occurredAt, sequence: $0.sequence), .event($0.event))
    }
    entries += try (newestOrders.map { Array($0.prefix(size + 1)) } ?? tx.orders(of: customer, before: before, limit: size + 1)).map {
        (TimelinePosition(time: $0.order.placedAt, sequence: $0.sequence), .order($0.order))
    }
    entries += try tx.interactions(of: customer, before: before, limit: size + 1).map {
        (TimelinePosition(time: $0.interaction.occurredAt, sequence: $0.sequence), .interaction($0.interaction))
    }
    entries.sort { $0.0 > $1.0 }
    let page = entries.prefix(size)
    let next = entries.count > size ? page.last.map { PageToken.encode($0.0, .all, of: customer) } : nil
    return TimelinePage(entries: page.map(\.1), nextPageToken: next)
}

/// The statement in force per channel and purpose: the latest by when it took effect, and of two at the same time
/// the one that does not allow contact (then the later recorded).
///
/// A statement takes effect when it happened, or when it was recorded if that is earlier: one dated ahead (a sender's
/// clock or time zone off) cannot rule before it is known, or it would outlive an unsubscribe recorded meanwhile.
func currentConsents(_ history: [ConsentRecord]) -> [Consent] {
    func rank(_ record: ConsentRecord) -> (Int64, Int, Int64) {
        (min(record.consent.occurredAt, record.consent.recordedAt).millisecondsSinceEpoch, record.consent.status.allows ? 0 : 1, record.sequence)
    }
    var latest: [String: ConsentRecord] = [:]
    for record in history {
        let key = "\(record.consent.channel.rawValue)/\(record.consent.purpose.rawValue)"
        if let current = latest[key], rank(current) > rank(record) { continue }
        latest[key] = record
    }
    return latest.values.map(\.consent).sorted { ($0.channel, $0.purpose) < ($1.channel, $1.purpose) }
}
