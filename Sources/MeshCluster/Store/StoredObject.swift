import Foundation

/// A kind of object the store keeps in its own table, as JSON plus indexed columns.
public protocol StoredObject: Codable, Sendable, Equatable {
    /// Table name.
    static var table: String { get }
    /// The word used in errors: "service", "node", ...
    static var objectKind: String { get }
    /// Whether `storeName` must be unique among objects of the kind (services and networks).
    static var uniqueNames: Bool { get }
    var id: String { get }
    /// The name lookups match after the ID ("" when the kind has none).
    var storeName: String { get }
    /// Docker's `Version.Index`: the store's global index at the last write of this object.
    var version: UInt64 { get set }
    var updatedAt: Date { get set }
    var serviceIndex: String? { get }
    var nodeIndex: String? { get }
    /// Wraps a change to an object of this kind for the store's change stream.
    static func storeChange(_ change: ObjectChange<Self>) -> StoreChange
}

extension StoredObject {
    public var serviceIndex: String? { nil }
    public var nodeIndex: String? { nil }
}

extension ClusterNode: StoredObject {
    public static func storeChange(_ change: ObjectChange<Self>) -> StoreChange { .node(change) }
    public static let table = "nodes"
    public static let objectKind = "node"
    public static let uniqueNames = false
    public var storeName: String { hostname }
}

extension ClusterNetwork: StoredObject {
    public static func storeChange(_ change: ObjectChange<Self>) -> StoreChange { .network(change) }
    public static let table = "networks"
    public static let objectKind = "network"
    public static let uniqueNames = true
    public var storeName: String { name }
}

extension ClusterService: StoredObject {
    public static func storeChange(_ change: ObjectChange<Self>) -> StoreChange { .service(change) }
    public static let table = "services"
    public static let objectKind = "service"
    public static let uniqueNames = true
    public var storeName: String { spec.name }
}

extension ClusterTask: StoredObject {
    public static func storeChange(_ change: ObjectChange<Self>) -> StoreChange { .task(change) }
    public static let table = "tasks"
    public static let objectKind = "task"
    public static let uniqueNames = false
    public var storeName: String { "" }
    public var serviceIndex: String? { serviceID }
    public var nodeIndex: String? { nodeID }
}
