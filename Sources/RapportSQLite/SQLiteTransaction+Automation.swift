import Foundation
import GRDB
import RapportCore

extension SQLiteTransaction {
    // MARK: Definitions

    func definitionsVersion() throws -> Int64 {
        try fetchOne("SELECT value FROM meta WHERE key = 'definitions_version'", []) { try $0.decode(Int64.self, atIndex: 0) } ?? 0
    }

    func bumpDefinitionsVersion() throws {
        // A new random value, not a counter: a rolled-back change never leaves a number that a later one reuses.
        try execute("UPDATE meta SET value = ? WHERE key = 'definitions_version'", [Int64.random(in: 1...Int64.max)])
    }

    func eventTypeDefinitions() throws -> [EventTypeDefinition] {
        try fetchAll("SELECT definition FROM event_types ORDER BY type", []) { try decodeJSON(EventTypeDefinition.self, $0, 0) }
    }

    func putEventTypeDefinition(_ definition: EventTypeDefinition) throws {
        try execute("INSERT OR REPLACE INTO event_types (type, definition) VALUES (?, ?)", [definition.type, try json(definition)])
    }

    // MARK: Segments

    private func decodeSegment(_ row: ColumnRow) throws -> Segment {
        var segment = try decodeJSON(Segment.self, row, 0)
        segment.memberCount = try row.decode(Int64.self, atIndex: 1)
        return segment
    }

    func segment(_ id: SegmentID) throws -> Segment? {
        try fetchOne("SELECT details, member_count FROM segments WHERE id = ?", [id.rawValue], decodeSegment)
    }

    func segment(key: String) throws -> Segment? {
        try fetchOne("SELECT details, member_count FROM segments WHERE key = ?", [key], decodeSegment)
    }

    func segments() throws -> [Segment] {
        try fetchAll("SELECT details, member_count FROM segments ORDER BY key", [], decodeSegment)
    }

    func isDynamicMember(segment: SegmentID, customer: CustomerID) throws -> Bool {
        try exists("SELECT 1 FROM segment_members WHERE segment_id = ? AND customer_id = ?", [segment.rawValue, customer.rawValue])
    }

    func isListMember(segment: SegmentID, customer: CustomerID) throws -> Bool {
        try exists("SELECT 1 FROM list_members WHERE customer_id = ? AND segment_id = ?", [customer.rawValue, segment.rawValue])
    }

    func memberships(of customer: CustomerID) throws -> [SegmentMembership] {
        try fetchAll(
            """
            SELECT segment_id, since FROM segment_members WHERE customer_id = ?
            UNION ALL
            SELECT segment_id, MIN(added_at) FROM list_members WHERE customer_id = ? GROUP BY segment_id
            ORDER BY segment_id
            """,
            [customer.rawValue, customer.rawValue]
        ) { row in
            SegmentMembership(segmentID: SegmentID(uncheckedRawValue: try row.decode(String.self, atIndex: 0)), customerID: customer, since: try time(row, 1))
        }
    }

    func members(of segment: SegmentID, after: CustomerID?, limit: Int) throws -> [SegmentMembership] {
        let isList = try exists("SELECT 1 FROM segments WHERE id = ? AND kind = 'list'", [segment.rawValue])
        let sql = isList
            ? "SELECT customer_id, MIN(added_at) FROM list_members WHERE segment_id = ? AND customer_id > ? GROUP BY customer_id ORDER BY customer_id LIMIT ?"
            : "SELECT customer_id, since FROM segment_members WHERE segment_id = ? AND customer_id > ? ORDER BY customer_id LIMIT ?"
        return try fetchAll(sql, [segment.rawValue, after?.rawValue ?? "", max(0, limit)]) { row in
            SegmentMembership(segmentID: segment, customerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 0)), since: try time(row, 1))
        }
    }

    func listMemberships(ownedBy customer: CustomerID) throws -> [ListMembershipRecord] {
        try fetchAll(
            "SELECT segment_id, home_customer_id, added_at FROM list_members WHERE customer_id = ? ORDER BY segment_id, home_customer_id", [customer.rawValue]
        ) { row in
            ListMembershipRecord(
                segmentID: SegmentID(uncheckedRawValue: try row.decode(String.self, atIndex: 0)), customerID: customer,
                homeCustomerID: CustomerID(uncheckedRawValue: try row.decode(String.self, atIndex: 1)), addedAt: try time(row, 2))
        }
    }

    func insertSegment(_ segment: Segment) throws {
        if try exists("SELECT 1 FROM segments WHERE id = ?", [segment.id.rawValue]) {
            throw RapportError.alreadyExists(entity: "segment", id: segment.id.rawValue)
        }
        if try exists("SELECT 1 FROM segments WHERE key = ?", [segment.key]) { throw RapportError.alreadyExists(entity: "segment", id: segment.key) }
        var stored = segment
        stored.memberCount = 0
        try execute(
            "INSERT INTO segments (id, key, kind, version, state, member_count, details) VALUES (?, ?, ?, ?, ?, 0, ?)",
            [segment.id.rawValue, segment.key, segment.kind.rawValue, segment.version, segment.state.rawValue, try json(stored)])
    }

    func updateSegment(_ segment: Segment) throws {
        guard let old = try self.segment(segment.id) else { throw RapportError.notFound(entity: "segment", id: segment.id.rawValue) }
        if old.key != segment.key, try exists("SELECT 1 FROM segments WHERE key = ?", [segment.key]) {
            throw RapportError.alreadyExists(entity: "segment", id: segment.key)
        }
        var stored = segment
        stored.memberCount = 0
        try execute(
            "UPDATE segments SET key = ?, kind = ?, version = ?, state = ?, details = ? WHERE id = ?",
            [segment.key, segment.kind.rawValue, segment.version, segment.state.rawValue, try json(stored), segment.id.rawValue])
    }

    func deleteSegment(_ id: SegmentID) throws {
        guard try changes("DELETE FROM segments WHERE id = ?", [id.rawValue]) > 0 else { throw RapportError.notFound(entity: "segment", id: id.rawValue) }
        try execute("DELETE FROM segment_members WHERE segment_id = ?", [id.rawValue])
        try execute("DELETE FROM list_members WHERE segment_id = ?", [id.rawValue])
    }

    private func adjustMemberCount(_ segment: String, by delta: Int) throws {
        try execute("UPDATE segments SET member_count = member_count + ? WHERE id = ?", [delta, segment])
    }

    func insertDynamicMembership(_ membership: SegmentMembership) throws {
        let inserted = try changes(
            "INSERT INTO segment_members (segment_id, customer_id, since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            [membership.segmentID.rawValue, membership.customerID.rawValue, membership.since.millisecondsSinceEpoch])
        guard inserted > 0 else {
            throw RapportError.alreadyExists(entity: "segment membership", id: "\(membership.segmentID)/\(membership.customerID)")
        }
        try adjustMemberCount(membership.segmentID.rawValue, by: 1)
    }

    func deleteDynamicMembership(segment: SegmentID, customer: CustomerID) throws {
        guard try changes("DELETE FROM segment_members WHERE segment_id = ? AND customer_id = ?", [segment.rawValue, customer.rawValue]) > 0 else {
            throw RapportError.notFound(entity: "segment membership", id: "\(segment)/\(customer)")
        }
        try adjustMemberCount(segment.rawValue, by: -1)
    }

    func deleteDynamicMemberships(of customer: CustomerID) throws {
        let segments = try fetchAll("SELECT segment_id FROM segment_members WHERE customer_id = ?", [customer.rawValue]) {
            try $0.decode(String.self, atIndex: 0)
        }
        for segment in segments { try deleteDynamicMembership(segment: SegmentID(uncheckedRawValue: segment), customer: customer) }
    }

    func insertListMembership(_ record: ListMembershipRecord) throws {
        let wasMember = try isListMember(segment: record.segmentID, customer: record.customerID)
        let inserted = try changes(
            "INSERT INTO list_members (segment_id, home_customer_id, customer_id, added_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [record.segmentID.rawValue, record.homeCustomerID.rawValue, record.customerID.rawValue, record.addedAt.millisecondsSinceEpoch])
        guard inserted > 0 else { throw RapportError.alreadyExists(entity: "list membership", id: "\(record.segmentID)/\(record.homeCustomerID)") }
        if !wasMember { try adjustMemberCount(record.segmentID.rawValue, by: 1) }
    }

    func deleteListMemberships(segment: SegmentID, customer: CustomerID) throws -> Int {
        let deleted = try changes("DELETE FROM list_members WHERE segment_id = ? AND customer_id = ?", [segment.rawValue, customer.rawValue])
        if deleted > 0 { try adjustMemberCount(segment.rawValue, by: -1) }
        return deleted
    }

    /// Moves the list memberships `from` owns (with a home in `homes`, or all) to `to`, keeping counts right.
    func moveListMemberships(from: CustomerID, to: CustomerID, homes: Set<CustomerID>?) throws {
        guard from != to else { return }
        let records = try listMemberships(ownedBy: from).filter { homes?.contains($0.homeCustomerID) ?? true }
        for segment in Set(records.map(\.segmentID)) {
            let toWasMember = try isListMember(segment: segment, customer: to)
            for record in records where record.segmentID == segment {
                try execute(
                    "UPDATE list_members SET customer_id = ? WHERE segment_id = ? AND home_customer_id = ?",
                    [to.rawValue, segment.rawValue, record.homeCustomerID.rawValue])
            }
            let fromStillMember = try isListMember(segment: segment, customer: from)
            try adjustMemberCount(segment.rawValue, by: (toWasMember ? 0 : 1) - (fromStillMember ? 0 : 1))
        }
    }

    // MARK: Rules and runs

    private func decodeRule(_ row: ColumnRow) throws -> Rule {
        Rule(
            id: RuleID(uncheckedRawValue: try row.decode(String.self, atIndex: 0)), version: try row.decode(Int64.self, atIndex: 1),
            definition: try decodeJSON(RuleDefinition.self, row, 5), enabled: try row.decode(Bool.self, atIndex: 2), createdAt: try time(row, 3),
            updatedAt: try time(row, 4))
    }

    func rule(_ id: RuleID) throws -> Rule? {
        try fetchOne("SELECT id, version, enabled, created_at, updated_at, definition FROM rules WHERE id = ?", [id.rawValue], decodeRule)
    }

    func rules() throws -> [Rule] {
        try fetchAll("SELECT id, version, enabled, created_at, updated_at, definition FROM rules ORDER BY id", [], decodeRule)
    }

    func ruleDefinition(_ id: RuleID, version: Int64) throws -> RuleDefinition? {
        try fetchOne("SELECT definition FROM rule_versions WHERE rule_id = ? AND version = ?", [id.rawValue, version]) {
            try decodeJSON(RuleDefinition.self, $0, 0)
        }
    }

    func insertRule(_ rule: Rule) throws {
        let inserted = try changes(
            "INSERT INTO rules (id, version, enabled, created_at, updated_at, definition) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [rule.id.rawValue, rule.version, rule.enabled, rule.createdAt.millisecondsSinceEpoch, rule.updatedAt.millisecondsSinceEpoch, try json(rule.definition)])
        guard inserted > 0 else { throw RapportError.alreadyExists(entity: "rule", id: rule.id.rawValue) }
    }

    func updateRule(_ rule: Rule) throws {
        let updated = try changes(
            "UPDATE rules SET version = ?, enabled = ?, created_at = ?, updated_at = ?, definition = ? WHERE id = ?",
            [rule.version, rule.enabled, rule.createdAt.millisecondsSinceEpoch, rule.updatedAt.millisecondsSinceEpoch, try json(rule.definition), rule.id.rawValue])
        guard updated > 0 else { throw RapportError.notFound(entity: "rule", id: rule.id.rawValue) }
    }

    func deleteRule(_ id: RuleID) throws {
        guard try changes("DELETE FROM rules WHERE id = ?", [id.rawValue]) > 0 else { throw RapportError.notFound(entity: "rule", id: id.rawValue) }
        for table in ["rule_versions", "rule_counters", "rule_fired_counts"] {
            try execute("DELETE FROM \(table) WHERE rule_id = ?", [id.rawValue])
        }
    }

    func insertRuleDefinition(_ definition: RuleDefinition, rule: RuleID, version: Int64) throws {
        let inserted = try changes(
            "INSERT INTO rule_versions (rule_id, version, definition) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", [rule.rawValue, version, try json(definition)])
        guard inserted > 0 else { throw RapportError.alreadyExists(entity: "rule version", id: "\(rule)@\(version)") }
    }

    private func decodeRun(_ row: ColumnRow) throws -> RuleRun { try decodeJSON(RuleRun.self, row, 0) }

    func run(_ id: RunID) throws -> RuleRun? {
        try fetchOne("SELECT details FROM rule_runs WHERE id = ?", [id.rawValue], decodeRun)
    }

    func runs(_ query: RunQuery) throws -> [RuleRun] {
        var sql = "SELECT details FROM rule_runs WHERE 1"
        var arguments = StatementArguments()
        if let customer = query.customerID {
            sql += " AND customer_id = ?"
            arguments += [customer.rawValue]
        }
        if let rule = query.ruleID {
            sql += " AND rule_id = ?"
            arguments += [rule.rawValue]
        }
        if let status = query.status {
            sql += " AND status = ?"
            arguments += [status.rawValue]
        }
        if let before = query.before {
            sql += " AND (created_at, id) < (?, ?)"
            arguments += [before.createdAt.millisecondsSinceEpoch, before.id.rawValue]
        }
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        arguments += [max(0, query.limit)]
        return try fetchAll(sql, arguments, decodeRun)
    }

    func waitingRun(rule: RuleID, customer: CustomerID) throws -> RuleRun? {
        try fetchOne(
            "SELECT details FROM rule_runs WHERE rule_id = ? AND customer_id = ? AND status = 'waiting' ORDER BY created_at DESC, id DESC LIMIT 1",
            [rule.rawValue, customer.rawValue], decodeRun)
    }

    func latestRun(rule: RuleID, customer: CustomerID) throws -> RuleRun? {
        try fetchOne(
            "SELECT details FROM rule_runs INDEXED BY rule_runs_by_customer_rule WHERE customer_id = ? AND rule_id = ? ORDER BY created_at DESC, id DESC LIMIT 1",
            [customer.rawValue, rule.rawValue], decodeRun)
    }

    private func runArguments(_ run: RuleRun) throws -> StatementArguments {
        [
            run.ruleID.rawValue, run.customerID.rawValue, run.status.rawValue, run.createdAt.millisecondsSinceEpoch, run.updatedAt.millisecondsSinceEpoch,
            try json(run), run.id.rawValue,
        ]
    }

    func insertRun(_ run: RuleRun) throws {
        let inserted = try changes(
            "INSERT INTO rule_runs (rule_id, customer_id, status, created_at, updated_at, details, id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            try runArguments(run))
        guard inserted > 0 else { throw RapportError.alreadyExists(entity: "rule run", id: run.id.rawValue) }
    }

    func updateRun(_ run: RuleRun) throws {
        let updated = try changes(
            "UPDATE rule_runs SET rule_id = ?, customer_id = ?, status = ?, created_at = ?, updated_at = ?, details = ? WHERE id = ?", try runArguments(run))
        guard updated > 0 else { throw RapportError.notFound(entity: "rule run", id: run.id.rawValue) }
    }

    func ruleCounter(rule: RuleID, customer: CustomerID) throws -> RuleCounter? {
        try fetchOne("SELECT last_fired_at, fired_count FROM rule_counters WHERE rule_id = ? AND customer_id = ?", [rule.rawValue, customer.rawValue]) {
            RuleCounter(ruleID: rule, customerID: customer, lastFiredAt: try time($0, 0), firedCount: try $0.decode(Int64.self, atIndex: 1))
        }
    }

    func putRuleCounter(_ counter: RuleCounter) throws {
        try execute(
            "INSERT OR REPLACE INTO rule_counters (rule_id, customer_id, last_fired_at, fired_count) VALUES (?, ?, ?, ?)",
            [counter.ruleID.rawValue, counter.customerID.rawValue, counter.lastFiredAt.millisecondsSinceEpoch, counter.firedCount])
    }

    func ruleFiredCount(rule: RuleID, day: Int64) throws -> Int64 {
        try fetchOne("SELECT count FROM rule_fired_counts WHERE rule_id = ? AND day = ?", [rule.rawValue, day]) { try $0.decode(Int64.self, atIndex: 0) } ?? 0
    }

    func incrementRuleFiredCount(rule: RuleID, day: Int64) throws {
        try execute(
            "INSERT INTO rule_fired_counts (rule_id, day, count) VALUES (?, ?, 1) ON CONFLICT (rule_id, day) DO UPDATE SET count = count + 1",
            [rule.rawValue, day])
    }

    func deleteRuns(endedBefore time: Timestamp) throws {
        try execute("DELETE FROM rule_runs WHERE status != 'waiting' AND updated_at < ?", [time.millisecondsSinceEpoch])
    }

    // MARK: Jobs

    private func decodeJob(_ row: ColumnRow) throws -> ScheduledJob {
        // A kind this version cannot read (a later version's, or damaged) must not stop the scheduler: it is kept
        // as stored, and written back as stored.
        let kind = try (try? decodeJSON(JobKind.self, row, 4)) ?? .unreadable(row.decode(String.self, atIndex: 4))
        return ScheduledJob(
            key: try row.decode(String.self, atIndex: 0), dueAt: try time(row, 1), kind: kind,
            customerID: try row.decode(String?.self, atIndex: 2).map(CustomerID.init(uncheckedRawValue:)), attempts: try row.decode(Int.self, atIndex: 3))
    }

    func job(_ key: String) throws -> ScheduledJob? {
        try fetchOne("SELECT key, due_at, customer_id, attempts, kind FROM jobs WHERE key = ?", [key], decodeJob)
    }

    func dueJobs(at time: Timestamp, limit: Int) throws -> [ScheduledJob] {
        try fetchAll(
            "SELECT key, due_at, customer_id, attempts, kind FROM jobs WHERE due_at <= ? ORDER BY due_at, key LIMIT ?",
            [time.millisecondsSinceEpoch, max(0, limit)], decodeJob)
    }

    func nextJobDue() throws -> Timestamp? {
        let due: Int64?? = try fetchOne("SELECT MIN(due_at) FROM jobs", []) { try $0.decode(Int64?.self, atIndex: 0) }
        return (due ?? nil).map(Timestamp.init(millisecondsSinceEpoch:))
    }

    func putJob(_ job: ScheduledJob) throws {
        try execute(
            "INSERT OR REPLACE INTO jobs (key, due_at, customer_id, attempts, kind) VALUES (?, ?, ?, ?, ?)",
            [job.key, job.dueAt.millisecondsSinceEpoch, job.customerID?.rawValue, job.attempts, try kindText(job.kind)])
    }

    private func kindText(_ kind: JobKind) throws -> String {
        if case .unreadable(let stored) = kind { return stored }
        return try json(kind)
    }

    func deleteJob(_ key: String) throws {
        try execute("DELETE FROM jobs WHERE key = ?", [key])
    }

    func deleteJobs(keyPrefix prefix: String) throws {
        guard !prefix.isEmpty else { return }
        // Keys from the prefix up to (not including) the prefix with its last byte raised by one.
        var upper = Array(prefix.utf8)
        upper[upper.count - 1] &+= 1
        if upper.last == 0 {
            try execute("DELETE FROM jobs WHERE substr(key, 1, ?) = ?", [prefix.utf8.count, prefix])
        } else {
            try execute("DELETE FROM jobs WHERE key >= ? AND key < CAST(? AS TEXT)", [prefix, Data(upper)])
        }
    }

    // MARK: Outbox

    private func decodeOutbox(_ row: ColumnRow) throws -> OutboxEntry { try decodeJSON(OutboxEntry.self, row, 0) }

    func outboxEntry(_ id: OutboxEntryID) throws -> OutboxEntry? {
        try fetchOne("SELECT details FROM outbox WHERE id = ?", [id.rawValue], decodeOutbox)
    }

    func outboxEntry(idempotencyKey: String) throws -> OutboxEntry? {
        try fetchOne("SELECT details FROM outbox WHERE idempotency_key = ?", [idempotencyKey], decodeOutbox)
    }

    func outboxEntries(_ query: OutboxQuery) throws -> [OutboxEntry] {
        var sql = "SELECT details FROM outbox WHERE sequence > ?"
        var arguments: StatementArguments = [query.afterSequence]
        if let customer = query.customerID {
            sql += " AND customer_id = ?"
            arguments += [customer.rawValue]
        }
        if !query.states.isEmpty {
            sql += " AND state IN (" + Array(repeating: "?", count: query.states.count).joined(separator: ", ") + ")"
            arguments += StatementArguments(query.states.map(\.rawValue).sorted())
        }
        sql += " ORDER BY sequence LIMIT ?"
        arguments += [max(0, query.limit)]
        return try fetchAll(sql, arguments, decodeOutbox)
    }

    func deliverableOutboxEntries(at time: Timestamp, after: Int64, limit: Int) throws -> [OutboxEntry] {
        try fetchAll(
            """
            SELECT details FROM outbox AS o
            WHERE o.sequence > ? AND o.state IN ('pending', 'leased')
              AND (o.state = 'pending' OR o.lease_expires_at <= ?)
              AND o.available_at <= ?
              AND NOT EXISTS (
                SELECT 1 FROM outbox AS p
                WHERE p.customer_id = o.customer_id AND p.state IN ('pending', 'leased') AND p.sequence < o.sequence)
            ORDER BY o.sequence LIMIT ?
            """,
            [after, time.millisecondsSinceEpoch, time.millisecondsSinceEpoch, max(0, limit)], decodeOutbox)
    }

    func firstOpenOutboxSequence(of customer: CustomerID) throws -> Int64? {
        try fetchOne("SELECT MIN(sequence) FROM outbox WHERE customer_id = ? AND state IN ('pending', 'leased')", [customer.rawValue]) {
            try $0.decode(Int64?.self, atIndex: 0)
        } ?? nil
    }

    private func outboxArguments(_ entry: OutboxEntry) throws -> StatementArguments {
        [
            entry.id.rawValue, entry.customerID.rawValue, entry.idempotencyKey, entry.state.rawValue, entry.leaseExpiresAt?.millisecondsSinceEpoch,
            entry.availableAt.millisecondsSinceEpoch, entry.updatedAt.millisecondsSinceEpoch, try json(entry), entry.sequence,
        ]
    }

    func insertOutboxEntry(_ entry: OutboxEntry) throws {
        if try exists("SELECT 1 FROM outbox WHERE id = ?", [entry.id.rawValue]) { throw RapportError.alreadyExists(entity: "outbox entry", id: entry.id.rawValue) }
        if try exists("SELECT 1 FROM outbox WHERE idempotency_key = ?", [entry.idempotencyKey]) {
            throw RapportError.alreadyExists(entity: "outbox entry", id: entry.idempotencyKey)
        }
        let inserted = try changes(
            """
            INSERT INTO outbox (id, customer_id, idempotency_key, state, lease_expires_at, available_at, updated_at, details, sequence)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """, try outboxArguments(entry))
        guard inserted > 0 else { throw RapportError.alreadyExists(entity: "outbox entry", id: "sequence \(entry.sequence)") }
    }

    func updateOutboxEntry(_ entry: OutboxEntry) throws {
        guard let old = try outboxEntry(entry.id) else { throw RapportError.notFound(entity: "outbox entry", id: entry.id.rawValue) }
        if old.idempotencyKey != entry.idempotencyKey, try exists("SELECT 1 FROM outbox WHERE idempotency_key = ?", [entry.idempotencyKey]) {
            throw RapportError.alreadyExists(entity: "outbox entry", id: entry.idempotencyKey)
        }
        if old.sequence != entry.sequence, try exists("SELECT 1 FROM outbox WHERE sequence = ?", [entry.sequence]) {
            throw RapportError.alreadyExists(entity: "outbox entry", id: "sequence \(entry.sequence)")
        }
        try execute("DELETE FROM outbox WHERE id = ?", [entry.id.rawValue])
        try execute(
            """
            INSERT INTO outbox (id, customer_id, idempotency_key, state, lease_expires_at, available_at, updated_at, details, sequence)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, try outboxArguments(entry))
    }

    func deleteOutboxEntries(closedBefore time: Timestamp) throws {
        try execute("DELETE FROM outbox WHERE state IN ('delivered', 'failed') AND updated_at < ?", [time.millisecondsSinceEpoch])
    }

    // MARK: Erasure

    /// Removes the automation records of a customer being deleted.
    func deleteAutomationRecords(of customer: CustomerID) throws {
        try deleteDynamicMemberships(of: customer)
        let lists = try fetchAll("SELECT DISTINCT segment_id FROM list_members WHERE customer_id = ?", [customer.rawValue]) {
            try $0.decode(String.self, atIndex: 0)
        }
        for segment in lists { _ = try deleteListMemberships(segment: SegmentID(uncheckedRawValue: segment), customer: customer) }
        for table in ["rule_runs", "rule_counters", "jobs", "outbox"] {
            try execute("DELETE FROM \(table) WHERE customer_id = ?", [customer.rawValue])
        }
    }
}
