import Foundation
import MeshValues

/// What `network create` asks for.
public struct NetworkRequest: Sendable, Equatable {
    public var name: String
    public var subnet: IPPrefix?
    public var gateway: IPAddress?
    public var attachable: Bool
    public var ingress: Bool
    public var `internal`: Bool
    public var labels: [String: String]
    public var options: [String: String]
    /// The IPv6 subnet of a dual-stack network (a /48 to a /96).
    public var subnet6: IPPrefix?
    public init(
        name: String, subnet: IPPrefix? = nil, gateway: IPAddress? = nil, attachable: Bool = false,
        ingress: Bool = false, internal: Bool = false, labels: [String: String] = [:],
        options: [String: String] = [:], subnet6: IPPrefix? = nil
    ) {
        self.subnet6 = subnet6
        self.name = name
        self.subnet = subnet
        self.gateway = gateway
        self.attachable = attachable
        self.ingress = ingress
        self.internal = `internal`
        self.labels = labels
        self.options = options
    }
}

/// VNIs, subnets, addresses and ingress ports of the whole cluster. A value: the manager owns one, changes it
/// as objects are created and removed, and rebuilds it from the store after a restart.
public struct NetworkAllocator: Sendable, Equatable {
    public static let firstVNI: UInt32 = 4096
    public static let maxVNI: UInt32 = (1 << 24) - 1
    /// Docker's range for automatic ingress ports.
    public static let dynamicPorts: ClosedRange<UInt16> = 30000...32767

    public private(set) var subnets: SubnetPool
    public private(set) var vniOwners: [UInt32: String] = [:]
    public private(set) var spaces: [String: AddressSpace] = [:]
    /// Ingress published ports (`port/proto`) and the service holding each.
    public private(set) var ingressPorts: [String: String] = [:]

    public init(pools: [IPPrefix] = [IPPrefix("10.0.0.0/8")!], subnetSize: Int = 24) throws(ClusterError) {
        subnets = try SubnetPool(pools: pools, subnetSize: subnetSize)
    }

    // MARK: networks

    /// Allocates VNI, subnet and gateway (.1 unless given) and returns the network to store.
    /// On a fresh allocator the first network (`ingress` at `swarm init`) gets 10.0.0.0/24 and VNI 4096.
    public mutating func createNetwork(id: String, request: NetworkRequest, now: Date) throws(ClusterError) -> ClusterNetwork {
        guard spaces[id] == nil else { throw .idConflict(objectKind: "network", id: id) }
        let block: IPv4Block
        if let s6 = request.subnet6 {
            // The IPv4 host part (up to 32 bits) is embedded in the low bits: the prefix must leave them.
            guard !s6.address.isIPv4, (48...96).contains(s6.length) else {
                throw .invalidArgument("IPv6 subnet \(s6): meshd needs an IPv6 prefix from /48 to /96 (e.g. fd00:1::/64)")
            }
        }
        if let p = request.subnet { block = try subnets.reserve(p, owner: id) } else { block = try subnets.allocate(owner: id) }
        var space = AddressSpace(subnet: block)
        let gateway: UInt32
        do throws(ClusterError) {
            if let g = request.gateway {
                guard let v = g.v4Value, block.contains(v) else {
                    throw .invalidArgument("gateway \(g) is not in subnet \(block)")
                }
                gateway = v
            } else {
                gateway = space.firstHost
            }
            try space.reserve(gateway, for: .gateway)
        } catch {
            subnets.release(owner: id)
            throw error
        }
        guard let vni = nextVNI() else {
            subnets.release(owner: id)
            throw .exhausted("no VXLAN network identifiers left")
        }
        vniOwners[vni] = id
        spaces[id] = space
        var network = ClusterNetwork(
            id: id, name: request.name, vni: vni, subnet: block.prefix, gateway: .v4(gateway),
            attachable: request.attachable, ingress: request.ingress, internal: request.internal,
            labels: request.labels, options: request.options, now: now)
        network.subnet6 = request.subnet6?.network
        return network
    }

    /// Lowest free VNI from 4096 up (Docker's overlay driver starts there too).
    private func nextVNI() -> UInt32? {
        var v = Self.firstVNI
        while v <= Self.maxVNI {
            if vniOwners[v] == nil { return v }
            v += 1
        }
        return nil
    }

    public mutating func removeNetwork(id: String) {
        subnets.release(owner: id)
        vniOwners = vniOwners.filter { $0.value != id }
        spaces.removeValue(forKey: id)
    }

    // MARK: addresses

    /// The owner's address on the network as `a.b.c.d/len` (the same one again if it already holds one).
    public mutating func allocateAddress(networkID: String, owner: AddressOwner) throws(ClusterError) -> IPPrefix {
        guard var space = spaces[networkID] else { throw .notFound(objectKind: "network", reference: networkID) }
        let a = try space.allocate(owner)
        spaces[networkID] = space
        return space.subnet.address(a)
    }

    public mutating func releaseAddress(networkID: String, owner: AddressOwner) {
        spaces[networkID]?.release(owner)
    }

    public func owner(networkID: String, address: IPAddress) -> AddressOwner? {
        guard let v = address.v4Value else { return nil }
        return spaces[networkID]?.owner(of: v)
    }

    private mutating func reserve(networkID: String, address text: String, owner: AddressOwner) throws(ClusterError) {
        guard var space = spaces[networkID] else { throw .notFound(objectKind: "network", reference: networkID) }
        guard let p = IPPrefix(text), let v = p.address.v4Value else {
            throw .storage("bad address \(text) recorded for \(owner)")
        }
        try space.reserve(v, for: owner)
        spaces[networkID] = space
    }

    // MARK: services

    /// Resolves the service's published ports (automatic ingress ports from 30000) and gives it one VIP per
    /// attached network, plus one on ingress when it publishes ingress ports (vip mode only). VIPs of networks
    /// the service left are released. Nothing changes if a port is taken.
    public mutating func allocateEndpoint(for service: inout ClusterService, ingressNetworkID: String?) throws(ClusterError) {
        let ports = try resolvePorts(service)
        let hasIngress = ports.contains { $0.publishMode == .ingress }
        if hasIngress, ingressNetworkID == nil {
            // swarmkit's wording: `network rm ingress` can leave a cluster without one.
            throw .failedPrecondition("service needs ingress network, but no ingress network is present")
        }
        var wanted: [String] = []
        if service.spec.endpoint.mode == .vip {
            if hasIngress, let ingress = ingressNetworkID { wanted.append(ingress) }
            for n in service.spec.task.networks where !wanted.contains(n.target) { wanted.append(n.target) }
        }
        for n in wanted where spaces[n] == nil { throw .notFound(objectKind: "network", reference: n) }

        for key in ingressPorts.filter({ $0.value == service.id }).map(\.key) { ingressPorts.removeValue(forKey: key) }
        for p in ports where p.publishMode == .ingress { ingressPorts[Self.portKey(p)] = service.id }
        for vip in service.endpoint.virtualIPs where !wanted.contains(vip.networkID) {
            releaseAddress(networkID: vip.networkID, owner: .vip(serviceID: service.id))
        }
        var vips: [VirtualIP] = []
        for n in wanted {
            vips.append(VirtualIP(networkID: n, addr: try allocateAddress(networkID: n, owner: .vip(serviceID: service.id)).description))
        }
        service.endpoint = ServiceEndpoint(ports: ports, virtualIPs: vips)
    }

    public mutating func releaseEndpoint(of service: inout ClusterService) {
        for vip in service.endpoint.virtualIPs { releaseAddress(networkID: vip.networkID, owner: .vip(serviceID: service.id)) }
        for key in ingressPorts.filter({ $0.value == service.id }).map(\.key) { ingressPorts.removeValue(forKey: key) }
        service.endpoint = ServiceEndpoint()
    }

    private static func portKey(_ p: PortConfig) -> String { "\(p.publishedPort)/\(p.protocol.rawValue)" }

    private func resolvePorts(_ service: ClusterService) throws(ClusterError) -> [PortConfig] {
        var out: [PortConfig] = []
        var taken = Set(ingressPorts.filter { $0.value != service.id }.keys)
        // Keep automatic ports the service already has, so an update does not move them.
        let previous = service.endpoint.ports
        for var p in service.spec.endpoint.ports {
            guard p.publishMode == .ingress else {
                out.append(p)
                continue
            }
            if p.publishedPort == 0 {
                if let kept = previous.first(where: {
                    $0.targetPort == p.targetPort && $0.protocol == p.protocol
                        && $0.publishMode == .ingress && Self.dynamicPorts.contains($0.publishedPort)
                        && !taken.contains(Self.portKey($0))
                }) {
                    p.publishedPort = kept.publishedPort
                } else {
                    guard
                        let free = Self.dynamicPorts.first(where: { port in
                            var c = p
                            c.publishedPort = port
                            return !taken.contains(Self.portKey(c))
                        })
                    else { throw .exhausted("no free dynamic ingress port for \(p.protocol.rawValue)") }
                    p.publishedPort = free
                }
            } else if let holder = ingressPorts[Self.portKey(p)], holder != service.id {
                throw .invalidArgument("port '\(p.publishedPort)' is already in use by service '\(holder)' as an ingress port")
            }
            taken.insert(Self.portKey(p))
            out.append(p)
        }
        return out
    }

    // MARK: tasks

    /// One address per network the task joins: the service's networks, plus ingress when the service
    /// publishes ingress ports.
    public mutating func allocateTask(_ task: inout ClusterTask, service: ClusterService, ingressNetworkID: String?) throws(ClusterError) {
        var wanted: [String] = []
        if service.endpoint.ports.contains(where: { $0.publishMode == .ingress }), let ingress = ingressNetworkID {
            wanted.append(ingress)
        }
        for n in task.spec.networks where !wanted.contains(n.target) { wanted.append(n.target) }
        for n in wanted where spaces[n] == nil { throw .notFound(objectKind: "network", reference: n) }
        var attachments: [NetworkAttachment] = []
        for n in wanted {
            do {
                let a = try allocateAddress(networkID: n, owner: .task(taskID: task.id))
                attachments.append(NetworkAttachment(networkID: n, address: a.description))
            } catch {
                // All or nothing: a task never holds part of its addresses.
                for done in attachments where !task.networks.contains(done) {
                    releaseAddress(networkID: done.networkID, owner: .task(taskID: task.id))
                }
                throw error
            }
        }
        task.networks = attachments
    }

    /// Frees the task's addresses and clears them from the value (store it so a rebuild agrees).
    public mutating func releaseTask(_ task: inout ClusterTask) {
        for a in task.networks { releaseAddress(networkID: a.networkID, owner: .task(taskID: task.id)) }
        task.networks = []
    }

    /// A node's own address on a network (its ingress/load-balancer endpoint).
    public mutating func allocateNode(_ node: inout ClusterNode, networkID: String) throws(ClusterError) {
        let a = try allocateAddress(networkID: networkID, owner: .node(nodeID: node.id))
        node.attachments.removeAll { $0.networkID == networkID }
        node.attachments.append(NetworkAttachment(networkID: networkID, address: a.description))
    }

    public mutating func releaseNode(_ node: inout ClusterNode, networkID: String) {
        releaseAddress(networkID: networkID, owner: .node(nodeID: node.id))
        node.attachments.removeAll { $0.networkID == networkID }
    }

    // MARK: restart

    /// The allocator state implied by the store: every network's VNI, subnet and gateway, every VIP, ingress
    /// port, node and task address. Fails if the store records two owners for one resource.
    public static func rebuild(
        from snapshot: ClusterSnapshot, pools: [IPPrefix] = [IPPrefix("10.0.0.0/8")!],
        subnetSize: Int = 24
    ) throws(ClusterError) -> NetworkAllocator {
        var a = try NetworkAllocator(pools: pools, subnetSize: subnetSize)
        for n in snapshot.networks.sorted(by: { $0.createdAt == $1.createdAt ? $0.id < $1.id : $0.createdAt < $1.createdAt }) {
            let block = try a.subnets.reserve(n.subnet, owner: n.id)
            if let other = a.vniOwners[n.vni] {
                throw .storage("VNI \(n.vni) recorded for networks \(other) and \(n.id)")
            }
            a.vniOwners[n.vni] = n.id
            var space = AddressSpace(subnet: block)
            guard let g = n.gateway.v4Value else { throw .storage("network \(n.id) has a non-IPv4 gateway") }
            try space.reserve(g, for: .gateway)
            a.spaces[n.id] = space
        }
        for s in snapshot.services {
            for vip in s.endpoint.virtualIPs { try a.reserve(networkID: vip.networkID, address: vip.addr, owner: .vip(serviceID: s.id)) }
            for p in s.endpoint.ports where p.publishMode == .ingress {
                if let holder = a.ingressPorts[portKey(p)], holder != s.id {
                    throw .storage("ingress port \(portKey(p)) recorded for services \(holder) and \(s.id)")
                }
                a.ingressPorts[portKey(p)] = s.id
            }
        }
        for node in snapshot.nodes {
            for at in node.attachments { try a.reserve(networkID: at.networkID, address: at.address, owner: .node(nodeID: node.id)) }
        }
        for t in snapshot.tasks {
            for at in t.networks { try a.reserve(networkID: at.networkID, address: at.address, owner: .task(taskID: t.id)) }
        }
        return a
    }
}
