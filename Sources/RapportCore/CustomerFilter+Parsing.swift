import Foundation

extension CustomerFilter {
    /// Parses the filter language of `ListCustomers`: conditions joined by `AND`.
    ///
    /// ```
    /// tags:vip AND lifecycle_stage=(active,loyal) AND create_time>=2026-01-01T00:00:00Z
    /// ```
    /// Conditions: `tags:TAG` (repeatable: all of them), `lifecycle_stage=STAGE` or `=(STAGE,STAGE)`,
    /// `create_time>=TIME`, `create_time<TIME`, `update_time>=TIME`, with RFC 3339 times. Empty text is no filter.
    public init(parsing text: String, field: String = "filter") throws(RapportError) {
        self.init()
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return }
        guard trimmed.count <= 2000 else { throw .invalid(field, "is longer than 2000 characters") }
        let conditions = trimmed.components(separatedBy: " AND ").flatMap { $0.components(separatedBy: " and ") }
        for raw in conditions {
            let condition = raw.trimmingCharacters(in: .whitespaces)
            if condition.hasPrefix("tags:") {
                let tag = String(condition.dropFirst(5)).trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
                guard !tag.isEmpty else { throw .invalid(field, "'\(condition)' names no tag") }
                tags.append(tag)
            } else if condition.hasPrefix("lifecycle_stage=") {
                var value = String(condition.dropFirst("lifecycle_stage=".count))
                if value.hasPrefix("("), value.hasSuffix(")") { value = String(value.dropFirst().dropLast()) }
                guard !value.trimmingCharacters(in: .whitespaces).isEmpty else { throw .invalid(field, "'\(condition)' names no stage") }
                for name in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                    guard let stage = LifecycleStage(rawValue: name.lowercased()) else {
                        throw .invalid(field, "'\(name)' is not a lifecycle stage (one of \(LifecycleStage.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    lifecycleStages.append(stage)
                }
            } else if condition.hasPrefix("create_time>=") {
                createdFrom = try Self.time(String(condition.dropFirst("create_time>=".count)), condition: condition, field: field)
            } else if condition.hasPrefix("create_time<") {
                createdBefore = try Self.time(String(condition.dropFirst("create_time<".count)), condition: condition, field: field)
            } else if condition.hasPrefix("update_time>=") {
                updatedFrom = try Self.time(String(condition.dropFirst("update_time>=".count)), condition: condition, field: field)
            } else {
                throw .invalid(
                    field, "'\(condition)' is not a condition: use tags:TAG, lifecycle_stage=STAGE, create_time>=TIME, create_time<TIME or update_time>=TIME")
            }
        }
    }

    private static func time(_ text: String, condition: String, field: String) throws(RapportError) -> Timestamp {
        let value = text.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        guard let date = withFraction.date(from: value) ?? plain.date(from: value) else {
            throw .invalid(field, "'\(condition)': '\(value)' is not an RFC 3339 time such as 2026-01-01T00:00:00Z")
        }
        return Timestamp(date)
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
