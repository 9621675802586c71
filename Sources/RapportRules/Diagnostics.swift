/// A place in an expression's text: a half-open range of UTF-8 byte offsets.
public struct SourceRange: Hashable, Sendable, Codable {
    /// The offset of the first byte.
    public var start: Int
    /// The offset just past the last byte.
    public var end: Int

    public init(start: Int, end: Int) {
        self.start = start
        self.end = max(start, end)
    }

    /// The smallest range that covers both.
    public func union(_ other: SourceRange) -> SourceRange {
        SourceRange(start: min(start, other.start), end: max(end, other.end))
    }
}

/// One problem found in an expression or a template: where it is, what is wrong, and the line with a caret.
///
/// ```
/// line 1, column 10: unknown field 'customer.nmae' (did you mean 'customer.given_name'?)
///   customer.nmae == "Ada"
///   ^^^^^^^^^^^^^
/// ```
public struct ExpressionIssue: Error, Hashable, Sendable, Codable, CustomStringConvertible {
    /// 1-based line.
    public var line: Int
    /// 1-based column, counted in characters.
    public var column: Int
    /// The byte range the issue covers.
    public var range: SourceRange
    /// What is wrong, in words a person can act on.
    public var message: String
    /// The line of text the issue is on (at most 120 characters around it) and a caret line under the range.
    public var excerpt: String

    public init(line: Int, column: Int, range: SourceRange, message: String, excerpt: String) {
        self.line = line
        self.column = column
        self.range = range
        self.message = message
        self.excerpt = excerpt
    }

    /// An issue at `range` of `source`, with line, column and excerpt worked out.
    public init(_ message: String, at range: SourceRange, in source: String) {
        let bytes = Array(source.utf8)
        let start = min(max(0, range.start), bytes.count)
        let end = min(max(start, range.end), bytes.count)
        var lineStart = 0
        var line = 1
        for index in 0..<start where bytes[index] == 10 {
            line += 1
            lineStart = index + 1
        }
        var lineEnd = start
        while lineEnd < bytes.count, bytes[lineEnd] != 10 { lineEnd += 1 }
        let before = String(decoding: bytes[lineStart..<start], as: UTF8.self)
        let marked = String(decoding: bytes[start..<min(end, lineEnd)], as: UTF8.self)
        var text = String(decoding: bytes[lineStart..<lineEnd], as: UTF8.self)
        var prefixCount = before.count
        // Long lines are cut to a window around the issue.
        if text.count > 120 {
            let drop = max(0, prefixCount - 40)
            text = (drop > 0 ? "…" : "") + String(text.dropFirst(drop).prefix(110)) + "…"
            prefixCount = prefixCount - drop + (drop > 0 ? 1 : 0)
        }
        let caretCount = max(1, min(marked.count, 80))
        self.line = line
        self.column = before.count + 1
        self.range = SourceRange(start: start, end: end)
        self.message = message
        self.excerpt = "  " + text.map { $0 == "\t" ? " " : $0 }.map(String.init).joined() + "\n  " + String(repeating: " ", count: prefixCount)
            + String(repeating: "^", count: caretCount)
    }

    public var description: String { "line \(line), column \(column): \(message)\n\(excerpt)" }
}

/// The problems that kept an expression or a template from compiling, in the order of their position.
public struct ExpressionError: Error, Hashable, Sendable, CustomStringConvertible {
    public var issues: [ExpressionIssue]

    public init(_ issues: [ExpressionIssue]) {
        self.issues = issues.sorted { ($0.range.start, $0.range.end) < ($1.range.start, $1.range.end) }
    }

    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// The limits every expression is held to, so that no input can make parsing or checking slow or deep.
public enum ExpressionLimits {
    /// The longest expression text, in UTF-8 bytes.
    public static let maxLength = 8_192
    /// The deepest nesting of parentheses, operators, lists and calls.
    public static let maxDepth = 48
    /// The most syntax nodes one expression may have.
    public static let maxNodes = 1_024
    /// The deepest tree an expression may make, counting each operand of a chain (`a and b and …`) as a level:
    /// checking and evaluating recurse once per level, and must fit a thread's stack (512 KB on Apple platforms).
    public static let maxHeight = 64
    /// The deepest tree of a definition saved before ``maxHeight`` existed that is still loaded: about 360 KB of
    /// stack optimized, leaving room on a 512 KB thread; deeper ones are logged and not maintained.
    public static let maxStoredHeight = 120
    /// The height limit parsing applies: ``maxHeight``, or ``maxStoredHeight`` while stored definitions are loaded.
    @TaskLocal public static var heightLimit = maxHeight
    /// The longest template text, in UTF-8 bytes.
    public static let maxTemplateLength = 32_768
    /// The most `{{ }}` placeholders one template may have.
    public static let maxPlaceholders = 128
    /// The most problems reported for one expression or template; the rest are not looked for (each names its line,
    /// so a text of thousands of bad characters must not cost thousands of reports).
    public static let maxIssues = 20
}
