import GRPCCore
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf

/// `rapport.v1.PrivacyService` over the engine.
struct PrivacyServiceAdapter: Rapport_V1_PrivacyService.SimpleServiceProtocol {
    let engine: RapportEngine

    func exportCustomer(request: Rapport_V1_ExportCustomerRequest, context: ServerContext) async throws -> Rapport_V1_CustomerExport {
        let export = try await engine.exportCustomer(try parseID(CustomerID.self, request.customerID, field: "customer_id"))
        return .with {
            $0.exportTime = export.exportedAt.proto
            $0.customer = export.customer.proto
            $0.mergedCustomerIds = export.mergedCustomers.map(\.rawValue)
            $0.stats = export.stats.proto
            $0.orders = export.orders.map(\.proto)
            $0.events = export.events.map(\.proto)
            $0.interactions = export.interactions.map(\.proto)
            $0.consentHistory = export.consentHistory.map(\.proto)
            $0.merges = export.merges.map(\.proto)
            $0.segments = export.segments.map(\.proto)
            $0.ruleRuns = export.ruleRuns.map(\.proto)
            $0.messages = export.messages.map(\.proto)
        }
    }
}
