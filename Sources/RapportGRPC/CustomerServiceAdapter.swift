import GRPCCore
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf

/// `rapport.v1.CustomerService` over the engine.
struct CustomerServiceAdapter: Rapport_V1_CustomerService.SimpleServiceProtocol {
    let engine: RapportEngine

    func getCustomer(request: Rapport_V1_GetCustomerRequest, context: ServerContext) async throws -> Rapport_V1_Customer {
        try await engine.customer(parseID(CustomerID.self, request.id, field: "id")).proto
    }

    func findCustomer(request: Rapport_V1_FindCustomerRequest, context: ServerContext) async throws -> Rapport_V1_Customer {
        guard request.hasIdentity else { throw RapportError.invalid("identity", "is required") }
        let identity = try identityInput(request.identity, field: "identity")
        guard let customer = try await renamingFields(under("identity"), { try await engine.findCustomer(identity) }) else {
            throw RapportError.notFound(entity: "customer with identity", id: Caller.seesPersonalData ? request.identity.value : Mask.text)
        }
        return customer.proto
    }

    func listCustomers(request: Rapport_V1_ListCustomersRequest, context: ServerContext) async throws -> Rapport_V1_ListCustomersResponse {
        let filter = try CustomerFilter(parsing: request.filter)
        let order = try CustomerOrder(parsing: request.orderBy)
        let page = try await engine.listCustomers(filter: filter, order: order, page: pageRequest(size: request.pageSize, token: request.pageToken))
        return .with {
            $0.customers = page.customers.map(\.proto)
            $0.nextPageToken = page.nextPageToken ?? ""
            $0.changeCursor = page.changeCursor
        }
    }

    func createCustomer(request: Rapport_V1_CreateCustomerRequest, context: ServerContext) async throws -> Rapport_V1_Customer {
        var validator = Validator()
        let newProfile = validator.capture("") { () throws(RapportError) in try profile(request.customer) }
        let identities = validator.capture("") { () throws(RapportError) in try identityInputs(request.customer.identities, field: "customer.identities") }
        try validator.check()
        return try await renamingFields(under("customer", except: ["request_id"])) {
            try await engine.createCustomer(NewCustomer(profile: newProfile!, identities: identities!), requestID: request.requestID).proto
        }
    }

    func updateCustomer(request: Rapport_V1_UpdateCustomerRequest, context: ServerContext) async throws -> Rapport_V1_Customer {
        let id = try parseID(CustomerID.self, request.customer.id, field: "customer.id")
        let fields = try customerFields(request.updateMask)
        let values = try profile(request.customer)
        return try await renamingFields(under("customer", except: ["update_mask", "request_id"])) {
            try await engine.updateCustomer(
                id, set: values, fields: fields, ifMatch: request.customer.etag.isEmpty ? nil : request.customer.etag, requestID: request.requestID
            ).proto
        }
    }

    func deleteCustomer(request: Rapport_V1_DeleteCustomerRequest, context: ServerContext) async throws -> Google_Protobuf_Empty {
        try await engine.deleteCustomer(
            parseID(CustomerID.self, request.id, field: "id"), ifMatch: request.etag.isEmpty ? nil : request.etag, requestID: request.requestID)
        return Google_Protobuf_Empty()
    }

    func addIdentity(request: Rapport_V1_AddIdentityRequest, context: ServerContext) async throws -> Rapport_V1_Customer {
        let id = try parseID(CustomerID.self, request.customerID, field: "customer_id")
        let identity = try identityInput(request.identity, field: "identity")
        return try await renamingFields(under("identity", except: ["etag", "request_id"])) {
            try await engine.addIdentity(identity, to: id, ifMatch: request.etag.isEmpty ? nil : request.etag, requestID: request.requestID).proto
        }
    }

    func removeIdentity(request: Rapport_V1_RemoveIdentityRequest, context: ServerContext) async throws -> Rapport_V1_Customer {
        let id = try parseID(CustomerID.self, request.customerID, field: "customer_id")
        let identity = try identityInput(request.identity, field: "identity")
        return try await renamingFields(under("identity", except: ["etag", "request_id"])) {
            try await engine.removeIdentity(identity, from: id, ifMatch: request.etag.isEmpty ? nil : request.etag, requestID: request.requestID).proto
        }
    }

    func defineAttribute(request: Rapport_V1_DefineAttributeRequest, context: ServerContext) async throws -> Rapport_V1_AttributeDefinition {
        let definition = AttributeDefinition(
            key: request.definition.key, type: try AttributeType(request.definition.type, field: "definition.type"),
            description: request.definition.description_p)
        return try await renamingFields(under("definition", except: ["request_id"])) {
            try await engine.defineAttribute(definition, requestID: request.requestID).proto
        }
    }

    func listAttributeDefinitions(request: Rapport_V1_ListAttributeDefinitionsRequest, context: ServerContext) async throws
        -> Rapport_V1_ListAttributeDefinitionsResponse
    {
        let definitions = try await engine.attributeDefinitions()
        return .with { $0.definitions = definitions.map(\.proto) }
    }
}
