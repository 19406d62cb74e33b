import Foundation
import MeshAPI
import MeshCluster

/// `docker secret` and `docker config` on the manager. The payload arrives base64-encoded and is kept
/// as bytes in the manager's store (0600, like the CA key); a secret's payload never leaves through the
/// API, a config's is shown back on inspect, as dockerd does. One path serves both kinds: the kind
/// picks the stored type, whose `DataObject` rules do the rest.
extension ClusterController {
    static func storedType(_ kind: SwarmDataKind) -> any DataObject.Type {
        switch kind {
        case .secret: ClusterSecret.self
        case .config: ClusterConfig.self
        }
    }

    public func createSwarmData(_ kind: SwarmDataKind, _ spec: MeshAPI.SwarmDataSpec) async throws(EngineError) -> IDResponse {
        try requireManager()
        let type = Self.storedType(kind), wanted = Self.clusterSpec(spec)
        return IDResponse(ID: try write { m throws(ClusterError) in try m.createData(type, wanted).id })
    }

    public func listSwarmData(_ kind: SwarmDataKind, _ filter: SwarmDataFilter) async throws(EngineError) -> [SwarmDataObject] {
        try requireManager()
        let type = Self.storedType(kind)
        let all = try load { m throws(ClusterError) in try Self.list(type, m) }
        return all.filter(filter.matches).sorted { ($0.CreatedAt, $0.ID) < ($1.CreatedAt, $1.ID) }
    }

    public func inspectSwarmData(_ kind: SwarmDataKind, _ ref: String) async throws(EngineError) -> SwarmDataObject {
        try requireManager()
        return Self.apiObject(try resolve(Self.storedType(kind), ref))
    }

    public func updateSwarmData(_ kind: SwarmDataKind, _ ref: String, version: UInt64, spec: MeshAPI.SwarmDataSpec)
        async throws(EngineError)
    {
        try requireManager()
        let type = Self.storedType(kind), wanted = Self.clusterSpec(spec)
        let id = try resolve(type, ref).id
        try write { m throws(ClusterError) in try m.updateData(type, id, version: version, spec: wanted) }
    }

    public func removeSwarmData(_ kind: SwarmDataKind, _ ref: String) async throws(EngineError) {
        try requireManager()
        let type = Self.storedType(kind)
        let id = try resolve(type, ref).id
        try write { m throws(ClusterError) in try m.removeData(type, id: id) }
    }

    static func list<T: DataObject>(_ type: T.Type, _ m: ClusterManager) throws(ClusterError) -> [SwarmDataObject] {
        try m.store.list(T.self).map { apiObject($0) }
    }

    /// The router has checked that `Data` is base64.
    static func clusterSpec(_ s: MeshAPI.SwarmDataSpec) -> MeshCluster.DataObjectSpec {
        MeshCluster.DataObjectSpec(
            name: s.Name ?? "", labels: s.Labels ?? [:], data: s.Data.flatMap { Data(base64Encoded: $0) } ?? Data(),
            templating: s.Templating?.Name)
    }

    static func apiObject(_ o: any DataObject) -> SwarmDataObject {
        SwarmDataObject(
            ID: o.id, Version: ObjectVersion(o.version), CreatedAt: o.createdAt, UpdatedAt: o.updatedAt,
            Spec: MeshAPI.SwarmDataSpec(
                Name: o.spec.name, Labels: o.spec.labels, Data: type(of: o).showsData ? o.spec.data.base64EncodedString() : nil,
                Templating: o.spec.templating.map { Driver(Name: $0) }))
    }
}
