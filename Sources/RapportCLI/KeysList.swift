import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport keys list`.
struct KeysList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List API keys (never their secrets).")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let response = try await global.run { client in
            try await client.apiKeys.listApiKeys(Rapport_V1_ListApiKeysRequest(), options: client.options)
        }
        if global.json { return try Printer.json(response) }
        Terminal.output(response.apiKeys.isEmpty ? "no API keys" : Printer.keysTable(response.apiKeys))
    }
}
