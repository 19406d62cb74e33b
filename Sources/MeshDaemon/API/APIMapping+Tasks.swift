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
            if let a6 = twin(of: at.address, on: at.networkID, dualStack) { addresses.append(a6) }
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

    /// On a dual-stack network, the IPv6 twin of an IPv4 address in CIDR form ("10.0.1.5/24" →
    /// "fd00:1::5/64"): computed as the nodes compute it, for a task's address or a service's VIP.
    static func twin(of cidr: String, on network: String, _ dualStack: [String: (IPPrefix, IPPrefix)]) -> String? {
        guard let (v4Subnet, v6Subnet) = dualStack[network], let v4 = IPAddress(String(cidr.split(separator: "/").first ?? "")),
            let a6 = v6Subnet.embedding(hostOf: v4, in: v4Subnet)
        else { return nil }
        return "\(a6)/\(v6Subnet.length)"
    }
}
