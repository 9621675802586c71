import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport merge ID1 ID2`.
struct MergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge two customers that are one person; the older one keeps its id.",
        discussion: "Per field the most recently updated value wins; identities, tags, orders and events are united. Undo with `rapport unmerge MERGE_ID`."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("One customer id.", valueName: "id1"))
    var first: String

    @Argument(help: ArgumentHelp("The other customer id.", valueName: "id2"))
    var second: String

    @Option(help: ArgumentHelp("Makes a retry safe: the same id, with the same API key within a day, returns the first result.", valueName: "id"))
    var requestID: String = ""

    mutating func validate() throws {
        guard first != second else { throw ValidationError("a customer cannot be merged with itself") }
    }

    func run() async throws {
        let request = Rapport_V1_MergeCustomersRequest.with {
            $0.customerIds = [first, second]
            $0.requestID = requestID
        }
        let response = try await global.run { client in
            try await client.merges.mergeCustomers(request, options: client.options)
        }
        if global.json { return try Printer.json(response) }
        Terminal.output("merged \(response.merge.absorbedID) into \(response.merge.survivorID) (merge \(response.merge.id); undo with `rapport unmerge \(response.merge.id)`)")
        Printer.customer(response.survivor)
    }
}
