import MeshAPI
import MeshCluster

extension ClusterController {
    /// `service ps`, `node ps`, and the CLI's progress polling. The `service` and `node` values are
    /// resolved like any reference (a name or prefix that matches nothing is a 404, as in dockerd), and
    /// only those services' or nodes' tasks are read.
    public func listTasks(_ filter: TaskFilter) async throws(EngineError) -> [SwarmTask] {
        try requireManager()
        var serviceIDs: Set<String>?
        if !filter.services.isEmpty {
            var ids = Set<String>()
            for ref in filter.services { ids.insert(try resolve(ClusterService.self, ref).id) }
            serviceIDs = ids
        }
        var nodeIDs: Set<String>?
        if !filter.nodes.isEmpty {
            var ids = Set<String>()
            for ref in filter.nodes { ids.insert(try resolve(ClusterNode.self, ref).id) }
            nodeIDs = ids
        }
        let byService = serviceIDs, byNode = nodeIDs
        let view = try load { m throws(ClusterError) in
            try m.store.read { tx throws(ClusterError) in
                var tasks: [ClusterTask] = []
                if let byService {
                    for id in byService.sorted() { tasks += try tx.tasks(serviceID: id) }
                } else if let byNode {
                    for id in byNode.sorted() { tasks += try tx.tasks(nodeID: id) }
                } else {
                    tasks = try tx.list(ClusterTask.self)
                }
                return (tasks, try tx.list(ClusterService.self), try tx.list(ClusterNetwork.self))
            }
        }
        let services = Dictionary(view.1.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let apiServices = services.mapValues { APIMapping.service($0) }
        let names = networkNames(view.2)
        return view.0.compactMap { t in
            let task = APIMapping.task(t, networkNames: names)
            let upToDate = services[t.serviceID].map { $0.specVersion == t.specVersion } ?? false
            return filter.matches(task, service: apiServices[t.serviceID], serviceIDs: byService, nodeIDs: byNode,
                                  isUpToDate: upToDate) ? task : nil
        }
    }

    public func inspectTask(_ ref: String) async throws(EngineError) -> SwarmTask {
        try requireManager()
        let task = try resolve(ClusterTask.self, ref)
        let networks = try load { m throws(ClusterError) in try m.store.list(ClusterNetwork.self) }
        return APIMapping.task(task, networkNames: networkNames(networks))
    }

    func networkNames(_ networks: [ClusterNetwork]) -> [String: String] {
        Dictionary(networks.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
    }
}
