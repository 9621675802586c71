/// Why two customers were merged.
public enum MergeReason: Hashable, Sendable, Codable {
    /// Someone asked for it.
    case manual
    /// One ingested record's identities resolved to both customers; the record's id is kept.
    case sharedIdentity(recordID: String)
}

/// The record of one merge: who survived, who was absorbed, and both as they were, so it can be undone.
public struct MergeRecord: Hashable, Sendable, Codable {
    public var id: MergeID
    /// The customer that kept its id (the older one).
    public var survivorID: CustomerID
    /// The customer merged into the survivor.
    public var absorbedID: CustomerID
    public var reason: MergeReason
    public var mergedAt: Timestamp
    /// The store-wide sequence number of the merge: records that arrive later have larger ones.
    public var sequence: Int64
    /// The survivor as it was just before the merge.
    public var survivorBefore: CustomerRecord
    /// The absorbed customer as it was just before the merge.
    public var absorbedBefore: CustomerRecord
    /// The absorbed customer's dynamic segment memberships just before the merge: an unmerge that finds the
    /// restored customer in them again restores them (with their `since`) without triggering entry rules again.
    public var absorbedSegments: [SegmentMembership]
    /// The absorbed customer's waiting rule runs the survivor took over: an unmerge gives back those still waiting
    /// (runs an event or order started follow that record instead).
    public var adoptedRuns: [RunID]
    /// When the merge was undone, if it was.
    public var unmergedAt: Timestamp?

    public init(
        id: MergeID, survivorID: CustomerID, absorbedID: CustomerID, reason: MergeReason, mergedAt: Timestamp, sequence: Int64,
        survivorBefore: CustomerRecord, absorbedBefore: CustomerRecord, absorbedSegments: [SegmentMembership] = [], adoptedRuns: [RunID] = [],
        unmergedAt: Timestamp? = nil
    ) {
        self.id = id
        self.survivorID = survivorID
        self.absorbedID = absorbedID
        self.reason = reason
        self.mergedAt = mergedAt
        self.sequence = sequence
        self.survivorBefore = survivorBefore
        self.absorbedBefore = absorbedBefore
        self.absorbedSegments = absorbedSegments
        self.adoptedRuns = adoptedRuns
        self.unmergedAt = unmergedAt
    }

    /// True while the merge stands.
    public var isActive: Bool { unmergedAt == nil }

    private enum CodingKeys: String, CodingKey {
        case id, survivorID, absorbedID, reason, mergedAt, sequence, survivorBefore, absorbedBefore, absorbedSegments, adoptedRuns, unmergedAt
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            id: container.decode(MergeID.self, forKey: .id), survivorID: container.decode(CustomerID.self, forKey: .survivorID),
            absorbedID: container.decode(CustomerID.self, forKey: .absorbedID), reason: container.decode(MergeReason.self, forKey: .reason),
            mergedAt: container.decode(Timestamp.self, forKey: .mergedAt), sequence: container.decode(Int64.self, forKey: .sequence),
            survivorBefore: container.decode(CustomerRecord.self, forKey: .survivorBefore),
            absorbedBefore: container.decode(CustomerRecord.self, forKey: .absorbedBefore),
            // Absent from what versions before it stored (idempotent replies).
            absorbedSegments: container.decodeIfPresent([SegmentMembership].self, forKey: .absorbedSegments) ?? [],
            adoptedRuns: container.decodeIfPresent([RunID].self, forKey: .adoptedRuns) ?? [],
            unmergedAt: container.decodeIfPresent(Timestamp.self, forKey: .unmergedAt))
    }
}

/// One change of a customer's profile, kept so that an unmerge can replay what happened after the merge.
public struct ProfileChange: Hashable, Sendable, Codable {
    public var customerID: CustomerID
    public var sequence: Int64
    public var at: Timestamp
    /// The fields that changed.
    public var fields: Set<CustomerField>
    /// The profile after the change (only `fields` are read from it).
    public var profile: CustomerProfile

    public init(customerID: CustomerID, sequence: Int64, at: Timestamp, fields: Set<CustomerField>, profile: CustomerProfile) {
        self.customerID = customerID
        self.sequence = sequence
        self.at = at
        self.fields = fields
        self.profile = profile
    }
}
