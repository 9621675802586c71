import Foundation
import RapportProto
import SwiftProtobuf

/// CSV files of events or orders; the header says which (see `rapport ingest --help`).
final class CSVSource: IngestSource {
    static let eventColumns = ["id", "type", "occur_time", "channel", "email", "phone", "anonymous_id", "properties_json"]
    static let orderColumns = [
        "source", "external_id", "status", "place_time", "status_time", "channel", "currency", "email", "phone", "anonymous_id",
        "sku", "name", "quantity", "unit_price_minor", "discount_minor", "shipping_minor", "tax_minor",
    ]

    private enum Kind { case events, orders }

    private let reader: LineReader
    private let kind: Kind
    private let columns: [String: Int]
    private let width: Int
    private var queue: [SourceRecord] = []
    /// The order being assembled from consecutive rows with the same source, external id and status.
    private var pending: (line: Int, key: String, order: Rapport_V1_OrderInput, problem: String?)?
    /// The orders (source, external id and status) sent already, and the line each began on: their rows must be
    /// consecutive, or a later group would replace the lines of the first.
    private var sentOrders: [String: Int] = [:]
    /// The line the first state sent of each order (source and external id) began on.
    private var sentOrderStarts: [String: Int] = [:]
    /// An unreadable record met while an order was pending: thrown once the order is out.
    private var deferredError: (any Error)?
    private let parser = CSVValues()

    init(reader: LineReader) throws {
        self.reader = reader
        guard let (_, header) = try Self.record(from: reader) else { throw InputError("the CSV file is empty") }
        var names = header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        // A spreadsheet may save empty columns after the last one: they name nothing.
        while names.count > 1, names.last == "" { names.removeLast() }
        if names.starts(with: ["source", "external_id"]) {
            kind = .orders
            // Every order needs a currency and a line with a sku: without their columns, each order would be refused
            // after the whole file went.
            try Self.check(names, allowed: Self.orderColumns, required: ["source", "external_id", "place_time", "currency", "sku"])
        } else if names.contains("id") && names.contains("type") {
            kind = .events
            try Self.check(names, allowed: Self.eventColumns, required: ["id", "type", "occur_time"])
        } else {
            throw InputError(
                "line 1: the CSV header must name the event columns (\(Self.eventColumns.joined(separator: ","))) or start with source,external_id for orders")
        }
        columns = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        width = names.count
    }

    var fractionRead: Double? { reader.fractionRead }

    func next() throws -> SourceRecord? {
        while queue.isEmpty {
            if let error = deferredError {
                deferredError = nil
                throw error
            }
            let record: (line: Int, fields: [String])?
            do {
                record = try Self.record(from: reader)
            } catch {
                // The rows read before it are whole: the order they make goes out first.
                guard let order = flushOrder() else { throw error }
                deferredError = error
                return order
            }
            guard let (line, cells) = record else {
                if let order = flushOrder() { return order }
                return nil
            }
            // Empty cells past the header's columns (a spreadsheet's trailing commas) are no fields.
            var fields = cells
            while fields.count > width, fields.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { fields.removeLast() }
            // Blank lines, and rows of empty cells that spreadsheets leave at the end, are not records.
            if fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            guard fields.count == width else {
                let problem = "expected \(width) fields as in the header, found \(fields.count)"
                // A broken row in the middle of an order's rows: the order is refused whole, not sent without it.
                // Matched on source and external id (the first columns): a column after a stray comma has moved.
                let prefix = kind == .orders ? Self.orderPrefix(Row(fields: fields, columns: columns)) : ""
                if kind == .orders, var current = pending, current.key.hasPrefix(prefix) {
                    if current.problem == nil { current.problem = "line \(line): \(problem)" }
                    pending = current
                } else {
                    if kind == .orders, let flushed = flushOrder() { queue.append(flushed) }  // in line order
                    queue.append(.problem(line: line, problem))
                }
                continue
            }
            let row = Row(fields: fields, columns: columns)
            switch kind {
            case .events: queue.append(event(row, line: line))
            case .orders: addOrderRow(row, line: line)
            }
        }
        return queue.removeFirst()
    }

    private func event(_ row: Row, line: Int) -> SourceRecord {
        do {
            var event = Rapport_V1_EventInput()
            event.id = row["id"]
            event.type = row["type"]
            if let time = try parser.time(row["occur_time"], column: "occur_time") { event.occurTime = time }
            event.channel = try parser.channel(row["channel"])
            event.identities = identities(row)
            event.properties = try parser.properties(row["properties_json"])
            return .item(line: line, .with { $0.event = event })
        } catch {
            return .problem(line: line, ErrorReport.line(for: error))
        }
    }

    private func addOrderRow(_ row: Row, line: Int) {
        // A row with another status starts the order's next state (a feed of status changes repeats its lines).
        var key = Self.orderKey(row)
        // A row that leaves the status blank continues the order being read (exports that write an order's own
        // fields on its first row only).
        if row["status"].isEmpty, let current = pending, current.key.hasPrefix(Self.orderPrefix(row)) { key = current.key }
        if let current = pending, current.key != key, let flushed = flushOrder() { queue.append(flushed) }
        // A blank status continues nothing after other rows came between: a state of this order went out already.
        let first = sentOrders[key] ?? (row["status"].isEmpty ? sentOrderStarts[Self.orderPrefix(row)] : nil)
        if pending == nil, let first {
            let status = row["status"].isEmpty ? "" : " (\(row["status"]))"
            queue.append(
                .problem(
                    line: line,
                    "order \(row["source"])/\(row["external_id"])\(status) began on line \(first) and other rows came between: the rows of an order must be consecutive"
                ))
            return
        }
        if pending == nil {
            var order = Rapport_V1_OrderInput()
            order.source = row["source"]
            order.externalID = row["external_id"]
            order.currency = row["currency"].uppercased()
            order.identities = identities(row)
            var problem: String?
            do {
                order.status = try parser.status(row["status"])
                order.channel = try parser.channel(row["channel"])
                if let time = try parser.time(row["place_time"], column: "place_time") { order.placeTime = time }
                if let time = try parser.time(row["status_time"], column: "status_time") { order.statusTime = time }
                order.discountMinor = try parser.integer(row["discount_minor"], column: "discount_minor") ?? 0
                order.shippingMinor = try parser.integer(row["shipping_minor"], column: "shipping_minor") ?? 0
                order.taxMinor = try parser.integer(row["tax_minor"], column: "tax_minor") ?? 0
            } catch {
                problem = ErrorReport.line(for: error)
            }
            pending = (line, key, order, problem)
        }
        do {
            guard !(row["sku"].isEmpty && row["name"].isEmpty && row["quantity"].isEmpty) else { return }
            var orderLine = Rapport_V1_OrderLine()
            orderLine.sku = row["sku"]
            orderLine.name = row["name"]
            orderLine.quantity = try parser.integer(row["quantity"], column: "quantity") ?? 1
            // A blank price where the file has prices is a mistake, not a free item (write 0 for one).
            if columns["unit_price_minor"] != nil, row["unit_price_minor"].isEmpty {
                throw InputError("unit_price_minor: empty; write the line's price in minor units (0 for a free item)")
            }
            orderLine.unitPriceMinor = try parser.integer(row["unit_price_minor"], column: "unit_price_minor") ?? 0
            pending?.order.lines.append(orderLine)
        } catch {
            if pending?.problem == nil {
                let prefix = line == pending?.line ? "" : "line \(line): "
                pending?.problem = prefix + ErrorReport.line(for: error)
            }
        }
    }

    /// Source, external id and status: what makes consecutive rows one order item.
    private static func orderKey(_ row: Row) -> String {
        // As the server reads it: a blank status is placed, `ORDER_STATUS_PAID` is paid (two spellings of one state
        // are one item, not two whose second replaces the first's lines).
        let status = row["status"].lowercased().replacingOccurrences(of: "order_status_", with: "")
        return orderPrefix(row) + (status.isEmpty ? "placed" : status)
    }

    /// Source and external id: the order a row is about.
    private static func orderPrefix(_ row: Row) -> String {
        row["source"] + "\u{0}" + row["external_id"] + "\u{0}"
    }

    private func flushOrder() -> SourceRecord? {
        guard let current = pending else { return nil }
        pending = nil
        sentOrders[current.key] = current.line
        let prefix = current.order.source + "\u{0}" + current.order.externalID + "\u{0}"
        if sentOrderStarts[prefix] == nil { sentOrderStarts[prefix] = current.line }
        if let problem = current.problem {
            return .problem(line: current.line, "order \(current.order.source)/\(current.order.externalID) not sent: \(problem)")
        }
        return .item(line: current.line, .with { $0.order = current.order })
    }

    private func identities(_ row: Row) -> [Rapport_V1_Identity] {
        var identities: [Rapport_V1_Identity] = []
        if !row["email"].isEmpty { identities.append(IdentityOptions.identity(.email, row["email"])) }
        if !row["phone"].isEmpty { identities.append(IdentityOptions.identity(.phone, row["phone"])) }
        if !row["anonymous_id"].isEmpty { identities.append(IdentityOptions.identity(.anonymousID, row["anonymous_id"])) }
        return identities
    }

    private static func check(_ names: [String], allowed: [String], required: [String]) throws {
        for name in names where !allowed.contains(name) {
            throw InputError("line 1: unknown CSV column '\(name)'; the columns are \(allowed.joined(separator: ","))")
        }
        for name in required where !names.contains(name) {
            throw InputError("line 1: the CSV header needs a '\(name)' column")
        }
        if Set(names).count != names.count { throw InputError("line 1: a CSV column is named twice") }
        // Rapport attaches each record to the customer its identities name: without one a row could only be refused.
        if !names.contains(where: { ["email", "phone", "anonymous_id"].contains($0) }) {
            throw InputError("line 1: the CSV header needs an identity column: email, phone or anonymous_id")
        }
    }

    /// One CSV record (RFC 4180: quoted fields may hold commas, doubled quotes and line breaks) and its first line.
    static func record(from reader: LineReader) throws -> (line: Int, fields: [String])? {
        guard var text = try reader.next() else { return nil }
        let line = reader.lineNumber
        var fields: [String] = []
        var field = ""
        var quoted = false
        var index = text.startIndex
        while true {
            if index == text.endIndex {
                if quoted {
                    guard let more = try reader.next() else {
                        // Reading on would have swallowed every later row into one field: stop and say where.
                        throw InputError("line \(line): a quoted field is not closed before the end of the file")
                    }
                    field.append("\n")
                    text = more
                    index = text.startIndex
                    continue
                }
                fields.append(field)
                return (line, fields)
            }
            let character = text[index]
            index = text.index(after: index)
            if quoted {
                if character == "\"" {
                    if index < text.endIndex, text[index] == "\"" {
                        field.append("\"")
                        index = text.index(after: index)
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(character)
                }
            } else if character == "\"" && field.allSatisfy({ $0 == " " || $0 == "\t" }) {
                // A quoted field, also after spaces (`a, "b, c"`): the spaces before the quote are not part of it.
                quoted = true
                field = ""
            } else if character == "," {
                fields.append(field)
                field = ""
            } else {
                field.append(character)
            }
        }
    }
}

/// A CSV row's cells by column name; a missing column reads as empty.
private struct Row {
    let fields: [String]
    let columns: [String: Int]

    subscript(name: String) -> String {
        guard let index = columns[name], index < fields.count else { return "" }
        return fields[index].trimmingCharacters(in: .whitespaces)
    }
}

/// Parsing the typed cells of a CSV row.
final class CSVValues {
    private let withFraction: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()
    private let withoutFraction = ISO8601DateFormatter()

    func time(_ text: String, column: String) throws -> Google_Protobuf_Timestamp? {
        guard !text.isEmpty else { return nil }
        guard let date = withFraction.date(from: text) ?? withoutFraction.date(from: text) else {
            throw InputError("\(column): '\(text)' is not an RFC 3339 time such as 2026-03-01T12:00:00Z")
        }
        let interval = date.timeIntervalSince1970
        let seconds = interval.rounded(.down)
        let milliseconds = ((interval - seconds) * 1000).rounded()
        return Google_Protobuf_Timestamp(seconds: Int64(seconds), nanos: Int32(milliseconds) * 1_000_000)
    }

    func integer(_ text: String, column: String) throws -> Int64? {
        guard !text.isEmpty else { return nil }
        guard let value = Int64(text) else { throw InputError("\(column): '\(text)' is not a whole number") }
        return value
    }

    func channel(_ text: String) throws -> Rapport_V1_Channel {
        guard !text.isEmpty else { return .unspecified }
        let name = text.lowercased().replacingOccurrences(of: "channel_", with: "").replacingOccurrences(of: "-", with: "_")
        guard let channel = Rapport_V1_Channel.allCases.first(where: { Format.name($0) == name && $0 != .unspecified }) else {
            throw InputError("channel: '\(text)' is not one of web, app, store, marketplace, call_center, email, sms, social, other")
        }
        return channel
    }

    func status(_ text: String) throws -> Rapport_V1_OrderStatus {
        guard !text.isEmpty else { return .unspecified }
        let name = text.lowercased().replacingOccurrences(of: "order_status_", with: "")
        guard let status = Rapport_V1_OrderStatus.allCases.first(where: { Format.name($0) == name && $0 != .unspecified }) else {
            throw InputError("status: '\(text)' is not one of placed, paid, shipped, delivered, cancelled, refunded")
        }
        return status
    }

    /// A JSON object of plain values: strings, whole numbers, decimals, booleans and lists of strings.
    func properties(_ text: String) throws -> [String: Rapport_V1_AttributeValue] {
        guard !text.isEmpty else { return [:] }
        let values: [String: PropertyValue]
        do {
            values = try JSONDecoder().decode([String: PropertyValue].self, from: Data(text.utf8))
        } catch {
            throw InputError(
                "properties_json: not a JSON object of strings, numbers, booleans or lists of strings: \(text.prefix(60))")
        }
        return values.mapValues { value -> Rapport_V1_AttributeValue in
            var attribute = Rapport_V1_AttributeValue()
            switch value {
            case .string(let text): attribute.stringValue = text
            case .int(let number): attribute.intValue = number
            case .decimal(let text): attribute.decimalValue = text
            case .bool(let flag): attribute.boolValue = flag
            case .list(let values): attribute.stringListValue = .with { $0.values = values }
            }
            return attribute
        }
    }
}

/// A property value in a CSV cell's JSON.
private enum PropertyValue: Decodable {
    case string(String)
    case int(Int64)
    case decimal(String)
    case bool(Bool)
    case list([String])

    init(from decoder: any Swift.Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Int64.self) {
            self = .int(number)
        } else if let decimal = try? container.decode(Decimal.self) {
            self = .decimal("\(decimal)")
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else {
            self = .list(try container.decode([String].self))
        }
    }
}
