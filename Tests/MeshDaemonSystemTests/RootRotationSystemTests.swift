import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// Issue 17, `docker swarm ca --rotate`: real daemons and the real docker CLI, which waits (as it does
/// against dockerd) until every node holds a certificate of the new root and trusts it, then prints
/// the new root. Afterwards every node's node.json trusts the new root, `node inspect` shows each
/// node holding what `docker info` says the swarm wants, the old join token is refused and the new
/// one works, a restarted worker's session (mutual TLS under the new root only) runs a task placed
/// on it, and the service running across the rotation still runs.
@Suite(.serialized) struct RootRotationSystemTests {
    static func field(_ c: DaemonCluster, _ n: Int, _ key: String) -> String? {
        guard let data = FileManager.default.contents(atPath: "\(c.dataRoot(n))/node.json"),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return obj[key] as? String
    }

    static func trimmed(_ s: String) -> String { s.trimmingCharacters(in: .whitespacesAndNewlines) }

    @Test func swarmCARotateMovesEveryNodeToANewRoot() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mdj", extraArguments: ["--metrics-addr", "127.0.0.1:9323"])
        defer { c.destroy() }
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let oldToken = Self.trimmed(try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout)
        _ = ClusterTests.check(try c.docker(2, ["swarm", "join", "--token", oldToken, "\(c.address(1)):2377"]), "join node2", c)
        let oldRoot = Self.trimmed(ClusterTests.check(try c.docker(1, ["swarm", "ca"]), "swarm ca", c).stdout)
        #expect(oldRoot.hasPrefix("-----BEGIN CERTIFICATE-----"))
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "web", "--replicas", "2", "meshd/whoami"]), "service create", c)
        let up = try await ClusterTests.eventually(.seconds(30)) {
            ClusterTests.lines(try c.docker(1, ["service", "ps", "web", "--format", "{{.CurrentState}}"]).stdout)
                .filter { $0.hasPrefix("Running") }.count == 2
        }
        let webPS = try c.docker(1, ["service", "ps", "web"]).stdout
        #expect(up, "\(webPS)")

        // The CLI attaches and returns once the rotation converged: bounded, so a stuck one fails here.
        let rotate = try Exec.run(
            [
                "timeout", "-s", "KILL", "90", "docker", "--config", "\(c.directory)/docker", "-H", "unix://\(c.socket(1))", "swarm", "ca",
                "--rotate",
            ])
        let log1 = c.log(1).suffix(3000), log2 = c.log(2).suffix(3000)
        try #require(rotate.succeeded, "swarm ca --rotate: \(rotate.stderr)\n\(rotate.stdout)\n--- node1:\n\(log1)\n--- node2:\n\(log2)")
        #expect(rotate.stdout.contains("rotated CA certificates"), "\(rotate.stdout)")
        let printed = rotate.stdout.components(separatedBy: "-----BEGIN CERTIFICATE-----").last.map { "-----BEGIN CERTIFICATE-----" + $0 }
        let newRoot = Self.trimmed(ClusterTests.check(try c.docker(1, ["swarm", "ca"]), "swarm ca", c).stdout)
        #expect(newRoot != oldRoot)
        #expect(printed.map(Self.trimmed) == newRoot, "\(rotate.stdout)")
        #expect(Self.trimmed(try c.docker(1, ["info", "--format", "{{.Swarm.Cluster.RootRotationInProgress}}"]).stdout) == "false")

        // Every node trusts the new root and holds what the swarm wants.
        let wanted = Self.trimmed(try c.docker(1, ["info", "--format", "{{json .Swarm.Cluster.TLSInfo}}"]).stdout)
        for n in 1...2 {
            #expect(Self.field(c, n, "caPEM").map(Self.trimmed) == newRoot, "node\(n) trusts another root")
            let id = try #require(c.nodeID(n))
            let held = Self.trimmed(try c.docker(1, ["node", "inspect", id, "--format", "{{json .Description.TLSInfo}}"]).stdout)
            #expect(held == wanted, "node\(n) holds \(held), the swarm wants \(wanted)")
        }
        let rotations = ObservabilityTests.value(try ObservabilityTests.metrics(c, 1), "meshd_manager_root_rotations_total") ?? 0
        #expect(rotations == 1, "root rotations: \(rotations)")

        // The tokens carry the new root's digest: the old one is refused by name, the new one joins.
        let newToken = Self.trimmed(try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout)
        #expect(newToken != oldToken)
        let refused = try c.docker(3, ["swarm", "join", "--token", oldToken, "\(c.address(1)):2377"])
        #expect(!refused.succeeded && refused.stderr.contains("not of the swarm this token belongs to"), "\(refused.stderr)")
        _ = ClusterTests.check(try c.docker(3, ["swarm", "join", "--token", newToken, "\(c.address(1)):2377"]), "join node3", c)
        #expect(Self.field(c, 3, "caPEM").map(Self.trimmed) == newRoot)

        // A restarted worker makes its session under the new root alone: a task placed on it runs.
        c.kill9(2)
        try c.start(2)
        try await c.waitForSocket(2)
        _ = ClusterTests.check(
            try c.docker(
                1, ["service", "create", "--detach", "--name", "pinned", "--constraint", "node.hostname==node2", "meshd/whoami"]),
            "service create", c)
        let running = try await ClusterTests.eventually(.seconds(30)) {
            try c.docker(1, ["service", "ps", "pinned", "--format", "{{.Node}} {{.CurrentState}}"]).stdout.contains("node2 Running")
        }
        let pinnedPS = try c.docker(1, ["service", "ps", "pinned"]).stdout
        #expect(running, "\(pinnedPS)\n--- node2 log:\n\(c.log(2).suffix(3000))")
        let nodes = try c.docker(1, ["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]).stdout
        let ready = try await ClusterTests.eventually(.seconds(20)) {
            ClusterTests.lines(try c.docker(1, ["node", "ls", "--format", "{{.Status}}"]).stdout).filter { $0 == "Ready" }.count == 3
        }
        #expect(ready, "\(nodes)")
        let web = ClusterTests.lines(
            try c.docker(1, ["service", "ps", "web", "--filter", "desired-state=running", "--format", "{{.CurrentState}}"]).stdout)
        #expect(web.filter { $0.hasPrefix("Running") }.count == 2, "\(web)")
    }
}
