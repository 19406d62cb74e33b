import MeshAPI
import MeshCluster
import MeshValues

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
                var services: [ClusterService] = []
                if let byService {
                    for id in byService.sorted() { if let s = try tx.get(ClusterService.self, id: id) { services.append(s) } }
                } else {
                    services = try tx.list(ClusterService.self)
                }
                return (tasks, services, try tx.list(ClusterNetwork.self))
            }
        }
        let services = Dictionary(view.1.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let names = networkNames(view.2)
        let dual = dualStack(view.2)
        // The filter reads the service's name and labels; map each service once, and only those with tasks here.
        var apiServices: [String: Service] = [:]
        return view.0.compactMap { t in
            let task = APIMapping.task(t, networkNames: names, dualStack: dual)
            let service = services[t.serviceID]
            if let service, apiServices[service.id] == nil { apiServices[service.id] = APIMapping.service(service) }
            let upToDate = service.map { $0.specVersion == t.specVersion } ?? false
            return filter.matches(
                task, service: apiServices[t.serviceID], serviceIDs: byService, nodeIDs: byNode,
                isUpToDate: upToDate) ? task : nil
        }
    }

    public func inspectTask(_ ref: String) async throws(EngineError) -> SwarmTask {
        try requireManager()
        let task = try resolve(ClusterTask.self, ref)
        let networks = try load { m throws(ClusterError) in try m.store.list(ClusterNetwork.self) }
        return APIMapping.task(task, networkNames: networkNames(networks), dualStack: dualStack(networks))
    }

    func dualStack(_ networks: [ClusterNetwork]) -> [String: (IPPrefix, IPPrefix)] {
        var out: [String: (IPPrefix, IPPrefix)] = [:]
        for n in networks { if let s6 = n.subnet6 { out[n.id] = (n.subnet, s6) } }
        return out
    }

    func networkNames(_ networks: [ClusterNetwork]) -> [String: String] {
        Dictionary(networks.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
    }
}
