import Foundation
import MeshKernel
import MeshTestbed
import Synchronization
import Testing

/// Three managers sharing an etcd cluster (one member in each manager's namespace, on its underlay
/// address) and two workers, driven by the docker CLI as a user would: the leader's meshd is SIGKILLed
/// while a client keeps requesting the published port on every node; a survivor leads within 10 s,
/// takes writes (also through the manager that does not lead), nothing fails on the wire, and the
/// killed manager comes back as a follower.
@Suite(.serialized) struct SeveralManagersTests {
    static let managers = 1...3

    @Test func aSwarmOnEtcdSurvivesTheLeadersDeath() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let store = "etcd://" + Self.managers.map { "198.18.0.\($0):2379" }.joined(separator: ",") + "/mdh"
        let c = try await DaemonCluster.build(tag: "mdh", nodes: 5, extraArguments: ["--cluster-store", store])
        defer { c.destroy() }
        let etcd = try await EtcdServer.start(in: Self.managers.map { (c.lab.nodeNamespace($0), c.address($0)) }, tag: "mdh-etcd")
        defer { etcd.stop() }

        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let managerToken = try c.docker(1, ["swarm", "join-token", "-q", "manager"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let workerToken = try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for n in 2...3 {
            let out = ClusterTests.check(
                try c.docker(n, ["swarm", "join", "--token", managerToken, "\(c.address(1)):2377"]), "manager join \(n)", c)
            #expect(out.stdout.contains("joined a swarm as a manager"), "node\(n): \(out.stdout)")
        }
        for n in 4...5 {
            _ = ClusterTests.check(try c.docker(n, ["swarm", "join", "--token", workerToken, "\(c.address(1)):2377"]), "join", c)
        }

        func managerStatus(_ n: Int) -> [String: String] {
            let out = try? c.docker(n, ["node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"])
            var rows: [String: String] = [:]
            for line in ClusterTests.lines(out?.stdout ?? "") {
                let f = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                if f.count >= 2 { rows[f[0]] = f.dropFirst().joined(separator: " ").trimmingCharacters(in: .whitespaces) }
            }
            return rows
        }
        let formed = [
            "node1": "Ready Leader", "node2": "Ready Reachable", "node3": "Ready Reachable", "node4": "Ready", "node5": "Ready",
        ]
        let ready = await ClusterTests.eventually(.seconds(30)) { managerStatus(1) == formed }
        #expect(ready, "node ls on the leader: \(managerStatus(1))")
        // A manager that does not lead answers from the leader: the same rows.
        #expect(managerStatus(2) == formed, "node ls through node2: \(managerStatus(2))")
        let info = try c.docker(3, ["info", "--format", "{{.Swarm.ControlAvailable}} {{.Swarm.Managers}} {{.Swarm.Nodes}}"])
        #expect(
            info.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "true 3 5", "docker info on node3: \(info.stdout)\(info.stderr)")

        // The service's tasks run on the workers, so the managers' deaths test the control plane, not
        // task rescheduling.
        _ = ClusterTests.check(try c.docker(2, ["network", "create", "-d", "overlay", "ha"]), "network create through node2", c)
        _ = ClusterTests.check(
            try c.docker(
                2,
                [
                    "service", "create", "--detach", "--name", "web", "-p", "8000:8000", "--network", "ha",
                    "--constraint", "node.role==worker", "--replicas", "2", "meshd/whoami",
                ]), "service create through node2", c)
        let client = c.lab.clientNamespace
        let serving = try await ClusterTests.eventually(.seconds(40)) {
            try (1...5).allSatisfy { n in try c.lab.spread(from: client, url: "http://\(c.address(n)):8000/", count: 4)["failed"] == nil }
        }
        #expect(serving, "the published port does not answer on every node")

        // The client: requests to every node's published port, one at a time, until told to stop.
        let stop = StopFlag()
        let loop = Task.detached { () -> (sent: Int, failed: Int, failures: [String]) in
            var sent = 0, failed = 0
            var failures: [String] = []
            while !stop.isSet {
                for n in 1...5 {
                    let counts = (try? c.lab.spread(from: client, url: "http://\(c.address(n)):8000/", count: 2)) ?? ["failed": 2]
                    sent += 2
                    if let f = counts["failed"] {
                        failed += f
                        failures.append("node\(n) at request \(sent)")
                    }
                }
            }
            return (sent, failed, failures)
        }

        let killedAt = ContinuousClock.now
        c.kill9(1)
        var newLeader: String?
        let elected = await ClusterTests.eventually(.seconds(15)) {
            for n in 2...3 {
                let rows = managerStatus(n)
                if let l = rows.first(where: { $0.value.hasSuffix("Leader") })?.key, l != "node1" {
                    newLeader = l
                    return true
                }
            }
            return false
        }
        let failover = ContinuousClock.now - killedAt
        print("leader SIGKILL → a new leader in node ls: \(failover) (\(newLeader ?? "none"))")
        #expect(elected && failover < .seconds(10), "no new leader within 10 s: \(managerStatus(2)) \(c.log(2).suffix(3000))")

        // Writes go on through both survivors: the leader, and the follower that forwards.
        let follower = newLeader == "node2" ? 3 : 2
        _ = ClusterTests.check(try c.docker(follower, ["service", "scale", "--detach", "web=4"]), "service scale through a follower", c)
        func running(_ n: Int) -> Int {
            let out = try? c.docker(n, ["service", "ps", "web", "--filter", "desired-state=running", "--format", "{{.CurrentState}}"])
            return ClusterTests.lines(out?.stdout ?? "").filter { $0.hasPrefix("Running") }.count
        }
        let scaled = await ClusterTests.eventually(.seconds(15)) { running(follower) == 4 }
        #expect(scaled, "4 running after the scale: \(running(follower))")
        let down = await ClusterTests.eventually(.seconds(20)) { managerStatus(follower)["node1"] == "Down Unreachable" }
        #expect(down, "node1 after its kill: \(managerStatus(follower))")

        stop.set()
        let traffic = await loop.value
        print("client during the failover: \(traffic.sent) requests, \(traffic.failed) failed")
        #expect(traffic.sent >= 50 && traffic.failed == 0, "failed requests: \(traffic.failures.prefix(10))")

        // The killed manager comes back as a follower: one leader, the same as before.
        try c.start(1)
        try await c.waitForSocket(1)
        let rejoined = await ClusterTests.eventually(.seconds(30)) {
            let rows = managerStatus(1)
            return rows["node1"] == "Ready Reachable" && rows[newLeader ?? ""] == "Ready Leader"
                && rows.values.filter { $0.hasSuffix("Leader") }.count == 1
        }
        #expect(rejoined, "after node1's restart, node ls through node1: \(managerStatus(1))")

        // No address has two owners, and every running task has one.
        let tasks = try c.docker(1, ["service", "ps", "web", "-q", "--filter", "desired-state=running"]).stdout
        var addresses: [String] = []
        for id in ClusterTests.lines(tasks) {
            let out = try c.docker(
                1, ["inspect", "--type", "task", "--format", "{{range .NetworksAttachments}}{{range .Addresses}}{{.}} {{end}}{{end}}", id])
            addresses += out.stdout.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }.filter {
                !$0.isEmpty
            }
        }
        #expect(Set(addresses).count == addresses.count && addresses.count >= 8, "task addresses: \(addresses)")
    }
}

/// Tells a loop on another task to end.
final class StopFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
