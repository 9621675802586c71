import ArgumentParser

/// `rapport customers ...`: customer profiles.
struct CustomersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "customers",
        abstract: "Get, list, find and create customers, page through a customer's timeline, export or erase a customer's data.",
        subcommands: [CustomersGet.self, CustomersList.self, CustomersCreate.self, CustomersFind.self, CustomersTimeline.self, CustomersExport.self, CustomersErase.self]
    )
}
