import Foundation

public struct IPAM: Codable, Sendable, Equatable {
    public var Driver: String?
    public var Options: [String: String]?
    public var Config: [IPAMConfig]?
    public init(Driver: String? = "default", Options: [String: String]? = nil, Config: [IPAMConfig]? = nil) {
        self.Driver = Driver
        self.Options = Options
        self.Config = Config
    }
}

public struct IPAMConfig: Codable, Sendable, Equatable {
    public var Subnet: String?
    public var IPRange: String?
    public var Gateway: String?
    public var AuxiliaryAddresses: [String: String]?
    public init(Subnet: String? = nil, IPRange: String? = nil, Gateway: String? = nil) {
        self.Subnet = Subnet
        self.IPRange = IPRange
        self.Gateway = Gateway
    }
}

/// `POST /networks/create`.
public struct NetworkCreateRequest: Codable, Sendable, Equatable {
    public var Name: String
    public var Driver: String?
    public var Scope: String?
    public var EnableIPv4: Bool?
    public var EnableIPv6: Bool?
    public var IPAM: IPAM?
    public var Internal: Bool?
    public var Attachable: Bool?
    public var Ingress: Bool?
    public var ConfigOnly: Bool?
    public var Options: [String: String]?
    public var Labels: [String: String]?

    public init(
        Name: String, Driver: String? = "overlay", IPAM: IPAM? = nil, Internal: Bool? = nil, Attachable: Bool? = nil,
        Ingress: Bool? = nil, Options: [String: String]? = nil, Labels: [String: String]? = nil
    ) {
        self.Name = Name
        self.Driver = Driver
        self.IPAM = IPAM
        self.Internal = Internal
        self.Attachable = Attachable
        self.Ingress = Ingress
        self.Options = Options
        self.Labels = Labels
    }
}

/// 201 answer of `POST /networks/create`.
public struct NetworkCreateResponse: Codable, Sendable, Equatable {
    public var Id: String
    public var Warning: String
    public init(Id: String, Warning: String = "") {
        self.Id = Id
        self.Warning = Warning
    }
}

/// `GET /networks` items and `GET /networks/{id}` (the local API's shape, not swarm's).
public struct NetworkResource: Codable, Sendable, Equatable {
    public var Name: String
    public var Id: String
    public var Created: Date
    /// swarm, local
    public var Scope: String
    public var Driver: String
    public var EnableIPv4: Bool
    public var EnableIPv6: Bool
    public var IPAM: IPAM
    public var Internal: Bool
    public var Attachable: Bool
    public var Ingress: Bool
    public var ConfigOnly: Bool
    public var Containers: [String: EndpointResource]
    public var Options: [String: String]
    public var Labels: [String: String]
    public var Peers: [Peer]?

    public struct EndpointResource: Codable, Sendable, Equatable {
        public var Name: String
        public var EndpointID: String
        public var MacAddress: String
        public var IPv4Address: String
        public var IPv6Address: String
        public init(Name: String, EndpointID: String, MacAddress: String = "", IPv4Address: String, IPv6Address: String = "") {
            self.Name = Name
            self.EndpointID = EndpointID
            self.MacAddress = MacAddress
            self.IPv4Address = IPv4Address
            self.IPv6Address = IPv6Address
        }
    }
    public struct Peer: Codable, Sendable, Equatable {
        public var Name: String
        public var IP: String
        public init(Name: String, IP: String) {
            self.Name = Name
            self.IP = IP
        }
    }

    public init(
        Name: String, Id: String, Created: Date, Scope: String = "swarm", Driver: String = "overlay", EnableIPv4: Bool = true,
        EnableIPv6: Bool = false, IPAM: IPAM, Internal: Bool = false, Attachable: Bool = false, Ingress: Bool = false,
        ConfigOnly: Bool = false, Containers: [String: EndpointResource] = [:], Options: [String: String] = [:],
        Labels: [String: String] = [:], Peers: [Peer]? = nil
    ) {
        self.Name = Name
        self.Id = Id
        self.Created = Created
        self.Scope = Scope
        self.Driver = Driver
        self.EnableIPv4 = EnableIPv4
        self.EnableIPv6 = EnableIPv6
        self.IPAM = IPAM
        self.Internal = Internal
        self.Attachable = Attachable
        self.Ingress = Ingress
        self.ConfigOnly = ConfigOnly
        self.Containers = Containers
        self.Options = Options
        self.Labels = Labels
        self.Peers = Peers
    }
}

/// 200 answer of `POST /networks/prune`.
public struct NetworkPruneResponse: Codable, Sendable, Equatable {
    public var NetworksDeleted: [String]?
    public init(NetworksDeleted: [String]?) { self.NetworksDeleted = NetworksDeleted }
}
