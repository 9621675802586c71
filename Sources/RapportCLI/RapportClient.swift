import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import RapportProto
import Synchronization

/// A connection to a Rapport server and a client per service, all sending the API key.
struct RapportClient {
    typealias Transport = HTTP2ClientTransport.Posix

    let grpc: GRPCClient<Transport>
    /// Applied to every call: fail fast when the server is down, allow large responses.
    let options: CallOptions

    var customers: Rapport_V1_CustomerService.Client<Transport> { .init(wrapping: grpc) }
    var customer360: Rapport_V1_Customer360Service.Client<Transport> { .init(wrapping: grpc) }
    var merges: Rapport_V1_MergeService.Client<Transport> { .init(wrapping: grpc) }
    var ingest: Rapport_V1_IngestService.Client<Transport> { .init(wrapping: grpc) }
    var apiKeys: Rapport_V1_ApiKeyService.Client<Transport> { .init(wrapping: grpc) }
    var health: Grpc_Health_V1_Health.Client<Transport> { .init(wrapping: grpc) }
    var privacy: Rapport_V1_PrivacyService.Client<Transport> { .init(wrapping: grpc) }

    /// Opens a connection to `host:port`, runs `body` with it, and closes it.
    ///
    /// - Parameters:
    ///   - tls: connect with TLS, trusting the system's authorities, or `caCertificate` (a PEM file) when given.
    static func with<T: Sendable>(
        host: String, port: Int, tls: Bool, caCertificate: String?, secret: String?, _ body: (RapportClient) async throws -> T
    ) async throws -> T {
        let security: Transport.TransportSecurity
        if let caCertificate {
            security = .tls { $0.trustRoots = .certificates([.file(path: caCertificate, format: .pem)]) }
        } else {
            security = tls ? .tls : .plaintext
        }
        let transport = try HTTP2ClientTransport.Posix(target: target(host: host, port: port), transportSecurity: security)
        let interceptors: [any ClientInterceptor] = [RequestIDs.shared] + (secret.map { [BearerAuthorization(secret: $0)] } ?? [])
        return try await withGRPCClient(transport: transport, interceptors: interceptors) { grpc in
            var options = CallOptions.defaults
            options.waitForReady = false
            options.timeout = .seconds(300)
            options.maxResponseMessageBytes = 256 * 1024 * 1024
            options.maxRequestMessageBytes = 64 * 1024 * 1024
            return try await body(RapportClient(grpc: grpc, options: options))
        }
    }
}

/// An IP literal is dialled as is (no DNS, and no IP address in TLS SNI, which TLS forbids); a name is resolved.
private func target(host: String, port: Int) -> any ResolvableTarget {
    var v4 = in_addr()
    var v6 = in6_addr()
    if inet_pton(AF_INET, host, &v4) == 1 { return .ipv4(address: host, port: port) }
    if inet_pton(AF_INET6, host, &v6) == 1 { return .ipv6(address: host, port: port) }
    return .dns(host: host, port: port)
}

/// Names every call with an `x-request-id` (`cli-<run>-<n>`), which the server logs: an error line gives the id of
/// the call that failed, to find it in the server's log.
final class RequestIDs: ClientInterceptor, Sendable {
    static let shared = RequestIDs()

    /// This run of the CLI: random, so that runs do not share ids.
    let run = String(UInt64.random(in: 0...UInt64.max) % 2_176_782_336, radix: 36)  // 6 characters at most
    private let state = Mutex((count: 0, last: String?.none))

    /// The id of the latest call made.
    var last: String? { state.withLock { $0.last } }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        let id = state.withLock { state in
            state.count += 1
            state.last = "cli-\(run)-\(state.count)"
            return state.last!
        }
        var request = request
        request.metadata.replaceOrAddString(id, forKey: "x-request-id")
        return try await next(request, context)
    }
}

/// Sends `authorization: Bearer <secret>` with every call.
struct BearerAuthorization: ClientInterceptor {
    let secret: String

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        request.metadata.replaceOrAddString("Bearer \(secret)", forKey: "authorization")
        return try await next(request, context)
    }
}
