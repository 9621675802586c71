import Foundation
import Testing
@testable import RapportCore

@Suite("RapportError and Validator")
struct RapportErrorTests {
    @Test func invalidMakesOneViolation() {
        let error = RapportError.invalid("emails[1]", "is not an e-mail address")
        #expect(error == .invalidArgument([FieldViolation(field: "emails[1]", problem: "is not an e-mail address")]))
        #expect(error.fieldViolations.map(\.field) == ["emails[1]"])
        #expect(error.description == "invalid argument: emails[1]: is not an e-mail address")
    }

    @Test func descriptionsNameTheEntity() {
        #expect(RapportError.notFound(entity: "customer", id: "cus_1").description == "customer 'cus_1' not found")
        #expect(RapportError.alreadyExists(entity: "order", id: "web/1").description == "order 'web/1' already exists")
        #expect(
            RapportError.etagMismatch(entity: "customer", id: "cus_1", expected: "\"3\"", actual: "\"4\"").description
                == "customer 'cus_1' was changed by someone else: etag is \"4\", the request expected \"3\""
        )
        #expect(RapportError.failedPrecondition("merge already undone").description == "failed precondition: merge already undone")
        #expect(RapportError.storage("disk full").description == "storage failure: disk full")
        #expect(
            RapportError.invalidArgument([FieldViolation(field: "a", problem: "x"), FieldViolation(field: "b", problem: "y")]).description
                == "invalid argument: a: x; b: y"
        )
        #expect(RapportError.notFound(entity: "customer", id: "cus_1").fieldViolations.isEmpty)
    }

    @Test func nestedViolationPaths() {
        let violation = FieldViolation(field: "quantity", problem: "must be positive")
        #expect(violation.nested(under: "lines[0]").field == "lines[0].quantity")
        #expect(violation.nested(under: "").field == "quantity")
        #expect(FieldViolation(field: "", problem: "p").nested(under: "lines[0]").field == "lines[0]")
        #expect(violation.nested(under: "lines[0]").problem == "must be positive")
    }

    @Test func validatorCollectsEverythingThenThrows() {
        var validator = Validator()
        #expect(throws: Never.self) { try validator.check() }

        validator.add("name", "is required")
        let value = validator.capture("lines[2]") { () throws(RapportError) -> Int in throw .invalid("quantity", "must be positive") }
        #expect(value == nil)
        let kept = validator.capture("lines[3]") { () throws(RapportError) -> Int in 7 }
        #expect(kept == 7)
        validator.capture("order") { () throws(RapportError) -> Void in throw .notFound(entity: "order", id: "ord_1") }

        let violations = invalidArgumentViolations { () throws(RapportError) in try validator.check() }
        #expect(
            violations == [
                FieldViolation(field: "name", problem: "is required"),
                FieldViolation(field: "lines[2].quantity", problem: "must be positive"),
                FieldViolation(field: "order", problem: "order 'ord_1' not found"),
            ]
        )
    }
}

@Suite("Attributes")
struct AttributeTests {
    @Test(arguments: ["a", "shoe_size", "x1", "a_b_c_1", String(repeating: "k", count: 64)])
    func acceptsKeys(key: String) throws {
        try AttributeDefinition.validateKey(key, field: "key")
    }

    @Test(arguments: [
        ("", "lower-case letter"),
        ("Shoe", "lower-case letter"),
        ("_x", "lower-case letter"),
        ("1x", "lower-case letter"),
        ("shoe-size", "only lower-case letters"),
        ("shoe size", "only lower-case letters"),
        ("shoeSize", "only lower-case letters"),
        ("schuhgröße", "only lower-case letters"),
        (String(repeating: "k", count: 65), "longer than 64"),
    ])
    func rejectsKeysNamingTheField(key: String, problem: String) {
        expectSingleViolation(field: "definitions[0].key", mentions: [problem]) { () throws(RapportError) in
            try AttributeDefinition.validateKey(key, field: "definitions[0].key")
        }
    }

    @Test func definitionValidatesKeyAndDescription() throws {
        try AttributeDefinition(key: "vip", type: .bool, description: String(repeating: "d", count: 1000)).validate()
        expectSingleViolation(field: "key") { () throws(RapportError) in try AttributeDefinition(key: "VIP", type: .bool).validate() }
        expectSingleViolation(field: "description", mentions: ["1000"]) { () throws(RapportError) in
            try AttributeDefinition(key: "vip", type: .bool, description: String(repeating: "d", count: 1001)).validate()
        }
    }

    @Test func schemaChecksEveryValueInKeyOrder() {
        let schema = AttributeSchema([AttributeDefinition(key: "vip", type: .bool), AttributeDefinition(key: "score", type: .int)])
        let violations = invalidArgumentViolations { () throws(RapportError) in
            try schema.validate(["zeta": .bool(true), "vip": .string("yes"), "score": .int(3), "alpha": .int(1)], parent: "properties")
        }
        #expect(violations.map(\.field) == ["properties.alpha", "properties.vip", "properties.zeta"])
        #expect(violations[1].problem == "must be bool, got string")
    }

    @Test(arguments: [("12.50", "12.5"), ("-3", "-3"), ("+0.001", "0.001"), ("007", "7"), (String(repeating: "9", count: 38), String(repeating: "9", count: 38))])
    func decimalsWrittenInFullAreRead(text: String, expected: String) {
        #expect(AttributeValue.decimal(parsing: text) == Decimal(string: expected))
    }

    @Test(arguments: ["", "-", "+", ".", "1.", ".5", "1.2.3", "12-5", "5+", "1e5", "1,5", " 1", "1 ", "١٢", String(repeating: "9", count: 39)])
    func decimalsThatOnlyStartLikeANumberAreRefused(text: String) {
        #expect(AttributeValue.decimal(parsing: text) == nil)
    }

    @Test func laterDefinitionOfAKeyWins() throws {
        let schema = AttributeSchema([AttributeDefinition(key: "vip", type: .bool), AttributeDefinition(key: "vip", type: .string)])
        try schema.validate(["vip": .string("gold")])
        #expect(schema.definitions["vip"]?.type == .string)
    }

    @Test(arguments: [
        (AttributeValue.string("x"), AttributeType.string),
        (.int(1), .int),
        (.decimal(Decimal(string: "1.5")!), .decimal),
        (.bool(false), .bool),
        (.timestamp(newYear2026), .timestamp),
        (.stringList([]), .stringList),
    ])
    func valueType(value: AttributeValue, type: AttributeType) {
        #expect(value.type == type)
    }

    @Test func emptyValuesAreOnlyEmptyStringsAndLists() {
        #expect(AttributeValue.string("").isEmpty)
        #expect(AttributeValue.stringList([]).isEmpty)
        #expect(!AttributeValue.string(" ").isEmpty)
        #expect(!AttributeValue.stringList([""]).isEmpty)
        #expect(!AttributeValue.int(0).isEmpty)
        #expect(!AttributeValue.bool(false).isEmpty)
    }

    @Test func descriptions() {
        #expect(AttributeValue.string("a").description == "\"a\"")
        #expect(AttributeValue.int(-3).description == "-3")
        #expect(AttributeValue.decimal(Decimal(string: "38.5")!).description == "38.5")
        #expect(AttributeValue.bool(true).description == "true")
        #expect(AttributeValue.timestamp(newYear2026).description == "2026-01-01T00:00:00.000Z")
        #expect(AttributeValue.stringList(["a", "b"]).description == "[\"a\", \"b\"]")
    }

    @Test(arguments: [
        AttributeValue.string("héllo"),
        .int(Int64.min),
        .decimal(Decimal(string: "12345678901234567890.123456789")!),
        .decimal(Decimal(string: "-0.1")!),
        .bool(true),
        .timestamp(Timestamp(millisecondsSinceEpoch: 1_767_225_600_123)),
        .stringList(["a", "", "c"]),
    ])
    func codableRoundTripKeepsTypeAndValue(value: AttributeValue) throws {
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(AttributeValue.self, from: data) == value)
    }

    @Test func decimalsAreEncodedAsExactText() throws {
        let data = try JSONEncoder().encode(AttributeValue.decimal(Decimal(string: "0.1")!))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        #expect(object == ["type": "decimal", "value": "0.1"])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(AttributeValue.self, from: Data(#"{"type":"decimal","value":"abc"}"#.utf8))
        }
    }
}

@Suite("Small enums")
struct SmallEnumTests {
    @Test(arguments: [("web", Channel.web), ("WEB", .web), ("call_center", .callCenter), ("Marketplace", .marketplace)])
    func channelParsesCaseInsensitively(text: String, channel: Channel) throws {
        #expect(try Channel(parsing: text, field: "channel") == channel)
    }

    @Test(arguments: ["", "callcenter", "call-center", "fax"])
    func channelRejectsUnknownNamingTheField(text: String) {
        expectSingleViolation(field: "events[0].channel", mentions: ["'\(text)'", "call_center"]) { () throws(RapportError) in
            try Channel(parsing: text, field: "events[0].channel")
        }
    }

    @Test func onlyGrantedConsentAllowsContact() {
        #expect(ConsentStatus.allCases.filter(\.allows) == [.granted])
    }

    @Test func mergeIsActiveUntilUndone() {
        let before = customerRecord()
        var merge = MergeRecord(
            id: MergeID(uncheckedRawValue: "mrg_1"), survivorID: before.id, absorbedID: CustomerID(uncheckedRawValue: "cus_2"), reason: .manual,
            mergedAt: newYear2026, sequence: 1, survivorBefore: before, absorbedBefore: before
        )
        #expect(merge.isActive)
        merge.unmergedAt = newYear2026 + .seconds(1)
        #expect(!merge.isActive)
    }

    @Test func aMergeRecordRoundTripsAndOneEncodedBeforeItsLaterFieldsDecodes() throws {
        let before = customerRecord()
        let merge = MergeRecord(
            id: MergeID(uncheckedRawValue: "mrg_1"), survivorID: before.id, absorbedID: CustomerID(uncheckedRawValue: "cus_2"), reason: .manual,
            mergedAt: newYear2026, sequence: 1, survivorBefore: before, absorbedBefore: before,
            absorbedSegments: [SegmentMembership(segmentID: SegmentID(uncheckedRawValue: "seg_1"), customerID: CustomerID(uncheckedRawValue: "cus_2"), since: newYear2026)],
            adoptedRuns: [RunID(uncheckedRawValue: "run_1")])
        let encoded = try JSONEncoder().encode(merge)
        #expect(try JSONDecoder().decode(MergeRecord.self, from: encoded) == merge)
        // An idempotent reply stored by an earlier version has no `absorbedSegments`.
        var object = try #require(try JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        #expect(object.removeValue(forKey: "absorbedSegments") != nil)
        #expect(object.removeValue(forKey: "adoptedRuns") != nil)
        let older = try JSONDecoder().decode(MergeRecord.self, from: try JSONSerialization.data(withJSONObject: object))
        #expect(older.absorbedSegments.isEmpty && older.adoptedRuns.isEmpty)
        #expect(older.id == merge.id && older.survivorBefore == merge.survivorBefore && older.unmergedAt == nil)
    }

    @Test func orderLineTotalAndOrderKeyDescription() {
        #expect(OrderLine(sku: "A", quantity: 3, unitPriceMinor: 1_999).totalMinor == 5_997)
        // A line built by hand past Int64 saturates instead of trapping.
        #expect(OrderLine(sku: "A", quantity: .max, unitPriceMinor: 2).totalMinor == .max)
        #expect(OrderLine(sku: "A", quantity: -2, unitPriceMinor: .max).totalMinor == .min)
        #expect(OrderLine(sku: "A", quantity: -2, unitPriceMinor: .min).totalMinor == .max)
        #expect(OrderKey(source: "amazon", externalID: "123-45").description == "amazon/123-45")
        #expect(OrderKey(source: "a", externalID: "9") < OrderKey(source: "b", externalID: "1"))
        #expect(OrderKey(source: "a", externalID: "1") < OrderKey(source: "a", externalID: "2"))
    }
}
