import MeshValues

/// Who holds an address on a network. One owner holds at most one address per network.
public enum AddressOwner: Hashable, Sendable, Codable, CustomStringConvertible {
    case gateway
    /// A service's virtual IP.
    case vip(serviceID: String)
    case task(taskID: String)
    /// A node's own endpoint on the network (its load-balancer/ingress sandbox address).
    case node(nodeID: String)

    public var description: String {
        switch self {
        case .gateway: "gateway"
        case .vip(let s): "vip of service \(s)"
        case .task(let t): "task \(t)"
        case .node(let n): "node \(n)"
        }
    }
}

/// The addresses of one network's subnet. Hands out addresses in order after the last one given, so a
/// released address is not reused at once (a stale DNS answer or neighbour entry then misses rather than
/// reaching a new owner).
public struct AddressSpace: Sendable, Equatable {
    public let subnet: IPv4Block
    public private(set) var owners: [UInt32: AddressOwner] = [:]
    public private(set) var addresses: [AddressOwner: UInt32] = [:]
    private var cursor: UInt32

    public init(subnet: IPv4Block) {
        self.subnet = subnet
        cursor = subnet.start
    }

    /// Usable host addresses: the subnet minus its network and broadcast addresses.
    public var firstHost: UInt32 { subnet.start + 1 }
    public var lastHost: UInt32 { subnet.end - 1 }

    /// The owner's address, allocating the next free one if it has none yet.
    public mutating func allocate(_ owner: AddressOwner) throws(ClusterError) -> UInt32 {
        if let held = addresses[owner] { return held }
        let count = UInt64(lastHost) - UInt64(firstHost) + 1
        guard UInt64(owners.count) < count else {
            throw .exhausted("no available IPv4 addresses on network subnet \(subnet)")
        }
        var a = cursor
        for _ in 0..<count {
            a = (a >= lastHost || a < firstHost) ? firstHost : a + 1
            if owners[a] == nil {
                owners[a] = owner
                addresses[owner] = a
                cursor = a
                return a
            }
        }
        throw .exhausted("no available IPv4 addresses on network subnet \(subnet)")
    }

    /// A specific address (the gateway, or one recorded in the store while rebuilding).
    public mutating func reserve(_ address: UInt32, for owner: AddressOwner) throws(ClusterError) {
        guard address >= firstHost, address <= lastHost else {
            throw .invalidArgument("address \(IPAddress.v4(address)) is not a host address of \(subnet)")
        }
        if let current = owners[address] {
            if current == owner { return }
            throw .failedPrecondition("address \(IPAddress.v4(address)) on \(subnet) is already in use by \(current)")
        }
        if let held = addresses[owner], held != address {
            throw .failedPrecondition("\(owner) already holds \(IPAddress.v4(held)) on \(subnet)")
        }
        owners[address] = owner
        addresses[owner] = address
    }

    public mutating func release(_ owner: AddressOwner) {
        guard let a = addresses.removeValue(forKey: owner) else { return }
        owners.removeValue(forKey: a)
    }

    public func owner(of address: UInt32) -> AddressOwner? { owners[address] }
    public func address(of owner: AddressOwner) -> UInt32? { addresses[owner] }

    public static func == (a: AddressSpace, b: AddressSpace) -> Bool { a.subnet == b.subnet && a.owners == b.owners }
}
