import Foundation
import Logging
public import RapportCore
public import RapportRules

/// What a new segment is.
public struct SegmentInput: Hashable, Sendable, Codable {
    /// The stable key expressions name it by (`big_spenders`): lower-case letters, digits and `_`.
    public var key: String
    public var name: String
    public var description: String
    public var kind: SegmentKind
    /// The condition of a dynamic segment, in the rules language; empty for a list.
    public var expression: String

    /// A dynamic segment: its members are the customers for whom `expression` holds, at every moment.
    public static func dynamic(key: String, name: String, expression: String, description: String = "") -> SegmentInput {
        SegmentInput(key: key, name: name, description: description, kind: .dynamic, expression: expression)
    }

    /// A static list, whose members are added and removed by hand.
    public static func list(key: String, name: String, description: String = "") -> SegmentInput {
        SegmentInput(key: key, name: name, description: description, kind: .list, expression: "")
    }

    public init(key: String, name: String, description: String = "", kind: SegmentKind, expression: String) {
        self.key = key
        self.name = name
        self.description = description
        self.kind = kind
        self.expression = expression
    }
}

/// Changes to a segment; nil leaves a field as it is.
public struct SegmentChanges: Hashable, Sendable, Codable {
    public var name: String?
    public var description: String?
    /// A new expression (dynamic segments only): membership is rebuilt.
    public var expression: String?

    public init(name: String? = nil, description: String? = nil, expression: String? = nil) {
        self.name = name
        self.description = description
        self.expression = expression
    }
}

/// One page of a segment's members.
public struct SegmentMembersPage: Hashable, Sendable {
    public var members: [SegmentMembership]
    public var nextPageToken: String?
    /// How many members the segment has, read with the page.
    public var totalCount: Int64
}

/// How many customers an unsaved expression selects, and some of them.
public struct SegmentPreview: Hashable, Sendable {
    /// How many active customers match.
    public var count: Int
    /// Up to the requested number of matching customers, oldest first.
    public var sample: [Customer]
    /// How many customers were evaluated.
    public var evaluated: Int
}

/// What adding customers to a list, or removing them, did.
public struct ListChange: Hashable, Sendable, Codable {
    /// Customers that became (or stopped being) members.
    public var changed: [CustomerID]
    /// Customers that already were (or were not) members.
    public var unchanged: [CustomerID]

    public init(changed: [CustomerID], unchanged: [CustomerID]) {
        self.changed = changed
        self.unchanged = unchanged
    }
}

extension RapportEngine {
    /// Creates a dynamic segment or a static list.
    ///
    /// A dynamic segment's members are then kept up to date in the transaction of every change to a customer, and
    /// when time alone changes them (a customer enters "no order in 90 days" on day 91). Existing customers are
    /// evaluated page by page: a small store is done when this returns; a large one continues in the scheduler
    /// (the segment is `building` until then). Customers found while building do not trigger "entered" rules.
    ///
    /// ```swift
    /// let lapsing = try await crm.createSegment(.dynamic(
    ///     key: "lapsing", name: "No order in 90 days",
    ///     expression: "stats.order_count > 0 and time_since(stats.last_order_at) > 90d"))
    /// ```
    /// - Throws: `invalidArgument` naming the field (an expression error carries its line, column and excerpt),
    ///   `alreadyExists` for a used key.
    public func createSegment(_ input: SegmentInput, requestID: String? = nil) async throws(RapportError) -> Segment {
        var validator = Validator()
        validator.capture("") { () throws(RapportError) in try AttributeDefinition.validateKey(input.key, field: "key") }
        Self.validateSegmentText(name: input.name, description: input.description, into: &validator)
        switch input.kind {
        case .dynamic where input.expression.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty:
            validator.add("expression", "a dynamic segment needs an expression")
        case .list where !input.expression.isEmpty:
            validator.add("expression", "a list has no expression: its members are added by hand")
        default: break
        }
        try validator.check()
        let now = clock.now()
        let id = ids.make(SegmentID.self, at: now)
        let segment: Segment = try await mutate("createSegment", requestID: requestID, fingerprint: input) { tx in
            if try tx.segment(key: input.key) != nil { throw RapportError.alreadyExists(entity: "segment", id: input.key) }
            if input.kind == .dynamic { _ = try Self.compileSegment(input.expression, tx: tx, field: "expression") }
            var segment = Segment(
                id: id, key: input.key, name: input.name, description: input.description, kind: input.kind, expression: input.expression,
                state: input.kind == .dynamic ? .building : .ready, buildStartedAt: input.kind == .dynamic ? now : nil, createdAt: now, updatedAt: now)
            segment.evaluatedWithRevision = ExpressionRevisions.current
            try tx.insertSegment(segment)
            try tx.bumpDefinitionsVersion()
            if input.kind == .dynamic { try tx.putJob(ScheduledJob(key: "build:\(id.rawValue)", dueAt: now, kind: .buildSegment(id))) }
            return segment
        }
        return try await buildPromptly(segment)
    }

    /// Runs a segment's build for a few pages now, so that small stores have it ready on return.
    ///
    /// Returns the segment as built so far, or as the call left it once it was changed or deleted since: a call
    /// replayed by its request id answers what it did, not a later rename or a deletion.
    private func buildPromptly(_ segment: Segment) async throws(RapportError) -> Segment {
        guard segment.state == .building else { return segment }
        for _ in 0..<20 {
            guard try await runJob("build:\(segment.id.rawValue)", now: clock.now()) else { break }
        }
        do {
            let current = try await self.segment(segment.id)
            return current.version == segment.version ? current : segment
        } catch .notFound {
            return segment
        }
    }

    /// Changes a segment's name, description or expression; a new expression rebuilds its membership.
    /// - Parameter ifMatch: the etag the caller read; a different version throws `etagMismatch`.
    public func updateSegment(_ id: SegmentID, _ changes: SegmentChanges, ifMatch: String? = nil, requestID: String? = nil) async throws(RapportError)
        -> Segment
    {
        var validator = Validator()
        Self.validateSegmentText(name: changes.name ?? "x", description: changes.description ?? "", into: &validator)
        try validator.check()
        let now = clock.now()
        // Unchanged fields are "" (as before a cleared description counted), and a cleared description adds a sixth
        // element, so that it differs from an unchanged one.
        var fingerprint = [id.rawValue, ifMatch ?? "", changes.name ?? "", changes.description ?? "", changes.expression ?? ""]
        if changes.description == "" { fingerprint.append("description cleared") }
        let updated: Segment = try await mutate("updateSegment", requestID: requestID, fingerprint: fingerprint) { [catalogs, logger] tx in
            guard var segment = try tx.segment(id) else { throw RapportError.notFound(entity: "segment", id: id.rawValue) }
            try Self.check(etag: ifMatch, version: segment.version, entity: "segment", id: id.rawValue)
            var rebuild = false
            if let expression = changes.expression, expression != segment.expression {
                guard segment.kind == .dynamic else { throw RapportError.invalid("expression", "a list has no expression: its members are added by hand") }
                let compiled = try Self.compileSegment(expression, tx: tx, field: "expression")
                try Self.checkNoCycle(segment: id, references: compiled.requirements.segmentIDs, tx: tx)
                // Members found by an expression that read personal data, and the feed's entries and exits of them,
                // stay: they stay hidden from roles without personal data whatever the new expression reads.
                if segment.revealedPersonalData == nil, let path = try catalogs.catalog(tx, logger: { logger.error("\($0)") }).revealingPersonalData[id],
                    path != AutomationCatalog.unreadable
                {
                    segment.revealedPersonalData = path
                }
                segment.expression = expression
                rebuild = true
            }
            if let name = changes.name { segment.name = name }
            if let description = changes.description { segment.description = description }
            guard rebuild || changes.name != nil || changes.description != nil else { return segment }
            segment.version += 1
            segment.updatedAt = now
            if rebuild {
                segment.state = .building
                segment.buildCursor = nil
                segment.buildStartedAt = now
                segment.evaluatedWithRevision = ExpressionRevisions.current
                try tx.putJob(ScheduledJob(key: "build:\(id.rawValue)", dueAt: now, kind: .buildSegment(id)))
            }
            try tx.updateSegment(segment)
            try tx.bumpDefinitionsVersion()
            return segment
        }
        return try await buildPromptly(updated)
    }

    /// Deletes a segment and its memberships.
    /// - Throws: `failedPrecondition` while another segment or a rule refers to it, or runs wait with an earlier
    ///   version of a rule that did (naming them).
    public func deleteSegment(_ id: SegmentID, requestID: String? = nil) async throws(RapportError) {
        let _: Done = try await mutate("deleteSegment", requestID: requestID, fingerprint: id) { tx in
            guard let segment = try tx.segment(id) else { throw RapportError.notFound(entity: "segment", id: id.rawValue) }
            var users: [String] = []
            let catalog = try CatalogCache.build(tx, version: 0) { _ in }
            for other in catalog.dynamicSegments where other.predicate.requirements.segmentIDs.contains(id.rawValue) {
                users.append("segment \(other.segment.key)")
            }
            func refers(_ rule: CompiledRule) -> Bool {
                switch rule.definition.trigger {
                case .segmentEntered(let target) where target == id, .segmentExited(let target) where target == id: return true
                case .schedule(let schedule) where schedule.audience == id: return true
                default: return rule.requirements.segmentIDs.contains(id.rawValue)
                }
            }
            for rule in catalog.rules.values.sorted(by: { $0.id < $1.id }) {
                if refers(rule) {
                    users.append("rule \(rule.id) (\(rule.definition.name))")
                    continue
                }
                // A waiting run finishes with the version it started with, which may still read the segment.
                let waiting = try tx.runs(RunQuery(ruleID: rule.id, status: .waiting, limit: .max))
                for version in Set(waiting.map(\.ruleVersion)).subtracting([rule.version]).sorted() {
                    guard let definition = try tx.ruleDefinition(rule.id, version: version),
                        let old = try? CatalogCache.compile(rule: rule.id, version: version, definition: definition, schema: catalog.schema), refers(old)
                    else { continue }
                    users.append("runs of rule \(rule.id) (\(rule.definition.name)) waiting with its version \(version)")
                    break
                }
            }
            guard users.isEmpty else {
                throw RapportError.failedPrecondition("segment '\(segment.key)' is used by \(users.joined(separator: ", ")); change or delete them first")
            }
            try tx.deleteSegment(id)
            try tx.deleteJob("build:\(id.rawValue)")
            try tx.bumpDefinitionsVersion()
            return Done()
        }
    }

    /// One segment.
    public func segment(_ id: SegmentID) async throws(RapportError) -> Segment {
        try await read { tx in
            guard let segment = try tx.segment(id) else { throw RapportError.notFound(entity: "segment", id: id.rawValue) }
            return segment
        }
    }

    /// Every segment, sorted by key.
    public func segments() async throws(RapportError) -> [Segment] {
        try await read { tx in try tx.segments() }
    }

    /// A page of a segment's members, by customer id.
    public func segmentMembers(_ id: SegmentID, page: PageRequest = PageRequest()) async throws(RapportError) -> SegmentMembersPage {
        let size = try PageToken.pageSize(page.size)
        let after = try page.token.map { token throws(RapportError) in try PageToken.decodeMember(token, of: id) }
        return try await read { tx in
            guard let segment = try tx.segment(id) else { throw RapportError.notFound(entity: "segment", id: id.rawValue) }
            let members = try tx.members(of: id, after: after, limit: size + 1)
            let shown = Array(members.prefix(size))
            return SegmentMembersPage(
                members: shown, nextPageToken: members.count > size ? shown.last.map { PageToken.encode(member: $0.customerID, of: id) } : nil,
                totalCount: segment.memberCount)
        }
    }

    /// The dynamic segments whose membership tells personal data, each with the path that does: those whose
    /// expression reads e-mails, phones, a birthday's month and day or what dates it (`customer.age`,
    /// `days_until_birthday()`), directly or through a segment it names. Roles that do not see personal data are
    /// not shown who is in them.
    ///
    /// ```swift
    /// let personal = try await crm.segmentsRevealingPersonalData()   // [seg_…: "customer.birthday.month"]
    /// ```
    public func segmentsRevealingPersonalData() async throws(RapportError) -> [SegmentID: String] {
        try await currentCatalog().revealingPersonalData
    }

    /// True when who entered or left segment `id` must be hidden from roles without personal data: the segment is
    /// defined by personal data (now or by an earlier expression), or it no longer exists (what it was defined by
    /// is not known any more).
    public func segmentMayRevealPersonalData(_ id: SegmentID) async throws(RapportError) -> Bool {
        let catalog = try await currentCatalog()
        return catalog.revealingPersonalData[id] != nil || catalog.segments[id] == nil
    }

    /// The automation catalog of the current definitions (compiled once per definitions version).
    private func currentCatalog() async throws(RapportError) -> AutomationCatalog {
        try await quickRead { [catalogs, logger] tx in try catalogs.catalog(tx) { logger.error("\($0)") } }
    }

    /// The segments and lists a customer is in.
    public func memberships(of customer: CustomerID) async throws(RapportError) -> [SegmentMembership] {
        try await read { tx in try tx.memberships(of: try tx.activeCustomer(customer).id) }
    }

    /// How many customers an expression selects now, with a sample, without saving anything.
    ///
    /// ```swift
    /// let preview = try await crm.previewSegment("total_spent(\"EUR\") > 500 EUR", sampleSize: 10)
    /// print(preview.count, preview.sample.map(\.id))
    /// ```
    public func previewSegment(_ expression: String, sampleSize: Int = 10) async throws(RapportError) -> SegmentPreview {
        guard (0...100).contains(sampleSize) else { throw .invalid("sample_size", "must be 0 to 100, got \(sampleSize)") }
        let now = clock.now()
        let zone = automationSettings.defaultTimeZone
        return try await read { tx in
            let compiled = try Self.compileSegment(expression, tx: tx, field: "expression")
            var reads = compiled.requirements.data
            reads.insert(.segments)
            var preview = SegmentPreview(count: 0, sample: [], evaluated: 0)
            var after: CustomerCursor?
            while true {
                let page = try tx.customers(CustomerQuery(order: CustomerOrder(.createdAt), after: after, limit: 1000))
                for record in page {
                    let (context, activity) = try tx.evaluationContext(record, stats: nil, reads: reads, now: now, defaultTimeZone: zone)
                    preview.evaluated += 1
                    if compiled.matches(context) {
                        preview.count += 1
                        if preview.sample.count < sampleSize { preview.sample.append(try tx.assemble(record)) }
                    }
                    if let error = activity?.error { throw error }
                }
                guard page.count == 1000, let last = page.last else { break }
                after = CustomerCursor(value: last.createdAt.millisecondsSinceEpoch, id: last.id)
            }
            return preview
        }
    }

    /// Why a customer is in a segment or not: the value of every part of its expression for them.
    public func explainSegment(_ id: SegmentID, customer: CustomerID) async throws(RapportError) -> Explanation {
        let now = clock.now()
        let zone = automationSettings.defaultTimeZone
        return try await read { tx in
            guard let segment = try tx.segment(id) else { throw RapportError.notFound(entity: "segment", id: id.rawValue) }
            guard segment.kind == .dynamic else { throw RapportError.failedPrecondition("segment '\(segment.key)' is a list: its members were added by hand") }
            return try Self.explain(
                segment.expression, scope: .customer, customer: customer, event: nil, tx: tx, now: now, zone: zone, field: "expression", stored: true)
        }
    }

    /// Adds customers to a static list; each one that was not a member enters it (rules on entering run).
    ///
    /// The id of a customer merged away adds its survivor (unchanged if already a member); after an unmerge the
    /// membership is that customer's.
    public func addToList(_ id: SegmentID, customers: [CustomerID], requestID: String? = nil) async throws(RapportError) -> ListChange {
        try await changeList(id, customers: customers, adding: true, requestID: requestID)
    }

    /// Removes customers from a static list; each one that was a member leaves it.
    ///
    /// The id of a customer merged away removes its survivor, with every membership the survivor holds in the list.
    public func removeFromList(_ id: SegmentID, customers: [CustomerID], requestID: String? = nil) async throws(RapportError) -> ListChange {
        try await changeList(id, customers: customers, adding: false, requestID: requestID)
    }

    private func changeList(_ id: SegmentID, customers: [CustomerID], adding: Bool, requestID: String?) async throws(RapportError) -> ListChange {
        guard !customers.isEmpty, customers.count <= 1000 else { throw .invalid("customer_ids", "name 1 to 1000 customers, got \(customers.count)") }
        return try await mutate(adding ? "addToList" : "removeFromList", requestID: requestID, fingerprint: [id.rawValue] + customers.map(\.rawValue)) { [self] tx in
            let now = clock.now()  // read in the transaction: rules it triggers may change customers
            guard let segment = try tx.segment(id) else { throw RapportError.notFound(entity: "segment", id: id.rawValue) }
            guard segment.kind == .list else {
                throw RapportError.failedPrecondition("segment '\(segment.key)' is dynamic: its expression decides its members")
            }
            var session = WriteSession(tx: tx, engine: self, now: now)
            var result = ListChange(changed: [], unchanged: [])
            for (index, requested) in customers.enumerated() {
                let record: CustomerRecord
                do {
                    record = try tx.activeCustomer(requested)
                } catch RapportError.notFound {
                    throw RapportError.invalidArgument([FieldViolation(field: "customer_ids[\(index)]", problem: "customer '\(requested)' not found")])
                }
                let isMember = try tx.isListMember(segment: id, customer: record.id)
                if adding, try !tx.listMemberships(ownedBy: record.id).contains(where: { $0.segmentID == id && $0.homeCustomerID == requested }) {
                    // The membership is the named customer's own, even when the customer is a member already through
                    // one merged into it (or, named by its merged id, through its survivor): no change now, but it
                    // stays with the one named through an unmerge.
                    try tx.insertListMembership(ListMembershipRecord(segmentID: id, customerID: record.id, homeCustomerID: requested, addedAt: now))
                    if isMember {
                        result.unchanged.append(record.id)
                        continue
                    }
                } else if !adding, isMember {
                    _ = try tx.deleteListMemberships(segment: id, customer: record.id)
                } else {
                    result.unchanged.append(record.id)
                    continue
                }
                result.changed.append(record.id)
                try session.segmentChanged(segment, customer: record.id, entered: adding, depth: -1, chained: false)
                try session.markDirty(record.id, .segments)
            }
            try session.finish()
            return result
        }
    }

    // MARK: Helpers

    static func validateSegmentText(name: String, description: String, into validator: inout Validator) {
        if name.trimmingCharacters(in: .whitespaces).isEmpty || name.unicodeScalars.count > 200 { validator.add("name", "must be 1 to 200 characters") }
        if description.unicodeScalars.count > 2000 { validator.add("description", "is longer than 2000 characters") }
    }

    /// The schema expressions are checked against, as `tx` sees it.
    static func expressionSchema(_ tx: any StoreReader) throws -> ExpressionSchema {
        ExpressionSchema(
            attributes: try tx.attributeDefinitions(), eventTypes: try tx.eventTypeDefinitions(),
            segments: Dictionary(try tx.segments().map { ($0.key, $0.id.rawValue) }, uniquingKeysWith: { a, _ in a }))
    }

    static func compileSegment(_ expression: String, tx: any StoreReader, field: String) throws -> CompiledExpression {
        do {
            return try CompiledExpression(expression, schema: try expressionSchema(tx), scope: .customer)
        } catch let error as ExpressionError {
            throw RapportError.invalidArgument(error.issues.map { FieldViolation(field: field, problem: $0.description) })
        }
    }

    /// Refuses an expression for `segment` that names a segment which (through others) names `segment` back.
    static func checkNoCycle(segment: SegmentID, references: Set<String>, tx: any StoreReader) throws {
        let catalog = try CatalogCache.build(tx, version: 0) { _ in }
        let dependencies = Dictionary(
            catalog.dynamicSegments.map { ($0.segment.id.rawValue, $0.predicate.requirements.segmentIDs) }, uniquingKeysWith: { a, _ in a })
        var pending = Array(references)
        var seen = Set<String>()
        while let next = pending.popLast() {
            if next == segment.rawValue {
                throw RapportError.invalid("expression", "the segment would depend on itself through in_segment(...)")
            }
            if seen.insert(next).inserted { pending += dependencies[next] ?? [] }
        }
    }

    static func check(etag: String?, version: Int64, entity: String, id: String) throws {
        guard let etag, !etag.isEmpty else { return }
        let bare = etag.filter { $0 != "\"" && $0 != " " }
        guard let expected = Int64(bare) else { throw RapportError.invalid("etag", "'\(etag)' is not an etag returned by Rapport") }
        guard expected == version else { throw RapportError.etagMismatch(entity: entity, id: id, expected: etag, actual: "\"\(version)\"") }
    }

    /// Explains an expression for a customer (and an event) as `tx` sees them.
    /// `stored`: the text of a saved definition, held to the limits of when it was saved.
    static func explain(
        _ source: String, scope: ExpressionScope, customer: CustomerID, event: Event?, order: Order? = nil, tx: any StoreReader, now: Timestamp, zone: TimeZone,
        field: String, stored: Bool = false
    ) throws -> Explanation {
        let record = try tx.activeCustomer(customer)
        let (context, activity) = try tx.evaluationContext(record, stats: nil, reads: .everything, now: now, defaultTimeZone: zone)
        var withEvent = context
        withEvent.event = event
        withEvent.order = order
        do {
            let schema = try expressionSchema(tx)
            let explanation = try ExpressionLimits.$heightLimit.withValue(stored ? ExpressionLimits.maxStoredHeight : ExpressionLimits.heightLimit) {
                try CompiledExpression.explain(source, schema: schema, scope: scope, context: withEvent)
            }
            if let error = activity?.error { throw error }
            return explanation
        } catch let error as ExpressionError {
            throw RapportError.invalidArgument(error.issues.map { FieldViolation(field: field, problem: $0.description) })
        }
    }
}
