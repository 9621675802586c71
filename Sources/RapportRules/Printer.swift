/// Prints ``Syntax`` as canonical expression text: parsing the text gives back the same tree.
extension Syntax: CustomStringConvertible {
    /// The canonical text: keywords in lower case, strings in double quotes, parentheses only where needed.
    public var description: String {
        var output = ""
        print(into: &output)
        return output
    }

    private var precedence: Int {
        switch kind {
        case .binary(let op, _, _): op.precedence
        case .unary(.not, _): 3
        case .unary(.negate, _): 8
        default: 9
        }
    }

    func print(into output: inout String) {
        switch kind {
        case .integer(let value): output += String(value)
        case .decimal(_, let text): output += text
        case .string(let text): output += Self.quoted(text)
        case .bool(let value): output += value ? "true" : "false"
        case .null: output += "null"
        case .duration(_, let text), .timestamp(_, let text): output += text
        case .money(let amount, let currency): output += "\(amount) \(currency)"
        case .path(let parts): output += parts.joined(separator: ".")
        case .list(let items):
            output += "["
            for (index, item) in items.enumerated() {
                if index > 0 { output += ", " }
                item.print(into: &output)
            }
            output += "]"
        case .call(let name, let arguments):
            output += name + "("
            for (index, argument) in arguments.enumerated() {
                if index > 0 { output += ", " }
                if let label = argument.label { output += label + ": " }
                argument.value.print(into: &output)
            }
            output += ")"
        case .unary(let op, let operand):
            output += op == .not ? "not " : "-"
            // `- -x` must not print as `--x`; a negative literal after '-' keeps its own sign apart too.
            let needsParentheses = operand.precedence < precedence || (op == .negate && operand.startsWithMinus)
            operand.print(into: &output, parenthesized: needsParentheses)
        case .binary(let op, let lhs, let rhs):
            let leftParentheses: Bool
            let rightParentheses: Bool
            switch op {
            case .coalesce:  // right-associative
                leftParentheses = lhs.precedence <= op.precedence
                rightParentheses = rhs.precedence < op.precedence
            case _ where op.isComparison:  // non-associative
                leftParentheses = lhs.precedence <= op.precedence
                rightParentheses = rhs.precedence <= op.precedence
            default:
                leftParentheses = lhs.precedence < op.precedence
                rightParentheses = rhs.precedence <= op.precedence
            }
            lhs.print(into: &output, parenthesized: leftParentheses)
            output += " \(op.rawValue) "
            rhs.print(into: &output, parenthesized: rightParentheses)
        }
    }

    private var startsWithMinus: Bool {
        switch kind {
        case .unary(.negate, _): true
        case .binary(_, let lhs, _): lhs.startsWithMinus
        default: false
        }
    }

    private func print(into output: inout String, parenthesized: Bool) {
        if parenthesized { output += "(" }
        print(into: &output)
        if parenthesized { output += ")" }
    }

    /// `text` in double quotes with `"`, `\` and control characters escaped.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case _ where scalar.value < 32 || scalar.value == 127:
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
