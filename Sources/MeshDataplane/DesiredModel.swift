import MeshKernel

/// Turns a `DataplaneState` into the kernel picture it asks for. Pure.
public struct DesiredModel: Sendable, Equatable {
    public var sandboxes: [String: SandboxModel]
    public var node: NodeModel

    /// `underlayMTU` is the MTU of the device that holds the advertise address.
    public init(_ state: DataplaneState, underlayMTU: UInt32) {
        let naming = Naming(nodeID: state.node.id)
        let networks = Dictionary(state.networks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let ingress = state.networks.first(where: \.isIngress)
        var localByNetwork: [String: Set<IPAddress>] = [:]
        for e in state.localEndpoints { localByNetwork[e.network, default: []].insert(e.address) }

        var sandboxes: [String: SandboxModel] = [:]
        for n in state.networks {
            let mtu = n.mtu ?? underlayMTU - 50
            var lo: Set<IPAddress> = [n.gateway]
            if n.isIngress, let a = state.node.ingressAddress { lo.insert(a) }
            var balancer = BalancerState(gateway: n.gateway, ingressSource: n.isIngress ? state.node.ingressAddress : nil)
            balancer.hairpin = localByNetwork[n.id] ?? []
            sandboxes[naming.sandbox(n.id)] = SandboxModel(
                name: naming.sandbox(n.id), networkID: n.id,
                vxlan: .init(vni: n.vni, local: state.node.advertiseAddress, port: state.node.port, mtu: mtu,
                             mac: Naming.vxlanMAC(node: state.node.id, vni: n.vni)),
                subnet: n.subnet.network, loAddresses: lo, endpoints: [:], neighbours: [:], fdb: [:], subnetRouted: true,
                ingressLink: n.isIngress, balancer: balancer)
        }
        for e in state.localEndpoints {
            guard let n = networks[e.network] else { continue }
            let veth = Naming.veth(task: e.id, network: e.network)
            sandboxes[naming.sandbox(n.id)]?.endpoints[veth] = .init(
                veth: veth, taskNamespace: e.namespace, interface: e.interfaceName, address: e.address,
                prefixLength: n.subnet.length, mtu: n.mtu ?? underlayMTU - 50, mac: e.mac,
                gateway: e.carriesDefaultRoute ? n.gateway : nil)
        }
        for r in state.remoteEndpoints {
            guard let n = networks[r.network] else { continue }
            let mac = Naming.vxlanMAC(node: r.nodeID, vni: n.vni)
            let name = naming.sandbox(n.id)
            sandboxes[name]?.neighbours[r.address] = mac
            sandboxes[name]?.fdb[mac] = r.nodeAddress
        }

        var node = NodeModel()
        node.ingressLink = ingress != nil
        for s in state.services {
            for v in s.allVIPs {
                guard let n = networks[v.network] else { continue }
                let name = naming.sandbox(n.id)
                sandboxes[name]?.loAddresses.insert(v.address)
                let targets = s.allBackends.filter { $0.network == v.network }
                    .map { BalancerState.Target(address: $0.address, port: nil, weight: $0.effectiveWeight) }
                sandboxes[name]?.balancer.vips[v.address] = Self.merge(targets)
            }
            guard let ingress, !s.allPorts.isEmpty else { continue }
            let onIngress = s.allBackends.filter { $0.network == ingress.id }
            let local = localByNetwork[ingress.id] ?? []
            for p in s.allPorts {
                let key = BalancerState.PortKey(proto: p.proto, port: p.published)
                let backends = p.publishMode == .host ? onIngress.filter { local.contains($0.address) } : onIngress
                // Host mode publishes only where a task runs.
                if p.publishMode == .host && backends.isEmpty { continue }
                node.published.insert(key)
                sandboxes[naming.sandbox(ingress.id)]?.balancer.published[key] = Self.merge(backends.map {
                    BalancerState.Target(address: $0.address, port: p.target, weight: $0.effectiveWeight)
                })
            }
        }
        self.sandboxes = sandboxes
        self.node = node
    }

    /// One target per address (a repeated backend adds its weights), in address order.
    static func merge(_ targets: [BalancerState.Target]) -> [BalancerState.Target] {
        var byKey: [BalancerState.Target: UInt32] = [:]
        var order: [BalancerState.Target] = []
        for t in targets {
            var k = t; k.weight = 0
            if byKey[k] == nil { order.append(k) }
            byKey[k, default: 0] += t.weight
        }
        return order.map { var t = $0; t.weight = byKey[$0]!; return t }.sorted()
    }
}
