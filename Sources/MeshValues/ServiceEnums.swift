/// How a service is reached: a virtual IP balanced on the client's node, or DNS round robin over
/// the task addresses (no VIP). One type for the API mapping, the cluster model and the dataplane.
public enum EndpointMode: String, Codable, Sendable { case vip, dnsrr }

/// Where a published port listens: on every node (the routing mesh) or only on nodes running a task.
public enum PublishMode: String, Codable, Sendable { case ingress, host }

/// The transport protocols a service port or VIP carries, with their IP protocol numbers.
public enum TransportProtocol: String, Codable, Sendable, CaseIterable, Comparable {
    case tcp, udp, sctp
    public var number: UInt8 {
        switch self {
        case .tcp: 6
        case .udp: 17
        case .sctp: 132
        }
    }
    public init?(number: UInt8) {
        guard let p = Self.allCases.first(where: { $0.number == number }) else { return nil }
        self = p
    }
    public static func < (a: Self, b: Self) -> Bool { a.number < b.number }
}
