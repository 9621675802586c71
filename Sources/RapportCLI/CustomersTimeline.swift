import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport customers timeline ID [--page-size N] [--page-token T]`: a customer's timeline, page by page.
struct CustomersTimeline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "Show a customer's events, orders and interactions, newest first, one page at a time.",
        discussion: "The last line gives the --page-token of the next page, when there is one."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The customer id.", valueName: "id"))
    var id: String

    @Option(help: ArgumentHelp("Entries per page, 1 to 1000.", valueName: "n"))
    var pageSize: Int = 50

    @Option(help: ArgumentHelp("The token a previous page ended with.", valueName: "token"))
    var pageToken: String?

    mutating func validate() throws {
        guard (1...1000).contains(pageSize) else { throw ValidationError("--page-size must be between 1 and 1000") }
    }

    func run() async throws {
        let request = Rapport_V1_ListTimelineRequest.with {
            $0.customerID = id
            $0.pageSize = Int32(pageSize)
            $0.pageToken = pageToken ?? ""
        }
        let page = try await global.run { client in
            try await client.customer360.listTimeline(request, options: client.options)
        }
        if global.json {
            try Printer.json(page)
        } else {
            Terminal.output(Self.text(page, customer: id))
        }
    }

    static func text(_ page: Rapport_V1_ListTimelineResponse, customer: String) -> String {
        var text = page.entries.isEmpty ? "Timeline: no entries" : Printer.timelineTable(page.entries)
        if !page.nextPageToken.isEmpty {
            text += "\nnext page: rapport customers timeline \(customer) --page-size \(page.entries.count) --page-token \(page.nextPageToken)"
        }
        return text
    }
}
