import MeshAPI
import MeshCluster

extension APIMapping {
    /// `networkNames`: network ID → name, for the attachments (a network removed since keeps its ID as name
    /// so `service ps`/`inspect` still show something).
    public static func task(_ t: ClusterTask, networkNames: [String: String]) -> SwarmTask {
        let status = SwarmTask.TaskStatus(
            Timestamp: t.status.timestamp, State: t.status.state.rawValue,
            Message: t.status.message.isEmpty ? nil : t.status.message,
            Err: t.status.err.isEmpty ? nil : t.status.err,
            PortStatus: t.hostPorts.isEmpty ? nil : SwarmTask.PortStatus(Ports: t.hostPorts.map(apiPort)))
        let attachments = t.networks.map {
            SwarmTask.NetworkAttachment(
                Network: .init(ID: $0.networkID, name: networkNames[$0.networkID] ?? $0.networkID),
                Addresses: [$0.address])
        }
        var out = SwarmTask(
            ID: t.id, Version: ObjectVersion(t.version), CreatedAt: t.createdAt, UpdatedAt: t.updatedAt,
            Spec: apiTaskSpec(t.spec), ServiceID: t.serviceID, Slot: t.slot, NodeID: t.nodeID, Status: status,
            DesiredState: t.desiredState.rawValue, NetworksAttachments: nonEmpty(attachments))
        out.JobIteration = t.jobIteration.map(ObjectVersion.init)
        return out
    }
}
