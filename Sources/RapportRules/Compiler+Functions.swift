import Foundation
import RapportCore

extension Compiler {
    static let functionNames: [String] = [
        "orders_count", "orders_sum", "orders_avg", "events_count", "last_event_at", "time_since", "time_until", "in_segment", "has_tag",
        "has_consent", "total_spent", "average_order_value", "lower", "upper", "trim", "length", "is_set", "days_until_birthday",
    ]

    /// Binds a call's arguments to parameter names: positional ones in order, then labelled ones.
    private mutating func bind(
        _ name: String, _ arguments: [Argument], positional: [String], labelled: [String], required: [String] = [], _ range: SourceRange
    ) -> [String: Argument]? {
        var bound: [String: Argument] = [:]
        var position = 0
        let usage = (positional.map { "\($0)" } + labelled.map { "\($0): ..." }).joined(separator: ", ")
        for argument in arguments {
            if let label = argument.label {
                guard positional.contains(label) || labelled.contains(label) else {
                    let hint = Suggestions.closest(to: label, in: positional + labelled).map { " (did you mean '\($0):'?)" } ?? ""
                    _ = fail("\(name) has no argument '\(label)'\(hint); it takes \(usage.isEmpty ? "no arguments" : usage)", argument.labelRange ?? argument.value.range)
                    return nil
                }
                guard bound[label] == nil else {
                    _ = fail("'\(label)' is given twice", argument.labelRange ?? argument.value.range)
                    return nil
                }
                bound[label] = argument
            } else {
                guard position < positional.count else {
                    _ = fail("\(name) takes \(usage.isEmpty ? "no arguments" : usage)", argument.value.range)
                    return nil
                }
                bound[positional[position]] = argument
                position += 1
            }
        }
        for parameter in required where bound[parameter] == nil {
            _ = fail("\(name) needs '\(parameter)': \(name)(\(usage))", range)
            return nil
        }
        return bound
    }

    /// A string written out (a literal), for arguments that must be known when the expression is compiled.
    private mutating func literalString(_ argument: Argument, _ what: String) -> String? {
        guard case .string(let text) = argument.value.kind else {
            _ = fail("\(what) must be written out as a string literal", argument.value.range)
            return nil
        }
        return text
    }

    private mutating func currencyArgument(_ argument: Argument?, _ name: String, _ range: SourceRange) -> CurrencyCode? {
        guard let argument else {
            _ = fail("\(name) needs a currency: \(name)(\"EUR\")", range)
            return nil
        }
        guard let code = literalString(argument, "the currency") else { return nil }
        guard let currency = try? CurrencyCode(code) else {
            _ = fail("'\(code)' is not an ISO 4217 currency code", argument.value.range)
            return nil
        }
        return currency
    }

    mutating func call(_ name: String, _ arguments: [Argument], _ range: SourceRange) -> Checked {
        if item != nil, ["orders_count", "orders_sum", "orders_avg", "events_count", "last_event_at"].contains(name) {
            return fail("window functions do not nest inside another window function's 'where:'", range)
        }
        switch name {
        case "orders_count", "orders_sum", "orders_avg": return orderWindow(name, arguments, range)
        case "events_count": return eventWindow(arguments, range)
        case "last_event_at":
            guard let bound = bind(name, arguments, positional: ["types"], labelled: [], range) else { return .failure }
            guard let types = eventTypes(bound["types"]) else { return .failure }
            let filter = types.map(Set.init)
            var result = Checked(type: .timestamp, code: .timestamp { c, s in
                // An event dated after now has not happened yet: it counts from its time.
                guard let (latest, next) = c.pointee.activity?.latestEvent(ofTypes: filter, notAfter: c.pointee.now) else { return nil }
                if let next { s.changes(at: next.millisecondsSinceEpoch) }
                return latest?.occurredAt.millisecondsSinceEpoch
            })
            // Time too: an event dated ahead changes the answer when its time comes, with no new event.
            result.requirements.data = [.events, .time]
            return result
        case "time_since", "time_until":
            guard let bound = bind(name, arguments, positional: ["time"], labelled: [], required: ["time"], range) else { return .failure }
            let time = check(bound["time"]!.value)
            guard !time.failed else { return .failure }
            guard case .timestamp(let f) = time.code else { return fail("\(name) needs a timestamp, got \(time.type)", bound["time"]!.value.range) }
            let since = name == "time_since"
            var result = Checked(type: .duration, code: .duration { c, s in
                guard let t = f(c, &s) else { return nil }
                let now = c.pointee.now.millisecondsSinceEpoch
                let (r, o) = since ? now.subtractingReportingOverflow(t) : t.subtractingReportingOverflow(now)
                return o ? nil : r
            })
            result.slope = since ? 1 - time.slope : time.slope - 1
            result.requirements = time.requirements
            result.requirements.data.insert(.time)
            return result
        case "in_segment":
            guard let bound = bind(name, arguments, positional: ["segment"], labelled: [], required: ["segment"], range),
                let key = literalString(bound["segment"]!, "the segment key")
            else { return .failure }
            guard let id = schema.segments[key] else {
                let keys = schema.segments.keys.sorted()
                let hint = Suggestions.closest(to: key, in: keys).map { " (did you mean '\($0)'?)" } ?? ""
                return fail("there is no segment with key '\(key)'\(hint)", bound["segment"]!.value.range)
            }
            var result = Checked(type: .bool, code: .bool { c, _ in c.pointee.segments.contains(id) })
            result.requirements.data = .segments
            result.requirements.segmentIDs = [id]
            return result
        case "has_tag":
            guard let bound = bind(name, arguments, positional: ["tag"], labelled: [], required: ["tag"], range) else { return .failure }
            let tag = check(bound["tag"]!.value)
            guard !tag.failed else { return .failure }
            guard let f = tag.code.stringFn else { return fail("has_tag needs a string, got \(tag.type)", bound["tag"]!.value.range) }
            var result: Checked
            if case .string(let constant)? = tag.constant {
                result = Checked(type: .bool, code: .bool { c, _ in c.pointee.customer.profile.tags.contains(constant) })
            } else {
                result = Checked(type: .bool, code: .bool { c, s in f(c, &s).map { c.pointee.customer.profile.tags.contains($0) } ?? false })
            }
            result.requirements = tag.requirements
            result.requirements.data.insert(.profile)
            return result
        case "has_consent":
            guard let bound = bind(name, arguments, positional: ["channel", "purpose"], labelled: [], required: ["channel", "purpose"], range),
                let channelName = literalString(bound["channel"]!, "the channel"), let purposeName = literalString(bound["purpose"]!, "the purpose")
            else { return .failure }
            guard let channel = ConsentChannel(rawValue: channelName) else {
                return fail("'\(channelName)' is not a consent channel (\(ConsentChannel.allCases.map(\.rawValue).joined(separator: ", ")))", bound["channel"]!.value.range)
            }
            guard let purpose = ConsentPurpose(rawValue: purposeName) else {
                return fail("'\(purposeName)' is not a consent purpose (\(ConsentPurpose.allCases.map(\.rawValue).joined(separator: ", ")))", bound["purpose"]!.value.range)
            }
            // As the outbox decides: a grant allows; without a statement, transactional messages are allowed (a
            // refusal stops them) and the other purposes are not.
            let allowedWithoutStatement = purpose == .transactional
            var result = Checked(type: .bool, code: .bool { c, _ in
                c.pointee.consents.first { $0.channel == channel && $0.purpose == purpose }.map(\.status.allows) ?? allowedWithoutStatement
            })
            result.requirements.data = .consents
            return result
        case "total_spent", "average_order_value":
            guard let bound = bind(name, arguments, positional: ["currency"], labelled: [], range),
                let currency = currencyArgument(bound["currency"], name, range)
            else { return .failure }
            var result: Checked
            if name == "total_spent" {
                result = Checked(type: .money(currency), code: .money { c, _ in c.pointee.stats.totalSpent(in: currency) })
            } else {
                result = Checked(type: .money(currency), code: .money { c, _ in
                    c.pointee.stats.spent.first { $0.currency == currency }.flatMap { $0.orderCount > 0 ? $0.averageOrderValue : nil }
                })
            }
            result.requirements.data = .stats
            return result
        case "lower", "upper", "trim":
            guard let bound = bind(name, arguments, positional: ["text"], labelled: [], required: ["text"], range) else { return .failure }
            let text = check(bound["text"]!.value)
            guard !text.failed else { return .failure }
            guard let f = text.code.stringFn else { return fail("\(name) needs a string, got \(text.type)", bound["text"]!.value.range) }
            let transform: @Sendable (String) -> String
            switch name {
            case "lower": transform = { $0.lowercased() }
            case "upper": transform = { $0.uppercased() }
            default: transform = { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            }
            var result = Checked(type: .string, code: .string { c, s in f(c, &s).map(transform) })
            result.requirements = text.requirements
            return result
        case "length":
            guard let bound = bind(name, arguments, positional: ["value"], labelled: [], required: ["value"], range) else { return .failure }
            let value = check(bound["value"]!.value)
            guard !value.failed else { return .failure }
            var result: Checked
            switch value.code {
            case .string(let f): result = Checked(type: .int, code: .int { c, s in f(c, &s).map { Int64($0.count) } })
            case .stringList(let f): result = Checked(type: .int, code: .int { c, s in f(c, &s).map { Int64($0.count) } })
            case .intList(let f): result = Checked(type: .int, code: .int { c, s in f(c, &s).map { Int64($0.count) } })
            default: return fail("length needs a string or a list, got \(value.type)", bound["value"]!.value.range)
            }
            result.requirements = value.requirements
            return result
        case "is_set":
            guard let bound = bind(name, arguments, positional: ["value"], labelled: [], required: ["value"], range) else { return .failure }
            let value = check(bound["value"]!.value)
            guard !value.failed else { return .failure }
            let missing = Self.isMissing(value.code)
            var result: Checked
            switch value.code {
            case .stringList(let f): result = Checked(type: .bool, code: .bool { c, s in f(c, &s).map { !$0.isEmpty } ?? false })
            case .intList(let f): result = Checked(type: .bool, code: .bool { c, s in f(c, &s).map { !$0.isEmpty } ?? false })
            case .string(let f): result = Checked(type: .bool, code: .bool { c, s in f(c, &s).map { !$0.isEmpty } ?? false })  // "" is not set
            default: result = Checked(type: .bool, code: .bool { c, s in missing(c, &s) != true })
            }
            result.requirements = value.requirements
            return result
        case "days_until_birthday":
            guard bind(name, arguments, positional: [], labelled: [], range) != nil else { return .failure }
            var result = Checked(type: .int, code: .int(Self.daysUntilBirthday))
            result.requirements.data = [.profile, .time]
            result.birthdayCountdown = true
            return result
        default:
            let hint = Suggestions.closest(to: name, in: Self.functionNames).map { " (did you mean '\($0)'?)" } ?? ""
            return fail("unknown function '\(name)'\(hint)", range)
        }
    }

    /// Days from today to the next birthday in the customer's time zone (0 on the day); changes at midnight.
    static let daysUntilBirthday: Fn<Int64> = { c, s in
        guard let birthday = c.pointee.customer.profile.birthday else { return nil }
        let zone = c.pointee.timeZone
        let today = ZonedTime.local(c.pointee.now, in: zone).date
        s.changes(at: ZonedTime.nextMidnight(after: c.pointee.now, in: zone).millisecondsSinceEpoch)
        return Int64(daysUntil(birthday, from: today.daysSinceEpoch))
    }

    /// Days from the day numbered `day` (since 1970-01-01) to the next `birthday` (29 February is 28 February in
    /// other years).
    static func daysUntil(_ birthday: LocalDate, from day: Int) -> Int {
        let year = LocalDate.civil(daysSinceEpoch: day).year ?? 1970
        for candidate in year...(year + 1) {
            let target = LocalDate.daysSinceEpoch(
                year: candidate, month: birthday.month, day: min(birthday.day, LocalDate.daysIn(month: birthday.month, year: candidate)))
            if target >= day { return target - day }
        }
        return 0  // not reached: next year's birthday is after any day of this year
    }

    /// `days_until_birthday() op k`. The count falls by one each midnight and jumps back to a year's days after the
    /// birthday, so its truth can change only where it crosses `k` or jumps: those midnights (in this cycle and the
    /// next) are looked at, and the first one that changes it is reported. A segment such as "birthday within 7
    /// days" is looked at twice a year per customer, not every midnight.
    static func birthdayCountdown(_ op: BinaryOperator, _ count: @escaping Fn<Int64>, _ k: Int64) -> Fn<Bool> {
        { c, s in
            var own = EvaluationScratch()  // the count's own report (every midnight) is replaced below
            guard let value = count(c, &own), let birthday = c.pointee.customer.profile.birthday else { return op == .notEqual }
            let truth = holds(op, value, k)
            let zone = c.pointee.timeZone
            let today = ZonedTime.local(c.pointee.now, in: zone).date
            let day = today.daysSinceEpoch
            let v = Int(value)
            let jump = v + 1
            let next = daysUntil(birthday, from: day + jump)
            // The count is 0 to 366: a `k` beyond that compares the same as one just outside (and the sums below
            // stay far from overflowing).
            let near = Int(min(max(k, -2), 370))
            let candidates = [v - near - 1, v - near, v - near + 1, jump, jump + next - near - 1, jump + next - near, jump + next - near + 1]
            func midnight(_ offset: Int) -> Int64 {
                ZonedTime.instant(LocalDate.civil(daysSinceEpoch: day + offset), LocalTime(hour: 0), in: zone).millisecondsSinceEpoch
            }
            for offset in Set(candidates.filter { $0 >= 1 && $0 <= jump + next + 1 }).sorted()
            where holds(op, Int64(daysUntil(birthday, from: day + offset)), k) != truth {
                s.changes(at: midnight(offset))
                return truth
            }
            // Unchanged through both cycles: a later one may be longer (365 is reached only in the year before a leap
            // year), so it is looked at again when the cycle after next begins; unless no count (0 to 365) compares
            // otherwise.
            let varies = op == .equal || op == .notEqual ? (0...365).contains(k) : holds(op, 0, k) != holds(op, 365, k)  // the others are monotonic
            if varies { s.changes(at: midnight(jump + next + 1)) }
            return truth
        }
    }

    // MARK: Windows

    /// The event types named by a string or a list of strings written out; nil (any type) when absent.
    private mutating func eventTypes(_ argument: Argument?) -> [String]?? {
        guard let argument else { return .some(nil) }
        var names: [String] = []
        switch argument.value.kind {
        case .string(let name): names = [name]
        case .list(let items):
            for item in items {
                guard case .string(let name) = item.kind else {
                    _ = fail("event types are written out as strings", item.range)
                    return nil
                }
                names.append(name)
            }
        default:
            _ = fail("event types are written out as a string or a list of strings", argument.value.range)
            return nil
        }
        for name in names where !EventTypeDefinition.isEventTypeName(name) {
            _ = fail("'\(name)' is not an event type (lower-case words joined by '.')", argument.value.range)
            return nil
        }
        return .some(names)
    }

    /// The window of a window function: `within: 30d` (a duration written out) or `since: <timestamp>`.
    private mutating func window(_ bound: [String: Argument], _ name: String) -> (within: Int64?, since: Checked?)? {
        if let within = bound["within"], bound["since"] != nil {
            _ = fail("\(name) takes 'within:' or 'since:', not both", within.value.range)
            return nil
        }
        if let within = bound["within"] {
            let checked = check(within.value)
            guard !checked.failed else { return nil }
            guard case .duration(let milliseconds)? = checked.constant, milliseconds > 0 else {
                _ = fail("'within:' takes a positive duration written out, such as 30d", within.value.range)
                return nil
            }
            return (milliseconds, nil)
        }
        if let since = bound["since"] {
            let checked = check(since.value)
            guard !checked.failed else { return nil }
            guard checked.type == .timestamp else {
                _ = fail("'since:' takes a timestamp, got \(checked.type)", since.value.range)
                return nil
            }
            guard checked.slope == 0 else {
                _ = fail("'since:' must not move with now; for a window that follows now use 'within:'", since.value.range)
                return nil
            }
            return (nil, checked)
        }
        return (nil, nil)
    }

    /// Checks a `where:` condition about the items of a window; window functions do not nest.
    private mutating func whereClause(_ argument: Argument?, _ scopeItem: Item) -> (Fn<Bool>?, Requirements)? {
        guard let argument else { return (nil, Requirements()) }
        guard item == nil else {
            _ = fail("window functions do not nest inside another window function's 'where:'", argument.value.range)
            return nil
        }
        item = scopeItem
        let checked = check(argument.value)
        item = nil
        guard !checked.failed else { return nil }
        guard let f = checked.code.boolFn else {
            _ = fail("'where:' takes a condition (bool), got \(checked.type)", argument.value.range)
            return nil
        }
        return (f, checked.requirements)
    }

    private mutating func orderWindow(_ name: String, _ arguments: [Argument], _ range: SourceRange) -> Checked {
        let isCount = name == "orders_count"
        guard let bound = bind(name, arguments, positional: isCount ? [] : ["currency"], labelled: ["within", "since", "where"], range) else {
            return .failure
        }
        let currency: CurrencyCode?
        if isCount {
            currency = nil
        } else {
            guard let code = currencyArgument(bound["currency"], name, range) else { return .failure }
            currency = code
        }
        guard let (within, since) = window(bound, name), let (condition, conditionRequirements) = whereClause(bound["where"], .order) else {
            return .failure
        }
        let sinceFn = since.flatMap { $0.code.millisecondsFn }
        // Counts (and sums, in the currency) the orders in the window that pass the condition.
        let tally: @Sendable (UnsafePointer<EvaluationContext>, inout EvaluationScratch) -> (count: Int64, sum: Int64, overflow: Bool)? = { c, s in
            guard let activity = c.pointee.activity else { return nil }
            let now = c.pointee.now.millisecondsSinceEpoch
            var start = Int64.min
            if let sinceFn {
                guard let value = sinceFn(c, &s) else { return nil }
                start = value
            }
            var count: Int64 = 0
            var sum: Int64 = 0
            var overflow = false
            let slot = WindowItem()
            let orders = activity.countingOrders()
            for index in orders.indices {
                let placed = orders[index].placedAt.millisecondsSinceEpoch
                if placed > now {
                    s.changes(at: placed)  // a future-dated order enters the window when its time comes
                    continue
                }
                if let within {
                    if placed <= now - within { continue }
                } else if placed < start {
                    continue
                }
                if let currency, orders[index].currency != currency { continue }
                if let condition {
                    slot.order = orders[index]
                    s.item = slot
                    let passes = condition(c, &s) == true
                    s.item = nil
                    guard passes else { continue }
                }
                if let within { s.changes(at: placed + within) }  // it leaves the window then
                count += 1
                let (total, o) = sum.addingReportingOverflow(orders[index].total.minorUnits)
                sum = total
                overflow = overflow || o
            }
            return (count, sum, overflow)
        }
        var result: Checked
        switch name {
        case "orders_count":
            result = Checked(type: .int, code: .int { c, s in tally(c, &s)?.count })
        case "orders_sum":
            let code = currency!
            result = Checked(type: .money(code), code: .money { c, s in
                guard let t = tally(c, &s), !t.overflow else { return nil }
                return Money(minorUnits: t.sum, currency: code)
            })
        default:
            let code = currency!
            result = Checked(type: .money(code), code: .money { c, s in
                guard let t = tally(c, &s), !t.overflow, t.count > 0 else { return nil }
                return CurrencyTotal(currency: code, totalMinor: t.sum, orderCount: t.count).averageOrderValue
            })
        }
        result.requirements = conditionRequirements
        if let since { result.requirements.formUnion(since.requirements) }
        result.requirements.data.formUnion([.orders, .time])
        return result
    }

    private mutating func eventWindow(_ arguments: [Argument], _ range: SourceRange) -> Checked {
        guard let bound = bind("events_count", arguments, positional: ["types"], labelled: ["within", "since", "where"], range),
            let types = eventTypes(bound["types"]), let (within, since) = window(bound, "events_count"),
            let (condition, conditionRequirements) = whereClause(bound["where"], .event(types: types))
        else { return .failure }
        let filter = types.map(Set.init)
        let sinceFn = since.flatMap { $0.code.millisecondsFn }
        var result = Checked(type: .int, code: .int { c, s in
            guard let activity = c.pointee.activity else { return nil }
            let now = c.pointee.now.millisecondsSinceEpoch
            var start: Int64?
            if let within { start = now - within + 1 }
            if let sinceFn {
                guard let value = sinceFn(c, &s) else { return nil }
                start = value
            }
            var count: Int64 = 0
            let slot = WindowItem()
            let events = activity.events(since: start.map(Timestamp.init(millisecondsSinceEpoch:)))
            // Read in place: an event is copied only when a `where:` looks at it.
            for index in events.indices {
                if let filter, !filter.contains(events[index].type) { continue }
                let occurred = events[index].occurredAt.millisecondsSinceEpoch
                if occurred > now {
                    s.changes(at: occurred)
                    continue
                }
                if let start, occurred < start { continue }
                if let condition {
                    slot.event = events[index]
                    s.item = slot
                    let passes = condition(c, &s) == true
                    s.item = nil
                    guard passes else { continue }
                }
                if let within { s.changes(at: occurred + within) }
                count += 1
            }
            return count
        })
        result.requirements = conditionRequirements
        if let since { result.requirements.formUnion(since.requirements) }
        result.requirements.data.formUnion([.events, .time])
        return result
    }
}
