import Foundation
import RapportCore

/// Text with `{{ expression }}` placeholders, filled in for one customer: personalization for messages.
///
/// Placeholders are expressions of the rules language, so a default is written with `??`:
///
/// ```swift
/// let greeting = try Template("Hello {{ customer.given_name ?? \"there\" }}!", schema: schema, scope: .customer)
/// greeting.render(context)   // "Hello Ada!" or "Hello there!"
/// ```
///
/// A value is inserted as text and never read as a template again; with `.html` it is escaped, with
/// `.singleLine` line breaks and control characters are removed (subjects, headers). A missing value without a
/// default prints as nothing.
public struct Template: Sendable {
    /// How inserted values are escaped.
    public enum Escaping: String, Hashable, Sendable, Codable, CaseIterable {
        /// As is (plain-text bodies, SMS, push).
        case text
        /// `&`, `<`, `>`, `"`, `'` and `` ` `` become entities, scalar by scalar (HTML bodies).
        case html
        /// Line breaks (Unicode's too) become spaces and other control characters are removed (subjects, titles,
        /// headers).
        case singleLine = "single_line"
    }

    private enum Piece: Sendable {
        case text(String)
        case value(CompiledExpression)
    }

    /// The template as given.
    public let source: String
    public let escaping: Escaping
    /// What rendering reads.
    public let requirements: Requirements
    private let pieces: [Piece]

    /// Parses `source` and compiles every placeholder.
    /// - Throws: ``ExpressionError`` with every problem, positioned in the template's own text.
    public init(_ source: String, schema: ExpressionSchema, scope: ExpressionScope, escaping: Escaping = .text) throws(ExpressionError) {
        self.source = source
        self.escaping = escaping
        let bytes = Array(source.utf8)
        guard bytes.count <= ExpressionLimits.maxTemplateLength else {
            throw ExpressionError([
                ExpressionIssue(
                    "the template is \(bytes.count) bytes long; the limit is \(ExpressionLimits.maxTemplateLength)",
                    at: SourceRange(start: ExpressionLimits.maxTemplateLength, end: bytes.count), in: source)
            ])
        }
        var pieces: [Piece] = []
        var issues: [ExpressionIssue] = []
        var requirements = Requirements()
        var index = 0
        var textStart = 0
        var placeholders = 0
        while index + 1 < bytes.count, issues.count < ExpressionLimits.maxIssues {
            guard bytes[index] == 123, bytes[index + 1] == 123 else {  // "{{"
                index += 1
                continue
            }
            if textStart < index { pieces.append(.text(String(decoding: bytes[textStart..<index], as: UTF8.self))) }
            let open = index
            let innerStart = index + 2
            // The closing "}}" outside string literals; in a `#` comment (to the end of the line, or of the
            // placeholder) quotes are text: "guest's" opens no string.
            var cursor = innerStart
            var quote: UInt8?
            var comment = false
            var close: Int?
            while cursor < bytes.count {
                let byte = bytes[cursor]
                if comment, byte == 10 {
                    comment = false
                } else if comment, byte != 125 {
                    // text of the comment
                } else if let active = quote {
                    if byte == 92 { cursor += 1 } else if byte == active { quote = nil }
                } else if byte == 35 {
                    comment = true
                } else if byte == 34 || byte == 39 {
                    quote = byte
                } else if byte == 125, cursor + 1 < bytes.count, bytes[cursor + 1] == 125 {
                    close = cursor
                    break
                }
                cursor += 1
            }
            guard let close else {
                issues.append(ExpressionIssue("the placeholder is not closed: add '}}'", at: SourceRange(start: open, end: open + 2), in: source))
                textStart = bytes.count
                index = bytes.count
                break
            }
            placeholders += 1
            if placeholders > ExpressionLimits.maxPlaceholders {
                issues.append(
                    ExpressionIssue(
                        "a template holds at most \(ExpressionLimits.maxPlaceholders) placeholders", at: SourceRange(start: open, end: close + 2),
                        in: source))
                break
            }
            let inner = String(decoding: bytes[innerStart..<close], as: UTF8.self)
            if inner.allSatisfy(\.isWhitespace) {
                issues.append(ExpressionIssue("the placeholder is empty", at: SourceRange(start: open, end: close + 2), in: source))
            } else {
                do {
                    let compiled = try CompiledExpression(inner, schema: schema, scope: scope, expecting: nil)
                    requirements.formUnion(compiled.requirements)
                    pieces.append(.value(compiled))
                } catch {
                    // Positions inside the placeholder, moved to the template's own text.
                    issues += error.issues.prefix(ExpressionLimits.maxIssues - issues.count).map {
                        ExpressionIssue(
                            $0.message, at: SourceRange(start: $0.range.start + innerStart, end: $0.range.end + innerStart), in: source)
                    }
                }
            }
            index = close + 2
            textStart = index
        }
        if textStart < bytes.count { pieces.append(.text(String(decoding: bytes[textStart...], as: UTF8.self))) }
        guard issues.isEmpty else { throw ExpressionError(issues) }
        self.pieces = pieces
        self.requirements = requirements
    }

    /// The text with every placeholder replaced by its value, escaped as the template says.
    public func render(_ context: borrowing EvaluationContext) -> String {
        var output = ""
        for piece in pieces {
            switch piece {
            case .text(let text): output += escaping == .singleLine ? Self.singleLine(text) : text
            case .value(let expression): output += Self.escape(expression.evaluate(context).text, escaping)
            }
        }
        return output
    }

    static func escape(_ text: String, _ escaping: Escaping) -> String {
        switch escaping {
        case .text: return text
        case .singleLine: return singleLine(text)
        case .html:
            // Scalar by scalar, as a browser reads it: a quote followed by a combining mark is one Swift `Character`
            // but still a quote to HTML.
            var result = String.UnicodeScalarView()
            for scalar in text.unicodeScalars {
                switch scalar {
                case "&": result.append(contentsOf: "&amp;".unicodeScalars)
                case "<": result.append(contentsOf: "&lt;".unicodeScalars)
                case ">": result.append(contentsOf: "&gt;".unicodeScalars)
                case "\"": result.append(contentsOf: "&quot;".unicodeScalars)
                case "'": result.append(contentsOf: "&#39;".unicodeScalars)
                case "`": result.append(contentsOf: "&#96;".unicodeScalars)
                default: result.append(scalar)
                }
            }
            return String(result)
        }
    }

    static func singleLine(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.compactMap { scalar in
            // Every line break, Unicode's too (NEL, line and paragraph separators), becomes a space.
            if scalar == "\n" || scalar == "\r" || scalar == "\t" || scalar == "\u{85}" || scalar == "\u{2028}" || scalar == "\u{2029}" { return " " }
            return scalar.properties.generalCategory == .control ? nil : scalar
        }))
    }
}

extension Value {
    /// The value as JSON: strings escaped, money as `{"minor_units":..., "currency":...}`, timestamps in ISO 8601,
    /// durations in milliseconds, decimals as strings (exact), missing as null.
    public var json: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .decimal(let value): return Self.jsonString(value.description)
        case .string(let value): return Self.jsonString(value)
        case .money(let value): return "{\"minor_units\":\(value.minorUnits),\"currency\":\"\(value.currency.code)\"}"
        case .duration(let value): return String(value)
        case .timestamp(let value): return Self.jsonString(value.description)
        case .date(let value): return Self.jsonString(value.description)
        case .stringList(let values): return "[" + values.map(Self.jsonString).joined(separator: ",") + "]"
        case .intList(let values): return "[" + values.map(String.init).joined(separator: ",") + "]"
        }
    }

    /// `text` as a JSON string literal.
    public static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
