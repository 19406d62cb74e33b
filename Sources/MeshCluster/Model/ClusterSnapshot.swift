/// All cluster objects at one moment: the input of the scheduler, allocator and orchestrator.
public struct ClusterSnapshot: Codable, Sendable, Equatable {
    public var nodes: [ClusterNode]
    public var networks: [ClusterNetwork]
    public var services: [ClusterService]
    public var tasks: [ClusterTask]
    public init(
        nodes: [ClusterNode] = [], networks: [ClusterNetwork] = [], services: [ClusterService] = [],
        tasks: [ClusterTask] = []
    ) {
        self.nodes = nodes
        self.networks = networks
        self.services = services
        self.tasks = tasks
    }
}
