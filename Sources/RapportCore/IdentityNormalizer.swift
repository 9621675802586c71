import Foundation

/// Turns raw identifiers into normalized ``Identity`` values, or explains why it cannot.
///
/// ```swift
/// let normalizer = IdentityNormalizer(defaultRegion: "DE")
/// try normalizer.phone("030 1234567")        // "+49301234567"
/// try normalizer.email("  Ada@Example.COM ") // "ada@example.com"
/// ```
public struct IdentityNormalizer: Sendable {
    /// The region whose national phone format applies when a number has no international prefix.
    public var defaultRegion: PhoneRegion

    /// A normalizer whose national phone numbers are read as `defaultRegion` (ISO 3166 alpha-2, e.g. `US`).
    public init(defaultRegion: String = "US") {
        self.defaultRegion = PhoneRegion.byCode[defaultRegion.uppercased()] ?? PhoneRegion.byCode["US"]!
    }

    /// A normalizer for an explicit region.
    public init(region: PhoneRegion) {
        self.defaultRegion = region
    }

    /// Normalizes `value` for `kind`; `field` names the input in errors.
    public func normalize(kind: IdentityKind, source: String = "", value: String, field: String = "value") throws(RapportError) -> Identity {
        switch kind {
        case .email:
            return Identity(kind: .email, value: try email(value, field: field))
        case .phone:
            return Identity(kind: .phone, value: try phone(value, field: field))
        case .memberCard:
            // Spaces and dashes of any kind (`1234 5678`, `1234–5678` from a spreadsheet) only group the digits.
            var kept = String.UnicodeScalarView()
            kept.append(contentsOf: value.unicodeScalars.filter { !Self.isSeparator($0) })
            let compact = String(kept).uppercased().canonical
            try Self.checkToken(compact, field: field, what: "member card number")
            return Identity(kind: .memberCard, value: compact)
        case .externalID:
            let cleanSource = source.trimmingCharacters(in: .whitespaces).lowercased()
            guard !cleanSource.isEmpty else { throw .invalid(field.replacingLastComponent(with: "source"), "an external id needs its source (for example 'shopify')") }
            guard cleanSource.utf8.count <= 64, cleanSource.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 45 || $0 == 46 }) else {
                throw .invalid(field.replacingLastComponent(with: "source"), "'\(source)' may hold only letters, digits, '_', '-' and '.'")
            }
            return Identity(kind: .externalID, source: cleanSource, value: try Self.token(value, field: field, what: "external id"))
        case .anonymousID:
            return Identity(kind: .anonymousID, value: try Self.token(value, field: field, what: "anonymous id"))
        }
    }

    /// A trimmed, lower-case e-mail address, or an error saying what is wrong with it.
    public func email(_ raw: String, field: String = "email") throws(RapportError) -> String {
        if let normalized = Self.asciiEmail(raw) { return normalized }
        let text = raw.trimmingCharacters(in: Self.edges).lowercased().canonical
        guard !text.isEmpty else { throw .invalid(field, "e-mail address is empty") }
        guard text.utf8.count <= 254 else { throw .invalid(field, "e-mail address is longer than 254 characters") }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .invalid(field, "'\(raw)' is not an e-mail address (it needs exactly one '@')") }
        let local = parts[0]
        let domain = parts[1]
        guard !local.isEmpty, local.utf8.count <= 64 else { throw .invalid(field, "'\(raw)' has an empty or too long part before '@'") }
        guard !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else {
            throw .invalid(field, "'\(raw)' has a misplaced '.' before '@'")
        }
        // Letters of any script, not spaces or invisible characters of any kind (a zero-width space or a no-break
        // space inside would make a second address for one mailbox).
        guard local.allSatisfy({ Self.emailLocalCharacters.contains($0) || (!$0.isASCII && !$0.isWhitespace && !Self.isInvisible($0) && !Self.isUnusable($0)) })
        else {
            throw .invalid(field, "'\(raw)' has a character not allowed in an e-mail address")
        }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { throw .invalid(field, "'\(raw)' has no domain with a dot after '@'") }
        for label in labels {
            guard !label.isEmpty, label.utf8.count <= 63, !label.hasPrefix("-"), !label.hasSuffix("-"),
                label.allSatisfy({ ($0.isLetter || $0.isNumber || $0 == "-") && !Self.isInvisible($0) })
            else { throw .invalid(field, "'\(raw)' has an invalid domain '\(domain)'") }
        }
        guard let top = labels.last, top.count >= 2, top.allSatisfy({ $0.isLetter || $0 == "-" || $0.isNumber }),
            !top.allSatisfy(\.isNumber)
        else { throw .invalid(field, "'\(raw)' has an invalid top-level domain") }
        return text
    }

    /// The normalized form of an all-ASCII address that the full check below would accept, computed on bytes;
    /// nil for anything else (which the full check then accepts or explains). Ingest calls this for most records.
    static func asciiEmail(_ raw: String) -> String? {
        var bytes = Array(raw.utf8)
        func isSpace(_ byte: UInt8) -> Bool { byte == 32 || (byte >= 9 && byte <= 13) }
        while let last = bytes.last, isSpace(last) { bytes.removeLast() }
        let start = bytes.firstIndex { !isSpace($0) } ?? bytes.count
        if start > 0 { bytes.removeFirst(start) }
        guard !bytes.isEmpty, bytes.count <= 254 else { return nil }
        var at = -1
        for index in bytes.indices {
            let byte = bytes[index]
            guard byte < 128 else { return nil }
            if byte >= 65 && byte <= 90 { bytes[index] = byte + 32 }
            if byte == 64 {
                guard at < 0 else { return nil }
                at = index
            }
        }
        guard at > 0, at <= 64, at < bytes.count - 1 else { return nil }
        // The part before '@': allowed characters, no dot at either end, no two dots in a row.
        guard bytes[0] != 46, bytes[at - 1] != 46 else { return nil }
        for index in 0..<at {
            let byte = bytes[index]
            guard emailLocalBytes[Int(byte)] else { return nil }
            if byte == 46, index > 0, bytes[index - 1] == 46 { return nil }
        }
        // The domain: two labels or more of letters, digits and inner '-'; a top-level label of 2+ not all digits.
        var labelStart = at + 1
        var labels = 0
        var index = labelStart
        while index <= bytes.count {
            if index == bytes.count || bytes[index] == 46 {
                let length = index - labelStart
                guard length >= 1, length <= 63, bytes[labelStart] != 45, bytes[index - 1] != 45 else { return nil }
                labels += 1
                if index == bytes.count {
                    guard labels >= 2, length >= 2, !bytes[labelStart..<index].allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
                }
                labelStart = index + 1
            } else {
                let byte = bytes[index]
                guard (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57) || byte == 45 else { return nil }
            }
            index += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let emailLocalBytes: [Bool] = {
        var table = [Bool](repeating: false, count: 128)
        for byte in "abcdefghijklmnopqrstuvwxyz0123456789.!#$%&'*+/=?^_`{|}~-".utf8 { table[Int(byte)] = true }
        return table
    }()

    private static let emailLocalCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789.!#$%&'*+/=?^_`{|}~-")

    /// An E.164 phone number (`+14155550123`) from an international or a national format of the default region.
    public func phone(_ raw: String, field: String = "phone") throws(RapportError) -> String {
        var text = raw.trimmingCharacters(in: Self.edges)
        guard !text.isEmpty else { throw .invalid(field, "phone number is empty") }
        // "+44 (0)20 ..." writes the national trunk prefix in brackets: drop it (given back below where 0 is not a
        // trunk prefix and a number may start with it: "+39 (0)6 ..." is Rome's 06).
        let bracketedZero = text.contains("(0)") || text.contains("（0）")
        text = text.replacingOccurrences(of: "(0)", with: "").replacingOccurrences(of: "（0）", with: "")
        var international = false
        var digits = ""
        // Code point by code point: a zero-width joiner is part of the character before it, which may be a digit.
        for scalar in text.unicodeScalars {
            if scalar.properties.numericType == .decimal, let digit = scalar.properties.numericValue {
                digits.append(Character(String(Int(digit))))  // ASCII, or full-width and other scripts' digits
            } else if scalar == "+" || scalar == "＋" {
                // Before the first digit only: "+44 20 ...", "(+44) 20 ...".
                guard digits.isEmpty, !international else {
                    throw .invalid(field, "'\(raw)' has a '+' that is not before the country code")
                }
                international = true
            } else if Self.isSeparator(scalar) || "./()（）".unicodeScalars.contains(scalar) {
                continue
            } else {
                throw .invalid(field, "'\(raw)' has a character that is not part of a phone number: '\(Character(scalar))'")
            }
        }
        guard !digits.isEmpty else { throw .invalid(field, "'\(raw)' has no digits") }
        if !international {
            // The region's own exit code first: Australia's 0011 also starts with 00.
            if let exit = defaultRegion.internationalPrefix, digits.hasPrefix(exit) {
                international = true
                digits.removeFirst(exit.count)
            } else if digits.hasPrefix("00") {
                international = true
                digits.removeFirst(2)
            }
        }
        if international {
            guard digits.count <= 15 else {
                throw .invalid(field, "'\(raw)' has \(digits.count) digits; an international number has 8 to 15")
            }
            guard !digits.hasPrefix("0") else { throw .invalid(field, "'\(raw)' has no country code (none starts with 0)") }
            if let region = PhoneRegion.matching(internationalDigits: digits) {
                // A region Rapport knows: its own lengths decide (what this returns normalizes to itself again).
                var national = String(digits.dropFirst(region.callingCode.count))
                if bracketedZero, region.trunkPrefix != "0", region.nationalLengths.contains(national.count + 1), region.acceptsNational("0" + national) {
                    national = "0" + national
                    digits = region.callingCode + national
                }
                // "+49 030 ..." keeps the national trunk prefix after the country code; dialled, it is dropped.
                if region.trunkPrefix == "0", national.hasPrefix("0") {
                    national.removeFirst()
                    guard !national.hasPrefix("0") else {
                        throw .invalid(field, "'\(raw)' is not a valid \(region.code) number (after +\(region.callingCode) it cannot start with 00)")
                    }
                    digits = region.callingCode + national
                }
                guard region.nationalLengths.contains(national.count) else {
                    throw .invalid(field, "'\(raw)' is not a valid \(region.code) number (\(national.count) digits after +\(region.callingCode))")
                }
                guard region.acceptsNational(national) else {
                    throw .invalid(field, "'\(raw)' is not a valid \(region.code) number (an area code does not start with \(national.first!))")
                }
            } else {
                guard digits.count >= 8 else {
                    throw .invalid(field, "'\(raw)' has \(digits.count) digits; an international number has 8 to 15")
                }
            }
            return "+" + digits
        }
        var national = digits
        if let trunk = defaultRegion.trunkPrefix, national.hasPrefix(trunk),
            defaultRegion.nationalLengths.contains(national.count - trunk.count)
        {
            national.removeFirst(trunk.count)
        }
        // Where the trunk prefix is 0 or 1, no national number starts with it (a digit was dropped or doubled).
        if let trunk = defaultRegion.trunkPrefix, trunk == "0" || trunk == "1", national.hasPrefix(trunk) {
            throw .invalid(field, "'\(raw)' is not a valid \(defaultRegion.code) number; write it with its country code (+...)")
        }
        guard defaultRegion.nationalLengths.contains(national.count), defaultRegion.acceptsNational(national) else {
            throw .invalid(field, "'\(raw)' is not a valid \(defaultRegion.code) number; write it with its country code (+...)")
        }
        let e164 = defaultRegion.callingCode + national
        guard e164.count <= 15 else { throw .invalid(field, "'\(raw)' is longer than 15 digits") }
        return "+" + e164
    }

    /// How versions before 2026-12 stored `identity` when it was written with the trunk prefix after the country
    /// code (`+49 030 1234567` was kept as `+490301234567`; it is `+49301234567` now), or with a number's own leading
    /// 0 in brackets where 0 is no trunk prefix (`+39 (0)6 1234 5678` was kept as `+39612345678`), if it could have been.
    ///
    /// Stored identities keep the spelling they were stored with, so lookups of a phone number also try this one.
    package static func legacySpelling(of identity: Identity) -> Identity? {
        guard identity.kind == .phone, identity.value.hasPrefix("+") else { return nil }
        let digits = identity.value.dropFirst()
        guard digits.count < 15, let region = PhoneRegion.matching(internationalDigits: String(digits)) else { return nil }
        guard region.trunkPrefix == "0" else {
            let national = digits.dropFirst(region.callingCode.count)
            guard national.hasPrefix("0"), region.nationalLengths.contains(national.count - 1) else { return nil }
            return Identity(kind: .phone, value: "+" + region.callingCode + national.dropFirst())
        }
        let national = digits.dropFirst(region.callingCode.count)
        guard !national.hasPrefix("0"), region.nationalLengths.contains(national.count + 1) else { return nil }
        return Identity(kind: .phone, value: "+" + region.callingCode + "0" + national)
    }

    /// A stored phone as it is dialled today: one stored in the older spelling (`+490301234567`) without its trunk 0
    /// (`+49301234567`); any other identity as it is.
    package static func dialable(_ identity: Identity) -> Identity {
        guard identity.kind == .phone, let region = PhoneRegion.matching(internationalDigits: String(identity.value.dropFirst())) else { return identity }
        let prefix = "+" + region.callingCode + "0"
        guard identity.value.hasPrefix(prefix) else { return identity }
        let current = Identity(kind: .phone, value: "+" + region.callingCode + identity.value.dropFirst(prefix.count))
        return legacySpelling(of: current) == identity ? current : identity
    }

    /// `value` without the spaces around it, checked as a token.
    private static func token(_ value: String, field: String, what: String) throws(RapportError) -> String {
        // Printable ASCII with nothing to trim (most ids) is a token as it is.
        let utf8 = value.utf8
        if let first = utf8.first, let last = utf8.last, first != 32, last != 32, utf8.count <= 256, utf8.allSatisfy({ $0 >= 32 && $0 < 127 }) {
            return value
        }
        let trimmed = value.trimmingCharacters(in: Self.edges).canonical
        try checkToken(trimmed, field: field, what: what)
        return trimmed
    }

    private static func checkToken(_ value: String, field: String, what: String) throws(RapportError) {
        guard !value.isEmpty else { throw .invalid(field, "\(what) is empty") }
        guard value.utf8.count <= 256 else { throw .invalid(field, "\(what) is longer than 256 bytes") }
        guard !value.contains(where: { $0.isNewline || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) else {
            throw .invalid(field, "\(what) contains a control character")
        }
        guard !value.contains(where: isInvisible) else { throw .invalid(field, "\(what) contains an invisible character (such as a zero-width space)") }
    }

    /// Spaces, line breaks and the invisible characters copied text brings along (a byte order mark, zero-width
    /// spaces, direction marks) around a value: trimmed.
    private static let edges = CharacterSet.whitespacesAndNewlines.union(.controlCharacters)  // control: Cc and Cf

    /// A character that shows nothing: a format character (zero-width space, joiner, byte order mark, direction mark).
    static func isInvisible(_ character: Character) -> Bool {
        character.unicodeScalars.contains { $0.properties.generalCategory == .format }
    }

    /// Whether a character holds a control, private-use, surrogate or unassigned code point, or the replacement
    /// character: nothing a person types in an address.
    static func isUnusable(_ character: Character) -> Bool {
        character.unicodeScalars.contains { scalar in
            switch scalar.properties.generalCategory {
            case .control, .privateUse, .surrogate, .unassigned: true
            default: scalar == "\u{FFFD}"
            }
        }
    }

    /// What only groups the digits of a phone or card number: a space, a dash of any kind (`-`, `–`, `‑`, `−`,
    /// `－`) or an invisible character.
    static func isSeparator(_ scalar: Unicode.Scalar) -> Bool {
        let category = scalar.properties.generalCategory
        return scalar.properties.isWhitespace || category == .dashPunctuation || category == .format || scalar == "\u{2212}"
    }
}

/// A phone numbering region: its calling code, trunk prefix and the lengths of its national numbers.
public struct PhoneRegion: Hashable, Sendable {
    /// ISO 3166 alpha-2 code (`DE`).
    public var code: String
    /// The country calling code without `+` (`49`).
    public var callingCode: String
    /// The digit dialled before a national number inside the country (`0`), if any.
    public var trunkPrefix: String?
    /// The lengths a national significant number may have.
    public var nationalLengths: ClosedRange<Int>
    /// The international call prefix when it is not `00` (`011` in North America).
    public var internationalPrefix: String?

    public init(code: String, callingCode: String, trunkPrefix: String?, nationalLengths: ClosedRange<Int>, internationalPrefix: String? = nil) {
        self.code = code
        self.callingCode = callingCode
        self.trunkPrefix = trunkPrefix
        self.nationalLengths = nationalLengths
        self.internationalPrefix = internationalPrefix
    }

    /// The regions Rapport knows the national formats of.
    public static let all: [PhoneRegion] = [
        PhoneRegion(code: "US", callingCode: "1", trunkPrefix: "1", nationalLengths: 10...10, internationalPrefix: "011"),
        PhoneRegion(code: "CA", callingCode: "1", trunkPrefix: "1", nationalLengths: 10...10, internationalPrefix: "011"),
        PhoneRegion(code: "GB", callingCode: "44", trunkPrefix: "0", nationalLengths: 9...10),
        PhoneRegion(code: "DE", callingCode: "49", trunkPrefix: "0", nationalLengths: 6...13),
        PhoneRegion(code: "FR", callingCode: "33", trunkPrefix: "0", nationalLengths: 9...9),
        PhoneRegion(code: "ES", callingCode: "34", trunkPrefix: nil, nationalLengths: 9...9),
        PhoneRegion(code: "IT", callingCode: "39", trunkPrefix: nil, nationalLengths: 6...11),
        PhoneRegion(code: "NL", callingCode: "31", trunkPrefix: "0", nationalLengths: 9...9),
        PhoneRegion(code: "BE", callingCode: "32", trunkPrefix: "0", nationalLengths: 8...9),
        PhoneRegion(code: "CH", callingCode: "41", trunkPrefix: "0", nationalLengths: 9...9),
        PhoneRegion(code: "AT", callingCode: "43", trunkPrefix: "0", nationalLengths: 4...13),
        PhoneRegion(code: "SE", callingCode: "46", trunkPrefix: "0", nationalLengths: 7...9),
        PhoneRegion(code: "NO", callingCode: "47", trunkPrefix: nil, nationalLengths: 8...8),
        PhoneRegion(code: "DK", callingCode: "45", trunkPrefix: nil, nationalLengths: 8...8),
        PhoneRegion(code: "FI", callingCode: "358", trunkPrefix: "0", nationalLengths: 5...12),
        PhoneRegion(code: "PL", callingCode: "48", trunkPrefix: nil, nationalLengths: 9...9),
        PhoneRegion(code: "PT", callingCode: "351", trunkPrefix: nil, nationalLengths: 9...9),
        PhoneRegion(code: "IE", callingCode: "353", trunkPrefix: "0", nationalLengths: 7...9),
        PhoneRegion(code: "CZ", callingCode: "420", trunkPrefix: nil, nationalLengths: 9...9),
        PhoneRegion(code: "AU", callingCode: "61", trunkPrefix: "0", nationalLengths: 9...9, internationalPrefix: "0011"),
        PhoneRegion(code: "NZ", callingCode: "64", trunkPrefix: "0", nationalLengths: 8...10),
        PhoneRegion(code: "JP", callingCode: "81", trunkPrefix: "0", nationalLengths: 9...10, internationalPrefix: "010"),
        PhoneRegion(code: "CN", callingCode: "86", trunkPrefix: "0", nationalLengths: 10...11),
        PhoneRegion(code: "IN", callingCode: "91", trunkPrefix: "0", nationalLengths: 10...10),
        PhoneRegion(code: "BR", callingCode: "55", trunkPrefix: "0", nationalLengths: 10...11),
        PhoneRegion(code: "MX", callingCode: "52", trunkPrefix: nil, nationalLengths: 10...10),
        PhoneRegion(code: "AR", callingCode: "54", trunkPrefix: "0", nationalLengths: 10...11),
        PhoneRegion(code: "ZA", callingCode: "27", trunkPrefix: "0", nationalLengths: 9...9),
        PhoneRegion(code: "SG", callingCode: "65", trunkPrefix: nil, nationalLengths: 8...8, internationalPrefix: "000"),
        PhoneRegion(code: "HK", callingCode: "852", trunkPrefix: nil, nationalLengths: 8...8, internationalPrefix: "001"),
        PhoneRegion(code: "KR", callingCode: "82", trunkPrefix: "0", nationalLengths: 8...10, internationalPrefix: "001"),
        PhoneRegion(code: "AE", callingCode: "971", trunkPrefix: "0", nationalLengths: 8...9),
        PhoneRegion(code: "IL", callingCode: "972", trunkPrefix: "0", nationalLengths: 8...9),
        PhoneRegion(code: "TR", callingCode: "90", trunkPrefix: "0", nationalLengths: 10...10),
        PhoneRegion(code: "RU", callingCode: "7", trunkPrefix: "8", nationalLengths: 10...10, internationalPrefix: "810"),
    ]

    /// Whether a national number of the right length can be one of this region's: in North America (+1) area
    /// codes start with 2 to 9.
    func acceptsNational(_ national: some StringProtocol) -> Bool {
        guard callingCode == "1", let first = national.first else { return true }
        return first >= "2" && first <= "9"
    }

    /// The known regions by ISO code.
    public static let byCode: [String: PhoneRegion] = Dictionary(all.map { ($0.code, $0) }, uniquingKeysWith: { first, _ in first })

    /// The region whose calling code starts `digits` (longest calling code first), if it is a known one.
    static func matching(internationalDigits digits: String) -> PhoneRegion? {
        for length in stride(from: 3, through: 1, by: -1) where digits.count > length {
            let prefix = String(digits.prefix(length))
            if let region = all.first(where: { $0.callingCode == prefix }) { return region }
        }
        return nil
    }
}

extension String {
    /// `identities[0].value` → `identities[0].source`.
    func replacingLastComponent(with name: String) -> String {
        guard let dot = lastIndex(of: ".") else { return name }
        return String(self[...dot]) + name
    }
}

extension String {
    /// The text in Unicode normalization form C (composed), ASCII text as it is.
    ///
    /// Identities and record ids are compared by Swift as canonically equivalent and by SQLite byte by byte:
    /// storing one form keeps both backends, and a sender's two spellings of `café`, the same.
    package var canonical: String {
        utf8.allSatisfy { $0 < 128 } ? self : precomposedStringWithCanonicalMapping
    }
}
