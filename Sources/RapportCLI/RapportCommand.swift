import ArgumentParser

/// `rapport`: the command-line client of a Rapport server.
@main
struct RapportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rapport",
        abstract: "Talk to a Rapport CRM server over gRPC.",
        discussion: """
            Every subcommand takes --server HOST:PORT (env RAPPORT_SERVER, default 127.0.0.1:50051), --key SECRET \
            (env RAPPORT_API_KEY; the first admin key is printed by rapport-server on its first start), --tls, --ca-cert FILE and \
            --json.

            Examples:
              export RAPPORT_API_KEY=rpk_...
              rapport customers create --given-name Ada --email ada@example.com --tag vip
              rapport customers list --filter tags:vip --all
              rapport ingest examples/events.jsonl
              rapport customer360 cus_...
            """,
        subcommands: [
            CustomersCommand.self, Customer360Command.self, MergeCommand.self, UnmergeCommand.self, IngestCommand.self,
            KeysCommand.self, HealthCommand.self,
        ]
    )

    /// Parses and runs the command, accepting the global options before the subcommand too
    /// (`rapport --key K customers list`), where ArgumentParser only looks after it.
    static func main() async {
        let arguments = GlobalOptions.movingLeadingOptions(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
