import Foundation
import RapportCore

/// One token of an expression.
struct Token: Sendable {
    enum Kind: Hashable, Sendable {
        case integer(Int64)
        case decimal(Decimal, text: String)
        case string(String)
        /// A duration literal (`90d`) in milliseconds, with its text.
        case duration(Int64, text: String)
        /// A timestamp literal (`@2026-01-01T09:00:00Z`) in milliseconds since the epoch, with its text.
        case timestamp(Int64, text: String)
        case identifier(String)
        case symbol(Symbol)
        case end
    }

    enum Symbol: String, Hashable, Sendable, CaseIterable {
        case leftParen = "(", rightParen = ")", leftBracket = "[", rightBracket = "]", comma = ",", dot = ".", colon = ":"
        case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
        case plus = "+", minus = "-", star = "*", slash = "/", percent = "%", coalesce = "??"
        case ampersands = "&&", bars = "||", bang = "!"
    }

    var kind: Kind
    var range: SourceRange
}

/// Splits an expression into tokens. Linear in the length of the text; never fails on any input, it reports.
struct Lexer {
    private let bytes: [UInt8]
    private let source: String
    private var index = 0
    private(set) var issues: [ExpressionIssue] = []

    init(_ source: String) {
        self.source = source
        self.bytes = Array(source.utf8)
    }

    /// Every token, ending with `.end`; problems are collected in ``issues``.
    mutating func tokenize() -> [Token] {
        var tokens: [Token] = []
        while true {
            skipSpaceAndComments()
            guard index < bytes.count else {
                tokens.append(Token(kind: .end, range: SourceRange(start: bytes.count, end: bytes.count)))
                return tokens
            }
            if let token = next() { tokens.append(token) }
        }
    }

    private mutating func report(_ message: String, _ start: Int, _ end: Int) {
        guard issues.count < ExpressionLimits.maxIssues else { return }
        issues.append(ExpressionIssue(message, at: SourceRange(start: start, end: end), in: source))
    }

    private mutating func skipSpaceAndComments() {
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 32 || byte == 9 || byte == 10 || byte == 13 {
                index += 1
            } else if byte == 35 {  // '#' comment to the end of the line
                while index < bytes.count, bytes[index] != 10 { index += 1 }
            } else {
                return
            }
        }
    }

    private static func isLetter(_ byte: UInt8) -> Bool { (byte >= 97 && byte <= 122) || (byte >= 65 && byte <= 90) || byte == 95 }
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    private mutating func next() -> Token? {
        let start = index
        let byte = bytes[index]
        if Self.isLetter(byte) {
            while index < bytes.count, Self.isLetter(bytes[index]) || Self.isDigit(bytes[index]) { index += 1 }
            return Token(kind: .identifier(text(start, index)), range: SourceRange(start: start, end: index))
        }
        if Self.isDigit(byte) { return number() }
        if byte == 34 || byte == 39 { return string(quote: byte) }
        if byte == 64 { return timestamp() }
        // Two-character symbols first.
        if index + 1 < bytes.count {
            let pair = text(index, index + 2)
            if let symbol = Token.Symbol(rawValue: pair), pair.count == 2 {
                index += 2
                return Token(kind: .symbol(symbol), range: SourceRange(start: start, end: index))
            }
        }
        if byte < 128, let symbol = Token.Symbol(rawValue: String(UnicodeScalar(byte))) {
            index += 1
            return Token(kind: .symbol(symbol), range: SourceRange(start: start, end: index))
        }
        // Skip one whole character, however many bytes it has.
        index += 1
        while index < bytes.count, bytes[index] & 0xC0 == 0x80 { index += 1 }
        let character = text(start, index)
        if character == "=" {
            report("'=' is not an operator: compare with '=='", start, index)
        } else if character == "&" || character == "|" {
            report("'\(character)' is not an operator: use 'and' / 'or'", start, index)
        } else {
            report("unexpected character '\(character)'", start, index)
        }
        return nil
    }

    private func text(_ start: Int, _ end: Int) -> String {
        String(decoding: bytes[start..<min(end, bytes.count)], as: UTF8.self)
    }

    /// An integer, a decimal, or a duration (`90d`, `1h`, `500ms`).
    private mutating func number() -> Token? {
        let start = index
        while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
        var isDecimal = false
        if index + 1 < bytes.count, bytes[index] == 46, Self.isDigit(bytes[index + 1]) {
            isDecimal = true
            index += 1
            while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
        }
        let digits = text(start, index)
        // A unit glued to the number makes a duration.
        if index < bytes.count, Self.isLetter(bytes[index]) {
            let unitStart = index
            while index < bytes.count, Self.isLetter(bytes[index]) || Self.isDigit(bytes[index]) { index += 1 }
            let unit = text(unitStart, index)
            let whole = text(start, index)
            guard let factor = Self.durationUnits[unit] else {
                report("'\(unit)' is not a duration unit (ms, s, m, h, d, w)", unitStart, index)
                return nil
            }
            guard !isDecimal else {
                report("a duration is a whole number of units: '\(whole)'", start, index)
                return nil
            }
            guard let count = Int64(digits) else {
                report("'\(whole)' is too large", start, index)
                return nil
            }
            let (milliseconds, overflow) = count.multipliedReportingOverflow(by: factor)
            guard !overflow, milliseconds <= Self.maxDurationMilliseconds else {
                report("'\(whole)' is longer than 1000 years", start, index)
                return nil
            }
            return Token(kind: .duration(milliseconds, text: whole), range: SourceRange(start: start, end: index))
        }
        if isDecimal {
            guard digits.utf8.count(where: Self.isDigit) <= 38, let value = Decimal(string: digits, locale: Locale(identifier: "en_US_POSIX")) else {
                report("'\(digits)' has too many digits", start, index)
                return nil
            }
            return Token(kind: .decimal(value, text: digits), range: SourceRange(start: start, end: index))
        }
        guard let value = Int64(digits) else {
            report("'\(digits)' is larger than the largest integer (\(Int64.max))", start, index)
            return nil
        }
        return Token(kind: .integer(value), range: SourceRange(start: start, end: index))
    }

    static let durationUnits: [String: Int64] = ["ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000]
    static let maxDurationMilliseconds: Int64 = 1000 * 366 * 86_400_000

    private mutating func string(quote: UInt8) -> Token? {
        let start = index
        index += 1
        var scalars = String.UnicodeScalarView()
        var segmentStart = index
        func flush(_ lexer: Lexer, _ to: Int) {
            scalars.append(contentsOf: lexer.text(segmentStart, to).unicodeScalars)
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == quote {
                flush(self, index)
                index += 1
                return Token(kind: .string(String(scalars)), range: SourceRange(start: start, end: index))
            }
            if byte == 10 {
                break
            }
            if byte == 92 {  // backslash
                flush(self, index)
                let escapeStart = index
                index += 1
                guard index < bytes.count else { break }
                switch bytes[index] {
                case 110: scalars.append("\n")
                case 116: scalars.append("\t")
                case 114: scalars.append("\r")
                case 92: scalars.append("\\")
                case 34: scalars.append("\"")
                case 39: scalars.append("'")
                case 117:  // \u{1F600} or \u00E9
                    if let (scalar, length) = unicodeEscape(at: index + 1) {
                        scalars.append(scalar)
                        index += length
                    } else {
                        report("a \\u escape is \\u followed by 4 hex digits or \\u{...} with 1 to 6", escapeStart, index + 1)
                    }
                default:
                    report("unknown escape '\\\(text(index, index + 1))' (use \\n, \\t, \\r, \\\\, \\\", \\' or \\u)", escapeStart, index + 1)
                }
                index += 1
                segmentStart = index
                continue
            }
            index += 1
        }
        report("the string is not closed: add \(quote == 34 ? "\"" : "'") before the end of the line", start, index)
        return nil
    }

    /// A `\u` escape's scalar and how many bytes follow the `u`.
    private func unicodeEscape(at position: Int) -> (Unicode.Scalar, Int)? {
        var hex = ""
        var length = 0
        if position < bytes.count, bytes[position] == 123 {  // {
            var cursor = position + 1
            while cursor < bytes.count, bytes[cursor] != 125, hex.count <= 6 {
                hex.append(Character(UnicodeScalar(bytes[cursor])))
                cursor += 1
            }
            guard cursor < bytes.count, bytes[cursor] == 125, (1...6).contains(hex.count) else { return nil }
            length = cursor - position + 1
        } else {
            guard position + 4 <= bytes.count else { return nil }
            hex = text(position, position + 4)
            length = 4
        }
        guard hex.allSatisfy(\.isHexDigit), let value = UInt32(hex, radix: 16), let scalar = Unicode.Scalar(value) else { return nil }
        return (scalar, length)
    }

    /// `@2026-01-01` (midnight UTC), `@2026-01-01T09:30:00Z`, `@2026-01-01T09:30:00.250+02:00`.
    private mutating func timestamp() -> Token? {
        let start = index
        index += 1
        while index < bytes.count, Self.isDigit(bytes[index]) || [45, 58, 43, 46, 84, 90].contains(bytes[index]) { index += 1 }
        let literal = text(start + 1, index)
        guard let milliseconds = Self.parseTimestamp(literal) else {
            report(
                "'@\(literal)' is not a timestamp of the years 1 to 9999: write @2026-01-31 or @2026-01-31T09:00:00Z (with Z or an offset such as +02:00)",
                start, index)
            return nil
        }
        return Token(kind: .timestamp(milliseconds, text: "@" + literal), range: SourceRange(start: start, end: index))
    }

    /// Milliseconds since the epoch of an ISO 8601 date or date-time with a zone, or nil.
    static func parseTimestamp(_ text: String) -> Int64? {
        let chars = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= chars.count else { return nil }
            var value = 0
            for byte in chars[from..<(from + count)] {
                guard isDigit(byte) else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard let year = number(0, 4), chars.count >= 10, chars[4] == 45, let month = number(5, 2), chars[7] == 45, let day = number(8, 2) else {
            return nil
        }
        guard (1...9999).contains(year), (1...12).contains(month), (1...LocalDate.daysIn(month: month, year: year)).contains(day) else { return nil }
        var seconds = Int64(LocalDate.daysSinceEpoch(year: year, month: month, day: day)) * 86_400
        var millis: Int64 = 0
        if chars.count == 10 { return kept(seconds * 1000) }
        guard chars.count >= 20, chars[10] == 84, let hour = number(11, 2), chars[13] == 58, let minute = number(14, 2), chars[16] == 58,
            let second = number(17, 2), hour < 24, minute < 60, second < 60
        else { return nil }
        seconds += Int64(hour * 3600 + minute * 60 + second)
        var cursor = 19
        if chars[cursor] == 46 {
            guard let fraction = number(cursor + 1, 3) else { return nil }
            millis = Int64(fraction)
            cursor += 4
        }
        guard cursor < chars.count else { return nil }
        if chars[cursor] == 90, cursor == chars.count - 1 { return kept(seconds * 1000 + millis) }
        guard chars[cursor] == 43 || chars[cursor] == 45, chars.count == cursor + 6, let offsetHours = number(cursor + 1, 2), chars[cursor + 3] == 58,
            let offsetMinutes = number(cursor + 4, 2), offsetHours < 24, offsetMinutes < 60
        else { return nil }
        let offset = Int64(offsetHours * 3600 + offsetMinutes * 60) * (chars[cursor] == 43 ? 1 : -1)
        return kept((seconds - offset) * 1000 + millis)
    }

    /// `milliseconds` if it is an instant Rapport keeps (years 1 to 9999 UTC: an offset may move a date past them).
    private static func kept(_ milliseconds: Int64) -> Int64? {
        Timestamp(millisecondsSinceEpoch: milliseconds).isKept ? milliseconds : nil
    }
}
