import Foundation
import RapportCore
@testable import RapportSQLite
import Testing

/// The hand-written JSON of the hot columns is the file format the `Codable` `Stored…` forms define: what one
/// writes, the other reads back equal, both ways, so files written before and after it read the same.
@Suite("Column JSON")
struct ColumnJSONTests {
    // MARK: Random values

    private struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Strings that exercise every escape: quotes, backslashes, slashes, control characters, accents, emoji.
    private static let pieces = ["", "a", "Ada", "O'Brien", "\"quoted\"", "back\\slash", "a/b", "tab\there", "line\nbreak", "\r", "\u{8}\u{c}",
                                 "\u{1}\u{1f}", "é", "Zoë Ångström", "日本", "👩‍💻", "\u{10FFFF}", "{}[],:", "null", "true", "-12"]

    private static func text(_ rng: inout Generator) -> String {
        (0..<Int.random(in: 0...3, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    private static func int(_ rng: inout Generator) -> Int64 {
        [0, 1, -1, Int64.max, Int64.min, Int64.random(in: -1_000_000...1_000_000, using: &rng), Int64.random(in: .min ... .max, using: &rng)]
            .randomElement(using: &rng)!
    }

    private static func attribute(_ rng: inout Generator) -> AttributeValue {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: .string(text(&rng))
        case 1: .int(int(&rng))
        case 2: .decimal([Decimal(string: "12.5")!, Decimal(string: "-0.001")!, Decimal(0), Decimal(string: "123456789012345678.9")!].randomElement(using: &rng)!)
        case 3: .bool(Bool.random(using: &rng))
        case 4: .timestamp(Timestamp(millisecondsSinceEpoch: int(&rng)))
        default: .stringList((0..<Int.random(in: 0...3, using: &rng)).map { _ in text(&rng) })
        }
    }

    private static func attributes(_ rng: inout Generator) -> [String: AttributeValue] {
        Dictionary((0..<Int.random(in: 0...4, using: &rng)).map { _ in (text(&rng), attribute(&rng)) }, uniquingKeysWith: { first, _ in first })
    }

    private static func identities(_ rng: inout Generator) -> [Identity] {
        (0..<Int.random(in: 0...3, using: &rng)).map { _ in
            Identity(kind: IdentityKind.allCases.randomElement(using: &rng)!, source: text(&rng), value: text(&rng))
        }
    }

    private static func profile(_ rng: inout Generator) -> CustomerProfile {
        CustomerProfile(
            givenName: text(&rng), familyName: text(&rng),
            birthday: Bool.random(using: &rng) ? LocalDate(year: Bool.random(using: &rng) ? 1990 : nil, month: 2, day: 29) : nil,
            locale: text(&rng), timeZone: text(&rng),
            addresses: (0..<Int.random(in: 0...2, using: &rng)).map { _ in
                PostalAddress(label: text(&rng), line1: text(&rng), line2: text(&rng), city: text(&rng), region: text(&rng), postalCode: text(&rng), country: text(&rng))
            },
            tags: (0..<Int.random(in: 0...3, using: &rng)).map { _ in text(&rng) },
            lifecycleStage: Bool.random(using: &rng) ? LifecycleStage.allCases.randomElement(using: &rng) : nil,
            attributes: attributes(&rng)
        )
    }

    private static func money(_ rng: inout Generator) throws -> Money {
        Money(minorUnits: int(&rng), currency: try CurrencyCode(["EUR", "JPY", "KWD", "usd"].randomElement(using: &rng)!))
    }

    private static func order(_ rng: inout Generator) throws -> Order {
        let currency = try CurrencyCode("EUR")
        return Order(
            id: OrderID(uncheckedRawValue: "o"), key: OrderKey(source: "shop", externalID: "1"), channel: .web, customerID: CustomerID(uncheckedRawValue: "c"),
            identities: identities(&rng),
            lines: (0..<Int.random(in: 0...3, using: &rng)).map { _ in OrderLine(sku: text(&rng), name: text(&rng), quantity: int(&rng), unitPriceMinor: int(&rng)) },
            currency: currency, subtotal: try money(&rng), discount: try money(&rng), shipping: try money(&rng), tax: try money(&rng), total: try money(&rng),
            status: .placed,
            statusHistory: (0..<Int.random(in: 0...3, using: &rng)).map { _ in
                OrderStatusChange(
                    status: OrderStatus.allCases.randomElement(using: &rng)!, at: Timestamp(millisecondsSinceEpoch: int(&rng)), estimated: Bool.random(using: &rng))
            },
            placedAt: Timestamp(millisecondsSinceEpoch: 0), updatedAt: Timestamp(millisecondsSinceEpoch: 0)
        )
    }

    // MARK: Helpers

    private static func read<T>(_ text: String, _ reader: (inout JSONScanner) throws -> T) throws -> T {
        try Array(text.utf8).withUnsafeBytes { try JSONScanner.read($0, reader) }
    }

    private static func written(_ body: (inout JSONWriter) -> Void) -> String {
        ColumnJSON.text(body)
    }

    private static func encoded(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    private static func decoded<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    // MARK: Both ways

    @Test
    func writtenTextReadsBackEqualThroughBothReaders() throws {
        var rng = Generator(state: 20261129)
        for _ in 0..<300 {
            let profile = Self.profile(&rng)
            let profileText = Self.written { ColumnJSON.write(profile, to: &$0) }
            #expect(try Self.read(profileText, ColumnJSON.readProfile) == profile)
            #expect(try Self.decoded(StoredProfile.self, profileText).profile == profile)

            let identities = Self.identities(&rng)
            let identitiesText = Self.written { ColumnJSON.write(identities, to: &$0) }
            #expect(try Self.read(identitiesText, ColumnJSON.readIdentities) == identities)
            #expect(try Self.decoded([StoredIdentity].self, identitiesText).map(\.identity) == identities)

            let properties = Self.attributes(&rng)
            let propertiesText = Self.written { ColumnJSON.write(properties, to: &$0) }
            #expect(try Self.read(propertiesText, ColumnJSON.readAttributes) == properties)
            #expect(try Self.decoded([String: AttributeValue].self, propertiesText) == properties)

            let times = Dictionary(uniqueKeysWithValues: (0..<Int.random(in: 0...3, using: &rng)).map { index in
                ("field\(index)\(Self.text(&rng))", Timestamp(millisecondsSinceEpoch: Self.int(&rng)))
            })
            let timesText = Self.written { ColumnJSON.write(times, to: &$0) }
            #expect(try Self.read(timesText, ColumnJSON.readTimes) == times)
            #expect(try Self.decoded([String: Int64].self, timesText) == times.mapValues(\.millisecondsSinceEpoch))

            let totals = try (0..<Int.random(in: 0...2, using: &rng)).map { _ in
                CurrencyTotal(currency: try Self.money(&rng).currency, totalMinor: Self.int(&rng), orderCount: Self.int(&rng))
            }
            let totalsText = Self.written { ColumnJSON.write(totals, to: &$0) }
            #expect(try Self.read(totalsText, ColumnJSON.readTotals) == totals)
            #expect(try Self.decoded([StoredCurrencyTotal].self, totalsText).map(\.total) == totals)

            let order = try Self.order(&rng)
            let orderText = Self.written { ColumnJSON.write(order, to: &$0) }
            #expect(try Self.read(orderText, ColumnJSON.readOrderDetails) == Self.details(of: order))
            #expect(Self.details(try Self.decoded(StoredOrderDetails.self, orderText)) == Self.details(of: order))
        }
    }

    private static func details(of order: Order) -> ColumnJSON.OrderDetails {
        ColumnJSON.OrderDetails(
            identities: order.identities, lines: order.lines, subtotal: order.subtotal, discount: order.discount, shipping: order.shipping, tax: order.tax,
            total: order.total, statusHistory: order.statusHistory
        )
    }

    private static func details(_ stored: StoredOrderDetails) -> ColumnJSON.OrderDetails {
        ColumnJSON.OrderDetails(
            identities: stored.identities.map(\.identity), lines: stored.lines.map(\.line), subtotal: stored.subtotal.money, discount: stored.discount.money,
            shipping: stored.shipping.money, tax: stored.tax.money, total: stored.total.money, statusHistory: stored.statusHistory.map(\.change)
        )
    }

    /// Files written before the hand-written coder hold `JSONEncoder`'s text: it reads back equal.
    @Test
    func textWrittenByJSONEncoderReadsBackEqual() throws {
        var rng = Generator(state: 7)
        for _ in 0..<300 {
            let profile = Self.profile(&rng)
            #expect(try Self.read(try Self.encoded(StoredProfile(profile)), ColumnJSON.readProfile) == profile)
            let identities = Self.identities(&rng)
            #expect(try Self.read(try Self.encoded(identities.map(StoredIdentity.init)), ColumnJSON.readIdentities) == identities)
            let properties = Self.attributes(&rng)
            #expect(try Self.read(try Self.encoded(properties), ColumnJSON.readAttributes) == properties)
            let totals = [CurrencyTotal(currency: try CurrencyCode("JPY"), totalMinor: Self.int(&rng), orderCount: 2)]
            #expect(try Self.read(try Self.encoded(totals.map(StoredCurrencyTotal.init)), ColumnJSON.readTotals) == totals)
            let order = try Self.order(&rng)
            let details = try Self.read(try Self.encoded(StoredOrderDetails(order)), ColumnJSON.readOrderDetails)
            #expect(details == Self.details(of: order))
        }
    }

    // MARK: What JSON allows

    @Test
    func readsAnyKeyOrderWhiteSpaceEscapesAndUnknownKeys() throws {
        let text = """
             { "value" : "ada\\u00e9\\ud83d\\ude00\\/x" , "future" : {"a": [1, 2.5e3, -0.1, null, true, "}"]},
              "source":"", "kind":"email" }
            """
        #expect(try Self.read("[\(text)]", ColumnJSON.readIdentities) == [Identity(kind: .email, source: "", value: "adaé😀/x")])

        // A value before its type, and a decimal given as text.
        let properties = #"{"price": {"value": "12.50", "type": "decimal"}, "n": {"value": 3, "type": "int"}, "at": {"value": 5, "type": "timestamp"},"#
            + #" "s": {"value": "x", "type": "string"}, "l": {"value": ["a"], "type": "string_list"}, "b": {"value": false, "type": "bool"}}"#
        #expect(try Self.read(properties, ColumnJSON.readAttributes) == [
            "price": .decimal(Decimal(string: "12.5")!), "n": .int(3), "at": .timestamp(Timestamp(millisecondsSinceEpoch: 5)),
            "s": .string("x"), "l": .stringList(["a"]), "b": .bool(false),
        ])
        #expect(try Self.decoded([String: AttributeValue].self, properties) == (try Self.read(properties, ColumnJSON.readAttributes)))

        // Optional fields: absent or null.
        let profile = #"{"given_name":"A","family_name":"","birthday":null,"locale":"","time_zone":"","addresses":[],"tags":[],"lifecycle_stage":null,"attributes":{}}"#
        let read = try Self.read(profile, ColumnJSON.readProfile)
        #expect(read.birthday == nil && read.lifecycleStage == nil && read.givenName == "A")
        #expect(try Self.decoded(StoredProfile.self, profile).profile == read)
    }

    @Test(arguments: [
        ("", "unexpected end of text"),
        ("[", "unexpected end of text"),
        (#"[{"kind":"email","source":""}]"#, "missing key 'value'"),
        (#"[{"kind":"fax","source":"","value":"1"}]"#, "unknown IdentityKind 'fax'"),
        (#"[{"kind":"email","source":"","value":1}]"#, "expected a string"),
        (#"[{"kind":"email","source":"","value":"a"}] x"#, "unexpected text after the value"),
        (#"[{"kind":"email","source":"","value":"a"},]"#, "expected an object"),
        (#"[{"kind":"email","source":"","value":"a\q"}]"#, "bad escape in a string"),
        (#"[{"kind":"email","source":"","value":"\ud83d"}]"#, "unpaired surrogate"),
        ("[{\"kind\":\"email\",\"source\":\"\",\"value\":\"a\u{1}\"}]", "control character in a string"),
        (#"[{"kind":"email","source":"","value":"a"#, "unterminated string"),
        (#"[{"kind" "email"}]"#, "expected : after a key"),
    ])
    func malformedIdentitiesThrowStorageErrors(text: String, problem: String) {
        #expect {
            try Self.read(text, ColumnJSON.readIdentities)
        } throws: { error in
            guard case RapportError.storage(let message) = error else { return false }
            return message.contains(problem) && message.contains("malformed JSON in the database")
        }
    }

    @Test(arguments: [
        (#"{"x":{"type":"int","value":9223372036854775808}}"#, "integer out of range"),
        (#"{"x":{"type":"int","value":1.5}}"#, "expected an integer"),
        (#"{"x":{"type":"int","value":"1"}}"#, "expected an integer"),
        (#"{"x":{"type":"int"}}"#, "missing key 'value'"),
        (#"{"x":{"value":"1"}}"#, "missing key 'type'"),
        (#"{"x":{"value":"1","type":"int"}}"#, "holds a string"),
        (#"{"x":{"type":"decimal","value":"abc"}}"#, "bad decimal"),
        (#"{"x":{"type":"bool","value":null}}"#, "expected true or false"),
        (#"{"x":{"type":"colour","value":1}}"#, "unknown AttributeType 'colour'"),
    ])
    func malformedAttributesThrowStorageErrors(text: String, problem: String) {
        #expect {
            try Self.read(text, ColumnJSON.readAttributes)
        } throws: { error in
            guard case RapportError.storage(let message) = error else { return false }
            return message.contains(problem)
        }
    }

    @Test
    func extremeIntegersAndBadCurrenciesAreHandled() throws {
        let totals = #"[{"currency":"EUR","total_minor":-9223372036854775808,"order_count":9223372036854775807}]"#
        #expect(try Self.read(totals, ColumnJSON.readTotals) == [CurrencyTotal(currency: try CurrencyCode("EUR"), totalMinor: .min, orderCount: .max)])
        #expect(throws: RapportError.self) { try Self.read(#"[{"currency":"XXQ","total_minor":1,"order_count":1}]"#, ColumnJSON.readTotals) }
        #expect(throws: RapportError.self) { try Self.read(#"[{"currency":"EUR","total_minor":-9223372036854775809,"order_count":1}]"#, ColumnJSON.readTotals) }
    }
}
