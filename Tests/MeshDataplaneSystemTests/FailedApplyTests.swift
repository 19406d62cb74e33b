import Foundation
import MeshDataplane
import MeshKernel
import MeshTestbed
import Testing

/// A kernel refusal in the middle of an apply: the error names the object and carries the
/// kernel's words, and the node is left exactly as it was.
@Suite(.serialized) struct FailedApplyTests {
    struct Node {
        let group: NamespaceGroup
        let id: String
        var sandbox: String { Naming(nodeID: id).sandbox("demo") }
    }

    /// A node namespace with the advertise address on a dummy device, and two task namespaces;
    /// task2 already has an interface named eth0 (not meshd's), so meshd cannot create one there.
    static func node() async throws -> Node {
        guard getuid() == 0 else { throw NotRootError() }
        let group = NamespaceGroup(tag: "mkt-fail")
        let node = try group.create("node")
        let h = try NetlinkHandle(namespace: node)
        try await h.apply([.linkSet("lo", LinkChange(up: true))])
        // No dummy driver on this kernel: a veth pair stands in for the underlay NIC.
        try await h.linkAdd(LinkSpec(name: "under0", kind: .veth(peerName: "under1", peerNamespace: nil), mtu: 1500, up: true))
        try await h.addrAdd(InterfaceAddress(device: "under0", prefix: IPPrefix("198.18.7.1/24")!))
        _ = try group.create("task1")
        let t2 = try NetlinkHandle(namespace: try group.create("task2"))
        try await t2.linkAdd(LinkSpec(name: "eth0", kind: .veth(peerName: "other0", peerNamespace: nil)))
        let id = "mktfail\(getpid() % 100_000)x\(group.prefix.split(separator: "-").last!)"
        return Node(group: group, id: id)
    }

    static func state(_ n: Node, tasks: [String], vip: Bool) -> DataplaneState {
        let demo = OverlayNetwork(id: "demo", name: "demo", vni: 5001, subnet: IPPrefix("10.41.0.0/24")!, gateway: IPAddress("10.41.0.1")!)
        let locals = tasks.enumerated().map { i, t in
            LocalEndpoint(id: t, network: "demo", namespace: n.group.name(t), address: IPAddress("10.41.0.\(11 + i)")!)
        }
        let services =
            vip
            ? [
                BalancedService(
                    id: "s", name: "web", vips: [.init(network: "demo", address: IPAddress("10.41.0.2")!)],
                    backends: locals.map { .init(network: "demo", address: $0.address) })
            ] : []
        return DataplaneState(
            node: NodeIdentity(id: n.id, advertiseAddress: IPAddress("198.18.7.1")!, namespace: n.group.name("node")),
            networks: [demo], localEndpoints: locals, services: services)
    }

    static func cleanup(_ n: Node) {
        for name in NetworkNamespace.list() where name.hasPrefix(Naming(nodeID: n.id).sandboxPrefix) {
            try? NetworkNamespace.delete(named: name)
        }
        n.group.destroy()
    }

    static func picture(_ sandbox: String) throws -> String {
        let links = try Exec.check(["ip", "-n", sandbox, "-j", "link", "show"])
        let addrs = try Exec.check(["ip", "-n", sandbox, "-j", "addr", "show", "dev", "lo"])
        let routes = try Exec.check(["ip", "-n", sandbox, "-j", "route", "show"])
        let nft = try Exec.check(["ip", "netns", "exec", sandbox, "nft", "-j", "list", "ruleset"])
        return [links, addrs, routes, nft].joined(separator: "\n")
    }

    @Test func aRefusedTaskLeavesAFreshNodeWithNothing() async throws {
        let n = try await Self.node()
        defer { Self.cleanup(n) }
        let r = Reconciler(lb: .nftables)
        do {
            _ = try await r.apply(Self.state(n, tasks: ["task1", "task2"], vip: true))
            Issue.record("the apply should have failed")
        } catch {
            let text = "\(error)"
            #expect(text.contains("task \(n.group.name("task2")) eth0 10.41.0.12"), "names the object: \(text)")
            #expect(text.contains("File exists"), "carries the kernel's words: \(text)")
            #expect(text.contains("left as it was"))
        }
        // The sandbox this apply made is gone, and task1 got nothing.
        #expect(!NetworkNamespace.list().contains(n.sandbox))
        let task1 = try Exec.json(["ip", "-n", n.group.name("task1"), "-j", "link", "show"]) as? [[String: Any]] ?? []
        #expect(task1.map { $0["ifname"] as? String } == ["lo"])
    }

    @Test func aRefusedChangeLeavesTheSandboxAsItWas() async throws {
        let n = try await Self.node()
        defer { Self.cleanup(n) }
        let r = Reconciler(lb: .nftables)
        _ = try await r.apply(Self.state(n, tasks: ["task1"], vip: false))
        let before = try Self.picture(n.sandbox)
        await #expect(throws: DataplaneError.self) {
            _ = try await r.apply(Self.state(n, tasks: ["task1", "task2"], vip: true))
        }
        #expect(try Self.picture(n.sandbox) == before)
        // And the same reconciler still converges once the cause is gone.
        _ = try Exec.check(["ip", "-n", n.group.name("task2"), "link", "del", "eth0"])
        let report = try await r.apply(Self.state(n, tasks: ["task1", "task2"], vip: true))
        #expect(report.changes.contains { $0.contains("attach 10.41.0.12") })
        #expect(report.changes.contains { $0.contains("VIP 10.41.0.2") })
        let again = try await r.apply(Self.state(n, tasks: ["task1", "task2"], vip: true))
        #expect(again.isEmpty, "\(again.changes)")
    }
}

struct NotRootError: Error, CustomStringConvertible {
    var description: String { "dataplane tests create network namespaces and need root" }
}
