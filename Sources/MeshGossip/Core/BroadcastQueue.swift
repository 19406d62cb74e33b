/// Messages waiting to be piggybacked, each sent at most `limit` times. A newer message about the
/// same subject (same node's liveness, same entry) replaces the older one, so the queue holds one
/// item per thing that changed: its cost follows what changed, not the cluster size.
struct BroadcastQueue {
    struct Item {
        var subject: String
        var bytes: [UInt8]
        var transmits: Int
        var order: UInt64
    }

    private(set) var items: [Item] = []
    private var index: [String: Int] = [:]
    private var counter: UInt64 = 0

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    func byteCount(perItem: Int) -> Int { items.reduce(0) { $0 + $1.bytes.count + perItem } }

    mutating func enqueue(subject: String, bytes: [UInt8]) {
        counter += 1
        let item = Item(subject: subject, bytes: bytes, transmits: 0, order: counter)
        if let i = index[subject] {
            items[i] = item
        } else {
            index[subject] = items.count
            items.append(item)
        }
    }

    /// Takes messages that fit in `budget` bytes (each costing its length + `perItem`), fewest
    /// transmits first and newest first among equals, counting one transmit each; drops items that
    /// reached `limit`.
    mutating func take(budget: Int, perItem: Int, limit: Int, maxItems: Int) -> [[UInt8]] {
        guard !items.isEmpty, budget > 0, maxItems > 0 else { return [] }
        var order = Array(items.indices)
        order.sort {
            items[$0].transmits != items[$1].transmits ? items[$0].transmits < items[$1].transmits : items[$0].order > items[$1].order
        }
        var left = budget
        var out: [[UInt8]] = []
        var spent = false
        for i in order {
            let cost = items[i].bytes.count + perItem
            guard cost <= left else { continue }
            left -= cost
            out.append(items[i].bytes)
            items[i].transmits += 1
            if items[i].transmits >= limit { spent = true }
            if out.count >= maxItems || left <= perItem { break }
        }
        if spent { prune(limit: limit) }
        return out
    }

    /// Messages too large for any packet: handed out once for the TCP path, then dropped.
    mutating func takeOversized(over size: Int) -> [[UInt8]] {
        let big = items.filter { $0.bytes.count > size }
        guard !big.isEmpty else { return [] }
        items.removeAll { $0.bytes.count > size }
        reindex()
        return big.map(\.bytes)
    }

    private mutating func prune(limit: Int) {
        items.removeAll { $0.transmits >= limit }
        reindex()
    }

    private mutating func reindex() {
        index.removeAll(keepingCapacity: true)
        for (i, it) in items.enumerated() { index[it.subject] = i }
    }
}
