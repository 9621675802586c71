import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A `rapport-server` child process on 127.0.0.1 and a free port, with the admin key it printed on first start.
final class ServerProcess {
    let name: String
    let port: Int
    let adminKey: String
    let logPath: String
    private let process: Process
    private let output: Pipe

    var pid: pid_t { process.processIdentifier }

    /// Starts `binary` with `storageArguments` (`--db FILE` or `--in-memory`) and waits for its listening line.
    init(name: String, binary: String, storageArguments: [String], logPath: String, timeout: Double = 60) throws {
        self.name = name
        self.logPath = logPath
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = storageArguments + ["--host", "127.0.0.1", "--port", "0", "--log-level", "info"]
        // Flags win over the environment, but TLS could still come from it: drop every RAPPORT_* variable.
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RAPPORT_") }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        self.output = output

        // Read stdout until `rapport-server listening on HOST:PORT`, keeping the line after "Its secret:".
        let descriptor = output.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(timeout)
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        var listening: (key: String?, port: Int)?
        while listening == nil {
            let remaining = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, remaining)
            if ready == 0 {
                process.terminate()
                throw ServerError("\(name): no listening line within \(Int(timeout)) s (log: \(logPath))")
            }
            if ready < 0 { if errno == EINTR { continue } else { throw ServerError("\(name): poll failed, errno \(errno)") } }
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0 { if errno == EINTR { continue } else { throw ServerError("\(name): read failed, errno \(errno)") } }
            if count == 0 {
                process.waitUntilExit()
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                throw ServerError("\(name) exited (status \(process.terminationStatus)) before listening:\n\(text)\(log)")
            }
            text += String(decoding: buffer[..<count], as: UTF8.self)
            listening = Self.parse(text)
        }
        guard let key = listening!.key else {
            process.terminate()
            throw ServerError("\(name): the server printed no first-start admin key (is the database new?):\n\(text)")
        }
        adminKey = key
        port = listening!.port
    }

    /// The admin key and port once the listening line is complete.
    static func parse(_ text: String) -> (key: String?, port: Int)? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let line = lines.dropLast().first(where: { $0.hasPrefix("rapport-server listening on ") }),
              let colon = line.lastIndex(of: ":"), let port = Int(line[line.index(after: colon)...])
        else { return nil }
        var key: String?
        if let index = lines.firstIndex(where: { $0.hasSuffix("Its secret:") }), index + 1 < lines.count {
            key = lines[index + 1].trimmingCharacters(in: .whitespaces)
        }
        return (key, port)
    }

    /// SIGTERM, then waits up to `timeout` seconds for a graceful exit before SIGKILL. Returns the exit status.
    @discardableResult
    func stop(timeout: Double = 20) -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        return process.terminationStatus
    }
}

struct ServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
