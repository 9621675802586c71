import Foundation
import RapportCore

extension Compiler {
    static let customerFields = [
        "id", "given_name", "family_name", "locale", "time_zone", "lifecycle_stage", "tags", "birthday", "age", "created_at", "updated_at",
        "emails", "phones", "countries", "attributes",
    ]
    static let statsFields = ["order_count", "event_count", "first_order_at", "last_order_at", "last_seen_at", "currencies"]
    static let eventFields = ["id", "type", "channel", "occurred_at", "properties"]
    static let orderFields = [
        "id", "source", "external_id", "channel", "status", "currency", "total", "subtotal", "discount", "shipping", "tax", "placed_at", "skus",
        "item_count",
    ]

    mutating func path(_ parts: [String], _ range: SourceRange) -> Checked {
        let root = parts[0]
        switch root {
        case "now":
            guard parts.count == 1 else { return fail("'now' is a timestamp and has no fields", range) }
            var result = Checked(type: .timestamp, code: .timestamp { c, _ in c.pointee.now.millisecondsSinceEpoch }, slope: 1)
            result.requirements.data = .time
            return result
        case "customer": return customerField(parts, range)
        case "stats": return statsField(parts, range)
        case "event": return eventField(parts, range)
        case "order": return orderField(parts, range)
        default:
            if parts.count == 1, Self.functionNames.contains(root) {
                return fail("'\(root)' is a function: call it with parentheses, '\(root)(...)'", range)
            }
            let hint = Suggestions.closest(to: root, in: ["customer", "stats", "event", "order", "now"]).map { " (did you mean '\($0)'?)" } ?? ""
            return fail("unknown name '\(root)'\(hint): paths start with customer., stats., event. or order., or are 'now'", range)
        }
    }

    private mutating func unknownField(_ parts: [String], _ known: [String], _ range: SourceRange) -> Checked {
        let field = parts.count > 1 ? parts[1] : ""
        guard !field.isEmpty else { return fail("name a field of '\(parts[0])': \(known.joined(separator: ", "))", range) }
        let hint = Suggestions.closest(to: field, in: known).map { " (did you mean '\(parts[0]).\($0)'?)" } ?? ""
        return fail("unknown field '\(parts.joined(separator: "."))'\(hint); \(parts[0]) has \(known.joined(separator: ", "))", range)
    }

    private func requiring(_ data: Requirements.Data, _ checked: Checked) -> Checked {
        var result = checked
        result.requirements.data.formUnion(data)
        return result
    }

    // MARK: customer.*

    private mutating func customerField(_ parts: [String], _ range: SourceRange) -> Checked {
        guard parts.count >= 2 else { return unknownField(parts, Self.customerFields, range) }
        func text(_ get: @escaping @Sendable (CustomerProfile) -> String) -> Checked {
            Checked(type: .string, code: .string { c, _ in
                let value = get(c.pointee.customer.profile)
                return value.isEmpty ? nil : value
            })
        }
        let field = parts[1]
        if field == "attributes" { return attribute(parts, range) }
        if field == "birthday", parts.count == 3 {
            let part = parts[2]
            let code: Fn<Int64>
            switch part {
            case "year": code = { c, _ in c.pointee.customer.profile.birthday?.year.map(Int64.init) }
            case "month": code = { c, _ in c.pointee.customer.profile.birthday.map { Int64($0.month) } }
            case "day": code = { c, _ in c.pointee.customer.profile.birthday.map { Int64($0.day) } }
            default: return fail("a birthday has year, month and day, not '\(part)'", range)
            }
            return requiring(.profile, Checked(type: .int, code: .int(code)))
        }
        guard parts.count == 2 else { return fail("'customer.\(field)' has no fields", range) }
        let checked: Checked
        switch field {
        case "id": return Checked(type: .string, code: .string { c, _ in c.pointee.customer.id.rawValue })
        case "given_name": checked = text(\.givenName)
        case "family_name": checked = text(\.familyName)
        case "locale": checked = text(\.locale)
        case "time_zone": checked = text(\.timeZone)
        case "lifecycle_stage":
            var stage = Checked(type: .string, code: .string { c, _ in c.pointee.customer.profile.lifecycleStage?.rawValue })
            stage.allowed = ("a lifecycle stage", LifecycleStage.allCases.map(\.rawValue))
            checked = stage
        case "tags": checked = Checked(type: .stringList, code: .stringList { c, _ in c.pointee.customer.profile.tags })
        case "countries":
            checked = Checked(type: .stringList, code: .stringList { c, _ in
                var seen: [String] = []
                for address in c.pointee.customer.profile.addresses where !seen.contains(address.country) { seen.append(address.country) }
                return seen
            })
        case "birthday": checked = Checked(type: .date, code: .date { c, _ in c.pointee.customer.profile.birthday })
        case "age":
            var age = Checked(type: .int, code: .int(Self.age))
            age.requirements.data = .time
            checked = age
        case "created_at": return Checked(type: .timestamp, code: .timestamp { c, _ in c.pointee.customer.createdAt.millisecondsSinceEpoch })
        case "updated_at": return requiring(.profile, Checked(type: .timestamp, code: .timestamp { c, _ in c.pointee.customer.updatedAt.millisecondsSinceEpoch }))
        case "emails":
            return requiring(.identities, Checked(type: .stringList, code: .stringList { c, _ in c.pointee.identities.filter { $0.kind == .email }.map(\.value) }))
        case "phones":
            return requiring(.identities, Checked(type: .stringList, code: .stringList { c, _ in c.pointee.identities.filter { $0.kind == .phone }.map(\.value) }))
        default: return unknownField(parts, Self.customerFields, range)
        }
        return requiring(.profile, checked)
    }

    /// Whole years since the birthday (which needs a year) in the customer's time zone; changes on the birthday.
    static let age: Fn<Int64> = { c, s in
        guard let birthday = c.pointee.customer.profile.birthday, let year = birthday.year else { return nil }
        let zone = c.pointee.timeZone
        let today = ZonedTime.local(c.pointee.now, in: zone).date
        let hadBirthday = (today.month, today.day) >= (birthday.month, min(birthday.day, LocalDate.daysIn(month: birthday.month, year: today.year)))
        let next = ZonedTime.nextAnnual(month: birthday.month, day: birthday.day, at: LocalTime(hour: 0), in: zone, after: c.pointee.now)
        s.changes(at: next.millisecondsSinceEpoch)
        return Int64((today.year ?? year) - year - (hadBirthday ? 0 : 1))
    }

    private mutating func attribute(_ parts: [String], _ range: SourceRange) -> Checked {
        guard parts.count == 3 else {
            let declared = schema.attributes.keys.sorted()
            return fail(
                "name one attribute: customer.attributes.KEY"
                    + (declared.isEmpty ? " (no attribute is declared yet)" : " (declared: \(declared.joined(separator: ", ")))"), range)
        }
        let key = parts[2]
        guard let type = schema.attributes[key] else {
            let declared = schema.attributes.keys.sorted()
            let hint = Suggestions.closest(to: key, in: declared).map { " (did you mean '\($0)'?)" } ?? ""
            return fail(
                "'\(key)' is not a declared attribute\(hint)" + (declared.isEmpty ? "; declare it first" : "; declared: \(declared.joined(separator: ", "))"),
                range)
        }
        return requiring(.profile, Self.typedValue(type) { c, _ in c.pointee.customer.profile.attributes[key] })
    }

    /// A node reading an attribute or property of a declared type; a value of another type counts as missing, and
    /// so does an empty string, as an empty name does (`?? default` replaces it).
    static func typedValue(_ type: AttributeType, _ get: @escaping @Sendable (UnsafePointer<EvaluationContext>, inout EvaluationScratch) -> AttributeValue?) -> Checked {
        switch type {
        case .string:
            Checked(type: .string, code: .string { c, s in if case .string(let v)? = get(c, &s), !v.isEmpty { v } else { nil } })
        case .int:
            Checked(type: .int, code: .int { c, s in if case .int(let v)? = get(c, &s) { v } else { nil } })
        case .decimal:
            Checked(type: .decimal, code: .decimal { c, s in
                switch get(c, &s) {
                case .decimal(let v)?: v
                case .int(let v)?: Decimal(v)
                default: nil
                }
            })
        case .bool:
            Checked(type: .bool, code: .bool { c, s in if case .bool(let v)? = get(c, &s) { v } else { nil } })
        case .timestamp:
            Checked(type: .timestamp, code: .timestamp { c, s in if case .timestamp(let v)? = get(c, &s) { v.millisecondsSinceEpoch } else { nil } })
        case .stringList:
            Checked(type: .stringList, code: .stringList { c, s in if case .stringList(let v)? = get(c, &s) { v } else { nil } })
        }
    }

    // MARK: stats.*

    private mutating func statsField(_ parts: [String], _ range: SourceRange) -> Checked {
        guard parts.count == 2 else { return parts.count < 2 ? unknownField(parts, Self.statsFields, range) : fail("'\(parts[0]).\(parts[1])' has no fields", range) }
        let checked: Checked
        switch parts[1] {
        case "order_count": checked = Checked(type: .int, code: .int { c, _ in c.pointee.stats.orderCount })
        case "event_count": checked = Checked(type: .int, code: .int { c, _ in c.pointee.stats.eventCount })
        case "first_order_at": checked = Checked(type: .timestamp, code: .timestamp { c, _ in c.pointee.stats.firstOrderAt?.millisecondsSinceEpoch })
        case "last_order_at": checked = Checked(type: .timestamp, code: .timestamp { c, _ in c.pointee.stats.lastOrderAt?.millisecondsSinceEpoch })
        case "last_seen_at": checked = Checked(type: .timestamp, code: .timestamp { c, _ in c.pointee.stats.lastSeenAt?.millisecondsSinceEpoch })
        case "currencies": checked = Checked(type: .stringList, code: .stringList { c, _ in c.pointee.stats.spent.map(\.currency.code) })
        default: return unknownField(parts, Self.statsFields, range)
        }
        return requiring(.stats, checked)
    }

    // MARK: event.*

    /// The event `event.*` names here: the one a `where:` looks at, else the triggering one.
    private mutating func eventSource(_ range: SourceRange) -> (item: Bool, types: [String]?)? {
        if case .event(let types)? = item { return (true, types) }
        if let type = scope.eventType { return (false, [type]) }
        _ = fail(
            "there is no event here: event.* is available in rules triggered by an event and inside events_count(where: ...)", range)
        return nil
    }

    private mutating func eventField(_ parts: [String], _ range: SourceRange) -> Checked {
        guard let (isItem, types) = eventSource(range) else { return .failure }
        guard parts.count >= 2 else { return unknownField(parts, Self.eventFields, range) }
        let field = parts[1]
        if field == "properties" {
            guard parts.count == 3 else { return fail("name one property: event.properties.KEY", range) }
            return eventProperty(parts[2], isItem: isItem, types: types, range)
        }
        guard parts.count == 2 else { return fail("'event.\(field)' has no fields", range) }
        func text(_ get: @escaping @Sendable (Event) -> String) -> Checked {
            isItem ? Checked(type: .string, code: .string { _, s in s.itemEvent.map(get) })
                : Checked(type: .string, code: .string { c, _ in c.pointee.event.map(get) })
        }
        var checked: Checked
        switch field {
        case "id": checked = text(\.id)
        case "type": checked = text(\.type)
        case "channel":
            checked = text(\.channel.rawValue)
            checked.allowed = ("a channel", Channel.allCases.map(\.rawValue))
        case "occurred_at":
            checked = isItem ? Checked(type: .timestamp, code: .timestamp { _, s in s.itemEvent?.occurredAt.millisecondsSinceEpoch })
                : Checked(type: .timestamp, code: .timestamp { c, _ in c.pointee.event?.occurredAt.millisecondsSinceEpoch })
        default: return unknownField(parts, Self.eventFields, range)
        }
        if !isItem { checked.requirements.data.insert(.trigger) }
        return checked
    }

    private mutating func eventProperty(_ key: String, isItem: Bool, types: [String]?, _ range: SourceRange) -> Checked {
        guard let types else {
            return fail("name the event type in events_count(\"type\", ...) to use event.properties.\(key)", range)
        }
        var found: AttributeType?
        for type in types {
            guard let declared = schema.eventTypes[type] else {
                return fail("event type '\(type)' is not declared, so its properties are unknown; declare it with its properties", range)
            }
            guard let propertyType = declared[key] else {
                let names = declared.keys.sorted()
                let hint = Suggestions.closest(to: key, in: names).map { " (did you mean '\($0)'?)" } ?? ""
                return fail(
                    "'\(key)' is not a declared property of '\(type)'\(hint)" + (names.isEmpty ? "" : "; declared: \(names.joined(separator: ", "))"), range)
            }
            if let found, found != propertyType {
                return fail("property '\(key)' is \(found.rawValue) in one event type and \(propertyType.rawValue) in another", range)
            }
            found = propertyType
        }
        guard let found else { return fail("name the event type to use event.properties.\(key)", range) }
        var checked = isItem
            ? Self.typedValue(found) { _, s in s.itemEvent?.properties[key] }
            : Self.typedValue(found) { c, _ in c.pointee.event?.properties[key] }
        if !isItem { checked.requirements.data.insert(.trigger) }
        return checked
    }

    // MARK: order.*

    private mutating func orderField(_ parts: [String], _ range: SourceRange) -> Checked {
        let isItem: Bool
        if case .order? = item {
            isItem = true
        } else if scope.hasOrder {
            isItem = false
        } else {
            return fail("there is no order here: order.* is available in rules triggered by order.* events and inside orders_count(where: ...)", range)
        }
        guard parts.count >= 2 else { return unknownField(parts, Self.orderFields, range) }
        guard parts.count == 2 else { return fail("'order.\(parts[1])' has no fields", range) }
        func make<T: Sendable>(_ type: ValueType, _ wrap: (@escaping Fn<T>) -> Code, _ get: @escaping @Sendable (Order) -> T?) -> Checked {
            isItem ? Checked(type: type, code: wrap { _, s in s.itemOrder.flatMap(get) }) : Checked(type: type, code: wrap { c, _ in c.pointee.order.flatMap(get) })
        }
        var checked: Checked
        switch parts[1] {
        case "id": checked = make(.string, Code.string) { $0.id.rawValue }
        case "source": checked = make(.string, Code.string) { $0.key.source }
        case "external_id": checked = make(.string, Code.string) { $0.key.externalID }
        case "currency": checked = make(.string, Code.string) { $0.currency.code }
        case "channel":
            checked = make(.string, Code.string) { $0.channel.rawValue }
            checked.allowed = ("a channel", Channel.allCases.map(\.rawValue))
        case "status":
            checked = make(.string, Code.string) { $0.status.rawValue }
            checked.allowed = ("an order status", OrderStatus.allCases.map(\.rawValue))
        case "total": checked = make(.money(nil), Code.money) { $0.total }
        case "subtotal": checked = make(.money(nil), Code.money) { $0.subtotal }
        case "discount": checked = make(.money(nil), Code.money) { $0.discount }
        case "shipping": checked = make(.money(nil), Code.money) { $0.shipping }
        case "tax": checked = make(.money(nil), Code.money) { $0.tax }
        case "placed_at": checked = make(.timestamp, Code.timestamp) { $0.placedAt.millisecondsSinceEpoch }
        case "skus": checked = make(.stringList, Code.stringList) { $0.lines.map(\.sku) }
        case "item_count": checked = make(.int, Code.int) { $0.itemCount }
        default: return unknownField(parts, Self.orderFields, range)
        }
        if !isItem { checked.requirements.data.insert(.trigger) }
        return checked
    }
}
