import Foundation
import RapportCore
import RapportRules

/// A customer's orders and events read from one transaction, loaded on first use and kept for the rest of it.
final class ActivityLoader: ActivitySource {
    let tx: any StoreReader
    let customer: CustomerID
    private var orders: [Order]?
    /// Events loaded so far, oldest first: the newest events of the customer, pages of older ones put in front.
    private var loaded: [Event] = []
    private var nextPosition: TimelinePosition?
    private var exhausted = false
    private(set) var error: (any Error)?

    init(tx: any StoreReader, customer: CustomerID) {
        self.tx = tx
        self.customer = customer
    }

    func countingOrders() -> [Order] {
        if let orders { return orders }
        do {
            let loaded = try tx.orders(of: customer, before: nil, limit: .max).map(\.order).filter(\.status.counts)
                .sorted { ($0.placedAt, $0.id) < ($1.placedAt, $1.id) }
            orders = loaded
            return loaded
        } catch {
            self.error = error
            orders = []
            return []
        }
    }

    /// Loads the next page of older events.
    private func loadPage() {
        guard !exhausted else { return }
        do {
            let page = try tx.events(of: customer, before: nextPosition, limit: Self.pageSize)
            if let last = page.last { nextPosition = TimelinePosition(time: last.event.occurredAt, sequence: last.sequence) }
            if page.count < Self.pageSize { exhausted = true }
            let older = page.reversed().map(\.event)
            loaded = loaded.isEmpty ? older : older + loaded
        } catch {
            self.error = error
            exhausted = true
        }
    }

    private static let pageSize = 256

    func events(since start: Timestamp?) -> ArraySlice<Event> {
        // Older pages until the oldest loaded event is before `start` (or all of them).
        while !exhausted, start == nil || (loaded.first.map { $0.occurredAt >= start! } ?? true) { loadPage() }
        guard let start else { return loaded[...] }
        // The first event at or after `start`.
        var low = 0
        var high = loaded.count
        while low < high {
            let middle = (low + high) / 2
            if loaded[middle].occurredAt < start { low = middle + 1 } else { high = middle }
        }
        return loaded[low...]
    }

    func latestEvent(ofTypes types: Set<String>?, notAfter now: Timestamp) -> (latest: Event?, nextAfter: Timestamp?) {
        // Newest first (by time); `seen` counts the events looked at from the newest end, so a page put in front
        // continues it. Events dated after now come first: the last of them seen is the next to happen.
        var seen = 0
        var next: Timestamp?
        while true {
            while seen < loaded.count {
                let event = loaded[loaded.count - 1 - seen]
                seen += 1
                guard types?.contains(event.type) ?? true else { continue }
                if event.occurredAt > now {
                    next = event.occurredAt
                    continue
                }
                return (event, next)
            }
            if exhausted { return (nil, next) }
            loadPage()
        }
    }
}

extension StoreReader {
    /// What an expression needs to know about a customer, loaded from this transaction: only what `reads` names.
    func evaluationContext(
        _ record: CustomerRecord, stats: CustomerStats?, reads: Requirements.Data, now: Timestamp, defaultTimeZone: TimeZone
    ) throws -> (context: EvaluationContext, activity: ActivityLoader?) {
        var context = EvaluationContext(
            customer: record, stats: try stats ?? self.stats(of: record.id) ?? CustomerStats(customerID: record.id), now: now, defaultTimeZone: defaultTimeZone)
        if reads.contains(.identities) { context.identities = try identities(of: record.id).map(\.identity) }
        if reads.contains(.consents) { context.consents = currentConsents(try consents(of: record.id)) }
        if reads.contains(.segments) { context.segments = Set(try memberships(of: record.id).map(\.segmentID.rawValue)) }
        var activity: ActivityLoader?
        if !reads.isDisjoint(with: [.orders, .events]) {
            activity = ActivityLoader(tx: self, customer: record.id)
            context.activity = activity
        }
        return (context, activity)
    }
}

/// The synthetic events Rapport's built-in triggers carry.
enum BuiltInEvent {
    static func customerCreated(_ customer: CustomerID, at now: Timestamp) -> Event {
        Event(
            id: "customer.created:\(customer.rawValue)", type: "customer.created", occurredAt: now, channel: .other, identities: [], properties: [:],
            customerID: customer, receivedAt: now)
    }

    static func order(_ order: Order, status: OrderStatus, at time: Timestamp, now: Timestamp) -> Event {
        Event(
            id: "order.\(status.rawValue):\(order.id.rawValue)", type: "order.\(status.rawValue)", occurredAt: time, channel: order.channel, identities: order.identities,
            properties: [
                "order_id": .string(order.id.rawValue), "source": .string(order.key.source), "external_id": .string(order.key.externalID),
                "status": .string(order.status.rawValue), "currency": .string(order.currency.code), "total_minor": .int(order.total.minorUnits),
                "skus": .stringList(order.lines.map(\.sku)),
            ].merging(order.itemCount.map { ["item_count": .int($0)] } ?? [:]) { $1 },
            customerID: order.customerID, receivedAt: now)
    }

    static func segment(_ segment: Segment, entered: Bool, customer: CustomerID, at now: Timestamp) -> Event {
        let type = entered ? "segment.entered" : "segment.exited"
        return Event(
            id: "\(type):\(segment.id.rawValue):\(customer.rawValue):\(now.millisecondsSinceEpoch)", type: type, occurredAt: now, channel: .other, identities: [],
            properties: ["segment_id": .string(segment.id.rawValue), "segment_key": .string(segment.key)], customerID: customer, receivedAt: now)
    }

    /// What a built-in event's id names: its order, or its customer (built-in events are not stored, so a run
    /// that ended keeps only the id).
    enum Subject: Equatable {
        case order(OrderID)
        case customer(CustomerID)
    }

    /// The subject of built-in event `id`, nil for any other id.
    static func subject(ofID id: String) -> Subject? {
        let parts = id.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.first {
        case let type? where type.hasPrefix("order.") && parts.count == 2: return .order(OrderID(uncheckedRawValue: String(parts[1])))
        case "customer.created" where parts.count == 2: return .customer(CustomerID(uncheckedRawValue: String(parts[1])))
        case "segment.entered" where parts.count == 4, "segment.exited" where parts.count == 4:
            return .customer(CustomerID(uncheckedRawValue: String(parts[2])))
        default: return nil
        }
    }
}
