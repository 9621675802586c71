import Foundation
import RapportCore
import RapportRules
import Testing

/// 2026-01-01T00:00:00Z.
let epoch: Int64 = 1_767_225_600_000
let day: Int64 = 86_400_000

func at(days: Int64, hours: Int64 = 0) -> Timestamp { Timestamp(millisecondsSinceEpoch: epoch + days * day + hours * 3_600_000) }

let eur = try! CurrencyCode("EUR")
let usd = try! CurrencyCode("USD")

/// The schema the tests compile against: a few attributes, event types and segments.
let schema = ExpressionSchema(
    attributes: [
        AttributeDefinition(key: "shoe_size", type: .decimal), AttributeDefinition(key: "vip", type: .bool),
        AttributeDefinition(key: "points", type: .int), AttributeDefinition(key: "nickname", type: .string),
        AttributeDefinition(key: "last_visit", type: .timestamp), AttributeDefinition(key: "sizes", type: .stringList),
    ],
    eventTypes: [
        EventTypeDefinition(type: "product.viewed", properties: [
            EventPropertyDefinition(key: "sku", type: .string), EventPropertyDefinition(key: "price", type: .decimal),
        ]),
        EventTypeDefinition(type: "cart.updated", properties: [
            EventPropertyDefinition(key: "sku", type: .string), EventPropertyDefinition(key: "value_minor", type: .int),
        ]),
        EventTypeDefinition(type: "page.viewed", properties: [EventPropertyDefinition(key: "sku", type: .int)]),
    ],
    segments: ["big_spenders": "seg_1", "newsletter": "seg_2"])

/// A customer's history held in arrays.
final class History: ActivitySource {
    var orders: [Order]
    var eventList: [Event]

    init(orders: [Order] = [], events: [Event] = []) {
        self.orders = orders.sorted { $0.placedAt < $1.placedAt }
        self.eventList = events.sorted { $0.occurredAt < $1.occurredAt }
    }

    func countingOrders() -> [Order] { orders.filter { $0.status.counts } }
    func events(since start: Timestamp?) -> ArraySlice<Event> { eventList.filter { start == nil || $0.occurredAt >= start! }[...] }
    func latestEvent(ofTypes types: Set<String>?, notAfter now: Timestamp) -> (latest: Event?, nextAfter: Timestamp?) {
        let matching = eventList.filter { types == nil || types!.contains($0.type) }
        return (matching.last { $0.occurredAt <= now }, matching.first { $0.occurredAt > now }?.occurredAt)
    }
}

func customer(
    given: String = "Ada", tags: [String] = [], stage: LifecycleStage? = nil, birthday: LocalDate? = nil, timeZone: String = "",
    attributes: [String: AttributeValue] = [:], created: Timestamp = at(days: -100)
) -> CustomerRecord {
    CustomerRecord(
        id: CustomerID(uncheckedRawValue: "cus_1"),
        profile: CustomerProfile(givenName: given, familyName: "Lovelace", birthday: birthday, locale: "en-GB", timeZone: timeZone,
            addresses: [PostalAddress(line1: "1 Main St", city: "London", country: "GB")], tags: tags, lifecycleStage: stage, attributes: attributes),
        fieldTimes: [:], state: .active, createdAt: created, updatedAt: created, version: 1)
}

func order(_ id: String, at time: Timestamp, minor: Int64, currency: CurrencyCode = eur, status: OrderStatus = .paid, skus: [String] = ["SKU-1"]) -> Order {
    let money = Money(minorUnits: minor, currency: currency)
    return Order(
        id: OrderID(uncheckedRawValue: "ord_\(id)"), key: OrderKey(source: "web", externalID: id), channel: .web, customerID: CustomerID(uncheckedRawValue: "cus_1"),
        identities: [], lines: skus.map { OrderLine(sku: $0, quantity: 1, unitPriceMinor: minor / Int64(skus.count)) }, currency: currency,
        subtotal: money, discount: Money(minorUnits: 0, currency: currency), shipping: Money(minorUnits: 0, currency: currency),
        tax: Money(minorUnits: 0, currency: currency), total: money, status: status, statusHistory: [OrderStatusChange(status: status, at: time)],
        placedAt: time, updatedAt: time)
}

func event(_ id: String, _ type: String, at time: Timestamp, _ properties: [String: AttributeValue] = [:]) -> Event {
    Event(id: id, type: type, occurredAt: time, channel: .web, identities: [], properties: properties, customerID: CustomerID(uncheckedRawValue: "cus_1"), receivedAt: time)
}

/// The running aggregates of `orders`, as the engine keeps them.
func stats(of orders: [Order], events: [Event] = []) -> CustomerStats {
    CustomerStats.compute(
        customerID: CustomerID(uncheckedRawValue: "cus_1"), orders: orders, events: EventSummary(count: Int64(events.count), lastOccurredAt: events.map(\.occurredAt).max()))
}

func context(
    _ record: CustomerRecord = customer(), orders: [Order] = [], events: [Event] = [], now: Timestamp = at(days: 0), trigger: Event? = nil,
    triggerOrder: Order? = nil, consents: [Consent] = [], segments: Set<String> = [], identities: [Identity] = []
) -> EvaluationContext {
    EvaluationContext(
        customer: record, stats: stats(of: orders, events: events), now: now, identities: identities, consents: consents, segments: segments, event: trigger,
        order: triggerOrder, activity: History(orders: orders, events: events))
}

/// Compiles `source` for `scope`, failing the test with the issues if it does not compile.
func compile(_ source: String, scope: ExpressionScope = .customer, expecting: ValueType? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws
    -> CompiledExpression
{
    do {
        return try CompiledExpression(source, schema: schema, scope: scope, expecting: expecting)
    } catch {
        Issue.record("did not compile: \(error)", sourceLocation: sourceLocation)
        throw error
    }
}

/// The value of `source` in `context`.
func value(_ source: String, _ context: EvaluationContext = context(), scope: ExpressionScope = .customer, sourceLocation: SourceLocation = #_sourceLocation) throws -> Value {
    try compile(source, scope: scope, sourceLocation: sourceLocation).evaluate(context)
}

/// The issues `source` fails with.
func issues(_ source: String, scope: ExpressionScope = .customer, expecting: ValueType? = nil) -> [ExpressionIssue] {
    do {
        _ = try CompiledExpression(source, schema: schema, scope: scope, expecting: expecting)
        return []
    } catch {
        return error.issues
    }
}
