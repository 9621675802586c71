import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport customer360 ID`: everything about one customer, summarised.
struct Customer360Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "customer360",
        abstract: "Show a customer's profile, aggregates, recent orders, consents, merges and timeline."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The customer id.", valueName: "id"))
    var id: String

    @Option(help: ArgumentHelp("How many recent orders, 1 to 100.", valueName: "n"))
    var orders: Int = 5

    @Option(help: ArgumentHelp("How many timeline entries, 1 to 1000 (`rapport customers timeline` pages further).", valueName: "n"))
    var timeline: Int = 20

    mutating func validate() throws {
        guard (1...100).contains(orders) else { throw ValidationError("--orders must be between 1 and 100") }
        guard (1...1000).contains(timeline) else { throw ValidationError("--timeline must be between 1 and 1000") }
    }

    func run() async throws {
        let request = Rapport_V1_GetCustomer360Request.with {
            $0.customerID = id
            $0.recentOrders = Int32(orders)
            $0.timelinePageSize = Int32(timeline)
        }
        let view = try await global.run { client in
            try await client.customer360.getCustomer360(request, options: client.options)
        }
        if global.json {
            try Printer.json(view)
        } else {
            Terminal.output(Self.text(view))
        }
    }

    static func text(_ view: Rapport_V1_Customer360) -> String {
        var sections = [Printer.customerText(view.customer)]

        let stats = view.stats
        var statsLines = ["Stats"]
        statsLines.append("  orders      \(stats.orderCount)")
        for currency in stats.spent {
            statsLines.append(
                "  spent       \(Format.money(currency.total)) in \(currency.orderCount) order\(currency.orderCount == 1 ? "" : "s"), average \(Format.money(currency.averageOrderValue))")
        }
        statsLines.append("  first order \(Format.time(stats.firstOrderTime, isSet: stats.hasFirstOrderTime))")
        statsLines.append("  last order  \(Format.time(stats.lastOrderTime, isSet: stats.hasLastOrderTime))")
        statsLines.append("  events      \(stats.eventCount)")
        statsLines.append("  last seen   \(Format.time(stats.lastSeenTime, isSet: stats.hasLastSeenTime))")
        sections.append(statsLines.joined(separator: "\n"))

        if view.recentOrders.isEmpty {
            sections.append("Recent orders: none")
        } else {
            var table = TextTable("ORDER", "SOURCE/EXTERNAL ID", "STATUS", "ITEMS", "TOTAL", "PLACED")
            for order in view.recentOrders {
                let items = order.lines.reduce(Int64(0)) { $0 + $1.quantity }
                table.add(
                    order.id, "\(order.source)/\(order.externalID)", Format.name(order.status), String(items),
                    Format.money(order.total), Format.time(order.placeTime, isSet: order.hasPlaceTime))
            }
            sections.append("Recent orders\n" + indent(table.render()))
        }

        if view.consents.isEmpty {
            sections.append("Consents: none recorded")
        } else {
            var table = TextTable("CHANNEL", "PURPOSE", "STATUS", "SOURCE", "SINCE")
            for consent in view.consents {
                table.add(
                    Format.name(consent.channel), Format.name(consent.purpose), Format.name(consent.status),
                    Format.dash(consent.source), Format.time(consent.occurTime, isSet: consent.hasOccurTime))
            }
            sections.append("Consents\n" + indent(table.render()))
        }

        if !view.merges.isEmpty {
            let lines = view.merges.map { merge in
                "  \(merge.id): absorbed \(merge.absorbedID) (\(Format.name(merge.reason))) at \(Format.time(merge.mergeTime, isSet: merge.hasMergeTime))"
            }
            sections.append((["Merged into this customer"] + lines).joined(separator: "\n"))
        }

        if view.timeline.isEmpty {
            sections.append("Timeline: empty")
        } else {
            let more =
                view.timelineNextPageToken.isEmpty
                ? ""
                : "\n  (more: rapport customers timeline \(view.customer.id) --page-size \(view.timeline.count) --page-token \(view.timelineNextPageToken))"
            sections.append("Timeline, newest first\n" + indent(Printer.timelineTable(view.timeline)) + more)
        }
        return sections.joined(separator: "\n\n")
    }

    static func indent(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
    }
}
