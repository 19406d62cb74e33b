import MeshAPI
import MeshCluster
import MeshValues

extension APIMapping {
    /// `networkNames`: network ID → name, for the attachments (a network removed since keeps its ID as name
    /// so `service ps`/`inspect` still show something).
    /// `dualStack`: network ID → (IPv4 subnet, IPv6 subnet) of dual-stack networks, whose tasks show both addresses.
    public static func task(
        _ t: ClusterTask, networkNames: [String: String], dualStack: [String: (IPPrefix, IPPrefix)] = [:]
    ) -> SwarmTask {
        let status = SwarmTask.TaskStatus(
            Timestamp: t.status.timestamp, State: t.status.state.rawValue,
            Message: t.status.message.isEmpty ? nil : t.status.message,
            Err: t.status.err.isEmpty ? nil : t.status.err,
            PortStatus: t.hostPorts.isEmpty ? nil : SwarmTask.PortStatus(Ports: t.hostPorts.map(apiPort)))
        let attachments = t.networks.map { at -> SwarmTask.NetworkAttachment in
            var addresses = [at.address]
            if let (v4Subnet, v6Subnet) = dualStack[at.networkID],
                let v4 = IPAddress(String(at.address.split(separator: "/").first ?? "")),
                let a6 = v6Subnet.embedding(hostOf: v4, in: v4Subnet)
            {
                addresses.append("\(a6)/\(v6Subnet.length)")
            }
            return SwarmTask.NetworkAttachment(
                Network: .init(ID: at.networkID, name: networkNames[at.networkID] ?? at.networkID), Addresses: addresses)
        }
        var out = SwarmTask(
            ID: t.id, Version: ObjectVersion(t.version), CreatedAt: t.createdAt, UpdatedAt: t.updatedAt,
            Spec: apiTaskSpec(t.spec), ServiceID: t.serviceID, Slot: t.slot, NodeID: t.nodeID, Status: status,
            DesiredState: t.desiredState.rawValue, NetworksAttachments: nonEmpty(attachments))
        out.JobIteration = t.jobIteration.map(ObjectVersion.init)
        return out
    }
}
