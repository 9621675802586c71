import RapportCore

/// One transaction over a ``MemoryDatabase``: reads directly, writes with an undo log.
final class MemoryTransaction: StoreWriter {
    let db: MemoryDatabase
    private var undo: [() -> Void] = []

    init(_ database: MemoryDatabase) {
        db = database
    }

    /// Undoes every write of this transaction, newest first.
    func rollback() {
        for action in undo.reversed() { action() }
        undo.removeAll()
    }

    // MARK: Undoable primitives

    /// Records an action that undoes a write just made.
    func addUndo(_ action: @escaping () -> Void) {
        undo.append(action)
    }

    // Inlined, as the edits in MemoryTransaction+Automation.swift: the key path becomes direct access.
    @inline(__always)
    func set<Key: Hashable, Value>(_ path: ReferenceWritableKeyPath<MemoryDatabase, [Key: Value]>, _ key: Key, _ value: Value?) {
        let db = self.db
        let old = db[keyPath: path].updateValue(forKey: key, to: value)
        undo.append { _ = db[keyPath: path].updateValue(forKey: key, to: old) }
    }

    @inline(__always)
    private func indexInsert<Key: Hashable>(
        _ path: ReferenceWritableKeyPath<MemoryDatabase, [CustomerID: TimelineIndex<Key>]>, _ customer: CustomerID, _ key: Key, _ position: TimelinePosition
    ) {
        let db = self.db
        db[keyPath: path][customer, default: TimelineIndex()].insert(key, at: position)
        undo.append { db[keyPath: path][customer]?.remove(key, at: position) }
    }

    /// Moves the entries of `from`'s index that pass `predicate` into `to`'s index.
    private func indexMove<Key: Hashable>(
        _ path: ReferenceWritableKeyPath<MemoryDatabase, [CustomerID: TimelineIndex<Key>]>, from: CustomerID, to: CustomerID,
        where predicate: (Key) -> Bool
    ) -> [Key] {
        guard from != to, var source = db[keyPath: path][from] else { return [] }
        let taken = source.extract(where: predicate)
        guard !taken.isEmpty else { return [] }
        set(path, from, source.isEmpty ? nil : source)
        var target = db[keyPath: path][to] ?? TimelineIndex()
        target.absorb(taken)
        set(path, to, target)
        return taken.entries.map(\.key)
    }

    @inline(__always)
    private func indexRemove<Key: Hashable>(
        _ path: ReferenceWritableKeyPath<MemoryDatabase, [CustomerID: TimelineIndex<Key>]>, _ customer: CustomerID, _ key: Key, _ position: TimelinePosition
    ) {
        guard var index = db[keyPath: path][customer] else { return }
        index.remove(key, at: position)
        set(path, customer, index.isEmpty ? nil : index)
    }

    // MARK: Reads

    func currentSequence() throws -> Int64 { db.sequence }

    func customer(_ id: CustomerID) throws -> CustomerRecord? { db.customers[id] }

    func customers(_ query: CustomerQuery) throws -> [CustomerRecord] {
        let order = query.order
        func isBefore(_ a: (Int64, CustomerID), _ b: (Int64, CustomerID)) -> Bool {
            order.descending ? a > b : a < b
        }
        var page: [CustomerRecord] = []
        for record in db.customers.values where record.state == .active && query.filter.matches(record) {
            if let cursor = query.after, !isBefore((cursor.value, cursor.id), (order.value(of: record), record.id)) { continue }
            page.append(record)
        }
        page.sort { isBefore((order.value(of: $0), $0.id), (order.value(of: $1), $1.id)) }
        return Array(page.prefix(max(0, query.limit)))
    }

    func customerCount() throws -> Int {
        db.customers.values.reduce(0) { $0 + ($1.state == .active ? 1 : 0) }
    }

    func stats(of customer: CustomerID) throws -> CustomerStats? { db.stats[customer] }

    func identity(_ identity: Identity) throws -> IdentityRecord? { db.identities[identity] }

    func identities(of customer: CustomerID) throws -> [IdentityRecord] {
        (db.identitiesByCustomer[customer] ?? []).compactMap { db.identities[$0] }.sorted { $0.identity.key < $1.identity.key }
    }

    func event(id: String) throws -> EventRecord? { db.events[id] }

    func events(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [EventRecord] {
        (db.eventsByCustomer[customer]?.newest(before: before, limit: limit) ?? []).compactMap { db.events[$0] }
    }

    func eventSummary(of customer: CustomerID) throws -> EventSummary {
        var count: Int64 = 0
        var last: Timestamp?
        for entry in db.eventsByCustomer[customer]?.entries ?? [] where db.events[entry.key]?.event.isEmittedByRule != true {
            count += 1
            last = entry.position.time  // entries are in time order
        }
        return EventSummary(count: count, lastOccurredAt: last)
    }

    func order(_ id: OrderID) throws -> OrderRecord? { db.orders[id] }

    func order(key: OrderKey) throws -> OrderRecord? { db.orderIDsByKey[key].flatMap { db.orders[$0] } }

    func orders(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [OrderRecord] {
        (db.ordersByCustomer[customer]?.newest(before: before, limit: limit) ?? []).compactMap { db.orders[$0] }
    }

    func interaction(_ id: InteractionID) throws -> InteractionRecord? { db.interactions[id] }

    func interactions(of customer: CustomerID, before: TimelinePosition?, limit: Int) throws -> [InteractionRecord] {
        (db.interactionsByCustomer[customer]?.newest(before: before, limit: limit) ?? []).compactMap { db.interactions[$0] }
    }

    func consents(of customer: CustomerID) throws -> [ConsentRecord] {
        (db.consentsByCustomer[customer]?.entries ?? []).compactMap { db.consents[$0.key] }
    }

    func merge(_ id: MergeID) throws -> MergeRecord? { db.merges[id] }

    func merges(into survivor: CustomerID) throws -> [MergeRecord] {
        (db.mergesBySurvivor[survivor] ?? []).compactMap { db.merges[$0] }.sorted { $0.sequence < $1.sequence }
    }

    func merges(absorbed: CustomerID) throws -> [MergeRecord] {
        (db.mergesByAbsorbed[absorbed] ?? []).compactMap { db.merges[$0] }.sorted { $0.sequence < $1.sequence }
    }

    func profileChanges(of customer: CustomerID, after sequence: Int64) throws -> [ProfileChange] {
        (db.profileChanges[customer] ?? []).filter { $0.sequence > sequence }
    }

    func attributeDefinitions() throws -> [AttributeDefinition] {
        db.attributeDefinitions.values.sorted { $0.key < $1.key }
    }

    // MARK: Writes

    func allocateSequence(_ count: Int) throws -> Int64 {
        let first = db.sequence + 1
        let old = db.sequence
        db.sequence += Int64(max(0, count))
        let db = self.db
        undo.append { db.sequence = old }
        return first
    }

    func insertCustomer(_ record: CustomerRecord) throws {
        guard db.customers[record.id] == nil else { throw RapportError.alreadyExists(entity: "customer", id: record.id.rawValue) }
        set(\.customers, record.id, record)
    }

    func updateCustomer(_ record: CustomerRecord) throws {
        guard db.customers[record.id] != nil else { throw RapportError.notFound(entity: "customer", id: record.id.rawValue) }
        set(\.customers, record.id, record)
    }

    func deleteCustomer(_ id: CustomerID) throws {
        guard db.customers[id] != nil else { throw RapportError.notFound(entity: "customer", id: id.rawValue) }
        set(\.customers, id, nil)
        set(\.stats, id, nil)
        for identity in db.identitiesByCustomer[id] ?? [] { set(\.identities, identity, nil) }
        set(\.identitiesByCustomer, id, nil)
        for key in db.eventsByCustomer[id]?.entries.map(\.key) ?? [] { set(\.events, key, nil) }
        set(\.eventsByCustomer, id, nil)
        for key in db.ordersByCustomer[id]?.entries.map(\.key) ?? [] {
            if let order = db.orders[key] { set(\.orderIDsByKey, order.order.key, nil) }
            set(\.orders, key, nil)
        }
        set(\.ordersByCustomer, id, nil)
        for key in db.interactionsByCustomer[id]?.entries.map(\.key) ?? [] { set(\.interactions, key, nil) }
        set(\.interactionsByCustomer, id, nil)
        for key in db.consentsByCustomer[id]?.entries.map(\.key) ?? [] { set(\.consents, key, nil) }
        set(\.consentsByCustomer, id, nil)
        set(\.profileChanges, id, nil)
        try deleteAutomationRecords(of: id)
        let merges = Set((db.mergesBySurvivor[id] ?? []) + (db.mergesByAbsorbed[id] ?? [])).sorted().compactMap { db.merges[$0] }
        for merge in merges {
            set(\.merges, merge.id, nil)
            unindex(merge)
        }
    }

    func putStats(_ stats: CustomerStats) throws {
        set(\.stats, stats.customerID, stats)
    }

    func insertIdentity(_ record: IdentityRecord) throws {
        guard db.identities[record.identity] == nil else { throw RapportError.alreadyExists(entity: "identity", id: record.identity.key) }
        set(\.identities, record.identity, record)
        addIdentityToIndex(record.identity, record.customerID)
    }

    func deleteIdentity(_ identity: Identity) throws {
        guard let record = db.identities[identity] else { throw RapportError.notFound(entity: "identity", id: identity.key) }
        set(\.identities, identity, nil)
        removeIdentityFromIndex(identity, record.customerID)
    }

    private func addIdentityToIndex(_ identity: Identity, _ customer: CustomerID) {
        let db = self.db
        db.identitiesByCustomer[customer, default: []].insert(identity)
        undo.append {
            db.identitiesByCustomer[customer]?.remove(identity)
            if db.identitiesByCustomer[customer]?.isEmpty == true { db.identitiesByCustomer[customer] = nil }
        }
    }

    private func removeIdentityFromIndex(_ identity: Identity, _ customer: CustomerID) {
        let db = self.db
        db.identitiesByCustomer[customer]?.remove(identity)
        if db.identitiesByCustomer[customer]?.isEmpty == true { db.identitiesByCustomer[customer] = nil }
        undo.append { db.identitiesByCustomer[customer, default: []].insert(identity) }
    }

    func insertEvent(_ record: EventRecord) throws {
        guard db.events[record.event.id] == nil else { throw RapportError.alreadyExists(entity: "event", id: record.event.id) }
        set(\.events, record.event.id, record)
        indexInsert(\.eventsByCustomer, record.event.customerID, record.event.id, TimelinePosition(time: record.event.occurredAt, sequence: record.sequence))
    }

    func insertOrder(_ record: OrderRecord) throws {
        guard db.orders[record.order.id] == nil else { throw RapportError.alreadyExists(entity: "order", id: record.order.id.rawValue) }
        guard db.orderIDsByKey[record.order.key] == nil else { throw RapportError.alreadyExists(entity: "order", id: record.order.key.description) }
        set(\.orders, record.order.id, record)
        set(\.orderIDsByKey, record.order.key, record.order.id)
        indexInsert(\.ordersByCustomer, record.order.customerID, record.order.id, TimelinePosition(time: record.order.placedAt, sequence: record.sequence))
    }

    func updateOrder(_ record: OrderRecord) throws {
        guard let old = db.orders[record.order.id] else { throw RapportError.notFound(entity: "order", id: record.order.id.rawValue) }
        if old.order.key != record.order.key {
            guard db.orderIDsByKey[record.order.key] == nil else { throw RapportError.alreadyExists(entity: "order", id: record.order.key.description) }
            set(\.orderIDsByKey, old.order.key, nil)
            set(\.orderIDsByKey, record.order.key, record.order.id)
        }
        let oldPosition = TimelinePosition(time: old.order.placedAt, sequence: old.sequence)
        let newPosition = TimelinePosition(time: record.order.placedAt, sequence: record.sequence)
        if old.order.customerID != record.order.customerID || oldPosition != newPosition {
            indexRemove(\.ordersByCustomer, old.order.customerID, old.order.id, oldPosition)
            indexInsert(\.ordersByCustomer, record.order.customerID, record.order.id, newPosition)
        }
        set(\.orders, record.order.id, record)
    }

    func insertInteraction(_ record: InteractionRecord) throws {
        let interaction = record.interaction
        guard db.interactions[interaction.id] == nil else { throw RapportError.alreadyExists(entity: "interaction", id: interaction.id.rawValue) }
        set(\.interactions, interaction.id, record)
        indexInsert(\.interactionsByCustomer, interaction.customerID, interaction.id, TimelinePosition(time: interaction.occurredAt, sequence: record.sequence))
    }

    func insertConsent(_ record: ConsentRecord) throws {
        let consent = record.consent
        guard db.consents[consent.id] == nil else { throw RapportError.alreadyExists(entity: "consent", id: consent.id.rawValue) }
        set(\.consents, consent.id, record)
        indexInsert(\.consentsByCustomer, consent.customerID, consent.id, TimelinePosition(time: consent.occurredAt, sequence: record.sequence))
    }

    func reassignAll(from: CustomerID, to: CustomerID) throws {
        try move(from: from, to: to) { _ in true }
    }

    func reassign(owner: CustomerID, homes: Set<CustomerID>, to: CustomerID) throws {
        try move(from: owner, to: to) { homes.contains($0) }
    }

    /// Moves every record `from` owns whose home passes `home` to `to`.
    private func move(from: CustomerID, to: CustomerID, home: (CustomerID) -> Bool) throws {
        guard from != to else { return }
        moveListMemberships(from: from, to: to, home: home)
        for identity in db.identitiesByCustomer[from] ?? [] {
            guard var record = db.identities[identity], home(record.homeCustomerID) else { continue }
            record.customerID = to
            set(\.identities, identity, record)
            removeIdentityFromIndex(identity, from)
            addIdentityToIndex(identity, to)
        }
        for key in indexMove(\.eventsByCustomer, from: from, to: to, where: { self.db.events[$0].map { home($0.homeCustomerID) } ?? false }) {
            db.events[key].map { record in
                var record = record
                record.event.customerID = to
                set(\.events, key, record)
            }
        }
        for key in indexMove(\.ordersByCustomer, from: from, to: to, where: { self.db.orders[$0].map { home($0.homeCustomerID) } ?? false }) {
            db.orders[key].map { record in
                var record = record
                record.order.customerID = to
                set(\.orders, key, record)
            }
        }
        for key in indexMove(\.interactionsByCustomer, from: from, to: to, where: { self.db.interactions[$0].map { home($0.homeCustomerID) } ?? false }) {
            db.interactions[key].map { record in
                var record = record
                record.interaction.customerID = to
                set(\.interactions, key, record)
            }
        }
        for key in indexMove(\.consentsByCustomer, from: from, to: to, where: { self.db.consents[$0].map { home($0.homeCustomerID) } ?? false }) {
            db.consents[key].map { record in
                var record = record
                record.consent.customerID = to
                set(\.consents, key, record)
            }
        }
    }

    func setIdentities(ofEvent id: String, to identities: [Identity]) throws {
        guard var record = db.events[id] else { throw RapportError.notFound(entity: "event", id: id) }
        record.event.identities = identities
        set(\.events, id, record)
    }

    func setOwner(ofEvent id: String, to customer: CustomerID) throws {
        guard var record = db.events[id] else { throw RapportError.notFound(entity: "event", id: id) }
        let position = TimelinePosition(time: record.event.occurredAt, sequence: record.sequence)
        guard record.event.customerID != customer || record.homeCustomerID != customer else { return }
        if record.event.customerID != customer {
            indexRemove(\.eventsByCustomer, record.event.customerID, id, position)
            indexInsert(\.eventsByCustomer, customer, id, position)
        }
        record.event.customerID = customer
        record.homeCustomerID = customer
        set(\.events, id, record)
    }

    func setOwner(ofOrder id: OrderID, to customer: CustomerID) throws {
        guard var record = db.orders[id] else { throw RapportError.notFound(entity: "order", id: id.rawValue) }
        guard record.order.customerID != customer || record.homeCustomerID != customer else { return }
        record.order.customerID = customer
        record.homeCustomerID = customer
        try updateOrder(record)
    }

    func insertMerge(_ record: MergeRecord) throws {
        guard db.merges[record.id] == nil else { throw RapportError.alreadyExists(entity: "merge", id: record.id.rawValue) }
        set(\.merges, record.id, record)
        index(record)
    }

    func updateMerge(_ record: MergeRecord) throws {
        guard let old = db.merges[record.id] else { throw RapportError.notFound(entity: "merge", id: record.id.rawValue) }
        if old.survivorID != record.survivorID || old.absorbedID != record.absorbedID {
            unindex(old)
            index(record)
        }
        set(\.merges, record.id, record)
    }

    /// Lists a merge under its survivor and its absorbed customer.
    private func index(_ merge: MergeRecord) {
        set(\.mergesBySurvivor, merge.survivorID, (db.mergesBySurvivor[merge.survivorID] ?? []) + [merge.id])
        set(\.mergesByAbsorbed, merge.absorbedID, (db.mergesByAbsorbed[merge.absorbedID] ?? []) + [merge.id])
    }

    private func unindex(_ merge: MergeRecord) {
        for (path, customer) in [(\MemoryDatabase.mergesBySurvivor, merge.survivorID), (\MemoryDatabase.mergesByAbsorbed, merge.absorbedID)] {
            guard var list = db[keyPath: path][customer] else { continue }
            list.removeAll { $0 == merge.id }
            set(path, customer, list.isEmpty ? nil : list)
        }
    }

    func appendProfileChange(_ change: ProfileChange) throws {
        var list = db.profileChanges[change.customerID] ?? []
        let index = list.firstIndex { $0.sequence > change.sequence } ?? list.count
        list.insert(change, at: index)
        set(\.profileChanges, change.customerID, list)
    }

    func updateProfileChange(_ change: ProfileChange) throws {
        guard var list = db.profileChanges[change.customerID], let index = list.firstIndex(where: { $0.sequence == change.sequence }) else {
            throw RapportError.notFound(entity: "profile change", id: "\(change.customerID)/\(change.sequence)")
        }
        list[index] = change
        set(\.profileChanges, change.customerID, list)
    }

    func putAttributeDefinition(_ definition: AttributeDefinition) throws {
        set(\.attributeDefinitions, definition.key, definition)
    }
}

extension Dictionary {
    /// Sets or removes the value and returns the previous one.
    fileprivate mutating func updateValue(forKey key: Key, to value: Value?) -> Value? {
        if let value { return updateValue(value, forKey: key) }
        return removeValue(forKey: key)
    }
}
