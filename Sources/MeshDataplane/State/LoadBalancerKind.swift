import MeshKernel

/// Which kernel facility balances VIPs and published ports.
public enum LoadBalancerKind: String, Codable, Sendable, CaseIterable {
    case nftables, ipvs

    /// IPVS when the kernel has it (its generic-netlink family resolves in `namespace`), else nftables.
    public static func detect(in namespace: NetworkNamespace? = nil) -> LoadBalancerKind {
        (try? IPVSHandle(namespace: namespace)) != nil ? .ipvs : .nftables
    }
}

/// What an apply changed, one line per kernel change, in the order made.
public struct ChangeReport: Sendable, Codable, Equatable {
    public var changes: [String] = []
    public var isEmpty: Bool { changes.isEmpty }
    public init(changes: [String] = []) { self.changes = changes }
}
