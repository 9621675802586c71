import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// What the server was asked to do, resolved from flags, environment and defaults.
struct ServerSettings: Sendable {
    enum Storage: Sendable {
        case sqlite(path: String)
        case memory
    }

    /// A literal address to bind.
    enum Address: Sendable {
        case ipv4(String)
        case ipv6(String)

        /// Accepts an IPv4 or IPv6 literal (brackets allowed) and `localhost`.
        init?(host: String) {
            var text = host
            if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
            if text.lowercased() == "localhost" { text = "127.0.0.1" }
            var v4 = in_addr()
            var v6 = in6_addr()
            if inet_pton(AF_INET, text, &v4) == 1 {
                self = .ipv4(text)
            } else if inet_pton(AF_INET6, text, &v6) == 1 {
                self = .ipv6(text)
            } else {
                return nil
            }
        }
    }

    struct TLS: Sendable {
        var certificatePath: String
        var keyPath: String
    }

    var storage: Storage
    var address: Address
    var port: Int
    var tls: TLS?
    var logLevel: Logger.Level
    var defaultPhoneRegion: String
    var maxMessageBytes: Int
    /// The zone of customers who have none.
    var defaultTimeZone: TimeZone
    /// For tests: a manual clock starting at this date; nil runs on the system clock.
    var manualClock: Date?
}

/// Writes to the standard streams without buffering, so that a script waiting for a line sees it at once.
///
/// It uses write(2): FileHandle traps when the reader has closed the pipe, and a server must not die because a
/// script stopped reading its output.
enum Console {
    /// Writes a line to standard output; false when it could not be written whole.
    @discardableResult
    static func output(_ line: String) -> Bool {
        write(line + "\n", to: STDOUT_FILENO)
    }

    static func error(_ line: String) {
        _ = write(line + "\n", to: STDERR_FILENO)
    }

    private static func write(_ text: String, to descriptor: Int32) -> Bool {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written > 0 {
                bytes = bytes.dropFirst(written)
            } else if !(written < 0 && errno == EINTR) {
                return false  // The reader is gone or the stream is broken.
            }
        }
        return true
    }
}

/// One readable line for an error, following the chain of causes that gRPC's runtime errors carry.
func describe(_ error: any Error) -> String {
    var parts: [String] = []
    var current: (any Error)? = error
    while let error = current, parts.count < 5 {
        switch error {
        case let error as any RuntimeErrorDescribing:
            parts.append(error.summary)
            current = error.underlying
        default:
            parts.append(String(describing: error))
            current = nil
        }
    }
    return parts.joined(separator: ": ")
}

/// Errors that wrap another error as their cause.
protocol RuntimeErrorDescribing {
    var summary: String { get }
    var underlying: (any Error)? { get }
}
