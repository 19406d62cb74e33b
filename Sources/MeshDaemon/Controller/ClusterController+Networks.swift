import MeshAPI
import MeshCluster

extension ClusterController {
    public func createNetwork(_ request: NetworkCreateRequest) async throws(EngineError) -> NetworkCreateResponse {
        try requireManager()
        let wanted = try APIMapping.networkRequest(request)
        if wanted.ingress {
            // One ingress network at a time (the manager makes a new one the cluster's); swarmkit's answer
            // for a second one is AlreadyExists.
            let networks = try load { m throws(ClusterError) in try m.store.list(ClusterNetwork.self) }
            if let existing = networks.first(where: \.ingress) {
                throw .conflict(APIMapping.rpc("AlreadyExists", "ingress network (\(existing.id)) is already present"))
            }
        }
        let created = try write { m throws(ClusterError) in try m.createNetwork(wanted) }
        return NetworkCreateResponse(Id: created.id)
    }

    public func listNetworks(_ filter: NetworkFilter) async throws(EngineError) -> [NetworkResource] {
        try requireManager()
        // Only `dangling` needs to know who uses a network; the rest is answered from the networks alone.
        guard filter.args.has("dangling") else {
            let networks = try load { m throws(ClusterError) in try m.store.list(ClusterNetwork.self) }
            return networks.map(APIMapping.network).filter { filter.matches($0, inUse: false) }
        }
        let snapshot = try load { m throws(ClusterError) in try m.store.snapshot() }
        return snapshot.networks.sorted { $0.id < $1.id }.compactMap { n in
            // On a dockerd node ingress always has its load-balancer endpoint, so it is never dangling.
            let users = snapshot.users(ofNetwork: n.id)
            let resource = APIMapping.network(n)
            return filter.matches(resource, inUse: n.ingress || !users.services.isEmpty || !users.tasks.isEmpty) ? resource : nil
        }
    }

    /// Every meshd network is swarm-scoped: a lookup limited to another scope finds nothing, as dockerd's does.
    public func inspectNetwork(_ ref: String, scope: String?) async throws(EngineError) -> NetworkResource {
        try requireManager()
        if let scope, !scope.isEmpty, scope != "swarm" { throw .notFound("network \(ref) not found") }
        return APIMapping.network(try resolve(ClusterNetwork.self, ref))
    }

    /// Refused while a service or task uses the network; `ingress` while a service publishes a port
    /// through it (dockerd allows it otherwise, and `network create --ingress` makes a new one).
    public func removeNetwork(_ ref: String) async throws(EngineError) {
        try requireManager()
        let network = try resolve(ClusterNetwork.self, ref)
        try write { m throws(ClusterError) in try m.removeNetwork(network.id) }
    }

    /// Removes every network no service or task uses, except ingress; returns their names. One network the
    /// manager fails to remove does not stop the others; it is simply not listed.
    public func pruneNetworks() async throws(EngineError) -> [String] {
        try requireManager()
        let snapshot = try load { m throws(ClusterError) in try m.store.snapshot() }
        let unused = snapshot.networks.filter { n in
            let users = snapshot.users(ofNetwork: n.id)
            return !n.ingress && users.services.isEmpty && users.tasks.isEmpty
        }
        var removed: [String] = []
        for n in unused.sorted(by: { $0.name < $1.name }) {
            do {
                try write { m throws(ClusterError) in try m.removeNetwork(n.id) }
                removed.append(n.name)
            } catch {
                continue
            }
        }
        return removed
    }
}
