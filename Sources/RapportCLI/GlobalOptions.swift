import ArgumentParser
import Foundation
import GRPCCore

/// The options every subcommand takes: where the server is, who is calling, and how to print.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The server (env RAPPORT_SERVER; default 127.0.0.1:50051).", valueName: "host:port"))
    var server: String?

    @Option(name: .long, help: ArgumentHelp("The API key secret, sent as `authorization: Bearer` (env RAPPORT_API_KEY).", valueName: "secret"))
    var key: String?

    @Flag(name: .long, help: "Connect with TLS, trusting the system's certificate authorities.")
    var tls = false

    @Option(name: .long, help: ArgumentHelp("Connect with TLS, trusting this PEM certificate authority (e.g. a self-signed server).", valueName: "file"))
    var caCert: String?

    @Flag(name: .long, help: "Print responses as JSON (protobuf JSON mapping) instead of text.")
    var json = false

    mutating func validate() throws {
        _ = try endpoint()
        if let caCert, !FileManager.default.isReadableFile(atPath: caCert) {
            throw ValidationError("--ca-cert '\(caCert)' does not exist or cannot be read")
        }
    }

    /// The server's host and port, from --server, then RAPPORT_SERVER, then the default.
    func endpoint() throws -> (host: String, port: Int) {
        let environment = ProcessInfo.processInfo.environment["RAPPORT_SERVER"].flatMap { $0.isEmpty ? nil : $0 }
        let text = server ?? environment ?? "127.0.0.1:50051"
        guard let endpoint = Self.parse(text) else {
            throw ValidationError("server '\(text)' is not HOST:PORT (for example 127.0.0.1:50051 or [::1]:50051)")
        }
        return endpoint
    }

    /// The API key from --key, then RAPPORT_API_KEY.
    var secret: String? {
        if let key, !key.isEmpty { return key }
        return ProcessInfo.processInfo.environment["RAPPORT_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `host:port`, `[v6]:port`; a bare host means port 50051.
    static func parse(_ text: String) -> (host: String, port: Int)? {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portText = rest.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = Substring(text)
            // Several colons without brackets: an IPv6 address (with a zone after '%') and nothing else (not a URL
            // such as https://host).
            let address = host.prefix { $0 != "%" }
            guard !host.contains(":") || address.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        }
        host = host.drop { $0 == " " }
        guard !host.isEmpty else { return nil }
        // A name or an address: letters, digits, '-', '.', '_' (and, for IPv6, ':' and a '%' zone).
        guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._:%".contains($0)) }) else { return nil }
        guard let portText else { return (String(host), 50051) }
        guard let port = Int(portText), (1...65535).contains(port) else { return nil }
        return (String(host), port)
    }

    /// Moves global options written before the subcommand's name to the end of the arguments.
    static func movingLeadingOptions(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var rest = arguments[...]
        scan: while let first = rest.first {
            switch first {
            case "--tls", "--json":
                leading.append(first)
                rest = rest.dropFirst()
            case "--server", "--key", "--ca-cert":
                guard rest.count >= 2 else { break scan }
                leading += rest.prefix(2)
                rest = rest.dropFirst(2)
            case _ where ["--server=", "--key=", "--ca-cert="].contains(where: first.hasPrefix):
                leading.append(first)
                rest = rest.dropFirst()
            default:
                break scan
            }
        }
        guard !leading.isEmpty, !rest.isEmpty else { return arguments }
        var result = Array(rest)
        result.insert(contentsOf: leading, at: result.firstIndex(of: "--") ?? result.endIndex)
        return result
    }

    /// Connects, runs `body`, and turns any failure into one line on stderr and exit status 1.
    func run<T: Sendable>(_ body: (RapportClient) async throws -> T) async throws -> T {
        do {
            let (host, port) = try endpoint()
            return try await RapportClient.with(host: host, port: port, tls: tls, caCertificate: caCert, secret: secret, body)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            Terminal.error("error: \(ErrorReport.line(for: error, hasKey: secret != nil))\(ErrorReport.requestSuffix(for: error))")
            throw ExitCode.failure
        }
    }
}
