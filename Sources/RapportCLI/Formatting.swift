import Foundation
import RapportProto
import SwiftProtobuf

/// How protobuf values read in text output.
enum Format {
    /// `2026-01-05T14:03:00Z`, or `-` when unset.
    static func time(_ timestamp: Google_Protobuf_Timestamp, isSet: Bool = true) -> String {
        guard isSet else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(timestamp.seconds)))
    }

    /// `19.99 EUR` from minor units, with the currency's number of decimals.
    static func money(_ money: Rapport_V1_Money) -> String {
        money.currency.isEmpty ? "\(money.minorUnits)" : amount(money.minorUnits, currency: money.currency)
    }

    static func amount(_ minorUnits: Int64, currency: String) -> String {
        let digits = decimals(of: currency)
        guard digits > 0 else { return "\(minorUnits) \(currency)" }
        var scale: Int64 = 1
        for _ in 0..<digits { scale *= 10 }
        let sign = minorUnits < 0 ? "-" : ""
        let magnitude = minorUnits.magnitude
        let fraction = String(magnitude % UInt64(scale))
        let padded = String(repeating: "0", count: digits - fraction.count) + fraction
        return "\(sign)\(magnitude / UInt64(scale)).\(padded) \(currency)"
    }

    /// ISO 4217 minor unit digits, as the server's table has them: 2 except for the currencies below.
    static func decimals(of currency: String) -> Int {
        switch currency.uppercased() {
        case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
            return 0
        case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
            return 3
        case "CLF", "UYW":
            return 4
        default:
            return 2
        }
    }

    /// A generated enum case as lower snake case: `callCenter` → `call_center`.
    static func name(_ value: some SwiftProtobuf.Enum) -> String {
        var result = ""
        for character in String(describing: value) {
            if character.isUppercase {
                if !result.isEmpty { result.append("_") }
                result.append(contentsOf: character.lowercased())
            } else {
                result.append(character)
            }
        }
        return result
    }

    static func fullName(_ customer: Rapport_V1_Customer) -> String {
        let name = [customer.givenName, customer.familyName].filter { !$0.isEmpty }.joined(separator: " ")
        return name.isEmpty ? "(no name)" : name
    }

    static func identity(_ identity: Rapport_V1_Identity) -> String {
        switch identity.kind {
        case .externalID: "\(identity.source):\(identity.value)"
        default: identity.value
        }
    }

    static func identities(_ identities: [Rapport_V1_Identity], kind: Rapport_V1_IdentityKind) -> String {
        identities.filter { $0.kind == kind }.map(identity).joined(separator: ", ")
    }

    static func attribute(_ value: Rapport_V1_AttributeValue) -> String {
        switch value.value {
        case .stringValue(let text)?: text
        case .intValue(let number)?: String(number)
        case .decimalValue(let text)?: text
        case .boolValue(let flag)?: String(flag)
        case .timestampValue(let time)?: Format.time(time)
        case .stringListValue(let list)?: list.values.joined(separator: ", ")
        case nil: "-"
        }
    }

    static func dash(_ text: String) -> String { text.isEmpty ? "-" : text }
}

/// Printing messages as JSON or text.
enum Printer {
    /// One JSON object on one line, in protobuf's JSON mapping.
    static func json(_ message: some SwiftProtobuf.Message) throws {
        Terminal.output(try message.jsonString())
    }

    /// Timeline entries as a table: time, kind, and what happened.
    static func timelineTable(_ entries: [Rapport_V1_TimelineEntry]) -> String {
        var table = TextTable("TIME", "KIND", "WHAT")
        for entry in entries {
            switch entry.entry {
            case .event(let event)?:
                let channel = event.channel == .unspecified ? "" : " via \(Format.name(event.channel))"
                table.add(Format.time(event.occurTime, isSet: event.hasOccurTime), "event", "\(event.type)\(channel)")
            case .order(let order)?:
                table.add(
                    Format.time(order.placeTime, isSet: order.hasPlaceTime), "order",
                    "\(order.source)/\(order.externalID) \(Format.name(order.status)) \(Format.money(order.total))")
            case .interaction(let interaction)?:
                let subject = interaction.subject.isEmpty ? "" : ": \(interaction.subject)"
                table.add(
                    Format.time(interaction.occurTime, isSet: interaction.hasOccurTime), "interaction",
                    "\(Format.name(interaction.direction)) \(Format.name(interaction.channel))\(subject)")
            case nil:
                continue
            }
        }
        return table.render()
    }

    static func customer(_ customer: Rapport_V1_Customer) {
        Terminal.output(customerText(customer))
    }

    /// A customer as a few labelled lines.
    static func customerText(_ customer: Rapport_V1_Customer) -> String {
        var lines = ["\(customer.id)  \(Format.fullName(customer))"]
        func add(_ label: String, _ value: String) {
            guard !value.isEmpty else { return }
            // Long labels (attribute keys up to 64 characters) are kept whole, a space before the value.
            lines.append("  " + label + String(repeating: " ", count: max(1, 12 - label.count)) + value)
        }
        add("emails", Format.identities(customer.identities, kind: .email))
        add("phones", Format.identities(customer.identities, kind: .phone))
        add("cards", Format.identities(customer.identities, kind: .memberCard))
        add("external", Format.identities(customer.identities, kind: .externalID))
        add("anonymous", Format.identities(customer.identities, kind: .anonymousID))
        add("tags", customer.tags.joined(separator: ", "))
        if customer.lifecycleStage != .unspecified { add("stage", Format.name(customer.lifecycleStage)) }
        if customer.hasBirthday {
            let date = customer.birthday
            if date.month == 0 {
                // Masked for the key's role: the server keeps the year at most.
                add("birthday", date.year > 0 ? String(format: "%04d-**-** (masked)", date.year) : "(masked)")
            } else {
                add("birthday", date.year > 0 ? String(format: "%04d-%02d-%02d", date.year, date.month, date.day) : String(format: "--%02d-%02d", date.month, date.day))
            }
        }
        add("locale", customer.locale)
        add("time zone", customer.timeZone)
        for address in customer.addresses {
            let parts = [address.line1, address.line2, address.postalCode, address.city, address.region, address.country]
            add("address", (address.label.isEmpty ? "" : "\(address.label): ") + parts.filter { !$0.isEmpty }.joined(separator: ", "))
        }
        for (key, value) in customer.attributes.sorted(by: { $0.key < $1.key }) {
            add(key, Format.attribute(value))
        }
        add("created", Format.time(customer.createTime, isSet: customer.hasCreateTime))
        add("updated", Format.time(customer.updateTime, isSet: customer.hasUpdateTime))
        add("etag", customer.etag)  // for --if-match
        return lines.joined(separator: "\n")
    }
}
