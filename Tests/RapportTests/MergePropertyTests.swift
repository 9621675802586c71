import Foundation
import Rapport
import RapportCore
import Testing

/// Merging and unmerging random customers, with ingest in between, must end where a world without merges ends.
@Suite("Merge properties")
struct MergePropertyTests {
    /// What a customer looks like, leaving out what merges legitimately move: versions, sequence numbers, order ids.
    struct Observed: Hashable {
        var profile: CustomerProfile
        var fieldTimes: [String: Timestamp]
        var createdAt: Timestamp
        var identities: [String]
        var stats: CustomerStats?
        var events: [String]
        var orders: [String]
        var consents: [String]
    }

    func observe(_ crm: RapportEngine, _ id: CustomerID) async throws -> Observed {
        let snap = try await snapshot(crm, id)
        return Observed(
            profile: snap.record.profile, fieldTimes: snap.record.fieldTimes, createdAt: snap.record.createdAt,
            identities: snap.identities.map { "\($0.identity.key)@\($0.homeCustomerID)" }, stats: snap.stats,
            events: snap.events.map(\.event.id), orders: snap.orders.map { "\($0.order.key)/\($0.order.status)/\($0.order.total)" },
            consents: snap.consents.map { "\($0.consent.channel)/\($0.consent.status)" })
    }

    /// A script of operations; the same script runs in two worlds, one of which skips the merges.
    enum Step {
        case ingest([IngestItem])
        case merge(Int, Int)
        case unmergeSome(Int)
        case advance(Int)
    }

    func randomWorld(seed: UInt64) -> (customers: [NewCustomer], steps: [Step]) {
        var rng = SplitMix64(seed: seed)
        let count = Int.random(in: 3...6, using: &rng)
        let names = ["Ada", "Bea", "Cy", "Dee", "", ""]
        var customers: [NewCustomer] = []
        for index in 0..<count {
            var profile = CustomerProfile(givenName: names.randomElement(using: &rng)!, tags: Bool.random(using: &rng) ? ["t\(index % 3)"] : [])
            if Bool.random(using: &rng) { profile.locale = ["en-US", "de-DE"].randomElement(using: &rng)! }
            if Bool.random(using: &rng) { profile.attributes["score"] = .int(Int64.random(in: 0...9, using: &rng)) }
            var identities: [IdentityInput] = [.email("c\(index)@example.com")]
            if Bool.random(using: &rng) { identities.append(.phone("+1415555\(String(format: "%04d", index))")) }
            customers.append(NewCustomer(profile: profile, identities: identities))
        }
        var steps: [Step] = []
        var eventNumber = 0
        // Who placed each order: its later states come with the same buyer (another one's identity would merge them).
        var orderOwners: [Int: Int] = [:]
        func randomItems() -> [IngestItem] {
            (0..<Int.random(in: 1...4, using: &rng)).map { _ in
                eventNumber += 1
                let owner = Int.random(in: 0..<count, using: &rng)
                let time = start + .seconds(Int64(eventNumber))
                switch Int.random(in: 0..<3, using: &rng) {
                case 0:
                    orderOwners[eventNumber] = owner
                    return order("o\(eventNumber)", at: time, .email("c\(owner)@example.com"), totalMinor: Int64.random(in: 100...900, using: &rng))
                case 1:
                    let number = Int.random(in: 1...max(1, eventNumber), using: &rng)
                    let buyer = orderOwners[number, default: owner]
                    orderOwners[number] = buyer
                    return order("o\(number)", at: time, .email("c\(buyer)@example.com"), status: .cancelled)
                default: return event("e\(eventNumber)", at: time, .email("c\(owner)@example.com"))
                }
            }
        }
        steps.append(.ingest(randomItems()))
        for _ in 0..<Int.random(in: 3...8, using: &rng) {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0, 1: steps.append(.merge(Int.random(in: 0..<count, using: &rng), Int.random(in: 0..<count, using: &rng)))
            case 2: steps.append(.ingest(randomItems()))
            default: steps.append(.advance(Int.random(in: 1...100, using: &rng)))
            }
        }
        steps.append(.unmergeSome(Int.random(in: 0..<1000, using: &rng)))
        return (customers, steps)
    }

    /// Runs the script; with `merging` false the merges are skipped.
    func run(_ backend: Backend, seed: UInt64, merging: Bool) async throws -> [Observed] {
        let (crm, clock) = try makeEngine(backend)
        _ = try await crm.defineAttribute(AttributeDefinition(key: "score", type: .int))
        let (inputs, steps) = randomWorld(seed: seed)
        var ids: [CustomerID] = []
        for input in inputs {
            ids.append(try await crm.createCustomer(input).id)
            clock.advance(by: .seconds(1))
        }
        var merges: [MergeID] = []
        for step in steps {
            switch step {
            case .ingest(let items):
                // Orders are cancelled only if they exist; unknown ones are simply new orders in both worlds.
                _ = try await crm.ingest(items)
            case .merge(let first, let second):
                guard merging else { continue }
                let a = try await crm.customer(ids[first]).id
                let b = try await crm.customer(ids[second]).id
                guard a != b else { continue }
                merges.append(try await crm.mergeCustomers(a, b).merge.id)
            case .advance(let seconds):
                clock.advance(by: .seconds(Int64(seconds)))
            case .unmergeSome(let seed):
                // Undo every merge, each time picking one whose survivor is active, in a seeded random order.
                var rng = SplitMix64(seed: UInt64(seed))
                var pending = merges
                while !pending.isEmpty {
                    var undoable: [Int] = []
                    for (index, id) in pending.enumerated() {
                        let merge = try await crm.merge(id)
                        if try await crm.customer(merge.survivorID).id == merge.survivorID { undoable.append(index) }
                    }
                    let pick = undoable.randomElement(using: &rng)!
                    _ = try await crm.unmerge(pending.remove(at: pick))
                }
            }
        }
        var observed: [Observed] = []
        for id in ids { observed.append(try await observe(crm, id)) }
        return observed
    }

    @Test(arguments: Backend.allCases, Array(UInt64(1)...UInt64(12)))
    func mergeThenUnmergeEndsWhereNoMergeEnds(backend: Backend, seed: UInt64) async throws {
        let withMerges = try await run(backend, seed: seed, merging: true)
        let without = try await run(backend, seed: seed, merging: false)
        #expect(withMerges.count == without.count)
        for (index, pair) in zip(withMerges, without).enumerated() {
            #expect(pair.0 == pair.1, "customer \(index) differs (seed \(seed))")
        }
    }
}
