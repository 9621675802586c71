import RapportCore
import Testing

@Suite("Filter and order parsing")
struct FilterParsingTests {
    @Test func parsesEveryCondition() throws {
        let filter = try CustomerFilter(parsing: "tags:vip AND tags:\"newsletter\" and lifecycle_stage=(active, loyal) AND create_time>=2026-01-01T00:00:00Z AND create_time<2026-02-01T00:00:00.500Z AND update_time>=2026-01-15T00:00:00+01:00")
        #expect(filter.tags == ["vip", "newsletter"])
        #expect(filter.lifecycleStages == [.active, .loyal])
        #expect(filter.createdFrom == Timestamp(millisecondsSinceEpoch: 1_767_225_600_000))
        #expect(filter.createdBefore == Timestamp(millisecondsSinceEpoch: 1_769_904_000_500))
        #expect(filter.updatedFrom == Timestamp(millisecondsSinceEpoch: 1_768_431_600_000))
        #expect(try CustomerFilter(parsing: "  ") == CustomerFilter())
        #expect(try CustomerFilter(parsing: "lifecycle_stage=at_risk").lifecycleStages == [.atRisk])
        // Bounds between two milliseconds are the later one: created at .000 is neither at or after .0009, nor
        // (at .001) before it.
        let fine = try CustomerFilter(parsing: "create_time>=2026-01-01T00:00:00.0009Z AND create_time<2026-01-01T00:00:01.0001Z")
        #expect(fine.createdFrom == Timestamp(millisecondsSinceEpoch: 1_767_225_600_001))
        #expect(fine.createdBefore == Timestamp(millisecondsSinceEpoch: 1_767_225_601_001))
    }

    @Test func repeatedConditionsAddUpLikeAnyOtherAnd() throws {
        // A fixed scope joined to a user's filter cannot be widened by it: of two bounds, the tighter holds.
        let bounded = try CustomerFilter(
            parsing: "create_time>=2026-01-01T00:00:00Z AND create_time>=2020-01-01T00:00:00Z AND create_time<2026-03-01T00:00:00Z AND create_time<2027-01-01T00:00:00Z AND update_time>=2026-01-02T00:00:00Z AND update_time>=2025-01-01T00:00:00Z")
        #expect(bounded.createdFrom == Timestamp(millisecondsSinceEpoch: 1_767_225_600_000))
        #expect(bounded.createdBefore == Timestamp(millisecondsSinceEpoch: 1_772_323_200_000))
        #expect(bounded.updatedFrom == Timestamp(millisecondsSinceEpoch: 1_767_312_000_000))
        // Two stage conditions would match nobody: the stages go in one condition.
        #expect(throws: RapportError.invalid("filter", "'lifecycle_stage=loyal': name the stages in one condition, such as lifecycle_stage=(active,loyal)")) {
            try CustomerFilter(parsing: "lifecycle_stage=active AND lifecycle_stage=loyal")
        }
    }

    @Test func tagsAreComparedInComposedFormAndRefuseNUL() throws {
        #expect(Array(try CustomerFilter(parsing: "tags:cafe\u{301}").tags[0].utf8) == Array("caf\u{E9}".utf8))
        #expect(throws: RapportError.self) { try CustomerFilter(parsing: "tags:\"vip\u{0}x\"") }
    }

    @Test func quotedValuesKeepTheirSpacesQuotesAndAnds() throws {
        let filter = try CustomerFilter(parsing: #"tags:"rock and roll" AND tags:"say \"hi\"" and tags:"a AND b"   AND  tags:back\slash AND create_time>="2026-01-01T00:00:00Z""#)
        #expect(filter.tags == ["rock and roll", #"say "hi""#, "a AND b", #"back\slash"#])
        #expect(filter.createdFrom == Timestamp(millisecondsSinceEpoch: 1_767_225_600_000))
        // A word that merely contains "and" is a value; any white space separates words.
        #expect(try CustomerFilter(parsing: "tags:brand AND tags:andes").tags == ["brand", "andes"])
        #expect(try CustomerFilter(parsing: "tags:vip\u{00A0}AND\ntags:new\n").tags == ["vip", "new"])
    }

    @Test(arguments: [
        ("name=ada", "'name=ada' is not a condition"),
        ("lifecycle_stage=sleepy", "'sleepy' is not a lifecycle stage"),
        ("create_time>=yesterday", "is not an RFC 3339 time"),
        ("tags:", "names no tag"),
        (#"tags:"""#, "names no tag"),
        ("tags:rock and roll", "'roll' is not a condition"),
        ("tags:two words", "write a value with spaces or quotes in double quotes"),
        (#"tags:"open"#, "a quoted value is not closed"),
        (#"tags:"a"b"#, "has text after its closing quote"),
        (#"tags:"C:\temp""#, #"only \" and \\ may follow a backslash"#),
        ("tags:a\u{00A0}b", "write a value with spaces or quotes in double quotes"),
        ("tags:vip AND", "an AND has no condition on one side"),
        ("tags:vip AND AND tags:new", "an AND has no condition on one side"),
        ("update_time=2026-01-01T00:00:00Z", "update_time is compared with update_time>=TIME only"),
        ("create_time!=2026-01-01T00:00:00Z", "create_time is compared with create_time>=TIME and create_time<TIME only"),
    ])
    func rejectsWhatItCannotRead(text: String, problem: String) {
        #expect {
            try CustomerFilter(parsing: text)
        } throws: { error in
            guard let error = error as? RapportError, let violation = error.fieldViolations.first else { return false }
            return violation.field == "filter" && violation.problem.contains(problem)
        }
    }

    @Test func parsesOrders() throws {
        #expect(try CustomerOrder(parsing: "") == CustomerOrder(.createdAt))
        #expect(try CustomerOrder(parsing: "update_time desc") == CustomerOrder(.updatedAt, descending: true))
        #expect(try CustomerOrder(parsing: "create_time asc") == CustomerOrder(.createdAt))
        #expect(throws: RapportError.self) { try CustomerOrder(parsing: "name") }
        #expect(throws: RapportError.self) { try CustomerOrder(parsing: "create_time sideways") }
    }
}
