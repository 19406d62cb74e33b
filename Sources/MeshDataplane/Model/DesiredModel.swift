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
    /// Encrypted networks left out because this node cannot program ESP (their tasks stay detached).
    let refused: Set<String>
    /// How many remote endpoints of encrypted networks each remote node has: a pair's SAs exist
    /// while this is above zero (and the manager gave keys for it).
    private var secureUsers: [String: Int] = [:]
    private var peerKeys: [String: PeerKeys] = [:]

    /// What a change touched, per sandbox, so the reconciler diffs only that.
    public struct Touched: Sendable, Equatable {
        public var vips: Set<IPAddress> = []
        /// IPv6 twins of VIPs (dual-stack networks): `table ip6 meshd`'s (`NFTBalancer.Family.ipv6`), never the IPv4 balancers'.
        public var vips6: Set<IPAddress> = []
        public var ports: Set<BalancerState.PortKey> = []
        public var endpoints: Set<String> = []
        public var neighbours: Set<IPAddress> = []
        public var fdb: Set<MACAddress> = []
        public var hairpin = false
        /// Other nodes whose ingress return path changed (by their vxlan0 MAC).
        public var returns: Set<MACAddress> = []
    }
    public struct Changes: Sendable, Equatable {
        public var sandboxes: [String: Touched] = [:]
        public var nodePorts: Set<BalancerState.PortKey> = []
        /// Node pairs (by the peer's underlay address) whose IPsec changed.
        public var espPeers: Set<IPAddress> = []
    }

    /// `underlayMTU` is the MTU of the device that holds the advertise address. `refused`:
    /// encrypted networks this node must not carry (it cannot program ESP): no sandbox, no
    /// endpoints, no rule.
    public init(_ state: DataplaneState, underlayMTU: UInt32, refused: Set<String> = []) {
        naming = Naming(nodeID: state.node.id)
        nodeIdentity = state.node
        self.refused = refused
        let carried = state.networks.filter { !refused.contains($0.id) }
        networks = Dictionary(carried.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        ingress = carried.first(where: \.isIngress)
        self.underlayMTU = underlayMTU
        node.ingressLink = ingress != nil
        node.dataPathPort = state.node.port
        node.secureVNIs = Set(carried.filter(\.isEncrypted).map(\.vni))
        for k in state.peerKeys { peerKeys[k.nodeID] = k }
        node.ingress6 = ingress?.subnet6 != nil
        for n in carried {
            var lo: Set<IPAddress> = [n.gateway]
            if n.isIngress, let a = state.node.ingressAddress { lo.insert(a) }
            let source6 = n.isIngress ? state.node.ingressAddress.flatMap(n.address6(for:)) : nil
            if let source6 { lo.insert(source6) }
            sandboxes[naming.sandbox(n.id)] = SandboxModel(
                name: naming.sandbox(n.id), networkID: n.id,
                vxlan: .init(
                    vni: n.vni, local: state.node.advertiseAddress, port: state.node.port, mtu: mtu(n),
                    mac: Naming.vxlanMAC(node: state.node.id, vni: n.vni)),
                subnet: n.subnet.network, loAddresses: lo, endpoints: [:], neighbours: [:], fdb: [:], subnetRouted: true,
                ingressLink: n.isIngress,
                balancer: BalancerState(
                    gateway: n.gateway, ingressSource: n.isIngress ? state.node.ingressAddress : nil,
                    ingressSNAT: n.isIngress && state.node.ingressSNAT == true, gateway6: n.address6(for: n.gateway)),
                subnet6: n.subnet6?.network)
            sandboxes[naming.sandbox(n.id)]?.balancer.ingressSource6 = source6
        }
        var ignored = Changes()
        for e in state.localEndpoints { setLocal(old: nil, new: e, &ignored) }
        for r in state.remoteEndpoints { setRemote(old: nil, new: r, &ignored) }
        for s in state.services { setService(old: nil, new: s, &ignored) }
    }

    /// VXLAN's 50 bytes, and for an encrypted network ESP's (8 header + 8 IV + 16 ICV + 2
    /// trailer + up to 3 padding, taken as 40 to keep the MTU a multiple of 4).
    func mtu(_ n: OverlayNetwork) -> UInt32 { n.mtu ?? underlayMTU - 50 - (n.isEncrypted ? Self.espOverhead : 0) }
    static let espOverhead: UInt32 = 40
    public func sandboxName(_ network: String) -> String { naming.sandbox(network) }

    // MARK: - single-object changes

    public mutating func setLocal(old: LocalEndpoint?, new: LocalEndpoint?, _ c: inout Changes) {
        if let o = old, let n = networks[o.network] {
            let name = naming.sandbox(n.id), veth = Naming.veth(task: o.id, network: o.network)
            sandboxes[name]?.endpoints[veth] = nil
            localAddresses[n.id]?.remove(o.address)
            sandboxes[name]?.balancer.hairpin.remove(o.address)
            if let a6 = o.address6 { sandboxes[name]?.balancer.hairpin6.remove(a6) }
            c.sandboxes[name, default: .init()].endpoints.insert(veth)
            c.sandboxes[name, default: .init()].hairpin = true
        }
        if let e = new, let n = networks[e.network] {
            let name = naming.sandbox(n.id), veth = Naming.veth(task: e.id, network: e.network)
            let endpoint = SandboxModel.Endpoint(
                veth: veth, taskNamespace: e.namespace, interface: e.interfaceName, address: e.address,
                prefixLength: n.subnet.length, mtu: mtu(n), mac: e.mac, gateway: e.carriesDefaultRoute ? n.gateway : nil,
                returnGateway: n.isIngress && !e.carriesDefaultRoute ? n.gateway : nil, address6: e.address6,
                subnet6: e.address6 == nil ? nil : n.subnet6?.network)
            sandboxes[name]?.endpoints[veth] = endpoint
            localAddresses[n.id, default: []].insert(e.address)
            sandboxes[name]?.balancer.hairpin.insert(e.address)
            if let a6 = endpoint.address6, endpoint.subnet6 != nil { sandboxes[name]?.balancer.hairpin6.insert(a6) }
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
            if n.isEncrypted { secureUse(o.nodeID, by: -1, &c) }
            if n.isIngress, o.isNodeIngress == true, sandboxes[name]?.returns[mac] == o.address {
                sandboxes[name]?.returns[mac] = nil
                c.sandboxes[name, default: .init()].returns.insert(mac)
            }
        }
        if let r = new, let n = networks[r.network] {
            if n.isEncrypted { secureUse(r.nodeID, by: 1, &c) }
            let name = naming.sandbox(n.id), mac = Naming.vxlanMAC(node: r.nodeID, vni: n.vni)
            sandboxes[name]?.neighbours[r.address] = mac
            sandboxes[name]?.fdb[mac] = r.nodeAddress
            fdbUsers[name, default: [:]][mac, default: 0] += 1
            c.sandboxes[name, default: .init()].neighbours.insert(r.address)
            c.sandboxes[name, default: .init()].fdb.insert(mac)
            if n.isIngress, r.isNodeIngress == true {
                sandboxes[name]?.returns[mac] = r.address
                c.sandboxes[name, default: .init()].returns.insert(mac)
            }
        }
    }

    /// A remote node's count of encrypted endpoints moved: the pair appears with its first and
    /// goes with its last, so a new endpoint of a known pair costs nothing here.
    private mutating func secureUse(_ nodeID: String, by delta: Int, _ c: inout Changes) {
        let before = secureUsers[nodeID] ?? 0
        let after = max(0, before + delta)
        secureUsers[nodeID] = after > 0 ? after : nil
        if (before > 0) != (after > 0) { updatePair(nodeID, old: peerKeys[nodeID], &c) }
    }

    /// The manager's keys for one peer added, replaced (a rotation step) or removed.
    public mutating func setPeerKeys(old: PeerKeys?, new: PeerKeys?, node id: String, _ c: inout Changes) {
        peerKeys[id] = new
        updatePair(id, old: old, &c)
    }

    private mutating func updatePair(_ nodeID: String, old: PeerKeys?, _ c: inout Changes) {
        if let o = old {
            node.esp[o.nodeAddress] = nil
            c.espPeers.insert(o.nodeAddress)
        }
        guard (secureUsers[nodeID] ?? 0) > 0, let k = peerKeys[nodeID], !k.keys.isEmpty else { return }
        node.esp[k.nodeAddress] = ESPPair(local: nodeIdentity.advertiseAddress, remote: k.nodeAddress, keys: k.keys)
        c.espPeers.insert(k.nodeAddress)
    }

    /// Remote nodes with endpoints on an encrypted network but no keys from the manager: their
    /// traffic is dropped until keys arrive.
    public var peersWithoutKeys: [String] { secureUsers.keys.filter { peerKeys[$0]?.keys.isEmpty ?? true }.sorted() }

    public mutating func setService(old: BalancedService?, new: BalancedService?, _ c: inout Changes) {
        if let o = old {
            for v in o.allVIPs {
                guard let n = networks[v.network] else { continue }
                let name = naming.sandbox(n.id)
                sandboxes[name]?.loAddresses.remove(v.address)
                sandboxes[name]?.balancer.vips[v.address] = nil
                c.sandboxes[name, default: .init()].vips.insert(v.address)
                if let v6 = n.address6(for: v.address) {
                    sandboxes[name]?.balancer.vips6[v6] = nil
                    c.sandboxes[name, default: .init()].vips6.insert(v6)
                }
            }
            if let ingress {
                let name = naming.sandbox(ingress.id)
                for p in o.allPorts {
                    let key = BalancerState.PortKey(proto: p.proto, port: p.published)
                    node.published.remove(key)
                    sandboxes[name]?.balancer.published[key] = nil
                    sandboxes[name]?.balancer.published6[key] = nil
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
            // A dual-stack network: the VIP's IPv6 twin balances over the backends' twins, so
            // every path that changes a backend (assignment, gossip, health, a stop) covers both.
            if let v6 = n.address6(for: v.address) {
                sandboxes[name]?.balancer.vips6[v6] = Self.merge(
                    targets.compactMap { t in n.address6(for: t.address).map { .init(address: $0, port: nil, weight: t.weight) } })
                c.sandboxes[name, default: .init()].vips6.insert(v6)
            }
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
            // A dual-stack ingress: the same port on the nodes' IPv6 addresses, to the backends' twins.
            if ingress.subnet6 != nil {
                sandboxes[name]?.balancer.published6[key] = Self.merge(
                    backends.compactMap { b in
                        ingress.address6(for: b.address).map { .init(address: $0, port: p.target, weight: b.effectiveWeight) }
                    })
            }
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
