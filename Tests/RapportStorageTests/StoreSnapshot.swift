import RapportCore
import Testing

/// One read's result, whatever its type, so that whole states can be compared read by read.
enum Reading: Hashable, Sendable {
    case number(Int64)
    case customer(CustomerRecord?)
    case customers([CustomerRecord])
    case stats(CustomerStats?)
    case identity(IdentityRecord?)
    case identities([IdentityRecord])
    case event(EventRecord?)
    case events([EventRecord])
    case summary(EventSummary)
    case order(OrderRecord?)
    case orders([OrderRecord])
    case interaction(InteractionRecord?)
    case interactions([InteractionRecord])
    case consents([ConsentRecord])
    case merge(MergeRecord?)
    case merges([MergeRecord])
    case profileChanges([ProfileChange])
    case definitions([AttributeDefinition])
    case apiKey(APIKey?)
    case apiKeys([APIKey])
    case request(IdempotencyRecord?)
    case feed([Change])
}

/// The names a test uses: every read of a snapshot asks about each of them.
struct Universe: Sendable {
    var customers: [CustomerID]
    var eventIDs: [String]
    var orderIDs: [OrderID]
    var orderKeys: [OrderKey]
    var interactionIDs: [InteractionID]
    var identities: [Identity]
    var mergeIDs: [MergeID]
    var apiKeyIDs: [APIKeyID] = []
    var secretHashes: [String] = []
    var requestKeys: [String] = []

    /// Extra reads whose parameters were drawn at random: a customer query and timeline positions.
    var query = CustomerQuery(limit: 1000)
    var position: TimelinePosition?
    var pageSize = 1000
    var afterSequence: Int64 = 0
    var changeCursor: Int64 = 0

    /// Every read of the store about every name, keyed by a description of the read.
    func snapshot(_ tx: any StoreReader) throws -> [String: Reading] {
        var result: [String: Reading] = [:]
        result["currentSequence"] = .number(try tx.currentSequence())
        result["customerCount"] = .number(Int64(try tx.customerCount()))
        result["attributeDefinitions"] = .definitions(try tx.attributeDefinitions())
        result["customers(all)"] = .customers(try tx.customers(CustomerQuery(limit: 1000)))
        result["customers(\(query))"] = .customers(try tx.customers(query))
        result["apiKeys"] = .apiKeys(try tx.apiKeys())
        result["latestChangeCursor"] = .number(try tx.latestChangeCursor())
        result["changes(all)"] = .feed(try tx.changes(after: 0, limit: 10_000))
        result["changes(after: \(changeCursor), limit: \(pageSize))"] = .feed(try tx.changes(after: changeCursor, limit: pageSize))
        for id in apiKeyIDs { result["apiKey(\(id))"] = .apiKey(try tx.apiKey(id)) }
        for hash in secretHashes { result["apiKey(secretHash: \(hash))"] = .apiKey(try tx.apiKey(secretHash: hash)) }
        for key in requestKeys { result["idempotencyRecord(\(key))"] = .request(try tx.idempotencyRecord(key)) }
        for customer in customers {
            let name = customer.rawValue
            result["customer(\(name))"] = .customer(try tx.customer(customer))
            result["stats(\(name))"] = .stats(try tx.stats(of: customer))
            result["identities(\(name))"] = .identities(try tx.identities(of: customer))
            result["events(\(name))"] = .events(try tx.events(of: customer, before: nil, limit: 1000))
            result["events(\(name), before: \(String(describing: position)), limit: \(pageSize))"] =
                .events(try tx.events(of: customer, before: position, limit: pageSize))
            result["eventSummary(\(name))"] = .summary(try tx.eventSummary(of: customer))
            result["orders(\(name))"] = .orders(try tx.orders(of: customer, before: nil, limit: 1000))
            result["orders(\(name), before: \(String(describing: position)), limit: \(pageSize))"] =
                .orders(try tx.orders(of: customer, before: position, limit: pageSize))
            result["interactions(\(name))"] = .interactions(try tx.interactions(of: customer, before: nil, limit: 1000))
            result["interactions(\(name), before: \(String(describing: position)), limit: \(pageSize))"] =
                .interactions(try tx.interactions(of: customer, before: position, limit: pageSize))
            result["consents(\(name))"] = .consents(try tx.consents(of: customer))
            result["merges(into: \(name))"] = .merges(try tx.merges(into: customer))
            result["profileChanges(\(name), after: \(afterSequence))"] = .profileChanges(try tx.profileChanges(of: customer, after: afterSequence))
        }
        for id in eventIDs { result["event(\(id))"] = .event(try tx.event(id: id)) }
        for id in orderIDs { result["order(\(id))"] = .order(try tx.order(id)) }
        for key in orderKeys { result["order(key: \(key))"] = .order(try tx.order(key: key)) }
        for id in interactionIDs { result["interaction(\(id))"] = .interaction(try tx.interaction(id)) }
        for identity in identities { result["identity(\(identity))"] = .identity(try tx.identity(identity)) }
        for id in mergeIDs { result["merge(\(id))"] = .merge(try tx.merge(id)) }
        return result
    }
}

/// Records an issue for each read on which two snapshots differ (at most `limit` of them).
func expectSameReads(
    _ expected: [String: Reading], _ actual: [String: Reading], _ context: String, limit: Int = 5, sourceLocation: SourceLocation = #_sourceLocation
) {
    var reported = 0
    for key in Set(expected.keys).union(actual.keys).sorted() where expected[key] != actual[key] {
        Issue.record(
            "\(context): \(key) differs\n  expected: \(String(describing: expected[key]))\n  actual:   \(String(describing: actual[key]))",
            sourceLocation: sourceLocation)
        reported += 1
        if reported == limit { return }
    }
}
