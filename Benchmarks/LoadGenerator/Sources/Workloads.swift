import Foundation
import GRPCCore
import SwiftProtobuf

/// The calls the scenarios make, and seeding.
struct Workloads: Sendable {
    let metadata: Metadata
    let options: CallOptions

    init(adminKey: String) {
        metadata = ["authorization": "Bearer \(adminKey)"]
        var options = CallOptions.defaults
        options.timeout = .seconds(60)
        self.options = options
    }

    static func email(_ number: Int) -> String { "load-\(number)@example.com" }

    /// One event per customer, `batch` to a call: returns the customer ids in order.
    func seed(_ client: Client, customers: Int, batch: Int) async throws -> [String] {
        let ingest = Rapport_V1_IngestService.Client(wrapping: client)
        let now = Date().timeIntervalSince1970
        var ids: [String] = []
        ids.reserveCapacity(customers)
        for first in stride(from: 0, to: customers, by: batch) {
            var request = Rapport_V1_IngestEventsRequest()
            request.mode = .allOrNothing
            request.items = (first..<min(customers, first + batch)).map { number in
                var event = Rapport_V1_EventInput()
                event.id = "seed-\(number)"
                event.type = "account.created"
                event.occurTime = Google_Protobuf_Timestamp(roundingTimeIntervalSince1970: now - 86_400)
                event.channel = .web
                event.identities = [.with { $0.kind = .email; $0.value = Self.email(number) }]
                return .with { $0.event = event }
            }
            let response = try await ingest.ingestEvents(request, metadata: metadata, options: options)
            guard response.acceptedCount == request.items.count else {
                throw ServerError("seeding: \(response.acceptedCount) of \(request.items.count) accepted: \(response.results.first(where: { !$0.violations.isEmpty }).map { "\($0)" } ?? "")")
            }
            ids += response.results.map(\.customerID)
        }
        guard Set(ids).count == customers else { throw ServerError("seeding: \(Set(ids).count) distinct customers instead of \(customers)") }
        return ids
    }

    /// The health service's Check: the transport's own limit (no key, no store).
    func check() -> @Sendable (Client, inout WorkerState) async throws -> Void {
        let request = Grpc_Health_V1_HealthCheckRequest()
        let options = options
        return { client, _ in
            let response = try await Grpc_Health_V1_Health.Client(wrapping: client).check(request, options: options)
            guard response.status == .serving else { throw ServerError("health: \(response.status)") }
        }
    }

    /// GetCustomer of a random seeded customer.
    func getCustomer(ids: [String]) -> @Sendable (Client, inout WorkerState) async throws -> Void {
        let metadata = metadata, options = options
        return { client, state in
            var request = Rapport_V1_GetCustomerRequest()
            request.id = ids[Int(state.random.next() % UInt64(ids.count))]
            let customer = try await Rapport_V1_CustomerService.Client(wrapping: client)
                .getCustomer(request, metadata: metadata, options: options)
            guard customer.id == request.id else { throw ServerError("GetCustomer \(request.id) returned \(customer.id)") }
        }
    }

    /// IngestEvents of `batch` new events (unique ids), each from a random seeded customer known by e-mail, with a
    /// `product.viewed`/`cart.updated`/... type and one string property. The events come from 16 prepared batches;
    /// only their ids change from call to call, so the client spends little CPU building requests.
    func ingest(run: Int, customers: Int, batch: Int, requestIDs: Bool) -> @Sendable (Client, inout WorkerState) async throws -> Void {
        var random = SplitMix64(seed: 0x5EED_0000 &+ UInt64(run))
        let types = ["product.viewed", "cart.updated", "checkout.started", "page.viewed"]
        let now = Date().timeIntervalSince1970
        let templates: [Rapport_V1_IngestEventsRequest] = (0..<16).map { _ in
            var request = Rapport_V1_IngestEventsRequest()
            request.items = (0..<batch).map { index in
                var event = Rapport_V1_EventInput()
                event.type = types[index % types.count]
                event.occurTime = Google_Protobuf_Timestamp(roundingTimeIntervalSince1970: now - Double(random.next() % 3_600))
                event.channel = index % 3 == 0 ? .app : .web
                event.identities = [.with { $0.kind = .email; $0.value = Self.email(Int(random.next() % UInt64(customers))) }]
                event.properties = ["sku": .with { $0.stringValue = "SKU-\(random.next() % 5_000)" }]
                return .with { $0.event = event }
            }
            return request
        }
        let metadata = metadata, options = options
        return { client, state in
            var request = templates[(state.index &+ state.sequence) % templates.count]
            let prefix = "r\(run)-w\(state.index)-s\(state.sequence)-"
            state.sequence += 1
            for index in request.items.indices { request.items[index].event.id = prefix + String(index) }
            if requestIDs { request.requestID = prefix + "batch" }
            let response = try await Rapport_V1_IngestService.Client(wrapping: client)
                .ingestEvents(request, metadata: metadata, options: options)
            guard response.acceptedCount == request.items.count else {
                let problem = response.results.first(where: { $0.outcome != .accepted }).map { "\($0)" } ?? ""
                throw ServerError("IngestEvents: \(response.acceptedCount) of \(request.items.count) accepted: \(problem)")
            }
        }
    }
}
