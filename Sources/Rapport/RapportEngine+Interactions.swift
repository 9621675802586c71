public import RapportCore
import RapportRules

extension RapportEngine {
    /// Records a conversation or contact with a customer; it appears in their timeline.
    ///
    /// ```swift
    /// try await crm.recordInteraction(InteractionInput(
    ///     customerID: ada.id, channel: .phone, direction: .inbound, subject: "Where is my parcel?", agent: "sam"))
    /// ```
    public func recordInteraction(_ input: InteractionInput, requestID: String? = nil) async throws(RapportError) -> Interaction {
        let now = clock.now()
        var validator = Validator()
        if input.subject.unicodeScalars.count > 500 { validator.add("subject", "is longer than 500 characters") }
        if input.summary.unicodeScalars.count > 20_000 { validator.add("summary", "is longer than 20000 characters") }
        if input.agent.unicodeScalars.count > 200 { validator.add("agent", "is longer than 200 characters") }
        for (field, text) in [("subject", input.subject), ("summary", input.summary), ("agent", input.agent)] where text.containsNUL {
            validator.add(field, "holds a NUL character (U+0000)")
        }
        let occurredAt = input.occurredAt ?? now
        validator.capture("") { () throws(RapportError) in try Self.checkTime(occurredAt, field: "occur_time", now: now) }
        try validator.check()
        let id = ids.make(InteractionID.self, at: now)
        return try await mutate("recordInteraction", requestID: requestID, fingerprint: input) { tx in
            let now = self.clock.now()  // read in the transaction: a change committed later is stamped later
            // Kept with the customer it names (its home): an unmerge hands it back to that customer.
            let owner = try tx.activeCustomer(input.customerID).id
            let interaction = Interaction(
                id: id, customerID: owner, channel: input.channel, direction: input.direction, subject: input.subject, summary: input.summary,
                agent: input.agent, occurredAt: input.occurredAt ?? now)
            try tx.insertInteraction(InteractionRecord(interaction: interaction, homeCustomerID: input.customerID, sequence: try tx.allocateSequence(1)))
            _ = try tx.appendChange(kind: .engagementRecorded, customerID: owner, otherCustomerID: nil, mergeID: nil, at: now)
            return interaction
        }
    }

    /// Records a consent statement; the history is kept and the latest statement per channel and purpose rules.
    ///
    /// ```swift
    /// try await crm.recordConsent(ConsentInput(
    ///     customerID: ada.id, channel: .email, purpose: .marketing, status: .granted, source: "checkout"))
    /// ```
    public func recordConsent(_ input: ConsentInput, requestID: String? = nil) async throws(RapportError) -> Consent {
        let now = clock.now()
        var validator = Validator()
        if input.source.allSatisfy(\.isWhitespace) || input.source.unicodeScalars.count > 200 || input.source.containsNUL {
            validator.add("source", "must be 1 to 200 characters without NUL (where the consent was given)")
        }
        let occurredAt = input.occurredAt ?? now
        validator.capture("") { () throws(RapportError) in try Self.checkTime(occurredAt, field: "occur_time", now: now) }
        try validator.check()
        let id = ids.make(ConsentID.self, at: now)
        return try await mutate("recordConsent", requestID: requestID, fingerprint: input) { [self] tx in
            let now = clock.now()  // read in the transaction: a change committed later is stamped later
            // Kept with the customer it names (its home): an unmerge hands it back to that customer.
            let owner = try tx.activeCustomer(input.customerID).id
            let consent = Consent(
                id: id, customerID: owner, channel: input.channel, purpose: input.purpose, status: input.status, source: input.source,
                occurredAt: input.occurredAt ?? now, recordedAt: now)
            try tx.insertConsent(ConsentRecord(consent: consent, homeCustomerID: input.customerID, sequence: try tx.allocateSequence(1)))
            // Messages queued while contact was allowed and not handed to a sender yet are not sent any more.
            if !WriteSession.allows(currentConsents(try tx.consents(of: owner)), channel: input.channel, purpose: input.purpose) {
                try Self.withdrawMessages(of: owner, channel: input.channel, purpose: input.purpose, tx: tx, now: now)
            }
            _ = try tx.appendChange(kind: .engagementRecorded, customerID: owner, otherCustomerID: nil, mergeID: nil, at: now)
            var session = WriteSession(tx: tx, engine: self, now: now)
            try session.markDirty(owner, .consents)
            try session.finish()
            return consent
        }
    }

    /// Marks failed the messages of a customer (and of the customers merged into it) that wait in the outbox for
    /// a sender and go through `channel` for `purpose`, after the customer stopped allowing it. An entry a sender
    /// holds already (leased) may be on its way and is left to it.
    static func withdrawMessages(of customer: CustomerID, channel: ConsentChannel, purpose: ConsentPurpose, tx: any StoreWriter, now: Timestamp) throws {
        for side in try WriteSession.standingSide(of: customer, tx: tx).sorted() {
            for var entry in try tx.outboxEntries(OutboxQuery(customerID: side, states: [.pending], limit: .max)) {
                guard case .message(let message) = entry.payload, message.channel == channel, message.purpose == purpose else { continue }
                entry.state = .failed
                entry.lastError = "withdrawn: the customer stopped allowing \(channel.rawValue) for \(purpose.rawValue) at \(now) before it was sent"
                entry.updatedAt = now
                try tx.updateOutboxEntry(entry)
            }
        }
    }

    /// The current consent of a customer: the latest statement per channel and purpose.
    public func consents(of id: CustomerID) async throws(RapportError) -> [Consent] {
        try await read { tx in currentConsents(try tx.consents(of: try tx.activeCustomer(id).id)) }
    }

    /// Every consent statement of a customer, oldest first.
    public func consentHistory(of id: CustomerID) async throws(RapportError) -> [Consent] {
        try await read { tx in try tx.consents(of: try tx.activeCustomer(id).id).map(\.consent) }
    }

    /// Whether the customer currently allows contact through `channel` for `purpose`, as the outbox decides: a
    /// grant allows; without a statement, transactional messages are allowed (a refusal stops them) and marketing
    /// and profiling are not.
    public func hasConsent(_ id: CustomerID, channel: ConsentChannel, purpose: ConsentPurpose) async throws(RapportError) -> Bool {
        WriteSession.allows(try await consents(of: id), channel: channel, purpose: purpose)
    }

    /// A page of a customer's interactions, newest first.
    public func interactions(of id: CustomerID, page: PageRequest = PageRequest()) async throws(RapportError)
        -> (interactions: [Interaction], nextPageToken: String?)
    {
        let size = try PageToken.pageSize(page.size)
        return try await read { tx in
            let customer = try tx.activeCustomer(id).id
            let before = try page.token.map { token throws(RapportError) in try PageToken.decodeTimelinePosition(token, .interactions, of: customer, requested: id) }
            let records = try tx.interactions(of: customer, before: before, limit: size + 1)
            let pageRecords = records.prefix(size)
            let next = records.count > size
                ? pageRecords.last.map { PageToken.encode(TimelinePosition(time: $0.interaction.occurredAt, sequence: $0.sequence), .interactions, of: customer) }
                : nil
            return (pageRecords.map(\.interaction), next)
        }
    }
}
