import RapportCore
import RapportProto
import SwiftProtobuf
import Rapport

extension OrderStatus {
    init(_ proto: Rapport_V1_OrderStatus, field: String) throws(RapportError) {
        switch proto {
        case .unspecified, .placed: self = .placed
        case .paid: self = .paid
        case .shipped: self = .shipped
        case .delivered: self = .delivered
        case .cancelled: self = .cancelled
        case .refunded: self = .refunded
        case .UNRECOGNIZED(let value): throw .invalid(field, "\(value) is not an order status")
        }
    }

    var proto: Rapport_V1_OrderStatus {
        switch self {
        case .placed: .placed
        case .paid: .paid
        case .shipped: .shipped
        case .delivered: .delivered
        case .cancelled: .cancelled
        case .refunded: .refunded
        }
    }
}

func ingestItems(_ protos: [Rapport_V1_IngestItem]) -> [Result<IngestItem, RapportError>] {
    protos.map { proto in
        do throws(RapportError) {
            return .success(try ingestItem(proto))
        } catch {
            return .failure(error)
        }
    }
}

/// An event of a request; field names are the event message's own (`occur_time`, `identities[0].kind`).
func eventInput(_ event: Rapport_V1_EventInput) throws(RapportError) -> EventInput {
    var validator = Validator()
    let channel = validator.capture("") { () throws(RapportError) in try Channel(event.channel, field: "channel") }
    let identities = validator.capture("") { () throws(RapportError) in try identityInputs(event.identities, field: "identities") }
    let properties = validator.capture("") { () throws(RapportError) in try attributes(event.properties, field: "properties") }
    var occurredAt: Timestamp?
    if !event.hasOccurTime {
        validator.add("occur_time", "is required")
    } else {
        occurredAt = validator.capture("") { () throws(RapportError) in try Timestamp(event.occurTime, field: "occur_time") }
    }
    try validator.check()
    return EventInput(id: event.id, type: event.type, occurredAt: occurredAt!, channel: channel!, identities: identities!, properties: properties!)
}

func ingestItem(_ proto: Rapport_V1_IngestItem) throws(RapportError) -> IngestItem {
    switch proto.item {
    case .event(let event):
        return .event(try eventInput(event))
    case .order(let order):
        var validator = Validator()
        let channel = validator.capture("") { () throws(RapportError) in try Channel(order.channel, field: "channel") }
        let identities = validator.capture("") { () throws(RapportError) in try identityInputs(order.identities, field: "identities") }
        let status = validator.capture("") { () throws(RapportError) in try OrderStatus(order.status, field: "status") }
        var placedAt: Timestamp?
        if !order.hasPlaceTime {
            validator.add("place_time", "is required")
        } else {
            placedAt = validator.capture("") { () throws(RapportError) in try Timestamp(order.placeTime, field: "place_time") }
        }
        let statusChangedAt = order.hasStatusTime ? validator.capture("") { () throws(RapportError) in try Timestamp(order.statusTime, field: "status_time") } : nil
        try validator.check()
        return .order(
            OrderInput(
                // UNSPECIFIED: OTHER for a new order, the known channel for a later state (proto3 cannot tell "not
                // sent" from the first value).
                source: order.source, externalID: order.externalID, channel: order.channel == .unspecified ? nil : channel!, identities: identities!,
                lines: order.lines.map { OrderLine(sku: $0.sku, name: $0.name, quantity: $0.quantity, unitPriceMinor: $0.unitPriceMinor) },
                currency: order.currency, discountMinor: order.discountMinor, shippingMinor: order.shippingMinor, taxMinor: order.taxMinor,
                status: status!, placedAt: placedAt!, statusChangedAt: statusChangedAt))
    case nil:
        throw .invalid("item", "holds neither an event nor an order")
    }
}

extension IngestOutcome {
    func proto(index: Int) -> Rapport_V1_ItemResult {
        .with {
            $0.index = Int64(index)
            switch self {
            case .accepted(let customer):
                $0.outcome = .accepted
                $0.customerID = customer.rawValue
            case .updated(let customer):
                $0.outcome = .updated
                $0.customerID = customer.rawValue
            case .duplicate(let customer):
                $0.outcome = .duplicate
                $0.customerID = customer.rawValue
            case .rejected(let violations):
                $0.outcome = .rejected
                $0.violations = violations.map(\.proto)
            }
        }
    }
}

extension FieldViolation {
    var proto: Rapport_V1_FieldViolation { .with { $0.field = field; $0.description_p = problem } }
}

extension Event {
    var proto: Rapport_V1_Event {
        let unmasked = Caller.seesPersonalData
        return .with {
            $0.id = id
            $0.type = type
            $0.occurTime = occurredAt.proto
            $0.channel = channel.proto
            $0.identities = identities.map { (unmasked ? $0 : Mask.identity($0)).proto }
            $0.properties = properties.mapValues(\.proto)
            $0.customerID = customerID.rawValue
            $0.receiveTime = receivedAt.proto
        }
    }
}

extension Order {
    var proto: Rapport_V1_Order {
        let unmasked = Caller.seesPersonalData
        return .with {
            $0.id = id.rawValue
            $0.source = key.source
            $0.externalID = key.externalID
            $0.channel = channel.proto
            $0.customerID = customerID.rawValue
            $0.identities = identities.map { (unmasked ? $0 : Mask.identity($0)).proto }
            $0.lines = lines.map { line in
                .with {
                    $0.sku = line.sku
                    $0.name = line.name
                    $0.quantity = line.quantity
                    $0.unitPriceMinor = line.unitPriceMinor
                }
            }
            $0.subtotal = subtotal.proto
            $0.discount = discount.proto
            $0.shipping = shipping.proto
            $0.tax = tax.proto
            $0.total = total.proto
            $0.status = status.proto
            $0.statusHistory = statusHistory.map { change in
                .with {
                    $0.status = change.status.proto
                    $0.time = change.at.proto
                    $0.estimated = change.estimated
                }
            }
            $0.placeTime = placedAt.proto
            $0.updateTime = updatedAt.proto
        }
    }
}

extension CustomerStats {
    var proto: Rapport_V1_CustomerStats {
        .with {
            $0.customerID = customerID.rawValue
            $0.orderCount = orderCount
            $0.spent = spent.map { total in
                .with {
                    $0.total = total.total.proto
                    $0.orderCount = total.orderCount
                    $0.averageOrderValue = total.averageOrderValue.proto
                }
            }
            if let firstOrderAt { $0.firstOrderTime = firstOrderAt.proto }
            if let lastOrderAt { $0.lastOrderTime = lastOrderAt.proto }
            $0.eventCount = eventCount
            if let lastSeenAt { $0.lastSeenTime = lastSeenAt.proto }
        }
    }
}

extension InteractionChannel {
    init(_ proto: Rapport_V1_InteractionChannel, field: String) throws(RapportError) {
        switch proto {
        case .email: self = .email
        case .phone: self = .phone
        case .chat: self = .chat
        case .store: self = .store
        case .social: self = .social
        case .app: self = .app
        case .unspecified, .UNRECOGNIZED: throw .invalid(field, "an interaction needs a channel")
        }
    }

    var proto: Rapport_V1_InteractionChannel {
        switch self {
        case .email: .email
        case .phone: .phone
        case .chat: .chat
        case .store: .store
        case .social: .social
        case .app: .app
        }
    }
}

extension InteractionDirection {
    init(_ proto: Rapport_V1_InteractionDirection, field: String) throws(RapportError) {
        switch proto {
        case .inbound: self = .inbound
        case .outbound: self = .outbound
        case .unspecified, .UNRECOGNIZED: throw .invalid(field, "an interaction needs a direction (INBOUND or OUTBOUND)")
        }
    }

    var proto: Rapport_V1_InteractionDirection { self == .inbound ? .inbound : .outbound }
}

extension Interaction {
    var proto: Rapport_V1_Interaction {
        let unmasked = Caller.seesPersonalData
        return .with {
            $0.id = id.rawValue
            $0.customerID = customerID.rawValue
            $0.channel = channel.proto
            $0.direction = direction.proto
            $0.subject = subject
            $0.summary = unmasked || summary.isEmpty ? summary : Mask.text
            $0.agent = agent
            $0.occurTime = occurredAt.proto
        }
    }
}

extension ConsentChannel {
    init(_ proto: Rapport_V1_ConsentChannel, field: String) throws(RapportError) {
        switch proto {
        case .email: self = .email
        case .sms: self = .sms
        case .push: self = .push
        case .phone: self = .phone
        case .unspecified, .UNRECOGNIZED: throw .invalid(field, "a consent needs a channel (EMAIL, SMS, PUSH, PHONE)")
        }
    }

    var proto: Rapport_V1_ConsentChannel {
        switch self {
        case .email: .email
        case .sms: .sms
        case .push: .push
        case .phone: .phone
        }
    }
}

extension ConsentPurpose {
    init(_ proto: Rapport_V1_ConsentPurpose, field: String) throws(RapportError) {
        switch proto {
        case .marketing: self = .marketing
        case .transactional: self = .transactional
        case .profiling: self = .profiling
        case .unspecified, .UNRECOGNIZED: throw .invalid(field, "a consent needs a purpose (MARKETING, TRANSACTIONAL, PROFILING)")
        }
    }

    var proto: Rapport_V1_ConsentPurpose {
        switch self {
        case .marketing: .marketing
        case .transactional: .transactional
        case .profiling: .profiling
        }
    }
}

extension ConsentStatus {
    init(_ proto: Rapport_V1_ConsentStatus, field: String) throws(RapportError) {
        switch proto {
        case .granted: self = .granted
        case .denied: self = .denied
        case .revoked: self = .revoked
        case .unspecified, .UNRECOGNIZED: throw .invalid(field, "a consent needs a status (GRANTED, DENIED, REVOKED)")
        }
    }

    var proto: Rapport_V1_ConsentStatus {
        switch self {
        case .granted: .granted
        case .denied: .denied
        case .revoked: .revoked
        }
    }
}

extension Consent {
    var proto: Rapport_V1_Consent {
        .with {
            $0.id = id.rawValue
            $0.customerID = customerID.rawValue
            $0.channel = channel.proto
            $0.purpose = purpose.proto
            $0.status = status.proto
            $0.source = source
            $0.occurTime = occurredAt.proto
            $0.recordTime = recordedAt.proto
        }
    }
}

extension MergeRecord {
    var proto: Rapport_V1_Merge {
        .with {
            $0.id = id.rawValue
            $0.survivorID = survivorID.rawValue
            $0.absorbedID = absorbedID.rawValue
            switch reason {
            case .manual: $0.reason = .manual
            case .sharedIdentity(let recordID):
                $0.reason = .sharedIdentity
                $0.recordID = recordID
            }
            $0.mergeTime = mergedAt.proto
            if let unmergedAt { $0.unmergeTime = unmergedAt.proto }
        }
    }
}

extension TimelineEntry {
    var proto: Rapport_V1_TimelineEntry {
        .with {
            switch self {
            case .event(let event): $0.event = event.proto
            case .order(let order): $0.order = order.proto
            case .interaction(let interaction): $0.interaction = interaction.proto
            }
        }
    }
}

extension Change {
    var proto: Rapport_V1_Change {
        .with {
            $0.cursor = cursor
            switch kind {
            case .customerCreated: $0.kind = .customerCreated
            case .customerUpdated: $0.kind = .customerUpdated
            case .customerDeleted: $0.kind = .customerDeleted
            case .customersMerged: $0.kind = .customersMerged
            case .customersUnmerged: $0.kind = .customersUnmerged
            case .activityRecorded: $0.kind = .activityRecorded
            case .engagementRecorded: $0.kind = .engagementRecorded
            case .segmentEntered: $0.kind = .segmentEntered
            case .segmentExited: $0.kind = .segmentExited
            }
            $0.customerID = customerID.rawValue
            $0.otherCustomerID = otherCustomerID?.rawValue ?? ""
            $0.mergeID = mergeID?.rawValue ?? ""
            $0.segmentID = segmentID?.rawValue ?? ""
            $0.time = at.proto
        }
    }
}

extension Role {
    init(_ proto: Rapport_V1_Role, field: String) throws(RapportError) {
        switch proto {
        case .admin: self = .admin
        case .marketing: self = .marketing
        case .sales: self = .sales
        case .service: self = .service
        case .analyst: self = .analyst
        case .readOnly: self = .readOnly
        case .unspecified, .UNRECOGNIZED: throw .invalid(field, "a key needs a role (ADMIN, MARKETING, SALES, SERVICE, ANALYST, READ_ONLY)")
        }
    }

    var proto: Rapport_V1_Role {
        switch self {
        case .admin: .admin
        case .marketing: .marketing
        case .sales: .sales
        case .service: .service
        case .analyst: .analyst
        case .readOnly: .readOnly
        }
    }
}

extension APIKey {
    var proto: Rapport_V1_ApiKey {
        .with {
            $0.id = id.rawValue
            $0.name = name
            $0.role = role.proto
            $0.createTime = createdAt.proto
            if let revokedAt { $0.revokeTime = revokedAt.proto }
        }
    }
}
