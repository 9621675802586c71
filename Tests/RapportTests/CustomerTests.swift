import Foundation
import Rapport
import RapportCore
import Testing

@Suite("Customers")
struct CustomerTests {
    @Test func createNormalizesIdentitiesAndProfile() async throws {
        let (crm, _) = try makeEngine()
        let ada = try await crm.createCustomer(
            NewCustomer(
                profile: CustomerProfile(givenName: "  Ada ", familyName: "Lovelace", tags: ["vip", "newsletter", "vip"]),
                identities: [.email(" Ada@Example.COM "), .phone("(415) 555-0123"), .externalID("8812", source: "Shopify")]))
        #expect(ada.profile.givenName == "Ada")
        #expect(ada.profile.tags == ["newsletter", "vip"])
        #expect(ada.emails == ["ada@example.com"])
        #expect(ada.phones == ["+14155550123"])
        #expect(ada.identities.contains(Identity(kind: .externalID, source: "shopify", value: "8812")))
        #expect(ada.version == 1)
        #expect(try await crm.customer(ada.id) == ada)
        #expect(try await crm.findCustomer(.email("ADA@example.com"))?.id == ada.id)
        #expect(try await crm.findCustomer(.email("nobody@example.com")) == nil)
    }

    @Test func anIdentityBelongsToOneCustomer() async throws {
        let (crm, _) = try makeEngine()
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        let error = await captureError { try await crm.createCustomer(NewCustomer(identities: [.phone("+1 415 555 0199"), .email("ADA@example.com")])) }
        #expect(error?.fieldViolations.map(\.field) == ["identities[1]"])
        #expect(error?.description.contains(ada.id.rawValue) == true)
        // The position is the request's, duplicates included.
        let later = await captureError {
            try await crm.createCustomer(NewCustomer(identities: [.phone("+1 415 555 0199"), .phone("(415) 555-0199"), .email("ADA@example.com")]))
        }
        #expect(later?.fieldViolations.map(\.field) == ["identities[2]"])
        // Nothing of the failed call was kept: the phone is free and there is still one customer.
        #expect(try await crm.findCustomer(.phone("+1 415 555 0199")) == nil)
        #expect(try await crm.customerCount() == 1)
    }

    @Test func invalidInputNamesEveryField() async throws {
        let (crm, _) = try makeEngine()
        let error = await captureError {
            try await crm.createCustomer(
                NewCustomer(
                    profile: CustomerProfile(timeZone: "Mars/Olympus", attributes: ["shoe_size": .int(42)]),
                    identities: [.email("not-an-email"), .phone("12")]))
        }
        #expect(Set(error?.fieldViolations.map(\.field) ?? []) == ["identities[0].value", "identities[1].value", "time_zone", "attributes.shoe_size"])
        let profileError = await captureError {
            try await crm.createCustomer(NewCustomer(profile: CustomerProfile(timeZone: "Mars/Olympus", attributes: ["shoe_size": .int(42)])))
        }
        #expect(Set(profileError?.fieldViolations.map(\.field) ?? []) == ["time_zone", "attributes.shoe_size"])
        #expect(try await crm.customerCount() == 0)
    }

    @Test func attributesFollowTheirDeclaration() async throws {
        let (crm, _) = try makeEngine()
        _ = try await crm.defineAttribute(AttributeDefinition(key: "shoe_size", type: .decimal, description: "EU size"))
        _ = try await crm.defineAttribute(AttributeDefinition(key: "vip_since", type: .timestamp))
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(attributes: ["shoe_size": .decimal(38.5)])))
        #expect(ada.profile.attributes["shoe_size"] == .decimal(38.5))

        let mistyped = await captureError {
            try await crm.updateCustomer(ada.id, set: CustomerProfile(attributes: ["shoe_size": .string("big")]), fields: [.attribute("shoe_size")])
        }
        #expect(mistyped?.fieldViolations == [FieldViolation(field: "attributes.shoe_size", problem: "must be decimal, got string")])
        // A whole number is a decimal (JSON and proto clients send `42`), stored as one.
        let whole = try await crm.updateCustomer(ada.id, set: CustomerProfile(attributes: ["shoe_size": .int(42)]), fields: [.attribute("shoe_size")])
        #expect(whole.profile.attributes["shoe_size"] == .decimal(42))
        let bob = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(attributes: ["shoe_size": .int(44)])))
        #expect(bob.profile.attributes["shoe_size"] == .decimal(44))
        let notTimestamp = await captureError {
            try await crm.updateCustomer(ada.id, set: CustomerProfile(attributes: ["vip_since": .int(1)]), fields: [.attribute("vip_since")])
        }
        #expect(notTimestamp?.fieldViolations == [FieldViolation(field: "attributes.vip_since", problem: "must be timestamp, got int")])
        // An instant outside the years 1 to 9999 could be stored but not read back over gRPC, nor scheduled on.
        for millis in [Int64.max, Timestamp.latest.millisecondsSinceEpoch + 1, Timestamp.earliest.millisecondsSinceEpoch - 1, Int64.min] {
            let outside = await captureError {
                try await crm.updateCustomer(ada.id, set: CustomerProfile(attributes: ["vip_since": .timestamp(Timestamp(millisecondsSinceEpoch: millis))]), fields: [.attribute("vip_since")])
            }
            #expect(outside?.fieldViolations == [FieldViolation(field: "attributes.vip_since", problem: "is outside the years 1 to 9999 (UTC) that Rapport keeps")])
        }
        for edge in [Timestamp.latest, Timestamp.earliest] {
            let kept = try await crm.updateCustomer(ada.id, set: CustomerProfile(attributes: ["vip_since": .timestamp(edge)]), fields: [.attribute("vip_since")])
            #expect(kept.profile.attributes["vip_since"] == .timestamp(edge))
        }

        await expectError(.failedPrecondition("attribute 'shoe_size' is declared as decimal; its type cannot change to int")) {
            try await crm.defineAttribute(AttributeDefinition(key: "shoe_size", type: .int))
        }
        let badKey = await captureError { try await crm.defineAttribute(AttributeDefinition(key: "Shoe Size", type: .int)) }
        #expect(badKey?.fieldViolations.first?.field == "key")
        #expect(try await crm.attributeDefinitions().map(\.key) == ["shoe_size", "vip_since"])
    }

    @Test func updateChecksTheEtagAndTouchesOnlyMaskedFields() async throws {
        let (crm, clock) = try makeEngine()
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Ada", familyName: "Byron", locale: "en-GB")))
        clock.advance(by: .seconds(60))
        var changes = CustomerProfile()
        changes.familyName = "Lovelace"
        changes.locale = "fr-FR"  // not in the mask: must not change
        let updated = try await crm.updateCustomer(ada.id, set: changes, fields: [.familyName], ifMatch: ada.etag)
        #expect(updated.profile.familyName == "Lovelace")
        #expect(updated.profile.locale == "en-GB")
        #expect(updated.profile.givenName == "Ada")
        #expect(updated.version == 2)
        #expect(updated.updatedAt == start + .seconds(60))

        // The etag read before the update is stale now.
        await expectError(.etagMismatch(entity: "customer", id: ada.id.rawValue, expected: ada.etag, actual: "\"2\"")) {
            try await crm.updateCustomer(ada.id, set: CustomerProfile(givenName: "Eve"), fields: [.givenName], ifMatch: ada.etag)
        }
        #expect(try await crm.customer(ada.id).profile.givenName == "Ada")

        // An update that changes nothing keeps the version.
        let same = try await crm.updateCustomer(ada.id, set: changes, fields: [.familyName], ifMatch: updated.etag)
        #expect(same.version == 2)

        let closure = try await crm.updateCustomer(ada.id) { $0.tags.append("vip") }
        #expect(closure.profile.tags == ["vip"])
        #expect(closure.version == 3)

        await expectError(.invalid("update_mask", "names no field to update")) {
            try await crm.updateCustomer(ada.id, set: changes, fields: [])
        }
        await expectError(.invalid("etag", "'abc' is not an etag returned by Rapport")) {
            try await crm.updateCustomer(ada.id, set: changes, fields: [.givenName], ifMatch: "abc")
        }
        // A field built in Swift that names nothing is refused, not ignored.
        let unknown = await captureError { try await crm.updateCustomer(ada.id, set: changes, fields: [CustomerField(path: "nickname")]) }
        #expect(unknown?.fieldViolations.map(\.field) == ["update_mask"])
        let badKey = await captureError { try await crm.updateCustomer(ada.id, set: changes, fields: [.attribute("Bad Key")]) }
        #expect(badKey?.fieldViolations.map(\.field) == ["update_mask"])
    }

    /// A birthday still to come everywhere on Earth is refused (a year typed wrong); one that began in UTC+14 is not.
    @Test func aBirthdayInTheFutureIsRefused() async throws {
        let (crm, clock) = try makeEngine()  // 2026-01-01T00:00Z: already the 1st in Kiribati, not yet the 2nd
        let future = await captureError {
            try await crm.createCustomer(NewCustomer(profile: CustomerProfile(birthday: LocalDate(year: 2026, month: 1, day: 2))))
        }
        #expect(future?.fieldViolations.map(\.field) == ["birthday"])
        let born = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(birthday: LocalDate(year: 2026, month: 1, day: 1))))
        let yearless = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(birthday: LocalDate(month: 12, day: 31))))
        #expect(yearless.profile.birthday == LocalDate(month: 12, day: 31))
        let update = await captureError {
            try await crm.updateCustomer(born.id, set: CustomerProfile(birthday: LocalDate(year: 2099, month: 5, day: 1)), fields: [.birthday])
        }
        #expect(update?.fieldViolations.map(\.field) == ["birthday"])
        clock.advance(by: .seconds(86_400))
        #expect(try await crm.createCustomer(NewCustomer(profile: CustomerProfile(birthday: LocalDate(year: 2026, month: 1, day: 2)))).version == 1)
    }

    /// Names are kept composed, and no profile text may hold NUL; a list attribute holds at most 1,000 items of at
    /// most 1,000 characters.
    @Test func profileTextIsComposedAndBounded() async throws {
        let (crm, _) = try makeEngine()
        _ = try await crm.defineAttribute(AttributeDefinition(key: "interests", type: .stringList))
        _ = try await crm.defineAttribute(AttributeDefinition(key: "note", type: .string))
        let decomposed = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Rene\u{301}e")))
        #expect(decomposed.profile.givenName.unicodeScalars.count == 5)
        let error = await captureError {
            try await crm.createCustomer(
                NewCustomer(
                    profile: CustomerProfile(
                        givenName: "A\u{0}da",
                        attributes: [
                            "interests": .stringList(Array(repeating: "shoes", count: 1_001)), "note": .string("a\u{0}b"),
                        ])))
        }
        #expect(Set(error?.fieldViolations.map(\.field) ?? []) == ["given_name", "attributes.interests", "attributes.note"])
        let long = await captureError {
            try await crm.createCustomer(NewCustomer(profile: CustomerProfile(attributes: ["interests": .stringList(["ok", String(repeating: "x", count: 1_001)])])))
        }
        #expect(long?.fieldViolations.map(\.field) == ["attributes.interests[1]"])
        #expect(try await crm.customerCount() == 1)
    }

    @Test func identitiesCanBeAddedAndRemoved() async throws {
        let (crm, _) = try makeEngine()
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        let bob = try await crm.createCustomer(NewCustomer(identities: [.email("bob@example.com")]))
        let withPhone = try await crm.addIdentity(.phone("+44 20 7946 0958"), to: ada.id, ifMatch: ada.etag)
        #expect(withPhone.phones == ["+442079460958"])
        #expect(withPhone.version == ada.version + 1)
        await expectError(.alreadyExists(entity: "identity", id: "email:bob@example.com")) {
            try await crm.addIdentity(.email("bob@example.com"), to: ada.id)
        }
        let without = try await crm.removeIdentity(.email("ada@example.com"), from: ada.id)
        #expect(without.emails.isEmpty)
        await expectError(.notFound(entity: "identity", id: "email:bob@example.com")) {
            try await crm.removeIdentity(.email("bob@example.com"), from: ada.id)
        }
        #expect(try await crm.customer(bob.id).emails == ["bob@example.com"])
    }

    /// Versions before 2026-12 kept the trunk 0 written after a country code (`+49 030 1234567` → `+490301234567`).
    /// Such a stored phone is still the customer's: found, resolved, owned and removable by any spelling.
    @Test(arguments: Backend.allCases)
    func aPhoneStoredWithTheTrunkZeroAfterTheCountryCodeStillResolves(backend: Backend) async throws {
        let clock = ManualClock(now: start)
        let crm = RapportEngine(store: try backend.makeStore(), clock: clock, ids: SequentialIDGenerator(), defaultPhoneRegion: "DE", logger: quietLogger)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com"), .phone("+49 030 1234567")]))
        #expect(ada.phones == ["+49301234567"])
        // As an older version stored it.
        let legacy = Identity(kind: .phone, value: "+490301234567")
        try await crm.store.write { tx in
            try tx.deleteIdentity(Identity(kind: .phone, value: "+49301234567"))
            try tx.insertIdentity(IdentityRecord(identity: legacy, customerID: ada.id, homeCustomerID: ada.id, createdAt: start))
        }
        for spelling in ["030 1234567", "+49 30 1234567", "+49 030 1234567", "0049 (0)30 1234567"] {
            #expect(try await crm.findCustomer(.phone(spelling))?.id == ada.id, "\(spelling)")
        }
        _ = try await crm.createRule(
            RuleDefinition(name: "Call back", trigger: .event(type: "call.received"), actions: [.sendMessage(MessageAction(channel: .sms, purpose: .transactional, template: "callback"))]))
        let result = try await crm.ingest([.event(EventInput(id: "call-1", type: "call.received", occurredAt: start, channel: .callCenter, identities: [.phone("030 1234567")]))])
        #expect(result.acceptedCount == 1)
        #expect(try await crm.customerCount() == 1)
        #expect(try await crm.customer(ada.id).phones == [legacy.value])  // not a second spelling of the same number
        // A text goes to the number as it is dialled.
        let entries = try await crm.outboxEntries().entries
        #expect(entries.count == 1)
        guard case .message(let message)? = entries.first?.payload else { Issue.record("no message queued"); return }
        #expect(message.recipient == "+49301234567")
        let error = await captureError { try await crm.createCustomer(NewCustomer(identities: [.phone("+49 30 1234567")])) }
        #expect(error?.fieldViolations.map(\.field) == ["identities[0]"])
        let bob = try await crm.createCustomer(NewCustomer(identities: [.email("bob@example.com")]))
        await expectError(.alreadyExists(entity: "identity", id: "phone:+49301234567")) { try await crm.addIdentity(.phone("030 1234567"), to: bob.id) }
        #expect(try await crm.addIdentity(.phone("030 1234567"), to: ada.id).phones == [legacy.value])
        #expect(try await crm.removeIdentity(.phone("+49 30 1234567"), from: ada.id).phones == [])
        #expect(try await crm.findCustomer(.phone("030 1234567")) == nil)
        // An older version could store both spellings, for two customers: each removes its own.
        _ = try await crm.addIdentity(.phone("030 1234567"), to: bob.id)
        try await crm.store.write { tx in
            try tx.insertIdentity(IdentityRecord(identity: legacy, customerID: ada.id, homeCustomerID: ada.id, createdAt: start))
        }
        #expect(try await crm.removeIdentity(.phone("030 1234567"), from: ada.id).phones == [])
        #expect(try await crm.customer(bob.id).phones == ["+49301234567"])
    }

    /// Versions before 2026-12 dropped a number's own leading 0 written in brackets where 0 is no trunk prefix
    /// (`+39 (0)6 1234 5678` → `+39612345678`): such a stored phone is still found by the spellings of the number.
    @Test(arguments: Backend.allCases)
    func aPhoneStoredWithoutItsBracketedZeroStillResolves(backend: Backend) async throws {
        let (crm, _) = try makeEngine(backend)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        try await crm.store.write { tx in
            try tx.insertIdentity(IdentityRecord(identity: Identity(kind: .phone, value: "+39612345678"), customerID: ada.id, homeCustomerID: ada.id, createdAt: start))
        }
        for spelling in ["+39 (0)6 1234 5678", "+39 06 1234 5678", "0039 06 1234 5678"] {
            #expect(try await crm.findCustomer(.phone(spelling))?.id == ada.id, "\(spelling)")
        }
    }

    @Test(arguments: Backend.allCases)
    func deleteErasesEverythingTheCustomerOwns(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        let ada = try await crm.createCustomer(NewCustomer(identities: [.email("ada@example.com")]))
        let other = try await crm.createCustomer(NewCustomer(identities: [.email("other@example.com")]))
        _ = try await crm.ingest([
            event("e1", at: start, .email("ada@example.com")), order("o1", at: start, .email("ada@example.com")),
            event("e2", at: start, .email("other@example.com")),
        ])
        _ = try await crm.recordConsent(ConsentInput(customerID: ada.id, channel: .email, purpose: .marketing, status: .granted, source: "checkout"))
        _ = try await crm.recordInteraction(InteractionInput(customerID: ada.id, channel: .chat, direction: .inbound, subject: "Hi"))
        clock.advance(by: .seconds(1))
        await expectError(.etagMismatch(entity: "customer", id: ada.id.rawValue, expected: "\"99\"", actual: "\"1\"")) {
            try await crm.deleteCustomer(ada.id, ifMatch: "\"99\"")
        }
        try await crm.deleteCustomer(ada.id)
        await expectError(.notFound(entity: "customer", id: ada.id.rawValue)) { try await crm.customer(ada.id) }
        await expectError(.notFound(entity: "event", id: "e1")) { try await crm.event("e1") }
        await expectError(.notFound(entity: "order", id: "web/o1")) { try await crm.order(OrderKey(source: "web", externalID: "o1")) }
        #expect(try await crm.findCustomer(.email("ada@example.com")) == nil)
        // The other customer is untouched.
        #expect(try await crm.event("e2").customerID == other.id)
        #expect(try await crm.customerCount() == 1)
    }

    @Test(arguments: Backend.allCases)
    func listingPagesThroughEveryCustomerOnce(backend: Backend) async throws {
        let (crm, clock) = try makeEngine(backend)
        var created: [CustomerID] = []
        for index in 0..<23 {
            let tags = index % 6 == 0 ? ["vip", "new"] : index % 3 == 0 ? ["vip"] : []
            created.append(try await crm.createCustomer(NewCustomer(profile: CustomerProfile(tags: tags))).id)
            if index % 2 == 0 { clock.advance(by: .seconds(1)) }  // ties in created_at are broken by id
        }
        for descending in [false, true] {
            var seen: [CustomerID] = []
            var token: String?
            repeat {
                let page = try await crm.listCustomers(order: CustomerOrder(.createdAt, descending: descending), page: PageRequest(size: 5, token: token))
                #expect(page.customers.count <= 5)
                seen += page.customers.map(\.id)
                token = page.nextPageToken
            } while token != nil
            #expect(seen == (descending ? created.reversed() : created))
        }
        let vips = try await crm.listCustomers(filter: CustomerFilter(tags: ["vip"]), page: PageRequest(size: 100))
        #expect(vips.customers.map(\.id) == created.enumerated().filter { $0.offset % 3 == 0 }.map(\.element))
        #expect(vips.nextPageToken == nil)
        // A tag is trimmed in a filter as it is when stored, in Swift and in filter text.
        #expect(try await crm.listCustomers(filter: CustomerFilter(tags: [" vip "]), page: PageRequest(size: 100)).customers == vips.customers)
        #expect(try await crm.listCustomers(filter: CustomerFilter(parsing: #"tags:" vip""#), page: PageRequest(size: 100)).customers == vips.customers)

        let first = try await crm.listCustomers(page: PageRequest(size: 2))
        // The page says where the change feed stood: a change made after it is after that cursor.
        #expect(try await first.changeCursor == crm.changes(after: 0, limit: 1000).last?.cursor)
        let later = try await crm.createCustomer(NewCustomer())
        #expect(try await crm.changes(after: first.changeCursor).map(\.customerID) == [later.id])
        await expectError(.invalid("page_token", "was made for another order_by; start again without a token")) {
            try await crm.listCustomers(order: CustomerOrder(.updatedAt), page: PageRequest(size: 2, token: first.nextPageToken))
        }
        await expectError(.invalid("page_token", "is not a valid page token")) {
            try await crm.listCustomers(page: PageRequest(size: 2, token: "%%%"))
        }
        // A token is for what a filter selects, however its conditions were written; not for another filter.
        let both = try await crm.listCustomers(filter: CustomerFilter(tags: ["vip", "new"]), page: PageRequest(size: 2))
        let token: String = try #require(both.nextPageToken)
        _ = try await crm.listCustomers(filter: CustomerFilter(tags: ["new", "vip", "new"]), page: PageRequest(size: 2, token: token))
        await expectError(.invalid("page_token", "was made for another request of a customer listing (another customer, segment or filter); start again without a token")) {
            try await crm.listCustomers(filter: CustomerFilter(tags: ["vip"]), page: PageRequest(size: 2, token: first.nextPageToken))
        }
        await expectError(.invalid("page_size", "must not be negative, got -1")) { try await crm.listCustomers(page: PageRequest(size: -1)) }
    }
}

/// A clock a test sets anywhere, back too: the time a call read before it waited for the writer.
final class SettableClock: RapportClock, @unchecked Sendable {
    nonisolated(unsafe) var time: Timestamp
    init(_ time: Timestamp) { self.time = time }
    func now() -> Timestamp { time }
}

extension CustomerTests {
    @Test(arguments: Backend.allCases)
    func anUpdateTimeNeverGoesBack(backend: Backend) async throws {
        let clock = SettableClock(start + .seconds(60))
        let crm = RapportEngine(store: try backend.makeStore(), clock: clock, logger: quietLogger)
        let ada = try await crm.createCustomer(NewCustomer(profile: CustomerProfile(givenName: "Ada"), identities: [.email("ada@example.com")]))
        // Committed at 60 s by one call; another read the clock at 30 s, before it waited for the writer.
        clock.time = start + .seconds(30)
        let updated = try await crm.updateCustomer(ada.id, set: CustomerProfile(familyName: "Lovelace"), fields: [.familyName])
        #expect(updated.version == 2)
        #expect(updated.updatedAt == start + .seconds(60))
        _ = try await crm.ingest([event("e1", at: start, .email("ada@example.com"), .email("ada.l@example.com"))])
        let found = try await crm.customer(ada.id)
        #expect(found.version == 3)
        #expect(found.updatedAt == start + .seconds(60))
    }
}
