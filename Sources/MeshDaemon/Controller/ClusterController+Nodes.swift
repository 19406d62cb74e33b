import MeshAPI
import MeshCluster

extension ClusterController {
    public func listNodes(_ filter: NodeFilter) async throws(EngineError) -> [Node] {
        try requireManager()
        let nodes = try load { m throws(ClusterError) in try m.store.list(ClusterNode.self) }
        return nodes.map(apiNode).filter(filter.matches)
    }

    public func inspectNode(_ ref: String) async throws(EngineError) -> Node {
        try requireManager()
        return apiNode(try resolve(ClusterNode.self, ref))
    }

    /// `node update`, `promote`, `demote`: role, availability and labels, checked against `version`.
    public func updateNode(_ ref: String, version: UInt64, spec: NodeSpec) async throws(EngineError) {
        try requireManager()
        let change = try APIMapping.nodeChange(spec)
        _ = try write { m throws(ClusterError) in
            try m.updateNode(ref, version: version, role: change.role, availability: change.availability, labels: change.labels)
        }
    }

    public func removeNode(_ ref: String, force: Bool) async throws(EngineError) {
        try requireManager()
        try write { m throws(ClusterError) in try m.removeNode(ref, force: force) }
    }

    func apiNode(_ n: ClusterNode) -> Node {
        // What the node reported it holds: during a root rotation nodes differ, and the CLI's
        // `swarm ca --rotate` counts those that hold what the swarm's TLSInfo wants.
        APIMapping.node(n, isLeader: n.id == selfNodeID, tlsInfo: n.tlsInfo.map(APIMapping.tlsInfo))
    }
}
