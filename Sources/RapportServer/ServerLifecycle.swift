#if canImport(Glibc)
import Glibc
#endif
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import Rapport
import RapportGRPC
import ServiceLifecycle
import UnixSignals

/// Runs the server until SIGTERM or SIGINT, then lets calls in flight finish and closes the store.
struct RapportServerRunner {
    let settings: ServerSettings
    let logger: Logger

    func run() async throws {
        // Before the store is opened: a server already on the address (a running one, started again by mistake)
        // must not see its file opened and migrated by this one.
        try AddressProbe.checkFree(settings.address, port: settings.port)
        let backend = try ServerBackend(settings: settings, logger: logger)
        do {
            var grpcLogger = logger
            grpcLogger[metadataKey: "component"] = "grpc"
            let rapport = RapportGRPCServer(engine: backend.engine, logger: grpcLogger)
            let server = GRPCServer(transport: try makeTransport(), services: rapport.services, interceptors: rapport.interceptors)
            let service = GRPCServerService(server: server, rapport: rapport, logger: logger) { address in
                // Bound: print the first admin key (on an empty store) and then the line scripts wait for.
                try await backend.printFirstAdminKeyIfNeeded()
                // The scheduler does it otherwise; on a manual clock its jobs then run inside AdvanceClock. A failure
                // here does not stop the server: the next start tries again.
                if settings.manualClock != nil {
                    do {
                        try await backend.engine.startHousekeeping()
                    } catch {
                        logger.error("cannot schedule housekeeping", metadata: ["error": "\(error)"])
                    }
                }
                Console.output("rapport-server listening on \(address)")
            }
            // Services stop in reverse order: the scheduler first, then the server finishes the calls in flight. On a
            // manual clock there is no scheduler: jobs run inside AdvanceClock, at the times it moves through.
            var services: [any Service] = [service]
            if settings.manualClock == nil { services.append(SchedulerService(engine: backend.engine)) }
            var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            // A backstop: calls still running this long after the signal are cancelled, and the server stops.
            configuration.maximumGracefulShutdownDuration = .seconds(30)
            let group = ServiceGroup(configuration: configuration)
            try await group.run()
            logger.info("stopped serving")
        } catch {
            try? backend.close()
            throw error
        }
        try backend.close()
    }

    private func makeTransport() throws -> HTTP2ServerTransport.Posix {
        let address: SocketAddress = switch settings.address {
        case .ipv4(let host): .ipv4(host: host, port: settings.port)
        case .ipv6(let host): .ipv6(host: host, port: settings.port)
        }
        let security: HTTP2ServerTransport.Posix.TransportSecurity
        if let tls = settings.tls {
            security = .tls(
                certificateChain: [.file(path: tls.certificatePath, format: .pem)],
                privateKey: .file(path: tls.keyPath, format: .pem))
        } else {
            security = .plaintext
        }
        let maxBytes = settings.maxMessageBytes
        return HTTP2ServerTransport.Posix(
            address: address, transportSecurity: security,
            config: .defaults { $0.rpc.maxRequestPayloadSize = maxBytes })
    }
}

/// Runs the engine's scheduled jobs (rule waits, date triggers, schedules, segment re-checks) as they come due,
/// until graceful shutdown. A job runs in one transaction, so stopping between jobs loses and repeats nothing.
struct SchedulerService: Service {
    let engine: RapportEngine

    func run() async throws {
        let engine = engine
        await cancelWhenGracefulShutdown { await engine.runScheduler() }
    }
}

/// The gRPC server as a lifecycle service: on graceful shutdown the health service reports not serving, new
/// calls are refused, and `run()` returns once the calls in flight have finished.
struct GRPCServerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let rapport: RapportGRPCServer
    let logger: Logger
    /// Called once the server is bound, with `HOST:PORT`.
    let onListening: @Sendable (String) async throws -> Void

    func run() async throws {
        let server = server
        let rapport = rapport
        let logger = logger
        let onListening = onListening
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                let address: SocketAddress?
                do {
                    address = try await server.listeningAddress
                } catch {
                    return  // serve() failed to bind and throws why.
                }
                guard let address else { return }
                try await onListening(Self.text(address))
                logger.info("serving", metadata: ["address": "\(Self.text(address))"])
            }
        } onGracefulShutdown: {
            logger.info("shutting down: finishing the calls in flight")
            rapport.beginShutdown()
            server.beginGracefulShutdown()
        }
    }

    /// `HOST:PORT`, with brackets around an IPv6 host.
    static func text(_ address: SocketAddress) -> String {
        if let v4 = address.ipv4 { return "\(v4.host):\(v4.port)" }
        if let v6 = address.ipv6 { return "[\(v6.host)]:\(v6.port)" }
        return String(describing: address)
    }
}

extension RuntimeError: RuntimeErrorDescribing {
    var summary: String { message }
    var underlying: (any Error)? { cause }
}

extension RPCError: RuntimeErrorDescribing {
    var summary: String { "\(code): \(message)" }
    var underlying: (any Error)? { cause }
}

/// Tells whether an address can be bound, by binding a socket to it (as the server will, with SO_REUSEADDR) and
/// closing it at once. Another process may take the address in between: the server's own bind still decides.
enum AddressProbe {
    struct InUse: Error, CustomStringConvertible {
        var address: String
        var description: String { "\(address) is in use (is another rapport-server running there?); nothing was opened" }
    }

    static func checkFree(_ address: ServerSettings.Address, port: Int) throws {
        guard port != 0 else { return }  // any free port will do
        let family: Int32
        var storage = sockaddr_storage()
        let length: socklen_t
        let shown: String
        switch address {
        case .ipv4(let host):
            family = AF_INET
            var socketAddress = sockaddr_in()
            socketAddress.sin_family = sa_family_t(AF_INET)
            socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host, &socketAddress.sin_addr) == 1 else { return }  // the server's bind will say
            withUnsafeBytes(of: socketAddress) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            shown = "\(host):\(port)"
        case .ipv6(let host):
            family = AF_INET6
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &socketAddress.sin6_addr) == 1 else { return }
            withUnsafeBytes(of: socketAddress) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            shown = "[\(host)]:\(port)"
        }
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var yes: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        if bound != 0, errno == EADDRINUSE { throw InUse(address: shown) }
    }
}
