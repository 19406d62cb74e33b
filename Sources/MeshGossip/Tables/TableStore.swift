/// Identifies an entry: (network, table, key). The owner is part of the value, not the key.
public struct EntryKey: Hashable, Sendable, Comparable {
    public var network: String
    public var table: String
    public var key: String
    public init(network: String, table: String, key: String) {
        self.network = network
        self.table = table
        self.key = key
    }
    public static func < (a: EntryKey, b: EntryKey) -> Bool { (a.network, a.table, a.key) < (b.network, b.table, b.key) }
}

/// One entry's latest version, or its tombstone.
public struct TableEntry: Sendable, Equatable {
    public var owner: String
    public var ltime: UInt64
    public var value: [UInt8]
    public var deleted: Bool
    /// Set on tombstones: when they may be forgotten.
    public var reapAt: Duration?

    /// Total order on versions: Lamport time, then owner name so ties resolve the same everywhere.
    func isOlder(than e: TableEvent) -> Bool { (ltime, owner) < (e.ltime, e.owner) }
}

/// The entries of the networks this node carries, indexed so that a node's death, a network
/// leave or a tombstone reap costs in proportion to the entries concerned, not the whole table.
struct TableStore {
    private(set) var entries: [EntryKey: TableEntry] = [:]
    private(set) var byNetwork: [String: Set<EntryKey>] = [:]
    private(set) var byOwner: [String: Set<EntryKey>] = [:]
    /// Tombstones in reap order (reapAt only grows, so a FIFO is sorted).
    private var reapQueue: [(at: Duration, key: EntryKey, ltime: UInt64)] = []
    private var reapHead = 0

    subscript(_ k: EntryKey) -> TableEntry? { entries[k] }

    mutating func put(_ k: EntryKey, _ e: TableEntry) {
        if let old = entries[k], old.owner != e.owner { byOwner[old.owner]?.remove(k) }
        entries[k] = e
        byNetwork[k.network, default: []].insert(k)
        byOwner[e.owner, default: []].insert(k)
        if e.deleted, let at = e.reapAt { reapQueue.append((at, k, e.ltime)) }
    }

    mutating func remove(_ k: EntryKey) {
        guard let old = entries.removeValue(forKey: k) else { return }
        byNetwork[k.network]?.remove(k)
        byOwner[old.owner]?.remove(k)
    }

    func keys(network: String) -> Set<EntryKey> { byNetwork[network] ?? [] }
    func keys(owner: String) -> Set<EntryKey> { byOwner[owner] ?? [] }

    mutating func dropNetwork(_ net: String) {
        for k in keys(network: net) { remove(k) }
        byNetwork[net] = nil
    }

    /// Removes tombstones whose time has come; a tombstone replaced since is left alone.
    mutating func reap(at now: Duration) -> Int {
        var n = 0
        while reapHead < reapQueue.count, reapQueue[reapHead].at <= now {
            let t = reapQueue[reapHead]
            reapHead += 1
            if let e = entries[t.key], e.deleted, e.ltime == t.ltime {
                remove(t.key)
                n += 1
            }
        }
        if reapHead > 1024 && reapHead * 2 > reapQueue.count {
            reapQueue.removeFirst(reapHead)
            reapHead = 0
        }
        return n
    }
}
