/// The store's nodes, networks, services and tasks held in memory and kept current by applying what each
/// commit changed, so that `ClusterStore.snapshot()` (read several times by every manager pass and by
/// each assignment push) costs a copy-on-write reference instead of reading and decoding every stored
/// object. A commit costs in proportion to what it changed: per object, a lookup and an append,
/// replace or remove in place.
///
/// The lists are in no particular order: a new object goes at the end and a removed one's place takes
/// the last. Keeping them sorted by ID moved half the array on every create: a service is a 1.8 KB
/// value, so at 10,000 services each create moved 9 MB (profiled; it was what grew in `service create`).
///
/// Two feeds reach it. The store's ordered change stream (`apply(_: StoreCommit)`) moves `index`: every
/// commit up to it is in. A store may also apply its own committed writes at once
/// (`apply(_: [StoreChange])`), ahead of the stream, so that a write is visible to the next read of the
/// same process; the stream brings those again later. Revisions order all writes, so each object keeps
/// the newest version seen (last writer by revision wins) and a removal ahead of the stream leaves a
/// tombstone until the stream passes it: an older write of the object arriving afterwards cannot bring
/// it back.
public struct SnapshotCache: Sendable {
    /// Each kind in no particular order.
    public private(set) var snapshot: ClusterSnapshot
    /// Every commit of the ordered stream up to this index has been applied.
    public private(set) var index: UInt64
    /// Objects removed at an index above `index`, by kind and ID, with the index of the removal.
    private var removed: [Key: UInt64] = [:]
    /// Where each object is in its list.
    private var positions: Positions

    private struct Key: Hashable {
        var kind: String
        var id: String
    }

    private struct Positions {
        var nodes: [String: Int] = [:]
        var networks: [String: Int] = [:]
        var services: [String: Int] = [:]
        var tasks: [String: Int] = [:]

        init(_ s: ClusterSnapshot) {
            nodes = Self.of(s.nodes)
            networks = Self.of(s.networks)
            services = Self.of(s.services)
            tasks = Self.of(s.tasks)
        }

        static func of<T: StoredObject>(_ list: [T]) -> [String: Int] {
            var out: [String: Int] = [:]
            out.reserveCapacity(list.count)
            for i in list.indices { out[list[i].id] = i }
            return out
        }
    }

    /// The view a store read at `index`.
    public init(snapshot: ClusterSnapshot, index: UInt64) {
        self.snapshot = snapshot
        self.index = index
        positions = Positions(snapshot)
    }

    /// Tombstones still held (for tests: they must not pile up once the stream has passed them).
    public var tombstones: Int { removed.count }

    /// A commit of the ordered stream. A relist replaces everything except what was applied ahead of it.
    public mutating func apply(_ commit: StoreCommit) {
        if commit.relist {
            let ahead = newer(than: commit.index)
            snapshot = ClusterSnapshot()
            positions = Positions(snapshot)
            let pending = removed
            removed = [:]
            apply(commit.changes)
            apply(ahead)
            removed = pending
            for (key, at) in pending { drop(key, at: at) }
        } else {
            apply(commit.changes)
        }
        index = max(index, commit.index)
        removed = removed.filter { $0.value > index }
    }

    /// Changes applied in the order given; each is skipped when the cache already holds a newer write of
    /// its object.
    public mutating func apply(_ changes: [StoreChange]) {
        for change in changes {
            switch change {
            case .node(let c): Self.apply(c, to: &snapshot.nodes, at: &positions.nodes, removed: &removed, index: index)
            case .network(let c): Self.apply(c, to: &snapshot.networks, at: &positions.networks, removed: &removed, index: index)
            case .service(let c): Self.apply(c, to: &snapshot.services, at: &positions.services, removed: &removed, index: index)
            case .task(let c): Self.apply(c, to: &snapshot.tasks, at: &positions.tasks, removed: &removed, index: index)
            // Secrets and configs are no part of a snapshot: a push reads the few a node needs by ID.
            case .secret, .config: break
            }
        }
    }

    private static func apply<T: StoredObject>(
        _ change: ObjectChange<T>, to list: inout [T], at positions: inout [String: Int], removed: inout [Key: UInt64],
        index: UInt64
    ) {
        let key = Key(kind: T.objectKind, id: change.id)
        let held = positions[change.id]
        if let new = change.new {
            if let gone = removed[key], gone >= new.version { return }
            if let held {
                if list[held].version < new.version { list[held] = new }
            } else {
                positions[change.id] = list.count
                list.append(new)
            }
        } else {
            if let held, list[held].version <= change.index { remove(held, from: &list, positions: &positions) }
            if change.index > index { removed[key] = max(removed[key] ?? 0, change.index) }
        }
    }

    /// Takes the object at `i` out; the last one moves into its place.
    private static func remove<T: StoredObject>(_ i: Int, from list: inout [T], positions: inout [String: Int]) {
        positions[list[i].id] = nil
        let last = list.count - 1
        if i != last {
            list.swapAt(i, last)
            positions[list[i].id] = i
        }
        list.removeLast()
    }

    /// Removes the object a tombstone names if the cache holds an older version of it.
    private mutating func drop(_ key: Key, at removal: UInt64) {
        func drop<T: StoredObject>(_ list: inout [T], _ positions: inout [String: Int]) {
            if let i = positions[key.id], list[i].version <= removal { Self.remove(i, from: &list, positions: &positions) }
        }
        switch key.kind {
        case ClusterNode.objectKind: drop(&snapshot.nodes, &positions.nodes)
        case ClusterNetwork.objectKind: drop(&snapshot.networks, &positions.networks)
        case ClusterService.objectKind: drop(&snapshot.services, &positions.services)
        case ClusterTask.objectKind: drop(&snapshot.tasks, &positions.tasks)
        default: break
        }
    }

    /// Every object written after `index` (applied ahead of the stream), as changes to apply again.
    private func newer(than index: UInt64) -> [StoreChange] {
        func ahead<T: StoredObject>(_ list: [T]) -> [StoreChange] {
            list.filter { $0.version > index }.map {
                T.storeChange(ObjectChange(action: .update, old: nil, new: $0, id: $0.id, index: $0.version))
            }
        }
        return ahead(snapshot.nodes) + ahead(snapshot.networks) + ahead(snapshot.services) + ahead(snapshot.tasks)
    }
}
