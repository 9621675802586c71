import Foundation
import Testing
@testable import RapportCore

@Suite("LocalDate")
struct LocalDateTests {
    @Test(arguments: [
        LocalDate(year: 2024, month: 2, day: 29),
        LocalDate(year: 2000, month: 2, day: 29),
        LocalDate(month: 2, day: 29),
        LocalDate(year: 2023, month: 2, day: 28),
        LocalDate(year: 1990, month: 4, day: 30),
        LocalDate(year: 1990, month: 12, day: 31),
        LocalDate(year: 1900, month: 1, day: 1),
        LocalDate(year: 2200, month: 12, day: 31),
    ])
    func validDates(date: LocalDate) throws {
        try date.validate(field: "birthday")
    }

    @Test(arguments: [
        (LocalDate(year: 2023, month: 2, day: 29), "birthday.day", "1 to 28"),
        (LocalDate(year: 1900, month: 2, day: 29), "birthday.day", "1 to 28"),
        (LocalDate(year: 2100, month: 2, day: 29), "birthday.day", "1 to 28"),
        (LocalDate(month: 2, day: 30), "birthday.day", "1 to 29"),
        (LocalDate(year: 1990, month: 4, day: 31), "birthday.day", "1 to 30"),
        (LocalDate(year: 1990, month: 1, day: 0), "birthday.day", "got 0"),
        (LocalDate(year: 1990, month: 1, day: 32), "birthday.day", "got 32"),
        (LocalDate(year: 1990, month: 13, day: 1), "birthday.month", "got 13"),
        (LocalDate(year: 1990, month: 0, day: 1), "birthday.month", "got 0"),
        (LocalDate(year: 1899, month: 1, day: 1), "birthday.year", "got 1899"),
        (LocalDate(year: 2201, month: 1, day: 1), "birthday.year", "got 2201"),
    ])
    func invalidDatesNameTheComponent(date: LocalDate, field: String, problem: String) {
        expectSingleViolation(field: field, mentions: [problem]) { () throws(RapportError) in try date.validate(field: "birthday") }
    }

    @Test(arguments: [
        (LocalDate(year: 1990, month: 4, day: 17), "1990-04-17"),
        (LocalDate(year: 2024, month: 12, day: 5), "2024-12-05"),
        (LocalDate(year: 2024, month: 11, day: 30), "2024-11-30"),
        (LocalDate(month: 4, day: 17), "--04-17"),
        (LocalDate(month: 10, day: 1), "--10-01"),
    ])
    func description(date: LocalDate, text: String) {
        #expect(date.description == text)
    }

    @Test func ordersByYearMonthDay() {
        let dates = [
            LocalDate(year: 1991, month: 1, day: 1),
            LocalDate(year: 1990, month: 12, day: 31),
            LocalDate(year: 1990, month: 2, day: 1),
            LocalDate(year: 1990, month: 1, day: 31),
        ]
        #expect(dates.sorted() == dates.reversed())
        #expect(LocalDate(month: 12, day: 31) < LocalDate(year: 1900, month: 1, day: 1))
    }
}

@Suite("CustomerProfile")
struct CustomerProfileTests {
    let schema = AttributeSchema([
        AttributeDefinition(key: "shoe_size", type: .decimal),
        AttributeDefinition(key: "vip", type: .bool),
        AttributeDefinition(key: "nickname", type: .string),
        AttributeDefinition(key: "interests", type: .stringList),
    ])

    var valid: CustomerProfile {
        CustomerProfile(
            givenName: "Ada", familyName: "Lovelace", birthday: LocalDate(year: 1990, month: 12, day: 10), locale: "en-GB",
            timeZone: "Europe/London", addresses: [PostalAddress(label: "home", line1: "12 St James's Square", city: "London", postalCode: "SW1Y 4JH", country: "GB")],
            tags: ["newsletter", "vip"], lifecycleStage: .loyal,
            attributes: ["shoe_size": .decimal(Decimal(string: "38.5")!), "vip": .bool(true), "interests": .stringList(["maths"])]
        )
    }

    @Test func validProfilePasses() throws {
        try valid.validate(schema: schema)
        try CustomerProfile().validate(schema: AttributeSchema())
    }

    @Test(arguments: ["en", "en-US", "de-DE", "zh-Hant-TW", "sr-Latn-RS", "es-419", "gsw", "en-US-x-twain"])
    func acceptsLanguageTags(locale: String) throws {
        var profile = valid
        profile.locale = locale
        try profile.validate(schema: schema)
    }

    @Test(arguments: ["en_US", "e", "english", "en-", "-US", "en US", "12-US", "en-abcdefghi", "fr-ça"])
    func rejectsBadLocale(locale: String) {
        var profile = valid
        profile.locale = locale
        expectSingleViolation(field: "locale", mentions: ["'\(locale)'"]) { () throws(RapportError) in try profile.validate(schema: schema) }
    }

    @Test(arguments: ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"])
    func acceptsTimeZones(timeZone: String) throws {
        var profile = valid
        profile.timeZone = timeZone
        try profile.validate(schema: schema)
    }

    @Test(arguments: ["Mars/Olympus_Mons", "Europe/Berln", "not a zone"])
    func rejectsBadTimeZone(timeZone: String) {
        var profile = valid
        profile.timeZone = timeZone
        expectSingleViolation(field: "time_zone", mentions: ["'\(timeZone)'"]) { () throws(RapportError) in try profile.validate(schema: schema) }
    }

    @Test(arguments: ["de", "DEU", "", "D", "É1", "1A"])
    func rejectsBadAddressCountry(country: String) {
        var profile = valid
        profile.addresses.append(PostalAddress(line1: "Unter den Linden 1", city: "Berlin", country: country))
        expectSingleViolation(field: "addresses[1].country", mentions: ["'\(country)'"]) { () throws(RapportError) in
            try profile.validate(schema: schema)
        }
    }

    @Test func addressNeedsLineAndCityAndShortFields() {
        var profile = valid
        profile.addresses = [PostalAddress(line1: " ", city: "", postalCode: String(repeating: "9", count: 201), country: "DE")]
        let violations = invalidArgumentViolations { () throws(RapportError) in try profile.validate(schema: schema) }
        #expect(Set(violations.map(\.field)) == ["addresses[0].line1", "addresses[0].city", "addresses[0].postal_code"])
    }

    @Test func rejectsMoreThan20Addresses() {
        var profile = valid
        profile.addresses = Array(repeating: PostalAddress(line1: "1 Main St", city: "Springfield", country: "US"), count: 21)
        expectSingleViolation(field: "addresses", mentions: ["20"]) { () throws(RapportError) in try profile.validate(schema: schema) }
    }

    @Test func namesUpTo200Characters() throws {
        var profile = valid
        profile.givenName = String(repeating: "a", count: 200)
        profile.familyName = String(repeating: "é", count: 200)
        try profile.validate(schema: schema)

        profile.givenName = String(repeating: "a", count: 201)
        expectSingleViolation(field: "given_name", mentions: ["200"]) { () throws(RapportError) in try profile.validate(schema: schema) }

        profile.givenName = "Ada"
        profile.familyName = String(repeating: "b", count: 201)
        expectSingleViolation(field: "family_name", mentions: ["200"]) { () throws(RapportError) in try profile.validate(schema: schema) }
    }

    @Test(arguments: ["", "a,b", "line\nbreak", String(repeating: "t", count: 65)])
    func rejectsBadTag(tag: String) {
        var profile = valid
        profile.tags = ["ok", tag]
        expectSingleViolation(field: "tags[1]", mentions: ["'\(tag)'"]) { () throws(RapportError) in try profile.validate(schema: schema) }
    }

    @Test func rejectsMoreThan200Tags() {
        var profile = valid
        profile.tags = (0..<201).map { "t\($0)" }
        expectSingleViolation(field: "tags", mentions: ["200"]) { () throws(RapportError) in try profile.validate(schema: schema) }
    }

    @Test func birthdayViolationKeepsItsPath() {
        var profile = valid
        profile.birthday = LocalDate(year: 2023, month: 2, day: 29)
        expectSingleViolation(field: "birthday.day") { () throws(RapportError) in try profile.validate(schema: schema) }
    }

    @Test func rejectsUndeclaredAttribute() {
        var profile = valid
        profile.attributes["favourite_colour"] = .string("teal")
        expectSingleViolation(field: "attributes.favourite_colour", mentions: ["not a declared attribute"]) { () throws(RapportError) in
            try profile.validate(schema: schema)
        }
    }

    @Test func rejectsMistypedAttribute() {
        var profile = valid
        profile.attributes["shoe_size"] = .string("38")
        expectSingleViolation(field: "attributes.shoe_size", mentions: ["decimal", "string"]) { () throws(RapportError) in
            try profile.validate(schema: schema)
        }
    }

    @Test func rejectsOverLongStringAttribute() throws {
        var profile = valid
        profile.attributes["nickname"] = .string(String(repeating: "n", count: 10_000))
        try profile.validate(schema: schema)
        profile.attributes["nickname"] = .string(String(repeating: "n", count: 10_001))
        expectSingleViolation(field: "attributes.nickname", mentions: ["10000"]) { () throws(RapportError) in try profile.validate(schema: schema) }
    }

    @Test func reportsEveryViolationAtOnce() {
        var profile = valid
        profile.givenName = String(repeating: "a", count: 201)
        profile.locale = "english"
        profile.timeZone = "Nowhere/City"
        profile.birthday = LocalDate(year: 1990, month: 13, day: 1)
        profile.addresses[0].country = "gb"
        profile.tags = ["a,b"]
        profile.attributes = ["vip": .int(1), "unknown": .bool(true)]
        let violations = invalidArgumentViolations { () throws(RapportError) in try profile.validate(schema: schema) }
        #expect(
            Set(violations.map(\.field)) == [
                "given_name", "locale", "time_zone", "birthday.month", "addresses[0].country", "tags[0]", "attributes.vip", "attributes.unknown",
            ]
        )
        #expect(violations.count == 8)
    }

    @Test func normalizedTrimsNamesAndSortsAndDedupesTags() {
        let profile = CustomerProfile(
            givenName: "  Ada\n", familyName: "\tLovelace ", locale: " en-GB ", timeZone: " Europe/London ",
            tags: ["vip", " newsletter", "vip ", "b2b", "newsletter"]
        )
        let normalized = profile.normalized()
        #expect(normalized.givenName == "Ada")
        #expect(normalized.familyName == "Lovelace")
        #expect(normalized.locale == "en-GB")
        #expect(normalized.timeZone == "Europe/London")
        #expect(normalized.tags == ["b2b", "newsletter", "vip"])
        #expect(normalized.normalized() == normalized)
    }

    @Test func normalizedKeepsOtherFields() {
        // Already in stored form: nothing else (addresses, attributes, stage, birthday) is touched.
        #expect(valid.normalized() == valid)
    }

    @Test func changedFieldsNamesEachDifferingField() {
        let before = valid
        var after = before
        #expect(after.changedFields(comparedTo: before).isEmpty)

        after.givenName = "Augusta"
        after.tags = ["vip"]
        after.lifecycleStage = nil
        after.birthday = nil
        after.addresses[0].city = "Londres"
        #expect(after.changedFields(comparedTo: before) == [.givenName, .tags, .lifecycleStage, .birthday, .addresses])

        var other = before
        other.familyName = "Byron"
        other.locale = "en-US"
        other.timeZone = "UTC"
        #expect(other.changedFields(comparedTo: before) == [.familyName, .locale, .timeZone])
    }

    @Test func changedFieldsComparesAttributesKeyByKey() {
        let before = valid
        var after = before
        after.attributes["vip"] = .bool(false)  // changed
        after.attributes["shoe_size"] = nil  // removed
        after.attributes["nickname"] = .string("Ada")  // added
        let changed = after.changedFields(comparedTo: before)
        #expect(changed == [.attribute("vip"), .attribute("shoe_size"), .attribute("nickname")])
        #expect(!changed.contains(.attributes))
        #expect(before.changedFields(comparedTo: after) == changed)
    }

    @Test func changedFieldsTellsValueTypesApart() {
        var before = CustomerProfile()
        before.attributes["score"] = .int(1)
        var after = before
        after.attributes["score"] = .decimal(1)
        #expect(after.changedFields(comparedTo: before) == [.attribute("score")])
    }

    @Test func assignCopiesOnlyTheNamedFields() {
        let source = CustomerProfile(
            givenName: "Grace", familyName: "Hopper", birthday: LocalDate(month: 12, day: 9), locale: "en-US", timeZone: "America/New_York",
            addresses: [], tags: ["navy"], lifecycleStage: .active, attributes: ["vip": .bool(false)]
        )
        var target = valid
        target.assign([.givenName, .tags], from: source)
        #expect(target.givenName == "Grace")
        #expect(target.tags == ["navy"])
        #expect(target.familyName == "Lovelace")
        #expect(target.locale == "en-GB")
        #expect(target.attributes == valid.attributes)

        var all = valid
        all.assign(Set(CustomerField.standard + [.attributes]), from: source)
        #expect(all == source)
    }

    @Test func assignAttributesReplacesTheWholeMap() {
        var source = CustomerProfile()
        source.attributes = ["nickname": .string("Ada")]
        var target = valid
        target.assign([.attributes], from: source)
        #expect(target.attributes == ["nickname": .string("Ada")])
        #expect(target.givenName == "Ada")
    }

    @Test func assignOneAttributeSetsOrRemovesOnlyThatKey() {
        var source = CustomerProfile()
        source.attributes = ["vip": .bool(false), "nickname": .string("Countess")]
        var target = valid
        target.assign([.attribute("vip"), .attribute("shoe_size")], from: source)
        // vip copied, shoe_size removed because the source has none, nickname and interests untouched.
        #expect(target.attributes == ["vip": .bool(false), "interests": .stringList(["maths"])])
    }

    @Test func assignOfChangedFieldsMakesProfilesEqual() {
        var source = valid
        source.givenName = "Augusta"
        source.attributes["vip"] = nil
        source.attributes["nickname"] = .string("Ada")
        var target = valid
        target.assign(source.changedFields(comparedTo: target), from: source)
        #expect(target == source)
    }
}

@Suite("CustomerField")
struct CustomerFieldTests {
    @Test(arguments: ["given_name", "family_name", "birthday", "locale", "time_zone", "addresses", "tags", "lifecycle_stage", "attributes"])
    func parsesKnownPaths(path: String) throws {
        let field = try CustomerField(parsing: path, field: "update_mask[0]")
        #expect(field.path == path)
        #expect(field.attributeKey == nil)
        #expect((CustomerField.standard + [.attributes]).contains(field))
    }

    @Test(arguments: ["shoe_size", "vip", "a", "x1_2"])
    func parsesAttributePaths(key: String) throws {
        let field = try CustomerField(parsing: "attributes.\(key)", field: "update_mask[0]")
        #expect(field == .attribute(key))
        #expect(field.attributeKey == key)
        #expect(field.description == "attributes.\(key)")
    }

    @Test(arguments: ["nickname", "emails", "Given_Name", "given_name ", "", "attribute.vip", "identities"])
    func rejectsUnknownPathsNamingTheField(path: String) {
        expectSingleViolation(field: "update_mask[2]", mentions: ["'\(path)'", "given_name", "attributes.KEY"]) { () throws(RapportError) in
            try CustomerField(parsing: path, field: "update_mask[2]")
        }
    }

    @Test(arguments: ["attributes.", "attributes.Shoe", "attributes.1st", "attributes.shoe-size", "attributes.a.b"])
    func rejectsBadAttributeKeysNamingTheField(path: String) {
        expectSingleViolation(field: "update_mask[1]") { () throws(RapportError) in try CustomerField(parsing: path, field: "update_mask[1]") }
    }

    @Test func standardFieldsAreTheEightNonAttributeFields() {
        #expect(
            CustomerField.standard.map(\.path) == [
                "given_name", "family_name", "birthday", "locale", "time_zone", "addresses", "tags", "lifecycle_stage",
            ]
        )
    }

    @Test func fieldsSortByPath() {
        let fields: [CustomerField] = [.tags, .attribute("vip"), .givenName, .attributes]
        #expect(fields.sorted().map(\.path) == ["attributes", "attributes.vip", "given_name", "tags"])
    }
}

@Suite("Customer")
struct CustomerTests {
    @Test func etagEmailsAndPhones() {
        let customer = Customer(
            id: CustomerID(uncheckedRawValue: "cus_1"), profile: CustomerProfile(),
            identities: [
                Identity(kind: .email, value: "a@x.de"), Identity(kind: .phone, value: "+49301234567"),
                Identity(kind: .email, value: "b@x.de"), Identity(kind: .memberCard, value: "C1"),
            ],
            createdAt: newYear2026, updatedAt: newYear2026, version: 7
        )
        #expect(customer.etag == "\"7\"")
        #expect(customer.emails == ["a@x.de", "b@x.de"])
        #expect(customer.phones == ["+49301234567"])
    }

    @Test func mergedIntoNamesTheSurvivor() {
        var record = customerRecord()
        #expect(record.mergedInto == nil)
        let survivor = CustomerID(uncheckedRawValue: "cus_2")
        record.state = .merged(into: survivor, by: MergeID(uncheckedRawValue: "mrg_1"))
        #expect(record.mergedInto == survivor)
    }
}
