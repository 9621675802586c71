import Foundation
import Rapport
import RapportCore
import RapportSQLite
import Testing

@Suite("Data export")
struct PrivacyTests {
    @Test func anUndoneMergeInAnExportLeavesTheOtherPersonOut() async throws {
        let (crm, clock) = try makeEngine(.memory)
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Ada"), identities: [.email("ada@example.com")]))
        clock.advance(by: .seconds(60))
        let bea = try await crm.createCustomer(
            NewCustomer(profile: CustomerProfile(givenName: "Bea", addresses: [PostalAddress(line1: "2 High St", city: "Bath", country: "GB")]),
                        identities: [.email("bea@example.com")]))
        let merge = try await crm.mergeCustomers(ada.id, bea.id)
        #expect(try await crm.exportCustomer(ada.id).merges.first?.absorbedBefore.profile.givenName == "Bea")  // one person while merged
        _ = try await crm.unmerge(merge.merge.id)
        let export = try await crm.exportCustomer(ada.id)
        #expect(export.merges.map(\.id) == [merge.merge.id])
        #expect(export.merges.first?.absorbedBefore.id == bea.id)
        #expect(export.merges.first?.absorbedBefore.profile == CustomerProfile())
        #expect(export.merges.first?.absorbedBefore.version == 0)
        #expect(export.merges.first?.absorbedBefore.createdAt == Timestamp(millisecondsSinceEpoch: 0))
        let json = String(decoding: try JSONEncoder().encode(export), as: UTF8.self)
        #expect(!json.contains("Bea") && !json.contains("Bath"))
    }

    @Test(arguments: Backend.allCases)
    func anExportHoldsTheMergesThePersonWasAbsorbedByAndTheirEarlierProfiles(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Ada"), identities: [.email("ada@example.com")]))
        clock.advance(by: .seconds(60))
        let bea = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Bea"), identities: [.email("bea@example.com")]))
        clock.advance(by: .seconds(60))
        _ = try await crm.updateCustomer(bea.id) { $0.familyName = "Jones" }
        let merge = try await crm.mergeCustomers(ada.id, bea.id)
        // An edit while merged is logged (an unmerge replays it): the export holds it with the value then.
        _ = try await crm.updateCustomer(ada.id) { $0.familyName = "Lovelace" }
        _ = try await crm.updateCustomer(ada.id) { $0.familyName = "King" }
        _ = try await crm.unmerge(merge.merge.id)

        // Bea's export names the merge she was absorbed by, with her profile as it was and not Ada's.
        let export = try await crm.exportCustomer(bea.id)
        #expect(export.merges.map(\.id) == [merge.merge.id])
        #expect(export.merges.first?.absorbedBefore.profile.familyName == "Jones")
        #expect(export.merges.first?.survivorBefore.profile == CustomerProfile())
        #expect(export.profileChanges.isEmpty)
        let json = String(decoding: try JSONEncoder().encode(export), as: UTF8.self)
        #expect(!json.contains("Ada") && !json.contains("Lovelace") && !json.contains("King"))
        // Ada's holds her edits, with the values they set.
        let adas = try await crm.exportCustomer(ada.id)
        #expect(adas.profileChanges.map(\.profile.familyName) == ["Lovelace", "King"])
        #expect(adas.profileChanges.map(\.fields) == [[.familyName], [.familyName]])
        #expect(adas.merges.first?.absorbedBefore.profile == CustomerProfile())
    }

    @Test(arguments: Backend.allCases)
    func anExportHoldsEverythingAboutThePersonAndTheCustomersMergedIntoThem(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.createRule(
            RuleDefinition(
                name: "Notify", trigger: .event(type: "visit"),
                actions: [.sendMessage(MessageAction(channel: .email, purpose: .transactional, template: "visit", subject: "{{ event.id }}"))]))
        let buyers = try await crm.createSegment(.dynamic(key: "buyers", name: "Buyers", expression: "stats.order_count > 0"))
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Ada"), identities: [.email("ada@example.com")]))
        clock.advance(by: .seconds(60))
        let bob = try await crm.createCustomer(NewCustomer(identities: [.phone("+14155550123"), .email("bob@example.com")]))
        _ = try await crm.ingest([
            order("o-1", at: clock.now(), .email("ada@example.com"), totalMinor: 2500), event("v-ada", "visit", at: clock.now(), .email("ada@example.com")),
            event("v-bob", "visit", at: clock.now(), .phone("+14155550123")),
        ])
        _ = try await crm.recordInteraction(InteractionInput(customerID: bob.id, channel: .phone, direction: .inbound, subject: "Returns"))
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .marketing, status: .granted, source: "form"))
        clock.advance(by: .seconds(60))
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .marketing, status: .revoked, source: "link"))
        let merge = try await crm.mergeCustomers(ada.id, bob.id)
        // Someone else's data stays out.
        _ = try await crm.ingest([event("v-cy", "visit", at: clock.now(), .email("cy@example.com"))])

        let export = try await crm.exportCustomer(ada.id)
        #expect(export.exportedAt == clock.now())
        #expect(export.customer.id == ada.id)
        #expect(Set(export.customer.identities.map(\.key)) == ["email:ada@example.com", "email:bob@example.com", "phone:+14155550123"])
        #expect(export.mergedCustomers == [bob.id])
        #expect(export.stats.orderCount == 1)
        #expect(export.orders.map(\.key.externalID) == ["o-1"])
        #expect(Set(export.events.map(\.id)) == ["v-ada", "v-bob"])
        #expect(export.interactions.map(\.subject) == ["Returns"])
        #expect(export.consentHistory.map(\.status) == [.granted, .revoked])
        #expect(export.merges.map(\.id) == [merge.merge.id])
        #expect(export.segments.map(\.segmentID) == [buyers.id])
        #expect(Set(export.ruleRuns.map(\.eventID)) == ["v-ada", "v-bob"])
        #expect(Set(export.messages.map(\.customerID)) == [ada.id, bob.id])
        #expect(export.messages.count == 2)
        // As JSON, for the person who asked.
        let json = String(decoding: try JSONEncoder().encode(export), as: UTF8.self)
        #expect(json.contains("ada@example.com") && !json.contains("cy@example.com"))

        // The merged customer's id exports the person; an erased one exports nothing.
        #expect(try await crm.exportCustomer(bob.id) == export)
        try await crm.deleteCustomer(ada.id)
        await expectError(.notFound(entity: "customer", id: ada.id.rawValue)) { try await crm.exportCustomer(ada.id) }
    }
}

extension PrivacyTests {
    /// An erasure on SQLite leaves no copy in the database file or its log: deleted rows are zeroed, and the log
    /// (which keeps pages as they were) is emptied.
    @Test func anErasureLeavesNoCopyInTheDatabaseFiles() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rapport-erase-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("crm.sqlite").path
        let store = try SQLiteStore(path: path)
        let crm = RapportEngine(store: store, clock: ManualClock(now: start), logger: quietLogger)
        _ = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Keeper-4417"), identities: [.email("keeper-4417@example.com")]))
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Adalind-8812"), identities: [.email("erase-me-7391@example.com")]))
        _ = try await crm.ingest([event("e1", "note.added", at: start, .email("erase-me-7391@example.com"), properties: ["note": .string("secret-note-5521")])])
        try await crm.deleteCustomer(ada.id)
        func files() -> Data { [path, path + "-wal"].compactMap { FileManager.default.contents(atPath: $0) }.reduce(Data(), +) }
        for secret in ["erase-me-7391", "secret-note-5521", "Adalind-8812"] {
            #expect(files().range(of: Data(secret.utf8)) == nil, "\(secret) is still in the files")
        }
        #expect(files().range(of: Data("keeper-4417".utf8)) != nil, "what was kept is found: the search works")
        try store.close()
    }
}

extension PrivacyTests {
    /// A record that named two people while they were merged stays with one of them after the unmerge: erasing the
    /// other takes their identities out of it.
    @Test(arguments: Backend.allCases)
    func anErasureTakesThePersonsIdentitiesOutOfRecordsTheyShared(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        clock.advance(by: .seconds(1))
        _ = try await crm.createCustomer(NewCustomer(identities: [.email("bea@example.com")]))
        let result = try await crm.ingest([
            event("both", "page.viewed", at: clock.now(), .email("ada@example.com"), .email("bea@example.com")),
            order("o1", at: clock.now(), .email("ada@example.com"), .email("bea@example.com")),
        ])
        _ = try await crm.unmerge(try #require(result.merges.first))
        let bea = try #require(try await crm.findCustomer(.email("bea@example.com")))
        #expect(try await crm.event("both").customerID == ada.id)
        // Ada's export holds her records, not Bea's e-mail on them.
        let before = try await crm.exportCustomer(ada.id)
        #expect(before.events.first { $0.id == "both" }?.identities == [Identity(kind: .email, value: "ada@example.com")])
        #expect(!String(describing: before).contains("bea@example.com"))
        let cursor = try #require(try await crm.changes(after: 0, limit: 1000).last).cursor
        try await crm.deleteCustomer(bea.id)
        #expect(try await crm.event("both").identities == [Identity(kind: .email, value: "ada@example.com")])
        // A mirror of Ada's records is told they changed.
        #expect(try await crm.changes(after: cursor).map(\.kind) == [.activityRecorded, .customerDeleted])
        let orders = try await crm.customer360(ada.id).recentOrders
        #expect(orders.map(\.identities) == [[Identity(kind: .email, value: "ada@example.com")]])
        let export = try await crm.exportCustomer(ada.id)
        #expect(!String(describing: export).contains("bea@example.com"))
    }
}

extension PrivacyTests {
    /// Through a chain of merges: Bea into Ada, Ada into Dan; a record naming Dan and Bea stays with Dan after both
    /// unmerges, and loses Bea's e-mail when she is erased.
    @Test(arguments: Backend.allCases)
    func anErasureFollowsMergesThroughOthers(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        var ids: [CustomerID] = []
        for name in ["dan", "ada", "bea"] {
            ids.append(try await crm.createCustomer(NewCustomer(identities: [.email("\(name)@example.com")])).id)
            clock.advance(by: .seconds(1))
        }
        let (dan, ada, bea) = (ids[0], ids[1], ids[2])
        let first = try await crm.mergeCustomers(ada, bea).merge
        let second = try await crm.mergeCustomers(dan, ada).merge
        _ = try await crm.ingest([event("both", "page.viewed", at: clock.now(), .email("dan@example.com"), .email("bea@example.com"))])
        _ = try await crm.unmerge(second.id)
        _ = try await crm.unmerge(first.id)
        #expect(try await crm.event("both").customerID == dan)
        try await crm.deleteCustomer(bea)
        #expect(try await crm.event("both").identities == [Identity(kind: .email, value: "dan@example.com")])
    }
}

extension PrivacyTests {
    /// A message the survivor's rule made while the person was merged into it may hold what of theirs the merged
    /// profile showed (here her name): erasing her empties it, and one not sent yet does not go out.
    @Test(arguments: Backend.allCases)
    func anErasureEmptiesMessagesMadeWhileThePersonWasMergedIntoAnother(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.createRule(
            RuleDefinition(
                name: "Thanks", trigger: .event(type: "visit"),
                actions: [.sendMessage(MessageAction(channel: .email, purpose: .transactional, template: "thanks", subject: "Thanks, {{ customer.given_name ?? \"you\" }}"))]))
        let carl = try await crm.createCustomer(NewCustomer(identities: [.email("carl@example.com")]))
        clock.advance(by: .seconds(1))
        let bob = try await crm.createCustomer(NewCustomer(identities: [.email("bob@example.com")]))
        clock.advance(by: .seconds(1))
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Ada"), identities: [.email("x.ada@example.com")]))  // Bob's e-mail stays the one written to
        _ = try await crm.ingest([event("before", "visit", at: clock.now(), .email("bob@example.com"))])
        clock.advance(by: .seconds(1))
        let merge = try await crm.mergeCustomers(bob.id, ada.id).merge
        _ = try await crm.ingest([event("merged", "visit", at: clock.now(), .email("bob@example.com"))])
        clock.advance(by: .seconds(1))
        _ = try await crm.unmerge(merge.id)
        let subjects = try await crm.outboxEntries(customer: bob.id).entries.map { entry -> String in
            if case .message(let message) = entry.payload { message.subject } else { "" }
        }
        #expect(subjects == ["Thanks, you", "Thanks, Ada"])
        _ = try await crm.mergeCustomers(carl.id, bob.id)  // Bob's address is Carl's to hold now: still Bob's own
        try await crm.deleteCustomer(ada.id)
        let entries = try await crm.outboxEntries(customer: bob.id).entries
        // Bob's message from before the merge is his alone and stays.
        #expect(entries.map(\.state) == [.pending, .failed])
        #expect(entries.last?.lastError.hasPrefix("erased:") == true)
        #expect(!String(describing: entries).contains("Ada"))
        if case .message(let message) = entries.last?.payload { #expect(message.recipient == "bob@example.com") }  // his own
        #expect(try await crm.leaseOutbox(consumer: "mailer").count == 1)
    }

    /// The answer kept for a retried lease of such a message (leased with a request id after the unmerge) is
    /// emptied with the message: a retry is refused rather than given what it held.
    @Test(arguments: Backend.allCases)
    func anErasureEmptiesTheKeptAnswerOfALeaseOfAMessageMadeWhileMerged(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.createRule(
            RuleDefinition(
                name: "Thanks", trigger: .event(type: "visit"),
                actions: [.sendMessage(MessageAction(channel: .email, purpose: .transactional, template: "thanks", subject: "Thanks, {{ customer.given_name ?? \"you\" }}"))]))
        let bob = try await crm.createCustomer(NewCustomer(identities: [.email("bob@example.com")]))
        clock.advance(by: .seconds(1))
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Ada"), identities: [.email("x.ada@example.com")]))
        let merge = try await crm.mergeCustomers(bob.id, ada.id).merge
        _ = try await crm.ingest([event("merged", "visit", at: clock.now(), .email("bob@example.com"))])
        clock.advance(by: .seconds(1))
        _ = try await crm.unmerge(merge.id)
        clock.advance(by: .seconds(3600))
        let leased = try await crm.leaseOutbox(consumer: "mailer", leaseDuration: .seconds(7200), requestID: "lease-1")
        #expect(leased.count == 1)
        #expect(String(describing: leased).contains("Thanks, Ada"))
        try await crm.deleteCustomer(ada.id)
        let retry = await captureError { try await crm.leaseOutbox(consumer: "mailer", leaseDuration: .seconds(7200), requestID: "lease-1") }
        #expect(retry?.description.contains("held data of a customer erased since") == true)
    }

    /// A message written while merged to the person's address, which was then removed through the survivor, stays
    /// with the survivor after the unmerge (the address names no one): erasing her empties its address too.
    @Test(arguments: Backend.allCases)
    func anErasureEmptiesTheAddressOfAMessageToThePersonLeftWithAnother(_ backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.createRule(
            RuleDefinition(
                name: "Thanks", trigger: .event(type: "visit"),
                actions: [.sendMessage(MessageAction(channel: .email, purpose: .transactional, template: "thanks"))]))
        let bob = try await crm.createCustomer(NewCustomer(identities: [.email("bob@example.com")]))
        clock.advance(by: .seconds(1))
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))  // sorts first: written to
        let merge = try await crm.mergeCustomers(bob.id, ada.id).merge
        _ = try await crm.ingest([event("merged", "visit", at: clock.now(), .email("bob@example.com"))])
        _ = try await crm.removeIdentity(.email("ada@example.com"), from: bob.id)
        _ = try await crm.unmerge(merge.id)
        var recipients = try await crm.outboxEntries(customer: bob.id).entries.map { entry -> String in
            if case .message(let message) = entry.payload { message.recipient } else { "" }
        }
        #expect(recipients == ["ada@example.com"])
        try await crm.deleteCustomer(ada.id)
        recipients = try await crm.outboxEntries(customer: bob.id).entries.map { entry -> String in
            if case .message(let message) = entry.payload { message.recipient } else { "" }
        }
        #expect(recipients == [""])
    }
}

extension PrivacyTests {
    /// A phone an older version stored with the trunk 0 (`+490301234567`) is the number records since name as
    /// `+49301234567`: an erasure takes it out of a record another customer kept in either spelling.
    @Test(arguments: Backend.allCases)
    func anErasureTakesAPhoneOutOfSharedRecordsInEitherSpelling(_ backend: Backend) async throws {
        let clock = ManualClock(now: start)
        let crm = RapportEngine(store: try backend.makeStore(), clock: clock, ids: SequentialIDGenerator(), defaultPhoneRegion: "DE", logger: quietLogger)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        clock.advance(by: .seconds(1))
        _ = try await crm.createCustomer(NewCustomer(identities: [.email("bea@example.com"), .phone("030 1234567")]))
        let legacy = Identity(kind: .phone, value: "+490301234567")
        try await crm.store.write { tx in
            try tx.deleteIdentity(Identity(kind: .phone, value: "+49301234567"))
            let bea = try #require(try tx.identity(Identity(kind: .email, value: "bea@example.com"))).customerID
            try tx.insertIdentity(IdentityRecord(identity: legacy, customerID: bea, homeCustomerID: bea, createdAt: start))
        }
        let result = try await crm.ingest([event("call", "call.received", at: clock.now(), .email("ada@example.com"), .phone("030 1234567"))])
        _ = try await crm.unmerge(try #require(result.merges.first))
        #expect(try await crm.event("call").customerID == ada.id)
        #expect(try await crm.event("call").identities.contains(Identity(kind: .phone, value: "+49301234567")))
        let bea = try #require(try await crm.findCustomer(.email("bea@example.com")))
        try await crm.deleteCustomer(bea.id)
        #expect(try await crm.event("call").identities == [Identity(kind: .email, value: "ada@example.com")])
    }
}
