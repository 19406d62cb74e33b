import Foundation

/// Where the manager keeps the cluster: objects (nodes, networks, services, tasks) and cluster-wide values,
/// read and written in transactions, with a change stream. Two backends: `SQLiteClusterStore` (one file, one
/// manager) and the etcd store (MeshEtcd), which several managers share.
///
/// What every backend promises, and the conformance suite checks on each:
/// - `write` runs its body as one transaction: all of its writes are stored, or none. A backend with
///   optimistic concurrency (etcd) may run the body more than once before it commits, so a body must only
///   read and write through `tx` and return a value: no other side effects.
/// - `Version.Index` (`StoredObject.version`) is the store's revision at the object's last write; it only
///   grows. `update` stores an object only if its version is the stored one (`outOfSequence` otherwise).
/// - Services and networks have unique names; a second owner is refused (`nameConflict`).
/// - `watch` delivers every commit after its index, in commit order, each as one `StoreCommit`. When the
///   store no longer holds the history a watcher asks for, it says so with a relist commit
///   (`StoreCommit.relist`) instead of silently skipping.
public protocol ClusterStore: AnyObject, Sendable {
    /// Whether several managers can share this store (etcd); a store only one process opens (SQLite) makes
    /// a swarm of one manager, and promoting a second is refused rather than claimed.
    var sharedByManagers: Bool { get }
    /// Runs `body` in one write transaction and returns what it returned once the transaction committed.
    func write<T: Sendable>(_ body: @Sendable (any StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> T
    /// Runs `body` on one consistent read-only view.
    func read<T: Sendable>(_ body: @Sendable (any StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> T
    /// Every node, network, service and task at one consistent moment that includes every write this
    /// process has committed through the store, each kind in no particular order. A backend may serve it
    /// from a `SnapshotCache` its commits keep current (the default reads every object).
    func snapshot() throws(ClusterError) -> ClusterSnapshot
    /// Every commit after now.
    func watch() throws(ClusterError) -> StoreWatch
    /// Reads a consistent view with `body` and starts a watch at exactly that view: the commits delivered are
    /// the ones after it, none missed, none already in it.
    func watch<T: Sendable>(reading body: @Sendable (any StoreTransaction) throws(ClusterError) -> T) throws(ClusterError) -> (
        T, StoreWatch
    )
    /// Every commit after `index` (a watcher resuming where it stopped). If the store no longer has the
    /// history back to `index`, the first commit is a relist at the current index.
    func watch(after index: UInt64) throws(ClusterError) -> StoreWatch
}

/// What a transaction can do: the same calls on every backend. Reads inside a write see the
/// transaction's own writes.
public protocol StoreTransaction {
    /// The store's index (revision) this transaction reads at.
    func currentIndex() throws(ClusterError) -> UInt64
    /// Stores a new object (refused if the ID or, for kinds with unique names, the name is taken); returns it
    /// with its version.
    @discardableResult func create<T: StoredObject>(_ object: T) throws(ClusterError) -> T
    /// Stores `object` if its `version` is the stored one; the stored copy gets a new version.
    @discardableResult func update<T: StoredObject>(_ object: T) throws(ClusterError) -> T
    func get<T: StoredObject>(_ type: T.Type, id: String) throws(ClusterError) -> T?
    /// Docker's lookup: exact ID, then exact name, then unique ID prefix.
    func resolve<T: StoredObject>(_ type: T.Type, _ reference: String) throws(ClusterError) -> T
    /// All objects of a kind, ordered by ID.
    func list<T: StoredObject>(_ type: T.Type) throws(ClusterError) -> [T]
    func delete<T: StoredObject>(_ type: T.Type, id: String) throws(ClusterError)
    func tasks(serviceID: String) throws(ClusterError) -> [ClusterTask]
    func tasks(nodeID: String) throws(ClusterError) -> [ClusterTask]
    func value<T: Codable>(_ type: T.Type, forKey key: String) throws(ClusterError) -> T?
    func setValue<T: Codable>(_ value: T, forKey key: String) throws(ClusterError)
    func removeValue(forKey key: String) throws(ClusterError)
}

extension StoreTransaction {
    /// Everything the orchestrator, scheduler and allocator need, read in this transaction.
    public func snapshot() throws(ClusterError) -> ClusterSnapshot {
        ClusterSnapshot(
            nodes: try list(ClusterNode.self), networks: try list(ClusterNetwork.self),
            services: try list(ClusterService.self), tasks: try list(ClusterTask.self))
    }
}

// One-object conveniences, each its own transaction.
extension ClusterStore {
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
    /// Everything the orchestrator, scheduler and allocator need, read in one transaction (a backend
    /// without a cache).
    public func snapshot() throws(ClusterError) -> ClusterSnapshot { try read { tx throws(ClusterError) in try tx.snapshot() } }
}

extension ClusterSnapshot {
    /// Every object as a create with no old value: what a relist commit carries.
    var relistChanges: [StoreChange] {
        nodes.map { .node(ObjectChange(action: .create, old: nil, new: $0, id: $0.id, index: $0.version)) }
            + networks.map { .network(ObjectChange(action: .create, old: nil, new: $0, id: $0.id, index: $0.version)) }
            + services.map { .service(ObjectChange(action: .create, old: nil, new: $0, id: $0.id, index: $0.version)) }
            + tasks.map { .task(ObjectChange(action: .create, old: nil, new: $0, id: $0.id, index: $0.version)) }
    }
}
