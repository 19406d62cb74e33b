import Foundation
import MeshCluster

/// Turns an etcd watch on the store's prefix into `StoreCommit`s: the events of one revision (one txn) become
/// one commit, keys that are no objects or values (claims, names, election) are left out, and a revision that
/// touched only those yields nothing. When the stream breaks it resumes after the last revision it delivered;
/// when etcd has compacted that history it relists: one commit with `relist` set holding everything at the
/// current revision, then watches on from there.
struct EtcdWatchFeed: Sendable {
    let client: EtcdClient
    let keys: EtcdKeys
    let continuation: AsyncStream<StoreCommit>.Continuation

    /// How long to wait before reopening a broken stream.
    static let retryDelay = Duration.milliseconds(200)

    func run(after revision: Int64) async {
        var delivered = revision
        while !Task.isCancelled {
            let stream = client.watch(
                WatchCreateRequest(
                    key: keys.all, range_end: EtcdKey.prefixEnd(keys.all), start_revision: EtcdInt(delivered + 1),
                    progress_notify: true, prev_kv: true))
            var compacted = false
            do {
                for try await message in stream {
                    if message.canceled == true {
                        // A cancelled gateway watch stays open: leave it (the iterator's end closes it).
                        compacted = (message.compact_revision?.value ?? 0) > 0
                        break
                    }
                    for commit in commits(message.events ?? []) {
                        continuation.yield(commit)
                        delivered = Int64(commit.index)
                    }
                    // Progress notifications and empty revisions move the resume point too.
                    if let r = message.header?.revision?.value, (message.events ?? []).isEmpty, message.created != true {
                        delivered = max(delivered, r)
                    }
                }
            } catch {
                // Unavailable or broken: retry below from `delivered`.
            }
            if Task.isCancelled { break }
            if compacted {
                if let r = relist() { delivered = r }
                continue
            }
            try? await Task.sleep(for: Self.retryDelay)
        }
        continuation.finish()
    }

    /// Everything at the current revision, as one relist commit; nil if etcd could not be read (the next
    /// attempt tries again).
    private func relist() -> Int64? {
        do {
            let objects = try client.range(RangeRequest(key: keys.objects, rangeEnd: EtcdKey.prefixEnd(keys.objects)))
            guard let revision = objects.header?.revision?.value else { return nil }
            let values = try client.range(
                RangeRequest(key: keys.values, rangeEnd: EtcdKey.prefixEnd(keys.values), revision: revision, keysOnly: true))
            var changes: [StoreChange] = []
            for kv in objects.kvs ?? [] {
                if let c = keys.change(kv: kv, prev: nil, delete: false, forceCreate: true) { changes.append(c) }
            }
            let names = (values.kvs ?? []).compactMap { kv -> String? in
                if case .value(let k) = keys.parse(kv.key) { return k }
                return nil
            }
            continuation.yield(StoreCommit(index: UInt64(revision), time: Date(), changes: changes, values: names.sorted(), relist: true))
            return revision
        } catch {
            return nil
        }
    }

    /// The events of a watch message, grouped by revision, as commits.
    func commits(_ events: [Event]) -> [StoreCommit] {
        var out: [StoreCommit] = []
        var revision: Int64 = -1
        var changes: [StoreChange] = []
        var values: Set<String> = []
        func flush() {
            if revision >= 0, !changes.isEmpty || !values.isEmpty {
                out.append(StoreCommit(index: UInt64(revision), time: Date(), changes: changes, values: values.sorted()))
            }
            changes = []
            values = []
        }
        for e in events {
            if e.kv.modRevision != revision {
                flush()
                revision = e.kv.modRevision
            }
            switch keys.parse(e.kv.key) {
            case .object:
                if let c = keys.change(kv: e.kv, prev: e.prev_kv, delete: e.isDelete, forceCreate: false) { changes.append(c) }
            case .value(let k):
                values.insert(k)
            case .other:
                break
            }
        }
        flush()
        return out
    }
}

extension EtcdKeys {
    /// One object event as a typed change; nil for a table this build does not know or a record that does not
    /// decode (etcd holds it, but no watcher could use it).
    func change(kv: KeyValue, prev: KeyValue?, delete: Bool, forceCreate: Bool) -> StoreChange? {
        guard case .object(let table, let id) = parse(kv.key) else { return nil }
        func typed<T: StoredObject>(_ type: T.Type) -> StoreChange? {
            let key = describe(kv.key)
            let index = UInt64(kv.modRevision)
            let old = prev.flatMap { p in
                try? EtcdTransaction.object(type, p.value ?? Data(), version: UInt64(p.modRevision), key: key)
            }
            if delete {
                return T.storeChange(ObjectChange(action: .remove, old: old, new: nil, id: id, index: index))
            }
            guard let new = try? EtcdTransaction.object(type, kv.value ?? Data(), version: index, key: key) else { return nil }
            let action: StoreAction = forceCreate || (kv.version?.value ?? 0) == 1 ? .create : .update
            return T.storeChange(ObjectChange(action: action, old: action == .create ? nil : old, new: new, id: id, index: index))
        }
        switch table {
        case ClusterNode.table: return typed(ClusterNode.self)
        case ClusterNetwork.table: return typed(ClusterNetwork.self)
        case ClusterService.table: return typed(ClusterService.self)
        case ClusterTask.table: return typed(ClusterTask.self)
        case ClusterSecret.table: return typed(ClusterSecret.self)
        case ClusterConfig.table: return typed(ClusterConfig.self)
        default: return nil
        }
    }
}
