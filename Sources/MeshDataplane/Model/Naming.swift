import MeshKernel

/// Every name meshd gives a kernel object, derived from ids so a restarted process finds what an
/// earlier one made, and so several nodes can share one machine without colliding.
public struct Naming: Sendable, Equatable {
    public let nodeID: String
    public init(nodeID: String) { self.nodeID = nodeID }

    /// Ids as parts of sandbox names (`KernelName`'s rule, 12 characters).
    static func short(_ id: String, _ n: Int = 12) -> String { KernelName.short(id, length: n) }

    /// Namespaces of this node start with it; nothing else of meshd's does.
    public var sandboxPrefix: String { "meshd-\(Self.short(nodeID))-" }
    public func sandbox(_ networkID: String) -> String { sandboxPrefix + Self.short(networkID) }

    /// The sandbox end of a task's veth: "ve" and 8 hex digits of the (task, network) pair.
    public static func veth(task: String, network: String) -> String {
        "ve" + String(format8(UInt32(truncatingIfNeeded: fnv1a("\(task)/\(network)"))))
    }
    public static let vethPrefix = "ve"
    public static let vxlan = "vxlan0"
    /// vxlan0 is created in the node namespace (so its socket stays on the underlay) under this
    /// name, then moved into the sandbox and renamed.
    public static func vxlanStaging(vni: UInt32) -> String { "mvx\(vni)" }

    /// The link between the node namespace and the ingress sandbox.
    public static let ingressNodeSide = "meshd-ingress"
    public static let ingressSandboxSide = "ingress0"
    public static let ingressNodeAddress = IPAddress("169.254.77.1")!
    public static let ingressSandboxAddress = IPAddress("169.254.77.2")!
    public static let ingressLinkLength = 30
    /// The same link's IPv6 ends, when the ingress network is dual-stack: unique local addresses
    /// ("meshd" in the prefix), never routed beyond the link.
    public static let ingressNodeAddress6 = IPAddress("fd6d:6573:6864::1")!
    public static let ingressSandboxAddress6 = IPAddress("fd6d:6573:6864::2")!
    public static let ingressLinkLength6 = 126

    /// The MAC of a node's vxlan0 in network `vni`: the same on every node that computes it, so
    /// remote endpoints need no MAC exchange. Locally administered, unicast.
    public static func vxlanMAC(node: String, vni: UInt32) -> MACAddress {
        MACAddress(rawValue: 0x02_00_00_00_00_00 | (fnv1a("\(node)/\(vni)") & 0xff_ffff_ffff))!
    }

    /// Where a task's IPv6 traffic leaves for the sandbox: the link-local address every sandbox end
    /// of a task's veth holds (link-local addresses are per link, so one for all). IPv6 has no
    /// proxy-NDP for a whole subnet, as IPv4's proxy_arp is; a task holds its address as a /128 and
    /// routes its subnet and default via this.
    public static let gateway6 = IPAddress("fe80::1")!

    /// In a task on the ingress network and another: what leaves from its ingress address is
    /// routed by this table (default via the ingress gateway), not by the main table's default.
    public static let taskReturnTable: UInt32 = 77
    public static func taskReturnRule(_ address: IPAddress) -> FIBRule {
        FIBRule(priority: IngressReturn.rulePriority, source: .host(address), table: taskReturnTable)
    }

    /// nftables tables.
    public static let sandboxTable = NFTTable(.ip, "meshd")
    public static let nodeTable = NFTTable(.inet, "meshd")

    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return h
    }
    static func format8(_ v: UInt32) -> String {
        let hex = String(v, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}
