import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// A worker whose daemon is SIGKILLed and restarted must take its share of new tasks once `node ls`
/// shows it Ready again (issue 20: the convergence benchmark found it left empty).
@Suite(.serialized) struct RejoinTests {
    @Test func aRestartedWorkerGetsItsShareOfANewScale() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mdr")
        defer { c.destroy() }
        try ClusterTests.formSwarm(c, network: "rejoin")
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "whoami", "--network", "rejoin",
                    "--replicas", "6", "meshd/whoami",
                ]), "service create", c)
        func running() throws -> [String] {
            ClusterTests.lines(
                try c.docker(
                    1,
                    [
                        "service", "ps", "whoami", "--filter", "desired-state=running",
                        "--format", "{{.Node}} {{.CurrentState}}",
                    ]
                ).stdout
            ).filter { $0.contains("Running") }
        }
        let spread = try await ClusterTests.eventually(.seconds(30)) {
            try running().count == 6 && (try running().contains { $0.hasPrefix("node3 ") })
        }
        let before = try running()
        #expect(spread, "6 replicas with some on node3: \(before)")

        // As the benchmark does: SIGKILL, a few seconds for gossip to take node 3's tasks out of
        // the balancers, a restart, then `node ls` Ready before the scale.
        c.kill9(3)
        try await Task.sleep(for: .seconds(4))
        try c.start(3)
        try await c.waitForSocket(3)
        let ready = try await ClusterTests.eventually(.seconds(30)) {
            try c.docker(1, ["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]).stdout.contains("node3 Ready")
        }
        let nodes = try c.docker(1, ["node", "ls"]).stdout
        #expect(ready, "node3 is not Ready again: \(nodes)")
        _ = ClusterTests.check(try c.docker(1, ["service", "scale", "--detach", "whoami=2"]), "scale 2", c)
        _ = ClusterTests.check(try c.docker(1, ["service", "scale", "--detach", "whoami=20"]), "scale 20", c)
        let twenty = try await ClusterTests.eventually(.seconds(60)) { try running().count == 20 }
        let rows = try running()
        let onNode3 = rows.filter { $0.hasPrefix("node3 ") }.count
        print("after the rejoin, scale 2 → 20: node3 runs \(onNode3) of \(rows.count)")
        let ps = try c.docker(1, ["service", "ps", "whoami"]).stdout
        #expect(twenty, "20 running: \(rows.count)\n\(ps)")
        #expect(onNode3 >= 5, "node3 runs \(onNode3) of 20:\n\(ps)\n\(c.log(3).suffix(2000))")
    }
}
