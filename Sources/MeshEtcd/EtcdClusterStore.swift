import Foundation
import MeshCluster
import Synchronization

/// The cluster store on etcd, shared by every manager. Objects live under `EtcdKeys`; each write runs its body
/// as an `EtcdTransaction` and commits it as one etcd txn, compared on every key it read and, when set, on the
/// leader's fencing token. `Version.Index` is the etcd revision.
///
/// The API is synchronous like the SQLite store's: each call blocks its thread for the round trips (about a
/// millisecond each on one host); run it off NIO's event loops.
public final class EtcdClusterStore: ClusterStore {
    public var sharedByManagers: Bool { true }
    public let client: EtcdClient
    public let keys: EtcdKeys
    /// How often a write body runs before a conflict is given up as `StoreError.conflict`.
    public let attempts: Int
    private let fenceState = Mutex<EtcdFence?>(nil)
    private let cached = Mutex<Cached?>(nil)

    /// The leader's view of the objects: read once when it took the lead, then kept current by its own
    /// writes (at once, so a pass sees what it just wrote) and by a watch from that read (whatever else
    /// commits). It serves only under the fence it was filled under: while that fence holds, no other
    /// manager's write to the objects can commit (the followers forward theirs to the leader), so what the
    /// read and the two feeds bring is everything. A follower (no fence) reads etcd on every call.
    private struct Cached {
        var fence: EtcdFence
        var cache: SnapshotCache
        var feed: Task<Void, Never>
    }

    public init(client: EtcdClient, keys: EtcdKeys = EtcdKeys(), attempts: Int = 3) {
        self.client = client
        self.keys = keys
        self.attempts = max(1, attempts)
    }

    /// The fencing token every write from now on carries (a leader sets it on winning, clears it on stepping
    /// down); nil writes unguarded.
    public var fence: EtcdFence? {
        get { fenceState.withLock { $0 } }
        set { fenceState.withLock { $0 = newValue } }
    }

    deinit { cached.withLock { $0?.feed.cancel() } }

    /// Under a fence, from the leader's cache (filled by the first call under it); otherwise one read of etcd.
    public func snapshot() throws(ClusterError) -> ClusterSnapshot {
        guard let fence else { return try read { tx throws(ClusterError) in try tx.snapshot() } }
        if let held = cached.withLock({ c in c?.fence == fence ? c?.cache.snapshot : nil }) { return held }
        let (snapshot, watch) = try watch { tx throws(ClusterError) in try tx.snapshot() }
        let feed = Task { [weak self] in
            for await commit in watch.commits {
                guard let self else { return }
                self.cached.withLock { c in if c?.fence == fence { c?.cache.apply(commit) } }
            }
        }
        cached.withLock { c in
            c?.feed.cancel()
            c = Cached(fence: fence, cache: SnapshotCache(snapshot: snapshot, index: watch.index), feed: feed)
        }
        return snapshot
    }

    /// The cache's index and tombstones under the current fence (for tests).
    public var cacheState: (index: UInt64, tombstones: Int)? {
        cached.withLock { c in c.map { ($0.cache.index, $0.cache.tombstones) } }
    }

    // MARK: transactions

    public func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> T {
        var lastFailure = StoreError.conflict(key: "?", expected: 0, found: 0)
        for _ in 0..<attempts {
            let tx = EtcdTransaction(client: client, keys: keys, writable: true)
            let result: T
            do {
                result = try body(tx)
            } catch .store(.compacted) {
                // The attempt's read revision was compacted under it: run again at a newer one.
                continue
            }
            guard tx.hasWrites else { return result }
            let fence = self.fence
            let response: TxnResponse
            do { response = try client.txn(tx.commitRequest(fence: fence)) } catch { throw .store(error) }
            if response.succeeded == true {
                guard let revision = response.header?.revision?.value else {
                    throw .store(.malformed(endpoint: "etcd", detail: "txn answer without a revision"))
                }
                if let fence {
                    let changes = tx.objectChanges(revision: revision)
                    if !changes.isEmpty { cached.withLock { c in if c?.fence == fence { c?.cache.apply(changes) } } }
                }
                return Self.committed(result, revision: UInt64(revision))
            }
            lastFailure = tx.failure(of: response, fence: fence)
            if case .fenced = lastFailure { throw .store(lastFailure) }
        }
        throw .store(lastFailure)
    }

    public func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> T {
        var last: ClusterError = .store(.compacted(requested: 0, compactRevision: 0))
        for _ in 0..<attempts {
            do { return try body(EtcdTransaction(client: client, keys: keys, writable: false)) } catch .store(.compacted(let r, let c)) {
                last = .store(.compacted(requested: r, compactRevision: c))
            }
        }
        throw last
    }

    /// Objects written by the body carry a placeholder version until the txn's revision is known; a returned
    /// object gets the real one.
    static func committed<T>(_ result: T, revision: UInt64) -> T {
        func stamp<O: StoredObject>(_ o: O) -> O {
            var o = o
            if o.version == EtcdTransaction.pendingVersion { o.version = revision }
            return o
        }
        guard let object = result as? any StoredObject else { return result }
        return (stamp(object) as? T) ?? result
    }

    // MARK: watch

    public func watch() throws(ClusterError) -> StoreWatch {
        let revision: Int64
        do { revision = try client.currentRevision(keys.all) } catch { throw .store(error) }
        return startWatch(after: revision)
    }

    public func watch<T: Sendable>(reading body: @Sendable (any StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> (
        T, StoreWatch
    ) {
        let (value, revision) = try read { tx throws(ClusterError) in (try body(tx), try tx.currentIndex()) }
        return (value, startWatch(after: Int64(revision)))
    }

    public func watch(after index: UInt64) throws(ClusterError) -> StoreWatch {
        let current: Int64
        do { current = try client.currentRevision(keys.all) } catch { throw .store(error) }
        guard index <= UInt64(current) else {
            throw .invalidArgument("cannot watch after index \(index): the store is at \(current)")
        }
        return startWatch(after: Int64(index))
    }

    private func startWatch(after revision: Int64) -> StoreWatch {
        let (commits, continuation) = AsyncStream.makeStream(of: StoreCommit.self, bufferingPolicy: .unbounded)
        let feed = EtcdWatchFeed(client: client, keys: keys, continuation: continuation)
        let task = Task { await feed.run(after: revision) }
        continuation.onTermination = { _ in task.cancel() }
        return StoreWatch(index: UInt64(revision), commits: commits)
    }
}
