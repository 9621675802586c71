import Foundation
import RapportCore

// The JSON of the hot columns (profiles, field times, stats totals, event identities and properties, order details),
// read and written by hand instead of through Foundation's `JSONDecoder`/`JSONEncoder`, which cost most of a
// customer 360's time and a large part of each ingested row's. The text is the same JSON the `Stored…` forms in
// StoredJSON.swift describe (the file format does not change): every value written here decodes through those
// `Codable` forms, and everything they wrote decodes here (ColumnJSONTests checks both ways). Keys this version does
// not know are skipped, as `JSONDecoder` skips them.

/// A cursor over one JSON text, reading exactly the values the caller expects.
struct JSONScanner {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Reads a whole text with `body`, which must consume one value; only white space may follow it.
    static func read<T>(_ bytes: UnsafeRawBufferPointer, _ body: (inout JSONScanner) throws -> T) throws -> T {
        var scanner = JSONScanner(bytes)
        let value = try body(&scanner)
        scanner.skipWhitespace()
        guard scanner.position == bytes.count else { throw scanner.failure("unexpected text after the value") }
        return value
    }

    func failure(_ problem: String) -> RapportError {
        .storage("malformed JSON in the database at byte \(position): \(problem)")
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    /// The next significant byte, not consumed.
    mutating func peek() throws(RapportError) -> UInt8 {
        skipWhitespace()
        guard position < bytes.count else { throw failure("unexpected end of text") }
        return bytes[position]
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(RapportError) {
        guard try peek() == byte else { throw failure("expected \(what)") }
        position += 1
    }

    private mutating func literal(_ text: StaticString) throws(RapportError) {
        let count = text.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw failure("unexpected end of text") }
        for index in 0..<count where bytes[position + index] != text.utf8Start[index] {
            throw failure("expected \(text)")
        }
        position += count
    }

    /// Consumes `null` and returns true, or returns false before any other value.
    mutating func readNull() throws(RapportError) -> Bool {
        guard try peek() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    mutating func readBool() throws(RapportError) -> Bool {
        switch try peek() {
        case UInt8(ascii: "t"):
            try literal("true")
            return true
        case UInt8(ascii: "f"):
            try literal("false")
            return false
        default:
            throw failure("expected true or false")
        }
    }

    /// An integer without fraction or exponent, as the encoders write `Int64`s.
    mutating func readInt64() throws(RapportError) -> Int64 {
        _ = try peek()
        var negative = false
        if bytes[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        let start = position
        var value: Int64 = 0
        while position < bytes.count, case let digit = bytes[position] &- UInt8(ascii: "0"), digit < 10 {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            // Accumulating negatively reaches Int64.min.
            let (next, overflow2) = negative ? times10.subtractingReportingOverflow(Int64(digit)) : times10.addingReportingOverflow(Int64(digit))
            guard !overflow1, !overflow2 else { throw failure("integer out of range") }
            value = next
            position += 1
        }
        guard position > start else { throw failure("expected an integer") }
        if position < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position]) {
            throw failure("expected an integer")
        }
        return value
    }

    mutating func readString() throws(RapportError) -> String {
        try expect(UInt8(ascii: "\""), "a string")
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw failure("control character in a string") }
            position += 1
        }
        guard position < bytes.count else { throw failure("unterminated string") }
        // An escape: continue in a buffer.
        var buffer = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: buffer, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { throw failure("unterminated string") }
                let escaped = bytes[position]
                position += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(escaped)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                            throw failure("unpaired surrogate in a string")
                        }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw failure("unpaired surrogate in a string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw failure("unpaired surrogate in a string") }
                    buffer.append(contentsOf: UTF8.encode(unicode)!)
                default:
                    throw failure("bad escape in a string")
                }
            default:
                guard byte >= 0x20 else { throw failure("control character in a string") }
                buffer.append(byte)
            }
        }
        throw failure("unterminated string")
    }

    private mutating func hex4() throws(RapportError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw failure("unterminated string") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("bad \\u escape in a string")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// Reads an array, calling `element` once per element with the scanner before it.
    mutating func readArray(_ element: (inout JSONScanner) throws -> Void) throws {
        try expect(UInt8(ascii: "["), "an array")
        if try peek() == UInt8(ascii: "]") {
            position += 1
            return
        }
        while true {
            try element(&self)
            switch try peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"):
                position += 1
                return
            default: throw failure("expected , or ] in an array")
            }
        }
    }

    /// Reads an object, calling `member` with each key and the scanner before its value; `member` must consume the
    /// value (``skipValue()`` for a key it does not know).
    mutating func readObject(_ member: (inout JSONScanner, String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"), "an object")
        if try peek() == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            let key = try readString()
            try expect(UInt8(ascii: ":"), ": after a key")
            try member(&self, key)
            switch try peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                return
            default: throw failure("expected , or } in an object")
            }
        }
    }

    /// Consumes one value of any kind.
    mutating func skipValue() throws {
        switch try peek() {
        case UInt8(ascii: "\""): _ = try readString()
        case UInt8(ascii: "{"): try readObject { scanner, _ in try scanner.skipValue() }
        case UInt8(ascii: "["): try readArray { try $0.skipValue() }
        case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try readBool()
        case UInt8(ascii: "n"): try literal("null")
        default:
            // A number: JSON's grammar, without building the value.
            let start = position
            while position < bytes.count, case let byte = bytes[position],
                byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte | 0x20 == UInt8(ascii: "e")
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            {
                position += 1
            }
            guard position > start else { throw failure("expected a value") }
        }
    }

    mutating func readStrings() throws -> [String] {
        var result: [String] = []
        try readArray { result.append(try $0.readString()) }
        return result
    }

    func missing(_ key: String) -> RapportError {
        failure("missing key '\(key)'")
    }

    mutating func readEnum<E: RawRepresentable<String>>(_ type: E.Type) throws -> E {
        let text = try readString()
        guard let value = E(rawValue: text) else { throw failure("unknown \(E.self) '\(text)'") }
        return value
    }

    mutating func readCurrency() throws -> CurrencyCode {
        let text = try readString()
        do {
            return try CurrencyCode(text)
        } catch {
            throw failure("unknown currency '\(text)'")
        }
    }
}

/// Builds one JSON text.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private var needsComma = false

    init(capacity: Int = 128) {
        bytes.reserveCapacity(capacity)
    }

    /// The text written.
    var text: String { String(decoding: bytes, as: UTF8.self) }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    mutating func object(_ body: (inout JSONWriter) -> Void) {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
        body(&self)
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    mutating func array(_ body: (inout JSONWriter) -> Void) {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
        body(&self)
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    mutating func key(_ name: String) {
        string(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    /// A string, escaped as `JSONEncoder` escapes it (quote, backslash, slash and control characters).
    mutating func string(_ text: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            var start = 0
            for index in utf8.indices {
                let byte = utf8[index]
                let escape: StaticString
                switch byte {
                case UInt8(ascii: "\""): escape = "\\\""
                case UInt8(ascii: "\\"): escape = "\\\\"
                case UInt8(ascii: "/"): escape = "\\/"
                case 0x0A: escape = "\\n"
                case 0x0D: escape = "\\r"
                case 0x09: escape = "\\t"
                case 0x08: escape = "\\b"
                case 0x0C: escape = "\\f"
                case 0..<0x20: escape = ""
                default: continue
                }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                if escape.utf8CodeUnitCount > 0 {
                    bytes.append(contentsOf: UnsafeBufferPointer(start: escape.utf8Start, count: escape.utf8CodeUnitCount))
                } else {
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: Array("\\u00".utf8))
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0xF)])
                }
                start = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
        }
        bytes.append(UInt8(ascii: "\""))
        needsComma = true
    }

    mutating func int(_ value: Int64) {
        separate()
        // Digits from the lowest, then reversed in place; the magnitude covers Int64.min.
        let start = bytes.count
        var magnitude = value.magnitude
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        bytes[start...].reverse()
        needsComma = true
    }

    mutating func bool(_ value: Bool) {
        separate()
        let text: StaticString = value ? "true" : "false"
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        needsComma = true
    }

    mutating func strings(_ values: [String]) {
        array { writer in
            for value in values { writer.string(value) }
        }
    }
}

// MARK: The hot columns

/// The readers and writers of the hot columns' JSON, one pair per column shape.
enum ColumnJSON {
    // `[{"kind", "source", "value"}]`: event identities, order identities.

    static func readIdentity(_ scanner: inout JSONScanner) throws -> Identity {
        var kind: IdentityKind?
        var source: String?
        var value: String?
        try scanner.readObject { scanner, key in
            switch key {
            case "kind": kind = try scanner.readEnum(IdentityKind.self)
            case "source": source = try scanner.readString()
            case "value": value = try scanner.readString()
            default: try scanner.skipValue()
            }
        }
        guard let kind else { throw scanner.missing("kind") }
        guard let source else { throw scanner.missing("source") }
        guard let value else { throw scanner.missing("value") }
        return Identity(kind: kind, source: source, value: value)
    }

    static func readIdentities(_ scanner: inout JSONScanner) throws -> [Identity] {
        var result: [Identity] = []
        try scanner.readArray { result.append(try readIdentity(&$0)) }
        return result
    }

    static func write(_ identities: [Identity], to writer: inout JSONWriter) {
        writer.array { writer in
            for identity in identities {
                writer.object { writer in
                    writer.key("kind")
                    writer.string(identity.kind.rawValue)
                    writer.key("source")
                    writer.string(identity.source)
                    writer.key("value")
                    writer.string(identity.value)
                }
            }
        }
    }

    // `{"name": {"type", "value"}}`: event properties, profile attributes (`AttributeValue`'s own coding).

    static func readAttribute(_ scanner: inout JSONScanner) throws -> AttributeValue {
        var type: AttributeType?
        var value: AttributeValue?
        var pendingText: String?
        // The value's form depends on the type, which JSONEncoder writes first but JSON does not promise: read what
        // the value is and check it against the type at the end.
        try scanner.readObject { scanner, key in
            switch key {
            case "type": type = try scanner.readEnum(AttributeType.self)
            case "value":
                guard let type else {
                    value = try readUntypedAttribute(&scanner, pendingText: &pendingText)
                    return
                }
                value = try readAttributeValue(&scanner, type: type)
            default: try scanner.skipValue()
            }
        }
        guard let type else { throw scanner.missing("type") }
        if let pendingText {
            value = type == .decimal ? try decimal(pendingText, &scanner) : .string(pendingText)
        }
        guard let value else { throw scanner.missing("value") }
        guard value.type == type || (type == .timestamp && value.type == .int) else {
            throw scanner.failure("an attribute of type \(type.rawValue) holds a \(value.type.rawValue)")
        }
        if type == .timestamp, case .int(let milliseconds) = value {
            return .timestamp(Timestamp(millisecondsSinceEpoch: milliseconds))
        }
        return value
    }

    private static func readAttributeValue(_ scanner: inout JSONScanner, type: AttributeType) throws -> AttributeValue {
        switch type {
        case .string: return .string(try scanner.readString())
        case .int: return .int(try scanner.readInt64())
        case .decimal: return try decimal(try scanner.readString(), &scanner)
        case .bool: return .bool(try scanner.readBool())
        case .timestamp: return .timestamp(Timestamp(millisecondsSinceEpoch: try scanner.readInt64()))
        case .stringList: return .stringList(try scanner.readStrings())
        }
    }

    /// A value met before its type: a string (kept as text until the type says what it is), an integer, a bool or
    /// a list.
    private static func readUntypedAttribute(_ scanner: inout JSONScanner, pendingText: inout String?) throws -> AttributeValue? {
        switch try scanner.peek() {
        case UInt8(ascii: "\""):
            pendingText = try scanner.readString()
            return nil
        case UInt8(ascii: "["): return .stringList(try scanner.readStrings())
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool(try scanner.readBool())
        default: return .int(try scanner.readInt64())
        }
    }

    private static func decimal(_ text: String, _ scanner: inout JSONScanner) throws -> AttributeValue {
        guard let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else {
            throw scanner.failure("bad decimal \(text)")
        }
        return .decimal(value)
    }

    static func write(_ value: AttributeValue, to writer: inout JSONWriter) {
        writer.object { writer in
            writer.key("type")
            writer.string(value.type.rawValue)
            writer.key("value")
            switch value {
            case .string(let text): writer.string(text)
            case .int(let number): writer.int(number)
            case .decimal(let decimal): writer.string(decimal.description)
            case .bool(let flag): writer.bool(flag)
            case .timestamp(let time): writer.int(time.millisecondsSinceEpoch)
            case .stringList(let list): writer.strings(list)
            }
        }
    }

    static func readAttributes(_ scanner: inout JSONScanner) throws -> [String: AttributeValue] {
        var result: [String: AttributeValue] = [:]
        try scanner.readObject { scanner, key in result[key] = try readAttribute(&scanner) }
        return result
    }

    /// Keys sorted, so equal values write equal text.
    static func write(_ attributes: [String: AttributeValue], to writer: inout JSONWriter) {
        writer.object { writer in
            for key in attributes.keys.sorted() {
                writer.key(key)
                write(attributes[key]!, to: &writer)
            }
        }
    }

    // `{"name": milliseconds}`: a customer's field times.

    static func readTimes(_ scanner: inout JSONScanner) throws -> [String: Timestamp] {
        var result: [String: Timestamp] = [:]
        try scanner.readObject { scanner, key in result[key] = Timestamp(millisecondsSinceEpoch: try scanner.readInt64()) }
        return result
    }

    static func write(_ times: [String: Timestamp], to writer: inout JSONWriter) {
        writer.object { writer in
            for key in times.keys.sorted() {
                writer.key(key)
                writer.int(times[key]!.millisecondsSinceEpoch)
            }
        }
    }

    // `StoredProfile`.

    static func readProfile(_ scanner: inout JSONScanner) throws -> CustomerProfile {
        var givenName: String?
        var familyName: String?
        var birthday: LocalDate?
        var locale: String?
        var timeZone: String?
        var addresses: [PostalAddress]?
        var tags: [String]?
        var lifecycleStage: LifecycleStage?
        var attributes: [String: AttributeValue]?
        try scanner.readObject { scanner, key in
            switch key {
            case "given_name": givenName = try scanner.readString()
            case "family_name": familyName = try scanner.readString()
            case "birthday": birthday = try scanner.readNull() ? nil : try readDate(&scanner)
            case "locale": locale = try scanner.readString()
            case "time_zone": timeZone = try scanner.readString()
            case "addresses":
                var list: [PostalAddress] = []
                try scanner.readArray { list.append(try readAddress(&$0)) }
                addresses = list
            case "tags": tags = try scanner.readStrings()
            case "lifecycle_stage": lifecycleStage = try scanner.readNull() ? nil : try scanner.readEnum(LifecycleStage.self)
            case "attributes": attributes = try readAttributes(&scanner)
            default: try scanner.skipValue()
            }
        }
        guard let givenName else { throw scanner.missing("given_name") }
        guard let familyName else { throw scanner.missing("family_name") }
        guard let locale else { throw scanner.missing("locale") }
        guard let timeZone else { throw scanner.missing("time_zone") }
        guard let addresses else { throw scanner.missing("addresses") }
        guard let tags else { throw scanner.missing("tags") }
        guard let attributes else { throw scanner.missing("attributes") }
        return CustomerProfile(
            givenName: givenName, familyName: familyName, birthday: birthday, locale: locale, timeZone: timeZone,
            addresses: addresses, tags: tags, lifecycleStage: lifecycleStage, attributes: attributes
        )
    }

    private static func readDate(_ scanner: inout JSONScanner) throws -> LocalDate {
        var year: Int?
        var month: Int?
        var day: Int?
        try scanner.readObject { scanner, key in
            switch key {
            case "year": year = try scanner.readNull() ? nil : Int(try scanner.readInt64())
            case "month": month = Int(try scanner.readInt64())
            case "day": day = Int(try scanner.readInt64())
            default: try scanner.skipValue()
            }
        }
        guard let month else { throw scanner.missing("month") }
        guard let day else { throw scanner.missing("day") }
        return LocalDate(year: year, month: month, day: day)
    }

    private static func readAddress(_ scanner: inout JSONScanner) throws -> PostalAddress {
        var fields: [String?] = Array(repeating: nil, count: 7)
        let names = ["label", "line1", "line2", "city", "region", "postal_code", "country"]
        try scanner.readObject { scanner, key in
            if let index = names.firstIndex(of: key) {
                fields[index] = try scanner.readString()
            } else {
                try scanner.skipValue()
            }
        }
        for (index, name) in names.enumerated() where fields[index] == nil { throw scanner.missing(name) }
        return PostalAddress(
            label: fields[0]!, line1: fields[1]!, line2: fields[2]!, city: fields[3]!, region: fields[4]!, postalCode: fields[5]!, country: fields[6]!
        )
    }

    static func write(_ profile: CustomerProfile, to writer: inout JSONWriter) {
        writer.object { writer in
            writer.key("given_name")
            writer.string(profile.givenName)
            writer.key("family_name")
            writer.string(profile.familyName)
            if let birthday = profile.birthday {
                writer.key("birthday")
                writer.object { writer in
                    if let year = birthday.year {
                        writer.key("year")
                        writer.int(Int64(year))
                    }
                    writer.key("month")
                    writer.int(Int64(birthday.month))
                    writer.key("day")
                    writer.int(Int64(birthday.day))
                }
            }
            writer.key("locale")
            writer.string(profile.locale)
            writer.key("time_zone")
            writer.string(profile.timeZone)
            writer.key("addresses")
            writer.array { writer in
                for address in profile.addresses {
                    writer.object { writer in
                        for (name, value) in [
                            ("label", address.label), ("line1", address.line1), ("line2", address.line2), ("city", address.city),
                            ("region", address.region), ("postal_code", address.postalCode), ("country", address.country),
                        ] {
                            writer.key(name)
                            writer.string(value)
                        }
                    }
                }
            }
            writer.key("tags")
            writer.strings(profile.tags)
            if let stage = profile.lifecycleStage {
                writer.key("lifecycle_stage")
                writer.string(stage.rawValue)
            }
            writer.key("attributes")
            write(profile.attributes, to: &writer)
        }
    }

    // `[StoredCurrencyTotal]`: a customer's spend per currency.

    static func readTotals(_ scanner: inout JSONScanner) throws -> [CurrencyTotal] {
        var result: [CurrencyTotal] = []
        try scanner.readArray { scanner in
            var currency: CurrencyCode?
            var total: Int64?
            var count: Int64?
            try scanner.readObject { scanner, key in
                switch key {
                case "currency": currency = try scanner.readCurrency()
                case "total_minor": total = try scanner.readInt64()
                case "order_count": count = try scanner.readInt64()
                default: try scanner.skipValue()
                }
            }
            guard let currency else { throw scanner.missing("currency") }
            guard let total else { throw scanner.missing("total_minor") }
            guard let count else { throw scanner.missing("order_count") }
            result.append(CurrencyTotal(currency: currency, totalMinor: total, orderCount: count))
        }
        return result
    }

    static func write(_ totals: [CurrencyTotal], to writer: inout JSONWriter) {
        writer.array { writer in
            for total in totals {
                writer.object { writer in
                    writer.key("currency")
                    writer.string(total.currency.code)
                    writer.key("total_minor")
                    writer.int(total.totalMinor)
                    writer.key("order_count")
                    writer.int(total.orderCount)
                }
            }
        }
    }

    // `StoredOrderDetails`.

    /// The parts of an order kept in its `details` column.
    struct OrderDetails: Equatable {
        var identities: [Identity]
        var lines: [OrderLine]
        var subtotal: Money
        var discount: Money
        var shipping: Money
        var tax: Money
        var total: Money
        var statusHistory: [OrderStatusChange]
    }

    static func readOrderDetails(_ scanner: inout JSONScanner) throws -> OrderDetails {
        var identities: [Identity]?
        var lines: [OrderLine]?
        var amounts: [Money?] = Array(repeating: nil, count: 5)
        var history: [OrderStatusChange]?
        try scanner.readObject { scanner, key in
            switch key {
            case "identities": identities = try readIdentities(&scanner)
            case "lines":
                var list: [OrderLine] = []
                try scanner.readArray { list.append(try readLine(&$0)) }
                lines = list
            case "status_history":
                var list: [OrderStatusChange] = []
                try scanner.readArray { list.append(try readStatusChange(&$0)) }
                history = list
            case "subtotal": amounts[0] = try readMoney(&scanner)
            case "discount": amounts[1] = try readMoney(&scanner)
            case "shipping": amounts[2] = try readMoney(&scanner)
            case "tax": amounts[3] = try readMoney(&scanner)
            case "total": amounts[4] = try readMoney(&scanner)
            default: try scanner.skipValue()
            }
        }
        guard let identities else { throw scanner.missing("identities") }
        guard let lines else { throw scanner.missing("lines") }
        for (index, name) in ["subtotal", "discount", "shipping", "tax", "total"].enumerated() where amounts[index] == nil {
            throw scanner.missing(name)
        }
        guard let history else { throw scanner.missing("status_history") }
        return OrderDetails(
            identities: identities, lines: lines, subtotal: amounts[0]!, discount: amounts[1]!, shipping: amounts[2]!, tax: amounts[3]!,
            total: amounts[4]!, statusHistory: history
        )
    }

    private static func readMoney(_ scanner: inout JSONScanner) throws -> Money {
        var minor: Int64?
        var currency: CurrencyCode?
        try scanner.readObject { scanner, key in
            switch key {
            case "minor_units": minor = try scanner.readInt64()
            case "currency": currency = try scanner.readCurrency()
            default: try scanner.skipValue()
            }
        }
        guard let minor else { throw scanner.missing("minor_units") }
        guard let currency else { throw scanner.missing("currency") }
        return Money(minorUnits: minor, currency: currency)
    }

    private static func readLine(_ scanner: inout JSONScanner) throws -> OrderLine {
        var sku: String?
        var name: String?
        var quantity: Int64?
        var price: Int64?
        try scanner.readObject { scanner, key in
            switch key {
            case "sku": sku = try scanner.readString()
            case "name": name = try scanner.readString()
            case "quantity": quantity = try scanner.readInt64()
            case "unit_price_minor": price = try scanner.readInt64()
            default: try scanner.skipValue()
            }
        }
        guard let sku else { throw scanner.missing("sku") }
        guard let name else { throw scanner.missing("name") }
        guard let quantity else { throw scanner.missing("quantity") }
        guard let price else { throw scanner.missing("unit_price_minor") }
        return OrderLine(sku: sku, name: name, quantity: quantity, unitPriceMinor: price)
    }

    private static func readStatusChange(_ scanner: inout JSONScanner) throws -> OrderStatusChange {
        var status: OrderStatus?
        var at: Int64?
        var estimated = false  // absent when false, and from what versions before it wrote
        try scanner.readObject { scanner, key in
            switch key {
            case "status": status = try scanner.readEnum(OrderStatus.self)
            case "at": at = try scanner.readInt64()
            case "estimated": estimated = try scanner.readBool()
            default: try scanner.skipValue()
            }
        }
        guard let status else { throw scanner.missing("status") }
        guard let at else { throw scanner.missing("at") }
        return OrderStatusChange(status: status, at: Timestamp(millisecondsSinceEpoch: at), estimated: estimated)
    }

    static func write(_ order: Order, to writer: inout JSONWriter) {
        writer.object { writer in
            writer.key("identities")
            write(order.identities, to: &writer)
            writer.key("lines")
            writer.array { writer in
                for line in order.lines {
                    writer.object { writer in
                        writer.key("sku")
                        writer.string(line.sku)
                        writer.key("name")
                        writer.string(line.name)
                        writer.key("quantity")
                        writer.int(line.quantity)
                        writer.key("unit_price_minor")
                        writer.int(line.unitPriceMinor)
                    }
                }
            }
            for (name, money) in [("subtotal", order.subtotal), ("discount", order.discount), ("shipping", order.shipping), ("tax", order.tax), ("total", order.total)] {
                writer.key(name)
                writer.object { writer in
                    writer.key("minor_units")
                    writer.int(money.minorUnits)
                    writer.key("currency")
                    writer.string(money.currency.code)
                }
            }
            writer.key("status_history")
            writer.array { writer in
                for change in order.statusHistory {
                    writer.object { writer in
                        writer.key("status")
                        writer.string(change.status.rawValue)
                        writer.key("at")
                        writer.int(change.at.millisecondsSinceEpoch)
                        if change.estimated {
                            writer.key("estimated")
                            writer.bool(true)
                        }
                    }
                }
            }
        }
    }

    /// The text `write` builds into a fresh writer.
    static func text(capacity: Int = 128, _ body: (inout JSONWriter) -> Void) -> String {
        var writer = JSONWriter(capacity: capacity)
        body(&writer)
        return writer.text
    }

    static func text(_ profile: CustomerProfile) -> String { text(capacity: 256) { write(profile, to: &$0) } }
    static func text(_ times: [String: Timestamp]) -> String { text { write(times, to: &$0) } }
    static func text(_ totals: [CurrencyTotal]) -> String { text { write(totals, to: &$0) } }
    static func text(_ identities: [Identity]) -> String { text { write(identities, to: &$0) } }
    static func text(_ attributes: [String: AttributeValue]) -> String { text { write(attributes, to: &$0) } }
    static func text(_ order: Order) -> String { text(capacity: 512) { write(order, to: &$0) } }
    static func text(_ strings: [String]) -> String { text { $0.strings(strings) } }
}
