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

    /// Every token names its listing and carries a digest of what the listing was asked for (the customer, segment or
    /// filter): a token is refused by another listing, or by the same one asked for something else, instead of
    /// being read as a position there.
    private static func tag(_ scope: String) -> String { String(SHA256.hex(scope).prefix(16)) }

    /// The fields of a token made by `kind` (the first field) for `scope`, after both are checked.
    private static func fields(_ token: String, kind: String, count: Int, scope: String, orScope: String? = nil, listing: String) throws(RapportError) -> [String] {
        let parts = try decode(token).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == count + 2, parts[0] == kind else { throw .invalid("page_token", "is not a token returned by \(listing)") }
        guard parts[1] == tag(scope) || orScope.map({ parts[1] == tag($0) }) == true else {
            throw .invalid("page_token", "was made for another request of \(listing) (another customer, segment or filter); start again without a token")
        }
        return Array(parts.dropFirst(2))
    }

    /// What a customer filter selects, spelled one way whatever the order its conditions were written in.
    private static func scope(of filter: CustomerFilter) -> String {
        func time(_ value: Timestamp?) -> String { value.map { "\($0.millisecondsSinceEpoch)" } ?? "" }
        let tags = Set(filter.tags).sorted().joined(separator: "\u{1F}")
        let stages = Set(filter.lifecycleStages.map(\.rawValue)).sorted().joined(separator: ",")
        return "customers;tags=\(tags);stages=\(stages);created=\(time(filter.createdFrom)),\(time(filter.createdBefore));updated=\(time(filter.updatedFrom))"
    }

    static func encode(_ cursor: CustomerCursor, order: CustomerOrder, filter: CustomerFilter) -> String {
        encode("c|\(tag(scope(of: filter)))|\(order.key.rawValue)|\(order.descending ? 1 : 0)|\(cursor.value)|\(cursor.id.rawValue)")
    }

    static func decodeCustomerCursor(_ token: String, order: CustomerOrder, filter: CustomerFilter) throws(RapportError) -> CustomerCursor {
        // Tokens of versions before 2026-12-07 tagged the filter as Swift printed it.
        let parts = try fields(token, kind: "c", count: 4, scope: scope(of: filter), orScope: String(describing: filter), listing: "a customer listing")
        guard let value = Int64(parts[2]), let id = CustomerID(rawValue: parts[3]) else {
            throw .invalid("page_token", "is not a token returned by a customer listing")
        }
        guard parts[0] == order.key.rawValue, parts[1] == (order.descending ? "1" : "0") else {
            throw .invalid("page_token", "was made for another order_by; start again without a token")
        }
        return CustomerCursor(value: value, id: id)
    }

    /// The newest-first listings of a customer's records, each with tokens of its own.
    enum Timeline: String {
        case all = "t", orders = "d", interactions = "i"

        var name: String {
            switch self {
            case .all: "a timeline"
            case .orders: "an order listing"
            case .interactions: "an interaction listing"
            }
        }
    }

    static func encode(_ position: TimelinePosition, _ listing: Timeline, of customer: CustomerID) -> String {
        encode("\(listing.rawValue)|\(tag(customer.rawValue))|\(position.time.millisecondsSinceEpoch)|\(position.sequence)")
    }

    /// The position in `customer`'s listing a token names; `requested`, the id the caller named, when it was merged
    /// into `customer` (a token made for it before its merge continues the survivor's listing, which holds its records).
    static func decodeTimelinePosition(_ token: String, _ listing: Timeline, of customer: CustomerID, requested: CustomerID? = nil) throws(RapportError)
        -> TimelinePosition
    {
        let parts = try fields(token, kind: listing.rawValue, count: 2, scope: customer.rawValue, orScope: requested?.rawValue, listing: listing.name)
        guard let time = Int64(parts[0]), let sequence = Int64(parts[1]) else { throw .invalid("page_token", "is not a token returned by \(listing.name)") }
        return TimelinePosition(time: Timestamp(millisecondsSinceEpoch: time), sequence: sequence)
    }

    static func encode(member: CustomerID, of segment: SegmentID) -> String { encode("m|\(tag(segment.rawValue))|\(member.rawValue)") }

    static func decodeMember(_ token: String, of segment: SegmentID) throws(RapportError) -> CustomerID {
        let parts = try fields(token, kind: "m", count: 1, scope: segment.rawValue, listing: "a member listing")
        guard let id = CustomerID(rawValue: parts[0]) else { throw .invalid("page_token", "is not a token returned by a member listing") }
        return id
    }

    static func encode(run: RunCursor, scope: String) -> String { encode("r|\(tag(scope))|\(run.createdAt.millisecondsSinceEpoch)|\(run.id.rawValue)") }

    static func decodeRun(_ token: String, scope: String) throws(RapportError) -> RunCursor {
        let parts = try fields(token, kind: "r", count: 2, scope: scope, listing: "a run listing")
        guard let time = Int64(parts[0]), let id = RunID(rawValue: parts[1]) else { throw .invalid("page_token", "is not a token returned by a run listing") }
        return RunCursor(createdAt: Timestamp(millisecondsSinceEpoch: time), id: id)
    }

    static func encode(outboxSequence: Int64, scope: String) -> String { encode("o|\(tag(scope))|\(outboxSequence)") }

    static func decodeOutboxSequence(_ token: String, scope: String) throws(RapportError) -> Int64 {
        let parts = try fields(token, kind: "o", count: 1, scope: scope, listing: "an outbox listing")
        guard let sequence = Int64(parts[0]) else { throw .invalid("page_token", "is not a token returned by an outbox listing") }
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
