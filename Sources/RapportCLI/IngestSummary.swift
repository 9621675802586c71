import Foundation
import RapportProto

/// What happened to the items of a file, batch after batch.
struct IngestSummary {
    struct Rejection {
        var line: Int
        var field: String
        var description: String

        /// One line, cut short: a description may quote a whole cell of the file.
        var text: String {
            "line \(line): " + ErrorReport.oneLine(field.isEmpty ? description : "\(field): \(description)", limit: 200)
        }
    }

    static let keptRejections = 10

    var batches = 0
    var sent = 0
    var accepted: Int64 = 0
    var updated: Int64 = 0
    var duplicates: Int64 = 0
    var rejected: Int64 = 0
    var createdCustomers = 0
    var merges = 0
    /// The rejections of the lowest lines, in file order (problems found while reading a batch are counted before
    /// the server's answer about the lines before them).
    var rejections: [Rejection] = []
    /// Why the ingest stopped before the end of the file, if it did.
    var failure: String?
    /// Whether some rejection was not kept (more than `keptRejections`, or an item's violations past its third).
    private(set) var truncated = false

    var succeeded: Bool { rejected == 0 && failure == nil }

    mutating func reject(line: Int, field: String = "", description: String) {
        rejected += 1
        keep(Rejection(line: line, field: field, description: description))
    }

    private mutating func keep(_ rejection: Rejection) {
        if rejections.count == Self.keptRejections {
            truncated = true
            guard let last = rejections.last, rejection.line < last.line else { return }
            rejections.removeLast()
        }
        let index = rejections.firstIndex { $0.line > rejection.line } ?? rejections.endIndex
        rejections.insert(rejection, at: index)
    }

    /// Adds a batch's response; `lines[i]` is the file line of the batch's item `i`.
    mutating func add(_ response: Rapport_V1_IngestEventsResponse, lines: [Int]) {
        batches += 1
        accepted += response.acceptedCount
        updated += response.updatedCount
        duplicates += response.duplicateCount
        createdCustomers += response.createdCustomerIds.count
        merges += response.mergeIds.count
        for result in response.results where result.outcome == .rejected {
            let line = lines.indices.contains(Int(result.index)) ? lines[Int(result.index)] : 0
            rejected += 1
            if result.violations.isEmpty {
                keep(Rejection(line: line, field: "", description: "rejected"))
            }
            for violation in result.violations.prefix(3) {
                keep(Rejection(line: line, field: violation.field, description: violation.description_p))
            }
            if result.violations.count > 3 { truncated = true }
        }
    }

    /// Field violations naming `items[N].field` for a batch the server refused as a whole.
    mutating func refuse(batchOf count: Int, violations: [(field: String, description: String)], lines: [Int]) {
        var lineOfViolation: [Int] = []
        var unnamed = 0
        for violation in violations {
            // The server names the first violations of a large batch and counts the rest in a last one without a
            // field ("and 975 more violations (1000 in all)"): those count, as items of their own at most.
            if violation.field.isEmpty, violation.description.hasPrefix("and "),
                let more = Int(violation.description.dropFirst(4).prefix { $0.isNumber })
            {
                unnamed += more
                truncated = true
                continue
            }
            var field = violation.field
            var line = lines.first ?? 0
            if field.hasPrefix("items["), let close = field.firstIndex(of: "]"),
                let index = Int(field[field.index(field.startIndex, offsetBy: 6)..<close]), lines.indices.contains(index)
            {
                line = lines[index]
                field = String(field[field.index(after: close)...].drop { $0 == "." })
            }
            lineOfViolation.append(line)
            keep(Rejection(line: line, field: field, description: violation.description))
        }
        // Violations are not items (an item may have several): never more than the batch held.
        rejected += Int64(max(1, min(count, Set(lineOfViolation).count + unnamed)))
    }

    func text(file: String, elapsed: Duration) -> String {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var lines = [
            "\(file): \(sent) items sent in \(batches) batch\(batches == 1 ? "" : "es") (\(String(format: "%.1f", seconds)) s)",
            "  accepted    \(accepted)",
            "  updated     \(updated)",
            "  duplicates  \(duplicates)",
            "  rejected    \(rejected)",
            "  new customers \(createdCustomers), merges \(merges)",
        ]
        if !rejections.isEmpty {
            lines.append(truncated || rejected > rejections.count ? "first rejections:" : "rejections:")
            lines += rejections.sorted { $0.line < $1.line }.map { "  " + $0.text }
        }
        if let failure { lines.append("stopped: \(failure)") }
        return lines.joined(separator: "\n")
    }

    func json() throws -> String {
        var object: [String: Any] = [
            "batches": batches, "sent": sent, "accepted": Int(accepted), "updated": Int(updated),
            "duplicates": Int(duplicates), "rejected": Int(rejected), "createdCustomers": createdCustomers, "merges": merges,
            "rejections": rejections.sorted { $0.line < $1.line }.map { ["line": $0.line, "field": $0.field, "description": $0.description] },
        ]
        if let failure { object["failure"] = failure }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
