import Foundation
import MeshKernel
import MeshTestbed
import Testing

struct NotRootCluster: Error, CustomStringConvertible {
    var description: String { "the cluster e2e tests need root (network namespaces)" }
}

/// Three `meshd daemon`s in three node namespaces on one underlay, driven through the docker CLI
/// and meshctl as a user would; traffic from a client namespace on the underlay.
@Suite(.serialized) struct ClusterTests {
    static func check(_ out: Exec.Output, _ what: String, _ c: DaemonCluster) -> Exec.Output {
        if !out.succeeded {
            Issue.record("\(what) failed (\(out.status)): \(out.stderr)\(out.stdout)\n--- node1 log:\n\(c.log(1).suffix(3000))")
        }
        return out
    }

    /// Polls `body` until it is true or `timeout` passes.
    static func eventually(_ timeout: Duration, _ body: () throws -> Bool) async rethrows -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if try body() { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return try body()
    }

    static func lines(_ s: String) -> [String] { s.split(separator: "\n").map(String.init) }

    @Test func clusterThroughDockerAndMeshctl() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mdc")
        defer { c.destroy() }

        // init on node 1 (docker), join 2 (docker) and 3 (meshctl) with the printed token.
        let initOut = Self.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        #expect(initOut.stdout.contains("Swarm initialized"))
        let token = Self.check(try c.docker(1, ["swarm", "join-token", "-q", "worker"]), "join-token", c).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.hasPrefix("SWMTKN-1-"))
        let wrong = try c.docker(2, ["swarm", "join", "--token", String(token.dropLast(3)) + "xyz", "\(c.address(1)):2377"])
        #expect(!wrong.succeeded && wrong.stderr.contains("token"), "a wrong token: \(wrong.stderr)")
        _ = Self.check(try c.docker(2, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "docker swarm join", c)
        _ = Self.check(try c.meshctl(3, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "meshctl swarm join", c)

        let ready = try await Self.eventually(.seconds(20)) {
            let out = try c.docker(1, ["node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"])
            return Set(Self.lines(out.stdout)) == ["node1 Ready Leader", "node2 Ready ", "node3 Ready "]
        }
        let nodes = try c.docker(1, ["node", "ls"])
        #expect(ready, "node ls: \(nodes.stdout)\(nodes.stderr)")
        print("node ls:\n\(nodes.stdout)")

        _ = Self.check(try c.docker(1, ["network", "create", "-d", "overlay", "demo"]), "network create", c)
        let create = Self.check(try c.docker(1, ["service", "create", "--name", "whoami", "-p", "8000:8000", "--network", "demo",
                                                 "--replicas", "2", "meshd/whoami"]), "service create", c)
        #expect(create.stdout.contains("verify: Service") || create.stderr.contains("converged"), "\(create.stdout)\(create.stderr)")

        // Every node answers on 8000 from both tasks, the node without a task too.
        for n in 1...3 {
            let url = "http://\(c.address(n)):8000/"
            let answered = try await Self.eventually(.seconds(20)) {
                (try c.lab.spread(from: c.lab.clientNamespace, url: url, count: 10)).filter { $0.key != "failed" }.count == 2
            }
            let spread = try c.lab.spread(from: c.lab.clientNamespace, url: url, count: 20)
            #expect(answered && spread["failed"] == nil, "node \(n): \(spread)\n\(c.log(n).suffix(2000))")
        }
    }
}
