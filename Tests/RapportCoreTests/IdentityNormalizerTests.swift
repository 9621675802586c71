import Testing
@testable import RapportCore

@Suite("IdentityNormalizer: e-mail addresses")
struct EmailNormalizationTests {
    let normalizer = IdentityNormalizer()

    @Test(arguments: [
        ("ada@example.com", "ada@example.com"),
        ("  Ada@Example.COM ", "ada@example.com"),
        ("\tADA.LOVELACE@EXAMPLE.CO.UK\n", "ada.lovelace@example.co.uk"),
        ("Ada+Newsletter@Example.com", "ada+newsletter@example.com"),
        ("o'brien_x-y@mail.example-shop.de", "o'brien_x-y@mail.example-shop.de"),
        ("José@Bücher.DE", "josé@bücher.de"),
        ("Δοκιμή@Παράδειγμα.Δοκιμή", "δοκιμή@παράδειγμα.δοκιμή"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("a@b.co", "a@b.co"),
        ("user@123.example.com", "user@123.example.com"),
        ("user@example.xn--p1ai", "user@example.xn--p1ai"),
        // A byte order mark or zero-width space around it (the first field of a CSV file, copied text): trimmed.
        ("\u{FEFF}ada@example.com", "ada@example.com"),
        ("ada@example.com\u{200B}", "ada@example.com"),
        ("\u{FEFF}José@example.com", "josé@example.com"),
        ("\u{200E}ada@example.com\u{202C}", "ada@example.com"),  // direction marks
    ])
    func acceptsAndNormalizes(input: String, expected: String) throws {
        #expect(try normalizer.email(input) == expected)
    }

    @Test(arguments: [
        ("ada.example.com", "exactly one '@'"),
        ("ada@lovelace@example.com", "exactly one '@'"),
        ("@example.com", "before '@'"),
        (".ada@example.com", "misplaced '.'"),
        ("ada.@example.com", "misplaced '.'"),
        ("ada..lovelace@example.com", "misplaced '.'"),
        ("ada@.example.com", "invalid domain"),
        ("ada@example.com.", "invalid domain"),
        ("ada@example..com", "invalid domain"),
        ("ada@-example.com", "invalid domain"),
        ("ada@example-.com", "invalid domain"),
        ("ada@exa_mple.com", "invalid domain"),
        ("ada@localhost", "no domain with a dot"),
        ("ada@", "no domain with a dot"),
        ("ada@example.123", "invalid top-level domain"),
        ("ada@example.c", "invalid top-level domain"),
        ("ada lovelace@example.com", "not allowed"),
        ("ada@exa mple.com", "invalid domain"),
        ("ada(comment)@example.com", "not allowed"),
        ("\"ada\"@example.com", "not allowed"),
        // Spaces and invisible characters of any kind inside: one mailbox would become two identities.
        ("ada\u{00A0}lovelace@example.com", "not allowed"),
        ("ada\u{200B}@example.com", "not allowed"),
        ("jos\u{200D}é@example.com", "not allowed"),
        ("ada\u{3000}x@example.com", "not allowed"),
        ("ada@exa\u{200D}mple.com", "invalid domain"),
        // Controls, private use and the replacement character are nothing a person types.
        ("a\u{80}b@example.com", "not allowed"),
        ("a\u{E000}b@example.com", "not allowed"),
        ("a\u{FFFD}b@example.com", "not allowed"),
        (String(repeating: "a", count: 65) + "@example.com", "too long part before '@'"),
    ])
    func rejectsNamingTheFieldAndTheInput(input: String, problem: String) {
        expectSingleViolation(field: "customers[3].email", mentions: [input, problem]) { () throws(RapportError) in
            try normalizer.email(input, field: "customers[3].email")
        }
    }

    @Test(arguments: ["", "   ", "\n\t"])
    func rejectsEmpty(input: String) {
        expectSingleViolation(field: "email", mentions: ["empty"]) { () throws(RapportError) in try normalizer.email(input) }
    }

    @Test func localPartOf64CharactersIsTheLongestAllowed() throws {
        let local = String(repeating: "a", count: 64)
        #expect(try normalizer.email(local + "@example.com") == local + "@example.com")
    }

    @Test func addressOf254CharactersIsTheLongestAllowed() throws {
        // 64 + 1 + 63 + 1 + 63 + 1 + 57 + 4 = 254 bytes, every part within its own limit.
        let longest = String(repeating: "a", count: 64) + "@" + String(repeating: "b", count: 63) + "." + String(repeating: "c", count: 63) + "."
            + String(repeating: "d", count: 57) + ".com"
        #expect(longest.utf8.count == 254)
        #expect(try normalizer.email(longest) == longest)

        let tooLong = String(repeating: "a", count: 64) + "@" + String(repeating: "b", count: 63) + "." + String(repeating: "c", count: 63) + "."
            + String(repeating: "d", count: 58) + ".com"
        #expect(tooLong.utf8.count == 255)
        expectSingleViolation(field: "email", mentions: ["254"]) { () throws(RapportError) in try normalizer.email(tooLong) }
    }

    @Test func domainLabelOf64CharactersIsRejected() {
        let input = "ada@" + String(repeating: "b", count: 64) + ".com"
        expectSingleViolation(field: "email", mentions: [input, "invalid domain"]) { () throws(RapportError) in try normalizer.email(input) }
    }

    @Test func lengthLimitCountsBytesNotCharacters() {
        // 40 two-byte letters are 80 bytes: too long for a local part even though it is 40 characters.
        let input = String(repeating: "é", count: 40) + "@example.com"
        expectSingleViolation(field: "email", mentions: ["too long"]) { () throws(RapportError) in try normalizer.email(input) }
    }
}

@Suite("IdentityNormalizer: phone numbers")
struct PhoneNormalizationTests {
    @Test(arguments: [
        ("US", "(415) 555-0123", "+14155550123"),
        ("US", "415.555.0123", "+14155550123"),
        ("US", "1-415-555-0123", "+14155550123"),
        ("US", "+1 415 555 0123", "+14155550123"),
        ("US", "011 44 20 7946 0958", "+442079460958"),
        ("US", "0044 20 7946 0958", "+442079460958"),
        ("us", "  (415) 555-0123\n", "+14155550123"),
        ("US", "415\u{00A0}555\u{00A0}0123", "+14155550123"),
        ("DE", "030 1234567", "+49301234567"),
        ("DE", "030/1234567", "+49301234567"),
        ("DE", "+49 30 1234567", "+49301234567"),
        ("DE", "0049 30 1234567", "+49301234567"),
        // The trunk 0 written after the country code is dropped, as dialling does; Italy's leading 0 is no trunk.
        ("DE", "+49 030 1234567", "+49301234567"),
        ("DE", "0049 030 1234567", "+49301234567"),
        ("US", "+49 (0)30 1234567", "+49301234567"),
        ("GB", "+44 020 7946 0958", "+442079460958"),
        ("FR", "+33 06 12 34 56 78", "+33612345678"),
        ("GB", "020 7946 0958", "+442079460958"),
        ("GB", "+44 (0)20 7946 0958", "+442079460958"),
        ("GB", "0044 20 7946 0958", "+442079460958"),
        ("DE", "+44 (0)20 7946 0958", "+442079460958"),
        ("FR", "06 12 34 56 78", "+33612345678"),
        ("FR", "+33 6 12 34 56 78", "+33612345678"),
        ("IT", "06 1234 5678", "+390612345678"),
        ("IT", "+39 06 1234 5678", "+390612345678"),
        ("GB", "+39 (0)6 1234 5678", "+390612345678"),  // the bracketed 0 is Rome's, not a trunk prefix
        ("GB", "+34 (0)91 123 45 67", "+34911234567"),  // no Spanish number starts with 0: dropped as before
        ("GB", "+1 (0)415 555 0123", "+14155550123"),
        ("JP", "010 44 20 7946 0958", "+442079460958"),
        ("AU", "0412 345 678", "+61412345678"),
        ("RU", "8 915 123 45 67", "+79151234567"),
        // Typography and keyboards: a '+' in brackets, narrow, thin and full-width spaces, non-breaking hyphens and
        // en dashes, full-width digits.
        ("DE", "(+44) 20 7946 0958", "+442079460958"),
        ("FR", "06\u{202F}12\u{202F}34\u{202F}56\u{202F}78", "+33612345678"),
        ("FR", "06\u{2009}12\u{2009}34\u{2009}56\u{2009}78", "+33612345678"),
        ("US", "+1 415\u{2011}555\u{2011}0123", "+14155550123"),
        ("US", "415 – 555 – 0123", "+14155550123"),
        ("JP", "０９０-１２３４-５６７８", "+819012345678"),
        ("JP", "＋８１\u{3000}９０\u{3000}１２３４\u{3000}５６７８", "+819012345678"),
        ("US", "\u{FEFF}(415) 555-0123", "+14155550123"),
        // A joiner is part of the character before it, here a digit: the digit counts (it was silently dropped).
        ("DE", "030 123\u{200C}4567", "+49301234567"),
        ("DE", "030 123\u{200D}4567", "+49301234567"),
        // A calling code Rapport has no table for: kept as given, only the overall length is checked.
        ("US", "+359 2 123 4567", "+35921234567"),
    ])
    func normalizesToE164(region: String, input: String, expected: String) throws {
        let normalizer = IdentityNormalizer(defaultRegion: region)
        #expect(try normalizer.phone(input) == expected)
    }

    /// The spelling older versions stored a number with when it was written with the trunk 0 after the country code.
    @Test func legacySpellingKeepsTheTrunkZeroOnlyWhereThereIsOne() {
        func legacy(_ value: String) -> String? { IdentityNormalizer.legacySpelling(of: Identity(kind: .phone, value: value))?.value }
        #expect(legacy("+49301234567") == "+490301234567")
        #expect(legacy("+442079460958") == nil)  // "+4402079460958" was refused: too long for Britain
        #expect(legacy("+4319876543") == "+43019876543")
        // Italy has no trunk prefix: "+39 (0)6 ..." was kept without Rome's 0.
        #expect(legacy("+390612345678") == "+39612345678")
        #expect(legacy("+393123456789") == nil)
        #expect(legacy("+14155550123") == nil)
        #expect(legacy("+33612345678") == nil)  // "+330612345678" was refused: too long for France
        #expect(legacy("+35921234567") == nil)  // no table for Bulgaria
        #expect(IdentityNormalizer.legacySpelling(of: Identity(kind: .anonymousID, value: "+49301234567")) == nil)
        // ...and back to the number dialled.
        #expect(IdentityNormalizer.dialable(Identity(kind: .phone, value: "+490301234567")).value == "+49301234567")
        #expect(IdentityNormalizer.dialable(Identity(kind: .phone, value: "+49301234567")).value == "+49301234567")
        #expect(IdentityNormalizer.dialable(Identity(kind: .phone, value: "+390612345678")).value == "+390612345678")
    }

    @Test(arguments: [
        ("US", "415-555-CALL", "'C'"),
        ("US", "phone", "'p'"),
        ("US", "+1 415 555 0123 ext 4", "'e'"),
        ("US", "415_555_0123", "'_'"),
        ("US", "+", "no digits"),
        ("US", "( ) -", "no digits"),
        ("US", "12345", "not a valid US number"),
        ("US", "+1234567", "6 digits after +1"),
        ("US", "+359 1234", "7 digits"),  // no table for Bulgaria: 8 to 15 digits
        ("US", "+1234567890123456", "16 digits"),
        ("US", "00 1234567890123456", "16 digits"),
        ("US", "415 555 0123 4", "not a valid US number"),
        ("US", "555-0123", "not a valid US number"),
        ("US", "+1 415 555 012", "not a valid US number"),
        ("US", "+44 20 7946", "not a valid GB number"),
        ("DE", "030", "not a valid DE number"),
        ("FR", "06 12 34 56", "not a valid FR number"),
        ("FR", "+33 6 12 34 56", "not a valid FR number"),
        ("FR", "+33 06 12 34 56", "not a valid FR number"),
        ("DE", "+49 00 30 1234567", "cannot start with 00"),
        ("FR", "+33 06 12 34 56", "7 digits after +33"),  // counted without the trunk 0
        ("AT", "+43 0 123", "3 digits after +43"),
        ("IT", "06 12", "not a valid IT number"),
        ("US", "+0123456789", "no country code"),
        ("DE", "00 0123 456 789", "no country code"),
        ("US", "0123456789", "not a valid US number"),
        ("US", "+1 012 345 6789", "area code"),
        ("CA", "+1 112 345 6789", "area code"),
        ("US", "415 555 + 0123", "'+'"),
        ("US", "++1 415 555 0123", "'+'"),
        ("US", "415 555 ٠١٢٣x", "'x'"),
    ])
    func rejectsNamingTheFieldAndTheInput(region: String, input: String, problem: String) {
        let normalizer = IdentityNormalizer(defaultRegion: region)
        expectSingleViolation(field: "phones[1]", mentions: [input, problem]) { () throws(RapportError) in
            try normalizer.phone(input, field: "phones[1]")
        }
    }

    /// Regions whose own international prefix starts with `00` (`0011` in Australia, `001` in Hong Kong and Korea,
    /// `000` in Singapore): the dialled prefix must be removed whole, not read as `00` followed by digits.
    @Test(arguments: [
        ("AU", "0011 44 20 7946 0958"),
        ("HK", "001 44 20 7946 0958"),
        ("KR", "001 44 20 7946 0958"),
        ("SG", "000 44 20 7946 0958"),
    ])
    func regionalInternationalPrefixStartingWith00(region: String, input: String) throws {
        let normalizer = IdentityNormalizer(defaultRegion: region)
        #expect(try normalizer.phone(input) == "+442079460958")
    }

    /// A national number that starts with the trunk prefix but has the wrong length once it is removed must be
    /// rejected, not kept with the trunk digit inside the E.164 number (`+11415555012`, `+44020794609`).
    @Test(arguments: [
        ("US", "1-415-555-012"),
        ("GB", "020 7946 09"),
        ("FR", "06 12 34 56 7"),
    ])
    func nationalNumberOfWrongLengthAfterTrunkPrefix(region: String, input: String) {
        let normalizer = IdentityNormalizer(defaultRegion: region)
        expectSingleViolation(field: "phone", mentions: [input, "not a valid \(region) number"]) { () throws(RapportError) in
            try normalizer.phone(input)
        }
    }

    @Test(arguments: ["", "  ", "\n"])
    func rejectsEmpty(input: String) {
        expectSingleViolation(field: "phone", mentions: ["empty"]) { () throws(RapportError) in try IdentityNormalizer().phone(input) }
    }

    @Test func defaultRegionIsUS() throws {
        #expect(IdentityNormalizer().defaultRegion.code == "US")
        #expect(try IdentityNormalizer().phone("(415) 555-0123") == "+14155550123")
    }

    @Test func explicitRegion() throws {
        let region = try #require(PhoneRegion.byCode["DE"])
        #expect(try IdentityNormalizer(region: region).phone("030 1234567") == "+49301234567")
    }

    @Test func sameNationalDigitsDependOnTheDefaultRegion() throws {
        #expect(try IdentityNormalizer(defaultRegion: "FR").phone("0612345678") == "+33612345678")
        #expect(try IdentityNormalizer(defaultRegion: "IT").phone("0612345678") == "+390612345678")
        #expect(try IdentityNormalizer(defaultRegion: "DE").phone("0612345678") == "+49612345678")
    }

    @Test func regionTableHasUniqueCodes() {
        #expect(PhoneRegion.byCode.count == PhoneRegion.all.count)
        for region in PhoneRegion.all {
            #expect(region.code.count == 2)
            #expect(!region.callingCode.isEmpty && region.callingCode.allSatisfy(\.isNumber))
            // Every national number written in E.164 stays within 15 digits.
            #expect(region.callingCode.count + region.nationalLengths.upperBound <= 15, "\(region.code)")
        }
    }
}

@Suite("IdentityNormalizer: other identity kinds")
struct IdentityKindNormalizationTests {
    let normalizer = IdentityNormalizer(defaultRegion: "DE")

    @Test func emailAndPhoneGoThroughNormalize() throws {
        #expect(try normalizer.normalize(kind: .email, value: " Ada@Example.com ") == Identity(kind: .email, value: "ada@example.com"))
        #expect(try normalizer.normalize(kind: .phone, value: "030 1234567") == Identity(kind: .phone, value: "+49301234567"))
    }

    @Test func normalizePassesTheFieldOn() {
        expectSingleViolation(field: "identities[2].value", mentions: ["not-an-email"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .email, value: "not-an-email", field: "identities[2].value")
        }
        expectSingleViolation(field: "identities[0].value", mentions: ["12"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .phone, value: "12", field: "identities[0].value")
        }
    }

    @Test(arguments: [
        ("1234 5678", "12345678"),
        (" ab-12 cd-34 ", "AB12CD34"),
        ("gold\t0042", "GOLD0042"),
        ("äö-1", "ÄÖ1"),
        ("1234–5678", "12345678"),  // an en dash, as spreadsheets autocorrect
        ("1234\u{2011}5678\u{00A0}90", "1234567890"),
        ("\u{FEFF}1234\u{200B}5678", "12345678"),
        ("1234\u{200D}5678", "12345678"),
    ])
    func memberCardDropsSpacesAndDashesAndUpperCases(input: String, expected: String) throws {
        let identity = try normalizer.normalize(kind: .memberCard, value: input)
        #expect(identity == Identity(kind: .memberCard, value: expected))
        #expect(identity.source == "")
    }

    @Test(arguments: ["", "  ", "- -"])
    func memberCardRejectsEmpty(input: String) {
        expectSingleViolation(field: "card", mentions: ["member card number is empty"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .memberCard, value: input, field: "card")
        }
    }

    @Test func idsRejectInvisibleCharactersInside() {
        expectSingleViolation(field: "value", mentions: ["invisible character"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .externalID, source: "shop", value: "88\u{200B}12")
        }
        expectSingleViolation(field: "value", mentions: ["invisible character"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .anonymousID, value: "dev\u{2060}ice")
        }
    }

    @Test func memberCardRejectsControlCharacters() {
        expectSingleViolation(field: "value", mentions: ["control character"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .memberCard, value: "12\u{0000}34")
        }
    }

    @Test func externalIDLowerCasesAndTrimsTheSourceAndKeepsTheValueCase() throws {
        let identity = try normalizer.normalize(kind: .externalID, source: " Shopify ", value: "  Gid-123/ABC  ")
        #expect(identity == Identity(kind: .externalID, source: "shopify", value: "Gid-123/ABC"))
        #expect(identity.key == "external_id:shopify:Gid-123/ABC")
    }

    @Test(arguments: ["store-berlin", "amazon.de", "pos_2", "a", String(repeating: "s", count: 64)])
    func externalIDAcceptsSources(source: String) throws {
        #expect(try normalizer.normalize(kind: .externalID, source: source, value: "1").source == source)
    }

    @Test(arguments: ["", "   "])
    func externalIDNeedsASource(source: String) {
        expectSingleViolation(field: "identities[4].source", mentions: ["source"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .externalID, source: source, value: "123", field: "identities[4].value")
        }
        expectSingleViolation(field: "source", mentions: ["source"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .externalID, source: source, value: "123")
        }
    }

    @Test(arguments: ["shop ify", "shop/ify", "shop:ify", "shöp", "shop\nify", "shop@x", String(repeating: "s", count: 65)])
    func externalIDRejectsBadSourceNamingTheSourceField(source: String) {
        expectSingleViolation(field: "identities[4].source", mentions: [source]) { () throws(RapportError) in
            try normalizer.normalize(kind: .externalID, source: source, value: "123", field: "identities[4].value")
        }
    }

    @Test func externalIDRejectsBadValueNamingTheValueField() {
        expectSingleViolation(field: "identities[4].value", mentions: ["external id is empty"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .externalID, source: "shopify", value: "  ", field: "identities[4].value")
        }
        expectSingleViolation(field: "identities[4].value", mentions: ["longer than 256 bytes"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .externalID, source: "shopify", value: String(repeating: "x", count: 257), field: "identities[4].value")
        }
    }

    @Test func anonymousIDIsTrimmedAndOtherwiseKept() throws {
        let identity = try normalizer.normalize(kind: .anonymousID, value: "  Device-AbC 42 ")
        #expect(identity == Identity(kind: .anonymousID, value: "Device-AbC 42"))
        let longest = String(repeating: "x", count: 256)
        #expect(try normalizer.normalize(kind: .anonymousID, value: longest).value == longest)
    }

    @Test(arguments: [
        ("device-9", "device-9"), ("Device 9", "Device 9"), (" device-9", "device-9"), ("device-9 ", "device-9"), ("\tdevice-9", "device-9"),
        ("gerät-9 ", "gerät-9"), ("~!@#$%^&*()[]{}<>?/|", "~!@#$%^&*()[]{}<>?/|"),
    ])
    func anonymousIDsAreKeptOrTrimmed(input: String, expected: String) throws {
        #expect(try normalizer.normalize(kind: .anonymousID, value: input) == Identity(kind: .anonymousID, value: expected))
        #expect(try normalizer.normalize(kind: .externalID, source: "shop", value: input).value == expected)
    }

    @Test func unicodeIdentitiesAreStoredComposed() throws {
        let composed = Array("jos\u{E9}".utf8)
        #expect(Array(try normalizer.normalize(kind: .email, value: "Jose\u{301}@example.com").value.utf8) == composed + Array("@example.com".utf8))
        #expect(Array(try normalizer.normalize(kind: .anonymousID, value: "jose\u{301}").value.utf8) == composed)
        #expect(Array(try normalizer.normalize(kind: .externalID, source: "shop", value: "jose\u{301}").value.utf8) == composed)
        #expect(Array(try normalizer.normalize(kind: .memberCard, value: "jose\u{301}").value.utf8) == Array("JOS\u{C9}".utf8))
    }

    @Test func anonymousIDOf257PrintableBytesIsRejected() {
        expectSingleViolation(field: "value", mentions: ["longer than 256 bytes"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .anonymousID, value: String(repeating: "x", count: 257))
        }
    }

    @Test(arguments: ["a\u{0000}b", "a\u{0007}b", "a\u{001B}b", "a\u{007F}b", "a\u{0085}b", "a\nb", "a\r\nb", "a\tb"])
    func anonymousIDRejectsControlCharacters(input: String) {
        expectSingleViolation(field: "anonymous_id", mentions: ["anonymous id contains a control character"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .anonymousID, value: input, field: "anonymous_id")
        }
    }

    @Test func anonymousIDRejectsEmptyAndOverLong() {
        expectSingleViolation(field: "value", mentions: ["anonymous id is empty"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .anonymousID, value: " ")
        }
        // 129 two-byte characters: 258 bytes.
        expectSingleViolation(field: "value", mentions: ["longer than 256 bytes"]) { () throws(RapportError) in
            try normalizer.normalize(kind: .anonymousID, value: String(repeating: "é", count: 129))
        }
    }
}

@Suite("Identity")
struct IdentityTests {
    @Test(arguments: [
        (Identity(kind: .email, value: "ada@example.com"), "email:ada@example.com"),
        (Identity(kind: .phone, value: "+14155550123"), "phone:+14155550123"),
        (Identity(kind: .memberCard, value: "AB12"), "member_card:AB12"),
        (Identity(kind: .externalID, source: "shopify", value: "123"), "external_id:shopify:123"),
        (Identity(kind: .anonymousID, value: "dev-1"), "anonymous_id:dev-1"),
    ])
    func keyNamesKindSourceAndValue(identity: Identity, key: String) {
        #expect(identity.key == key)
        #expect(identity.description == key)
    }

    @Test func identitiesSortByKey() {
        let identities = [
            Identity(kind: .phone, value: "+1"),
            Identity(kind: .email, value: "b@x.de"),
            Identity(kind: .externalID, source: "shopify", value: "9"),
            Identity(kind: .email, value: "a@x.de"),
        ]
        #expect(identities.sorted().map(\.key) == ["email:a@x.de", "email:b@x.de", "external_id:shopify:9", "phone:+1"])
    }

    @Test func sourceDistinguishesExternalIDs() {
        #expect(Identity(kind: .externalID, source: "shopify", value: "1") != Identity(kind: .externalID, source: "amazon", value: "1"))
    }

    @Test func strengthRanksKinds() {
        let ranked = IdentityKind.allCases.sorted { $0.strength > $1.strength }
        #expect(ranked == [.memberCard, .externalID, .email, .phone, .anonymousID])
    }

    @Test func kindRawValuesAreStable() {
        #expect(IdentityKind.allCases.map(\.rawValue) == ["email", "phone", "member_card", "external_id", "anonymous_id"])
    }
}

/// The byte-level fast path for ASCII e-mails must agree with the full check on every input.
@Suite("IdentityNormalizer: the ASCII e-mail fast path")
struct AsciiEmailFastPathTests {
    @Test func agreesWithTheFullCheckOnRandomAddresses() {
        var rng = SeededGenerator(seed: 42)
        var answered = 0
        let pieces = ["a", "B", ".", "..", "@", "-", "x1", "9", " ", "+", "_", "com", "de", "1", "é", "\t", "!", "z", "..@", "-a", "a-"]
        let normalizer = IdentityNormalizer()
        for _ in 0..<20_000 {
            // Mostly address-shaped text (local@label.label), some of it broken by the odd piece.
            func part(_ count: ClosedRange<Int>) -> String {
                (0..<Int.random(in: count, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            }
            let labels = ["example", "Mail", "x-y", "1", "co", "uk", "-", "a"]
            let domain = (0..<Int.random(in: 1...3, using: &rng)).map { _ in labels.randomElement(using: &rng)! }.joined(separator: ".")
            let text = Bool.random(using: &rng) ? part(1...3) + "@" + domain : part(1...8)
            let fast = IdentityNormalizer.asciiEmail(text)
            let full: String?
            do { full = try normalizer.email(text) } catch { full = nil }
            // Where the fast path answers, it answers what the full check does.
            if let fast {
                answered += 1
                #expect(fast == full, "\(text.debugDescription)")
            } else if full != nil, text.utf8.allSatisfy({ $0 < 128 }) {
                Issue.record("the fast path gave up on a valid ASCII address: \(text.debugDescription)")
            }
        }
        #expect(answered > 100)
        #expect(IdentityNormalizer.asciiEmail("  Ada.Lovelace+crm@Example.COM ") == "ada.lovelace+crm@example.com")
        #expect(IdentityNormalizer.asciiEmail("ada@example") == nil)
        #expect(IdentityNormalizer.asciiEmail("ada@-example.com") == nil)
        #expect(IdentityNormalizer.asciiEmail("ada@example.123") == nil)
    }
}
