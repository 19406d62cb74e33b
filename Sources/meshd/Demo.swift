import ArgumentParser
import Foundation
import MeshKernel
import MeshTestbed

/// Builds the two-node routed overlay of DESIGN.md in network namespaces through MeshKernel and
/// proves it with real traffic; removes everything afterwards unless --keep.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Two nodes, a VXLAN overlay and a task on each, in network namespaces; ping and TCP across.")

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
    }
}
