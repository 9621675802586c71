import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport unmerge MERGE_ID`.
struct UnmergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmerge",
        abstract: "Undo a merge: the absorbed customer comes back as it was, with what it owned."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The merge id (mrg_...), printed by `rapport merge` and shown by customer360.", valueName: "merge-id"))
    var mergeID: String

    @Option(help: ArgumentHelp("Makes a retry safe: the same id, with the same API key within a day, returns the first result.", valueName: "id"))
    var requestID: String = ""

    func run() async throws {
        let request = Rapport_V1_UnmergeCustomersRequest.with {
            $0.mergeID = mergeID
            $0.requestID = requestID
        }
        let response = try await global.run { client in
            try await client.merges.unmergeCustomers(request, options: client.options)
        }
        if global.json { return try Printer.json(response) }
        Terminal.output("undid merge \(response.merge.id): \(response.restored.id) is separate from \(response.survivor.id) again\n")
        Printer.customer(response.survivor)
        Terminal.output("")
        Printer.customer(response.restored)
    }
}
