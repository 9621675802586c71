import Testing
@testable import RapportCore

@Suite("CustomerFilter")
struct CustomerFilterTests {
    func record(tags: [String] = [], stage: LifecycleStage? = nil, createdAt: Timestamp = newYear2026, updatedAt: Timestamp = newYear2026)
        -> CustomerRecord
    {
        customerRecord(profile: CustomerProfile(tags: tags, lifecycleStage: stage), createdAt: createdAt, updatedAt: updatedAt)
    }

    @Test func emptyFilterMatchesEveryone() {
        let filter = CustomerFilter()
        #expect(filter.matches(record()))
        #expect(filter.matches(record(tags: ["vip"], stage: .churned, createdAt: Timestamp(millisecondsSinceEpoch: 0))))
    }

    @Test func tagsMustAllBePresent() {
        let filter = CustomerFilter(tags: ["vip", "newsletter"])
        #expect(filter.matches(record(tags: ["newsletter", "vip"])))
        #expect(filter.matches(record(tags: ["b2b", "newsletter", "vip"])))
        #expect(!filter.matches(record(tags: ["vip"])))
        #expect(!filter.matches(record(tags: ["newsletter"])))
        #expect(!filter.matches(record()))
        // Tags match exactly, case included.
        #expect(!filter.matches(record(tags: ["VIP", "newsletter"])))
    }

    @Test func anyOneOfTheStages() {
        let filter = CustomerFilter(lifecycleStages: [.active, .loyal])
        #expect(filter.matches(record(stage: .active)))
        #expect(filter.matches(record(stage: .loyal)))
        #expect(!filter.matches(record(stage: .atRisk)))
        // A customer with no stage is in none of them.
        #expect(!filter.matches(record(stage: nil)))
    }

    @Test func createdFromIsInclusiveAndCreatedBeforeExclusive() {
        let from = newYear2026
        let before = newYear2026 + .seconds(86_400)
        let filter = CustomerFilter(createdFrom: from, createdBefore: before)
        #expect(!filter.matches(record(createdAt: from - .milliseconds(1))))
        #expect(filter.matches(record(createdAt: from)))
        #expect(filter.matches(record(createdAt: before - .milliseconds(1))))
        #expect(!filter.matches(record(createdAt: before)))
        #expect(!filter.matches(record(createdAt: before + .milliseconds(1))))
    }

    @Test func createdBoundsAreIndependent() {
        let bound = newYear2026
        #expect(CustomerFilter(createdFrom: bound).matches(record(createdAt: bound + .seconds(1_000_000))))
        #expect(!CustomerFilter(createdFrom: bound).matches(record(createdAt: bound - .seconds(1))))
        #expect(CustomerFilter(createdBefore: bound).matches(record(createdAt: Timestamp(millisecondsSinceEpoch: 0))))
        #expect(!CustomerFilter(createdBefore: bound).matches(record(createdAt: bound)))
    }

    @Test func updatedFromIsInclusiveAndLooksAtUpdatedAt() {
        let filter = CustomerFilter(updatedFrom: newYear2026)
        #expect(filter.matches(record(createdAt: newYear2026 - .seconds(99), updatedAt: newYear2026)))
        #expect(filter.matches(record(createdAt: newYear2026 - .seconds(99), updatedAt: newYear2026 + .seconds(1))))
        #expect(!filter.matches(record(createdAt: newYear2026 + .seconds(99), updatedAt: newYear2026 - .milliseconds(1))))
    }

    @Test func everyConditionMustHold() {
        let filter = CustomerFilter(tags: ["vip"], lifecycleStages: [.loyal], createdFrom: newYear2026, updatedFrom: newYear2026)
        let matching = record(tags: ["vip"], stage: .loyal, createdAt: newYear2026, updatedAt: newYear2026)
        #expect(filter.matches(matching))
        #expect(!filter.matches(record(tags: [], stage: .loyal, createdAt: newYear2026, updatedAt: newYear2026)))
        #expect(!filter.matches(record(tags: ["vip"], stage: .active, createdAt: newYear2026, updatedAt: newYear2026)))
        #expect(!filter.matches(record(tags: ["vip"], stage: .loyal, createdAt: newYear2026 - .seconds(1), updatedAt: newYear2026)))
        #expect(!filter.matches(record(tags: ["vip"], stage: .loyal, createdAt: newYear2026, updatedAt: newYear2026 - .seconds(1))))
    }
}

@Suite("Listing order and positions")
struct ListingTests {
    @Test func timelinePositionsOrderByTimeThenSequence() {
        let t0 = newYear2026
        let t1 = newYear2026 + .milliseconds(1)
        #expect(TimelinePosition(time: t0, sequence: 99) < TimelinePosition(time: t1, sequence: 1))
        #expect(TimelinePosition(time: t0, sequence: 1) < TimelinePosition(time: t0, sequence: 2))
        #expect(!(TimelinePosition(time: t0, sequence: 2) < TimelinePosition(time: t0, sequence: 2)))
        #expect(TimelinePosition(time: t0, sequence: 2) == TimelinePosition(time: t0, sequence: 2))

        let positions = [
            TimelinePosition(time: t1, sequence: 3),
            TimelinePosition(time: t0, sequence: 7),
            TimelinePosition(time: t1, sequence: 1),
            TimelinePosition(time: t0, sequence: 2),
        ]
        #expect(
            positions.sorted(by: >) == [
                TimelinePosition(time: t1, sequence: 3),
                TimelinePosition(time: t1, sequence: 1),
                TimelinePosition(time: t0, sequence: 7),
                TimelinePosition(time: t0, sequence: 2),
            ]
        )
    }

    @Test func customerOrderSortValue() {
        let record = customerRecord(createdAt: Timestamp(millisecondsSinceEpoch: 10), updatedAt: Timestamp(millisecondsSinceEpoch: 20))
        #expect(CustomerOrder().value(of: record) == 10)
        #expect(CustomerOrder(.updatedAt, descending: true).value(of: record) == 20)
        #expect(CustomerOrder().key == .createdAt && !CustomerOrder().descending)
    }

    @Test func queryDefaults() {
        let query = CustomerQuery()
        #expect(query.filter == CustomerFilter())
        #expect(query.order == CustomerOrder(.createdAt, descending: false))
        #expect(query.after == nil)
        #expect(query.limit == 50)
    }
}

@Suite("CustomerFilter and CustomerOrder parsing: bounds, times and errors")
struct CustomerFilterParsingTests {
    @Test(arguments: ["", "   "])
    func emptyTextIsNoFilter(text: String) throws {
        #expect(try CustomerFilter(parsing: text) == CustomerFilter())
    }

    @Test func parsesEveryCondition() throws {
        let filter = try CustomerFilter(
            parsing: "tags:vip AND lifecycle_stage=(active,loyal) AND create_time>=2026-01-01T00:00:00Z AND create_time<2026-02-01T00:00:00Z"
                + " AND update_time>=2026-01-15T12:00:00Z"
        )
        #expect(filter.tags == ["vip"])
        #expect(filter.lifecycleStages == [.active, .loyal])
        #expect(filter.createdFrom == newYear2026)
        #expect(filter.createdBefore == newYear2026 + .seconds(31 * 86_400))
        #expect(filter.updatedFrom == newYear2026 + .seconds(14 * 86_400 + 12 * 3600))
    }

    @Test func tagsRepeatAndAcceptLowerCaseAndAndQuotes() throws {
        let filter = try CustomerFilter(parsing: #"tags:vip and tags:"gold member" AND lifecycle_stage=Churned"#)
        #expect(filter.tags == ["vip", "gold member"])
        #expect(filter.lifecycleStages == [.churned])
    }

    @Test func timesWithOffsetsAndFractions() throws {
        #expect(try CustomerFilter(parsing: "create_time>=2026-01-01T01:00:00+01:00").createdFrom == newYear2026)
        #expect(try CustomerFilter(parsing: "create_time>=2025-12-31T19:00:00-05:00").createdFrom == newYear2026)
        for millis: Int64 in [1, 7, 123, 250, 999] {
            let fraction = String(repeating: "0", count: 3 - String(millis).count) + String(millis)
            let filter = try CustomerFilter(parsing: "update_time>=2026-01-01T00:00:00.\(fraction)Z")
            #expect(filter.updatedFrom == newYear2026 + .milliseconds(millis), ".\(fraction)")
        }
    }

    @Test func parsedFilterMatchesLikeABuiltOne() throws {
        let parsed = try CustomerFilter(parsing: "tags:vip AND create_time<2026-01-02T00:00:00Z")
        let inside = customerRecord(profile: CustomerProfile(tags: ["vip"]), createdAt: newYear2026 + .seconds(86_399))
        let boundary = customerRecord(profile: CustomerProfile(tags: ["vip"]), createdAt: newYear2026 + .seconds(86_400))
        #expect(parsed.matches(inside))
        #expect(!parsed.matches(boundary))
    }

    @Test(arguments: [
        ("tags:", "names no tag"),
        (#"tags:"""#, "names no tag"),
        ("lifecycle_stage=vip", "'vip' is not a lifecycle stage"),
        ("lifecycle_stage=(active,gone)", "'gone'"),
        ("create_time>=yesterday", "'yesterday' is not an RFC 3339 time"),
        ("create_time>=2026-01-01", "is not an RFC 3339 time"),
        ("create_time<=2026-01-01T00:00:00Z", "compared with create_time>=TIME and create_time<TIME only"),
        ("create_time>2026-01-01T00:00:00Z", "compared with create_time>=TIME and create_time<TIME only"),
        ("update_time<2026-01-01T00:00:00Z", "compared with update_time>=TIME only"),
        ("name:ada", "'name:ada' is not a condition"),
    ])
    func rejectsNamingTheField(text: String, problem: String) {
        expectSingleViolation(field: "list.filter", mentions: [problem]) { () throws(RapportError) in
            try CustomerFilter(parsing: "tags:ok AND " + text, field: "list.filter")
        }
    }

    @Test func rejectsOverLongText() throws {
        let longest = "tags:" + String(repeating: "t", count: 1995)
        #expect(try CustomerFilter(parsing: longest).tags.first?.count == 1995)
        expectSingleViolation(field: "filter", mentions: ["2000"]) { () throws(RapportError) in try CustomerFilter(parsing: longest + "t") }
    }

    @Test(arguments: [
        ("", CustomerOrder(.createdAt, descending: false)),
        ("create_time", CustomerOrder(.createdAt, descending: false)),
        ("create_time asc", CustomerOrder(.createdAt, descending: false)),
        ("create_time desc", CustomerOrder(.createdAt, descending: true)),
        ("update_time", CustomerOrder(.updatedAt, descending: false)),
        ("UPDATE_TIME   DESC", CustomerOrder(.updatedAt, descending: true)),
    ])
    func parsesOrder(text: String, order: CustomerOrder) throws {
        #expect(try CustomerOrder(parsing: text) == order)
    }

    @Test(arguments: [("name", "'name'"), ("created_at", "'created_at'"), ("create_time down", "'create_time down'"), ("update_time desc asc", "asc")])
    func rejectsBadOrderNamingTheField(text: String, problem: String) {
        expectSingleViolation(field: "order_by", mentions: [problem]) { () throws(RapportError) in try CustomerOrder(parsing: text) }
    }
}
