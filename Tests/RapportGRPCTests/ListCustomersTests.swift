import Foundation
import GRPCCore
import GRPCProtobuf
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf
import Testing

@Suite("ListCustomers over gRPC: paging, filter, order_by")
struct ListCustomersTests {
    /// 23 customers; some share a creation time, every fourth is a VIP, stages take turns.
    static func seed(_ c: Harness) async throws -> [Rapport_V1_Customer] {
        let stages: [Rapport_V1_LifecycleStage] = [.prospect, .active, .loyal, .atRisk, .unspecified]
        var created: [Rapport_V1_Customer] = []
        for index in 0..<23 {
            if index % 3 != 2 { c.clock.advance(by: .seconds(60)) }  // every third shares the previous one's time
            created.append(
                try await c.customers.createCustomer(
                    .with {
                        $0.customer = .with {
                            $0.givenName = "Customer \(index)"
                            $0.tags = index % 4 == 0 ? ["vip"] : []
                            $0.lifecycleStage = stages[index % stages.count]
                            $0.identities = [.email("c\(index)@example.com")]
                        }
                    }))
        }
        return created
    }

    /// Every page of a listing, with the tokens checked on the way.
    static func all(_ c: Harness, size: Int32, filter: String = "", orderBy: String = "", sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> [Rapport_V1_Customer]
    {
        var result: [Rapport_V1_Customer] = []
        var token = ""
        var pages = 0
        repeat {
            let page = try await c.customers.listCustomers(
                .with { $0.pageSize = size; $0.pageToken = token; $0.filter = filter; $0.orderBy = orderBy })
            pages += 1
            #expect(page.customers.count <= Int(size), sourceLocation: sourceLocation)
            if !page.nextPageToken.isEmpty { #expect(page.customers.count == Int(size), "only the last page is short", sourceLocation: sourceLocation) }
            result += page.customers
            token = page.nextPageToken
        } while !token.isEmpty && pages < 100
        return result
    }

    static func byCreateTime(_ a: Rapport_V1_Customer, _ b: Rapport_V1_Customer) -> Bool {
        (a.createTime.seconds, a.id) < (b.createTime.seconds, b.id)
    }

    @Test func pagingVisitsEveryCustomerExactlyOnce() async throws {
        try await withRapport { c in
            let created = try await Self.seed(c)
            let ids = created.sorted(by: Self.byCreateTime).map(\.id)
            for size: Int32 in [1, 5, 7, 22, 23, 1000] {
                let listed = try await Self.all(c, size: size)
                #expect(listed.map(\.id) == ids, "page_size \(size)")
            }
            #expect(try await Self.all(c, size: 5) == created.sorted(by: Self.byCreateTime))
            // 0 means 50: one page.
            let defaultPage = try await c.customers.listCustomers(.init())
            #expect(defaultPage.customers.map(\.id) == ids)
            #expect(defaultPage.nextPageToken.isEmpty)

            let descending = try await Self.all(c, size: 4, orderBy: "create_time desc")
            #expect(descending.map(\.id) == ids.reversed())

            // A customer created between two pages shows up once, at the end.
            let first = try await c.customers.listCustomers(.with { $0.pageSize = 10 })
            c.clock.advance(by: .seconds(60))
            let late = try await c.customers.createCustomer(.with { $0.customer = .with { $0.identities = [.email("late@example.com")] } })
            var seen = first.customers.map(\.id)
            var token = first.nextPageToken
            while !token.isEmpty {
                let page = try await c.customers.listCustomers(.with { $0.pageSize = 10; $0.pageToken = token })
                seen += page.customers.map(\.id)
                token = page.nextPageToken
            }
            #expect(seen == ids + [late.id])
        }
    }

    @Test func orderByUpdateTime() async throws {
        try await withRapport { c in
            let created = try await Self.seed(c)
            c.clock.advance(by: .seconds(3600))
            // Touch two early customers: they move to the end of an update_time listing.
            for customer in [created[3], created[1]] {
                c.clock.advance(by: .seconds(1))
                _ = try await c.customers.updateCustomer(
                    .with { $0.customer = .with { $0.id = customer.id; $0.tags = ["touched"] }; $0.updateMask = .with { $0.paths = ["tags"] } })
            }
            let untouched = created.filter { $0.id != created[1].id && $0.id != created[3].id }.sorted(by: Self.byCreateTime).map(\.id)
            let listed = try await Self.all(c, size: 6, orderBy: "update_time")
            #expect(listed.map(\.id) == untouched + [created[3].id, created[1].id])
            let descending = try await Self.all(c, size: 6, orderBy: "update_time desc")
            #expect(descending.map(\.id) == listed.map(\.id).reversed())
        }
    }

    @Test func filters() async throws {
        try await withRapport { c in
            let created = try await Self.seed(c).sorted(by: Self.byCreateTime)
            let vips = created.filter { $0.tags.contains("vip") }.map(\.id)
            #expect(vips.count == 6)
            #expect(try await Self.all(c, size: 4, filter: "tags:vip").map(\.id) == vips)
            #expect(try await Self.all(c, size: 4, filter: "tags:nobody").isEmpty)

            let activeOrLoyal = created.filter { [.active, .loyal].contains($0.lifecycleStage) }.map(\.id)
            #expect(try await Self.all(c, size: 4, filter: "lifecycle_stage=(active,loyal)").map(\.id) == activeOrLoyal)
            let activeVIPs = created.filter { $0.lifecycleStage == .active && $0.tags.contains("vip") }.map(\.id)
            #expect(!activeVIPs.isEmpty)
            #expect(try await Self.all(c, size: 2, filter: "tags:vip AND lifecycle_stage=active").map(\.id) == activeVIPs)

            // A time window, in RFC 3339, with paging and a descending order.
            let from = created[5].createTime.seconds
            let until = created[15].createTime.seconds
            let window = created.filter { $0.createTime.seconds >= from && $0.createTime.seconds < until }.map(\.id)
            let filter = "create_time>=\(Self.rfc3339(from)) AND create_time<\(Self.rfc3339(until))"
            #expect(try await Self.all(c, size: 3, filter: filter, orderBy: "create_time desc").map(\.id) == window.reversed())
            #expect(try await Self.all(c, size: 3, filter: "update_time>=\(Self.rfc3339(until))").map(\.id) == created.filter { $0.updateTime.seconds >= until }.map(\.id))
        }
    }

    static func rfc3339(_ seconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    @Test func badListingsAreInvalidArguments() async throws {
        try await withRapport { c in
            _ = try await Self.seed(c)
            for filter in ["bogus", "tags:", "lifecycle_stage=sleepy", "create_time>=yesterday", "name=Ada"] {
                let error = await expectRPCError(.invalidArgument) { try await c.customers.listCustomers(.with { $0.filter = filter }) }
                #expect(violationFields(error) == ["filter"], "filter \(filter)")
                #expect(error?.message.contains("filter") == true)
            }
            for orderBy in ["name", "create_time sideways", "create_time desc extra"] {
                let error = await expectRPCError(.invalidArgument) { try await c.customers.listCustomers(.with { $0.orderBy = orderBy }) }
                #expect(violationFields(error) == ["order_by"], "order_by \(orderBy)")
            }
            let negative = await expectRPCError(.invalidArgument) { try await c.customers.listCustomers(.with { $0.pageSize = -1 }) }
            #expect(violationFields(negative) == ["page_size"])
            let garbage = await expectRPCError(.invalidArgument) { try await c.customers.listCustomers(.with { $0.pageToken = "%%% not a token" }) }
            #expect(violationFields(garbage) == ["page_token"])
            // A token is bound to its order.
            let ascending = try await c.customers.listCustomers(.with { $0.pageSize = 5 })
            let mixed = await expectRPCError(.invalidArgument) {
                try await c.customers.listCustomers(.with { $0.pageSize = 5; $0.pageToken = ascending.nextPageToken; $0.orderBy = "update_time" })
            }
            #expect(violationFields(mixed) == ["page_token"])
        }
    }
}
