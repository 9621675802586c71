import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport keys revoke ID`.
struct KeysRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke an API key: it authenticates nobody from now on.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The key id (key_...).", valueName: "id"))
    var id: String

    func run() async throws {
        let key = try await global.run { client in
            try await client.apiKeys.revokeApiKey(.with { $0.id = id }, options: client.options)
        }
        if global.json { return try Printer.json(key) }
        Terminal.output("revoked \(key.id) '\(key.name)' at \(Format.time(key.revokeTime, isSet: key.hasRevokeTime))")
    }
}
