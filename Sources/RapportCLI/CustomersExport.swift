import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport customers export ID`: everything about a customer as JSON, for a data subject access request.
struct CustomersExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Print everything Rapport holds about a customer as JSON (admins only).",
        discussion: """
            Profile, identities, aggregates, every order, event, interaction and consent statement, merges, segments, \
            rule runs and queued messages, of the customer and the customers merged into it, unmasked, read at one \
            instant. Redirect it to a file to hand it over: rapport customers export cus_... > export.json
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The customer id.", valueName: "id"))
    var id: String

    func run() async throws {
        let export = try await global.run { client in
            try await client.privacy.exportCustomer(.with { $0.customerID = id }, options: client.options)
        }
        Terminal.output(try export.jsonString())
    }
}
