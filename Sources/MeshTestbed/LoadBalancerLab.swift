import Foundation
import MeshKernel

/// A client, a load-balancer namespace and N backends running `HTTPBackend`, for VIP proofs:
///
///     client 10.99.0.2 --veth-- lb (10.99.0.1 | br0 10.98.0.1) --bridge-- backend i 10.98.0.(10+i)
///
/// The VIP (10.97.0.10:80) is routed to the load balancer by the client's default route; the
/// test programs nftables or IPVS in `lb`. With `vipOnLoopback` the VIP is also a local address
/// of `lb`, which IPVS needs (it sees packets at LOCAL_IN).
public final class LoadBalancerLab: Sendable {
    public static let vip = IPAddress("10.97.0.10")!
    public static let vipPort: UInt16 = 80

    public let group: NamespaceGroup
    public let client: NetworkNamespace
    public let lb: NetworkNamespace
    public let backendNamespaces: [NetworkNamespace]
    public let backends: [HTTPBackend]
    public var backendAddresses: [IPAddress] { backends.map(\.address) }

    private init(
        group: NamespaceGroup, client: NetworkNamespace, lb: NetworkNamespace,
        backendNamespaces: [NetworkNamespace], backends: [HTTPBackend]
    ) {
        self.group = group
        self.client = client
        self.lb = lb
        self.backendNamespaces = backendNamespaces
        self.backends = backends
    }

    public static func build(tag: String, backends count: Int = 3, vipOnLoopback: Bool = false) async throws -> LoadBalancerLab {
        precondition(count >= 1, "a load-balancer lab needs at least one backend")
        let group = NamespaceGroup(tag: tag)
        var servers: [HTTPBackend] = []
        do {
            let client = try group.create("client")
            let lb = try group.create("lb")
            let l = try NetlinkHandle(namespace: lb)
            let c = try NetlinkHandle(namespace: client)
            try lb.setSysctl("net.ipv4.ip_forward", "1")
            try await l.linkAdd(LinkSpec(name: "br0", kind: .bridge, up: true))
            try await l.linkAdd(LinkSpec(name: "c0", kind: .veth(peerName: "eth0", peerNamespace: client), up: true))
            var ops: [RouteOperation] = [
                .linkSet("lo", LinkChange(up: true)),
                .addrAdd(InterfaceAddress(device: "c0", prefix: IPPrefix("10.99.0.1/24")!)),
                .addrAdd(InterfaceAddress(device: "br0", prefix: IPPrefix("10.98.0.1/24")!)),
            ]
            if vipOnLoopback { ops.append(.addrAdd(InterfaceAddress(device: "lo", prefix: .host(vip)))) }
            try await l.apply(ops)
            try await c.apply([
                .linkSet("lo", LinkChange(up: true)),
                .addrAdd(InterfaceAddress(device: "eth0", prefix: IPPrefix("10.99.0.2/24")!)),
                .linkSet("eth0", LinkChange(up: true)),
                .route(.replace, .defaultRoute(via: IPAddress("10.99.0.1")!, device: "eth0")),
            ])
            var namespaces: [NetworkNamespace] = []
            for i in 1...count {
                let ns = try group.create("b\(i)")
                let b = try NetlinkHandle(namespace: ns)
                let address = IPAddress("10.98.0.\(10 + i)")!
                try await l.linkAdd(LinkSpec(name: "b\(i)", kind: .veth(peerName: "eth0", peerNamespace: ns), master: "br0", up: true))
                try await b.apply([
                    .linkSet("lo", LinkChange(up: true)),
                    .addrAdd(InterfaceAddress(device: "eth0", prefix: IPPrefix(address: address, length: 24)!)),
                    .linkSet("eth0", LinkChange(up: true)),
                    .route(.replace, .defaultRoute(via: IPAddress("10.98.0.1")!, device: "eth0")),
                ])
                namespaces.append(ns)
                servers.append(try HTTPBackend(name: "backend\(i)", namespace: ns, address: address))
            }
            return LoadBalancerLab(group: group, client: client, lb: lb, backendNamespaces: namespaces, backends: servers)
        } catch {
            for s in servers { s.stop() }
            group.destroy()
            throw error
        }
    }

    /// `n` requests, each on its own connection, from one curl process in the client namespace
    /// (one process keeps this fast under the VM lane's emulated CPU); how many each backend
    /// served, with "failed" counting requests that got no answer.
    public func spread(_ n: Int, address: IPAddress = vip, port: UInt16 = vipPort) throws -> [String: Int] {
        let url = "http://\(address):\(port)/"
        let out = try Exec.run(
            [
                "ip", "netns", "exec", client.name!, "curl", "-s", "--max-time", "2",
                "-H", "Connection: close",
            ] + Array(repeating: url, count: n))
        var counts: [String: Int] = [:]
        let names = out.stdout.split(separator: "\n").map(String.init)
        for name in names { counts[name, default: 0] += 1 }
        if names.count < n { counts["failed", default: 0] += n - names.count }
        return counts
    }

    public func destroy() {
        for b in backends { b.stop() }
        group.destroy()
    }
}
