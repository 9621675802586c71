import RapportCore

/// One customer's records of one kind, sorted by timeline position (oldest first).
struct TimelineIndex<Key: Hashable> {
    private(set) var entries: [(position: TimelinePosition, key: Key)] = []

    var isEmpty: Bool { entries.isEmpty }

    /// The index of the first entry at or after `position`.
    private func lowerBound(_ position: TimelinePosition) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].position < position { low = middle + 1 } else { high = middle }
        }
        return low
    }

    mutating func insert(_ key: Key, at position: TimelinePosition) {
        // Records mostly arrive in time order: appending is the common case.
        if let last = entries.last, last.position < position {
            entries.append((position, key))
        } else {
            entries.insert((position, key), at: lowerBound(position))
        }
    }

    mutating func remove(_ key: Key, at position: TimelinePosition) {
        let index = lowerBound(position)
        if index < entries.count, entries[index].key == key { entries.remove(at: index) }
    }

    /// Up to `limit` keys strictly before `before` (or from the newest), newest first.
    func newest(before: TimelinePosition?, limit: Int) -> [Key] {
        var end = before.map(lowerBound) ?? entries.count
        var result: [Key] = []
        result.reserveCapacity(min(limit, end))
        while end > 0, result.count < limit {
            end -= 1
            result.append(entries[end].key)
        }
        return result
    }

    /// Merges another index into this one.
    mutating func absorb(_ other: TimelineIndex<Key>) {
        guard !other.entries.isEmpty else { return }
        entries.append(contentsOf: other.entries)
        entries.sort { $0.position < $1.position }
    }

    /// Removes and returns the entries whose keys pass `predicate`.
    mutating func extract(where predicate: (Key) -> Bool) -> TimelineIndex<Key> {
        var taken = TimelineIndex<Key>()
        var kept: [(position: TimelinePosition, key: Key)] = []
        for entry in entries {
            if predicate(entry.key) { taken.entries.append(entry) } else { kept.append(entry) }
        }
        entries = kept
        return taken
    }
}
