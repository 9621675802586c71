public import RapportCore
import Foundation
import Logging
import RapportRules

extension RapportEngine {
    /// Creates a customer with its profile and identities.
    ///
    /// ```swift
    /// let ada = try await crm.createCustomer(NewCustomer(
    ///     profile: CustomerProfile(givenName: "Ada", tags: ["vip"]),
    ///     identities: [.email("ada@example.com"), .phone("+44 20 7946 0958")]))
    /// ```
    /// - Throws: `invalidArgument` for a bad field, and naming the identity (`identities[i]`) that belongs to another
    ///   customer.
    public func createCustomer(_ input: NewCustomer, requestID: String? = nil) async throws(RapportError) -> Customer {
        let profile = input.profile.normalized()
        var identityCheck = Validator()
        let identities = identityCheck.capture("") { () throws(RapportError) in try normalizeIndexed(input.identities, parent: "identities") } ?? []
        let identityViolations = identityCheck.violations
        let now = clock.now()
        let id = ids.make(CustomerID.self, at: now)
        return try await mutate("createCustomer", requestID: requestID, fingerprint: input) { [self] tx in
            let now = clock.now()  // read in the transaction: a change committed later is stamped later
            // Every bad field at once: the identities' problems and the profile's (which needs the schema).
            var validator = Validator()
            for violation in identityViolations { validator.add(violation.field, violation.problem) }
            let schema = AttributeSchema(try tx.attributeDefinitions())
            var profile = profile
            profile.attributes = schema.coerced(profile.attributes)
            validator.capture("") { () throws(RapportError) in try profile.validate(schema: schema, tagsAsSent: input.profile.tags) }
            if profile.birthday?.isInFuture(at: now) == true { validator.add("birthday", "is in the future") }
            try validator.check()
            var fieldTimes: [String: Timestamp] = [:]
            for field in profile.changedFields(comparedTo: CustomerProfile()) { fieldTimes[field.path] = now }
            let record = CustomerRecord(id: id, profile: profile, fieldTimes: fieldTimes, state: .active, createdAt: now, updatedAt: now, version: 1)
            try tx.insertCustomer(record)
            for (index, identity) in identities {  // `index`: the position in the request, duplicates included
                if let owner = try tx.storedIdentity(identity) {
                    throw RapportError.invalidArgument([
                        FieldViolation(field: "identities[\(index)]", problem: "\(identity.key) already belongs to customer \(owner.customerID)")
                    ])
                }
                try tx.insertIdentity(IdentityRecord(identity: identity, customerID: id, homeCustomerID: id, createdAt: now))
            }
            try tx.putStats(CustomerStats(customerID: id))
            _ = try tx.appendChange(kind: .customerCreated, customerID: id, otherCustomerID: nil, mergeID: nil, at: now)
            var session = WriteSession(tx: tx, engine: self, now: now)
            try session.markDirty(id, .everything)
            try session.trigger(id, type: "customer.created", BuiltInEvent.customerCreated(id, at: now))
            try session.finish()
            return try tx.assemble(try tx.activeCustomer(id))
        }
    }

    /// The customer with this id. A merged customer's id returns the customer it was merged into.
    public func customer(_ id: CustomerID) async throws(RapportError) -> Customer {
        try await quickRead { tx in try tx.assemble(try tx.activeCustomer(id)) }
    }

    /// The customer an identity resolves to, if any.
    ///
    /// ```swift
    /// let found = try await crm.findCustomer(.email("ADA@example.com"))
    /// ```
    public func findCustomer(_ identity: IdentityInput) async throws(RapportError) -> Customer? {
        let normalized = try normalizer.normalize(kind: identity.kind, source: identity.source, value: identity.value)
        return try await quickRead { tx in
            guard let record = try tx.storedIdentity(normalized) else { return nil }
            return try tx.assemble(try tx.activeCustomer(record.customerID))
        }
    }

    /// Sets the profile `fields` of a customer to their values in `profile`; other fields keep theirs.
    ///
    /// ```swift
    /// var changes = CustomerProfile()
    /// changes.givenName = "Ada"
    /// try await crm.updateCustomer(ada.id, set: changes, fields: [.givenName], ifMatch: ada.etag)
    /// ```
    /// - Parameter ifMatch: the etag the caller read; a different stored version throws `etagMismatch`.
    /// - Returns: the customer after the change (unchanged, same version, when nothing differs).
    public func updateCustomer(
        _ id: CustomerID, set profile: CustomerProfile, fields: Set<CustomerField>, ifMatch: String? = nil, requestID: String? = nil
    ) async throws(RapportError) -> Customer {
        guard !fields.isEmpty else { throw .invalid("update_mask", "names no field to update") }
        // A field built in Swift was not parsed: one that names nothing would change nothing, silently.
        for field in fields.sorted() { _ = try CustomerField(parsing: field.path, field: "update_mask") }
        let fingerprint = UpdateFingerprint(id: id, profile: profile, fields: fields.map(\.path).sorted(), ifMatch: ifMatch)
        return try await mutate("updateCustomer", requestID: requestID, fingerprint: fingerprint) { [self] tx in
            let now = clock.now()  // read in the transaction: a change committed later is stamped later
            var record = try tx.activeCustomer(id)
            try Customer.check(etag: ifMatch, of: id, against: record)
            var updated = record.profile
            updated.assign(fields, from: profile)
            updated = updated.normalized()
            let schema = AttributeSchema(try tx.attributeDefinitions())
            updated.attributes = schema.coerced(updated.attributes)
            try updated.validate(schema: schema, since: record.profile, tagsAsSent: fields.contains(.tags) ? profile.tags : nil)
            if updated.birthday != record.profile.birthday, updated.birthday?.isInFuture(at: now) == true {
                throw RapportError.invalid("birthday", "is in the future")
            }
            let changed = updated.changedFields(comparedTo: record.profile)
            guard !changed.isEmpty else { return try tx.assemble(record) }
            record.profile = updated
            try tx.saveProfile(&record, changed: changed, at: now)
            var session = WriteSession(tx: tx, engine: self, now: now)
            try session.markDirty(record.id, .profile)
            try session.finish()
            return try tx.assemble(try tx.activeCustomer(record.id))
        }
    }

    /// Reads a customer, lets `change` edit its profile, and writes back the fields that differ, failing with
    /// `etagMismatch` if someone else changed the customer in between.
    ///
    /// ```swift
    /// try await crm.updateCustomer(ada.id) { $0.tags.append("newsletter") }
    /// ```
    public func updateCustomer(_ id: CustomerID, _ change: (inout CustomerProfile) -> Void) async throws(RapportError) -> Customer {
        let current = try await customer(id)
        var profile = current.profile
        change(&profile)
        let fields = profile.normalized().changedFields(comparedTo: current.profile)
        guard !fields.isEmpty else { return current }
        return try await updateCustomer(current.id, set: profile, fields: fields, ifMatch: current.etag)
    }

    /// Adds an identity to a customer.
    /// - Throws: `alreadyExists` when the identity belongs to another customer.
    public func addIdentity(_ input: IdentityInput, to id: CustomerID, ifMatch: String? = nil, requestID: String? = nil) async throws(RapportError)
        -> Customer
    {
        let identity = try normalizer.normalize(kind: input.kind, source: input.source, value: input.value)
        return try await mutate("addIdentity", requestID: requestID, fingerprint: [id.rawValue, identity.key, ifMatch ?? ""]) { [self] tx in
            let now = clock.now()  // read in the transaction: a change committed later is stamped later
            var record = try tx.activeCustomer(id)
            try Customer.check(etag: ifMatch, of: id, against: record)
            if let owner = try tx.storedIdentity(identity) {
                guard owner.customerID == record.id else { throw RapportError.alreadyExists(entity: "identity", id: identity.key) }
                return try tx.assemble(record)
            }
            // Its home is the customer named: added through a merged customer's id, it goes back with them on an unmerge.
            try tx.insertIdentity(IdentityRecord(identity: identity, customerID: record.id, homeCustomerID: id, createdAt: now))
            try tx.saveChanged(&record, at: now)
            var session = WriteSession(tx: tx, engine: self, now: now)
            try session.markDirty(record.id, [.identities, .profile])  // `updated_at` moved too
            try session.finish()
            return try tx.assemble(try tx.activeCustomer(record.id))
        }
    }

    /// Removes an identity from a customer: records that arrive with it later no longer resolve to them.
    public func removeIdentity(_ input: IdentityInput, from id: CustomerID, ifMatch: String? = nil, requestID: String? = nil) async throws(RapportError)
        -> Customer
    {
        let identity = try normalizer.normalize(kind: input.kind, source: input.source, value: input.value)
        return try await mutate("removeIdentity", requestID: requestID, fingerprint: [id.rawValue, identity.key, ifMatch ?? ""]) { [self] tx in
            let now = clock.now()  // read in the transaction: a change committed later is stamped later
            var record = try tx.activeCustomer(id)
            try Customer.check(etag: ifMatch, of: id, against: record)
            guard let owner = try tx.storedIdentity(identity, ownedBy: record.id) else {
                throw RapportError.notFound(entity: "identity", id: identity.key)
            }
            try tx.deleteIdentity(owner.identity)
            // An identity of a customer merged into this one: that customer changed, and an unmerge brings it back
            // as a new version (its remembered update time says so), so that an etag read before does not match.
            // Through a chain (C into B, B into A), each customer on the way lost it: every standing merge up to
            // this customer is marked (after its own time, whatever the clock did).
            var holder = owner.homeCustomerID
            while holder != record.id, var merge = try tx.merges(absorbed: holder).first(where: \.isActive) {
                merge.absorbedBefore.updatedAt = max(now, merge.mergedAt + .milliseconds(1), merge.absorbedBefore.updatedAt)
                try tx.updateMerge(merge)
                holder = merge.survivorID
            }
            try tx.saveChanged(&record, at: now)
            var session = WriteSession(tx: tx, engine: self, now: now)
            try session.markDirty(record.id, [.identities, .profile])  // `updated_at` moved too
            try session.finish()
            return try tx.assemble(try tx.activeCustomer(record.id))
        }
    }

    /// Deletes a customer and everything it owns: identities, orders, events, interactions, consents, and the
    /// customers merged into it. Erasure is final: there is no undo.
    ///
    /// The id of a customer merged into another is refused (`failedPrecondition`): erasing the survivor erases
    /// both, which the caller should ask for by its id, or undo the merge and erase the one customer.
    public func deleteCustomer(_ id: CustomerID, ifMatch: String? = nil, requestID: String? = nil) async throws(RapportError) {
        let _: Done = try await mutate("deleteCustomer", requestID: requestID, fingerprint: [id.rawValue, ifMatch ?? ""]) { tx in
            let now = self.clock.now()  // read in the transaction: a change committed later is stamped later
            if case .merged(let into, let merge) = try tx.customer(id)?.state {
                throw RapportError.failedPrecondition(
                    "customer \(id) was merged into \(into) by merge \(merge): erase \(into) (with everything merged into it), or undo the merge and erase \(id) alone")
            }
            let record = try tx.activeCustomer(id)
            try Customer.check(etag: ifMatch, of: id, against: record)
            // While one of them was merged into another customer, that customer's answers could hold its data (and
            // while that one was merged into a third, the third's).
            var windows: [(survivor: CustomerID, range: ClosedRange<Timestamp>)] = []
            func absorbing(_ customer: CustomerID, within range: ClosedRange<Timestamp>, depth: Int) throws {
                guard depth < 16 else { return }
                for merge in try tx.merges(absorbed: customer) {
                    // A merge's own times, in order even if the clock stepped back between them.
                    let (merged, unmerged) = (merge.mergedAt, merge.unmergedAt ?? now)
                    let lower = max(range.lowerBound, min(merged, unmerged))
                    let upper = min(range.upperBound, max(merged, unmerged))
                    guard lower <= upper else { continue }
                    windows.append((merge.survivorID, lower...upper))
                    try absorbing(merge.survivorID, within: lower...upper, depth: depth + 1)
                }
            }
            let erased = try WriteSession.standingSide(of: record.id, tx: tx)
            for member in erased.sorted() {
                try absorbing(member, within: Timestamp(millisecondsSinceEpoch: .min)...now, depth: 0)
            }
            try Self.forgetErasedIdentities(of: record.id, side: erased, tx: tx, now: now)
            try Self.forgetMessagesRenderedWhileMerged(windows.filter { !erased.contains($0.survivor) }, tx: tx, now: now)
            for deleted in try tx.deleteCustomerTree(record.id) {
                _ = try tx.appendChange(kind: .customerDeleted, customerID: deleted, otherCustomerID: nil, mergeID: nil, at: now)
                // Stored answers to requests (kept for their retries) may hold the profile: they are emptied, and a
                // retry is refused instead of applied again. The id is matched as a JSON string, quotes included,
                // so that `cus_1` does not match `cus_10`.
                try tx.redactIdempotencyRecords(mentioning: "\"\(deleted.rawValue)\"")
            }
            // An answer's time is read before its transaction waits for the writer: a few minutes' margin.
            let margin = Duration.seconds(300)
            for (survivor, range) in windows {
                try tx.redactIdempotencyRecords(mentioning: "\"\(survivor.rawValue)\"", createdIn: (range.lowerBound - margin)...(range.upperBound + margin))
            }
            return Done()
        }
        // The erasure is committed; older copies of its pages the backend keeps go too (a failure only delays that).
        do {
            try await store.purgeDeletedData()
        } catch {
            logger.warning("erased data may stay in the store's log until the next erasure", metadata: ["error": "\(error)"])
        }
    }

    /// Takes the identities of the person being erased (`customer` and those merged into it) out of the events and
    /// orders (and waiting runs' copies of them) of other customers: a record that named both people when they were
    /// merged (one event with both e-mails), or when a merge of them was refused, stays with one of them. Such records
    /// are owned by customers linked to them by merges, directly or through others, undone ones too.
    /// A customer whose records changed so is reported to the change feed (`activity_recorded`), for mirrors.
    static func forgetErasedIdentities(of customer: CustomerID, side: Set<CustomerID>, tx: any StoreWriter, now: Timestamp) throws {
        var identities = Set(try tx.identities(of: customer).map(\.identity))
        guard !identities.isEmpty else { return }
        // A phone kept in the older spelling is the same number records written since name in today's, and the
        // other way round.
        for identity in identities {
            identities.insert(IdentityNormalizer.dialable(identity))
            if let legacy = IdentityNormalizer.legacySpelling(of: identity) { identities.insert(legacy) }
        }
        var linked = side
        var pending = Array(side)
        while let next = pending.popLast() {
            for merge in try tx.merges(into: next) + tx.merges(absorbed: next) {
                for other in [merge.survivorID, merge.absorbedID] where linked.insert(other).inserted { pending.append(other) }
            }
        }
        let partners = linked.subtracting(side)
        var owners = Set<CustomerID>()
        for partner in partners.subtracting(side) where try tx.customer(partner) != nil {
            owners.insert(try tx.activeCustomer(partner).id)
        }
        for owner in owners.subtracting(side).sorted() {
            var rewritten = false
            for record in try tx.events(of: owner, before: nil, limit: .max) where record.event.identities.contains(where: identities.contains) {
                try tx.setIdentities(ofEvent: record.event.id, to: record.event.identities.filter { !identities.contains($0) })
                rewritten = true
            }
            for var record in try tx.orders(of: owner, before: nil, limit: .max) where record.order.identities.contains(where: identities.contains) {
                record.order.identities.removeAll(where: identities.contains)
                try tx.updateOrder(record)
                rewritten = true
            }
            for var run in try tx.runs(RunQuery(customerID: owner, status: .waiting, limit: .max)) {
                let event = run.event?.identities.contains(where: identities.contains) == true
                let order = run.order?.identities.contains(where: identities.contains) == true
                guard event || order else { continue }
                run.event?.identities.removeAll(where: identities.contains)
                run.order?.identities.removeAll(where: identities.contains)
                try tx.updateRun(run)
            }
            if rewritten { _ = try tx.appendChange(kind: .activityRecorded, customerID: owner, otherCustomerID: nil, mergeID: nil, at: now) }
        }
    }

    /// Empties the outbox entries of other customers made while the person being erased was merged into them
    /// (`windows`): their subject, body, data or webhook body may have been rendered from the merged profile (a
    /// name, an e-mail that the person's side won). Entries not handed to a sender yet fail instead of going out.
    static func forgetMessagesRenderedWhileMerged(_ windows: [(survivor: CustomerID, range: ClosedRange<Timestamp>)], tx: any StoreWriter, now: Timestamp) throws {
        for (survivor, range) in windows {
            // Whose addresses the survivor's are now (it may have been merged into a third customer since).
            let holder = try tx.activeCustomer(survivor).id
            for var entry in try tx.outboxEntries(OutboxQuery(customerID: survivor, limit: .max)) where range.contains(entry.createdAt) {
                switch entry.payload {
                case .message(var message):
                    message.subject = ""
                    message.body = ""
                    message.data = [:]
                    // The address stays only when it is the customer's own (one of the erased person's, removed while
                    // merged, no longer names her).
                    let own = try message.recipientIdentity.map { try tx.storedIdentity($0, ownedBy: holder) != nil } ?? (message.recipient == survivor.rawValue)
                    if !own { message.recipient = "" }
                    entry.payload = .message(message)
                case .webhook(let url, _):
                    entry.payload = .webhook(url: url, body: "{}")
                }
                if entry.state == .pending || entry.state == .leased {
                    entry.state = .failed
                    entry.leaseOwner = nil
                    entry.leaseExpiresAt = nil
                }
                entry.lastError = "erased: made while a customer since erased was merged into this one, its content may have been theirs"
                entry.updatedAt = now
                try tx.updateOutboxEntry(entry)
                // An answer kept for a retried lease or report holds the entry as it was.
                try tx.redactIdempotencyRecords(mentioning: "\"\(entry.id.rawValue)\"")
            }
        }
    }

    /// A page of active customers, filtered and sorted.
    ///
    /// ```swift
    /// var page = try await crm.listCustomers(filter: CustomerFilter(tags: ["vip"]), page: PageRequest(size: 100))
    /// while let token = page.nextPageToken {
    ///     page = try await crm.listCustomers(filter: CustomerFilter(tags: ["vip"]), page: PageRequest(size: 100, token: token))
    /// }
    /// ```
    public func listCustomers(filter: CustomerFilter = CustomerFilter(), order: CustomerOrder = CustomerOrder(), page: PageRequest = PageRequest())
        async throws(RapportError) -> CustomerPage
    {
        let size = try PageToken.pageSize(page.size)
        var canonicalFilter = filter
        // As tags are stored (a filter built in Swift was not parsed): trimmed, composed.
        canonicalFilter.tags = filter.tags.map { $0.trimmingCharacters(in: .whitespaces).canonical }
        let filter = canonicalFilter
        let cursor = try page.token.map { token throws(RapportError) in try PageToken.decodeCustomerCursor(token, order: order, filter: filter) }
        return try await read { tx in
            let records = try tx.customers(CustomerQuery(filter: filter, order: order, after: cursor, limit: size + 1))
            let pageRecords = records.prefix(size)
            let next = records.count > size ? pageRecords.last.map { PageToken.encode(CustomerCursor(value: order.value(of: $0), id: $0.id), order: order, filter: filter) } : nil
            return CustomerPage(customers: try pageRecords.map { try tx.assemble($0) }, nextPageToken: next, changeCursor: try tx.latestChangeCursor())
        }
    }

    /// How many active customers there are.
    public func customerCount() async throws(RapportError) -> Int {
        try await read { tx in try tx.customerCount() }
    }

    /// Declares a custom attribute, or changes its description. Its type cannot change once declared.
    public func defineAttribute(_ definition: AttributeDefinition, requestID: String? = nil) async throws(RapportError) -> AttributeDefinition {
        try definition.validate()
        return try await mutate("defineAttribute", requestID: requestID, fingerprint: definition) { tx in
            if let existing = try tx.attributeDefinitions().first(where: { $0.key == definition.key }), existing.type != definition.type {
                throw RapportError.failedPrecondition(
                    "attribute '\(definition.key)' is declared as \(existing.type.rawValue); its type cannot change to \(definition.type.rawValue)")
            }
            try tx.putAttributeDefinition(definition)
            try tx.bumpDefinitionsVersion()  // compiled expressions see the new schema
            return definition
        }
    }

    /// The declared custom attributes, sorted by key.
    public func attributeDefinitions() async throws(RapportError) -> [AttributeDefinition] {
        try await read { tx in try tx.attributeDefinitions() }
    }
}

extension StoreWriter {
    /// Saves a changed profile: field times, a new version and an entry in the change feed; a survivor of a
    /// standing merge also logs the change, so that an unmerge can replay it.
    func saveProfile(_ record: inout CustomerRecord, changed: Set<CustomerField>, at now: Timestamp) throws {
        for field in changed { record.fieldTimes[field.path] = now }
        try saveChanged(&record, at: now)
        if try merges(into: record.id).contains(where: \.isActive) {
            let sequence = try allocateSequence(1)
            // Only what changed is logged: the rest of the profile may be the merged side's, kept nowhere else.
            try appendProfileChange(ProfileChange(customerID: record.id, sequence: sequence, at: now, fields: changed, profile: record.profile.only(changed)))
        }
    }

    /// Saves a changed customer: a new version and update time, and an entry in the change feed.
    func saveChanged(_ record: inout CustomerRecord, at now: Timestamp) throws {
        record.version += 1
        // Never back: the time was read before the transaction waited for the writer, maybe behind one committed since.
        record.updatedAt = max(now, record.updatedAt)
        try updateCustomer(record)
        _ = try appendChange(kind: .customerUpdated, customerID: record.id, otherCustomerID: nil, mergeID: nil, at: now)
    }

    /// Deletes a customer and, recursively, the customers merged into it by standing merges; returns their ids.
    func deleteCustomerTree(_ id: CustomerID) throws -> [CustomerID] {
        var deleted: [CustomerID] = []
        for merge in try merges(into: id) where merge.isActive {
            if let absorbed = try customer(merge.absorbedID), absorbed.mergedInto == id { deleted += try deleteCustomerTree(absorbed.id) }
        }
        try deleteCustomer(id)
        return deleted + [id]
    }
}

/// What identifies an update request, for request-id retries.
struct UpdateFingerprint: Encodable {
    var id: CustomerID
    var profile: CustomerProfile
    var fields: [String]
    var ifMatch: String?
}
