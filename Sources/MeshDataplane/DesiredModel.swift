import MeshKernel

/// Turns a `DataplaneState` into the kernel picture it asks for, and keeps it current under
/// single-object changes at a cost proportional to the object. Pure.
public struct DesiredModel: Sendable, Equatable {
    public private(set) var sandboxes: [String: SandboxModel] = [:]
    public private(set) var node = NodeModel()

    let naming: Naming
    let nodeIdentity: NodeIdentity
    let networks: [String: OverlayNetwork]
    let ingress: OverlayNetwork?
    let underlayMTU: UInt32
    /// Local task addresses per network (hairpin, host-mode publishing).
    private(set) var localAddresses: [String: Set<IPAddress>] = [:]
    /// How many remote endpoints use each remote node's FDB entry, per sandbox.
    private var fdbUsers: [String: [MACAddress: Int]] = [:]

    /// What a change touched, per sandbox, so the reconciler diffs only that.
    public struct Touched: Sendable, Equatable {
        public var vips: Set<IPAddress> = []
        public var ports: Set<BalancerState.PortKey> = []
        public var endpoints: Set<String> = []
        public var neighbours: Set<IPAddress> = []
        public var fdb: Set<MACAddress> = []
        public var hairpin = false
    }
    public struct Changes: Sendable, Equatable {
        public var sandboxes: [String: Touched] = [:]
        public var nodePorts: Set<BalancerState.PortKey> = []
    }

    /// `underlayMTU` is the MTU of the device that holds the advertise address.
    public init(_ state: DataplaneState, underlayMTU: UInt32) {
        naming = Naming(nodeID: state.node.id)
        nodeIdentity = state.node
        networks = Dictionary(state.networks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        ingress = state.networks.first(where: \.isIngress)
        self.underlayMTU = underlayMTU
        node.ingressLink = ingress != nil
        for n in state.networks {
            var lo: Set<IPAddress> = [n.gateway]
            if n.isIngress, let a = state.node.ingressAddress { lo.insert(a) }
            sandboxes[naming.sandbox(n.id)] = SandboxModel(
                name: naming.sandbox(n.id), networkID: n.id,
                vxlan: .init(
                    vni: n.vni, local: state.node.advertiseAddress, port: state.node.port, mtu: mtu(n),
                    mac: Naming.vxlanMAC(node: state.node.id, vni: n.vni)),
                subnet: n.subnet.network, loAddresses: lo, endpoints: [:], neighbours: [:], fdb: [:], subnetRouted: true,
                ingressLink: n.isIngress,
                balancer: BalancerState(gateway: n.gateway, ingressSource: n.isIngress ? state.node.ingressAddress : nil))
        }
        var ignored = Changes()
        for e in state.localEndpoints { setLocal(old: nil, new: e, &ignored) }
        for r in state.remoteEndpoints { setRemote(old: nil, new: r, &ignored) }
        for s in state.services { setService(old: nil, new: s, &ignored) }
    }

    func mtu(_ n: OverlayNetwork) -> UInt32 { n.mtu ?? underlayMTU - 50 }
    public func sandboxName(_ network: String) -> String { naming.sandbox(network) }

    // MARK: - single-object changes

    public mutating func setLocal(old: LocalEndpoint?, new: LocalEndpoint?, _ c: inout Changes) {
        if let o = old, let n = networks[o.network] {
            let name = naming.sandbox(n.id), veth = Naming.veth(task: o.id, network: o.network)
            sandboxes[name]?.endpoints[veth] = nil
            localAddresses[n.id]?.remove(o.address)
            sandboxes[name]?.balancer.hairpin.remove(o.address)
            c.sandboxes[name, default: .init()].endpoints.insert(veth)
            c.sandboxes[name, default: .init()].hairpin = true
        }
        if let e = new, let n = networks[e.network] {
            let name = naming.sandbox(n.id), veth = Naming.veth(task: e.id, network: e.network)
            let endpoint = SandboxModel.Endpoint(
                veth: veth, taskNamespace: e.namespace, interface: e.interfaceName, address: e.address,
                prefixLength: n.subnet.length, mtu: mtu(n), mac: e.mac, gateway: e.carriesDefaultRoute ? n.gateway : nil)
            sandboxes[name]?.endpoints[veth] = endpoint
            localAddresses[n.id, default: []].insert(e.address)
            sandboxes[name]?.balancer.hairpin.insert(e.address)
            c.sandboxes[name, default: .init()].endpoints.insert(veth)
            c.sandboxes[name, default: .init()].hairpin = true
        }
    }

    public mutating func setRemote(old: RemoteEndpoint?, new: RemoteEndpoint?, _ c: inout Changes) {
        if let o = old, let n = networks[o.network] {
            let name = naming.sandbox(n.id), mac = Naming.vxlanMAC(node: o.nodeID, vni: n.vni)
            sandboxes[name]?.neighbours[o.address] = nil
            let users = (fdbUsers[name]?[mac] ?? 1) - 1
            fdbUsers[name, default: [:]][mac] = users > 0 ? users : nil
            if users <= 0 { sandboxes[name]?.fdb[mac] = nil }
            c.sandboxes[name, default: .init()].neighbours.insert(o.address)
            c.sandboxes[name, default: .init()].fdb.insert(mac)
        }
        if let r = new, let n = networks[r.network] {
            let name = naming.sandbox(n.id), mac = Naming.vxlanMAC(node: r.nodeID, vni: n.vni)
            sandboxes[name]?.neighbours[r.address] = mac
            sandboxes[name]?.fdb[mac] = r.nodeAddress
            fdbUsers[name, default: [:]][mac, default: 0] += 1
            c.sandboxes[name, default: .init()].neighbours.insert(r.address)
            c.sandboxes[name, default: .init()].fdb.insert(mac)
        }
    }

    public mutating func setService(old: BalancedService?, new: BalancedService?, _ c: inout Changes) {
        if let o = old {
            for v in o.allVIPs {
                guard let n = networks[v.network] else { continue }
                let name = naming.sandbox(n.id)
                sandboxes[name]?.loAddresses.remove(v.address)
                sandboxes[name]?.balancer.vips[v.address] = nil
                c.sandboxes[name, default: .init()].vips.insert(v.address)
            }
            if let ingress {
                let name = naming.sandbox(ingress.id)
                for p in o.allPorts {
                    let key = BalancerState.PortKey(proto: p.proto, port: p.published)
                    node.published.remove(key)
                    sandboxes[name]?.balancer.published[key] = nil
                    c.nodePorts.insert(key)
                    c.sandboxes[name, default: .init()].ports.insert(key)
                }
            }
        }
        guard let s = new else { return }
        for v in s.allVIPs {
            guard let n = networks[v.network] else { continue }
            let name = naming.sandbox(n.id)
            sandboxes[name]?.loAddresses.insert(v.address)
            let targets = s.allBackends.filter { $0.network == v.network }
                .map { BalancerState.Target(address: $0.address, port: nil, weight: $0.effectiveWeight) }
            sandboxes[name]?.balancer.vips[v.address] = Self.merge(targets)
            c.sandboxes[name, default: .init()].vips.insert(v.address)
        }
        guard let ingress, !s.allPorts.isEmpty else { return }
        let name = naming.sandbox(ingress.id)
        let onIngress = s.allBackends.filter { $0.network == ingress.id }
        let local = localAddresses[ingress.id] ?? []
        for p in s.allPorts {
            let key = BalancerState.PortKey(proto: p.proto, port: p.published)
            let backends = p.publishMode == .host ? onIngress.filter { local.contains($0.address) } : onIngress
            c.nodePorts.insert(key)
            c.sandboxes[name, default: .init()].ports.insert(key)
            // Host mode publishes only where a task runs.
            if p.publishMode == .host && backends.isEmpty { continue }
            node.published.insert(key)
            sandboxes[name]?.balancer.published[key] = Self.merge(
                backends.map {
                    BalancerState.Target(address: $0.address, port: p.target, weight: $0.effectiveWeight)
                })
        }
    }

    /// One target per address (a repeated backend adds its weights), in address order.
    static func merge(_ targets: [BalancerState.Target]) -> [BalancerState.Target] {
        var byKey: [BalancerState.Target: UInt32] = [:]
        var order: [BalancerState.Target] = []
        for t in targets {
            var k = t
            k.weight = 0
            if byKey[k] == nil { order.append(k) }
            byKey[k, default: 0] += t.weight
        }
        return order.map {
            var t = $0
            t.weight = byKey[$0]!
            return t
        }.sorted()
    }
}
