import Foundation

/// A calendar date without a time zone (a birthday). The year may be unknown.
public struct LocalDate: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The year, or nil when only the day and month are known.
    public var year: Int?
    public var month: Int
    public var day: Int

    public init(year: Int? = nil, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// Checks that the date exists (29 February only in leap years, or with no year).
    public func validate(field: String) throws(RapportError) {
        guard (1...12).contains(month) else { throw .invalid("\(field).month", "must be 1 to 12, got \(month)") }
        if let year, !(1900...2200).contains(year) { throw .invalid("\(field).year", "must be 1900 to 2200, got \(year)") }
        let lengths = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        var maxDay = lengths[month - 1]
        if month == 2, let year, !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) { maxDay = 28 }
        guard (1...maxDay).contains(day) else { throw .invalid("\(field).day", "must be 1 to \(maxDay) for month \(month), got \(day)") }
    }

    /// Whether this date (one with a year) has not begun anywhere on Earth at `time`: a birthday still to come is a
    /// typing error. UTC+14 reaches a day first.
    public func isInFuture(at time: Timestamp) -> Bool {
        guard let year else { return false }
        let (days, rest) = (time.millisecondsSinceEpoch + 14 * 3_600_000).quotientAndRemainder(dividingBy: 86_400_000)
        return Int64(LocalDate.daysSinceEpoch(year: year, month: month, day: day)) > (rest < 0 ? days - 1 : days)
    }

    public static func < (lhs: LocalDate, rhs: LocalDate) -> Bool {
        ((lhs.year ?? 0), lhs.month, lhs.day) < ((rhs.year ?? 0), rhs.month, rhs.day)
    }

    /// `1990-04-17`, or `--04-17` without a year (ISO 8601).
    public var description: String {
        let monthDay = (month < 10 ? "0" : "") + "\(month)-" + (day < 10 ? "0" : "") + "\(day)"
        guard let year else { return "--" + monthDay }
        return "\(year)-" + monthDay
    }
}

/// A postal address of a customer.
public struct PostalAddress: Hashable, Sendable, Codable {
    /// What the address is for: `home`, `shipping`, `billing`, `work`...
    public var label: String
    public var line1: String
    public var line2: String
    public var city: String
    public var region: String
    public var postalCode: String
    /// ISO 3166 alpha-2 country code (`DE`).
    public var country: String

    public init(label: String = "", line1: String, line2: String = "", city: String, region: String = "", postalCode: String = "", country: String) {
        self.label = label
        self.line1 = line1
        self.line2 = line2
        self.city = city
        self.region = region
        self.postalCode = postalCode
        self.country = country
    }

    func validate(field: String, into validator: inout Validator) {
        if line1.trimmingCharacters(in: .whitespaces).isEmpty { validator.add("\(field).line1", "is required") }
        if city.trimmingCharacters(in: .whitespaces).isEmpty { validator.add("\(field).city", "is required") }
        if country.count != 2 || !country.allSatisfy({ $0.isASCII && $0.isUppercase }) {
            validator.add("\(field).country", "'\(country)' is not an ISO 3166 alpha-2 code such as 'DE'")
        }
        for (name, value) in [("label", label), ("line1", line1), ("line2", line2), ("city", city), ("region", region), ("postal_code", postalCode)] {
            if value.unicodeScalars.count > 200 { validator.add("\(field).\(name)", "is longer than 200 characters") }
            if value.containsNUL { validator.add("\(field).\(name)", "contains a NUL character") }
        }
    }
}

/// Where a customer stands in their relationship with the shop.
public enum LifecycleStage: String, Hashable, Sendable, Codable, CaseIterable {
    /// Known (subscribed, signed up) but has not ordered.
    case prospect
    /// Has ordered once.
    case newCustomer = "new_customer"
    /// Orders regularly.
    case active
    /// A repeat, high-value customer.
    case loyal
    /// Used to order, has slowed down.
    case atRisk = "at_risk"
    /// Has not ordered for a long time.
    case churned
}

/// A field of the customer profile, as named in field masks and errors.
///
/// ```swift
/// let fields: Set<CustomerField> = [.givenName, .tags, .attribute("shoe_size")]
/// ```
public struct CustomerField: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The path: `given_name`, `tags`, `attributes.shoe_size`.
    public let path: String

    public init(path: String) { self.path = path }

    public static let givenName = CustomerField(path: "given_name")
    public static let familyName = CustomerField(path: "family_name")
    public static let birthday = CustomerField(path: "birthday")
    public static let locale = CustomerField(path: "locale")
    public static let timeZone = CustomerField(path: "time_zone")
    public static let addresses = CustomerField(path: "addresses")
    public static let tags = CustomerField(path: "tags")
    public static let lifecycleStage = CustomerField(path: "lifecycle_stage")
    /// Every custom attribute at once (replace the whole map).
    public static let attributes = CustomerField(path: "attributes")
    /// One custom attribute.
    public static func attribute(_ key: String) -> CustomerField { CustomerField(path: "attributes.\(key)") }

    /// The fields other than attributes.
    public static let standard: [CustomerField] = [.givenName, .familyName, .birthday, .locale, .timeZone, .addresses, .tags, .lifecycleStage]

    /// The attribute key when this is `attributes.KEY`.
    public var attributeKey: String? {
        path.hasPrefix("attributes.") ? String(path.dropFirst("attributes.".count)) : nil
    }

    /// Parses a field-mask path, or throws naming `field`.
    public init(parsing text: String, field: String) throws(RapportError) {
        if let known = Self.standard.first(where: { $0.path == text }) ?? (text == "attributes" ? .attributes : nil) {
            self = known
        } else if text.hasPrefix("attributes.") {
            let key = String(text.dropFirst("attributes.".count))
            try AttributeDefinition.validateKey(key, field: field)
            self = .attribute(key)
        } else {
            throw .invalid(field, "'\(text)' is not a customer field (one of \((Self.standard + [.attributes]).map(\.path).joined(separator: ", ")), attributes.KEY)")
        }
    }

    public var description: String { path }

    public static func < (lhs: CustomerField, rhs: CustomerField) -> Bool { lhs.path < rhs.path }
}

/// The editable fields of a customer. Identities (e-mails, phones, ids) are kept apart, as ``Identity`` values.
public struct CustomerProfile: Hashable, Sendable, Codable {
    public var givenName: String
    public var familyName: String
    public var birthday: LocalDate?
    /// BCP 47 language tag (`en-US`).
    public var locale: String
    /// IANA time zone (`Europe/Berlin`); birthdays and quiet hours are read in it.
    public var timeZone: String
    public var addresses: [PostalAddress]
    /// Sorted, without duplicates.
    public var tags: [String]
    public var lifecycleStage: LifecycleStage?
    /// Custom attributes, each declared in the attribute schema.
    public var attributes: [String: AttributeValue]

    public init(
        givenName: String = "", familyName: String = "", birthday: LocalDate? = nil, locale: String = "", timeZone: String = "",
        addresses: [PostalAddress] = [], tags: [String] = [], lifecycleStage: LifecycleStage? = nil, attributes: [String: AttributeValue] = [:]
    ) {
        self.givenName = givenName
        self.familyName = familyName
        self.birthday = birthday
        self.locale = locale
        self.timeZone = timeZone
        self.addresses = addresses
        self.tags = tags
        self.lifecycleStage = lifecycleStage
        self.attributes = attributes
    }

    /// The fields whose values differ between two profiles (attributes key by key).
    public func changedFields(comparedTo other: CustomerProfile) -> Set<CustomerField> {
        var fields = Set<CustomerField>()
        if givenName != other.givenName { fields.insert(.givenName) }
        if familyName != other.familyName { fields.insert(.familyName) }
        if birthday != other.birthday { fields.insert(.birthday) }
        if locale != other.locale { fields.insert(.locale) }
        if timeZone != other.timeZone { fields.insert(.timeZone) }
        if addresses != other.addresses { fields.insert(.addresses) }
        if tags != other.tags { fields.insert(.tags) }
        if lifecycleStage != other.lifecycleStage { fields.insert(.lifecycleStage) }
        for key in Set(attributes.keys).union(other.attributes.keys) where attributes[key] != other.attributes[key] {
            fields.insert(.attribute(key))
        }
        return fields
    }

    /// A profile holding only `fields` of this one (the others empty): what a logged change keeps.
    public func only(_ fields: Set<CustomerField>) -> CustomerProfile {
        var result = CustomerProfile()
        result.assign(fields, from: self)
        return result
    }

    /// Copies `fields` from `source` into this profile. `attributes` replaces the whole map.
    public mutating func assign(_ fields: Set<CustomerField>, from source: CustomerProfile) {
        for field in fields {
            switch field {
            case .givenName: givenName = source.givenName
            case .familyName: familyName = source.familyName
            case .birthday: birthday = source.birthday
            case .locale: locale = source.locale
            case .timeZone: timeZone = source.timeZone
            case .addresses: addresses = source.addresses
            case .tags: tags = source.tags
            case .lifecycleStage: lifecycleStage = source.lifecycleStage
            case .attributes: attributes = source.attributes
            default:
                if let key = field.attributeKey { attributes[key] = source.attributes[key] }
            }
        }
    }

    /// Trims names (in Unicode's composed form), sorts and de-duplicates tags: the form in which profiles are stored.
    public func normalized() -> CustomerProfile {
        var copy = self
        copy.givenName = givenName.trimmingCharacters(in: .whitespacesAndNewlines).canonical
        copy.familyName = familyName.trimmingCharacters(in: .whitespacesAndNewlines).canonical
        copy.locale = locale.trimmingCharacters(in: .whitespaces)
        copy.timeZone = timeZone.trimmingCharacters(in: .whitespaces)
        copy.tags = Array(Set(tags.map { $0.trimmingCharacters(in: .whitespaces).canonical })).sorted()
        return copy
    }

    /// Checks this normalized profile as ``validate(schema:)`` does, naming a bad tag by its position in `sent`: the
    /// tags as the caller sent them, before ``normalized()`` trimmed, sorted and de-duplicated them.
    public func validate(schema: AttributeSchema, tagsAsSent sent: [String]) throws(RapportError) {
        do {
            try validate(schema: schema)
        } catch {
            throw renamingTags(error, sent: sent)
        }
    }

    /// `error` with each `tags[i]` (a position in this normalized profile) renamed to that tag's position in `sent`.
    func renamingTags(_ error: RapportError, sent: [String]?) -> RapportError {
        guard let sent, case .invalidArgument(let violations) = error else { return error }
        return .invalidArgument(
            violations.map { violation in
                guard violation.field.hasPrefix("tags["), violation.field.hasSuffix("]"), let index = Int(violation.field.dropFirst(5).dropLast()),
                    tags.indices.contains(index),
                    let position = sent.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).canonical == tags[index] })
                else { return violation }
                return FieldViolation(field: "tags[\(position)]", problem: violation.problem)
            })
    }

    /// Checks an edit of `previous`: throws the violations this profile has and `previous` had not. A merge may leave
    /// a profile past a limit (more addresses or tags than one customer may be given, as the union of two): an edit of
    /// another field goes through, one that adds to what is over the limit does not. A bad tag is named by its
    /// position in `sent`, the tags as the caller sent them, when given.
    public func validate(schema: AttributeSchema, since previous: CustomerProfile, tagsAsSent sent: [String]? = nil) throws(RapportError) {
        do {
            try validate(schema: schema)
        } catch {
            guard case .invalidArgument(let violations) = error else { throw error }
            var before: Set<FieldViolation> = []
            do { try previous.validate(schema: schema) } catch { before = Set(error.fieldViolations) }
            let introduced = violations.filter { violation in
                if violation.field == "addresses" { return addresses.count > previous.addresses.count }
                if violation.field == "tags" { return tags.count > previous.tags.count }
                return !before.contains(violation)
            }
            if !introduced.isEmpty { throw renamingTags(.invalidArgument(introduced), sent: sent) }
        }
    }

    /// Checks every field; throws all violations at once.
    public func validate(schema: AttributeSchema) throws(RapportError) {
        var validator = Validator()
        if givenName.unicodeScalars.count > 200 { validator.add("given_name", "is longer than 200 characters") }
        if familyName.unicodeScalars.count > 200 { validator.add("family_name", "is longer than 200 characters") }
        if let birthday { validator.capture("") { () throws(RapportError) in try birthday.validate(field: "birthday") } }
        if !locale.isEmpty, !Self.isLanguageTag(locale) { validator.add("locale", "'\(locale)' is not a BCP 47 language tag such as 'en-US'") }
        if !timeZone.isEmpty, TimeZone(identifier: timeZone) == nil {
            validator.add("time_zone", "'\(timeZone)' is not an IANA time zone such as 'Europe/Berlin'")
        }
        if addresses.count > 20 { validator.add("addresses", "has more than 20 addresses") }
        for (index, address) in addresses.enumerated() { address.validate(field: "addresses[\(index)]", into: &validator) }
        if tags.count > 200 { validator.add("tags", "has more than 200 tags") }
        for (index, tag) in tags.enumerated() {
            if tag.isEmpty || tag.unicodeScalars.count > 64 || tag.contains(where: { $0.isNewline || $0 == "," }) || tag.containsNUL {
                validator.add("tags[\(index)]", "'\(tag)' must be 1 to 64 characters without commas, line breaks or NUL")
            }
        }
        validator.capture("") { () throws(RapportError) in try schema.validate(attributes) }
        for key in attributes.keys.sorted() {
            switch attributes[key]! {
            case .string(let text):
                if text.unicodeScalars.count > 10_000 { validator.add("attributes.\(key)", "is longer than 10000 characters") }
                if text.containsNUL { validator.add("attributes.\(key)", "contains a NUL character") }
            case .stringList(let items):
                if items.count > 1_000 { validator.add("attributes.\(key)", "has more than 1000 items") }
                if let index = items.firstIndex(where: { $0.unicodeScalars.count > 1_000 || $0.containsNUL }) {
                    validator.add("attributes.\(key)[\(index)]", "must be at most 1000 characters without NUL")
                }
            default: break
            }
        }
        for (field, text) in [("given_name", givenName), ("family_name", familyName)] where text.containsNUL {
            validator.add(field, "contains a NUL character")
        }
        try validator.check()
    }

    static func isLanguageTag(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard let language = parts.first, (2...3).contains(language.count), language.allSatisfy({ $0.isASCII && $0.isLetter }) else { return false }
        return parts.dropFirst().allSatisfy { (1...8).contains($0.count) && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }
    }
}

/// A customer as the library returns it: the profile, every identity, and the bookkeeping.
public struct Customer: Hashable, Sendable, Codable {
    public var id: CustomerID
    public var profile: CustomerProfile
    /// Every identity that resolves to this customer, sorted.
    public var identities: [Identity]
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    /// Grows by one on every change; the etag is derived from it.
    public var version: Int64

    public init(id: CustomerID, profile: CustomerProfile, identities: [Identity], createdAt: Timestamp, updatedAt: Timestamp, version: Int64) {
        self.id = id
        self.profile = profile
        self.identities = identities
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.version = version
    }

    /// The optimistic-concurrency tag: pass it back to update only the version you read.
    public var etag: String { "\"\(version)\"" }

    /// The customer's e-mail addresses (their e-mail identities).
    public var emails: [String] { identities.filter { $0.kind == .email }.map(\.value) }

    /// The customer's phone numbers in E.164 (their phone identities).
    public var phones: [String] { identities.filter { $0.kind == .phone }.map(\.value) }
}

/// Whether a stored customer is live, or was merged into another.
public enum CustomerState: Hashable, Sendable, Codable {
    case active
    /// Merged into the survivor named; kept so that an unmerge can bring it back.
    case merged(into: CustomerID, by: MergeID)
}

/// A customer as storage holds it: the profile with per-field update times, and its state.
public struct CustomerRecord: Hashable, Sendable, Codable {
    public var id: CustomerID
    public var profile: CustomerProfile
    /// When each field (`given_name`, `attributes.vip`...) last got its value: survivorship compares these.
    public var fieldTimes: [String: Timestamp]
    public var state: CustomerState
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var version: Int64

    public init(id: CustomerID, profile: CustomerProfile, fieldTimes: [String: Timestamp], state: CustomerState, createdAt: Timestamp, updatedAt: Timestamp, version: Int64) {
        self.id = id
        self.profile = profile
        self.fieldTimes = fieldTimes
        self.state = state
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.version = version
    }

    /// The id of the customer this one was merged into, if it was.
    public var mergedInto: CustomerID? {
        if case .merged(let survivor, _) = state { return survivor }
        return nil
    }
}
