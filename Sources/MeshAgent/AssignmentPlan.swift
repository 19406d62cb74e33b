import MeshControl
import MeshDataplane
import MeshDNS
import MeshKernel

/// Pure translations of an assignment: the dataplane state and the DNS records it implies.
enum AssignmentPlan {
    /// `attached`: local tasks whose namespaces exist (prepared), by task id → namespace name.
    /// `draining`: local tasks being stopped: still attached, but weight 0 in every balancer.
    /// `secrets`: the gossip keys, primary first, from which each pair's ESP keys are derived
    /// (`ESPKeyDerivation`) for the nodes that have tasks on an encrypted network.
    static func dataplane(
        _ a: NodeAssignment, attached: [String: String], draining: Set<String>, secrets: [[UInt8]] = []
    ) -> DataplaneState {
        let ingress = a.networks.first(where: \.isIngress)?.id
        let byID = networksByID(a)
        var locals: [LocalEndpoint] = []
        for t in a.tasks {
            guard let ns = attached[t.id] else { continue }
            let gateway = t.attachments.first { $0.network != ingress } ?? t.attachments.first
            for (i, at) in t.attachments.enumerated() {
                locals.append(
                    LocalEndpoint(
                        id: t.id, network: at.network, namespace: ns, address: at.address,
                        interface: "eth\(i)", defaultRoute: at == gateway,
                        names: [t.name], aliases: [], address6: byID[at.network]?.address6(for: at.address)))
            }
        }
        var remotes: [RemoteEndpoint] = []
        for r in a.remoteTasks {
            for at in r.attachments {
                remotes += remoteEndpoints(at, r, byID)
            }
        }
        if let ingress {
            for p in a.peers where p.nodeID != a.node.id {
                remotes.append(
                    RemoteEndpoint(
                        network: ingress, address: p.address, nodeID: p.nodeID, nodeAddress: p.nodeAddress, isNodeIngress: true))
                // A dual-stack ingress: IPv6 published traffic leaves the entry node from its twin,
                // where the backends' nodes send the answers.
                if let a6 = byID[ingress]?.address6(for: p.address) {
                    remotes.append(RemoteEndpoint(network: ingress, address: a6, nodeID: p.nodeID, nodeAddress: p.nodeAddress))
                }
            }
        }
        // Backends grouped by service in one pass over the tasks (not a pass per service).
        var backends: [String: [BalancedService.Backend]] = [:]
        for t in a.tasks where attached[t.id] != nil {
            let weight: UInt32 = draining.contains(t.id) || t.desired != .running ? 0 : 1
            backends[t.service, default: []] += t.attachments.map { .init(network: $0.network, address: $0.address, weight: weight) }
        }
        for r in a.remoteTasks {
            backends[r.service, default: []] += r.attachments.map {
                .init(network: $0.network, address: $0.address, weight: r.serving ? 1 : 0)
            }
        }
        let services = a.services.map { s in
            BalancedService(id: s.id, name: s.name, endpointMode: s.mode, vips: s.vips, backends: backends[s.id] ?? [], ports: s.ports)
        }
        return DataplaneState(
            node: a.node, networks: a.networks, localEndpoints: locals, remoteEndpoints: remotes, services: services,
            peerKeys: peerKeys(a, secrets: secrets))
    }

    /// Keys for every other node with a task on one of the assignment's encrypted networks.
    static func peerKeys(_ a: NodeAssignment, secrets: [[UInt8]]) -> [PeerKeys] {
        guard !secrets.isEmpty else { return [] }
        let secure = Set(a.networks.filter(\.isEncrypted).map(\.id))
        guard !secure.isEmpty else { return [] }
        var peers: [String: IPAddress] = [:]
        for r in a.remoteTasks where r.nodeID != a.node.id && r.attachments.contains(where: { secure.contains($0.network) }) {
            peers[r.nodeID] = r.nodeAddress
        }
        return peers.sorted { $0.key < $1.key }.map {
            ESPKeyDerivation.peerKeys(local: a.node.id, peer: $0.key, address: $0.value, secrets: secrets)
        }
    }

    /// A remote task as this node carries it: only its attachments on the node's networks, and
    /// nil for none (or for this node's own task, echoed back by gossip).
    static func visible(_ r: NodeAssignment.RemoteTask?, node: String, networks: Set<String>) -> NodeAssignment.RemoteTask? {
        guard var r, r.nodeID != node else { return nil }
        r.attachments = r.attachments.filter { networks.contains($0.network) }
        return r.attachments.isEmpty ? nil : r
    }

    static func networksByID(_ a: NodeAssignment) -> [String: OverlayNetwork] {
        Dictionary(a.networks.map { ($0.id, $0) }, uniquingKeysWith: { x, _ in x })
    }

    /// A remote task's attachment as the dataplane's remote endpoints: its IPv4 address, and on a
    /// dual-stack network its IPv6 one (the same node, the same vxlan0 MAC).
    static func remoteEndpoints(
        _ at: NodeAssignment.Attachment, _ r: NodeAssignment.RemoteTask, _ networks: [String: OverlayNetwork]
    ) -> [RemoteEndpoint] {
        var out = [RemoteEndpoint(network: at.network, address: at.address, nodeID: r.nodeID, nodeAddress: r.nodeAddress)]
        if let a6 = networks[at.network]?.address6(for: at.address) {
            out.append(RemoteEndpoint(network: at.network, address: a6, nodeID: r.nodeID, nodeAddress: r.nodeAddress))
        }
        return out
    }

    /// Each network's addresses of a task (IPv4, then IPv6 on a dual-stack network): A and AAAA.
    static func dnsAddresses(
        _ list: [NodeAssignment.Attachment], ingress: String?, networks: [String: OverlayNetwork] = [:]
    ) -> [String: [IPAddress]] {
        var out: [String: [IPAddress]] = [:]
        for at in list where at.network != ingress {
            out[at.network, default: []].append(at.address)
            if let a6 = networks[at.network]?.address6(for: at.address) { out[at.network, default: []].append(a6) }
        }
        return out
    }

    /// A remote task's record as the full path makes it: under its service's name and aliases (`tasks.<alias>`).
    static func dnsTask(
        _ r: NodeAssignment.RemoteTask, service: NodeAssignment.Service?, ingress: String?, networks: [String: OverlayNetwork] = [:]
    ) -> DNSTask {
        DNSTask(
            id: r.id, name: r.name, service: service?.name, serviceAliases: service?.aliases ?? [],
            addresses: dnsAddresses(r.attachments, ingress: ingress, networks: networks))
    }

    /// A local task's record, as `dns` makes it.
    static func dnsTask(
        _ t: NodeAssignment.LocalTask, service: NodeAssignment.Service?, ingress: String?, networks: [String: OverlayNetwork] = [:]
    ) -> DNSTask {
        DNSTask(
            id: t.id, name: t.name, service: service?.name, serviceAliases: service?.aliases ?? [],
            addresses: dnsAddresses(t.attachments, ingress: ingress, networks: networks))
    }

    /// One service's record: its VIPs and the networks its running (local) or serving (remote) tasks are on.
    static func dnsService(
        _ s: NodeAssignment.Service, local: [NodeAssignment.LocalTask], remote: [NodeAssignment.RemoteTask],
        ingress: String?, byID: [String: OverlayNetwork]
    ) -> DNSService {
        var networks: Set<String> = []
        for t in local where t.desired == .running { networks.formUnion(dnsAddresses(t.attachments, ingress: ingress).keys) }
        for r in remote where r.serving { networks.formUnion(dnsAddresses(r.attachments, ingress: ingress).keys) }
        return dnsService(s, networks: networks, ingress: ingress, byID: byID)
    }

    /// A VIP-mode service answers A with its VIPs and, on a dual-stack network, AAAA with their
    /// IPv6 twins (which the sandbox's `table ip6 meshd` balances).
    static func dnsService(
        _ s: NodeAssignment.Service, networks: Set<String>, ingress: String?, byID: [String: OverlayNetwork]
    ) -> DNSService {
        var vips: [String: [IPAddress]] = [:]
        if s.mode == .vip {
            for v in s.vips where v.network != ingress {
                vips[v.network, default: []].append(v.address)
                if let v6 = byID[v.network]?.address6(for: v.address) { vips[v.network, default: []].append(v6) }
            }
        }
        return DNSService(
            id: s.id, name: s.name, aliases: s.aliases, mode: s.mode == .vip ? .vip : .dnsrr, vips: vips,
            networks: networks,
            ports: s.ports.map { DNSServicePort(proto: $0.proto.rawValue, target: $0.target, published: $0.published) })
    }

    /// The records every task's resolver serves (scoped per network by MeshDNS).
    /// `notServing`: local tasks whose health check has not passed, answered by no name.
    static func dns(_ a: NodeAssignment, notServing: Set<String> = []) -> (
        networks: [DNSNetwork], services: [DNSService], tasks: [DNSTask]
    ) {
        let networks = a.networks.filter { !$0.isIngress }.map { DNSNetwork(id: $0.id, name: $0.name) }
        let ingress = a.networks.first(where: \.isIngress)?.id
        let services = Dictionary(a.services.map { ($0.id, $0) }, uniquingKeysWith: { x, _ in x })
        var serviceNetworks: [String: Set<String>] = [:]
        var tasks: [DNSTask] = []
        let byID = networksByID(a)
        for t in a.tasks where t.desired == .running && !notServing.contains(t.id) {
            let record = dnsTask(t, service: services[t.service], ingress: ingress, networks: byID)
            serviceNetworks[t.service, default: []].formUnion(record.addresses.keys)
            tasks.append(record)
        }
        for r in a.remoteTasks where r.serving {
            let record = dnsTask(r, service: services[r.service], ingress: ingress, networks: byID)
            serviceNetworks[r.service, default: []].formUnion(record.addresses.keys)
            tasks.append(record)
        }
        let records = a.services.map { dnsService($0, networks: serviceNetworks[$0.id] ?? [], ingress: ingress, byID: byID) }
        return (networks, records, tasks)
    }
}

extension NodeAssignment {
    /// The ingress network's id, when the node carries it.
    var ingressID: String? { networks.first(where: \.isIngress)?.id }
}
