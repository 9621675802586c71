public import RapportCore
import Foundation
import Logging
import RapportRules

extension RapportEngine {
    /// Ingests a batch of events and orders in one transaction.
    ///
    /// Each item is attached to the customer its identities resolve to (created when none matches, merged when
    /// they point to several); events are idempotent by id and orders by source and external id, so a replayed
    /// batch changes nothing. Each customer's running aggregates are updated in the same transaction.
    ///
    /// ```swift
    /// let result = try await crm.ingest([
    ///     .event(EventInput(id: "e-1", type: "page.viewed", occurredAt: now, identities: [.anonymousID("dev-9")])),
    ///     .order(OrderInput(source: "web", externalID: "1001", identities: [.email("ada@example.com")],
    ///                       lines: [OrderLine(sku: "SKU-1", quantity: 2, unitPriceMinor: 1999)],
    ///                       currency: "EUR", placedAt: now)),
    /// ])
    /// ```
    /// - Parameter mode: whether invalid items are skipped (default) or fail the whole batch.
    public func ingest(_ items: [IngestItem], mode: IngestMode = .skipInvalid, requestID: String? = nil) async throws(RapportError) -> IngestResult {
        try await ingest(items, mode: mode, requestID: requestID, fingerprint: nil)
    }

    /// ``ingest(_:mode:requestID:)`` for adapters whose request held more than `items` (items their wire format
    /// could not express): a retry is recognised by `fingerprint`, a digest of the whole original request.
    package func ingest(_ items: [IngestItem], mode: IngestMode, requestID: String?, fingerprint: String?) async throws(RapportError) -> IngestResult {
        try Self.checkBatchSize(items.count)
        let now = clock.now()
        var prepared: [PreparedItem?] = []
        prepared.reserveCapacity(items.count)
        var rejected: [Int: [FieldViolation]] = [:]
        var allViolations: [FieldViolation] = []
        for (index, item) in items.enumerated() {
            do {
                prepared.append(try prepare(item, now: now))
            } catch {
                let violations = error.fieldViolations.isEmpty ? [FieldViolation(field: "", problem: error.description)] : error.fieldViolations
                rejected[index] = violations
                allViolations += violations.map { $0.nested(under: "items[\(index)]") }
                prepared.append(nil)
            }
        }
        if mode == .allOrNothing, !allViolations.isEmpty {
            // Name every bad item at once, those only the declared event types refuse too.
            var byItem = rejected
            for (index, problems) in try await declaredTypeViolations(prepared) { byItem[index] = problems }
            throw .invalidArgument(byItem.keys.sorted().flatMap { index in byItem[index]!.map { $0.nested(under: "items[\(index)]") } })
        }
        let valid = prepared
        let rejectedBefore = rejected
        // Encoding a whole batch to fingerprint it costs as much as ingesting it in memory: only with a request id.
        // The mode is part of the request: the same items sent all-or-nothing are not a retry of a skip-invalid call.
        let digest = (requestID ?? "").isEmpty ? "" : (fingerprint ?? Self.fingerprint(of: items)) + (mode == .allOrNothing ? ":all-or-nothing" : "")
        let applied: IngestApplied = try await mutate("ingest", requestID: requestID, fingerprint: digest) { [self] tx in
            let now = clock.now()  // read in the transaction: a change committed later is stamped later
            var session = WriteSession(tx: tx, engine: self, now: now)
            session.reserve(valid.count)
            var sequence = try tx.allocateSequence(valid.count)
            var outcomes: [IngestOutcome?] = []
            outcomes.reserveCapacity(valid.count)
            for (index, item) in valid.enumerated() {
                let merges = session.merges.count
                switch item {
                // Kept in the stored answer with its reasons: a retry must not work them out again at another time.
                case nil: outcomes.append(.rejected(rejectedBefore[index] ?? []))
                case .event(let event): outcomes.append(try session.apply(event, sequence: sequence))
                case .order(let order): outcomes.append(try session.apply(order, sequence: sequence))
                }
                sequence += 1
                if session.merges.count != merges, index + 1 < valid.count {
                    // The merge took a number after the batch's: the items after it take numbers after the merge's,
                    // so that an unmerge sees them as arrived after it, as it would in a later batch.
                    sequence = try tx.allocateSequence(valid.count - index - 1)
                }
            }
            if mode == .allOrNothing {
                // Items only the stored declarations reject (a property of the wrong type) fail the batch too.
                let late = outcomes.enumerated().flatMap { index, outcome -> [FieldViolation] in
                    guard case .rejected(let violations)? = outcome else { return [] }
                    return violations.map { $0.nested(under: "items[\(index)]") }
                }
                if !late.isEmpty { throw RapportError.invalidArgument(late) }
            }
            try session.finish()
            return IngestApplied(outcomes: outcomes, createdCustomers: session.createdCustomers, merges: session.merges)
        }
        let outcomes = applied.outcomes.enumerated().map { index, outcome in outcome ?? .rejected(rejected[index] ?? []) }
        return IngestResult(outcomes: outcomes, createdCustomers: applied.createdCustomers, merges: applied.merges)
    }

    /// The violations of each invalid item, by position, without ingesting anything: the checks of the items alone
    /// and those of the declared event types.
    package func violations(of items: [IngestItem]) async throws(RapportError) -> [Int: [FieldViolation]] {
        let now = clock.now()
        var result: [Int: [FieldViolation]] = [:]
        var prepared: [PreparedItem?] = []
        for (index, item) in items.enumerated() {
            do throws(RapportError) {
                prepared.append(try prepare(item, now: now))
            } catch {
                result[index] = error.fieldViolations.isEmpty ? [FieldViolation(field: "", problem: error.description)] : error.fieldViolations
                prepared.append(nil)
            }
        }
        for (index, problems) in try await declaredTypeViolations(prepared) { result[index] = problems }
        return result
    }

    /// The events whose properties their declared event type refuses, by position.
    private func declaredTypeViolations(_ items: [PreparedItem?]) async throws(RapportError) -> [Int: [FieldViolation]] {
        guard items.contains(where: { if case .event = $0 { true } else { false } }) else { return [:] }
        let declared = try await read { [catalogs, logger] tx in try catalogs.catalog(tx) { logger.error("\($0)") }.eventTypes }
        var result: [Int: [FieldViolation]] = [:]
        for (index, item) in items.enumerated() {
            guard case .event(let event)? = item, let definition = declared[event.type] else { continue }
            let problems = Self.mistypedProperties(event, definition)
            if !problems.isEmpty { result[index] = problems }
        }
        return result
    }

    /// The properties of `event` whose values are not of the type `definition` declares (an int is a decimal).
    static func mistypedProperties(_ event: PreparedEvent, _ definition: EventTypeDefinition) -> [FieldViolation] {
        let types = definition.propertyTypes
        let mistyped = event.properties.filter { key, value in
            guard let type = types[key] else { return false }
            return value.type != type && !(type == .decimal && value.type == .int)
        }
        guard !mistyped.isEmpty else { return [] }
        return mistyped.sorted { $0.key < $1.key }.map { key, value in
            FieldViolation(field: "properties.\(key)", problem: "must be \(types[key]!.rawValue) as declared for event type '\(event.type)', got \(value.type.rawValue)")
        }
    }

    /// The most items one batch may hold.
    public static let maxBatchSize = 10_000

    /// Refuses a batch of more than ``maxBatchSize`` items; adapters count what was sent, readable or not.
    package static func checkBatchSize(_ count: Int) throws(RapportError) {
        guard count <= maxBatchSize else { throw .invalid("items", "a batch holds at most \(maxBatchSize) items, got \(count)") }
    }

    /// Validates and normalizes one item.
    func prepare(_ item: IngestItem, now: Timestamp) throws(RapportError) -> PreparedItem {
        switch item {
        case .event(let input): .event(try prepare(input, now: now))
        case .order(let input): .order(try prepare(input, now: now))
        }
    }

    private func prepare(_ input: EventInput, now: Timestamp) throws(RapportError) -> PreparedEvent {
        var validator = Validator()
        // Measured as stored (composed): a decomposed id of more bytes may fit, a composed one may grow.
        if input.id.isEmpty || input.id.canonical.utf8.count > 128 || input.id.containsNewline || input.id.containsNUL {
            validator.add("id", "must be 1 to 128 bytes (UTF-8) on one line, without NUL")
        }
        if !EventTypeDefinition.isEventTypeName(input.type) {
            validator.add("type", "'\(input.type)' must be lower-case words of letters, digits and '_' joined by '.' (at most 64 characters)")
        } else if EventTypeDefinition.isBuiltIn(input.type) {
            validator.add("type", "'\(input.type)' is a built-in event type that Rapport records itself (send orders as orders)")
        }
        validator.capture("") { () throws(RapportError) in try Self.checkTime(input.occurredAt, field: "occur_time", now: now) }
        let identities = validator.capture("") { () throws(RapportError) in try identitiesOf(input.identities) } ?? []
        validator.capture("") { () throws(RapportError) in try Self.checkProperties(input.properties) }
        try validator.check()
        return PreparedEvent(
            id: input.id.canonical, type: input.type, occurredAt: input.occurredAt, channel: input.channel, identities: identities, properties: input.properties)
    }

    private func prepare(_ input: OrderInput, now: Timestamp) throws(RapportError) -> PreparedOrder {
        var validator = Validator()
        let source = input.source.lowercased()
        if source.isEmpty || source.utf8.count > 64
            || !source.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 45 || $0 == 46 })
        {
            validator.add("source", "'\(input.source)' must be 1 to 64 letters, digits, '_', '-' or '.'")
        }
        if input.externalID.isEmpty || input.externalID.canonical.utf8.count > 128 || input.externalID.containsNewline || input.externalID.containsNUL {
            validator.add("external_id", "must be 1 to 128 bytes (UTF-8) on one line, without NUL")
        }
        let identities = validator.capture("") { () throws(RapportError) in try identitiesOf(input.identities) } ?? []
        let currency = validator.capture("") { () throws(RapportError) in try CurrencyCode(input.currency, field: "currency") }
        validator.capture("") { () throws(RapportError) in try Self.checkTime(input.placedAt, field: "place_time", now: now) }
        if let changed = input.statusChangedAt {
            validator.capture("") { () throws(RapportError) in try Self.checkTime(changed, field: "status_time", now: now) }
            if changed < input.placedAt { validator.add("status_time", "is before place_time") }
        }
        if input.lines.isEmpty { validator.add("lines", "an order needs at least one line") }
        if input.lines.count > 1000 { validator.add("lines", "an order holds at most 1000 lines") }
        let limit: Int64 = 1_000_000_000_000_000  // 10^15 minor units: far above any real order, far below overflow.
        var subtotal: Int64 = 0
        for (index, line) in input.lines.enumerated() {
            let field = "lines[\(index)]"
            if line.sku.isEmpty || line.sku.utf8.count > 128 { validator.add("\(field).sku", "must be 1 to 128 bytes (UTF-8)") }
            if line.name.unicodeScalars.count > 500 { validator.add("\(field).name", "is longer than 500 characters") }
            if line.quantity <= 0 || line.quantity > 1_000_000 { validator.add("\(field).quantity", "must be 1 to 1000000, got \(line.quantity)") }
            if line.unitPriceMinor < 0 || line.unitPriceMinor > limit { validator.add("\(field).unit_price_minor", "must be 0 to \(limit) minor units") }
            let (lineTotal, overflow) = line.quantity.multipliedReportingOverflow(by: line.unitPriceMinor)
            if overflow || lineTotal > limit {
                validator.add("\(field)", "quantity × unit price is too large")
            } else {
                subtotal = min(subtotal + lineTotal, limit + 1)
            }
        }
        if subtotal > limit { validator.add("lines", "the order's subtotal is too large") }
        for (field, value) in [("discount_minor", input.discountMinor), ("shipping_minor", input.shippingMinor), ("tax_minor", input.taxMinor)] where value < 0 || value > limit {
            validator.add(field, "must be 0 to \(limit) minor units, got \(value)")
        }
        try validator.check()
        let total = subtotal - input.discountMinor + input.shippingMinor + input.taxMinor
        guard total >= 0 else { throw .invalid("discount_minor", "is larger than the subtotal plus shipping and tax: the total would be negative") }
        let money = { (minor: Int64) in Money(minorUnits: minor, currency: currency!) }
        return PreparedOrder(
            key: OrderKey(source: source, externalID: input.externalID.canonical), channel: input.channel, identities: identities, lines: input.lines,
            currency: currency!, subtotal: money(subtotal), discount: money(input.discountMinor), shipping: money(input.shippingMinor),
            tax: money(input.taxMinor), total: money(total), status: input.status, placedAt: input.placedAt, statusChangedAt: input.statusChangedAt)
    }

    private func identitiesOf(_ inputs: [IdentityInput]) throws(RapportError) -> [Identity] {
        guard !inputs.isEmpty else { throw .invalid("identities", "at least one identity is needed to know whose record it is") }
        guard inputs.count <= 20 else { throw .invalid("identities", "at most 20 identities, got \(inputs.count)") }
        return try normalize(inputs, parent: "identities")
    }

    /// Times before 2000 or more than a day ahead of the clock are mistakes (seconds sent as milliseconds...).
    static func checkTime(_ time: Timestamp, field: String, now: Timestamp) throws(RapportError) {
        if time.millisecondsSinceEpoch < 946_684_800_000 { throw .invalid(field, "\(time) is before the year 2000") }
        if time > now + .seconds(86_400) { throw .invalid(field, "\(time) is more than a day in the future") }
    }

    static func checkProperties(_ properties: [String: AttributeValue]) throws(RapportError) {
        var violations: [(key: String, violation: FieldViolation)] = []
        if properties.count > 100 { violations.append(("", FieldViolation(field: "properties", problem: "at most 100 properties, got \(properties.count)"))) }
        for (key, value) in properties {
            // Field names are spelled out only for a problem.
            do {
                try AttributeDefinition.validateKey(key, field: "")
            } catch {
                violations += error.fieldViolations.map { (key, $0.nested(under: "properties.\(key)")) }
            }
            switch value {
            case .string(let text) where text.utf8.count > 10_000:
                violations.append((key, FieldViolation(field: "properties.\(key)", problem: "is longer than 10000 bytes")))
            case .stringList(let list) where list.count > 1000 || list.contains(where: { $0.utf8.count > 1000 }):
                violations.append((key, FieldViolation(field: "properties.\(key)", problem: "a list holds at most 1000 strings of at most 1000 bytes")))
            case .decimal(let number) where number.isNaN:
                violations.append((key, FieldViolation(field: "properties.\(key)", problem: "is not a number (NaN)")))
            case .timestamp(let time) where !time.isKept:
                violations.append((key, FieldViolation(field: "properties.\(key)", problem: Timestamp.outsideKeptRange)))
            default: break
            }
        }
        // In key order, as a reader of the error expects (the count first); one key's problems in the order found.
        guard !violations.isEmpty else { return }
        throw .invalidArgument(violations.enumerated().sorted { ($0.element.key, $0.offset) < ($1.element.key, $1.offset) }.map(\.element.violation))
    }
}

/// What a batch's transaction did (rejected items are filled in afterwards).
struct IngestApplied: Sendable, Codable {
    var outcomes: [IngestOutcome?]
    var createdCustomers: [CustomerID]
    var merges: [MergeID]
}

/// An ingest item after validation and normalization.
enum PreparedItem: Sendable {
    case event(PreparedEvent)
    case order(PreparedOrder)
}

struct PreparedEvent: Sendable {
    var id: String
    var type: String
    var occurredAt: Timestamp
    var channel: Channel
    var identities: [Identity]
    var properties: [String: AttributeValue]
}

struct PreparedOrder: Sendable {
    var key: OrderKey
    var channel: Channel?
    var identities: [Identity]
    var lines: [OrderLine]
    var currency: CurrencyCode
    var subtotal: Money
    var discount: Money
    var shipping: Money
    var tax: Money
    var total: Money
    var status: OrderStatus
    var placedAt: Timestamp
    var statusChangedAt: Timestamp?
}

extension WriteSession {
    /// The number of a record whose identities just merged customers: one after the merge's, so that an unmerge
    /// sees the record as arrived with the merge and gives it to the customer its identities point to then.
    private mutating func sequenceAfterMerges(_ sequence: Int64, since count: Int) throws -> Int64 {
        merges.count == count ? sequence : try tx.allocateSequence(1)
    }

    /// Applies one valid event.
    mutating func apply(_ input: PreparedEvent, sequence: Int64) throws -> IngestOutcome {
        if let existing = try tx.event(id: input.id) { return .duplicate(existing.event.customerID) }
        if let declared = try catalog().eventTypes[input.type] {
            let problems = RapportEngine.mistypedProperties(input, declared)
            if !problems.isEmpty { return .rejected(problems) }
        }
        let mergesBefore = merges.count
        let customer = try resolve(input.identities, recordID: input.id)
        let sequence = try sequenceAfterMerges(sequence, since: mergesBefore)
        let event = Event(
            id: input.id, type: input.type, occurredAt: input.occurredAt, channel: input.channel, identities: input.identities,
            properties: input.properties, customerID: customer, receivedAt: now)
        try tx.insertEvent(EventRecord(event: event, homeCustomerID: customer, sequence: sequence))
        touch(customer)
        try updateStats(of: customer) { $0.add(eventAt: input.occurredAt) }
        try markDirty(customer, [.stats, .events])
        try trigger(customer, event)
        return .accepted(customer)
    }

    /// Applies one valid order: a new one, a new state of a known one, or a duplicate.
    mutating func apply(_ input: PreparedOrder, sequence: Int64) throws -> IngestOutcome {
        if var existing = try tx.order(key: input.key) {
            // Identities the order did not carry (a guest checkout's e-mail that came with "paid") are resolved as
            // any record's, with the order's customer: nobody's become its, another customer's is merged with it.
            let arrived = input.identities.filter { !existing.order.identities.contains($0) }
            // The limit of an item is the order's: items that each bring new identities must not grow it without end.
            // (An order an earlier version let grow past it still takes states that bring nothing new.)
            if !arrived.isEmpty, existing.order.identities.count + arrived.count > 20 {
                return .rejected([
                    FieldViolation(
                        field: "identities",
                        problem: "the order would hold \(existing.order.identities.count + arrived.count) identities; an order holds at most 20")
                ])
            }
            if !arrived.isEmpty {
                _ = try resolve(arrived, recordID: input.key.description, owner: existing.order.customerID)
                if let moved = try tx.order(key: input.key) { existing = moved }  // a merge takes it along
            }
            var order = existing.order
            order.identities += arrived
            let added = !order.statusHistory.contains(where: { $0.status == input.status })
            if added {
                if let changed = input.statusChangedAt {
                    // Nothing happens to an order before it is placed.
                    order.statusHistory.append(OrderStatusChange(status: input.status, at: max(changed, order.placedAt)))
                } else {
                    // Undated: it happened, and its place in the history is by the order's life (a late "shipped"
                    // after "delivered" does not take the order back); its time is an estimate, now at the latest.
                    order.statusHistory.append(OrderStatusChange(status: input.status, at: max(now, order.placedAt), estimated: true))
                }
            } else if let changed = input.statusChangedAt, let index = order.statusHistory.firstIndex(where: { $0.status == input.status && $0.estimated }) {
                // The time of a status known only by estimate arrived: it takes its place by it.
                order.statusHistory[index] = OrderStatusChange(status: input.status, at: max(changed, order.placedAt))
            }
            // Feeds arrive out of order: the history is kept in time order (estimated times by the order's life)
            // and its last entry is the status.
            order.statusHistory = Order.arrange(order.statusHistory)
            order.status = order.statusHistory.last!.status
            // The content (lines, amounts, channel) comes from an item about the order's latest state. An item about a
            // state the order has moved past (a replayed batch, a status that arrived late) only adds to the history:
            // it must not undo what came after it.
            if input.status == order.status {
                order.channel = input.channel ?? order.channel
                order.lines = input.lines
                order.currency = input.currency
                order.subtotal = input.subtotal
                order.discount = input.discount
                order.shipping = input.shipping
                order.tax = input.tax
                order.total = input.total
            }
            guard order != existing.order else { return .duplicate(order.customerID) }
            order.updatedAt = now
            try tx.updateOrder(OrderRecord(order: order, homeCustomerID: existing.homeCustomerID, sequence: existing.sequence))
            touch(order.customerID)
            if order.status.counts != existing.order.status.counts || order.total != existing.order.total {
                // In place, unless only reading every order of the customer can be exact.
                let current = try cachedStats(of: order.customerID) ?? tx.stats(of: order.customerID)
                if let replaced = current?.replacing(order: existing.order, with: order) {
                    try updateStats(of: order.customerID) { $0 = replaced }
                } else {
                    try recomputeStats(of: order.customerID)
                }
            }
            try markDirty(order.customerID, [.stats, .orders])
            // Every status the order reaches triggers its rules once, also one that arrived after a later one.
            if added {
                let changedAt = order.statusHistory.last { $0.status == input.status }?.at ?? now
                let now = self.now  // the event is made inside `trigger`, which mutates self
                try trigger(
                    order.customerID, type: "order.\(input.status.rawValue)", BuiltInEvent.order(order, status: input.status, at: changedAt, now: now), order: order)
            }
            return .updated(order.customerID)
        }
        let mergesBefore = merges.count
        let customer = try resolve(input.identities, recordID: input.key.description)
        let sequence = try sequenceAfterMerges(sequence, since: mergesBefore)
        var history = [OrderStatusChange(status: .placed, at: input.placedAt)]
        if input.status != .placed {
            history.append(OrderStatusChange(status: input.status, at: input.statusChangedAt ?? input.placedAt, estimated: input.statusChangedAt == nil))
        }
        let order = Order(
            id: engine.ids.make(OrderID.self, at: now), key: input.key, channel: input.channel ?? .other, customerID: customer, identities: input.identities,
            lines: input.lines, currency: input.currency, subtotal: input.subtotal, discount: input.discount, shipping: input.shipping, tax: input.tax,
            total: input.total, status: input.status, statusHistory: history, placedAt: input.placedAt, updatedAt: now)
        try tx.insertOrder(OrderRecord(order: order, homeCustomerID: customer, sequence: sequence))
        touch(customer)
        try updateStats(of: customer) { $0.add(order: order) }
        try markDirty(customer, [.stats, .orders])
        let now = self.now  // the event is made inside `trigger`, which mutates self
        for change in history {
            try trigger(customer, type: "order.\(change.status.rawValue)", BuiltInEvent.order(order, status: change.status, at: change.at, now: now), order: order)
        }
        return .accepted(customer)
    }
}
