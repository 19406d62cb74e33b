import MeshKernel

/// The kernel objects meshd keeps in one network sandbox, as values: what the state asks for
/// (`DesiredModel`) or what a sandbox holds (`SandboxReader`). Diffing two of these is the
/// whole plan for a sandbox.
public struct SandboxModel: Equatable, Sendable {
    public struct VXLAN: Equatable, Sendable {
        public var vni: UInt32
        public var local: IPAddress
        public var port: UInt16
        public var mtu: UInt32
        public var mac: MACAddress
    }
    /// One task attachment: the veth pair, the /32 route in the sandbox, the task-side address
    /// and (optionally) default route.
    public struct Endpoint: Equatable, Sendable {
        public var veth: String
        public var taskNamespace: String
        public var interface: String
        public var address: IPAddress
        public var prefixLength: Int
        public var mtu: UInt32
        public var mac: MACAddress?
        public var gateway: IPAddress?
        /// The ingress gateway, for an ingress attachment that does not carry the default route:
        /// what leaves from its address goes there (a rule and a table in the task's namespace),
        /// so answers to a client whose address the ingress kept go back the way it came.
        public var returnGateway: IPAddress? = nil
        /// On a dual-stack network: the task's IPv6 address, a /128 on the same interface, reached
        /// from the sandbox by a /128 route and reaching it at `Naming.gateway6`.
        public var address6: IPAddress? = nil
        public var subnet6: IPPrefix? = nil
    }

    public var name: String
    public var networkID: String
    public var vxlan: VXLAN?
    public var subnet: IPPrefix
    /// /32 addresses on the sandbox's lo: the gateway, VIPs, the node's ingress address.
    public var loAddresses: Set<IPAddress>
    public var endpoints: [String: Endpoint]
    /// Remote task → the vxlan0 MAC of its node.
    public var neighbours: [IPAddress: MACAddress]
    /// Remote node's vxlan0 MAC → its underlay address.
    public var fdb: [MACAddress: IPAddress]
    /// `subnet dev vxlan0`: remote tasks are reached on-link through vxlan0.
    public var subnetRouted: Bool
    public var ingressLink: Bool
    public var balancer: BalancerState
    /// The ingress sandbox only: another node's vxlan0 MAC → that node's ingress address, where
    /// answers to the ingress traffic it let in go (`IngressReturn`).
    public var returns: [MACAddress: IPAddress] = [:]
    /// The network's IPv6 subnet (dual stack), routed through vxlan0 beside the IPv4 one.
    public var subnet6: IPPrefix? = nil
}

/// What a sandbox's load balancer does, independent of nftables or IPVS.
public struct BalancerState: Equatable, Sendable {
    public struct Target: Hashable, Sendable, Comparable {
        public var address: IPAddress
        /// nil: keep the destination port (VIPs cover every port).
        public var port: UInt16?
        /// 0 drains: no new connections.
        public var weight: UInt32
        public static func < (a: Target, b: Target) -> Bool { (a.address, a.port ?? 0) < (b.address, b.port ?? 0) }
    }
    public struct PortKey: Hashable, Sendable, Comparable, CustomStringConvertible {
        public var proto: TransportProtocol
        public var port: UInt16
        public init(proto: TransportProtocol, port: UInt16) {
            self.proto = proto
            self.port = port
        }
        public static func < (a: PortKey, b: PortKey) -> Bool { (a.proto.number, a.port) < (b.proto.number, b.port) }
        public var description: String { "\(port)/\(proto.rawValue)" }
    }
    /// VIP → backends (TCP, UDP and SCTP on every port).
    public var vips: [IPAddress: [Target]] = [:]
    /// Published port → backends with their target ports (the ingress sandbox only).
    public var published: [PortKey: [Target]] = [:]
    /// Local task addresses: a task that reaches itself through a VIP is source-NATed to the
    /// gateway, or its own kernel would drop the reply as a martian.
    public var hairpin: Set<IPAddress> = []
    public var gateway: IPAddress
    /// Ingress traffic leaves the ingress sandbox from this address, so replies come back here.
    public var ingressSource: IPAddress?
    /// Docker's ingress: published traffic leaves with `ingressSource` as its source. Off, it keeps
    /// the client's address and `IngressReturn` brings the answers back.
    public var ingressSNAT = false
    /// A dual-stack network's side, balanced in `table ip6 meshd` (`NFTBalancer.Family.ipv6`) under either
    /// balancer: each IPv4 VIP's IPv6 twin → the backends' IPv6 addresses, the local tasks'
    /// IPv6 addresses, and the hairpin source: the IPv4 gateway's twin (in the subnet, so the
    /// task's answer goes back through the sandbox, and no task can hold it). nil: IPv4 only.
    public var gateway6: IPAddress? = nil
    public var vips6: [IPAddress: [Target]] = [:]
    public var hairpin6: Set<IPAddress> = []
    /// A dual-stack ingress network (the ingress sandbox only): published ports reached on the
    /// nodes' IPv6 addresses → the backends' IPv6 ingress addresses, and the node's ingress
    /// address's twin, which such traffic leaves from when `ingressSNAT` says so (otherwise IPv6
    /// clients keep their address and `IngressReturn`'s IPv6 side brings the answers back).
    public var published6: [PortKey: [Target]] = [:]
    public var ingressSource6: IPAddress? = nil

    public init(gateway: IPAddress, ingressSource: IPAddress? = nil, ingressSNAT: Bool = false, gateway6: IPAddress? = nil) {
        self.gateway = gateway
        self.ingressSource = ingressSource
        self.ingressSNAT = ingressSNAT
        self.gateway6 = gateway6
    }
}

/// The node namespace's part: published ports sent to the ingress sandbox, and the IPsec of
/// encrypted networks (their VNIs' drop rule and the SAs and policies per peer node).
public struct NodeModel: Equatable, Sendable {
    public var published: Set<BalancerState.PortKey> = []
    public var ingressLink: Bool = false
    /// The ingress network is dual-stack: the link carries IPv6 too and published ports answer
    /// on the node's IPv6 addresses.
    public var ingress6: Bool = false
    /// VNIs whose VXLAN must never travel unprotected.
    public var secureVNIs: Set<UInt32> = []
    /// The data-path port the drop rule and the policies match.
    public var dataPathPort: UInt16 = 4789
    /// Peer underlay address → what is programmed for the pair.
    public var esp: [IPAddress: ESPPair] = [:]
    public init() {}
}

/// One node pair's IPsec as the node namespace should hold it.
public struct ESPPair: Equatable, Sendable {
    public var local: IPAddress
    public var remote: IPAddress
    /// Primary (sending) first.
    public var keys: [PairKey]
}
