import Foundation
import Rapport
import RapportCore
import RapportProto
import SwiftProtobuf

// Proto ⇄ domain for the values every service shares. Mapping only: validation of meaning stays in the engine;
// here only what the wire cannot express (an unknown enum number, a missing message) is rejected.

extension Timestamp {
    /// A request's timestamp, within the range protobuf allows (years 1 to 9999); else `invalid` naming the field.
    init(_ proto: Google_Protobuf_Timestamp, field: String) throws(RapportError) {
        guard (-62_135_596_800...(Timestamp.latest.millisecondsSinceEpoch / 1000)).contains(proto.seconds), (0..<1_000_000_000).contains(proto.nanos) else {
            throw .invalid(field, "is not a valid timestamp (seconds and nanos out of range; years 1 to 9999)")
        }
        self.init(millisecondsSinceEpoch: proto.seconds * 1000 + Int64(proto.nanos / 1_000_000))
    }

    var proto: Google_Protobuf_Timestamp {
        // Floored division that cannot overflow, whatever an older version stored.
        let (quotient, remainder) = millisecondsSinceEpoch.quotientAndRemainder(dividingBy: 1000)
        let (seconds, millis) = remainder < 0 ? (quotient - 1, remainder + 1000) : (quotient, remainder)
        return Google_Protobuf_Timestamp(seconds: seconds, nanos: Int32(millis * 1_000_000))
    }
}

/// Parses an id field, naming it in the error.
func parseID<ID: PrefixedID>(_ type: ID.Type, _ text: String, field: String) throws(RapportError) -> ID {
    guard !text.isEmpty else { throw .invalid(field, "is required") }
    return try ID(parsing: text, field: field)
}

extension Money {
    var proto: Rapport_V1_Money { .with { $0.minorUnits = minorUnits; $0.currency = currency.code } }
}

extension IdentityKind {
    init(_ proto: Rapport_V1_IdentityKind, field: String) throws(RapportError) {
        switch proto {
        case .email: self = .email
        case .phone: self = .phone
        case .memberCard: self = .memberCard
        case .externalID: self = .externalID
        case .anonymousID: self = .anonymousID
        case .unspecified, .UNRECOGNIZED: throw .invalid(field, "an identity needs a kind (EMAIL, PHONE, MEMBER_CARD, EXTERNAL_ID, ANONYMOUS_ID)")
        }
    }

    var proto: Rapport_V1_IdentityKind {
        switch self {
        case .email: .email
        case .phone: .phone
        case .memberCard: .memberCard
        case .externalID: .externalID
        case .anonymousID: .anonymousID
        }
    }
}

extension Identity {
    var proto: Rapport_V1_Identity { .with { $0.kind = kind.proto; $0.source = source; $0.value = value } }
}

func identityInput(_ proto: Rapport_V1_Identity, field: String) throws(RapportError) -> IdentityInput {
    IdentityInput(kind: try IdentityKind(proto.kind, field: "\(field).kind"), source: proto.source, value: proto.value)
}

func identityInputs(_ protos: [Rapport_V1_Identity], field: String) throws(RapportError) -> [IdentityInput] {
    var validator = Validator()
    var result: [IdentityInput] = []
    for (index, proto) in protos.enumerated() {
        if let input = validator.capture("", { () throws(RapportError) in try identityInput(proto, field: "\(field)[\(index)]") }) {
            result.append(input)
        }
    }
    try validator.check()
    return result
}

extension AttributeValue {
    init(_ proto: Rapport_V1_AttributeValue, field: String) throws(RapportError) {
        switch proto.value {
        case .stringValue(let value): self = .string(value)
        case .intValue(let value): self = .int(value)
        case .decimalValue(let text):
            guard let value = AttributeValue.decimal(parsing: text) else {
                throw .invalid(field, "'\(text)' is not a decimal number such as 12.50 (digits, one optional '.', at most 38 digits)")
            }
            self = .decimal(value)
        case .boolValue(let value): self = .bool(value)
        case .timestampValue(let value): self = .timestamp(try Timestamp(value, field: field))
        case .stringListValue(let list): self = .stringList(list.values)
        case nil: throw .invalid(field, "has no value")
        }
    }

    var proto: Rapport_V1_AttributeValue {
        .with {
            switch self {
            case .string(let value): $0.stringValue = value
            case .int(let value): $0.intValue = value
            case .decimal(let value): $0.decimalValue = value.description
            case .bool(let value): $0.boolValue = value
            case .timestamp(let value): $0.timestampValue = value.proto
            case .stringList(let value): $0.stringListValue = .with { $0.values = value }
            }
        }
    }
}

func attributes(_ protos: [String: Rapport_V1_AttributeValue], field: String) throws(RapportError) -> [String: AttributeValue] {
    var validator = Validator()
    var result: [String: AttributeValue] = [:]
    for key in protos.keys.sorted() {
        if let value = validator.capture("", { () throws(RapportError) in try AttributeValue(protos[key]!, field: "\(field).\(key)") }) {
            result[key] = value
        }
    }
    try validator.check()
    return result
}

extension AttributeType {
    init(_ proto: Rapport_V1_AttributeType, field: String) throws(RapportError) {
        switch proto {
        case .string: self = .string
        case .int: self = .int
        case .decimal: self = .decimal
        case .bool: self = .bool
        case .timestamp: self = .timestamp
        case .stringList: self = .stringList
        case .unspecified, .UNRECOGNIZED: throw .invalid(field, "an attribute needs a type")
        }
    }

    var proto: Rapport_V1_AttributeType {
        switch self {
        case .string: .string
        case .int: .int
        case .decimal: .decimal
        case .bool: .bool
        case .timestamp: .timestamp
        case .stringList: .stringList
        }
    }
}

extension Channel {
    /// UNSPECIFIED reads as OTHER: a channel is a label, not worth rejecting an event for.
    init(_ proto: Rapport_V1_Channel, field: String) throws(RapportError) {
        switch proto {
        case .web: self = .web
        case .app: self = .app
        case .store: self = .store
        case .marketplace: self = .marketplace
        case .callCenter: self = .callCenter
        case .email: self = .email
        case .sms: self = .sms
        case .social: self = .social
        case .other, .unspecified: self = .other
        case .UNRECOGNIZED(let value): throw .invalid(field, "\(value) is not a channel")
        }
    }

    var proto: Rapport_V1_Channel {
        switch self {
        case .web: .web
        case .app: .app
        case .store: .store
        case .marketplace: .marketplace
        case .callCenter: .callCenter
        case .email: .email
        case .sms: .sms
        case .social: .social
        case .other: .other
        }
    }
}

/// Runs `body`, renaming the fields of its `invalidArgument` violations from the engine's names to the request's
/// (`locale` → `customer.locale`).
func renamingFields<T>(_ rename: (String) -> String, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as RapportError {
        guard case .invalidArgument(let violations) = error else { throw error }
        throw RapportError.invalidArgument(violations.map { FieldViolation(field: rename($0.field), problem: $0.problem) })
    }
}

/// Puts engine field paths under `parent`, except those that are already the request's own top-level fields.
func under(_ parent: String, except requestFields: Set<String> = []) -> (String) -> String {
    { field in
        let top = field.prefix { $0 != "." && $0 != "[" }
        return field.isEmpty ? parent : requestFields.contains(String(top)) ? field : "\(parent).\(field)"
    }
}

/// The page request of a List call.
func pageRequest(size: Int32, token: String) -> PageRequest {
    PageRequest(size: Int(size), token: token.isEmpty ? nil : token)
}

/// Masks personal data for roles that may not see it: `ada@example.com` → `a***@example.com`.
///
/// What is kept is never most of the value: the first letter of an e-mail's local part only when it has 3 or more, the
/// last 4 characters of a card or id only when it has 8 or more.
enum Mask {
    static func identity(_ identity: Identity) -> Identity {
        var masked = identity
        switch identity.kind {
        case .email:
            let parts = identity.value.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
            let local = parts.first ?? ""
            masked.value = (local.count >= 3 ? String(local.prefix(1)) : "") + "***@" + (parts.count > 1 ? String(parts[1]) : "")
        case .phone:
            masked.value = identity.value.count >= 8 ? String(identity.value.prefix(3)) + "***" + String(identity.value.suffix(2)) : "***"
        case .memberCard, .externalID, .anonymousID:
            masked.value = identity.value.count >= 8 ? "***" + String(identity.value.suffix(4)) : "***"
        }
        return masked
    }

    static let text = "***"
}
