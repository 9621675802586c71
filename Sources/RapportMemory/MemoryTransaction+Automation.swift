import RapportCore

extension MemoryTransaction {
    // MARK: Undoable collection edits

    // Inlined so that each call site's key path is a constant the optimizer turns into direct access (a key-path
    // projection per write was a tenth of an ingest).

    @inline(__always)
    func sortedInsert<Key: Hashable, Element: Comparable>(
        _ path: ReferenceWritableKeyPath<MemoryDatabase, [Key: SortedSet<Element>]>, _ key: Key, _ element: Element
    ) {
        let db = self.db
        guard db[keyPath: path][key, default: SortedSet()].insert(element) else { return }
        addUndo {
            db[keyPath: path][key]?.remove(element)
            if db[keyPath: path][key]?.isEmpty == true { db[keyPath: path][key] = nil }
        }
    }

    @inline(__always)
    func sortedRemove<Key: Hashable, Element: Comparable>(
        _ path: ReferenceWritableKeyPath<MemoryDatabase, [Key: SortedSet<Element>]>, _ key: Key, _ element: Element
    ) {
        let db = self.db
        guard db[keyPath: path][key]?.remove(element) == true else { return }
        if db[keyPath: path][key]?.isEmpty == true { db[keyPath: path][key] = nil }
        addUndo { db[keyPath: path][key, default: SortedSet()].insert(element) }
    }

    @inline(__always)
    func sortedInsert<Element: Comparable>(_ path: ReferenceWritableKeyPath<MemoryDatabase, SortedSet<Element>>, _ element: Element) {
        let db = self.db
        guard db[keyPath: path].insert(element) else { return }
        addUndo { db[keyPath: path].remove(element) }
    }

    @inline(__always)
    func sortedRemove<Element: Comparable>(_ path: ReferenceWritableKeyPath<MemoryDatabase, SortedSet<Element>>, _ element: Element) {
        let db = self.db
        guard db[keyPath: path].remove(element) else { return }
        addUndo { db[keyPath: path].insert(element) }
    }

    @inline(__always)
    func setInsert<Key: Hashable, Element: Hashable>(_ path: ReferenceWritableKeyPath<MemoryDatabase, [Key: Set<Element>]>, _ key: Key, _ element: Element) {
        let db = self.db
        guard db[keyPath: path][key, default: []].insert(element).inserted else { return }
        addUndo {
            db[keyPath: path][key]?.remove(element)
            if db[keyPath: path][key]?.isEmpty == true { db[keyPath: path][key] = nil }
        }
    }

    @inline(__always)
    func setRemove<Key: Hashable, Element: Hashable>(_ path: ReferenceWritableKeyPath<MemoryDatabase, [Key: Set<Element>]>, _ key: Key, _ element: Element) {
        let db = self.db
        guard db[keyPath: path][key]?.remove(element) != nil else { return }
        if db[keyPath: path][key]?.isEmpty == true { db[keyPath: path][key] = nil }
        addUndo { db[keyPath: path][key, default: []].insert(element) }
    }

    // MARK: Definitions

    func definitionsVersion() throws -> Int64 { db.definitionsVersion }

    func bumpDefinitionsVersion() throws {
        let db = self.db
        let old = db.definitionsVersion
        // A new random value, not a counter: a rolled-back change never leaves a number that a later one reuses.
        db.definitionsVersion = Int64.random(in: 1...Int64.max)
        addUndo { db.definitionsVersion = old }
    }

    func eventTypeDefinitions() throws -> [EventTypeDefinition] { db.eventTypes.values.sorted { $0.type < $1.type } }

    func putEventTypeDefinition(_ definition: EventTypeDefinition) throws { set(\.eventTypes, definition.type, definition) }

    // MARK: Segments

    func segment(_ id: SegmentID) throws -> Segment? { db.segments[id] }

    func segment(key: String) throws -> Segment? { db.segmentIDsByKey[key].flatMap { db.segments[$0] } }

    func segments() throws -> [Segment] { db.segments.values.sorted { $0.key < $1.key } }

    func isDynamicMember(segment: SegmentID, customer: CustomerID) throws -> Bool {
        db.dynamicSince[MembershipKey(segment: segment, customer: customer)] != nil
    }

    func isListMember(segment: SegmentID, customer: CustomerID) throws -> Bool { db.listOwners[segment]?.contains(customer) ?? false }

    /// When the customer first joined the list, over the memberships it owns.
    private func listSince(_ segment: SegmentID, _ customer: CustomerID) -> Timestamp? {
        (db.listRecordsByOwner[customer] ?? []).filter { $0.segment == segment }.compactMap { db.listRecords[$0]?.addedAt }.min()
    }

    func memberships(of customer: CustomerID) throws -> [SegmentMembership] {
        var result: [SegmentMembership] = (db.dynamicByCustomer[customer] ?? []).compactMap { segment in
            db.dynamicSince[MembershipKey(segment: segment, customer: customer)].map { SegmentMembership(segmentID: segment, customerID: customer, since: $0) }
        }
        for segment in Set((db.listRecordsByOwner[customer] ?? []).map(\.segment)) {
            if let since = listSince(segment, customer) { result.append(SegmentMembership(segmentID: segment, customerID: customer, since: since)) }
        }
        return result.sorted { $0.segmentID < $1.segmentID }
    }

    func segmentIDs(of customer: CustomerID) throws -> Set<SegmentID> {
        var ids = db.dynamicByCustomer[customer] ?? []
        for key in db.listRecordsByOwner[customer] ?? [] { ids.insert(key.segment) }
        return ids
    }

    func members(of segment: SegmentID, after: CustomerID?, limit: Int) throws -> [SegmentMembership] {
        if db.segments[segment]?.kind == .list {
            return (db.listOwners[segment]?.ascending(after: after, limit: limit) ?? []).map {
                SegmentMembership(segmentID: segment, customerID: $0, since: listSince(segment, $0) ?? Timestamp(millisecondsSinceEpoch: 0))
            }
        }
        return (db.dynamicMembers[segment]?.ascending(after: after, limit: limit) ?? []).map {
            SegmentMembership(segmentID: segment, customerID: $0, since: db.dynamicSince[MembershipKey(segment: segment, customer: $0)]!)
        }
    }

    func listMemberships(ownedBy customer: CustomerID) throws -> [ListMembershipRecord] {
        (db.listRecordsByOwner[customer] ?? []).compactMap { db.listRecords[$0] }.sorted { ($0.segmentID, $0.homeCustomerID) < ($1.segmentID, $1.homeCustomerID) }
    }

    func insertSegment(_ segment: Segment) throws {
        guard db.segments[segment.id] == nil else { throw RapportError.alreadyExists(entity: "segment", id: segment.id.rawValue) }
        guard db.segmentIDsByKey[segment.key] == nil else { throw RapportError.alreadyExists(entity: "segment", id: segment.key) }
        var stored = segment
        stored.memberCount = 0
        set(\.segments, segment.id, stored)
        set(\.segmentIDsByKey, segment.key, segment.id)
    }

    func updateSegment(_ segment: Segment) throws {
        guard let old = db.segments[segment.id] else { throw RapportError.notFound(entity: "segment", id: segment.id.rawValue) }
        if old.key != segment.key {
            guard db.segmentIDsByKey[segment.key] == nil else { throw RapportError.alreadyExists(entity: "segment", id: segment.key) }
            set(\.segmentIDsByKey, old.key, nil)
            set(\.segmentIDsByKey, segment.key, segment.id)
        }
        var stored = segment
        stored.memberCount = old.memberCount  // the store counts members itself
        set(\.segments, segment.id, stored)
    }

    private func adjustMemberCount(_ segment: SegmentID, by delta: Int64) {
        guard var stored = db.segments[segment] else { return }
        stored.memberCount += delta
        set(\.segments, segment, stored)
    }

    func deleteSegment(_ id: SegmentID) throws {
        guard let segment = db.segments[id] else { throw RapportError.notFound(entity: "segment", id: id.rawValue) }
        for customer in db.dynamicMembers[id] ?? SortedSet() {
            set(\.dynamicSince, MembershipKey(segment: id, customer: customer), nil)
            setRemove(\.dynamicByCustomer, customer, id)
        }
        set(\.dynamicMembers, id, nil)
        for key in db.listRecords.keys where key.segment == id {
            if let record = db.listRecords[key] { setRemove(\.listRecordsByOwner, record.customerID, key) }
            set(\.listRecords, key, nil)
        }
        set(\.listOwners, id, nil)
        set(\.segmentIDsByKey, segment.key, nil)
        set(\.segments, id, nil)
    }

    func insertDynamicMembership(_ membership: SegmentMembership) throws {
        let key = MembershipKey(segment: membership.segmentID, customer: membership.customerID)
        guard db.dynamicSince[key] == nil else {
            throw RapportError.alreadyExists(entity: "segment membership", id: "\(membership.segmentID)/\(membership.customerID)")
        }
        set(\.dynamicSince, key, membership.since)
        sortedInsert(\.dynamicMembers, membership.segmentID, membership.customerID)
        setInsert(\.dynamicByCustomer, membership.customerID, membership.segmentID)
        adjustMemberCount(membership.segmentID, by: 1)
    }

    func deleteDynamicMembership(segment: SegmentID, customer: CustomerID) throws {
        let key = MembershipKey(segment: segment, customer: customer)
        guard db.dynamicSince[key] != nil else { throw RapportError.notFound(entity: "segment membership", id: "\(segment)/\(customer)") }
        set(\.dynamicSince, key, nil)
        sortedRemove(\.dynamicMembers, segment, customer)
        setRemove(\.dynamicByCustomer, customer, segment)
        adjustMemberCount(segment, by: -1)
    }

    func deleteDynamicMemberships(of customer: CustomerID) throws {
        for segment in db.dynamicByCustomer[customer] ?? [] { try deleteDynamicMembership(segment: segment, customer: customer) }
    }

    func insertListMembership(_ record: ListMembershipRecord) throws {
        let key = MembershipKey(segment: record.segmentID, customer: record.homeCustomerID)
        guard db.listRecords[key] == nil else {
            throw RapportError.alreadyExists(entity: "list membership", id: "\(record.segmentID)/\(record.homeCustomerID)")
        }
        set(\.listRecords, key, record)
        addListOwnership(key, record.segmentID, record.customerID)
    }

    private func addListOwnership(_ key: MembershipKey, _ segment: SegmentID, _ owner: CustomerID) {
        let wasMember = db.listOwners[segment]?.contains(owner) ?? false
        setInsert(\.listRecordsByOwner, owner, key)
        if !wasMember {
            sortedInsert(\.listOwners, segment, owner)
            adjustMemberCount(segment, by: 1)
        }
    }

    private func removeListOwnership(_ key: MembershipKey, _ segment: SegmentID, _ owner: CustomerID) {
        setRemove(\.listRecordsByOwner, owner, key)
        if !(db.listRecordsByOwner[owner] ?? []).contains(where: { $0.segment == segment }) {
            sortedRemove(\.listOwners, segment, owner)
            adjustMemberCount(segment, by: -1)
        }
    }

    func deleteListMemberships(segment: SegmentID, customer: CustomerID) throws -> Int {
        let keys = (db.listRecordsByOwner[customer] ?? []).filter { $0.segment == segment }
        for key in keys {
            set(\.listRecords, key, nil)
            removeListOwnership(key, segment, customer)
        }
        return keys.count
    }

    /// Moves the list memberships `from` owns (those whose home passes `home`) to `to`.
    func moveListMemberships(from: CustomerID, to: CustomerID, home: (CustomerID) -> Bool) {
        guard from != to else { return }
        for key in db.listRecordsByOwner[from] ?? [] {
            guard var record = db.listRecords[key], home(record.homeCustomerID) else { continue }
            removeListOwnership(key, record.segmentID, from)
            record.customerID = to
            set(\.listRecords, key, record)
            addListOwnership(key, record.segmentID, to)
        }
    }

    // MARK: Rules and runs

    func rule(_ id: RuleID) throws -> Rule? { db.rules[id] }

    func rules() throws -> [Rule] { db.rules.values.sorted { $0.id < $1.id } }

    func ruleDefinition(_ id: RuleID, version: Int64) throws -> RuleDefinition? { db.ruleDefinitions[RuleVersionKey(rule: id, version: version)] }

    func insertRule(_ rule: Rule) throws {
        guard db.rules[rule.id] == nil else { throw RapportError.alreadyExists(entity: "rule", id: rule.id.rawValue) }
        set(\.rules, rule.id, rule)
    }

    func updateRule(_ rule: Rule) throws {
        guard db.rules[rule.id] != nil else { throw RapportError.notFound(entity: "rule", id: rule.id.rawValue) }
        set(\.rules, rule.id, rule)
    }

    func deleteRule(_ id: RuleID) throws {
        guard db.rules[id] != nil else { throw RapportError.notFound(entity: "rule", id: id.rawValue) }
        set(\.rules, id, nil)
        for key in db.ruleDefinitions.keys where key.rule == id { set(\.ruleDefinitions, key, nil) }
        for key in db.ruleCounters.keys where key.rule == id { set(\.ruleCounters, key, nil) }
        for key in db.ruleFiredCounts.keys where key.rule == id { set(\.ruleFiredCounts, key, nil) }
    }

    func insertRuleDefinition(_ definition: RuleDefinition, rule: RuleID, version: Int64) throws {
        let key = RuleVersionKey(rule: rule, version: version)
        guard db.ruleDefinitions[key] == nil else { throw RapportError.alreadyExists(entity: "rule version", id: "\(rule)@\(version)") }
        set(\.ruleDefinitions, key, definition)
    }

    func run(_ id: RunID) throws -> RuleRun? { db.runs[id] }

    func runs(_ query: RunQuery) throws -> [RuleRun] {
        let index: SortedSet<RunCursor>?
        if let customer = query.customerID {
            index = db.runsByCustomer[customer]
        } else if let rule = query.ruleID {
            index = db.runsByRule[rule]
        } else {
            index = db.runOrder
        }
        guard let index, query.limit > 0 else { return [] }
        var result: [RuleRun] = []
        var before = query.before
        while result.count < query.limit {
            let batch = index.descending(before: before, limit: 256)
            for cursor in batch {
                if let run = db.runs[cursor.id], query.matches(run) {
                    result.append(run)
                    if result.count == query.limit { break }
                }
            }
            guard batch.count == 256 else { break }
            before = batch.last
        }
        return result
    }

    func waitingRun(rule: RuleID, customer: CustomerID) throws -> RuleRun? {
        db.waitingRuns[RuleCustomerKey(rule: rule, customer: customer)]?.descending(before: nil, limit: 1).first.flatMap { db.runs[$0.id] }
    }

    func latestRun(rule: RuleID, customer: CustomerID) throws -> RuleRun? {
        db.runsByRuleCustomer[RuleCustomerKey(rule: rule, customer: customer)]?.descending(before: nil, limit: 1).first.flatMap { db.runs[$0.id] }
    }

    private func indexRun(_ run: RuleRun, adding: Bool) {
        let cursor = RunCursor(run)
        let key = RuleCustomerKey(rule: run.ruleID, customer: run.customerID)
        if adding {
            sortedInsert(\.runOrder, cursor)
            sortedInsert(\.runsByRule, run.ruleID, cursor)
            sortedInsert(\.runsByCustomer, run.customerID, cursor)
            sortedInsert(\.runsByRuleCustomer, key, cursor)
        } else {
            sortedRemove(\.runOrder, cursor)
            sortedRemove(\.runsByRule, run.ruleID, cursor)
            sortedRemove(\.runsByCustomer, run.customerID, cursor)
            sortedRemove(\.runsByRuleCustomer, key, cursor)
        }
        if run.status == .waiting {
            if adding { sortedInsert(\.waitingRuns, key, cursor) } else { sortedRemove(\.waitingRuns, key, cursor) }
        }
    }

    func insertRun(_ run: RuleRun) throws {
        guard db.runs[run.id] == nil else { throw RapportError.alreadyExists(entity: "rule run", id: run.id.rawValue) }
        set(\.runs, run.id, run)
        indexRun(run, adding: true)
    }

    func updateRun(_ run: RuleRun) throws {
        guard let old = db.runs[run.id] else { throw RapportError.notFound(entity: "rule run", id: run.id.rawValue) }
        // The indexes hold the rule, customer, creation time and whether it waits: unchanged, they stay.
        let reindex =
            old.ruleID != run.ruleID || old.customerID != run.customerID || old.createdAt != run.createdAt || (old.status == .waiting) != (run.status == .waiting)
        if reindex { indexRun(old, adding: false) }
        set(\.runs, run.id, run)
        if reindex { indexRun(run, adding: true) }
    }

    private func deleteRunRecord(_ run: RuleRun) {
        indexRun(run, adding: false)
        set(\.runs, run.id, nil)
    }

    func ruleCounter(rule: RuleID, customer: CustomerID) throws -> RuleCounter? { db.ruleCounters[RuleCustomerKey(rule: rule, customer: customer)] }

    func putRuleCounter(_ counter: RuleCounter) throws { set(\.ruleCounters, RuleCustomerKey(rule: counter.ruleID, customer: counter.customerID), counter) }

    func ruleFiredCount(rule: RuleID, day: Int64) throws -> Int64 { db.ruleFiredCounts[RuleDayKey(rule: rule, day: day)] ?? 0 }

    func incrementRuleFiredCount(rule: RuleID, day: Int64) throws {
        let key = RuleDayKey(rule: rule, day: day)
        set(\.ruleFiredCounts, key, (db.ruleFiredCounts[key] ?? 0) + 1)
    }

    func deleteRuns(endedBefore time: Timestamp) throws {
        for run in db.runs.values where run.status != .waiting && run.updatedAt < time { deleteRunRecord(run) }
    }

    // MARK: Jobs

    func job(_ key: String) throws -> ScheduledJob? { db.jobs[key] }

    func dueJobs(at time: Timestamp, limit: Int) throws -> [ScheduledJob] {
        var result: [ScheduledJob] = []
        for position in db.jobsByDue.ascending(after: nil, limit: limit) {
            guard position.due <= time else { break }
            if let job = db.jobs[position.key] { result.append(job) }
        }
        return result
    }

    func nextJobDue() throws -> Timestamp? { db.jobsByDue.first?.due }

    func putJob(_ job: ScheduledJob) throws {
        if let old = db.jobs[job.key] { removeJob(old) }
        set(\.jobs, job.key, job)
        sortedInsert(\.jobKeys, job.key)
        sortedInsert(\.jobsByDue, JobPosition(due: job.dueAt, key: job.key))
        if let customer = job.customerID { setInsert(\.jobsByCustomer, customer, job.key) }
    }

    private func removeJob(_ job: ScheduledJob) {
        set(\.jobs, job.key, nil)
        sortedRemove(\.jobKeys, job.key)
        sortedRemove(\.jobsByDue, JobPosition(due: job.dueAt, key: job.key))
        if let customer = job.customerID { setRemove(\.jobsByCustomer, customer, job.key) }
    }

    func deleteJob(_ key: String) throws {
        if let job = db.jobs[key] { removeJob(job) }
    }

    func deleteJobs(keyPrefix prefix: String) throws {
        guard !prefix.isEmpty else { return }
        var after: String?
        while true {
            let keys = after.map { db.jobKeys.ascending(after: $0, limit: 256) } ?? db.jobKeys.ascending(from: prefix, limit: 256)
            var done = keys.count < 256
            for key in keys {
                // By bytes, as SQLite compares: `hasPrefix` compares characters, and a combining mark after the
                // prefix would hide a key that starts with it.
                guard key.utf8.starts(with: prefix.utf8) else {
                    done = true
                    break
                }
                if let job = db.jobs[key] { removeJob(job) }
            }
            guard !done, let last = keys.last else { return }
            after = last
        }
    }

    // MARK: Outbox

    func outboxEntry(_ id: OutboxEntryID) throws -> OutboxEntry? { db.outbox[id] }

    func outboxEntry(idempotencyKey: String) throws -> OutboxEntry? { db.outboxIDsByKey[idempotencyKey].flatMap { db.outbox[$0] } }

    func outboxEntries(_ query: OutboxQuery) throws -> [OutboxEntry] {
        var result: [OutboxEntry] = []
        // A customer's open entries (a withdrawal of consent fails them) come from their own index, not a scan.
        if let customer = query.customerID, !query.states.isEmpty, query.states.isSubset(of: [.pending, .leased]) {
            for sequence in db.openOutbox[customer]?.ascending(after: query.afterSequence, limit: .max) ?? [] {
                guard result.count < query.limit else { break }
                if let entry = db.outboxIDsBySequence[sequence].flatMap({ db.outbox[$0] }), query.matches(entry) { result.append(entry) }
            }
            return result
        }
        var after = query.afterSequence
        while result.count < query.limit {
            let batch = db.outboxBySequence.ascending(after: after, limit: 512)
            for sequence in batch {
                if let entry = db.outboxIDsBySequence[sequence].flatMap({ db.outbox[$0] }), query.matches(entry) {
                    result.append(entry)
                    if result.count == query.limit { break }
                }
            }
            guard batch.count == 512, let last = batch.last else { break }
            after = last
        }
        return result
    }

    func deliverableOutboxEntries(at time: Timestamp, after: Int64, limit: Int) throws -> [OutboxEntry] {
        var result: [OutboxEntry] = []
        var position = after
        while result.count < limit {
            let heads = db.outboxHeads.ascending(after: position, limit: 512)
            for sequence in heads {
                guard result.count < limit else { break }
                guard let entry = db.outboxIDsBySequence[sequence].flatMap({ db.outbox[$0] }) else { continue }
                let free = entry.state == .pending || (entry.state == .leased && entry.leaseExpiresAt.map { $0 <= time } == true)
                if free, entry.availableAt <= time { result.append(entry) }
            }
            guard heads.count == 512, let last = heads.last else { break }
            position = last
        }
        return result
    }

    func firstOpenOutboxSequence(of customer: CustomerID) throws -> Int64? { db.openOutbox[customer]?.first }

    /// Keeps `outboxHeads` holding the first open entry of `customer`, given what it was before an edit.
    private func refreshOutboxHead(_ customer: CustomerID, previous: Int64?) {
        let current = db.openOutbox[customer]?.first
        guard current != previous else { return }
        if let previous { sortedRemove(\.outboxHeads, previous) }
        if let current { sortedInsert(\.outboxHeads, current) }
    }

    func insertOutboxEntry(_ entry: OutboxEntry) throws {
        guard db.outbox[entry.id] == nil else { throw RapportError.alreadyExists(entity: "outbox entry", id: entry.id.rawValue) }
        guard db.outboxIDsByKey[entry.idempotencyKey] == nil else { throw RapportError.alreadyExists(entity: "outbox entry", id: entry.idempotencyKey) }
        guard db.outboxIDsBySequence[entry.sequence] == nil else { throw RapportError.alreadyExists(entity: "outbox entry", id: "sequence \(entry.sequence)") }
        set(\.outbox, entry.id, entry)
        set(\.outboxIDsByKey, entry.idempotencyKey, entry.id)
        set(\.outboxIDsBySequence, entry.sequence, entry.id)
        sortedInsert(\.outboxBySequence, entry.sequence)
        if entry.isOpen {
            let previous = db.openOutbox[entry.customerID]?.first
            sortedInsert(\.openOutbox, entry.customerID, entry.sequence)
            refreshOutboxHead(entry.customerID, previous: previous)
        }
    }

    func updateOutboxEntry(_ entry: OutboxEntry) throws {
        guard let old = db.outbox[entry.id] else { throw RapportError.notFound(entity: "outbox entry", id: entry.id.rawValue) }
        // Refused before anything changes: a caller that catches the error keeps the entry as it was.
        if old.idempotencyKey != entry.idempotencyKey, db.outboxIDsByKey[entry.idempotencyKey] != nil {
            throw RapportError.alreadyExists(entity: "outbox entry", id: entry.idempotencyKey)
        }
        if old.sequence != entry.sequence, db.outboxIDsBySequence[entry.sequence] != nil {
            throw RapportError.alreadyExists(entity: "outbox entry", id: "sequence \(entry.sequence)")
        }
        removeOutboxEntry(old)
        try insertOutboxEntry(entry)
    }

    private func removeOutboxEntry(_ entry: OutboxEntry) {
        set(\.outbox, entry.id, nil)
        set(\.outboxIDsByKey, entry.idempotencyKey, nil)
        set(\.outboxIDsBySequence, entry.sequence, nil)
        sortedRemove(\.outboxBySequence, entry.sequence)
        if entry.isOpen {
            let previous = db.openOutbox[entry.customerID]?.first
            sortedRemove(\.openOutbox, entry.customerID, entry.sequence)
            refreshOutboxHead(entry.customerID, previous: previous)
        }
    }

    func deleteOutboxEntries(closedBefore time: Timestamp) throws {
        for entry in db.outbox.values where !entry.isOpen && entry.updatedAt < time { removeOutboxEntry(entry) }
    }

    // MARK: Erasure

    /// Removes the automation records of a customer being deleted.
    func deleteAutomationRecords(of customer: CustomerID) throws {
        try deleteDynamicMemberships(of: customer)
        for key in db.listRecordsByOwner[customer] ?? [] {
            if let record = db.listRecords[key] {
                set(\.listRecords, key, nil)
                removeListOwnership(key, record.segmentID, customer)
            }
        }
        for cursor in db.runsByCustomer[customer] ?? SortedSet() {
            if let run = db.runs[cursor.id] { deleteRunRecord(run) }
        }
        for key in db.ruleCounters.keys where key.customer == customer { set(\.ruleCounters, key, nil) }
        for key in db.jobsByCustomer[customer] ?? [] {
            if let job = db.jobs[key] { removeJob(job) }
        }
        for entry in db.outbox.values where entry.customerID == customer { removeOutboxEntry(entry) }
    }
}
