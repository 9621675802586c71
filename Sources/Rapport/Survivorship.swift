import RapportCore

/// How two profiles become one when customers merge.
///
/// Per field, the most recently updated non-empty value wins (the survivor wins ties); tags and addresses are
/// united; custom attributes are decided key by key.
enum Survivorship {
    struct State: Hashable {
        var profile: CustomerProfile
        var fieldTimes: [String: Timestamp]
        var createdAt: Timestamp

        init(_ record: CustomerRecord) {
            profile = record.profile
            fieldTimes = record.fieldTimes
            createdAt = record.createdAt
        }

        func time(of field: CustomerField) -> Timestamp { fieldTimes[field.path] ?? createdAt }
    }

    static func merge(_ survivor: State, _ absorbed: State) -> State {
        var result = survivor
        func pick<Value>(_ field: CustomerField, _ path: WritableKeyPath<CustomerProfile, Value>, isEmpty: (Value) -> Bool) {
            let mine = survivor.profile[keyPath: path]
            let theirs = absorbed.profile[keyPath: path]
            guard !isEmpty(theirs) else { return }
            if isEmpty(mine) || absorbed.time(of: field) > survivor.time(of: field) {
                result.profile[keyPath: path] = theirs
                result.fieldTimes[field.path] = absorbed.time(of: field)
            }
        }
        pick(.givenName, \.givenName) { $0.isEmpty }
        pick(.familyName, \.familyName) { $0.isEmpty }
        pick(.birthday, \.birthday) { $0 == nil }
        pick(.locale, \.locale) { $0.isEmpty }
        pick(.timeZone, \.timeZone) { $0.isEmpty }
        pick(.lifecycleStage, \.lifecycleStage) { $0 == nil }

        let tags = Array(Set(survivor.profile.tags).union(absorbed.profile.tags)).sorted()
        if tags != survivor.profile.tags {
            result.profile.tags = tags
            result.fieldTimes[CustomerField.tags.path] = max(survivor.time(of: .tags), absorbed.time(of: .tags))
        }
        let extraAddresses = absorbed.profile.addresses.filter { !survivor.profile.addresses.contains($0) }
        if !extraAddresses.isEmpty {
            result.profile.addresses = survivor.profile.addresses + extraAddresses
            result.fieldTimes[CustomerField.addresses.path] = max(survivor.time(of: .addresses), absorbed.time(of: .addresses))
        }
        for (key, value) in absorbed.profile.attributes where !value.isEmpty {
            let field = CustomerField.attribute(key)
            let mine = survivor.profile.attributes[key]
            if mine == nil || mine!.isEmpty || absorbed.time(of: field) > survivor.time(of: field) {
                result.profile.attributes[key] = value
                result.fieldTimes[field.path] = absorbed.time(of: field)
            }
        }
        return result
    }

    /// Applies a logged profile change.
    static func apply(_ change: ProfileChange, to state: State) -> State {
        var result = state
        result.profile.assign(change.fields, from: change.profile)
        for field in change.fields { result.fieldTimes[field.path] = change.at }
        return result
    }
}
