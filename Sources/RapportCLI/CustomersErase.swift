import ArgumentParser
import Foundation
import RapportProto
import SwiftProtobuf

/// `rapport customers erase ID --yes`: deletes a customer and everything about it, for good.
struct CustomersErase: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase",
        abstract: "Delete a customer and everything about it, and the customers merged into it (admins only).",
        discussion: """
            Erasure is final: there is no undo. Export first if the person asked for their data \
            (rapport customers export ID). --yes confirms; without it nothing is sent.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The customer id.", valueName: "id"))
    var id: String

    @Option(help: ArgumentHelp("Fail (ABORTED) if the customer changed since this etag.", valueName: "etag"))
    var ifMatch: String?

    @Flag(help: "Confirm the erasure.")
    var yes = false

    mutating func validate() throws {
        guard yes else { throw ValidationError("erasing \(id) cannot be undone: add --yes to confirm") }
    }

    func run() async throws {
        _ = try await global.run { client in
            try await client.customers.deleteCustomer(
                .with {
                    $0.id = id
                    $0.etag = ifMatch ?? ""
                }, options: client.options)
        }
        Terminal.output(global.json ? String(decoding: try JSONEncoder().encode(["erased": id]), as: UTF8.self) : "erased \(id)")
    }
}
