import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The standard streams, unbuffered.
enum Terminal {
    static func output(_ text: String) {
        write(text + "\n", to: STDOUT_FILENO)
    }

    static func error(_ text: String) {
        write(text + "\n", to: STDERR_FILENO)
    }

    /// Writes without a newline, for a progress bar redrawn with `\r`.
    static func errorRaw(_ text: String) {
        write(text, to: STDERR_FILENO)
    }

    /// Writes all of `text` with write(2). When the reader has gone (`rapport ... | head`), stops quietly as a
    /// SIGPIPE would (status 141), instead of crashing the way FileHandle does.
    private static func write(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written > 0 {
                bytes = bytes.dropFirst(written)
            } else if written < 0 && errno == EINTR {
                continue
            } else if written < 0 && errno == EPIPE && descriptor == STDOUT_FILENO {
                // The reader is gone (`| head`): stop as a SIGPIPE would, with its status (128 + 13), never 0,
                // which would hide a failure the command had yet to report.
                exit(141)
            } else {
                return
            }
        }
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }
}

/// Rows printed as aligned columns.
struct TextTable {
    var header: [String]
    var rows: [[String]] = []

    init(_ header: String...) { self.header = header }

    mutating func add(_ row: String...) { rows.append(row) }

    func render() -> String {
        let all = [header] + rows
        var widths = Array(repeating: 0, count: header.count)
        for row in all {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        return all.map { row in
            row.enumerated().map { index, cell in
                // Padded by characters, as the widths are counted (Foundation's padding counts UTF-16 units and cuts).
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: max(0, widths[index] - cell.count))
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
