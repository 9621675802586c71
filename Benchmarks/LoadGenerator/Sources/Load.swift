import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Histogram
#if canImport(Glibc)
import Glibc
#endif

typealias Client = GRPCClient<HTTP2ClientTransport.Posix>

/// Opens `count` clients to 127.0.0.1:`port`, one HTTP/2 connection each (a single address, pick-first), runs
/// `body` with them, and closes them.
func withClients<T: Sendable>(port: Int, count: Int, _ body: ([Client]) async throws -> T) async throws -> T {
    let clients = try (0..<count).map { _ in
        Client(transport: try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext))
    }
    return try await withThrowingTaskGroup(of: Void.self) { group in
        for client in clients { group.addTask { try await client.runConnections() } }
        do {
            let result = try await body(clients)
            for client in clients { client.beginGracefulShutdown() }
            try await group.waitForAll()
            return result
        } catch {
            for client in clients { client.beginGracefulShutdown() }
            throw error
        }
    }
}

/// The state one of the in-flight callers carries from call to call.
struct WorkerState: Sendable {
    let index: Int
    var random: SplitMix64
    var sequence = 0
}

/// What one measured run gives.
struct RunResult: Sendable {
    var connections: Int
    /// Per-call latency in microseconds, calls completed inside the measured window only.
    var latency: Histogram<UInt64>
    var completed: Int
    var errors: Int
    var firstError: String?
    var seconds: Double
    /// Items per call (events per IngestEvents batch; 1 otherwise).
    var itemsPerCall: Int
    /// CPU seconds used by the server process and by this process during the window.
    var serverCPU: Double
    var clientCPU: Double

    var callsPerSecond: Double { Double(completed) / seconds }
    var itemsPerSecond: Double { callsPerSecond * Double(itemsPerCall) }
    func milliseconds(atPercentile percentile: Double) -> Double { Double(latency.valueAtPercentile(percentile)) / 1000 }
}

/// Monotonic nanoseconds.
@inline(__always) func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// CPU seconds (user + system) a process has used so far: /proc/PID/stat for another process.
func cpuSeconds(pid: pid_t) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return 0 }
    // Fields after "comm)": state is field 3; utime and stime are fields 14 and 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

func ownCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Keeps exactly `inFlight` calls going over `clients` (caller i uses connection i mod count) for `warmup` seconds,
/// then `duration` seconds measured: every call that completes inside the window counts and has its latency recorded.
func measure(
    clients: [Client], inFlight: Int, warmup: Double, duration: Double, itemsPerCall: Int, serverPID: pid_t, seed: UInt64,
    call: @escaping @Sendable (Client, inout WorkerState) async throws -> Void
) async -> RunResult {
    let start = now()
    let windowStart = start + UInt64(warmup * 1e9)
    let windowEnd = windowStart + UInt64(duration * 1e9)

    struct WorkerResult: Sendable {
        var latency: Histogram<UInt64>
        var completed = 0
        var errors = 0
        var firstError: String?
    }

    // CPU counters are sampled by a side task at the window's edges.
    let cpuSampler = Task { () -> (server: Double, client: Double) in
        try? await Task.sleep(nanoseconds: windowStart - min(windowStart, now()))
        let server0 = cpuSeconds(pid: serverPID), client0 = ownCPUSeconds()
        try? await Task.sleep(nanoseconds: windowEnd - min(windowEnd, now()))
        return (cpuSeconds(pid: serverPID) - server0, ownCPUSeconds() - client0)
    }

    let results = await withTaskGroup(of: WorkerResult.self) { group in
        for index in 0..<inFlight {
            let client = clients[index % clients.count]
            group.addTask {
                var state = WorkerState(index: index, random: SplitMix64(seed: seed &+ UInt64(index) &* 0x9E37_79B9))
                var result = WorkerResult(latency: Histogram(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three))
                var consecutiveErrors = 0
                while true {
                    let began = now()
                    var failed = false
                    do {
                        try await call(client, &state)
                        consecutiveErrors = 0
                    } catch {
                        failed = true
                        consecutiveErrors += 1
                        if result.firstError == nil { result.firstError = String(describing: error) }
                    }
                    let ended = now()
                    if ended >= windowStart && ended <= windowEnd {
                        if failed {
                            result.errors += 1
                        } else {
                            _ = result.latency.record((ended - began) / 1000)
                            result.completed += 1
                        }
                    }
                    if ended >= windowEnd || consecutiveErrors >= 100 { break }
                }
                return result
            }
        }
        var all: [WorkerResult] = []
        for await result in group { all.append(result) }
        return all
    }
    let cpu = await cpuSampler.value

    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    for result in results { latency.add(result.latency) }
    return RunResult(
        connections: clients.count, latency: latency, completed: results.reduce(0) { $0 + $1.completed },
        errors: results.reduce(0) { $0 + $1.errors }, firstError: results.lazy.compactMap(\.firstError).first,
        seconds: duration, itemsPerCall: itemsPerCall, serverCPU: cpu.server, clientCPU: cpu.client)
}

/// A small, fast, seedable generator: each caller has its own.
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
