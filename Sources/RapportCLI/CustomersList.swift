import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport customers list`.
struct CustomersList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List customers, one page or --all of them.",
        discussion: """
            Filters are conditions joined by AND: tags:vip, lifecycle_stage=active, lifecycle_stage=(active,loyal), \
            create_time>=2026-01-01T00:00:00Z, create_time<..., update_time>=...; a value with spaces goes in double \
            quotes: tags:"rock and roll". Order by create_time (default) or update_time, optionally followed by ' desc'.

            With --json: one page prints the ListCustomersResponse; --all prints one customer per line.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Conditions joined by AND, e.g. 'tags:vip AND lifecycle_stage=active'.", valueName: "filter"))
    var filter: String = ""

    @Option(help: ArgumentHelp("create_time or update_time, optionally with ' desc'.", valueName: "order"))
    var orderBy: String = ""

    @Option(help: ArgumentHelp("Customers per page, 1 to 1000 (default 50).", valueName: "n"))
    var pageSize: Int = 50

    @Option(help: ArgumentHelp("Start at this page token (from a previous page).", valueName: "token"))
    var pageToken: String = ""

    @Flag(help: "Follow the page tokens to the end.")
    var all = false

    mutating func validate() throws {
        guard (1...1000).contains(pageSize) else { throw ValidationError("--page-size must be between 1 and 1000") }
    }

    func run() async throws {
        let json = global.json
        var table = TextTable("ID", "NAME", "EMAIL", "PHONE", "TAGS", "STAGE", "CREATED")
        var count = 0
        let nextToken: String = try await global.run { client in
            var token = pageToken
            repeat {
                let request = Rapport_V1_ListCustomersRequest.with {
                    $0.filter = filter
                    $0.orderBy = orderBy
                    $0.pageSize = Int32(pageSize)
                    $0.pageToken = token
                }
                let page = try await client.customers.listCustomers(request, options: client.options)
                token = page.nextPageToken
                count += page.customers.count
                if json {
                    if all {
                        for customer in page.customers { try Printer.json(customer) }
                    } else {
                        try Printer.json(page)
                    }
                } else {
                    for customer in page.customers {
                        table.add(
                            customer.id, Format.fullName(customer),
                            Format.dash(Format.identities(customer.identities, kind: .email)),
                            Format.dash(Format.identities(customer.identities, kind: .phone)),
                            Format.dash(customer.tags.joined(separator: ",")),
                            customer.lifecycleStage == .unspecified ? "-" : Format.name(customer.lifecycleStage),
                            Format.time(customer.createTime, isSet: customer.hasCreateTime))
                    }
                }
            } while all && !token.isEmpty
            return token
        }
        guard !json else { return }
        if count == 0 {
            Terminal.output("no customers")
        } else {
            Terminal.output(table.render())
        }
        if !nextToken.isEmpty {
            Terminal.error("more customers: --page-token \(nextToken) (or --all)")
        }
    }
}
