import Foundation
import MeshValues

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
    /// What this object holds that no other object may hold at the same time: addresses on a network, a
    /// subnet, a VNI, a published port. A shared store keeps a claim key for each, created in the owner's
    /// transaction only if absent, so two managers can never hand the same one out (the allocator decides;
    /// the claims make a stale allocator's decision fail instead of doubling an owner).
    var storeClaims: [String] { get }
}

extension StoredObject {
    public var serviceIndex: String? { nil }
    public var nodeIndex: String? { nil }
    public var storeClaims: [String] { [] }
}

/// Claim names, one per exclusive resource (see `StoredObject.storeClaims`).
public enum StoreClaim {
    /// An address on a network; `address` may carry its prefix length (`10.0.0.5/24`), which is dropped.
    public static func address(network: String, _ address: String) -> String {
        "ipam/\(network)/\(address.split(separator: "/").first.map(String.init) ?? address)"
    }
    public static func subnet(_ subnet: IPPrefix) -> String { "subnets/\(subnet.description.replacingOccurrences(of: "/", with: "_"))" }
    public static func vni(_ vni: UInt32) -> String { "vni/\(vni)" }
    public static func port(_ p: PortConfig) -> String { "ports/\(p.protocol.rawValue)/\(p.publishedPort)" }
}

extension ClusterNode: StoredObject {
    public static func storeChange(_ change: ObjectChange<Self>) -> StoreChange { .node(change) }
    public static let table = "nodes"
    public static let objectKind = "node"
    public static let uniqueNames = false
    public var storeName: String { hostname }
    /// Its load-balancer addresses.
    public var storeClaims: [String] { attachments.map { StoreClaim.address(network: $0.networkID, $0.address) } }
}

extension ClusterNetwork: StoredObject {
    public static func storeChange(_ change: ObjectChange<Self>) -> StoreChange { .network(change) }
    public static let table = "networks"
    public static let objectKind = "network"
    public static let uniqueNames = true
    public var storeName: String { name }
    public var storeClaims: [String] { [StoreClaim.subnet(subnet), StoreClaim.vni(vni)] }
}

extension ClusterService: StoredObject {
    public static func storeChange(_ change: ObjectChange<Self>) -> StoreChange { .service(change) }
    public static let table = "services"
    public static let objectKind = "service"
    public static let uniqueNames = true
    public var storeName: String { spec.name }
    /// VIPs, and ports published through the routing mesh (host-mode ports are per node and per task).
    public var storeClaims: [String] {
        endpoint.virtualIPs.map { StoreClaim.address(network: $0.networkID, $0.addr) }
            + endpoint.ports.filter { $0.publishMode == .ingress && $0.publishedPort != 0 }.map(StoreClaim.port)
    }
}

extension ClusterSecret: DataObject {
    public static func storeChange(_ change: ObjectChange<Self>) -> StoreChange { .secret(change) }
    public static let table = "secrets"
    public static let objectKind = "secret"
    public static let uniqueNames = true
    public var storeName: String { spec.name }
}

extension ClusterConfig: DataObject {
    public static func storeChange(_ change: ObjectChange<Self>) -> StoreChange { .config(change) }
    public static let table = "configs"
    public static let objectKind = "config"
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
    public var storeClaims: [String] { networks.map { StoreClaim.address(network: $0.networkID, $0.address) } }
}
