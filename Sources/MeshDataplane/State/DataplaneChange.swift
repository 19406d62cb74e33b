import MeshKernel

/// One object of a node's state added, replaced or removed: what the agent sends on a gossip
/// event, and what `Reconciler.converge` derives from a new full state. Applying it costs in
/// proportion to the object, not to the state.
public enum DataplaneChange: Sendable, Equatable {
    case service(BalancedService)
    case removeService(id: String)
    case localEndpoint(LocalEndpoint)
    case removeLocalEndpoint(task: String, network: String)
    case remoteEndpoint(RemoteEndpoint)
    case removeRemoteEndpoint(network: String, address: IPAddress)
    /// One backend of a known service added or re-weighted (matched by network and address):
    /// a remote task appearing costs its service, not every service.
    case backend(service: String, BalancedService.Backend)
    case removeBackend(service: String, network: String, address: IPAddress)
    /// The manager's keys for one peer node (new, or a rotation step): costs that pair.
    case peerKeys(PeerKeys)
    case removePeerKeys(node: String)
}

/// The last full state as indexes, so single-object changes find what they replace.
struct StateIndex: Sendable {
    var state: DataplaneState
    var model: DesiredModel
    var services: [String: BalancedService] = [:]
    var locals: [String: LocalEndpoint] = [:]
    var remotes: [String: RemoteEndpoint] = [:]
    var portOwner: [BalancerState.PortKey: String] = [:]
    var peerKeys: [String: PeerKeys] = [:]

    init(_ state: DataplaneState, model: DesiredModel) {
        self.model = model
        for s in state.services {
            services[s.id] = s
            for p in s.allPorts { portOwner[.init(proto: p.proto, port: p.published)] = s.id }
        }
        for e in state.localEndpoints { locals[Self.key(e.id, e.network)] = e }
        for r in state.remoteEndpoints { remotes[Self.key(r.network, r.address)] = r }
        for k in state.peerKeys { peerKeys[k.nodeID] = k }
        var node = state
        node.services = []
        node.localEndpoints = []
        node.remoteEndpoints = []
        node.peerKeys = []
        self.state = node  // identity and networks only: the lists live in the indexes
    }
    static func key(_ a: String, _ b: String) -> String { "\(a)\u{0}\(b)" }
    static func key(_ network: String, _ a: IPAddress) -> String { "\(network)\u{0}\(a)" }

    /// Applies `change` to the model; refuses what contradicts the rest of the state.
    mutating func apply(_ change: DataplaneChange, _ c: inout DesiredModel.Changes) throws(DataplaneError) {
        let networks = Dictionary(state.networks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        func inSubnet(_ network: String, _ a: IPAddress, _ what: String) throws(DataplaneError) {
            guard let n = networks[network] else { throw .invalidState(["\(what): unknown network \(network)"]) }
            guard n.subnet.contains(a) else { throw .invalidState(["\(what): \(a) is outside \(n.name)'s subnet \(n.subnet)"]) }
        }
        switch change {
        case .service(let s):
            for v in s.allVIPs { try inSubnet(v.network, v.address, "service \(s.name)") }
            for b in s.allBackends { try inSubnet(b.network, b.address, "service \(s.name)") }
            for p in s.allPorts {
                let k = BalancerState.PortKey(proto: p.proto, port: p.published)
                if let owner = portOwner[k], owner != s.id {
                    throw .invalidState([
                        "service \(s.name): published port \(k) is already used by service \(services[owner]?.name ?? owner)"
                    ])
                }
                if !state.networks.contains(where: \.isIngress) {
                    throw .invalidState(["service \(s.name): publishing \(k) needs the ingress network in the state"])
                }
            }
            let old = services[s.id]
            for p in old?.allPorts ?? [] { portOwner[.init(proto: p.proto, port: p.published)] = nil }
            for p in s.allPorts { portOwner[.init(proto: p.proto, port: p.published)] = s.id }
            services[s.id] = s
            model.setService(old: old, new: s, &c)
        case .removeService(let id):
            guard let old = services.removeValue(forKey: id) else { return }
            for p in old.allPorts { portOwner[.init(proto: p.proto, port: p.published)] = nil }
            model.setService(old: old, new: nil, &c)
        case .localEndpoint(let e):
            try inSubnet(e.network, e.address, "task \(e.id)")
            if let a6 = e.address6, let p = networks[e.network]?.problem(address6: a6, of: e.address) {
                throw .invalidState(["task \(e.id): \(p)"])
            }
            let k = Self.key(e.id, e.network)
            model.setLocal(old: locals[k], new: e, &c)
            locals[k] = e
        case .removeLocalEndpoint(let task, let network):
            guard let old = locals.removeValue(forKey: Self.key(task, network)) else { return }
            model.setLocal(old: old, new: nil, &c)
        case .remoteEndpoint(let r):
            guard let n = networks[r.network] else {
                throw .invalidState(["remote endpoint on node \(r.nodeID): unknown network \(r.network)"])
            }
            guard n.holds(r.address) else {
                throw .invalidState(["remote endpoint on node \(r.nodeID): \(r.address) is outside \(n.name)'s subnets"])
            }
            let k = Self.key(r.network, r.address)
            model.setRemote(old: remotes[k], new: r, &c)
            remotes[k] = r
        case .removeRemoteEndpoint(let network, let address):
            guard let old = remotes.removeValue(forKey: Self.key(network, address)) else { return }
            model.setRemote(old: old, new: nil, &c)
        case .backend(let id, let b):
            guard let old = services[id] else { throw .invalidState(["backend \(b.address): unknown service \(id)"]) }
            try inSubnet(b.network, b.address, "service \(old.name)")
            var list = old.allBackends
            if let i = list.firstIndex(where: { $0.network == b.network && $0.address == b.address }) {
                guard list[i] != b else { return }
                list[i] = b
            } else {
                list.append(b)
            }
            var s = old
            s.backends = list
            services[id] = s
            model.setService(old: old, new: s, &c)
        case .peerKeys(let k):
            var check = state
            check.peerKeys = [k]
            let problems = check.keyProblems()
            if !problems.isEmpty { throw .invalidState(problems) }
            let old = peerKeys[k.nodeID]
            guard old != k else { return }
            peerKeys[k.nodeID] = k
            model.setPeerKeys(old: old, new: k, node: k.nodeID, &c)
        case .removePeerKeys(let id):
            guard let old = peerKeys.removeValue(forKey: id) else { return }
            model.setPeerKeys(old: old, new: nil, node: id, &c)
        case .removeBackend(let id, let network, let address):
            guard let old = services[id] else { return }
            var s = old
            s.backends = old.allBackends.filter { !($0.network == network && $0.address == address) }
            guard s.allBackends.count != old.allBackends.count else { return }
            services[id] = s
            model.setService(old: old, new: s, &c)
        }
    }
}
