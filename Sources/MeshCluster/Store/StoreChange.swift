import Foundation

/// What a write did to an object: swarmkit's `WatchActionKind`.
public enum StoreAction: String, Sendable, Codable, CaseIterable { case create, update, remove }

/// One object written by a transaction, with the value before and after the write. The transaction
/// knows both (an update reads the stored copy to check its version, a delete reads it before it goes),
/// so a watcher never has to read the tables again to learn what changed.
public struct ObjectChange<Object: StoredObject>: Sendable, Equatable {
    public var action: StoreAction
    /// The stored value before the write; nil for a create.
    public var old: Object?
    /// The stored value after the write (with its new `version`); nil for a remove.
    public var new: Object?
    public var id: String
    /// The store index the write took: the new object's `version`, or for a remove the index the delete took.
    public var index: UInt64

    public init(action: StoreAction, old: Object?, new: Object?, id: String, index: UInt64) {
        self.action = action
        self.old = old
        self.new = new
        self.id = id
        self.index = index
    }
}

/// A change to one object of any kind, typed by kind so a watcher switches over it without casts.
public enum StoreChange: Sendable, Equatable {
    case node(ObjectChange<ClusterNode>)
    case network(ObjectChange<ClusterNetwork>)
    case service(ObjectChange<ClusterService>)
    case task(ObjectChange<ClusterTask>)
    case secret(ObjectChange<ClusterSecret>)
    case config(ObjectChange<ClusterConfig>)

    /// `node`, `network`, `service`, `task`, `secret` or `config` (the kinds' `objectKind`).
    public var kind: String {
        switch self {
        case .node: ClusterNode.objectKind
        case .network: ClusterNetwork.objectKind
        case .service: ClusterService.objectKind
        case .task: ClusterTask.objectKind
        case .secret: ClusterSecret.objectKind
        case .config: ClusterConfig.objectKind
        }
    }

    public var action: StoreAction {
        switch self {
        case .node(let c): c.action
        case .network(let c): c.action
        case .service(let c): c.action
        case .task(let c): c.action
        case .secret(let c): c.action
        case .config(let c): c.action
        }
    }

    public var id: String {
        switch self {
        case .node(let c): c.id
        case .network(let c): c.id
        case .service(let c): c.id
        case .task(let c): c.id
        case .secret(let c): c.id
        case .config(let c): c.id
        }
    }

    public var index: UInt64 {
        switch self {
        case .node(let c): c.index
        case .network(let c): c.index
        case .service(let c): c.index
        case .task(let c): c.index
        case .secret(let c): c.index
        case .config(let c): c.index
        }
    }
}

/// Everything one committed write transaction changed, in the order it wrote it. Commits reach
/// watchers in commit order (see `ClusterStore.watch`).
public struct StoreCommit: Sendable, Equatable {
    /// The store's version index after the commit: a watcher that saw this commit has seen every write up to it.
    public var index: UInt64
    /// When the transaction finished its writes (the manager's wall clock).
    public var time: Date
    public var changes: [StoreChange]
    /// Cluster-wide values (`setValue`/`removeValue` keys, e.g. settings or the swarm record) the
    /// transaction wrote, sorted; the version counter itself is not listed.
    public var values: [String]
    /// The store could not deliver the commits the watcher asked for (etcd compacted them; SQLite keeps
    /// none): this commit instead holds every object as a create with no old value, and every value's key,
    /// as of `index`. A watcher replaces what it holds with it.
    public var relist: Bool

    public init(index: UInt64, time: Date, changes: [StoreChange], values: [String] = [], relist: Bool = false) {
        self.index = index
        self.time = time
        self.changes = changes
        self.values = values
        self.relist = relist
    }
}

/// A watch on the store: the index it starts after, and every commit from then on.
public struct StoreWatch: Sendable {
    /// The store's index when the watch began: every commit in `commits` has a higher index, and
    /// nothing at or below it will be delivered.
    public let index: UInt64
    public let commits: AsyncStream<StoreCommit>

    public init(index: UInt64, commits: AsyncStream<StoreCommit>) {
        self.index = index
        self.commits = commits
    }
}

/// What a write transaction collects as it writes; only the transaction's own thread touches it.
final class ChangeRecorder {
    var changes: [StoreChange] = []
    var values: Set<String> = []
    /// The last index `nextIndex` handed out in this transaction.
    var index: UInt64?

    var isEmpty: Bool { changes.isEmpty && values.isEmpty }
}
