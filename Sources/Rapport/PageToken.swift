import Foundation
import RapportCore

/// Opaque page tokens: base64url text that names where the next page starts.
enum PageToken {
    static let defaultSize = 50
    static let maxSize = 1000

    /// The page size to use for a requested size (0 means the default).
    static func pageSize(_ requested: Int) throws(RapportError) -> Int {
        if requested == 0 { return defaultSize }
        guard requested > 0 else { throw .invalid("page_size", "must not be negative, got \(requested)") }
        return min(requested, maxSize)
    }

    static func encode(_ cursor: CustomerCursor, order: CustomerOrder) -> String {
        encode("c|\(order.key.rawValue)|\(order.descending ? 1 : 0)|\(cursor.value)|\(cursor.id.rawValue)")
    }

    static func decodeCustomerCursor(_ token: String, order: CustomerOrder) throws(RapportError) -> CustomerCursor {
        let parts = try decode(token).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == "c", let value = Int64(parts[3]), let id = CustomerID(rawValue: parts[4]) else {
            throw .invalid("page_token", "is not a token returned by a customer listing")
        }
        guard parts[1] == order.key.rawValue, parts[2] == (order.descending ? "1" : "0") else {
            throw .invalid("page_token", "was made for another order_by; start again without a token")
        }
        return CustomerCursor(value: value, id: id)
    }

    static func encode(_ position: TimelinePosition) -> String {
        encode("t|\(position.time.millisecondsSinceEpoch)|\(position.sequence)")
    }

    static func decodeTimelinePosition(_ token: String) throws(RapportError) -> TimelinePosition {
        let parts = try decode(token).split(separator: "|").map(String.init)
        guard parts.count == 3, parts[0] == "t", let time = Int64(parts[1]), let sequence = Int64(parts[2]) else {
            throw .invalid("page_token", "is not a token returned by a timeline")
        }
        return TimelinePosition(time: Timestamp(millisecondsSinceEpoch: time), sequence: sequence)
    }

    static func encode(member: CustomerID) -> String { encode("m|\(member.rawValue)") }

    static func decodeMember(_ token: String) throws(RapportError) -> CustomerID {
        let parts = try decode(token).split(separator: "|").map(String.init)
        guard parts.count == 2, parts[0] == "m", let id = CustomerID(rawValue: parts[1]) else {
            throw .invalid("page_token", "is not a token returned by a member listing")
        }
        return id
    }

    static func encode(run: RunCursor) -> String { encode("r|\(run.createdAt.millisecondsSinceEpoch)|\(run.id.rawValue)") }

    static func decodeRun(_ token: String) throws(RapportError) -> RunCursor {
        let parts = try decode(token).split(separator: "|").map(String.init)
        guard parts.count == 3, parts[0] == "r", let time = Int64(parts[1]), let id = RunID(rawValue: parts[2]) else {
            throw .invalid("page_token", "is not a token returned by a run listing")
        }
        return RunCursor(createdAt: Timestamp(millisecondsSinceEpoch: time), id: id)
    }

    static func encode(outboxSequence: Int64) -> String { encode("o|\(outboxSequence)") }

    static func decodeOutboxSequence(_ token: String) throws(RapportError) -> Int64 {
        let parts = try decode(token).split(separator: "|").map(String.init)
        guard parts.count == 2, parts[0] == "o", let sequence = Int64(parts[1]) else {
            throw .invalid("page_token", "is not a token returned by an outbox listing")
        }
        return sequence
    }

    private static func encode(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private static func decode(_ token: String) throws(RapportError) -> String {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard token.count <= 512, let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8) else {
            throw .invalid("page_token", "is not a valid page token")
        }
        return text
    }
}
