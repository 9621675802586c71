import Foundation
import Testing
@testable import RapportCore

@Suite("PrefixedID")
struct PrefixedIDTests {
    @Test(arguments: ["cus_1", "cus_01JD5ZQ8Y3K4M2N7P9R6S0T1VW", "cus_abcXYZ019", "cus_" + String(repeating: "a", count: 60)])
    func acceptsPrefixAndAlphanumericBody(text: String) throws {
        #expect(CustomerID(rawValue: text)?.rawValue == text)
        let id = try CustomerID(parsing: text, field: "customer_id")
        #expect(id.rawValue == text)
        #expect(id.description == text)
    }

    @Test(arguments: [
        "ord_123",  // another entity's prefix
        "CUS_123",  // prefix is case-sensitive
        "cus123",
        "123",
        "cus_",  // empty body
        "",
        "cus_12-3",
        "cus_12 3",
        "cus_12_3",
        "cus_é",
        " cus_123",
        "cus_" + String(repeating: "a", count: 61),  // 65 characters
    ])
    func rejectsNamingTheFieldAndTheInput(text: String) {
        #expect(CustomerID(rawValue: text) == nil)
        expectSingleViolation(field: "merge.survivor_id", mentions: ["'\(text)'", "customer id", "'cus_'"]) { () throws(RapportError) in
            try CustomerID(parsing: text, field: "merge.survivor_id")
        }
    }

    @Test func eachTypeHasItsPrefixAndEntity() throws {
        #expect(try OrderID(parsing: "ord_1", field: "id").rawValue == "ord_1")
        #expect(try InteractionID(parsing: "int_1", field: "id").rawValue == "int_1")
        #expect(try MergeID(parsing: "mrg_1", field: "id").rawValue == "mrg_1")
        #expect(try ConsentID(parsing: "cns_1", field: "id").rawValue == "cns_1")
        #expect(OrderID(rawValue: "cus_1") == nil)
        expectSingleViolation(field: "id", mentions: ["merge id", "'mrg_'"]) { () throws(RapportError) in try MergeID(parsing: "cus_1", field: "id") }
        let prefixes = [CustomerID.prefix, OrderID.prefix, InteractionID.prefix, MergeID.prefix, ConsentID.prefix]
        #expect(Set(prefixes).count == prefixes.count)
        #expect([CustomerID.entity, OrderID.entity, InteractionID.entity, MergeID.entity, ConsentID.entity] == ["customer", "order", "interaction", "merge", "consent"])
    }

    @Test func idsCompareByRawValue() {
        let ids = ["cus_B", "cus_a", "cus_A", "cus_10", "cus_2"].map { CustomerID(uncheckedRawValue: $0) }
        #expect(ids.sorted().map(\.rawValue) == ["cus_10", "cus_2", "cus_A", "cus_B", "cus_a"])
    }

    @Test func codableAsPlainString() throws {
        let id = CustomerID(uncheckedRawValue: "cus_42")
        let data = try JSONEncoder().encode([id])
        #expect(String(decoding: data, as: UTF8.self) == #"["cus_42"]"#)
        #expect(try JSONDecoder().decode([CustomerID].self, from: data) == [id])
    }
}

@Suite("ID generators")
struct IDGeneratorTests {
    static let crockford = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

    @Test func sortableIDsAre26CrockfordCharacters() {
        let generator = SortableRandomIDGenerator()
        for step in 0..<100 {
            let body = generator.next(at: newYear2026 + .milliseconds(step))
            #expect(body.count == 26)
            #expect(body.allSatisfy(Self.crockford.contains), "\(body)")
        }
    }

    @Test func sortableIDsAreUniqueWithinOneMillisecond() {
        let generator = SortableRandomIDGenerator()
        let bodies = (0..<10_000).map { _ in generator.next(at: newYear2026) }
        #expect(Set(bodies).count == bodies.count)
        // The first 10 characters are the time: all equal within one millisecond.
        #expect(Set(bodies.map { $0.prefix(10) }).count == 1)
    }

    @Test func sortableIDsSortByTime() {
        let generator = SortableRandomIDGenerator()
        var rng = SeededGenerator(seed: 7)
        // Increasing timestamps over a wide range, including steps of one millisecond.
        var time = Timestamp(millisecondsSinceEpoch: 0)
        var ids: [CustomerID] = []
        for _ in 0..<2_000 {
            time = time + .milliseconds(Int64.random(in: 1...3, using: &rng) == 1 ? 1 : Int64.random(in: 1...10_000_000_000, using: &rng))
            ids.append(generator.make(CustomerID.self, at: time))
        }
        #expect(ids.sorted() == ids)
        #expect(ids.allSatisfy { $0.rawValue.hasPrefix("cus_") && CustomerID(rawValue: $0.rawValue) != nil })
    }

    @Test func sortableIDTimePartEncodesTheMilliseconds() {
        let generator = SortableRandomIDGenerator()
        #expect(generator.next(at: Timestamp(millisecondsSinceEpoch: 0)).prefix(10) == "0000000000")
        #expect(generator.next(at: Timestamp(millisecondsSinceEpoch: 1)).prefix(10) == "0000000001")
        #expect(generator.next(at: Timestamp(millisecondsSinceEpoch: 32)).prefix(10) == "0000000010")
        // 2026-01-01T00:00:00Z = 1_767_225_600_000 ms.
        #expect(generator.next(at: newYear2026).prefix(10) == "01KDVDNA00")
        // Before the epoch there is no time to encode: the time part is zero.
        #expect(generator.next(at: Timestamp(millisecondsSinceEpoch: -5)).prefix(10) == "0000000000")
    }

    /// The type promises 80 random bits in the 16 characters after the time of each millisecond's first id. Every
    /// one of those characters must then take all 32 values; with 256 ids the chance that a fair character never
    /// leaves the lower half of the alphabet is 2⁻²⁵⁶.
    @Test func sortableIDRandomCharactersUseTheWholeAlphabet() {
        let generator = SortableRandomIDGenerator()
        let bodies = (0..<256).map { Array(generator.next(at: newYear2026 + .milliseconds(Int64($0)))) }
        let upperHalf = Set("GHJKMNPQRSTVWXYZ")
        for index in 10..<26 {
            #expect(bodies.contains { upperHalf.contains($0[index]) }, "character \(index) never uses the upper half of the alphabet")
        }
    }

    @Test func sortableIDsOfOneMillisecondGrowInTheOrderTheyWereMade() {
        let generator = SortableRandomIDGenerator()
        let ids = (0..<1_000).map { _ in generator.next(at: newYear2026) }
        #expect(ids.sorted() == ids)
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.prefix(10) == "01KDVDNA00" })
    }

    @Test func sequentialIDsCountFromOne() {
        let generator = SequentialIDGenerator()
        #expect(generator.next(at: newYear2026) == "0000000001")
        #expect(generator.next(at: newYear2026) == "0000000002")
        #expect(generator.make(CustomerID.self, at: newYear2026) == CustomerID(uncheckedRawValue: "cus_0000000003"))
        #expect(generator.make(OrderID.self, at: Timestamp(millisecondsSinceEpoch: 0)).rawValue == "ord_0000000004")
        // A second generator starts over.
        #expect(SequentialIDGenerator().next(at: newYear2026) == "0000000001")
    }

    @Test func sequentialIDsSortInOrderOfCreation() {
        let generator = SequentialIDGenerator()
        let ids = (0..<1_200).map { _ in generator.make(CustomerID.self, at: newYear2026) }
        #expect(ids.sorted() == ids)
        #expect(ids.last?.rawValue == "cus_0000001200")
    }

    @Test func sequentialIDsAreUniqueAcrossTasks() async {
        let generator = SequentialIDGenerator()
        let bodies = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<500).map { _ in generator.next(at: newYear2026) } }
            }
            var all: [String] = []
            for await part in group { all += part }
            return all
        }
        #expect(bodies.count == 4_000)
        #expect(Set(bodies).count == 4_000)
        #expect(bodies.max() == "0000004000")
    }
}

@Suite("Time")
struct TimeTests {
    @Test func durationMilliseconds() {
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
        #expect(Duration.seconds(3600).milliseconds == 3_600_000)
        #expect(Duration.seconds(-2).milliseconds == -2000)
        #expect(Duration.milliseconds(-1500).milliseconds == -1500)
        #expect(Duration.zero.milliseconds == 0)
        // Whole milliseconds: the fraction is dropped.
        #expect(Duration.microseconds(1999).milliseconds == 1)
        #expect(Duration.nanoseconds(999_999).milliseconds == 0)
    }

    @Test func timestampArithmetic() {
        let start = Timestamp(millisecondsSinceEpoch: 1_000)
        #expect((start + .seconds(2)).millisecondsSinceEpoch == 3_000)
        #expect((start + .milliseconds(-250)).millisecondsSinceEpoch == 750)
        #expect((start - .milliseconds(1_500)).millisecondsSinceEpoch == -500)
        #expect(start + .seconds(1) > start)
        #expect(start - .seconds(1) < start)
        #expect((start + .seconds(60)) - .seconds(60) == start)
    }

    @Test(arguments: [
        (Int64(1_767_225_600_000), "2026-01-01T00:00:00.000Z"),
        (1_796_115_600_000, "2026-12-01T09:00:00.000Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (951_782_400_123, "2000-02-29T00:00:00.123Z"),
        (1_767_225_599_999, "2025-12-31T23:59:59.999Z"),
        (1_767_225_600_001, "2026-01-01T00:00:00.001Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        (-62_167_219_200_001, "-0001-12-31T23:59:59.999Z"),
    ])
    func descriptionIsISO8601InUTCWithMilliseconds(milliseconds: Int64, text: String) {
        #expect(Timestamp(millisecondsSinceEpoch: milliseconds).description == text)
    }

    /// Every millisecond of one second in 2026, 2030 and 2100: the fraction printed is the one stored.
    @Test func descriptionShowsTheExactMillisecond() {
        var wrong: [String] = []
        for start: Int64 in [1_767_225_600_000, 1_900_000_000_000, 4_102_444_800_000] {
            for offset in Int64(0)..<1000 {
                let text = Timestamp(millisecondsSinceEpoch: start + offset).description
                let fraction = String(repeating: "0", count: 3 - String(offset).count) + String(offset)
                if !text.hasSuffix(".\(fraction)Z") { wrong.append("\(start + offset) → \(text)") }
            }
        }
        let wrongCount = wrong.count
        #expect(wrongCount == 0, "of 3000, e.g. \(wrong.prefix(3).joined(separator: ", "))")
    }

    /// The text is Foundation's ISO 8601 rendering of the same instant, from 1583 to 9999 (before, Foundation
    /// switches to the Julian calendar; Rapport stays proleptic Gregorian, as ISO 8601 and its own parser do).
    @Test func descriptionAgreesWithFoundation() {
        var rng = SeededGenerator(seed: 7)
        var wrong: [String] = []
        for _ in 0..<5_000 {
            let milliseconds = Int64.random(in: -12_212_553_600_000...253_402_300_799_999, using: &rng)
            let seconds = Double(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
            let expected = Date(timeIntervalSince1970: seconds)
                .formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false).timeZone(separator: .omitted))
            let text = Timestamp(millisecondsSinceEpoch: milliseconds).description
            if String(text.prefix(19)) != String(expected.prefix(19)) { wrong.append("\(milliseconds): \(text) vs \(expected)") }
        }
        let wrongCount = wrong.count
        #expect(wrongCount == 0, "e.g. \(wrong.prefix(3).joined(separator: ", "))")
    }

    /// A timestamp turned into a Foundation date and back is the same timestamp.
    @Test func dateRoundTripKeepsTheMillisecond() {
        var rng = SeededGenerator(seed: 42)
        var wrong: [String] = []
        for _ in 0..<10_000 {
            let timestamp = Timestamp(millisecondsSinceEpoch: Int64.random(in: 0...4_102_444_800_000, using: &rng))
            let back = Timestamp(timestamp.date)
            if back != timestamp { wrong.append("\(timestamp.millisecondsSinceEpoch) → \(back.millisecondsSinceEpoch)") }
        }
        let wrongCount = wrong.count
        #expect(wrongCount == 0, "of 10000, e.g. \(wrong.prefix(3).joined(separator: ", "))")
    }

    @Test func dateInitTruncatesToTheMillisecond() {
        #expect(Timestamp(Date(timeIntervalSince1970: 1.2345)).millisecondsSinceEpoch == 1234)
        #expect(Timestamp(Date(timeIntervalSince1970: -0.0005)).millisecondsSinceEpoch == -1)
        #expect(Timestamp(Date(timeIntervalSince1970: 0)).millisecondsSinceEpoch == 0)
    }

    @Test func codableAsMillisecondsObject() throws {
        let timestamp = Timestamp(millisecondsSinceEpoch: 1_767_225_600_123)
        let decoded = try JSONDecoder().decode(Timestamp.self, from: JSONEncoder().encode(timestamp))
        #expect(decoded == timestamp)
    }

    @Test func manualClockStartsAtNewYear2026ByDefault() {
        #expect(ManualClock().now() == newYear2026)
        #expect(ManualClock(now: Timestamp(millisecondsSinceEpoch: 5)).now().millisecondsSinceEpoch == 5)
    }

    @Test func manualClockAdvancesByDurationAndNeverGoesBack() {
        let clock = ManualClock(now: newYear2026)
        clock.advance(by: .seconds(3600))
        #expect(clock.now() == newYear2026 + .seconds(3600))
        clock.advance(by: .milliseconds(1))
        #expect(clock.now().millisecondsSinceEpoch == newYear2026.millisecondsSinceEpoch + 3_600_001)
        clock.advance(by: .seconds(-10))
        #expect(clock.now().millisecondsSinceEpoch == newYear2026.millisecondsSinceEpoch + 3_600_001)
        clock.advance(by: .zero)
        #expect(clock.now().millisecondsSinceEpoch == newYear2026.millisecondsSinceEpoch + 3_600_001)
    }

    @Test func manualClockAdvancesToALaterInstantOnly() {
        let clock = ManualClock(now: newYear2026)
        let later = newYear2026 + .seconds(86_400)
        clock.advance(to: later)
        #expect(clock.now() == later)
        clock.advance(to: newYear2026)
        #expect(clock.now() == later)
        clock.advance(to: later)
        #expect(clock.now() == later)
    }

    @Test func manualClockIsSharedAcrossTasks() async {
        let clock = ManualClock(now: Timestamp(millisecondsSinceEpoch: 0))
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<10 {
                group.addTask { for _ in 0..<100 { clock.advance(by: .milliseconds(1)) } }
            }
        }
        #expect(clock.now().millisecondsSinceEpoch == 1_000)
    }

    @Test func systemClockIsNearFoundationsNow() {
        let before = Timestamp(Date())
        let now = SystemClock().now()
        let after = Timestamp(Date())
        #expect(before <= now && now <= after)
    }
}

@Suite("Text checks")
struct TextCheckTests {
    @Test(arguments: ["page.viewed", "a", "checkout.started", "a1_b.c2", "order_v2.line_added", String(repeating: "a", count: 64)])
    func eventTypeNamesAccepted(name: String) {
        #expect(EventTypeDefinition.isEventTypeName(name))
    }

    @Test(arguments: [
        "", ".", "a.", ".a", "a..b", "1a", "a.1b", "_a", "a._b", "Page.viewed", "page-viewed", "page viewed", "pagé.viewed", "a.b\n",
        String(repeating: "a", count: 65),
    ])
    func eventTypeNamesRejected(name: String) {
        #expect(!EventTypeDefinition.isEventTypeName(name))
    }

    @Test(arguments: [
        ("evt-1", false), ("", false), ("tab\there", false), ("ü and ß", false), ("a\nb", true), ("a\rb", true), ("a\r\nb", true),
        ("a\u{0B}b", true), ("a\u{0C}b", true), ("ä\u{85}b", true), ("a\u{2028}b", true), ("a\u{2029}b", true), ("ü\nb", true),
    ])
    func newlinesAreFoundInASCIIAndUnicodeText(text: String, expected: Bool) {
        #expect(text.containsNewline == expected)
        #expect(text.containsNewline == text.contains(where: \.isNewline))
    }
}
