import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport keys create --name N --role R`.
struct KeysCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an API key; its secret is printed once.",
        discussion: """
            Roles: admin (everything, including keys), marketing (customers, ingest, consent, merges, segments, \
            rules, the outbox), sales (customers, interactions, merges), service (customers, interactions, consent, \
            merges), analyst (reads everything but the outbox, personal data masked), read-only (customers and their \
            360 view, personal data masked).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("What the key is for, e.g. checkout-service.", valueName: "name"))
    var name: String

    @Option(help: ArgumentHelp("One of \(RoleArgument.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "role"))
    var role: RoleArgument

    func run() async throws {
        let request = Rapport_V1_CreateApiKeyRequest.with {
            $0.name = name
            $0.role = role.proto
        }
        let response = try await global.run { client in
            try await client.apiKeys.createApiKey(request, options: client.options)
        }
        if global.json { return try Printer.json(response) }
        Terminal.output("created \(response.apiKey.id) '\(response.apiKey.name)' (role \(role.rawValue)). Its secret:")
        Terminal.output("  \(response.secret)")
        Terminal.output("Keep it now: it is shown only this time.")
    }
}
