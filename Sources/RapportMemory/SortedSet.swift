/// A set kept in order, in chunks of a few hundred elements: insertion, removal and ordered scans from any
/// point cost a binary search and a small move, however large it grows.
struct SortedSet<Element: Comparable>: Sequence {
    private var chunks: [[Element]] = []
    private(set) var count = 0
    private static var maxChunk: Int { 512 }

    var isEmpty: Bool { count == 0 }
    var first: Element? { chunks.first?.first }

    /// The chunk that holds `element` or where it would go, and the position in it.
    private func locate(_ element: Element) -> (chunk: Int, index: Int) {
        guard !chunks.isEmpty else { return (0, 0) }
        var low = 0
        var high = chunks.count - 1
        while low < high {
            let middle = (low + high) / 2
            if chunks[middle].last! < element { low = middle + 1 } else { high = middle }
        }
        let chunk = chunks[low]
        var lo = 0
        var hi = chunk.count
        while lo < hi {
            let middle = (lo + hi) / 2
            if chunk[middle] < element { lo = middle + 1 } else { hi = middle }
        }
        return (low, lo)
    }

    func contains(_ element: Element) -> Bool {
        let (chunk, index) = locate(element)
        return chunk < chunks.count && index < chunks[chunk].count && chunks[chunk][index] == element
    }

    @discardableResult
    mutating func insert(_ element: Element) -> Bool {
        guard !chunks.isEmpty else {
            chunks = [[element]]
            count = 1
            return true
        }
        // Appending is the common case (ids and times that grow): one comparison.
        if let last = chunks[chunks.count - 1].last, last < element {
            let chunk = chunks.count - 1
            chunks[chunk].append(element)
            count += 1
            if chunks[chunk].count > 2 * Self.maxChunk {
                let tail = Array(chunks[chunk][Self.maxChunk...])
                chunks[chunk].removeSubrange(Self.maxChunk...)
                chunks.append(tail)
            }
            return true
        }
        let (chunk, index) = locate(element)
        if index < chunks[chunk].count, chunks[chunk][index] == element { return false }
        chunks[chunk].insert(element, at: index)
        count += 1
        if chunks[chunk].count > 2 * Self.maxChunk {
            let tail = Array(chunks[chunk][Self.maxChunk...])
            chunks[chunk].removeSubrange(Self.maxChunk...)
            chunks.insert(tail, at: chunk + 1)
        }
        return true
    }

    @discardableResult
    mutating func remove(_ element: Element) -> Bool {
        let (chunk, index) = locate(element)
        guard chunk < chunks.count, index < chunks[chunk].count, chunks[chunk][index] == element else { return false }
        chunks[chunk].remove(at: index)
        if chunks[chunk].isEmpty { chunks.remove(at: chunk) }
        count -= 1
        return true
    }

    /// Up to `limit` elements from `lower` on (inclusive), ascending.
    func ascending(from lower: Element, limit: Int) -> [Element] {
        var result = contains(lower) ? [lower] : []
        result += ascending(after: lower, limit: limit - result.count)
        return Array(result.prefix(Swift.max(0, limit)))
    }

    /// Up to `limit` elements greater than `lower` (all when nil), ascending.
    func ascending(after lower: Element?, limit: Int) -> [Element] {
        var result: [Element] = []
        guard limit > 0, !chunks.isEmpty else { return result }
        var (chunk, index) = lower.map(locate) ?? (0, 0)
        while chunk < chunks.count {
            let elements = chunks[chunk]
            while index < elements.count {
                if let lower, !(lower < elements[index]) {
                    index += 1
                    continue
                }
                result.append(elements[index])
                if result.count == limit { return result }
                index += 1
            }
            chunk += 1
            index = 0
        }
        return result
    }

    /// Up to `limit` elements smaller than `upper` (all when nil), descending.
    func descending(before upper: Element?, limit: Int) -> [Element] {
        var result: [Element] = []
        guard limit > 0, !chunks.isEmpty else { return result }
        var chunk: Int
        var index: Int
        if let upper {
            (chunk, index) = locate(upper)
            index -= 1
            if chunk >= chunks.count {
                chunk = chunks.count - 1
                index = chunks[chunk].count - 1
            }
        } else {
            chunk = chunks.count - 1
            index = chunks[chunk].count - 1
        }
        while chunk >= 0 {
            let elements = chunks[chunk]
            while index >= 0 {
                result.append(elements[index])
                if result.count == limit { return result }
                index -= 1
            }
            chunk -= 1
            if chunk >= 0 { index = chunks[chunk].count - 1 }
        }
        return result
    }

    func makeIterator() -> FlattenSequence<[[Element]]>.Iterator { chunks.joined().makeIterator() }
}
