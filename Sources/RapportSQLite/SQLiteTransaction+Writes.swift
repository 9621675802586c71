import GRDB
import RapportCore

// Inserts use `ON CONFLICT DO NOTHING` and look at the change count: a duplicate costs no exception on the hot path
// and leaves the transaction usable, and only then do we look up which key collided.
extension SQLiteTransaction {
    func allocateSequence(_ count: Int) throws -> Int64 {
        let count = Int64(max(0, count))
        let last = try fetchOne("UPDATE meta SET value = value + ? WHERE key = 'sequence' RETURNING value", [count]) {
            try $0.decode(Int64.self, atIndex: 0)
        }
        guard let last else { throw RapportError.storage("the sequence row is missing from table meta") }
        return last - count + 1
    }

    // MARK: Customers

    func customerArguments(_ record: CustomerRecord, tags: String) throws -> StatementArguments {
        let (mergedInto, mergeID): (String?, String?) =
            switch record.state {
            case .active: (nil, nil)
            case .merged(let survivor, let merge): (survivor.rawValue, merge.rawValue)
            }
        return [
            record.state == .active ? "active" : "merged", mergedInto, mergeID, ColumnJSON.text(record.profile),
            ColumnJSON.text(record.fieldTimes), tags, record.profile.lifecycleStage?.rawValue,
            record.createdAt.millisecondsSinceEpoch, record.updatedAt.millisecondsSinceEpoch, record.version, record.id.rawValue,
        ]
    }

    func insertCustomer(_ record: CustomerRecord) throws {
        let tags = ColumnJSON.text(record.profile.tags)
        let inserted = try changes(
            """
            INSERT INTO customers (state, merged_into, merge_id, profile, field_times, tags, lifecycle_stage, created_at, updated_at, version, id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """,
            try customerArguments(record, tags: tags)
        )
        guard inserted > 0 else { throw RapportError.alreadyExists(entity: "customer", id: record.id.rawValue) }
        try insertTags(record)
    }

    func updateCustomer(_ record: CustomerRecord) throws {
        guard let oldTags = try fetchOne("SELECT tags FROM customers WHERE id = ?", [record.id.rawValue], { try $0.decode(String.self, atIndex: 0) }) else {
            throw RapportError.notFound(entity: "customer", id: record.id.rawValue)
        }
        let tags = ColumnJSON.text(record.profile.tags)
        try execute(
            """
            UPDATE customers SET state = ?, merged_into = ?, merge_id = ?, profile = ?, field_times = ?, tags = ?, lifecycle_stage = ?,
            created_at = ?, updated_at = ?, version = ? WHERE id = ?
            """,
            try customerArguments(record, tags: tags)
        )
        // Most updates leave the tags alone: skip rewriting the tag rows then.
        if tags != oldTags {
            try execute("DELETE FROM customer_tags WHERE customer_id = ?", [record.id.rawValue])
            try insertTags(record)
        }
    }

    private func insertTags(_ record: CustomerRecord) throws {
        for tag in record.profile.tags {
            try execute("INSERT INTO customer_tags (customer_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING", [record.id.rawValue, tag])
        }
    }

    func deleteCustomer(_ id: CustomerID) throws {
        guard try changes("DELETE FROM customers WHERE id = ?", [id.rawValue]) > 0 else {
            throw RapportError.notFound(entity: "customer", id: id.rawValue)
        }
        for table in ["customer_tags", "customer_stats", "profile_changes", "identities", "events", "orders", "interactions", "consents"] {
            try execute("DELETE FROM \(table) WHERE customer_id = ?", [id.rawValue])
        }
        try execute("DELETE FROM merges WHERE survivor_id = ?", [id.rawValue])
        try execute("DELETE FROM merges WHERE absorbed_id = ?", [id.rawValue])
        try deleteAutomationRecords(of: id)
    }

    func putStats(_ stats: CustomerStats) throws {
        try execute(
            """
            INSERT OR REPLACE INTO customer_stats (customer_id, order_count, spent, first_order_at, last_order_at, event_count, last_seen_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """,
            [
                stats.customerID.rawValue, stats.orderCount, ColumnJSON.text(stats.spent),
                stats.firstOrderAt?.millisecondsSinceEpoch, stats.lastOrderAt?.millisecondsSinceEpoch, stats.eventCount,
                stats.lastSeenAt?.millisecondsSinceEpoch,
            ]
        )
    }

    // MARK: Identities

    func insertIdentity(_ record: IdentityRecord) throws {
        let identity = record.identity
        let inserted = try changes(
            """
            INSERT INTO identities (key, kind, source, value, customer_id, home_customer_id, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """,
            [
                identity.key, identity.kind.rawValue, identity.source, identity.value, record.customerID.rawValue,
                record.homeCustomerID.rawValue, record.createdAt.millisecondsSinceEpoch,
            ]
        )
        guard inserted > 0 else { throw RapportError.alreadyExists(entity: "identity", id: identity.key) }
    }

    func deleteIdentity(_ identity: Identity) throws {
        guard try changes("DELETE FROM identities WHERE key = ?", [identity.key]) > 0 else {
            throw RapportError.notFound(entity: "identity", id: identity.key)
        }
    }

    // MARK: Owned records

    /// After an insert that changed nothing: names the duplicate key, or reports a reused sequence number (which
    /// the engine never hands out twice).
    private func duplicate(entity: String, table: String, id: String, sequence: Int64) throws -> RapportError {
        if try exists("SELECT 1 FROM \(table) WHERE id = ?", [id]) { return .alreadyExists(entity: entity, id: id) }
        return .storage("\(entity) '\(id)': sequence number \(sequence) is already used")
    }

    func insertEvent(_ record: EventRecord) throws {
        let event = record.event
        let inserted = try changes(
            """
            INSERT INTO events (sequence, id, customer_id, home_customer_id, type, occurred_at, received_at, channel, identities, properties)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """,
            [
                record.sequence, event.id, event.customerID.rawValue, record.homeCustomerID.rawValue, event.type,
                event.occurredAt.millisecondsSinceEpoch, event.receivedAt.millisecondsSinceEpoch, event.channel.rawValue,
                event.identities.isEmpty ? "[]" : ColumnJSON.text(event.identities),
                event.properties.isEmpty ? "{}" : ColumnJSON.text(event.properties),
            ]
        )
        guard inserted > 0 else { throw try duplicate(entity: "event", table: "events", id: event.id, sequence: record.sequence) }
    }

    private func orderArguments(_ record: OrderRecord) throws -> StatementArguments {
        let order = record.order
        return [
            record.sequence, order.key.source, order.key.externalID, order.channel.rawValue, order.customerID.rawValue,
            record.homeCustomerID.rawValue, order.status.rawValue, order.currency.code, order.total.minorUnits,
            order.placedAt.millisecondsSinceEpoch, order.updatedAt.millisecondsSinceEpoch, ColumnJSON.text(order),
            order.id.rawValue,
        ]
    }

    func insertOrder(_ record: OrderRecord) throws {
        let order = record.order
        let inserted = try changes(
            """
            INSERT INTO orders (sequence, source, external_id, channel, customer_id, home_customer_id, status, currency, total_minor,
            placed_at, updated_at, details, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """,
            try orderArguments(record)
        )
        guard inserted == 0 else { return }
        if try exists("SELECT 1 FROM orders WHERE id = ?", [order.id.rawValue]) {
            throw RapportError.alreadyExists(entity: "order", id: order.id.rawValue)
        }
        if try exists("SELECT 1 FROM orders WHERE source = ? AND external_id = ?", [order.key.source, order.key.externalID]) {
            throw RapportError.alreadyExists(entity: "order", id: order.key.description)
        }
        throw RapportError.storage("order '\(order.id)': sequence number \(record.sequence) is already used")
    }

    func updateOrder(_ record: OrderRecord) throws {
        let order = record.order
        guard try exists("SELECT 1 FROM orders WHERE id = ?", [order.id.rawValue]) else {
            throw RapportError.notFound(entity: "order", id: order.id.rawValue)
        }
        if try exists("SELECT 1 FROM orders WHERE source = ? AND external_id = ? AND id <> ?", [order.key.source, order.key.externalID, order.id.rawValue]) {
            throw RapportError.alreadyExists(entity: "order", id: order.key.description)
        }
        try execute(
            """
            UPDATE orders SET sequence = ?, source = ?, external_id = ?, channel = ?, customer_id = ?, home_customer_id = ?, status = ?,
            currency = ?, total_minor = ?, placed_at = ?, updated_at = ?, details = ? WHERE id = ?
            """,
            try orderArguments(record)
        )
    }

    func insertInteraction(_ record: InteractionRecord) throws {
        let interaction = record.interaction
        let inserted = try changes(
            """
            INSERT INTO interactions (sequence, id, customer_id, home_customer_id, channel, direction, subject, summary, agent, occurred_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """,
            [
                record.sequence, interaction.id.rawValue, interaction.customerID.rawValue, record.homeCustomerID.rawValue,
                interaction.channel.rawValue, interaction.direction.rawValue, interaction.subject, interaction.summary, interaction.agent,
                interaction.occurredAt.millisecondsSinceEpoch,
            ]
        )
        guard inserted > 0 else {
            throw try duplicate(entity: "interaction", table: "interactions", id: interaction.id.rawValue, sequence: record.sequence)
        }
    }

    func insertConsent(_ record: ConsentRecord) throws {
        let consent = record.consent
        let inserted = try changes(
            """
            INSERT INTO consents (sequence, id, customer_id, home_customer_id, channel, purpose, status, source, occurred_at, recorded_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """,
            [
                record.sequence, consent.id.rawValue, consent.customerID.rawValue, record.homeCustomerID.rawValue, consent.channel.rawValue,
                consent.purpose.rawValue, consent.status.rawValue, consent.source, consent.occurredAt.millisecondsSinceEpoch,
                consent.recordedAt.millisecondsSinceEpoch,
            ]
        )
        guard inserted > 0 else {
            throw try duplicate(entity: "consent", table: "consents", id: consent.id.rawValue, sequence: record.sequence)
        }
    }

    // MARK: Ownership

    private static let ownedTables = ["identities", "events", "orders", "interactions", "consents"]

    func reassignAll(from: CustomerID, to: CustomerID) throws {
        try moveListMemberships(from: from, to: to, homes: nil)
        for table in Self.ownedTables {
            try execute("UPDATE \(table) SET customer_id = ? WHERE customer_id = ?", [to.rawValue, from.rawValue])
        }
    }

    func reassign(owner: CustomerID, homes: Set<CustomerID>, to: CustomerID) throws {
        guard !homes.isEmpty else { return }
        try moveListMemberships(from: owner, to: to, homes: homes)
        // One statement shape for any number of homes: the set travels as a JSON array.
        let homeList = try json(homes.map(\.rawValue).sorted())
        for table in Self.ownedTables {
            try execute(
                "UPDATE \(table) SET customer_id = ? WHERE customer_id = ? AND home_customer_id IN (SELECT value FROM json_each(?))",
                [to.rawValue, owner.rawValue, homeList]
            )
        }
    }

    func setOwner(ofEvent id: String, to customer: CustomerID) throws {
        guard try changes("UPDATE events SET customer_id = ?, home_customer_id = ? WHERE id = ?", [customer.rawValue, customer.rawValue, id]) > 0 else {
            throw RapportError.notFound(entity: "event", id: id)
        }
    }

    func setIdentities(ofEvent id: String, to identities: [Identity]) throws {
        let text = identities.isEmpty ? "[]" : ColumnJSON.text(identities)
        guard try changes("UPDATE events SET identities = ? WHERE id = ?", [text, id]) > 0 else { throw RapportError.notFound(entity: "event", id: id) }
    }

    func setOwner(ofOrder id: OrderID, to customer: CustomerID) throws {
        guard try changes("UPDATE orders SET customer_id = ?, home_customer_id = ? WHERE id = ?", [customer.rawValue, customer.rawValue, id.rawValue]) > 0 else {
            throw RapportError.notFound(entity: "order", id: id.rawValue)
        }
    }

    // MARK: Merges, profile changes, attributes

    private func mergeArguments(_ record: MergeRecord) throws -> StatementArguments {
        [
            record.survivorID.rawValue, record.absorbedID.rawValue, record.sequence, record.mergedAt.millisecondsSinceEpoch,
            record.unmergedAt?.millisecondsSinceEpoch, try json(StoredMergeDetails(record)), record.id.rawValue,
        ]
    }

    func insertMerge(_ record: MergeRecord) throws {
        let inserted = try changes(
            """
            INSERT INTO merges (survivor_id, absorbed_id, sequence, merged_at, unmerged_at, details, id)
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """,
            try mergeArguments(record)
        )
        guard inserted > 0 else { throw RapportError.alreadyExists(entity: "merge", id: record.id.rawValue) }
    }

    func updateMerge(_ record: MergeRecord) throws {
        let updated = try changes(
            "UPDATE merges SET survivor_id = ?, absorbed_id = ?, sequence = ?, merged_at = ?, unmerged_at = ?, details = ? WHERE id = ?",
            try mergeArguments(record)
        )
        guard updated > 0 else { throw RapportError.notFound(entity: "merge", id: record.id.rawValue) }
    }

    func appendProfileChange(_ change: ProfileChange) throws {
        try execute(
            "INSERT INTO profile_changes (customer_id, sequence, at, fields, profile) VALUES (?, ?, ?, ?, ?)",
            [
                change.customerID.rawValue, change.sequence, change.at.millisecondsSinceEpoch, try json(change.fields.map(\.path).sorted()),
                ColumnJSON.text(change.profile),
            ]
        )
    }

    func updateProfileChange(_ change: ProfileChange) throws {
        let updated = try changes(
            "UPDATE profile_changes SET at = ?, fields = ?, profile = ? WHERE customer_id = ? AND sequence = ?",
            [
                change.at.millisecondsSinceEpoch, try json(change.fields.map(\.path).sorted()), ColumnJSON.text(change.profile),
                change.customerID.rawValue, change.sequence,
            ]
        )
        guard updated > 0 else { throw RapportError.notFound(entity: "profile change", id: "\(change.customerID)/\(change.sequence)") }
    }

    func putAttributeDefinition(_ definition: AttributeDefinition) throws {
        try execute(
            "INSERT OR REPLACE INTO attribute_definitions (key, type, description) VALUES (?, ?, ?)",
            [definition.key, definition.type.rawValue, definition.description]
        )
    }
}
