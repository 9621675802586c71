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

    public var rpcErrorMessage: String {
        switch self {
        case .storage: "internal storage error; the request changed nothing"
        case .invalidArgument(let violations) where violations.count > Self.violationsInMessage:
            violations.prefix(Self.violationsInMessage).map(\.description).joined(separator: "; ")
                + "; and \(violations.count - Self.violationsInMessage) more (\(violations.count) in all)"
        default: message
        }
    }

    public var rpcErrorMetadata: Metadata { metadata(message: rpcErrorMessage) }

    /// This error with another message (its status details carry that message too).
    func rpcError(message: String) -> RPCError {
        RPCError(code: rpcErrorCode, message: message, metadata: metadata(message: message))
    }

    private func metadata(message: String) -> Metadata {
        guard case .invalidArgument(let violations) = self else { return [:] }
        var details = violations.prefix(Self.violationsInDetails).map {
            ErrorDetails.BadRequest.FieldViolation(field: $0.field, description: $0.problem)
        }
        if violations.count > Self.violationsInDetails {
            details.append(
                ErrorDetails.BadRequest.FieldViolation(
                    field: "", description: "and \(violations.count - Self.violationsInDetails) more violations (\(violations.count) in all)"))
        }
        let status = GoogleRPCStatus(code: .invalidArgument, message: message, details: [.badRequest(violations: details)])
        return status.rpcErrorMetadata
    }

    public var rpcErrorCause: (any Error)? { nil }
}
