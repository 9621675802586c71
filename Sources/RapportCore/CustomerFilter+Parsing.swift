import Foundation

extension CustomerFilter {
    /// Parses the filter language of `ListCustomers`: conditions joined by `AND`.
    ///
    /// ```
    /// tags:vip AND tags:"rock and roll" AND lifecycle_stage=(active,loyal) AND create_time>=2026-01-01T00:00:00Z
    /// ```
    /// Conditions: `tags:TAG` (repeatable: all of them), `lifecycle_stage=STAGE` or `=(STAGE,STAGE)` (once),
    /// `create_time>=TIME`, `create_time<TIME`, `update_time>=TIME`, with RFC 3339 times (repeated, the tighter bound
    /// holds). A value with spaces is
    /// written in double quotes (`\"` and `\\` inside); `AND` (or `and`) inside quotes is part of the value. Empty
    /// text is no filter.
    public init(parsing text: String, field: String = "filter") throws(RapportError) {
        self.init()
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return }
        guard trimmed.count <= 2000 else { throw .invalid(field, "is longer than 2000 characters") }
        for raw in try Self.conditions(trimmed, field: field) {
            let condition = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if condition.hasPrefix("tags:") {
                let tag = try Self.value(condition.dropFirst(5), condition: condition, field: field).trimmingCharacters(in: .whitespaces).canonical
                guard !tag.isEmpty else { throw .invalid(field, "'\(condition)' names no tag") }
                guard !tag.containsNUL else { throw .invalid(field, "'\(condition)' holds a NUL character") }
                tags.append(tag)
            } else if condition.hasPrefix("lifecycle_stage=") {
                // Two stage conditions joined by AND would match nobody (a customer has one stage): list them in one.
                guard lifecycleStages.isEmpty else {
                    throw .invalid(field, "'\(condition)': name the stages in one condition, such as lifecycle_stage=(active,loyal)")
                }
                var value = String(condition.dropFirst("lifecycle_stage=".count))
                if value.hasPrefix("("), value.hasSuffix(")") { value = String(value.dropFirst().dropLast()) }
                guard !value.trimmingCharacters(in: .whitespaces).isEmpty else { throw .invalid(field, "'\(condition)' names no stage") }
                for name in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    guard let stage = LifecycleStage(rawValue: name.lowercased()) else {
                        throw .invalid(field, "'\(name)' is not a lifecycle stage (one of \(LifecycleStage.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    lifecycleStages.append(stage)
                }
            } else if let name = Self.unsupportedComparison(condition) {
                let supported = name == "create_time" ? "create_time>=TIME and create_time<TIME" : "update_time>=TIME"
                throw .invalid(field, "'\(condition)': \(name) is compared with \(supported) only")
            } else if condition.hasPrefix("create_time>=") {
                // Conditions add up (AND): of two bounds, the tighter one holds.
                let bound = try Self.time(condition.dropFirst("create_time>=".count), condition: condition, field: field)
                createdFrom = max(createdFrom ?? bound, bound)
            } else if condition.hasPrefix("create_time<") {
                let bound = try Self.time(condition.dropFirst("create_time<".count), condition: condition, field: field)
                createdBefore = min(createdBefore ?? bound, bound)
            } else if condition.hasPrefix("update_time>=") {
                let bound = try Self.time(condition.dropFirst("update_time>=".count), condition: condition, field: field)
                updatedFrom = max(updatedFrom ?? bound, bound)
            } else {
                throw .invalid(
                    field, "'\(condition)' is not a condition: use tags:TAG, lifecycle_stage=STAGE, create_time>=TIME, create_time<TIME or update_time>=TIME")
            }
        }
    }

    /// The conditions of a filter: the text between words `AND` (or `and`) that stand outside double quotes.
    private static func conditions(_ text: String, field: String) throws(RapportError) -> [Substring] {
        var result: [Substring] = []
        var conditionStart = text.startIndex
        var wordStart: String.Index?
        var inQuotes = false
        var index = text.startIndex
        func endWord(at end: String.Index) {
            guard let start = wordStart else { return }
            wordStart = nil
            let word = text[start..<end]
            guard word == "AND" || word == "and" else { return }
            result.append(text[conditionStart..<start])
            conditionStart = end
        }
        while index < text.endIndex {
            let character = text[index]
            if inQuotes {
                if character == "\\" {
                    index = text.index(after: index)
                    guard index < text.endIndex else { break }
                } else if character == "\"" {
                    inQuotes = false
                }
            } else if character.isWhitespace {
                endWord(at: index)
            } else {
                if wordStart == nil { wordStart = index }
                if character == "\"" { inQuotes = true }
            }
            index = text.index(after: index)
        }
        guard !inQuotes else { throw .invalid(field, "a quoted value is not closed: add the missing \"") }
        endWord(at: text.endIndex)
        result.append(text[conditionStart...])
        for condition in result where condition.allSatisfy(\.isWhitespace) {
            throw .invalid(field, "an AND has no condition on one side")
        }
        return result
    }

    /// A condition's value: one word, or text in double quotes with `\"` and `\\` escapes.
    private static func value(_ text: Substring, condition: String, field: String) throws(RapportError) -> String {
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard value.hasPrefix("\"") else {
            guard !value.contains(where: { $0.isWhitespace || $0 == "\"" }) else {
                throw .invalid(field, "'\(condition)': write a value with spaces or quotes in double quotes, such as tags:\"two words\"")
            }
            return value
        }
        var result = ""
        var index = value.index(after: value.startIndex)
        while index < value.endIndex {
            let character = value[index]
            index = value.index(after: index)
            if character == "\"" {
                guard index == value.endIndex else { throw .invalid(field, "'\(condition)' has text after its closing quote") }
                return result
            }
            if character == "\\" {
                guard index < value.endIndex, value[index] == "\"" || value[index] == "\\" else {
                    throw .invalid(field, "'\(condition)': only \\\" and \\\\ may follow a backslash in a quoted value")
                }
                result.append(value[index])
                index = value.index(after: index)
            } else {
                result.append(character)
            }
        }
        throw .invalid(field, "'\(condition)': the quoted value is not closed")
    }

    /// The time field of a comparison the filter does not support (`create_time<=`, `update_time<`, ...), if it is one.
    private static func unsupportedComparison(_ condition: String) -> String? {
        let supported = ["create_time>=", "create_time<", "update_time>="]
        for name in ["create_time", "update_time"] where condition.hasPrefix(name) {
            let rest = condition.dropFirst(name.count)
            guard let first = rest.first, "<>=!".contains(first) else { continue }
            if condition.hasPrefix("create_time<="), name == "create_time" { return name }
            if !supported.contains(where: { condition.hasPrefix($0) }) { return name }
        }
        return nil
    }

    /// A bound in whole milliseconds: a time between two is read as the later one, so that `>=` and `<` keep their
    /// meaning (a customer created at .000 is not at or after .0009, and is before it).
    private static func time(_ text: Substring, condition: String, field: String) throws(RapportError) -> Timestamp {
        var value = try Self.value(text, condition: condition, field: field)
        // The formatter keeps milliseconds: digits after the third are dropped here, and round the bound up.
        var beyondMilliseconds = false
        if let point = value.firstIndex(of: ".") {
            let digits = value[value.index(after: point)...].prefix(while: { $0.isASCII && $0.isNumber })
            if digits.count > 3 {
                beyondMilliseconds = digits.dropFirst(3).contains { $0 != "0" }
                value.removeSubrange(digits.index(digits.startIndex, offsetBy: 3)..<digits.endIndex)
            }
        }
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        guard let date = withFraction.date(from: value) ?? plain.date(from: value) else {
            throw .invalid(field, "'\(condition)': '\(value)' is not an RFC 3339 time such as 2026-01-01T00:00:00Z")
        }
        return Timestamp(date) + .milliseconds(beyondMilliseconds ? 1 : 0)
    }
}

extension CustomerOrder {
    /// Parses `create_time`, `update_time`, optionally followed by ` desc` or ` asc`; empty is `create_time`.
    public init(parsing text: String, field: String = "order_by") throws(RapportError) {
        let words = text.split(separator: " ").map { $0.lowercased() }
        guard !words.isEmpty else {
            self.init()
            return
        }
        let key: Key
        switch words[0] {
        case "create_time": key = .createdAt
        case "update_time": key = .updatedAt
        default: throw .invalid(field, "'\(words[0])' cannot be ordered by: use create_time or update_time")
        }
        guard words.count <= 2, words.count == 1 || words[1] == "desc" || words[1] == "asc" else {
            throw .invalid(field, "'\(text)' must be a field optionally followed by 'asc' or 'desc'")
        }
        self.init(key, descending: words.count == 2 && words[1] == "desc")
    }
}
