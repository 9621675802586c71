import Foundation
import RapportCore

/// One compiled node: reads the context and the scratch, returns its value or nil when it is missing.
typealias Fn<T> = @Sendable (UnsafePointer<EvaluationContext>, inout EvaluationScratch) -> T?

/// A compiled node with its static type.
enum Code: Sendable {
    case bool(Fn<Bool>)
    case int(Fn<Int64>)
    case decimal(Fn<Decimal>)
    case string(Fn<String>)
    case money(Fn<Money>)
    case duration(Fn<Int64>)
    case timestamp(Fn<Int64>)
    case date(Fn<LocalDate>)
    case stringList(Fn<[String]>)
    case intList(Fn<[Int64]>)
    case null

    /// The node as a function returning a ``Value``.
    var value: Fn<Value> {
        switch self {
        case .bool(let f): { c, s in f(c, &s).map(Value.bool) ?? .null }
        case .int(let f): { c, s in f(c, &s).map(Value.int) ?? .null }
        case .decimal(let f): { c, s in f(c, &s).map(Value.decimal) ?? .null }
        case .string(let f): { c, s in f(c, &s).map(Value.string) ?? .null }
        case .money(let f): { c, s in f(c, &s).map(Value.money) ?? .null }
        case .duration(let f): { c, s in f(c, &s).map(Value.duration) ?? .null }
        case .timestamp(let f): { c, s in f(c, &s).map { Value.timestamp(Timestamp(millisecondsSinceEpoch: $0)) } ?? .null }
        case .date(let f): { c, s in f(c, &s).map(Value.date) ?? .null }
        case .stringList(let f): { c, s in f(c, &s).map(Value.stringList) ?? .null }
        case .intList(let f): { c, s in f(c, &s).map(Value.intList) ?? .null }
        case .null: { _, _ in .null }
        }
    }

    /// The same node, reporting each value it produces to `record`.
    func recording(_ record: @escaping @Sendable (Value) -> Void) -> Code {
        func wrap<T>(_ f: @escaping Fn<T>, _ box: @escaping @Sendable (T) -> Value) -> Fn<T> {
            { c, s in
                let result = f(c, &s)
                record(result.map(box) ?? .null)
                return result
            }
        }
        switch self {
        case .bool(let f): return .bool(wrap(f, Value.bool))
        case .int(let f): return .int(wrap(f, Value.int))
        case .decimal(let f): return .decimal(wrap(f, Value.decimal))
        case .string(let f): return .string(wrap(f, Value.string))
        case .money(let f): return .money(wrap(f, Value.money))
        case .duration(let f): return .duration(wrap(f, Value.duration))
        case .timestamp(let f): return .timestamp(wrap(f, { Value.timestamp(Timestamp(millisecondsSinceEpoch: $0)) }))
        case .date(let f): return .date(wrap(f, Value.date))
        case .stringList(let f): return .stringList(wrap(f, Value.stringList))
        case .intList(let f): return .intList(wrap(f, Value.intList))
        case .null: return .null
        }
    }

    /// A node that always returns `value`.
    static func constant(_ value: Value) -> Code {
        switch value {
        case .null: .null
        case .bool(let v): .bool { _, _ in v }
        case .int(let v): .int { _, _ in v }
        case .decimal(let v): .decimal { _, _ in v }
        case .string(let v): .string { _, _ in v }
        case .money(let v): .money { _, _ in v }
        case .duration(let v): .duration { _, _ in v }
        case .timestamp(let v): .timestamp { _, _ in v.millisecondsSinceEpoch }
        case .date(let v): .date { _, _ in v }
        case .stringList(let v): .stringList { _, _ in v }
        case .intList(let v): .intList { _, _ in v }
        }
    }

    var boolFn: Fn<Bool>? { if case .bool(let f) = self { return f } else { return nil } }
    var intFn: Fn<Int64>? { if case .int(let f) = self { return f } else { return nil } }
    var stringFn: Fn<String>? { if case .string(let f) = self { return f } else { return nil } }
    var moneyFn: Fn<Money>? { if case .money(let f) = self { return f } else { return nil } }
    var stringListFn: Fn<[String]>? { if case .stringList(let f) = self { return f } else { return nil } }
    var intListFn: Fn<[Int64]>? { if case .intList(let f) = self { return f } else { return nil } }
    /// Timestamps and durations are both milliseconds.
    var millisecondsFn: Fn<Int64>? {
        switch self {
        case .timestamp(let f), .duration(let f): f
        default: nil
        }
    }
    /// Integers and decimals as decimals.
    var decimalFn: Fn<Decimal>? {
        switch self {
        case .decimal(let f): f
        case .int(let f): { c, s in f(c, &s).map { Decimal($0) } }
        default: nil
        }
    }
}
