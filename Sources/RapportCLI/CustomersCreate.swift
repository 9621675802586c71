import ArgumentParser
import RapportProto
import SwiftProtobuf

/// `rapport customers create`.
struct CustomersCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a customer.",
        discussion: "An e-mail or phone that already belongs to someone else is refused (INVALID_ARGUMENT)."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Given (first) name.", valueName: "name"))
    var givenName: String = ""

    @Option(help: ArgumentHelp("Family (last) name.", valueName: "name"))
    var familyName: String = ""

    @Option(help: ArgumentHelp("An e-mail address (repeatable).", valueName: "address"))
    var email: [String] = []

    @Option(help: ArgumentHelp("A phone number, E.164 or national (repeatable).", valueName: "number"))
    var phone: [String] = []

    @Option(help: ArgumentHelp("A loyalty card number (repeatable).", valueName: "number"))
    var memberCard: [String] = []

    @Option(help: ArgumentHelp("An id in another system, SOURCE:ID (repeatable).", valueName: "source:id"))
    var externalID: [String] = []

    @Option(help: ArgumentHelp("A tag (repeatable).", valueName: "tag"))
    var tag: [String] = []

    @Option(help: ArgumentHelp("A BCP 47 locale, e.g. en-US.", valueName: "locale"))
    var locale: String = ""

    @Option(help: ArgumentHelp("An IANA time zone, e.g. Europe/Berlin.", valueName: "zone"))
    var timeZone: String = ""

    @Option(help: ArgumentHelp("Makes a retry safe: the same id, with the same API key within a day, returns the first result.", valueName: "id"))
    var requestID: String = ""

    mutating func validate() throws {
        for value in externalID where IdentityOptions.external(value) == nil {
            throw ValidationError("--external-id '\(value)' is not SOURCE:ID")
        }
    }

    func run() async throws {
        var customer = Rapport_V1_Customer()
        customer.givenName = givenName
        customer.familyName = familyName
        customer.tags = tag
        customer.locale = locale
        customer.timeZone = timeZone
        customer.identities =
            email.map { IdentityOptions.identity(.email, $0) } + phone.map { IdentityOptions.identity(.phone, $0) }
            + memberCard.map { IdentityOptions.identity(.memberCard, $0) } + externalID.compactMap(IdentityOptions.external)
        let request = Rapport_V1_CreateCustomerRequest.with {
            $0.customer = customer
            $0.requestID = requestID
        }
        let created = try await global.run { client in
            try await client.customers.createCustomer(request, options: client.options)
        }
        if global.json { try Printer.json(created) } else { Printer.customer(created) }
    }
}

/// Building identities from command-line values.
enum IdentityOptions {
    static func identity(_ kind: Rapport_V1_IdentityKind, _ value: String, source: String = "") -> Rapport_V1_Identity {
        .with {
            $0.kind = kind
            $0.value = value
            $0.source = source
        }
    }

    /// `SOURCE:ID` as an external id.
    static func external(_ text: String) -> Rapport_V1_Identity? {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex, text.index(after: colon) != text.endIndex else {
            return nil
        }
        return identity(.externalID, String(text[text.index(after: colon)...]), source: String(text[..<colon]))
    }
}
