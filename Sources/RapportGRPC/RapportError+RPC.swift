public import GRPCCore
import GRPCProtobuf
public import RapportCore

/// Domain errors reach clients as the matching gRPC status; bad input carries a google.rpc.BadRequest naming
/// every field. Storage failures say only that they happened: their details go to the log.
extension RapportError: RPCErrorConvertible {
    public var rpcErrorCode: RPCError.Code {
        switch self {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .etagMismatch: .aborted
        case .failedPrecondition: .failedPrecondition
        case .storage: .internalError
        }
    }

    /// How many violations the message names; the rest are counted.
    static let violationsInMessage = 5
    /// How many violations the BadRequest details carry; a last one without a field counts the rest. Statuses travel
    /// in HTTP/2 trailers, which clients cap (grpc-swift at 16 KiB, grpcio at 8 KiB by default): a batch of a
    /// thousand bad items must still reach its client as INVALID_ARGUMENT.
    static let violationsInDetails = 25
    /// Byte budgets within those caps, whatever the input echoed in the texts (a 20 KB phone "number"): one
    /// violation's text, the message (also inside the details), and the violations of the details together.
    /// (grpc-message is percent-encoded: a non-ASCII byte takes three.)
    static let violationBytes = 200
    static let messageBytes = 600
    static let detailsBytes = 3200

    public var rpcErrorMessage: String {
        switch self {
        case .storage: return "internal storage error; the request changed nothing"
        case .invalidArgument(let violations):
            let text = violations.prefix(Self.violationsInMessage).map { Self.clipped($0.description, to: Self.violationBytes) }.joined(separator: "; ")
            // The count always survives the clipping.
            let rest = violations.count > Self.violationsInMessage ? "; and \(violations.count - Self.violationsInMessage) more (\(violations.count) in all)" : ""
            return Self.clipped(text, to: Self.messageBytes - rest.utf8.count) + rest
        default: return Self.clipped(message, to: Self.messageBytes)
        }
    }

    public var rpcErrorMetadata: Metadata { metadata(message: rpcErrorMessage) }

    /// This error with another message (its status details carry that message too).
    func rpcError(message: String) -> RPCError {
        let message = Self.clipped(message, to: Self.messageBytes)
        return RPCError(code: rpcErrorCode, message: message, metadata: metadata(message: message))
    }

    private func metadata(message: String) -> Metadata {
        guard case .invalidArgument(let violations) = self else { return [:] }
        var details: [ErrorDetails.BadRequest.FieldViolation] = []
        var bytes = 0
        for violation in violations.prefix(Self.violationsInDetails) {
            let field = Self.clipped(violation.field, to: Self.violationBytes / 2)
            let problem = Self.clipped(violation.problem, to: Self.violationBytes)
            bytes += field.utf8.count + problem.utf8.count
            if bytes > Self.detailsBytes { break }
            details.append(ErrorDetails.BadRequest.FieldViolation(field: field, description: problem))
        }
        if violations.count > details.count {
            details.append(
                ErrorDetails.BadRequest.FieldViolation(
                    field: "", description: "and \(violations.count - details.count) more violations (\(violations.count) in all)"))
        }
        let status = GoogleRPCStatus(code: .invalidArgument, message: message, details: [.badRequest(violations: details)])
        return status.rpcErrorMetadata
    }

    /// At most `limit` UTF-8 bytes of `text`, cut between characters and marked with "…".
    static func clipped(_ text: String, to limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var result = ""
        var used = 0
        for character in text {
            let size = character.utf8.count
            if used + size > limit - 3 { break }  // "…" is 3 bytes
            result.append(character)
            used += size
        }
        return result + "…"
    }

    public var rpcErrorCause: (any Error)? { nil }
}
