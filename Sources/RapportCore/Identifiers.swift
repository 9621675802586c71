import Synchronization

/// An opaque, type-prefixed identifier (`cus_01J...`). The prefix says what the id names.
public protocol PrefixedID: RawRepresentable<String>, Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The prefix every id of this type starts with, including the underscore (`cus_`).
    static var prefix: String { get }
    /// The entity name used in errors (`customer`).
    static var entity: String { get }
    init(uncheckedRawValue: String)
}

extension PrefixedID {
    /// The id in `rawValue` if it has this type's prefix and a non-empty body of letters and digits.
    public init?(rawValue: String) {
        guard Self.isValid(rawValue) else { return nil }
        self.init(uncheckedRawValue: rawValue)
    }

    /// Parses `text` as an id of this type, or throws an `invalidArgument` error naming `field`.
    public init(parsing text: String, field: String) throws(RapportError) {
        guard Self.isValid(text) else {
            throw .invalid(field, "'\(text)' is not a \(Self.entity) id (expected '\(Self.prefix)' followed by letters and digits)")
        }
        self.init(uncheckedRawValue: text)
    }

    static func isValid(_ text: String) -> Bool {
        guard text.hasPrefix(prefix), text.utf8.count > prefix.utf8.count, text.utf8.count <= 64 else { return false }
        return text.utf8.dropFirst(prefix.utf8.count).allSatisfy { byte in
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
        }
    }

    public var description: String { rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self.init(uncheckedRawValue: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Identifies a customer (`cus_`).
public struct CustomerID: PrefixedID {
    public static let prefix = "cus_"
    public static let entity = "customer"
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// Identifies an order inside Rapport (`ord_`); the shop's own id is ``OrderKey``.
public struct OrderID: PrefixedID {
    public static let prefix = "ord_"
    public static let entity = "order"
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// Identifies an interaction (`int_`).
public struct InteractionID: PrefixedID {
    public static let prefix = "int_"
    public static let entity = "interaction"
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// Identifies a merge record (`mrg_`).
public struct MergeID: PrefixedID {
    public static let prefix = "mrg_"
    public static let entity = "merge"
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// Identifies one consent record in a customer's consent history (`cns_`).
public struct ConsentID: PrefixedID {
    public static let prefix = "cns_"
    public static let entity = "consent"
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// Makes new ids. The default makes sortable random ids; tests may use ``SequentialIDGenerator``.
public protocol IDGenerator: Sendable {
    /// A new id body, unique for this generator (letters and digits only).
    func next(at time: Timestamp) -> String
}

extension IDGenerator {
    /// A new id of type `ID`.
    public func make<ID: PrefixedID>(_ type: ID.Type, at time: Timestamp) -> ID {
        ID(uncheckedRawValue: ID.prefix + next(at: time))
    }
}

/// ULID-style ids: 48 bits of milliseconds then 80 random bits, in Crockford base32 (26 characters).
///
/// They sort by creation time, which keeps SQLite's primary-key b-tree appends local. The first id of each
/// millisecond has 80 random bits; later ones in the same millisecond step up from the previous one by a random
/// 1 to 2³², as ULID's monotonic mode does, so that one engine's ids sort in the order it made them.
public final class SortableRandomIDGenerator: IDGenerator {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    private struct State {
        /// The last id's milliseconds and 80-bit random part (high 16 bits, low 64 bits).
        var millis: UInt64 = 0
        var high: UInt64 = 0
        var low: UInt64 = 0
        /// xoshiro256** seeded from the system's generator: a system call per id would cost more than the id.
        var random: (UInt64, UInt64, UInt64, UInt64)

        mutating func next() -> UInt64 {
            let result = ((random.1 &* 5) << 7 | (random.1 &* 5) >> 57) &* 9
            let shifted = random.1 << 17
            random.2 ^= random.0
            random.3 ^= random.1
            random.1 ^= random.2
            random.0 ^= random.3
            random.2 ^= shifted
            random.3 = random.3 << 45 | random.3 >> 19
            return result
        }
    }

    private let state: Mutex<State>

    public init() {
        var system = SystemRandomNumberGenerator()
        state = Mutex(State(random: (system.next(), system.next(), system.next(), system.next() | 1)))
    }

    public func next(at time: Timestamp) -> String {
        let now = UInt64(max(0, time.millisecondsSinceEpoch)) & 0xFFFF_FFFF_FFFF
        let (millis, high, low) = state.withLock { state -> (UInt64, UInt64, UInt64) in
            if now > state.millis {
                state.millis = now
                state.high = state.next() & 0xFFFF
                state.low = state.next()
            } else if now < state.millis {
                // A clock that went back: a fresh id for that time, leaving the current millisecond's sequence alone.
                return (now, state.next() & 0xFFFF, state.next())
            } else {
                // Same (or an earlier) millisecond: step the random part up by 1 to 2^32.
                let (sum, carry) = state.low.addingReportingOverflow(1 + state.next() & 0xFFFF_FFFF)
                state.low = sum
                if carry { state.high = (state.high + 1) & 0xFFFF }
            }
            return (state.millis, state.high, state.low)
        }
        var bytes = [UInt8](repeating: 0, count: 26)
        // 10 characters of time (50 bits, top 2 are zero).
        var value = millis
        for index in stride(from: 9, through: 0, by: -1) {
            bytes[index] = Self.alphabet[Int(value & 31)]
            value >>= 5
        }
        // 16 characters of randomness (80 bits): 12 from the low 60 bits of `low`, 4 from its top 4 bits and `high`.
        var randomLow = low
        for index in stride(from: 25, through: 14, by: -1) {
            bytes[index] = Self.alphabet[Int(randomLow & 31)]
            randomLow >>= 5
        }
        var randomHigh = (high << 4) | (low >> 60)
        for index in stride(from: 13, through: 10, by: -1) {
            bytes[index] = Self.alphabet[Int(randomHigh & 31)]
            randomHigh >>= 5
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Ids `0000000001`, `0000000002`...: deterministic, for tests and reproducible examples.
public final class SequentialIDGenerator: IDGenerator {
    private let counter: Mutex<Int>

    /// Ids numbered from `issued + 1`: an engine over a store another one wrote with sequential ids goes on after them.
    public init(after issued: Int = 0) { counter = Mutex(issued) }

    /// How many ids were made (the number of the last one).
    public var issued: Int { counter.withLock { $0 } }

    public func next(at time: Timestamp) -> String {
        let value = counter.withLock { count in
            count += 1
            return count
        }
        let digits = String(value)
        return String(repeating: "0", count: max(0, 10 - digits.count)) + digits
    }
}

extension String {
    /// True when the text has a line break (`\n`, `\r`, form feed, NEL, line or paragraph separator...).
    package var containsNewline: Bool {
        // ASCII text (most ids) is checked byte by byte; anything else by `Character.isNewline`.
        var ascii = true
        for byte in utf8 {
            if byte >= 10 && byte <= 13 { return true }
            if byte >= 128 { ascii = false }
        }
        return ascii ? false : contains(where: \.isNewline)
    }
}

extension String {
    /// True when the text holds U+0000. Text stored in a column of its own (ids, tags, names) refuses it: SQLite
    /// would cut the text there, and the two backends would disagree.
    package var containsNUL: Bool { utf8.contains(0) }
}
