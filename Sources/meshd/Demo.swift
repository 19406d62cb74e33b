import ArgumentParser
import Foundation
import MeshKernel
import MeshTestbed

/// Builds the two-node routed overlay of DESIGN.md in network namespaces through MeshKernel and
/// proves it with real traffic; removes everything afterwards unless --keep.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Two nodes, a VXLAN overlay and a task on each, in network namespaces; ping and TCP across; then a service VIP load-balanced by nftables over three HTTP backends.")

    @Flag(help: "Leave the namespaces in place (remove later with `ip netns del`).")
    var keep = false

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the demo creates network namespaces: run it as root") }
        print("building: underlay bridge, 2 nodes, 2 sandboxes with vxlan0 (VNI 4097), 2 tasks …")
        let start = ContinuousClock.now
        let overlay = try await TwoNodeOverlay.build(tag: "meshd-demo")
        defer { if !keep { overlay.destroy() } }
        print("built in \(ContinuousClock.now - start)\n")

        for n in overlay.nodes {
            print("node\(n.index + 1): underlay \(n.underlayAddress), vxlan0 MAC \(n.vxlanMAC), task \(n.taskAddress)")
        }
        let sandbox = overlay.nodes[0].sandboxHandle
        print("\nsandbox 1, as MeshKernel reads it back:")
        for l in try await sandbox.linkList() {
            var line = "  link \(l.index): \(l.name) \(l.kind ?? "-") mtu \(l.mtu ?? 0) \(l.isUp ? "UP" : "DOWN")"
            if let v = l.vxlan { line += " vni \(v.vni) local \(v.local.map { "\($0)" } ?? "-") dstport \(v.port) learning \(v.learning)" }
            print(line)
        }
        for r in try await sandbox.routeList() { print("  route \(r.destination) dev \(r.device!) scope \(r.effectiveScope)") }
        for n in try await sandbox.neighList(device: "vxlan0") { print("  neigh \(n.address) lladdr \(n.mac!) PERMANENT") }
        for f in try await sandbox.fdbList(device: "vxlan0") where f.destination != nil {
            print("  fdb \(f.mac) dst \(f.destination!) self permanent")
        }

        print("\ntask1 → task2:")
        print("  ping \(overlay.nodes[1].taskAddress): \(try overlay.ping(from: 0, to: 1) ? "ok" : "FAILED")")
        let answer = try overlay.tcpExchange(from: 0, to: 1)
        print("  tcp  \(overlay.nodes[1].taskAddress):7000 answered \"\(answer)\" (the server sees the task's own address: no NAT)")

        print("\ndeleting the FDB entry for node2 in sandbox 1 …")
        try await sandbox.fdbDel(overlay.remoteFDB(from: 0))
        let after = try overlay.ping(from: 0, to: 1, count: 1, waitSeconds: 1)
        print("  ping \(overlay.nodes[1].taskAddress): \(after ? "still answers (unexpected)" : "fails, as it must: unknown destinations fail closed")")
        if keep { print("\nkept: namespaces \(overlay.group.prefix)-*") }

        try await serviceDemo()
    }

    /// A VIP in front of three HTTP backends, programmed as one nftables transaction; requests
    /// from a client namespace with curl; then the service scaled down with element changes only.
    func serviceDemo() async throws {
        print("\nservice: VIP \(LoadBalancerLab.vip):\(LoadBalancerLab.vipPort) over 3 HTTP backends, nftables in the load-balancer namespace …")
        let lab = try await LoadBalancerLab.build(tag: "meshd-demo")
        defer { if !keep { lab.destroy() } }
        let nft = try lab.lb.openNFTables()
        let r = NFTServiceRuleset(table: NFTTable(.ip, "meshd"))
        var b = r.base()
        r.addModulus(3, to: &b)
        r.addModulus(2, to: &b)
        r.add(service: 1, vip: LoadBalancerLab.vip, backends: lab.backendAddresses.map { ($0, 80) }, to: &b)
        try await nft.commit(b)
        let rules = try nft.listRules(r.table)
        for c in try nft.listChains(r.table) {
            let count = rules.filter { $0.chain == c.name }.count
            print("  chain \(c.name)\(c.hook != nil ? " (hook \(c.hook!), priority \(c.priority ?? 0))" : ""): \(count) rule(s)")
        }
        for set in [r.svcMod, r.svcSlot, r.backendMap] { print("  map \(set.name): \(try nft.listElements(set).count) element(s)") }
        let spread = try lab.spread(30)
        print("  30 requests with curl from the client: " + spread.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))

        print("\nscaling to backends 1 and 3: one transaction of element changes, no rule touched …")
        b = NFTBatch()
        r.remove(service: 1, vip: LoadBalancerLab.vip, backends: 3, to: &b)
        r.add(service: 2, vip: LoadBalancerLab.vip, backends: [(lab.backendAddresses[0], 80), (lab.backendAddresses[2], 80)], to: &b)
        let clock = ContinuousClock()
        let took = try await clock.measure { try await nft.commit(b) }
        let after = try lab.spread(30)
        print("  applied in \(String(format: "%.2f ms", Double(took.components.attoseconds) / 1e15 + Double(took.components.seconds) * 1e3)); 30 more requests: " + after.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        if keep { print("\nkept: namespaces \(lab.group.prefix)-* (try: ip netns exec \(lab.lb.name!) nft list ruleset)") }
    }
}
