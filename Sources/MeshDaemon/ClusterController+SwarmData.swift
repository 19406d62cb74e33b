import Foundation
import MeshAPI
import MeshCluster

/// `docker secret` and `docker config` on the manager. The payload arrives base64-encoded and is kept
/// as bytes in the manager's store (0600, like the CA key); a secret's payload never leaves through the
/// API, a config's is shown back on inspect, as dockerd does.
extension ClusterController {
    public func createSwarmData(_ kind: SwarmDataKind, _ spec: MeshAPI.SwarmDataSpec) async throws(EngineError) -> IDResponse {
        try requireManager()
        let wanted = Self.clusterSpec(spec)
        switch kind {
        case .secret: return IDResponse(ID: try write { m throws(ClusterError) in try m.createSecret(wanted) }.id)
        case .config: return IDResponse(ID: try write { m throws(ClusterError) in try m.createConfig(wanted) }.id)
        }
    }

    public func listSwarmData(_ kind: SwarmDataKind, _ filter: SwarmDataFilter) async throws(EngineError) -> [SwarmDataObject] {
        try requireManager()
        let all: [SwarmDataObject]
        switch kind {
        case .secret: all = try load { m throws(ClusterError) in try m.store.list(ClusterSecret.self) }.map(Self.apiObject)
        case .config: all = try load { m throws(ClusterError) in try m.store.list(ClusterConfig.self) }.map(Self.apiObject)
        }
        return all.filter(filter.matches).sorted { ($0.CreatedAt, $0.ID) < ($1.CreatedAt, $1.ID) }
    }

    public func inspectSwarmData(_ kind: SwarmDataKind, _ ref: String) async throws(EngineError) -> SwarmDataObject {
        try requireManager()
        switch kind {
        case .secret: return Self.apiObject(try resolve(ClusterSecret.self, ref))
        case .config: return Self.apiObject(try resolve(ClusterConfig.self, ref))
        }
    }

    public func updateSwarmData(_ kind: SwarmDataKind, _ ref: String, version: UInt64, spec: MeshAPI.SwarmDataSpec)
        async throws(EngineError)
    {
        try requireManager()
        let wanted = Self.clusterSpec(spec)
        switch kind {
        case .secret:
            let id = try resolve(ClusterSecret.self, ref).id
            try write { m throws(ClusterError) in try m.updateSecret(id, version: version, spec: wanted) }
        case .config:
            let id = try resolve(ClusterConfig.self, ref).id
            try write { m throws(ClusterError) in try m.updateConfig(id, version: version, spec: wanted) }
        }
    }

    public func removeSwarmData(_ kind: SwarmDataKind, _ ref: String) async throws(EngineError) {
        try requireManager()
        switch kind {
        case .secret:
            let id = try resolve(ClusterSecret.self, ref).id
            try write { m throws(ClusterError) in try m.removeSecret(id) }
        case .config:
            let id = try resolve(ClusterConfig.self, ref).id
            try write { m throws(ClusterError) in try m.removeConfig(id) }
        }
    }

    /// The router has checked that `Data` is base64.
    static func clusterSpec(_ s: MeshAPI.SwarmDataSpec) -> MeshCluster.DataObjectSpec {
        MeshCluster.DataObjectSpec(
            name: s.Name ?? "", labels: s.Labels ?? [:], data: s.Data.flatMap { Data(base64Encoded: $0) } ?? Data(),
            templating: s.Templating?.Name)
    }

    static func apiObject(_ s: ClusterSecret) -> SwarmDataObject {
        SwarmDataObject(
            ID: s.id, Version: ObjectVersion(s.version), CreatedAt: s.createdAt, UpdatedAt: s.updatedAt,
            Spec: MeshAPI.SwarmDataSpec(
                Name: s.spec.name, Labels: s.spec.labels, Templating: s.spec.templating.map { Driver(Name: $0) }))
    }

    static func apiObject(_ c: ClusterConfig) -> SwarmDataObject {
        SwarmDataObject(
            ID: c.id, Version: ObjectVersion(c.version), CreatedAt: c.createdAt, UpdatedAt: c.updatedAt,
            Spec: MeshAPI.SwarmDataSpec(
                Name: c.spec.name, Labels: c.spec.labels, Data: c.spec.data.base64EncodedString(),
                Templating: c.spec.templating.map { Driver(Name: $0) }))
    }
}
