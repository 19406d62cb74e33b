import Foundation

/// A kind of object the store keeps in its own table, as JSON plus indexed columns.
public protocol StoredObject: Codable, Sendable {
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
}

extension StoredObject {
    public var serviceIndex: String? { nil }
    public var nodeIndex: String? { nil }
}

extension ClusterNode: StoredObject {
    public static let table = "nodes"
    public static let objectKind = "node"
    public static let uniqueNames = false
    public var storeName: String { hostname }
}

extension ClusterNetwork: StoredObject {
    public static let table = "networks"
    public static let objectKind = "network"
    public static let uniqueNames = true
    public var storeName: String { name }
}

extension ClusterService: StoredObject {
    public static let table = "services"
    public static let objectKind = "service"
    public static let uniqueNames = true
    public var storeName: String { spec.name }
}

extension ClusterTask: StoredObject {
    public static let table = "tasks"
    public static let objectKind = "task"
    public static let uniqueNames = false
    public var storeName: String { "" }
    public var serviceIndex: String? { serviceID }
    public var nodeIndex: String? { nodeID }
}
