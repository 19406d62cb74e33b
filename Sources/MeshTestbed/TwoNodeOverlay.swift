import Foundation
import MeshKernel

/// The routed overlay of DESIGN.md on two "nodes", built only through MeshKernel:
///
///     underlay ns:  br0 ── u1 ══ eth0 (node1 198.18.0.1)      u2 ══ eth0 (node2 198.18.0.2)
///     node i:       vxlan0 created here (local = node address, dstport 4789, nolearning), then moved to sandbox i
///     sandbox i:    lo has the gateway /32; vxlan0 up; veth "tap" ══ eth0 of task i (proxy_arp, /32 route);
///                   `subnet dev vxlan0`; permanent neighbour (remote task → remote vxlan0 MAC);
///                   FDB (remote vxlan0 MAC → remote node address)
///     task i:       eth0 with its address in the subnet, default route via the gateway
///
/// Underlay addresses come from 198.18.0.0/15 (the benchmarking range) and live only in namespaces
/// this builder creates.
public final class TwoNodeOverlay: Sendable {
    public struct Node: Sendable {
        public let index: Int
        public let node: NetworkNamespace
        public let sandbox: NetworkNamespace
        public let task: NetworkNamespace
        public let underlayAddress: IPAddress
        public let taskAddress: IPAddress
        public let vxlanMAC: MACAddress
        public let nodeHandle: NetlinkHandle
        public let sandboxHandle: NetlinkHandle
        public let taskHandle: NetlinkHandle
    }

    public let group: NamespaceGroup
    public let underlay: NetworkNamespace
    public let nodes: [Node]
    public let subnet = IPPrefix("10.10.0.0/24")!
    public let gateway = IPAddress("10.10.0.1")!
    public let vni: UInt32 = 4097
    public static let underlayMTU: UInt32 = 1500
    /// VXLAN over IPv4 costs 50 bytes (outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8).
    public var overlayMTU: UInt32 { Self.underlayMTU - 50 }

    /// The neighbour and FDB entries sandbox `i` holds for the other node.
    public func remoteNeighbor(from i: Int) -> Neighbor {
        let peer = nodes[1 - i]
        return Neighbor(device: "vxlan0", address: peer.taskAddress, mac: peer.vxlanMAC)
    }
    public func remoteFDB(from i: Int) -> FDBEntry {
        let peer = nodes[1 - i]
        return FDBEntry(device: "vxlan0", mac: peer.vxlanMAC, destination: peer.underlayAddress)
    }

    private init(group: NamespaceGroup, underlay: NetworkNamespace, nodes: [Node]) {
        self.group = group
        self.underlay = underlay
        self.nodes = nodes
    }

    /// Builds everything; on any failure removes what it made and rethrows.
    public static func build(tag: String = "mk-overlay") async throws -> TwoNodeOverlay {
        let group = NamespaceGroup(tag: tag)
        do {
            return try await build(group)
        } catch {
            group.destroy()
            throw error
        }
    }

    private static func build(_ group: NamespaceGroup) async throws -> TwoNodeOverlay {
        let underlay = try group.create("underlay")
        let u = try NetlinkHandle(namespace: underlay)
        try await u.linkAdd(LinkSpec(name: "br0", kind: .bridge, up: true))

        var nodes: [Node] = []
        for i in 0..<2 {
            let n = i + 1
            let nodeNS = try group.create("node\(n)")
            let sandboxNS = try group.create("sbx\(n)")
            let taskNS = try group.create("task\(n)")
            let node = try NetlinkHandle(namespace: nodeNS)
            let sandbox = try NetlinkHandle(namespace: sandboxNS)
            let task = try NetlinkHandle(namespace: taskNS)
            let underlayAddress = IPAddress("198.18.0.\(n)")!
            let taskAddress = IPAddress("10.10.0.\(n + 1)")!
            let mac = MACAddress(rawValue: 0x02_6d_00_00_10_00 | UInt64(n))!

            // Underlay: a veth from the underlay bridge to the node's eth0.
            try await u.linkAdd(
                LinkSpec(
                    name: "u\(n)", kind: .veth(peerName: "eth0", peerNamespace: nodeNS), mtu: underlayMTU,
                    master: "br0", up: true))
            try await node.apply([
                .linkSet("lo", LinkChange(up: true)),
                .addrAdd(InterfaceAddress(device: "eth0", prefix: IPPrefix(address: underlayAddress, length: 24)!)),
                .linkSet("eth0", LinkChange(up: true)),
            ])

            // vxlan0 is created in the node namespace so its UDP socket lives on the underlay, then moved.
            try await node.linkAdd(
                LinkSpec(
                    name: "vxlan0", kind: .vxlan(VXLANAttributes(vni: 4097, local: underlayAddress)),
                    mtu: underlayMTU - 50, mac: mac))
            try await node.linkSetNamespace("vxlan0", sandboxNS)

            try sandboxNS.setSysctl("net.ipv4.ip_forward", "1")
            try sandboxNS.setSysctl("net.ipv4.conf.all.rp_filter", "0")
            try sandboxNS.setSysctl("net.ipv4.conf.default.rp_filter", "0")
            try await sandbox.linkAdd(
                LinkSpec(
                    name: "tap\(n)", kind: .veth(peerName: "eth0", peerNamespace: taskNS),
                    mtu: underlayMTU - 50))
            try sandboxNS.setSysctl("net.ipv4.conf.tap\(n).proxy_arp", "1")
            try await sandbox.apply([
                .linkSet("lo", LinkChange(up: true)),
                .addrAdd(InterfaceAddress(device: "lo", prefix: .host(IPAddress("10.10.0.1")!))),
                .linkSet(.name("vxlan0"), LinkChange(up: true)),
                .linkSet(.name("tap\(n)"), LinkChange(up: true)),
                .route(.replace, Route(destination: .host(taskAddress), device: .name("tap\(n)"))),
                .route(.replace, Route(destination: IPPrefix("10.10.0.0/24")!, device: "vxlan0")),
            ])
            try await task.apply([
                .linkSet("lo", LinkChange(up: true)),
                .addrAdd(InterfaceAddress(device: "eth0", prefix: IPPrefix(address: taskAddress, length: 24)!)),
                .linkSet("eth0", LinkChange(up: true)),
                .route(.replace, .defaultRoute(via: IPAddress("10.10.0.1")!, device: "eth0")),
            ])
            nodes.append(
                Node(
                    index: i, node: nodeNS, sandbox: sandboxNS, task: taskNS, underlayAddress: underlayAddress,
                    taskAddress: taskAddress, vxlanMAC: mac, nodeHandle: node, sandboxHandle: sandbox, taskHandle: task))
        }
        let overlay = TwoNodeOverlay(group: group, underlay: underlay, nodes: nodes)
        // Remote endpoints: one neighbour per remote task, one FDB entry per remote node.
        for i in 0..<2 {
            try await nodes[i].sandboxHandle.apply([
                .neigh(.replace, overlay.remoteNeighbor(from: i)),
                .fdb(.append, overlay.remoteFDB(from: i)),
            ])
        }
        return overlay
    }

    /// `ping -c N` from task `from` to task `to`'s address; true if every reply came back.
    public func ping(from: Int, to: Int, count: Int = 2, waitSeconds: Int = 2) throws -> Bool {
        let name = nodes[from].task.name!
        let out = try Exec.run([
            "ip", "netns", "exec", name, "ping", "-c", "\(count)", "-W", "\(waitSeconds)", "-i", "0.2",
            nodes[to].taskAddress.description,
        ])
        return out.succeeded
    }

    /// A TCP exchange from task `from` to a listener on task `to`; returns the server's answer.
    public func tcpExchange(from: Int, to: Int, port: UInt16 = 7000) throws -> String {
        try TCPProbe.exchange(server: nodes[to].task, client: nodes[from].task, address: nodes[to].taskAddress, port: port)
    }

    public func destroy() { group.destroy() }
}
