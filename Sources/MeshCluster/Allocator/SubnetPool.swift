import MeshValues

/// Overlay subnets: automatic ones carved in order from the address pools, explicit ones taken as given;
/// no two networks ever get overlapping subnets.
public struct SubnetPool: Sendable, Equatable {
    public let pools: [IPv4Block]
    public let subnetSize: Int
    /// Allocated subnets, sorted by start, with the network that owns each.
    public private(set) var allocated: [(block: IPv4Block, owner: String)] = []

    public static func == (a: SubnetPool, b: SubnetPool) -> Bool {
        a.pools == b.pools && a.subnetSize == b.subnetSize
            && a.allocated.map(\.block) == b.allocated.map(\.block) && a.allocated.map(\.owner) == b.allocated.map(\.owner)
    }

    /// Docker's default: `10.0.0.0/8` in /24s.
    public init(pools: [IPPrefix] = [IPPrefix("10.0.0.0/8")!], subnetSize: Int = 24) throws(ClusterError) {
        var blocks: [IPv4Block] = []
        for p in pools {
            guard let b = IPv4Block(p) else { throw .invalidArgument("invalid default address pool \(p): IPv4 only") }
            guard subnetSize >= b.length, subnetSize <= 30 else {
                throw .invalidArgument("invalid subnet size \(subnetSize) for address pool \(p)")
            }
            blocks.append(b)
        }
        guard !blocks.isEmpty else { throw .invalidArgument("the default address pool is empty") }
        for (i, a) in blocks.enumerated() {
            for b in blocks[(i + 1)...] where a.overlaps(b) {
                throw .invalidArgument("default address pools \(a) and \(b) overlap")
            }
        }
        self.pools = blocks
        self.subnetSize = subnetSize
    }

    /// The first free `subnetSize` block of the pools, in pool order.
    public mutating func allocate(owner: String) throws(ClusterError) -> IPv4Block {
        for pool in pools {
            var candidate = UInt64(pool.start)
            let step = UInt64(1) << (32 - subnetSize)
            for (block, _) in allocated where block.end >= pool.start && block.start <= pool.end {
                if candidate + step - 1 < UInt64(block.start) { break }
                if UInt64(block.end) >= candidate {
                    // Next aligned block after this allocation.
                    candidate = (UInt64(block.end) + 1 + step - 1) / step * step
                }
            }
            if candidate + step - 1 <= UInt64(pool.end) {
                let block = IPv4Block(start: UInt32(candidate), length: subnetSize)
                insert(block, owner: owner)
                return block
            }
        }
        throw .exhausted("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
    }

    /// An explicit `--subnet`: honoured anywhere, refused if it overlaps an allocated one.
    public mutating func reserve(_ prefix: IPPrefix, owner: String) throws(ClusterError) -> IPv4Block {
        guard let block = IPv4Block(prefix) else { throw .invalidArgument("invalid subnet \(prefix): IPv4 only") }
        guard block.start == (prefix.address.v4Value ?? 0) else {
            throw .invalidArgument("invalid subnet \(prefix): it has host bits set (use \(block))")
        }
        guard block.length <= 30 else { throw .invalidArgument("invalid subnet \(prefix): smaller than /30") }
        if let clash = allocated.first(where: { $0.block.overlaps(block) }) {
            throw .invalidArgument(
                "invalid pool request: Pool overlaps with other one on this address space (\(block) overlaps \(clash.block) of network \(clash.owner))"
            )
        }
        insert(block, owner: owner)
        return block
    }

    public mutating func release(owner: String) {
        allocated.removeAll { $0.owner == owner }
    }

    private mutating func insert(_ block: IPv4Block, owner: String) {
        let i = allocated.firstIndex { $0.block.start > block.start } ?? allocated.endIndex
        allocated.insert((block, owner), at: i)
    }
}
