/// IPVS virtual services and their real servers as plain values, named as ipvsadm names them.

public enum IPVSProtocol: UInt16, Sendable, CustomStringConvertible {
    case tcp = 6, udp = 17, sctp = 132
    public var description: String {
        switch self {
        case .tcp: "TCP"
        case .udp: "UDP"
        case .sctp: "SCTP"
        }
    }
}

/// How a service is identified: by address, port and protocol, or by a firewall mark that
/// nftables/iptables set on the packets.
public enum IPVSServiceKey: Sendable, Hashable, CustomStringConvertible {
    case tuple(IPVSProtocol, IPAddress, UInt16)
    case fwmark(UInt32, ipv6: Bool)

    var family: UInt16 {
        switch self {
        case .tuple(_, let a, _): UInt16(a.family)
        case .fwmark(_, let v6): UInt16(v6 ? 10 : 2)
        }
    }

    public var description: String {
        switch self {
        case .tuple(let p, let a, let port): a.isIPv4 ? "\(p) \(a):\(port)" : "\(p) [\(a)]:\(port)"
        case .fwmark(let m, let v6): "FWM \(m)\(v6 ? " IPv6" : "")"
        }
    }
}

public struct IPVSServiceFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let persistent = IPVSServiceFlags(rawValue: 0x1)
    public static let onePacket = IPVSServiceFlags(rawValue: 0x4)
    /// sh: fall back to another server when the hashed one is unavailable (sched flag 1).
    public static let shFallback = IPVSServiceFlags(rawValue: 0x8)
    /// sh: hash the source port too (sched flag 2).
    public static let shPort = IPVSServiceFlags(rawValue: 0x10)
    /// mh: the same two meanings for maglev hashing.
    public static let mhFallback = IPVSServiceFlags(rawValue: 0x8)
    public static let mhPort = IPVSServiceFlags(rawValue: 0x10)
}

public struct IPVSService: Sendable, Hashable {
    public var key: IPVSServiceKey
    /// rr, wrr, lc, wlc, sh, mh, ... (any scheduler module the kernel has).
    public var scheduler: String
    public var flags: IPVSServiceFlags
    /// Persistence timeout in seconds (with `.persistent`).
    public var timeout: UInt32
    /// Persistence granularity: the client prefix length that shares a server.
    public var netmaskBits: Int

    public init(
        _ key: IPVSServiceKey, scheduler: String = "rr", flags: IPVSServiceFlags = [], timeout: UInt32 = 0,
        netmaskBits: Int? = nil
    ) {
        self.key = key
        self.scheduler = scheduler
        self.flags = flags
        self.timeout = timeout
        self.netmaskBits = netmaskBits ?? (key.family == 10 ? 128 : 32)
    }

    /// Persistent for `seconds` (ipvsadm -p).
    public static func persistent(_ key: IPVSServiceKey, scheduler: String = "rr", seconds: UInt32) -> IPVSService {
        IPVSService(key, scheduler: scheduler, flags: [.persistent], timeout: seconds)
    }
}

public enum IPVSForwarding: Sendable, Hashable, CustomStringConvertible {
    case masquerade
    case directRoute
    case tunnel
    case local

    var raw: UInt32 {
        switch self {
        case .masquerade: 0
        case .local: 1
        case .tunnel: 2
        case .directRoute: 3
        }
    }
    static func from(_ raw: UInt32) -> IPVSForwarding {
        switch raw & 7 {
        case 1: .local
        case 2: .tunnel
        case 3: .directRoute
        default: .masquerade
        }
    }
    /// ipvsadm's column word.
    public var description: String {
        switch self {
        case .masquerade: "Masq"
        case .directRoute: "Route"
        case .tunnel: "Tunnel"
        case .local: "Local"
        }
    }
}

public struct IPVSDestination: Sendable, Hashable {
    public var address: IPAddress
    public var port: UInt16
    public var forwarding: IPVSForwarding
    /// 0 drains: established connections stay, new ones go elsewhere.
    public var weight: UInt32
    public var upperThreshold: UInt32
    public var lowerThreshold: UInt32

    public init(
        _ address: IPAddress, port: UInt16, forwarding: IPVSForwarding = .masquerade, weight: UInt32 = 1,
        upperThreshold: UInt32 = 0, lowerThreshold: UInt32 = 0
    ) {
        self.address = address
        self.port = port
        self.forwarding = forwarding
        self.weight = weight
        self.upperThreshold = upperThreshold
        self.lowerThreshold = lowerThreshold
    }
}

public struct IPVSStats: Sendable, Hashable {
    public var connections: UInt64 = 0
    public var inPackets: UInt64 = 0
    public var outPackets: UInt64 = 0
    public var inBytes: UInt64 = 0
    public var outBytes: UInt64 = 0
    public var connectionsPerSecond: UInt64 = 0
    public init() {}
}

public struct IPVSServiceEntry: Sendable, Hashable {
    public var service: IPVSService
    public var stats: IPVSStats
}

public struct IPVSDestinationEntry: Sendable, Hashable {
    public var destination: IPVSDestination
    public var activeConnections: UInt32
    public var inactiveConnections: UInt32
    public var persistentConnections: UInt32
    public var stats: IPVSStats
}

/// Connection timeouts in seconds (ipvsadm --set tcp tcpfin udp); 0 leaves a value unchanged.
public struct IPVSTimeouts: Sendable, Hashable {
    public var tcp: UInt32
    public var tcpFin: UInt32
    public var udp: UInt32
    public init(tcp: UInt32, tcpFin: UInt32, udp: UInt32) {
        self.tcp = tcp
        self.tcpFin = tcpFin
        self.udp = udp
    }
}

/// One change, for `IPVSHandle.apply`.
public enum IPVSOperation: Sendable, Hashable {
    case addService(IPVSService)
    case updateService(IPVSService)
    case deleteService(IPVSServiceKey)
    case addDestination(IPVSServiceKey, IPVSDestination)
    case updateDestination(IPVSServiceKey, IPVSDestination)
    case deleteDestination(IPVSServiceKey, IPAddress, UInt16)
}
