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

    public var rpcErrorMessage: String {
        switch self {
        case .storage: "internal storage error; the request changed nothing"
        default: message
        }
    }

    public var rpcErrorMetadata: Metadata {
        guard case .invalidArgument(let violations) = self else { return [:] }
        let status = GoogleRPCStatus(
            code: .invalidArgument, message: rpcErrorMessage,
            details: [.badRequest(violations: violations.map { ErrorDetails.BadRequest.FieldViolation(field: $0.field, description: $0.problem) })])
        return status.rpcErrorMetadata
    }

    public var rpcErrorCause: (any Error)? { nil }
}
