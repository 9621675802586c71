import ArgumentParser
import Foundation
import RapportProto
import Testing

@testable import RapportCLI

/// The CSV reader of `rapport ingest`, over files in a temporary directory.
@Suite("CSV ingest files")
struct CSVTests {
    /// Every record a CSV file yields: items as `item@LINE`, problems as `LINE: problem`.
    func records(_ text: String) throws -> [String] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-csv-\(UUID().uuidString).csv").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = try CSVSource(reader: try LineReader(path: path))
        var result: [String] = []
        while let record = try source.next() {
            switch record {
            case .item(let line, let item):
                let lines = item.order.lines.map(\.sku).joined(separator: "+")
                result.append(lines.isEmpty ? "item@\(line)" : "item@\(line) \(lines)")
            case .problem(let line, let problem): result.append("\(line): \(problem)")
            }
        }
        return result
    }

    static let orderHeader = "source,external_id,status,place_time,channel,currency,email,phone,anonymous_id,sku,name,quantity,unit_price_minor,discount_minor,shipping_minor,tax_minor\n"

    @Test func quotedFieldsHoldCommasQuotesAndLineBreaks() throws {
        let events = """
            id,type,occur_time,channel,email,phone,anonymous_id,properties_json
            e1,page.viewed,,web,ada@example.com,,,"{""note"":""a, b""}"
            e2,page.viewed,,web,"bob@example.com",,,"{""note"":""a"",
            ""more"":""b""}"
            e3,page.viewed,,web,cy@example.com,,,

            """
        let read = try records(events)
        #expect(read == ["item@2", "item@3", "item@5"])
    }

    @Test func aQuoteLeftOpenStopsTheFileInsteadOfSwallowingIt() throws {
        let events = """
            id,type,occur_time,channel,email,phone,anonymous_id,properties_json
            e1,page.viewed,,web,ada@example.com,,,
            e2,page.viewed,,web,"bob@example.com,,,
            e3,page.viewed,,web,cy@example.com,,,
            e4,page.viewed,,web,dan@example.com,,,

            """
        #expect(throws: InputError.self) { try records(events) }
        do {
            _ = try records(events)
        } catch let error as InputError {
            #expect(error.message == "line 3: a quoted field is not closed before the end of the file")
        }
    }

    @Test func textInAnotherEncodingStopsTheFileNamingTheLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-latin1-\(UUID().uuidString).jsonl").path
        try Data("{\"a\": 1}\n".utf8 + [0x6A, 0xFC, 0x72, 0x67, 0x65, 0x6E, 0x0A]).write(to: URL(fileURLWithPath: path))  // "jürgen" in Latin-1
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reader = try LineReader(path: path)
        #expect(try reader.next() == "{\"a\": 1}")
        #expect(throws: InputError.self) { try reader.next() }
    }

    @Test func allOrNothingRefusesAFileThatCannotBeReadTwice() throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-fifo-\(UUID().uuidString)").path
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { try? FileManager.default.removeItem(atPath: fifo) }
        #expect(throws: (any Error).self) { try IngestCommand.parse(["--all-or-nothing", fifo]) }
        #expect(throws: Never.self) { try IngestCommand.parse([fifo]) }  // read once: fine
    }

    @Test func anOrderWithABrokenRowIsRefusedWhole() throws {
        let orders = Self.orderHeader + """
            web,1001,placed,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,A,Apple,1,100,,,
            web,1001,placed,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,B,Bread,1,200,,,,extra
            web,1001,placed,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,C,Cheese,1,300,,,
            web,1002,placed,2026-01-01T11:00:00Z,web,EUR,bob@example.com,,,D,Dates,2,150,,,
            web, 1002 ,placed,2026-01-01T11:00:00Z,web,EUR,bob@example.com,,,F,Figs,2,150,,,,extra
            web,1003,placed,2026-01-01T12:00:00Z,web,EUR,cy@example.com,,,E,Eggs,1,50,,,,extra

            """
        let read = try records(orders)
        #expect(read == [
            "2: order web/1001 not sent: line 3: expected 16 fields as in the header, found 17",
            // Cells are compared trimmed, as the order's own rows are.
            "5: order web/1002 not sent: line 6: expected 16 fields as in the header, found 17",
            // A broken row that starts an order of its own is reported alone.
            "7: expected 16 fields as in the header, found 17",
        ])
    }
}
