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

    /// Applies a change logged while the customer held a merged side, whose profile was `merged` before it, to the
    /// customer without that side: lists (tags, addresses) and the attribute map take what the change added,
    /// changed or removed, not the merged side's entries the logged ones still held.
    static func apply(_ change: ProfileChange, to state: State, madeOn merged: CustomerProfile) -> State {
        var result = apply(change, to: state)
        if change.fields.contains(.tags) {
            let added = Set(change.profile.tags).subtracting(merged.tags)
            let removed = Set(merged.tags).subtracting(change.profile.tags)
            result.profile.tags = Array(Set(state.profile.tags).subtracting(removed).union(added)).sorted()
        }
        if change.fields.contains(.addresses) {
            let added = change.profile.addresses.filter { !merged.addresses.contains($0) }
            let removed = merged.addresses.filter { !change.profile.addresses.contains($0) }
            var addresses = state.profile.addresses.filter { !removed.contains($0) }
            for address in added where !addresses.contains(address) { addresses.append(address) }
            result.profile.addresses = addresses
        }
        if change.fields.contains(.attributes) {
            // The whole map was logged: only the keys whose value the change set or removed are its.
            var attributes = state.profile.attributes
            for key in Set(change.profile.attributes.keys).union(merged.attributes.keys) where change.profile.attributes[key] != merged.attributes[key] {
                attributes[key] = change.profile.attributes[key]
            }
            result.profile.attributes = attributes
        }
        return result
    }
}
