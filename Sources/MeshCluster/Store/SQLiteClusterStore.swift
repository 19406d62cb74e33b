import Foundation
import GRDB
import Synchronization

/// The manager's state in one SQLite file: a table per kind (JSON body plus indexed id, name, service and node
/// columns) and a key/value table for cluster-wide values (CA, tokens, settings, the version counter).
/// Every write takes a new version index from one counter, so `Version.Index` orders all changes like swarmkit's.
///
/// Every committed write transaction is also delivered to watchers (`watch`) as a `StoreCommit`: what it
/// created, updated and removed, old and new values, in commit order. SQLite keeps no history, so a
/// watch can start only at the current index (`watch(after:)` an older one relists).
public final class SQLiteClusterStore: ClusterStore {
    /// One file on one manager's disk.
    public var sharedByManagers: Bool { false }
    private let queue: DatabaseQueue
    public let path: String
    private let watchers = Mutex<Watchers>(Watchers())
    /// Filled by the first `snapshot()` and kept current by every commit (the store has one writer,
    /// this object, so nothing it does not see can change the file).
    private let cache = Mutex<SnapshotCache?>(nil)

    private struct Watchers {
        var next = 0
        var continuations: [Int: AsyncStream<StoreCommit>.Continuation] = [:]
    }

    /// Opens (creating if needed) the store at `path`, e.g. `<data-root>/cluster.sqlite`. A new file is
    /// created mode 0600.
    public init(path: String) throws(ClusterError) {
        self.path = path
        // The store holds the CA's private key, the gossip keys and the join tokens. SQLite would create the file
        // 0644 (less the umask), so it is made here first, owner-only; SQLite then gives its journal, WAL and
        // shared-memory files the database file's mode, so none of them is ever wider either.
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .storage("cannot create cluster store \(path): \(String(cString: strerror(errno)))") }
        close(fd)
        do {
            var config = Configuration()
            config.busyMode = .timeout(5)
            // Overwritten rows leave no copy in free pages: once autolock seals the CA key, the file
            // must not still hold it in the open (nor a rotated token, nor a removed secret).
            config.prepareDatabase { db in try db.execute(sql: "PRAGMA secure_delete = ON") }
            queue = try DatabaseQueue(path: path, configuration: config)
            try queue.write { db in try Self.migrate(db) }
        } catch {
            throw .storage("cannot open cluster store \(path): \(error)")
        }
    }

    private static func migrate(_ db: Database) throws {
        for table in [
            ClusterNode.table, ClusterNetwork.table, ClusterService.table, ClusterTask.table, ClusterSecret.table, ClusterConfig.table,
        ] {
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS \(table) (
                      id TEXT PRIMARY KEY NOT NULL,
                      name TEXT NOT NULL,
                      version INTEGER NOT NULL,
                      service_id TEXT,
                      node_id TEXT,
                      data TEXT NOT NULL);
                    CREATE INDEX IF NOT EXISTS \(table)_name ON \(table)(name);
                    CREATE INDEX IF NOT EXISTS \(table)_service ON \(table)(service_id);
                    CREATE INDEX IF NOT EXISTS \(table)_node ON \(table)(node_id);
                    """)
        }
        try db.execute(sql: "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)")
    }

    deinit {
        for c in watchers.withLock({ $0.continuations.values }) { c.finish() }
    }

    /// Runs `body` in one write transaction: all of its changes are stored, or none. Watchers get what
    /// it changed once it has committed.
    public func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> T {
        do {
            return try queue.write { db in
                let recorder = ChangeRecorder()
                let sqlite = SQLiteTransaction(db: db, recorder: recorder)
                let result: T
                do throws(ClusterError) { result = try body(sqlite) } catch { throw Wrapped(error: error) }
                if !recorder.isEmpty {
                    let commit = StoreCommit(
                        index: try recorder.index ?? sqlite.currentIndex(), time: Date(), changes: recorder.changes,
                        values: recorder.values.sorted())
                    // GRDB runs this on the writer's queue right after COMMIT succeeds (never after a
                    // rollback), serialised with every other write: watchers see commits in commit order
                    // and never a change that was not stored.
                    db.afterNextTransaction(onCommit: { [self] _ in self.publish(commit) })
                }
                return result
            }
        } catch let wrapped as Wrapped {
            throw wrapped.error
        } catch {
            throw .storage("cluster store write failed: \(error)")
        }
    }

    /// Runs `body` on a consistent read-only view.
    public func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> T {
        do {
            return try queue.read { db in
                do throws(ClusterError) { return try body(SQLiteTransaction(db: db)) } catch { throw Wrapped(error: error) }
            }
        } catch let wrapped as Wrapped {
            throw wrapped.error
        } catch {
            throw .storage("cluster store read failed: \(error)")
        }
    }

    private struct Wrapped: Error { let error: ClusterError }

    /// From the cache: what every commit so far left. The first call reads the tables once; commits
    /// run on the queue reads run on, so none can land between that read and the cache taking over.
    public func snapshot() throws(ClusterError) -> ClusterSnapshot {
        if let held = cache.withLock({ $0?.snapshot }) { return held }
        return try read { tx throws(ClusterError) in
            let snapshot = try tx.snapshot()
            let index = try tx.currentIndex()
            self.cache.withLock { $0 = SnapshotCache(snapshot: snapshot, index: index) }
            return snapshot
        }
    }

    // MARK: change stream

    /// Every commit after now. The stream buffers without bound: a watcher that rebuilds state from it
    /// must not lose a commit, so it has to keep up (the event log and a manager cache do, in memory).
    public func watch() -> StoreWatch {
        // A read runs on the queue every write runs on, so no commit can land between reading the index
        // and registering the watcher.
        let registered = try? queue.read { db -> StoreWatch in
            let index = try SQLiteTransaction(db: db).currentIndex()
            return StoreWatch(index: index, commits: register())
        }
        return registered ?? StoreWatch(index: 0, commits: register())
    }

    /// Reads a consistent view with `body` and starts a watch at exactly that view: the commits
    /// delivered are the ones after it, none missed, none already in it (a cache fills from the view,
    /// then applies the commits).
    public func watch<T: Sendable>(reading body: @Sendable (any StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> (
        T, StoreWatch
    ) {
        try read { tx throws(ClusterError) in
            let value = try body(tx)
            return (value, StoreWatch(index: try tx.currentIndex(), commits: register()))
        }
    }

    /// Commits after `index`. SQLite keeps no history: from the current index this is `watch()`; from an older
    /// one the first commit is a relist (`StoreCommit.relist`: every object and value as stored now), as an
    /// etcd watch from a compacted revision.
    public func watch(after index: UInt64) throws(ClusterError) -> StoreWatch {
        try read { tx throws(ClusterError) in
            let current = try tx.currentIndex()
            guard index <= current else {
                throw .invalidArgument("cannot watch after index \(index): the store is at \(current)")
            }
            guard index < current else { return StoreWatch(index: index, commits: register()) }
            let snapshot = try tx.snapshot()
            let keys = try (tx as? SQLiteTransaction)?.valueKeys() ?? []
            let secrets = try tx.list(ClusterSecret.self).map { s in
                StoreChange.secret(ObjectChange(action: .create, old: nil, new: s, id: s.id, index: s.version))
            }
            let configs = try tx.list(ClusterConfig.self).map { c in
                StoreChange.config(ObjectChange(action: .create, old: nil, new: c, id: c.id, index: c.version))
            }
            let data = secrets + configs
            let relist = StoreCommit(
                index: current, time: Date(), changes: snapshot.relistChanges + data, values: keys, relist: true)
            return StoreWatch(index: index, commits: register(first: relist))
        }
    }

    private func register(first: StoreCommit? = nil) -> AsyncStream<StoreCommit> {
        let (stream, continuation) = AsyncStream.makeStream(of: StoreCommit.self, bufferingPolicy: .unbounded)
        if let first { continuation.yield(first) }
        let id = watchers.withLock { w in
            w.next += 1
            w.continuations[w.next] = continuation
            return w.next
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.watchers.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    /// Watches not yet ended (for tests: a watcher that stops must not be kept).
    var watcherCount: Int { watchers.withLock { $0.continuations.count } }

    private func publish(_ commit: StoreCommit) {
        cache.withLock { $0?.apply(commit) }
        for c in watchers.withLock({ Array($0.continuations.values) }) { c.yield(commit) }
    }
}
