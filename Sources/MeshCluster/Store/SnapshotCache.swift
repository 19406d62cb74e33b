/// The store's nodes, networks, services and tasks held in memory and kept current by applying what each
/// commit changed, so that `ClusterStore.snapshot()` (read several times by every manager pass and by
/// each assignment push) costs a copy-on-write reference instead of reading and decoding every stored
/// object. A commit costs in proportion to what it changed: a binary search and an insert, replace or
/// remove per object.
///
/// Two feeds reach it. The store's ordered change stream (`apply(_: StoreCommit)`) moves `index`: every
/// commit up to it is in. A store may also apply its own committed writes at once
/// (`apply(_: [StoreChange])`), ahead of the stream, so that a write is visible to the next read of the
/// same process; the stream brings those again later. Revisions order all writes, so each object keeps
/// the newest version seen (last writer by revision wins) and a removal ahead of the stream leaves a
/// tombstone until the stream passes it: an older write of the object arriving afterwards cannot bring
/// it back.
public struct SnapshotCache: Sendable, Equatable {
    /// Each kind ordered by ID, as `StoreTransaction.list` returns it.
    public private(set) var snapshot: ClusterSnapshot
    /// Every commit of the ordered stream up to this index has been applied.
    public private(set) var index: UInt64
    /// Objects removed at an index above `index`, by kind and ID, with the index of the removal.
    private var removed: [Key: UInt64] = [:]

    private struct Key: Hashable {
        var kind: String
        var id: String
    }

    /// The view a store read at `index`.
    public init(snapshot: ClusterSnapshot, index: UInt64) {
        self.snapshot = snapshot
        self.index = index
    }

    /// Tombstones still held (for tests: they must not pile up once the stream has passed them).
    public var tombstones: Int { removed.count }

    /// A commit of the ordered stream. A relist replaces everything except what was applied ahead of it.
    public mutating func apply(_ commit: StoreCommit) {
        if commit.relist {
            let ahead = newer(than: commit.index)
            snapshot = ClusterSnapshot()
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
            case .node(let c): Self.apply(c, to: &snapshot.nodes, removed: &removed, index: index)
            case .network(let c): Self.apply(c, to: &snapshot.networks, removed: &removed, index: index)
            case .service(let c): Self.apply(c, to: &snapshot.services, removed: &removed, index: index)
            case .task(let c): Self.apply(c, to: &snapshot.tasks, removed: &removed, index: index)
            // Secrets and configs are no part of a snapshot: a push reads the few a node needs by ID.
            case .secret, .config: break
            }
        }
    }

    private static func apply<T: StoredObject>(
        _ change: ObjectChange<T>, to list: inout [T], removed: inout [Key: UInt64], index: UInt64
    ) {
        let key = Key(kind: T.objectKind, id: change.id)
        let (at, found) = position(of: change.id, in: list)
        if let new = change.new {
            if let gone = removed[key], gone >= new.version { return }
            if found {
                if list[at].version < new.version { list[at] = new }
            } else {
                list.insert(new, at: at)
            }
        } else {
            if found, list[at].version <= change.index { list.remove(at: at) }
            if change.index > index { removed[key] = max(removed[key] ?? 0, change.index) }
        }
    }

    /// Removes the object a tombstone names if the cache holds an older version of it.
    private mutating func drop(_ key: Key, at removal: UInt64) {
        func drop<T: StoredObject>(_ list: inout [T]) {
            let (at, found) = Self.position(of: key.id, in: list)
            if found, list[at].version <= removal { list.remove(at: at) }
        }
        switch key.kind {
        case ClusterNode.objectKind: drop(&snapshot.nodes)
        case ClusterNetwork.objectKind: drop(&snapshot.networks)
        case ClusterService.objectKind: drop(&snapshot.services)
        case ClusterTask.objectKind: drop(&snapshot.tasks)
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

    /// Where `id` is or would go in a list ordered by ID.
    static func position<T: StoredObject>(of id: String, in list: [T]) -> (Int, found: Bool) {
        var low = 0
        var high = list.count
        while low < high {
            let mid = (low + high) / 2
            if list[mid].id < id { low = mid + 1 } else { high = mid }
        }
        return (low, low < list.count && list[low].id == id)
    }
}
