import RapportCore
import RapportProto
import SwiftProtobuf

extension LifecycleStage {
    static func from(_ proto: Rapport_V1_LifecycleStage, field: String) throws(RapportError) -> LifecycleStage? {
        switch proto {
        case .unspecified: nil
        case .prospect: .prospect
        case .newCustomer: .newCustomer
        case .active: .active
        case .loyal: .loyal
        case .atRisk: .atRisk
        case .churned: .churned
        case .UNRECOGNIZED(let value): throw .invalid(field, "\(value) is not a lifecycle stage")
        }
    }
}

extension Optional where Wrapped == LifecycleStage {
    var proto: Rapport_V1_LifecycleStage {
        switch self {
        case nil: .unspecified
        case .prospect: .prospect
        case .newCustomer: .newCustomer
        case .active: .active
        case .loyal: .loyal
        case .atRisk: .atRisk
        case .churned: .churned
        }
    }
}

/// The profile fields of a proto customer.
func profile(_ proto: Rapport_V1_Customer, field: String = "customer") throws(RapportError) -> CustomerProfile {
    var validator = Validator()
    let stage = validator.capture("") { () throws(RapportError) in try LifecycleStage.from(proto.lifecycleStage, field: "\(field).lifecycle_stage") }
    let attributeValues = validator.capture("") { () throws(RapportError) in try attributes(proto.attributes, field: "\(field).attributes") }
    try validator.check()
    return CustomerProfile(
        givenName: proto.givenName, familyName: proto.familyName,
        birthday: proto.hasBirthday ? LocalDate(year: proto.birthday.year == 0 ? nil : Int(proto.birthday.year), month: Int(proto.birthday.month), day: Int(proto.birthday.day)) : nil,
        locale: proto.locale, timeZone: proto.timeZone,
        addresses: proto.addresses.map {
            PostalAddress(label: $0.label, line1: $0.line1, line2: $0.line2, city: $0.city, region: $0.region, postalCode: $0.postalCode, country: $0.country)
        },
        tags: proto.tags, lifecycleStage: stage ?? nil, attributes: attributeValues ?? [:])
}

/// The fields named by an update mask.
func customerFields(_ mask: Google_Protobuf_FieldMask) throws(RapportError) -> Set<CustomerField> {
    guard !mask.paths.isEmpty else { throw .invalid("update_mask", "names no field to update") }
    var validator = Validator()
    var fields = Set<CustomerField>()
    for (index, path) in mask.paths.enumerated() {
        if let field = validator.capture("", { () throws(RapportError) in try CustomerField(parsing: path, field: "update_mask.paths[\(index)]") }) {
            fields.insert(field)
        }
    }
    try validator.check()
    return fields
}

extension Customer {
    /// The proto form, with personal data masked when the caller may not see it.
    var proto: Rapport_V1_Customer {
        let unmasked = Caller.seesPersonalData
        return .with { message in
            message.id = id.rawValue
            message.givenName = profile.givenName
            message.familyName = profile.familyName
            if let birthday = profile.birthday {
                message.birthday = .with {
                    $0.year = Int32(birthday.year ?? 0)
                    if unmasked {
                        $0.month = Int32(birthday.month)
                        $0.day = Int32(birthday.day)
                    }
                }
            }
            message.locale = profile.locale
            message.timeZone = profile.timeZone
            message.addresses = profile.addresses.map { address in
                .with {
                    $0.label = address.label
                    $0.line1 = unmasked ? address.line1 : Mask.text
                    $0.line2 = unmasked || address.line2.isEmpty ? address.line2 : Mask.text
                    $0.city = address.city
                    $0.region = address.region
                    $0.postalCode = unmasked || address.postalCode.isEmpty ? address.postalCode : Mask.text
                    $0.country = address.country
                }
            }
            message.tags = profile.tags
            message.lifecycleStage = profile.lifecycleStage.proto
            message.attributes = profile.attributes.mapValues(\.proto)
            message.identities = identities.map { (unmasked ? $0 : Mask.identity($0)).proto }
            message.createTime = createdAt.proto
            message.updateTime = updatedAt.proto
            message.etag = etag
        }
    }
}

extension AttributeDefinition {
    var proto: Rapport_V1_AttributeDefinition {
        .with {
            $0.key = key
            $0.type = type.proto
            $0.description_p = description
        }
    }
}
