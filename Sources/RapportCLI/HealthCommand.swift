import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport health`: grpc.health.v1.Health/Check.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Ask the server whether it is serving (needs no API key).",
        discussion: "Exit status 0 when SERVING, 1 otherwise."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("A service to check, e.g. rapport.v1.CustomerService; the server as a whole by default.", valueName: "name"))
    var service: String = ""

    func run() async throws {
        let request = Grpc_Health_V1_HealthCheckRequest.with { $0.service = service }
        let response = try await global.run { client in
            try await client.health.check(request, options: client.options)
        }
        if global.json {
            try Printer.json(response)
        } else {
            Terminal.output(Format.name(response.status).uppercased())
        }
        guard response.status == .serving else { throw ExitCode.failure }
    }
}
