import MeshKernel

/// What one node's dataplane should look like: plain values, written by the manager/agent (or a
/// state file for `meshd dataplane apply`) and turned into kernel objects by `Reconciler`.
public struct DataplaneState: Codable, Sendable, Equatable {
    public var node: NodeIdentity
    public var networks: [OverlayNetwork]
    public var localEndpoints: [LocalEndpoint]
    public var remoteEndpoints: [RemoteEndpoint]
    public var services: [BalancedService]
    /// IPsec keys for the node pairs of encrypted networks, one entry per peer node (the
    /// manager's, see `PeerKeys`). A peer with no entry gets no SAs: its traffic on an encrypted
    /// network is dropped, never sent in clear.
    public var peerKeys: [PeerKeys]

    public init(
        node: NodeIdentity, networks: [OverlayNetwork] = [], localEndpoints: [LocalEndpoint] = [],
        remoteEndpoints: [RemoteEndpoint] = [], services: [BalancedService] = [], peerKeys: [PeerKeys] = []
    ) {
        self.node = node
        self.networks = networks
        self.localEndpoints = localEndpoints
        self.remoteEndpoints = remoteEndpoints
        self.services = services
        self.peerKeys = peerKeys
    }

    enum CodingKeys: String, CodingKey { case node, networks, localEndpoints, remoteEndpoints, services, peerKeys }
    // Empty lists may be left out of a state file.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        node = try c.decode(NodeIdentity.self, forKey: .node)
        networks = try c.decodeIfPresent([OverlayNetwork].self, forKey: .networks) ?? []
        localEndpoints = try c.decodeIfPresent([LocalEndpoint].self, forKey: .localEndpoints) ?? []
        remoteEndpoints = try c.decodeIfPresent([RemoteEndpoint].self, forKey: .remoteEndpoints) ?? []
        services = try c.decodeIfPresent([BalancedService].self, forKey: .services) ?? []
        peerKeys = try c.decodeIfPresent([PeerKeys].self, forKey: .peerKeys) ?? []
    }
}

public struct NodeIdentity: Codable, Sendable, Equatable {
    public var id: String
    /// The underlay address: VXLAN's source (`vxlan0` is pinned to it) and what peers send to.
    public var advertiseAddress: IPAddress
    /// VXLAN UDP port; 4789 when absent.
    public var dataPathPort: UInt16?
    /// This node's own address on the ingress network (the source of ingress traffic it forwards).
    public var ingressAddress: IPAddress?
    /// The network namespace that stands for the node (its "host" namespace): a name under
    /// /run/netns or a path. Absent: the namespace meshd runs in. Tests run several nodes on one
    /// machine this way.
    public var namespace: String?
    /// Docker's ingress: traffic this node lets in reaches its backend from the node's ingress
    /// address, not the client's. Absent or false: the backend sees the client's own address.
    public var ingressSNAT: Bool?

    public init(
        id: String, advertiseAddress: IPAddress, dataPathPort: UInt16? = nil, ingressAddress: IPAddress? = nil,
        namespace: String? = nil, ingressSNAT: Bool? = nil
    ) {
        self.id = id
        self.advertiseAddress = advertiseAddress
        self.dataPathPort = dataPathPort
        self.ingressAddress = ingressAddress
        self.namespace = namespace
        self.ingressSNAT = ingressSNAT
    }
    public var port: UInt16 { dataPathPort ?? 4789 }
}

public struct OverlayNetwork: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var vni: UInt32
    public var subnet: IPPrefix
    public var gateway: IPAddress
    /// Absent: derived from the underlay (the MTU of the device that holds the advertise address, minus 50).
    public var mtu: UInt32?
    /// The routing-mesh network that published ports are balanced over.
    public var ingress: Bool?
    /// `--opt encrypted`: this network's VXLAN between nodes travels only inside IPsec ESP, and
    /// any VXLAN packet of its VNI that is not protected is dropped, in and out.
    public var encrypted: Bool?
    /// `--ipv6 --subnet fd00:…/64`: the network is dual stack, and its tasks may hold an address
    /// of this subnet beside their IPv4 one. VXLAN carries both; tasks reach the sandbox at the
    /// link-local `Naming.gateway6`, so the subnet needs no gateway address of its own.
    public var subnet6: IPPrefix?

    public init(
        id: String, name: String, vni: UInt32, subnet: IPPrefix, gateway: IPAddress, mtu: UInt32? = nil,
        ingress: Bool? = nil, encrypted: Bool? = nil, subnet6: IPPrefix? = nil
    ) {
        self.id = id
        self.name = name
        self.vni = vni
        self.subnet = subnet
        self.gateway = gateway
        self.mtu = mtu
        self.ingress = ingress
        self.encrypted = encrypted
        self.subnet6 = subnet6
    }
    public var isIngress: Bool { ingress ?? false }
    public var isEncrypted: Bool { encrypted ?? false }
    /// A dual-stack task's IPv6 address: `subnet6` with the host part of its IPv4 address in the
    /// low 32 bits (10.0.1.5 in 10.0.1.0/24 with fd00:1::/64 → fd00:1::5). Computed, never stored
    /// or allocated, by the manager and every node alike. nil for an IPv4-only network.
    public func address6(for v4: IPAddress) -> IPAddress? { subnet6?.embedding(hostOf: v4, in: subnet) }

    /// What is wrong with `a6` as the IPv6 address of the task at `v4`, or nil. It must be the
    /// computed one: VIP twins balance to the backends' computed addresses.
    public func problem(address6 a6: IPAddress, of v4: IPAddress) -> String? {
        guard let want = address6(for: v4), !a6.isIPv4, holds(a6) else {
            return "IPv6 address \(a6) is outside \(name)'s subnet6 \(subnet6.map { "\($0)" } ?? "(none: not dual stack)")"
        }
        return a6 == want ? nil : "IPv6 address \(a6) must be \(want) (subnet6 with the host part of \(v4))"
    }

    /// Whether `a` belongs to the network: its IPv4 subnet, or its IPv6 one.
    public func holds(_ a: IPAddress) -> Bool { a.isIPv4 ? subnet.contains(a) : subnet6?.contains(a) == true }
}

/// A task's attachment to a network on this node.
public struct LocalEndpoint: Codable, Sendable, Equatable {
    /// The task id.
    public var id: String
    public var network: String
    /// The task's network namespace: a name under /run/netns or a path.
    public var namespace: String
    public var address: IPAddress
    /// On a dual-stack network: the task's IPv6 address, on the same interface.
    public var address6: IPAddress?
    public var mac: MACAddress?
    /// The interface name inside the task; "eth0" when absent.
    public var interface: String?
    /// Whether this attachment carries the task's default route; true when absent.
    public var defaultRoute: Bool?
    public var names: [String]?
    public var aliases: [String]?

    public init(
        id: String, network: String, namespace: String, address: IPAddress, mac: MACAddress? = nil,
        interface: String? = nil, defaultRoute: Bool? = nil, names: [String]? = nil, aliases: [String]? = nil,
        address6: IPAddress? = nil
    ) {
        self.id = id
        self.network = network
        self.namespace = namespace
        self.address = address
        self.address6 = address6
        self.mac = mac
        self.interface = interface
        self.defaultRoute = defaultRoute
        self.names = names
        self.aliases = aliases
    }
    public var interfaceName: String { interface ?? "eth0" }
    public var carriesDefaultRoute: Bool { defaultRoute ?? true }
}

/// A task on another node: reached over VXLAN through that node's underlay address.
public struct RemoteEndpoint: Codable, Sendable, Equatable {
    public var network: String
    public var address: IPAddress
    public var nodeID: String
    public var nodeAddress: IPAddress
    /// This is the node's own ingress address, not a task's: ingress traffic that node lets in
    /// is answered back through it (`IngressReturn`).
    public var isNodeIngress: Bool?

    public init(network: String, address: IPAddress, nodeID: String, nodeAddress: IPAddress, isNodeIngress: Bool? = nil) {
        self.network = network
        self.address = address
        self.nodeID = nodeID
        self.nodeAddress = nodeAddress
        self.isNodeIngress = isNodeIngress
    }
}

public struct BalancedService: Codable, Sendable, Equatable {
    public struct VIP: Codable, Sendable, Equatable {
        public var network: String
        public var address: IPAddress
        public init(network: String, address: IPAddress) {
            self.network = network
            self.address = address
        }
    }
    public struct Backend: Codable, Sendable, Equatable {
        public var network: String
        public var address: IPAddress
        /// Relative share of new connections; 0 drains (no new connections, established ones
        /// continue); 1 when absent.
        public var weight: UInt32?
        public init(network: String, address: IPAddress, weight: UInt32? = nil) {
            self.network = network
            self.address = address
            self.weight = weight
        }
        public var effectiveWeight: UInt32 { weight ?? 1 }
    }
    public struct Port: Codable, Sendable, Equatable, Hashable {
        public var `protocol`: TransportProtocol?
        public var published: UInt16
        public var target: UInt16
        public var mode: PublishMode?
        public init(protocol p: TransportProtocol = .tcp, published: UInt16, target: UInt16, mode: PublishMode = .ingress) {
            self.protocol = p
            self.published = published
            self.target = target
            self.mode = mode
        }
        public var proto: TransportProtocol { self.protocol ?? .tcp }
        public var publishMode: PublishMode { mode ?? .ingress }
    }

    public var id: String
    public var name: String
    public var endpointMode: EndpointMode?
    public var vips: [VIP]?
    public var backends: [Backend]?
    public var ports: [Port]?

    public init(
        id: String, name: String, endpointMode: EndpointMode = .vip, vips: [VIP] = [], backends: [Backend] = [],
        ports: [Port] = []
    ) {
        self.id = id
        self.name = name
        self.endpointMode = endpointMode
        self.vips = vips
        self.backends = backends
        self.ports = ports
    }
    public var mode: EndpointMode { endpointMode ?? .vip }
    public var allVIPs: [VIP] { mode == .vip ? (vips ?? []) : [] }
    public var allBackends: [Backend] { backends ?? [] }
    public var allPorts: [Port] { ports ?? [] }
}
