import Foundation
import RapportCore
import Testing

@Suite("Rule runs stored by earlier versions")
struct RuleRunCodingTests {
    @Test func aRunWithoutRepeatsDecodesWithNone() throws {
        let time = Timestamp(millisecondsSinceEpoch: 1_767_225_600_000)
        var run = RuleRun(
            id: RunID(uncheckedRawValue: "run_1"), ruleID: RuleID(uncheckedRawValue: "rul_1"), ruleVersion: 3, customerID: CustomerID(uncheckedRawValue: "cus_1"),
            trigger: "visit", eventID: "e1", status: .skipped, reason: "the condition is false", repeats: 4, createdAt: time, updatedAt: time)
        #expect(try JSONDecoder().decode(RuleRun.self, from: JSONEncoder().encode(run)) == run)
        // The same run as versions before `repeats` stored it: without the key.
        var stored = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(run)) as? [String: Any])
        #expect(stored.removeValue(forKey: "repeats") as? Int == 4)
        let legacy = try JSONDecoder().decode(RuleRun.self, from: JSONSerialization.data(withJSONObject: stored))
        run.repeats = 0
        #expect(legacy == run)
    }
}

@Suite("Stored job kinds")
struct JobKindCodingTests {
    @Test func aDateJobStoredBeforeOccurrencesReadsWithout() throws {
        let old = #"{"dateTrigger":{"rule":"rul_1","customer":"cus_1"}}"#
        let kind = try JSONDecoder().decode(JobKind.self, from: Data(old.utf8))
        #expect(kind == .dateTrigger(rule: RuleID(uncheckedRawValue: "rul_1"), customer: CustomerID(uncheckedRawValue: "cus_1"), occurrence: nil))
        let new = JobKind.dateTrigger(
            rule: RuleID(uncheckedRawValue: "rul_1"), customer: CustomerID(uncheckedRawValue: "cus_1"), occurrence: Timestamp(millisecondsSinceEpoch: 5))
        #expect(try JSONDecoder().decode(JobKind.self, from: JSONEncoder().encode(new)) == new)
    }
}
