import GRPCCore
import GRPCProtobuf

/// Errors as one readable line: `NOT_FOUND: customer 'cus_x' not found (field: why; ...)`.
enum ErrorReport {
    static func line(for error: any Error, hasKey: Bool = true) -> String {
        if let rpc = error as? RPCError { return line(for: rpc, hasKey: hasKey) }
        if let runtime = error as? RuntimeError {
            return [runtime.message, runtime.cause.map { line(for: $0, hasKey: hasKey) }].compactMap { $0 }.joined(separator: ": ")
        }
        if let input = error as? InputError { return input.message }
        return String(describing: error)
    }

    static func line(for error: RPCError, hasKey: Bool) -> String {
        // A violation without a field (the count of those not named) is its description alone.
        func shown(_ violation: (field: String, description: String)) -> String {
            violation.field.isEmpty ? violation.description : "\(violation.field): \(violation.description)"
        }
        // Bad input: the violations of the details say it all (the message names the same ones, clipped
        // otherwise); each is cut to one short line, since they may quote what was sent.
        let violations = fieldViolations(of: error)
        var text = "\(name(of: error.code)): " + (violations.isEmpty ? oneLine(error.message, limit: 600) : violations.map { oneLine(shown($0), limit: 200) }.joined(separator: "; "))
        if error.code == .unauthenticated && !hasKey {
            text += " (pass --key SECRET or set RAPPORT_API_KEY)"
        }
        if error.code == .unavailable, let cause = error.cause {
            let detail = describe(cause: cause)
            if !text.contains(detail) { text += " (\(detail))" }
        }
        return text
    }

    /// The transport failure behind an UNAVAILABLE, in words: nested RPC errors by their messages, the usual
    /// connection and TLS failures by what to check, anything else by its description cut to one short line.
    static func describe(cause: any Error) -> String {
        if let rpc = cause as? RPCError {
            return rpc.cause.map { rpc.message + ": " + describe(cause: $0) } ?? rpc.message
        }
        let text = String(describing: cause)
        let lowered = text.lowercased()
        if lowered.contains("handshake") || lowered.contains("ssl") || lowered.contains("tls") {
            return "the TLS handshake failed: use --tls exactly when the server has a certificate (and --ca-cert for a private one)"
        }
        if lowered.contains("connectionrefused") || lowered.contains("connection refused") || lowered.contains("econnrefused") {
            return "connection refused: is rapport-server running at that address?"
        }
        let oneLine = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return oneLine.count > 160 ? String(oneLine.prefix(157)) + "..." : oneLine
    }

    /// ` [x-request-id cli-…]` for a failure the server answered, naming the call as the server's log does; nothing
    /// for a connection that failed, which reached no server.
    static func requestSuffix(for error: any Error) -> String {
        guard let rpc = error as? RPCError, !(rpc.code == .unavailable && rpc.cause != nil), let id = RequestIDs.shared.last else { return "" }
        return " [x-request-id \(id)]"
    }

    /// `text` on one line (line breaks and other control characters as `\n` or `?`), cut to `limit` characters.
    static func oneLine(_ text: String, limit: Int) -> String {
        var line = ""
        for character in text {
            if character == "\n" || character == "\r\n" {
                line += "\\n"
            } else if character == "\r" {
                continue
            } else if let scalar = character.unicodeScalars.first, character.unicodeScalars.count == 1, scalar.properties.generalCategory == .control {
                line += "?"
            } else {
                line.append(character)
            }
            if line.count >= limit { return String(line.prefix(limit - 1)) + "…" }
        }
        return line
    }

    /// The `google.rpc.BadRequest` field violations in the status details, if any.
    static func fieldViolations(of error: RPCError) -> [(field: String, description: String)] {
        guard let status = try? error.unpackGoogleRPCStatus() else { return [] }
        return status.details.compactMap(\.badRequest).flatMap(\.violations).map { ($0.field, $0.violationDescription) }
    }

    /// The canonical upper-case name of a status code.
    static func name(of code: RPCError.Code) -> String {
        let names: [(RPCError.Code, String)] = [
            (.cancelled, "CANCELLED"), (.unknown, "UNKNOWN"), (.invalidArgument, "INVALID_ARGUMENT"),
            (.deadlineExceeded, "DEADLINE_EXCEEDED"), (.notFound, "NOT_FOUND"), (.alreadyExists, "ALREADY_EXISTS"),
            (.permissionDenied, "PERMISSION_DENIED"), (.resourceExhausted, "RESOURCE_EXHAUSTED"),
            (.failedPrecondition, "FAILED_PRECONDITION"), (.aborted, "ABORTED"), (.outOfRange, "OUT_OF_RANGE"),
            (.unimplemented, "UNIMPLEMENTED"), (.internalError, "INTERNAL"), (.unavailable, "UNAVAILABLE"),
            (.dataLoss, "DATA_LOSS"), (.unauthenticated, "UNAUTHENTICATED"),
        ]
        return names.first { $0.0 == code }?.1 ?? "\(code)"
    }
}

/// A problem with what the user gave the CLI (a file, a value), reported as is.
struct InputError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
