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
            $0.profileChanges = export.profileChanges.map { change in
                .with {
                    $0.customerID = change.customerID.rawValue
                    $0.changeTime = change.at.proto
                    $0.fields = change.fields.map(\.path).sorted()
                    $0.values = Customer(id: change.customerID, profile: change.profile, identities: [], createdAt: change.at, updatedAt: change.at, version: 0).proto
                    $0.values.clearCreateTime()
                    $0.values.clearUpdateTime()
                    $0.values.etag = ""
                }
            }
            $0.mergeProfiles = export.merges.map { merge in
                .with {
                    $0.mergeID = merge.id.rawValue
                    $0.survivorBefore = merge.survivorBefore.remembered
                    $0.absorbedBefore = merge.absorbedBefore.remembered
                }
            }
        }
    }
}

extension CustomerRecord {
    /// The profile a merge remembers, as a customer message without identities.
    fileprivate var remembered: Rapport_V1_Customer {
        // Version 0: another person's customer in an undone merge, of whom only the id is shown.
        guard version > 0 else { return .with { $0.id = id.rawValue } }
        return Customer(id: id, profile: profile, identities: [], createdAt: createdAt, updatedAt: updatedAt, version: version).proto
    }
}
