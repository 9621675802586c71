import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport customers find --email X`.
struct CustomersFind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "find",
        abstract: "Find the customer an identity belongs to (it is normalized first).",
        discussion: "Give exactly one of the options. NOT_FOUND when nobody has it."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("An e-mail address.", valueName: "address"))
    var email: String?

    @Option(help: ArgumentHelp("A phone number.", valueName: "number"))
    var phone: String?

    @Option(help: ArgumentHelp("A loyalty card number.", valueName: "number"))
    var memberCard: String?

    @Option(help: ArgumentHelp("An id in another system, SOURCE:ID.", valueName: "source:id"))
    var externalID: String?

    @Option(help: ArgumentHelp("An anonymous device or cookie id.", valueName: "id"))
    var anonymousID: String?

    mutating func validate() throws {
        let given = [email, phone, memberCard, externalID, anonymousID].compactMap { $0 }
        guard given.count == 1 else {
            throw ValidationError("give exactly one of --email, --phone, --member-card, --external-id, --anonymous-id")
        }
        if let externalID, IdentityOptions.external(externalID) == nil {
            throw ValidationError("--external-id '\(externalID)' is not SOURCE:ID")
        }
    }

    var identity: Rapport_V1_Identity {
        if let email { return IdentityOptions.identity(.email, email) }
        if let phone { return IdentityOptions.identity(.phone, phone) }
        if let memberCard { return IdentityOptions.identity(.memberCard, memberCard) }
        if let externalID, let identity = IdentityOptions.external(externalID) { return identity }
        return IdentityOptions.identity(.anonymousID, anonymousID ?? "")
    }

    func run() async throws {
        let request = Rapport_V1_FindCustomerRequest.with { $0.identity = identity }
        let customer = try await global.run { client in
            try await client.customers.findCustomer(request, options: client.options)
        }
        if global.json { try Printer.json(customer) } else { Printer.customer(customer) }
    }
}
