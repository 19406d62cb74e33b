import MeshKernel

/// What the cluster tells the DNS server about, as plain values. Addresses are per network ID:
/// a task on two networks has one address on each, and a name only resolves for askers on a
/// network the record is on.
public struct DNSNetwork: Sendable, Hashable {
    public var id: String
    public var name: String
    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }
}

public enum DNSEndpointMode: Sendable, Hashable {
    /// `<service>` resolves to the service's virtual IP on each network.
    case vip
    /// `<service>` resolves to every task address (DNS round robin).
    case dnsrr
}

public struct DNSServicePort: Sendable, Hashable {
    /// Port name for `_<name>._<proto>.<service>`; unnamed ports answer to their target number.
    public var name: String?
    public var proto: String
    public var target: UInt16
    public var published: UInt16?
    public init(name: String? = nil, proto: String = "tcp", target: UInt16, published: UInt16? = nil) {
        self.name = name
        self.proto = proto
        self.target = target
        self.published = published
    }
    var label: String { name ?? String(target) }
}

public struct DNSService: Sendable, Hashable {
    public var id: String
    public var name: String
    public var aliases: [String]
    public var mode: DNSEndpointMode
    /// Network ID → VIPs (vip mode only).
    public var vips: [String: [IPAddress]]
    public var ports: [DNSServicePort]
    /// Networks the service is on beyond those it has a VIP on (a dnsrr service has no VIPs).
    public var networks: Set<String>
    public init(
        id: String, name: String, aliases: [String] = [], mode: DNSEndpointMode = .vip,
        vips: [String: [IPAddress]] = [:], networks: Set<String> = [], ports: [DNSServicePort] = []
    ) {
        self.id = id
        self.name = name
        self.aliases = aliases
        self.mode = mode
        self.vips = vips
        self.networks = networks
        self.ports = ports
    }
    var networkIDs: Set<String> { networks.union(vips.keys) }
}

public struct DNSTask: Sendable, Hashable {
    public var id: String
    /// The task's own host name (e.g. `web.1.abc123`).
    public var name: String
    /// The service it belongs to, by name: `tasks.<service>` lists it.
    public var service: String?
    /// The service's network aliases: `tasks.<alias>` lists it too, as libnetwork does (`stack deploy`
    /// gives each service its short name as an alias).
    public var serviceAliases: [String]
    public var aliases: [String]
    /// Network ID → addresses on it.
    public var addresses: [String: [IPAddress]]
    public init(
        id: String, name: String, service: String? = nil, serviceAliases: [String] = [], aliases: [String] = [],
        addresses: [String: [IPAddress]] = [:]
    ) {
        self.id = id
        self.name = name
        self.service = service
        self.serviceAliases = serviceAliases
        self.aliases = aliases
        self.addresses = addresses
    }
}
