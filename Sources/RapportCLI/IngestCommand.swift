import ArgumentParser
import Foundation
import GRPCCore
import RapportProto
import SwiftProtobuf

/// `rapport ingest FILE`: events and orders from a file, in batches.
struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Ingest events and orders from a JSON-lines or CSV file, in batches.",
        discussion: """
            JSON lines (the default; see examples/events.jsonl): each line is one \
            IngestItem in protobuf's JSON mapping, an event or an order (wrapped here, one line each in the file):
              {"event": {"id": "evt-1", "type": "page.viewed",
                "occurTime": "2026-03-01T10:00:00Z", "channel": "CHANNEL_WEB",
                "identities": [{"kind": "IDENTITY_KIND_EMAIL",
                                "value": "ada@example.com"}],
                "properties": {"path": {"stringValue": "/shoes"}}}}
              {"order": {"source": "web", "externalId": "1001", "currency": "EUR",
                "status": "ORDER_STATUS_PAID", "placeTime": "2026-03-01T10:05:00Z",
                "identities": [{"kind": "IDENTITY_KIND_PHONE", "value": "+14155550123"}],
                "lines": [{"sku": "SKU-1", "quantity": "1", "unitPriceMinor": "8999"}]}}

            CSV (--format csv, or a .csv file): the header says what the rows are. Events:
              id,type,occur_time,channel,email,phone,anonymous_id,properties_json
            id, type, occur_time and one identity column (email, phone or anonymous_id) are required; the other \
            columns may be left out or empty, and a row needs at least one identity. occur_time is RFC 3339 \
            (2026-03-01T10:00:00Z); channel is web, app, store, marketplace, call_center, email, sms, social or other; \
            properties_json is a JSON object of strings, numbers, booleans or lists of strings.
            Orders: a header starting with source,external_id, from the columns
              source,external_id,status,place_time,status_time,channel,currency,email,
              phone,anonymous_id,sku,name,quantity,unit_price_minor,discount_minor,
              shipping_minor,tax_minor
            place_time, currency, sku (the lines' column; name, quantity and unit_price_minor go with it) and an identity column are \
            required; status_time is when the order reached its status (when empty, an estimate marked as one: place_time \
            for an order new to Rapport, else the status takes its place by the order's life, after earlier stages and \
            before later ones; a later row of the same status with its time replaces the estimate). An empty channel \
            is other for a new order and keeps a known order's. A blank unit_price_minor is refused (0 is a free item). \
            Consecutive rows with the same source, external_id and \
            status are the lines of one order; the order's own fields are read from its first row, and a row that \
            leaves status blank continues the order above it. A row with another status starts the order's next state, which repeats its lines (an order's content is that of its latest \
            state); the rows of one state must be consecutive. Amounts are integer minor units (8999 = 89.99 EUR); status is placed, \
            paid, shipped, delivered, cancelled or refunded.

            Each batch is one transaction on the server. By default invalid items are rejected with their reasons and \
            the valid ones applied. With --all-or-nothing the file is checked locally first and nothing is sent if a \
            line is unreadable; a batch with an invalid item is then refused whole, and the ingest stops there \
            (earlier batches stay applied: use a --batch-size above the item count for one transaction).

            Progress goes to stderr (a bar on a terminal, otherwise a line every 10 batches); the summary to stdout. \
            The exit status is 1 if any item was rejected or a batch failed. Replaying a file is safe: known event \
            ids and unchanged orders are counted as duplicates.
            """
    )

    enum FileFormat: String, ExpressibleByArgument, CaseIterable {
        case jsonl, csv
    }

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The file to ingest; - reads standard input.", valueName: "file"))
    var file: String

    @Option(help: ArgumentHelp("jsonl or csv; by default csv for a .csv file, jsonl otherwise.", valueName: "format"))
    var format: FileFormat?

    @Option(help: ArgumentHelp("Items per request, 1 to 10000.", valueName: "n"))
    var batchSize: Int = 1000

    @Flag(help: "Refuse a whole batch when one of its items is invalid (and check the whole file first).")
    var allOrNothing = false

    mutating func validate() throws {
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 10000") }
        if allOrNothing && file == "-" {
            throw ValidationError("--all-or-nothing reads the file twice and cannot read standard input")
        }
        if allOrNothing, LineReader.isPipe(file) {
            // A pipe or FIFO (`<(zcat ...)`) would be empty on the second read: nothing would be sent.
            throw ValidationError("--all-or-nothing reads the file twice: '\(file)' must be a regular file, not a pipe")
        }
    }

    var resolvedFormat: FileFormat {
        format ?? (file.lowercased().hasSuffix(".csv") ? .csv : .jsonl)
    }

    func openSource() throws -> any IngestSource {
        let reader = try LineReader(path: file)
        switch resolvedFormat {
        case .jsonl: return JSONLinesSource(reader: reader)
        case .csv: return try CSVSource(reader: reader)
        }
    }

    func run() async throws {
        var summary = IngestSummary()
        let progress = IngestProgress()

        if allOrNothing {
            let problems = try checkLocally()
            if !problems.rejections.isEmpty {
                Terminal.error("error: \(problems.rejected) unreadable line(s); nothing was sent")
                for rejection in problems.rejections { Terminal.error("  " + rejection.text) }
                throw ExitCode.failure
            }
        }

        let source: any IngestSource
        do {
            source = try openSource()
        } catch {
            Terminal.error("error: \(ErrorReport.line(for: error))")
            throw ExitCode.failure
        }

        let mode: Rapport_V1_IngestMode = allOrNothing ? .allOrNothing : .skipInvalid
        let batchSize = batchSize
        _ = try await global.run { client in
            var items: [Rapport_V1_IngestItem] = []
            var lines: [Int] = []
            var finished = false
            while !finished {
                items.removeAll(keepingCapacity: true)
                lines.removeAll(keepingCapacity: true)
                while items.count < batchSize {
                    let record: SourceRecord?
                    do {
                        record = try source.next()
                    } catch {
                        summary.failure = ErrorReport.line(for: error)
                        record = nil
                    }
                    guard let record else {
                        finished = true
                        break
                    }
                    switch record {
                    case .item(let line, let item):
                        items.append(item)
                        lines.append(line)
                    case .problem(let line, let message):
                        summary.reject(line: line, description: message)
                    }
                }
                guard !items.isEmpty else { break }
                let request = Rapport_V1_IngestEventsRequest.with {
                    $0.items = items
                    $0.mode = mode
                    $0.requestID = UUID().uuidString
                }
                do {
                    let response = try await client.ingest.ingestEvents(request, options: client.options)
                    summary.sent += items.count
                    summary.add(response, lines: lines)
                } catch let error as RPCError where error.code == .invalidArgument && allOrNothing {
                    let violations = ErrorReport.fieldViolations(of: error)
                    summary.refuse(batchOf: items.count, violations: violations, lines: lines)
                    let refused =
                        "batch \(summary.batches + 1) (lines \(lines.first ?? 0)-\(lines.last ?? 0)) was refused and not applied: \(ErrorReport.line(for: error))"
                        + ErrorReport.requestSuffix(for: error)
                    summary.failure = summary.failure.map { "\($0); and \(refused)" } ?? refused
                    break
                } catch {
                    var reason = ErrorReport.line(for: error, hasKey: global.secret != nil)
                    if let rpc = error as? RPCError, rpc.code == .resourceExhausted || rpc.message.contains("RST_STREAM") {
                        reason += " (a batch larger than the server's --max-message-bytes is refused this way: try a smaller --batch-size)"
                    }
                    let request = ErrorReport.requestSuffix(for: error)
                    // Whether the server applied it before the failure is not known: saying so, and that sending the
                    // file again is safe (events and orders are idempotent by their ids), is what the person needs.
                    let failed = "batch \(summary.batches + 1) (lines \(lines.first ?? 0)-\(lines.last ?? 0)) failed: \(reason)\(request); "
                        + "it may have been applied or not: running the file again is safe (items already applied are duplicates)"
                    // The file's own problem, met while this last batch was read, is kept: both are why it stopped.
                    summary.failure = summary.failure.map { "\($0); and \(failed)" } ?? failed
                    break
                }
                progress.update(batches: summary.batches, items: summary.sent, fraction: source.fractionRead)
                if summary.failure != nil { break }
            }
            return true
        }
        progress.finish()
        if global.json {
            Terminal.output(try summary.json())
        } else {
            Terminal.output(summary.text(file: file == "-" ? "stdin" : file, elapsed: progress.elapsed))
        }
        if !summary.succeeded { throw ExitCode.failure }
    }

    /// Reads the whole file once without sending anything: the lines that cannot become items.
    private func checkLocally() throws -> IngestSummary {
        var summary = IngestSummary()
        do {
            let source = try openSource()
            while let record = try source.next() {
                if case .problem(let line, let message) = record { summary.reject(line: line, description: message) }
            }
        } catch {
            Terminal.error("error: \(ErrorReport.line(for: error))")
            throw ExitCode.failure
        }
        return summary
    }
}
