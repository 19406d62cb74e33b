import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

/// The routed overlay of DESIGN.md on two nodes, wired only through MeshKernel, carrying real packets.
@Suite("traffic proof")
struct TrafficProofTests {
    @Test func pingAndTCPCrossTheOverlayAndStopWithoutTheFDBEntry() async throws {
        guard getuid() == 0 else { throw NotRoot() }
        let overlay = try await TwoNodeOverlay.build(tag: "mkt-proof")
        defer { overlay.destroy() }

        #expect(try overlay.ping(from: 0, to: 1))
        #expect(try overlay.ping(from: 1, to: 0))
        // The server sees the client task's own address: nothing on the path NATs.
        #expect(try overlay.tcpExchange(from: 0, to: 1) == "echo hello from 10.10.0.2")
        #expect(try overlay.tcpExchange(from: 1, to: 0, port: 7001) == "echo hello from 10.10.0.3")

        // The overlay really is VXLAN on the underlay: the node namespace's vxlan socket exists,
        // the sandbox holds vxlan0, and its FDB names the peer's underlay address.
        let fdb = try Exec.json(["bridge", "-n", overlay.nodes[0].sandbox.name!, "-j", "fdb", "show", "dev", "vxlan0"]) as? [[String: Any]]
        #expect(fdb?.contains { $0["dst"] as? String == "198.18.0.2" } == true)

        // Without the FDB entry, node 1 no longer knows where node 2's MAC lives: traffic fails closed.
        try await overlay.nodes[0].sandboxHandle.fdbDel(overlay.remoteFDB(from: 0))
        #expect(try !overlay.ping(from: 0, to: 1, count: 1, waitSeconds: 1))
        #expect(throws: TCPProbe.Failure.self) { _ = try overlay.tcpExchange(from: 0, to: 1, port: 7002) }

        // Put it back: traffic flows again.
        try await overlay.nodes[0].sandboxHandle.fdbAppend(overlay.remoteFDB(from: 0))
        #expect(try overlay.ping(from: 0, to: 1))
    }
}
