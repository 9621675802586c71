import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport customers get ID`.
struct CustomersGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show one customer. The id of a merged customer shows the customer it was merged into."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The customer id.", valueName: "id"))
    var id: String

    func run() async throws {
        let customer = try await global.run { client in
            try await client.customers.getCustomer(.with { $0.id = id }, options: client.options)
        }
        if global.json { try Printer.json(customer) } else { Printer.customer(customer) }
    }
}
