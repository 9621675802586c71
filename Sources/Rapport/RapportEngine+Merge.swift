public import RapportCore

/// The result of a merge: the record that can undo it and the customer that came out of it.
public struct MergeResult: Hashable, Sendable, Codable {
    public var merge: MergeRecord
    public var survivor: Customer
}

/// The result of an unmerge: both customers as they now stand.
public struct UnmergeResult: Hashable, Sendable, Codable {
    public var merge: MergeRecord
    /// The customer that kept its id in the merge, rebuilt without the other.
    public var survivor: Customer
    /// The customer that had been absorbed, restored exactly as it was.
    public var restored: Customer
}

extension RapportEngine {
    /// Merges two customers into one. The older customer keeps its id; per field the most recently updated
    /// non-empty value wins; identities, tags, addresses, orders, events, interactions and consents are united.
    ///
    /// ```swift
    /// let result = try await crm.mergeCustomers(ada.id, adaFromTheShop.id)
    /// // later, if it was a mistake:
    /// try await crm.unmerge(result.merge.id)
    /// ```
    /// - Throws: `notFound` for an unknown id, `invalidArgument` for the same customer twice,
    ///   `failedPrecondition` when a customer was already merged into another.
    public func mergeCustomers(_ first: CustomerID, _ second: CustomerID, requestID: String? = nil) async throws(RapportError) -> MergeResult {
        guard first != second else { throw .invalid("customer_ids", "a customer cannot be merged with itself") }
        return try await mutate("mergeCustomers", requestID: requestID, fingerprint: [first, second]) { [self] tx in
            let now = clock.now()  // read in the transaction: a change committed later is stamped later
            let records = [try tx.customer(first), try tx.customer(second)]
            for (index, record) in records.enumerated() {
                guard let record else { throw RapportError.notFound(entity: "customer", id: (index == 0 ? first : second).rawValue) }
                if let survivor = record.mergedInto {
                    throw RapportError.failedPrecondition("customer \(record.id) was already merged into \(survivor)")
                }
            }
            let ordered = records.compactMap { $0 }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            var session = WriteSession(tx: tx, engine: self, now: now)
            let merge = try session.merge(survivor: ordered[0].id, absorbed: ordered[1].id, reason: .manual)
            try session.finish()
            return MergeResult(merge: merge, survivor: try tx.assemble(try tx.activeCustomer(merge.survivorID)))
        }
    }

    /// Undoes a merge: the absorbed customer comes back exactly as it was before the merge, with everything it
    /// owned; records that arrived after the merge go to the customer their identities point to. Customers once
    /// unmerged are not merged again automatically.
    ///
    /// Merges into the same survivor can be undone in any order. A merge whose survivor was itself merged later
    /// needs that later merge undone first (`failedPrecondition`).
    public func unmerge(_ mergeID: MergeID, requestID: String? = nil) async throws(RapportError) -> UnmergeResult {
        return try await mutate("unmerge", requestID: requestID, fingerprint: mergeID) { [self] tx in
            let now = clock.now()  // read in the transaction: a change committed later is stamped later
            var session = WriteSession(tx: tx, engine: self, now: now)
            let (survivor, restored) = try session.unmerge(mergeID)
            try session.finish()
            return UnmergeResult(
                merge: try tx.merge(mergeID)!, survivor: try tx.assemble(try tx.activeCustomer(survivor)),
                restored: try tx.assemble(try tx.activeCustomer(restored)))
        }
    }

    /// One merge record.
    public func merge(_ id: MergeID) async throws(RapportError) -> MergeRecord {
        try await read { tx in
            guard let record = try tx.merge(id) else { throw RapportError.notFound(entity: "merge", id: id.rawValue) }
            return record
        }
    }

    /// Every merge (standing or undone) into a customer, oldest first.
    public func merges(into id: CustomerID) async throws(RapportError) -> [MergeRecord] {
        try await read { tx in
            guard try tx.customer(id) != nil else { throw RapportError.notFound(entity: "customer", id: id.rawValue) }
            return try tx.merges(into: id)
        }
    }
}
