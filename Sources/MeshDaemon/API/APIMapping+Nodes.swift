import MeshAPI
import MeshCluster

extension APIMapping {
    /// `isLeader`: meshd has one acting manager (the one running the controller), so leadership is
    /// decided by the caller rather than by a flag in the store that may be stale.
    public static func node(_ n: ClusterNode, isLeader: Bool, tlsInfo: MeshAPI.TLSInfo?) -> MeshAPI.Node {
        let description = Node.Description(
            Hostname: n.hostname,
            Platform: .init(Architecture: n.description.architecture, OS: n.description.os),
            Resources: .init(NanoCPUs: n.description.nanoCPUs, MemoryBytes: n.description.memoryBytes),
            Engine: .init(EngineVersion: n.description.engineVersion),
            TLSInfo: tlsInfo)
        var managerStatus: Node.ManagerStatus?
        if n.role == .manager {
            // The CLI prints Reachability unless Leader is set; a down manager is unreachable in swarmkit too.
            managerStatus = Node.ManagerStatus(
                Leader: isLeader ? true : nil,
                Reachability: n.state == .down ? "unreachable" : "reachable",
                Addr: n.managerAddr ?? "\(n.addr):2377")
        }
        return Node(
            ID: n.id, Version: ObjectVersion(n.version), CreatedAt: n.createdAt, UpdatedAt: n.updatedAt,
            Spec: NodeSpec(Labels: n.labels, Role: n.role.rawValue, Availability: n.availability.rawValue),
            Description: description,
            Status: .init(State: n.state.rawValue, Message: n.stateMessage.isEmpty ? nil : n.stateMessage, Addr: n.addr),
            ManagerStatus: managerStatus)
    }

    /// The parts of a `NodeSpec` the store keeps (swarmkit's node names are not kept: `Spec.Name` is ignored).
    public static func nodeChange(_ spec: NodeSpec) throws(EngineError) -> (
        role: NodeRole, availability: NodeAvailability, labels: [String: String]
    ) {
        guard let role = NodeRole(rawValue: spec.Role) else {
            throw .invalidArgument("invalid role \(spec.Role), only worker and manager are supported")
        }
        guard let availability = NodeAvailability(rawValue: spec.Availability) else {
            throw .invalidArgument("invalid availability \(spec.Availability), only active, pause and drain are supported")
        }
        return (role, availability, spec.Labels ?? [:])
    }
}
