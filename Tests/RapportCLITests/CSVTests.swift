import ArgumentParser
import Foundation
import GRPCCore
import GRPCProtobuf
import RapportProto
import SwiftProtobuf
import Testing

@testable import RapportCLI
@testable import RapportCore

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

    @Test func emptyColumnsASpreadsheetSavesAfterTheLastOneNameNothing() throws {
        let events = """
            id,type,occur_time,email,,
            e1,page.viewed,,ada@example.com,,
            e2,page.viewed,,bob@example.com
            e3,page.viewed,,cy@example.com,,,
            e4,page.viewed,,dan@example.com,x,

            """
        let read = try records(events)
        #expect(read == ["item@2", "item@3", "item@4", "5: expected 4 fields as in the header, found 5"])  // a value past the columns is one
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

    @Test func eachStatusOfAnOrderIsAnItemOfItsOwnAndItsRowsMustBeConsecutive() throws {
        let orders = Self.orderHeader + """
            web,1001,placed,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,A,Apple,1,100,,,
            web,1001,placed,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,B,Bread,1,200,,,
            web,1001,Cancelled,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,A,Apple,1,100,,,
            web,1001,cancelled,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,B,Bread,1,200,,,
            web,1002,placed,2026-01-01T11:00:00Z,web,EUR,bob@example.com,,,C,Cheese,1,300,,,
            web,1001,placed,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,D,Dates,1,100,,,
            ,,,,,,,,,,,,,,,
              , ,,,,,,,,,,,,,,

            """
        #expect(try records(orders) == [
            "item@2 A+B", "item@4 A+B", "item@6 C",
            "7: order web/1001 (placed) began on line 2 and other rows came between: the rows of an order must be consecutive",
        ])
    }

    /// Two spellings of one state (blank and placed, paid and ORDER_STATUS_PAID) are one item, whose rows must be
    /// consecutive: two items of one state would have the second replace the first's lines.
    @Test func twoSpellingsOfOneStatusAreOneItem() throws {
        let orders = Self.orderHeader + """
            web,1001,,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,A,Apple,1,100,,,
            web,1001,placed,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,B,Bread,1,200,,,
            web,1001,paid,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,A,Apple,1,100,,,
            web,1001,ORDER_STATUS_PAID,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,B,Bread,1,200,,,
            web,1002,placed,2026-01-01T11:00:00Z,web,EUR,bob@example.com,,,C,Cheese,1,300,,,
            web,1001,Order_Status_Paid,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,D,Dates,1,100,,,

            """
        #expect(try records(orders) == [
            "item@2 A+B", "item@4 A+B", "item@6 C",
            "7: order web/1001 (Order_Status_Paid) began on line 4 and other rows came between: the rows of an order must be consecutive",
        ])
    }

    /// A quote after spaces opens a quoted field (the spaces are not part of it); a blank price is refused.
    @Test func aQuoteAfterSpacesOpensAFieldAndABlankPriceIsRefused() throws {
        let orders = Self.orderHeader + """
            web, "1001",placed,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,A, "Bread, white",1,100,,,
            web,1002,placed,2026-01-01T10:00:00Z,web,EUR,bob@example.com,,,B,Bread,2,,,,

            """
        let read = try records(orders)
        #expect(read.first == "item@2 A")
        #expect(read.last == "3: order web/1002 not sent: unit_price_minor: empty; write the line's price in minor units (0 for a free item)")
    }

    @Test func rowsThatLeaveTheStatusBlankContinueTheOrderAboveThem() throws {
        let orders = Self.orderHeader + """
            web,1001,paid,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,A,Apple,1,100,,,
            web,1001,,,,,,,,B,Bread,1,200,,,
            web,1002,,2026-01-01T10:00:00Z,web,EUR,bob@example.com,,,C,Cheese,1,100,,,

            """
        #expect(try records(orders) == ["item@2 A+B", "item@4 C"])
    }

    @Test func aBlankStatusRowOfAnOrderSentAlreadyIsRefusedNotSentAlone() throws {
        let orders = Self.orderHeader + """
            web,1001,paid,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,A,Apple,1,100,,,
            web,1002,paid,2026-01-01T11:00:00Z,web,EUR,bob@example.com,,,C,Cheese,1,100,,,
            web,1001,,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,B,Bread,1,200,,,

            """
        #expect(
            try records(orders) == [
                "item@2 A", "item@3 C",
                "4: order web/1001 began on line 2 and other rows came between: the rows of an order must be consecutive",
            ])
    }

    @Test func statusTimeSaysWhenTheOrderReachedItsStatus() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-csv-\(UUID().uuidString).csv").path
        let rows = """
            source,external_id,status,place_time,status_time,currency,email,sku
            web,1001,placed,2026-01-01T10:00:00Z,,EUR,ada@example.com,A
            web,1001,shipped,2026-01-01T10:00:00Z,2026-01-03T08:30:00Z,EUR,ada@example.com,A

            """
        try Data(rows.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = try CSVSource(reader: try LineReader(path: path))
        guard case .item(_, let placed) = try source.next(), case .item(_, let shipped) = try source.next() else { throw InputError("expected two orders") }
        #expect(!placed.order.hasStatusTime)
        #expect(shipped.order.statusTime.seconds == 1_767_429_000)
        #expect(shipped.order.status == .shipped)
    }

    @Test func aBrokenRowStopsItsOrderWhereverItsColumnsMoved() throws {
        // The status comes after the name here: a stray comma in a name moves it.
        let header = "source,external_id,place_time,currency,email,sku,name,quantity,unit_price_minor,status\n"
        let orders = header + """
            web,1001,2026-01-01T10:00:00Z,EUR,ada@example.com,A,Apple,1,100,paid
            web,1001,2026-01-01T10:00:00Z,EUR,ada@example.com,B,Bread, white,1,200,paid

            """
        #expect(try records(orders) == ["2: order web/1001 not sent: line 3: expected 10 fields as in the header, found 11"])
    }

    @Test func anUnreadableRowStillLetsTheOrderBeforeItOut() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-csv-\(UUID().uuidString).csv").path
        let rows = Self.orderHeader + "web,1001,placed,2026-01-01T10:00:00Z,web,EUR,ada@example.com,,,A,Apple,1,100,,,\n"
        try Data(rows.utf8 + [0x6A, 0xFC, 0x0A]).write(to: URL(fileURLWithPath: path))  // Latin-1
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = try CSVSource(reader: try LineReader(path: path))
        guard case .item(let line, let item) = try source.next() else { throw InputError("expected the order") }
        #expect(line == 2)
        #expect(item.order.lines.map(\.sku) == ["A"])
        #expect(throws: InputError.self) { try source.next() }
    }

    @Test func theHeaderNamesWhatTheServerNeeds() throws {
        func refusal(_ header: String) -> String? {
            do {
                _ = try records(header + "\n")
                return nil
            } catch let error as InputError {
                return error.message
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal("id,type,email") == "line 1: the CSV header needs a 'occur_time' column")
        #expect(refusal("id,type,occur_time,channel") == "line 1: the CSV header needs an identity column: email, phone or anonymous_id")
        #expect(refusal("source,external_id,status,email") == "line 1: the CSV header needs a 'place_time' column")
        #expect(refusal("source,external_id,status,place_time,email,sku,quantity") == "line 1: the CSV header needs a 'currency' column")
        #expect(refusal("source,external_id,status,place_time,currency,email,name,quantity") == "line 1: the CSV header needs a 'sku' column")
        #expect(refusal("source,external_id,place_time,currency,email,sku") == nil)
        #expect(refusal("id,type,occur_time,anonymous_id") == nil)
    }

    @Test func serverAddressesAreHostAndPortNotURLs() throws {
        #expect(GlobalOptions.parse("127.0.0.1:50051")! == ("127.0.0.1", 50051))
        #expect(GlobalOptions.parse("crm.example.com")! == ("crm.example.com", 50051))
        #expect(GlobalOptions.parse("[::1]:6000")! == ("::1", 6000))
        #expect(GlobalOptions.parse("::1")! == ("::1", 50051))
        #expect(GlobalOptions.parse("fe80::1%en0")! == ("fe80::1%en0", 50051))
        for bad in ["https://crm.example.com:443", "crm.example.com/path", "http://host", "host:0", "host:x", "[::1", ":50051", "a b:1"] {
            #expect(GlobalOptions.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func rolesAreTakenAsTheREADMEAndTheProtoSpellThem() throws {
        #expect(RoleArgument(argument: "read_only") == .readOnly)
        #expect(RoleArgument(argument: "read-only") == .readOnly)
        #expect(RoleArgument(argument: "Marketing") == .marketing)
        #expect(RoleArgument(argument: "owner") == nil)
    }
}

@Suite("Ingest summary")
struct IngestSummaryTests {
    @Test func theRejectionsShownAreThoseOfTheLowestLines() {
        var summary = IngestSummary()
        for line in 100..<111 { summary.reject(line: line, description: "bad") }
        summary.reject(line: 3, description: "unreadable")
        #expect(summary.rejected == 12)
        #expect(summary.rejections.map(\.line) == [3] + Array(100..<109))
    }

    @Test func aListCutShortSaysSoEvenWhenEveryItemIsInIt() {
        var summary = IngestSummary()
        let response = Rapport_V1_IngestEventsResponse.with { response in
            response.results = (0..<4).map { index in
                .with {
                    $0.index = Int64(index)
                    $0.outcome = .rejected
                    $0.violations = (0..<3).map { field in .with { $0.field = "f\(field)"; $0.description_p = "bad" } }
                }
            }
        }
        summary.add(response, lines: [2, 3, 4, 5])
        #expect(summary.rejected == 4)
        #expect(summary.rejections.count == 10)  // 12 violations, 10 kept
        #expect(summary.text(file: "f.csv", elapsed: .zero).contains("first rejections:"))
        var few = IngestSummary()
        few.reject(line: 2, description: "bad")
        #expect(few.text(file: "f.csv", elapsed: .zero).contains("\nrejections:"))
    }

    @Test func aRefusedBatchCountsWhatTheServerDidNotName() {
        var summary = IngestSummary()
        let violations = (0..<25).map { (field: "items[\($0)].type", description: "bad type") } + [(field: "", description: "and 975 more violations (1000 in all)")]
        summary.refuse(batchOf: 1000, violations: violations, lines: Array(2..<1002))
        #expect(summary.rejected == 1000)
        // Two violations an item: the count is of items, never more than the batch.
        var twice = IngestSummary()
        let doubled = (0..<13).flatMap { [(field: "items[\($0)].type", description: "bad"), (field: "items[\($0)].id", description: "bad")] }
            + [(field: "", description: "and 1975 more violations (2000 in all)")]
        twice.refuse(batchOf: 1000, violations: doubled, lines: Array(2..<1002))
        #expect(twice.rejected == 1000)
        #expect(summary.rejections.map(\.line) == Array(2..<12))
        #expect(summary.rejections.first?.field == "type")
    }
}

@Suite("Error lines")
struct ErrorLineTests {
    struct TransportFailure: Error, CustomStringConvertible {
        var description: String
    }

    @Test func transportFailuresSayWhatToCheckInOneLine() {
        let tls = RPCError(
            code: .unavailable, message: "The server accepted the TCP connection but closed it.",
            cause: TransportFailure(description: "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268435703 error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER]))"))
        #expect(
            ErrorReport.line(for: tls)
                == "UNAVAILABLE: The server accepted the TCP connection but closed it. (the TLS handshake failed: use --tls exactly when the server has a certificate (and --ca-cert for a private one))")
        let nested = RPCError(
            code: .unavailable, message: "Could not connect.",
            cause: RPCError(code: .unavailable, message: "The connection failed", cause: TransportFailure(description: "connectionRefused(errno: 111)")))
        // grpc-swift folds a cause of the same code into the message.
        #expect(ErrorReport.line(for: nested) == "UNAVAILABLE: Could not connect. The connection failed (connection refused: is rapport-server running at that address?)")
        let long = RPCError(code: .unavailable, message: "Lost.", cause: TransportFailure(description: String(repeating: "x", count: 300) + "\nmore"))
        let line = ErrorReport.line(for: long)
        #expect(!line.contains("\n"))
        #expect(line.count < 200)
    }

    /// A connection that failed reached no server: its error line names no call to look for in the server's log.
    @Test func aFailureNoServerSawNamesNoCall() {
        let refused = RPCError(code: .unavailable, message: "Could not connect.", cause: TransportFailure(description: "connectionRefused(errno: 111)"))
        #expect(ErrorReport.requestSuffix(for: refused) == "")
        #expect(ErrorReport.requestSuffix(for: InputError("bad file")) == "")
    }

    /// Bad input is told by the violations of the details, once each, on one short line, whatever they quote.
    @Test func badInputIsItsViolationsOnceOnOneShortLine() throws {
        let quoted = "'" + String(repeating: "x", count: 300) + "\nmore' is not a tag"
        let status = GoogleRPCStatus(
            code: .invalidArgument, message: "customer.tags[0]: " + String(quoted.prefix(150)) + "…",
            details: [.badRequest(violations: [
                ErrorDetails.BadRequest.FieldViolation(field: "customer.tags[0]", description: quoted),
                ErrorDetails.BadRequest.FieldViolation(field: "customer.locale", description: "'xx_' is not a BCP 47 language tag"),
            ])])
        let error = RPCError(code: .invalidArgument, message: status.message, metadata: status.rpcErrorMetadata)
        let line = ErrorReport.line(for: error)
        #expect(!line.contains("\n"))
        #expect(line.components(separatedBy: "customer.tags[0]").count == 2)  // named once
        #expect(line.hasPrefix("INVALID_ARGUMENT: customer.tags[0]: 'xxx"))
        #expect(line.hasSuffix("; customer.locale: 'xx_' is not a BCP 47 language tag"))
        #expect(line.count < 300)
    }
}

@Suite("Request ids")
struct RequestIDTests {
    @Test func everyCallIsNamedSoThatTheServerLogCanBeSearchedForIt() async throws {
        let ids = RequestIDs()
        let context = ClientContext(descriptor: MethodDescriptor(fullyQualifiedService: "rapport.v1.CustomerService", method: "GetCustomer"), remotePeer: "", localPeer: "")
        var sent: [String] = []
        for _ in 0..<2 {
            let response = try await ids.intercept(request: StreamingClientRequest(of: Int.self) { _ in }, context: context) { request, _ in
                StreamingClientResponse(of: Int.self, metadata: request.metadata, bodyParts: RPCAsyncSequence(wrapping: AsyncThrowingStream { $0.finish() }))
            }
            sent.append(contentsOf: response.metadata[stringValues: "x-request-id"].map { String($0) })
        }
        #expect(sent == ["cli-\(ids.run)-1", "cli-\(ids.run)-2"])
        #expect(ids.last == "cli-\(ids.run)-2")
        #expect(!ids.run.isEmpty && ids.run.count <= 6 && ids.run.allSatisfy { $0.isLetter || $0.isNumber })
    }
}

@Suite("Timeline pages")
struct TimelinePageTests {
    @Test func aPageEndsWithTheCommandForTheNextOne() throws {
        let page = Rapport_V1_ListTimelineResponse.with {
            $0.entries = [
                .with { $0.event = .with { $0.type = "page.viewed"; $0.channel = .web; $0.occurTime = .init(seconds: 1_767_225_600) } },
                .with { $0.order = .with { $0.source = "web"; $0.externalID = "1001"; $0.status = .paid; $0.total = .with { $0.currency = "EUR"; $0.minorUnits = 8999 } } },
            ]
            $0.nextPageToken = "tok123"
        }
        let text = CustomersTimeline.text(page, customer: "cus_1")
        #expect(text.contains("page.viewed via web"))
        #expect(text.contains("web/1001 paid"))
        #expect(text.hasSuffix("next page: rapport customers timeline cus_1 --page-size 2 --page-token tok123"))
        #expect(!CustomersTimeline.text(.with { $0.entries = page.entries }, customer: "cus_1").contains("next page"))
        #expect(throws: (any Error).self) { try CustomersTimeline.parse(["cus_1", "--page-size", "0"]) }
        #expect(try CustomersTimeline.parse(["cus_1", "--page-token", "tok123"]).pageToken == "tok123")
    }
}

@Suite("Export command")
struct ExportCommandTests {
    @Test func theExportNamesOneCustomer() throws {
        #expect(try CustomersExport.parse(["cus_1"]).id == "cus_1")
        #expect(throws: (any Error).self) { try CustomersExport.parse([]) }
        #expect(try RapportCommand.parseAsRoot(["customers", "export", "cus_1"]) is CustomersExport)
    }

    @Test func anErasureMustBeConfirmed() throws {
        #expect(throws: (any Error).self) { try CustomersErase.parse(["cus_1"]) }
        let erase = try CustomersErase.parse(["cus_1", "--yes", "--if-match", "\"3\""])
        #expect(erase.id == "cus_1" && erase.ifMatch == "\"3\"")
    }
}

@Suite("Money shown by the CLI")
struct CLIMoneyTests {
    /// The CLI prints amounts with the server's minor-unit digits for every currency the server accepts (it keeps
    /// its own table, having no RapportCore at run time).
    @Test func everyCurrencyHasTheServersDigits() throws {
        for (code, digits) in RapportCore.CurrencyCode.minorUnitDigits {
            #expect(Format.decimals(of: code) == digits, "\(code)")
        }
        #expect(Format.decimals(of: "clf") == 4)
    }
}

@Suite("Text output")
struct TextOutputTests {
    @Test func longLabelsAndMaskedBirthdaysReadRight() {
        let customer = Rapport_V1_Customer.with {
            $0.id = "cus_1"
            $0.givenName = "Ada"
            $0.etag = "\"3\""
            $0.attributes = ["loyalty_points_total": .with { $0.intValue = 250 }]
            $0.birthday = .with { $0.year = 1990 }  // month and day masked
        }
        let text = Printer.customerText(customer)
        #expect(text.contains("  loyalty_points_total 250"))
        #expect(text.contains("birthday    1990-**-** (masked)"))
        #expect(text.contains("etag        \"3\""))
    }

    @Test func tablesPadByCharacters() {
        var table = TextTable("NAME", "EMAIL")
        table.add("Ana 🌸🇩🇪", "ana@example.com")
        table.add("Bartholomew", "b@example.com")
        let lines = table.render().split(separator: "\n").map(String.init)
        #expect(lines[1] == "Ana 🌸🇩🇪       ana@example.com")
        #expect(lines[2] == "Bartholomew  b@example.com")
    }
}
