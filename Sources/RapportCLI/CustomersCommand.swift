import ArgumentParser

/// `rapport customers ...`: customer profiles.
struct CustomersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "customers",
        abstract: "Get, list, find and create customers.",
        subcommands: [CustomersGet.self, CustomersList.self, CustomersCreate.self, CustomersFind.self]
    )
}
