import Foundation
import MeshTestbed
import Testing

/// Issue 14, part 3, end to end: two real daemons in a swarm run a global busybox service from a
/// local registry, and each node's socket serves the stock docker CLI its own container only:
/// ps, logs, inspect, exec piped, exec -it under a pty (the daemon is the subreaper of the TTY
/// exec's process), exec -d, info's counts.
@Suite(.serialized) struct ContainerExecSystemTests {
    @Test func eachNodesSocketServesItsOwnContainers() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let registry = try await LocalRegistry.start(tag: "mdx-registry")
        defer { registry.stop() }
        let built = try Exec.check([ContainerServiceTests.repoRoot + "/scripts/build-images", "--registry", registry.address, "busybox"])
        let busybox = try #require(ContainerServiceTests.pushed(built)["busybox"]?.first, "\(built)")
        let c = try await DaemonCluster.build(tag: "mdx", nodes: 2)
        var replicas: [LocalRegistry] = []
        defer {
            c.destroy()
            for r in replicas { r.stop() }
        }
        for n in 1...2 { replicas.append(try await registry.replica(in: c.lab.nodeNamespace(n))) }
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let token = try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = ClusterTests.check(try c.docker(2, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "join", c)
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "shell", "--mode", "global", busybox, "sh", "-c",
                    "echo hello-from-$(hostname); exec sleep 3600",
                ]),
            "service create", c)
        var states = ""
        let running = try await ClusterTests.eventually(.seconds(120)) {
            states = try c.docker(1, ["service", "ps", "shell", "--filter", "desired-state=running", "--format", "{{.CurrentState}}"])
                .stdout
            let lines = states.split(separator: "\n")
            return lines.count == 2 && lines.allSatisfy { $0.hasPrefix("Running") }
        }
        try #require(running, "\(states)\n\(c.log(1).suffix(3000))")

        // One container per node, each listed on its own node's socket only.
        var ids: [Int: String] = [:]
        for n in 1...2 {
            let ps = try c.docker(n, ["ps", "-q", "--no-trunc", "--filter", "label=com.docker.swarm.service.name=shell"]).stdout
            let lines = ps.split(separator: "\n").map(String.init)
            #expect(lines.count == 1, "node \(n): \(ps)")
            ids[n] = lines.first ?? ""
            let node = try c.docker(n, ["inspect", "--format", "{{index .Config.Labels \"com.docker.swarm.node.id\"}}", ids[n]!]).stdout
            #expect(node.trimmingCharacters(in: .whitespacesAndNewlines) == c.nodeID(n), "node \(n): \(node)")
        }
        let id = try #require(ids[1])
        #expect(id != ids[2])
        let foreign = try c.docker(1, ["inspect", "--type", "container", ids[2] ?? "x"])
        #expect(!foreign.succeeded && foreign.stderr.contains("No such container"), "\(foreign.stderr)")

        let logs = try c.docker(1, ["logs", id]).stdout
        #expect(logs.hasPrefix("hello-from-"), "\(logs)")
        let piped = try Exec.run(
            ["sh", "-c", "echo hi | docker --config \(c.directory)/docker -H unix://\(c.socket(1)) exec -i \(id) cat"])
        #expect(piped.stdout == "hi\n", "\(piped.stdout) \(piped.stderr)")
        #expect(try c.docker(1, ["exec", id, "sh", "-c", "exit 4"]).status == 4)
        let tty = try Exec.run([
            "script", "-qec", "docker --config \(c.directory)/docker -H unix://\(c.socket(1)) exec -it \(id) sh -c 'tty; exit 6'",
            "/dev/null",
        ])
        #expect(tty.status == 6 && tty.stdout.contains("/dev/pts/"), "\(tty.status) \(tty.stdout) \(tty.stderr)")
        #expect(try c.docker(1, ["exec", "-d", id, "sh", "-c", "echo later > /tmp/d"]).succeeded)
        let later = try await ClusterTests.eventually(.seconds(10)) { try c.docker(1, ["exec", id, "cat", "/tmp/d"]).stdout == "later\n" }
        #expect(later)
        let info = try c.docker(1, ["info", "--format", "{{.ContainersRunning}}"]).stdout
        #expect(info == "1\n", "\(info)")
    }
}
