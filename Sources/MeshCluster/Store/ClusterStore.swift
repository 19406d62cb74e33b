import Foundation
import GRDB

/// The manager's state in one SQLite file: a table per kind (JSON body plus indexed id, name, service and node
/// columns) and a key/value table for cluster-wide values (CA, tokens, settings, the version counter).
/// Every write takes a new version index from one counter, so `Version.Index` orders all changes like swarmkit's.
public final class ClusterStore: Sendable {
    private let queue: DatabaseQueue
    public let path: String

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
            queue = try DatabaseQueue(path: path, configuration: config)
            try queue.write { db in try Self.migrate(db) }
        } catch {
            throw .storage("cannot open cluster store \(path): \(error)")
        }
    }

    private static func migrate(_ db: Database) throws {
        for table in [ClusterNode.table, ClusterNetwork.table, ClusterService.table, ClusterTask.table] {
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

    /// Runs `body` in one write transaction: all of its changes are stored, or none.
    public func write<T: Sendable>(_ body: @Sendable (inout StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> T {
        do {
            return try queue.write { db in
                var tx = StoreTransaction(db: db)
                do throws(ClusterError) { return try body(&tx) } catch { throw Wrapped(error: error) }
            }
        } catch let wrapped as Wrapped {
            throw wrapped.error
        } catch {
            throw .storage("cluster store write failed: \(error)")
        }
    }

    /// Runs `body` on a consistent read-only view.
    public func read<T: Sendable>(_ body: @Sendable (StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> T {
        do {
            return try queue.read { db in
                do throws(ClusterError) { return try body(StoreTransaction(db: db)) } catch { throw Wrapped(error: error) }
            }
        } catch let wrapped as Wrapped {
            throw wrapped.error
        } catch {
            throw .storage("cluster store read failed: \(error)")
        }
    }

    private struct Wrapped: Error { let error: ClusterError }

    // One-object conveniences, each its own transaction.

    @discardableResult
    public func create<T: StoredObject>(_ object: T) throws(ClusterError) -> T {
        try write { tx throws(ClusterError) in try tx.create(object) }
    }
    @discardableResult
    public func update<T: StoredObject>(_ object: T) throws(ClusterError) -> T {
        try write { tx throws(ClusterError) in try tx.update(object) }
    }
    public func get<T: StoredObject>(_ type: T.Type, id: String) throws(ClusterError) -> T? {
        try read { tx throws(ClusterError) in try tx.get(type, id: id) }
    }
    /// Exact ID, then exact name, then unique ID prefix (Docker's lookup order).
    public func resolve<T: StoredObject>(_ type: T.Type, _ reference: String) throws(ClusterError) -> T {
        try read { tx throws(ClusterError) in try tx.resolve(type, reference) }
    }
    public func list<T: StoredObject>(_ type: T.Type) throws(ClusterError) -> [T] {
        try read { tx throws(ClusterError) in try tx.list(type) }
    }
    public func delete<T: StoredObject>(_ type: T.Type, id: String) throws(ClusterError) {
        try write { tx throws(ClusterError) in try tx.delete(type, id: id) }
    }
    public func tasks(serviceID: String) throws(ClusterError) -> [ClusterTask] {
        try read { tx throws(ClusterError) in try tx.tasks(serviceID: serviceID) }
    }
    public func tasks(nodeID: String) throws(ClusterError) -> [ClusterTask] {
        try read { tx throws(ClusterError) in try tx.tasks(nodeID: nodeID) }
    }
    public func value<T: Codable & Sendable>(_ type: T.Type, forKey key: String) throws(ClusterError) -> T? {
        try read { tx throws(ClusterError) in try tx.value(type, forKey: key) }
    }
    public func setValue<T: Codable & Sendable>(_ value: T, forKey key: String) throws(ClusterError) {
        try write { tx throws(ClusterError) in try tx.setValue(value, forKey: key) }
    }
    /// Everything the orchestrator, scheduler and allocator need, read in one transaction.
    public func snapshot() throws(ClusterError) -> ClusterSnapshot { try read { tx throws(ClusterError) in try tx.snapshot() } }
}
