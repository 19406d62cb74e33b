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

    /// `node ls` through node `n`: hostname → "Status ManagerStatus".
    static func managerStatus(_ c: DaemonCluster, _ n: Int) -> [String: String] {
        let out = try? c.docker(n, ["node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}"])
        var rows: [String: String] = [:]
        for line in ClusterTests.lines(out?.stdout ?? "") {
            let f = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            if f.count >= 2 { rows[f[0]] = f.dropFirst().joined(separator: " ").trimmingCharacters(in: .whitespaces) }
        }
        return rows
    }

    /// The hostname nodes 2 or 3 show as Leader once it is no longer `old`; nil until then.
    static func leader(otherThan old: String, _ c: DaemonCluster) -> String? {
        for n in 2...3 {
            if let l = managerStatus(c, n).first(where: { $0.value.hasSuffix("Leader") })?.key, l != old { return l }
        }
        return nil
    }

    static let formed = [
        "node1": "Ready Leader", "node2": "Ready Reachable", "node3": "Ready Reachable", "node4": "Ready", "node5": "Ready",
    ]

    /// Five nodes, an etcd member in each of nodes 1–3, `swarm init` on node 1 with the store, nodes 2
    /// and 3 joined as managers, 4 and 5 as workers, and service `web` (2 replicas of whoami on the
    /// workers, port 8000 published) answering on every node.
    static func formSwarm(tag: String) async throws -> (DaemonCluster, EtcdServer) {
        let store = "etcd://" + managers.map { "198.18.0.\($0):2379" }.joined(separator: ",") + "/\(tag)"
        let c = try await DaemonCluster.build(tag: tag, nodes: 5, extraArguments: ["--cluster-store", store])
        let etcd: EtcdServer
        do {
            etcd = try await EtcdServer.start(in: managers.map { (c.lab.nodeNamespace($0), c.address($0)) }, tag: "\(tag)-etcd")
        } catch {
            c.destroy()
            throw error
        }
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let managerToken = try c.docker(1, ["swarm", "join-token", "-q", "manager"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let workerToken = try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for n in 2...3 {
            let out = ClusterTests.check(
                try c.docker(n, ["swarm", "join", "--token", managerToken, "\(c.address(1)):2377"]), "manager join \(n)", c)
            #expect(out.stdout.contains("joined a swarm as a manager"), "node\(n): \(out.stdout)")
        }
        // node5 joins through a manager that does not lead: its 2377 relays the join to the leader.
        for n in 4...5 {
            let through = n == 5 ? c.address(2) : c.address(1)
            _ = ClusterTests.check(
                try c.docker(n, ["swarm", "join", "--token", workerToken, "\(through):2377"]), "join through \(through)", c)
        }
        let ready = await ClusterTests.eventually(.seconds(30)) { managerStatus(c, 1) == formed }
        #expect(ready, "node ls on the leader: \(managerStatus(c, 1))")

        // The service's tasks run on the workers, so the managers' faults test the control plane, not
        // task rescheduling.
        _ = ClusterTests.check(try c.docker(2, ["network", "create", "-d", "overlay", "ha"]), "network create through node2", c)
        _ = ClusterTests.check(
            try c.docker(
                2,
                [
                    "service", "create", "--detach", "--name", "web", "-p", "8000:8000", "--network", "ha",
                    "--constraint", "node.role==worker", "--replicas", "2", "meshd/whoami",
                ]), "service create through node2", c)
        let serving = try await ClusterTests.eventually(.seconds(40)) { try answersEverywhere(c) }
        #expect(serving, "the published port does not answer on every node")
        return (c, etcd)
    }

    /// Every node's published port answers 4 requests out of 4.
    static func answersEverywhere(_ c: DaemonCluster, nodes: ClosedRange<Int> = 1...5) throws -> Bool {
        try nodes.allSatisfy { n in
            try c.lab.spread(from: c.lab.clientNamespace, url: "http://\(c.address(n)):8000/", count: 4)["failed"] == nil
        }
    }

    static func running(_ c: DaemonCluster, _ n: Int) -> Int {
        let out = try? c.docker(n, ["service", "ps", "web", "--filter", "desired-state=running", "--format", "{{.CurrentState}}"])
        return ClusterTests.lines(out?.stdout ?? "").filter { $0.hasPrefix("Running") }.count
    }

    /// The client: requests to every node's published port, two at a time, until told to stop.
    static func clientLoop(_ c: DaemonCluster, _ stop: StopFlag) -> Task<(sent: Int, failed: Int, failures: [String]), Never> {
        Task.detached {
            var sent = 0, failed = 0
            var failures: [String] = []
            while !stop.isSet {
                for n in 1...5 {
                    let counts =
                        (try? c.lab.spread(from: c.lab.clientNamespace, url: "http://\(c.address(n)):8000/", count: 2)) ?? ["failed": 2]
                    sent += 2
                    if let f = counts["failed"] {
                        failed += f
                        failures.append("node\(n) at request \(sent)")
                    }
                }
            }
            return (sent, failed, failures)
        }
    }

    @Test func aSwarmOnEtcdSurvivesTheLeadersDeath() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let (c, etcd) = try await Self.formSwarm(tag: "mdh")
        defer {
            etcd.stop()
            c.destroy()
        }
        func managerStatus(_ n: Int) -> [String: String] { Self.managerStatus(c, n) }
        // A manager that does not lead answers from the leader: the same rows.
        #expect(managerStatus(2) == Self.formed, "node ls through node2: \(managerStatus(2))")
        let info = try c.docker(3, ["info", "--format", "{{.Swarm.ControlAvailable}} {{.Swarm.Managers}} {{.Swarm.Nodes}}"])
        #expect(
            info.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "true 3 5", "docker info on node3: \(info.stdout)\(info.stderr)")

        let stop = StopFlag()
        let loop = Self.clientLoop(c, stop)
        let killedAt = ContinuousClock.now
        c.kill9(1)
        var newLeader: String?
        let elected = await ClusterTests.eventually(.seconds(15)) {
            newLeader = Self.leader(otherThan: "node1", c)
            return newLeader != nil
        }
        let failover = ContinuousClock.now - killedAt
        print("leader SIGKILL → a new leader in node ls: \(failover) (\(newLeader ?? "none"))")
        #expect(elected && failover < .seconds(10), "no new leader within 10 s: \(managerStatus(2)) \(c.log(2).suffix(3000))")

        // Writes go on through both survivors: the leader, and the follower that forwards.
        let follower = newLeader == "node2" ? 3 : 2
        let scaledAt = Int(Date().timeIntervalSince1970) - 1
        _ = ClusterTests.check(try c.docker(follower, ["service", "scale", "--detach", "web=4"]), "service scale through a follower", c)
        let scaled = await ClusterTests.eventually(.seconds(15)) { Self.running(c, follower) == 4 }
        #expect(scaled, "4 running after the scale: \(Self.running(c, follower))")
        // `docker events` on the manager that does not lead: the store's commits, whoever made them.
        let events = try c.docker(
            follower,
            [
                "events", "--since", "\(scaledAt)", "--until", "\(Int(Date().timeIntervalSince1970) + 1)", "--filter", "type=service",
                "--format", "{{.Action}} {{.Actor.Attributes.name}}",
            ])
        #expect(ClusterTests.lines(events.stdout).contains("update web"), "events on node\(follower): \(events.stdout)\(events.stderr)")
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

extension SeveralManagersTests {
    /// etcd's own faults: its leader SIGKILLed (meshd's leader stays, writes resume), then a second
    /// member (no quorum: writes fail with a clear error while the mesh keeps forwarding), then both
    /// back (one leader, writes work).
    @Test func etcdFaultsKeepOneLeaderAndTheMeshForwarding() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let (c, etcd) = try await Self.formSwarm(tag: "mdq")
        defer {
            etcd.stop()
            c.destroy()
        }
        let stop = StopFlag()
        let loop = Self.clientLoop(c, stop)

        let first = try #require(etcd.leader(), "etcd has no leader")
        etcd.kill(member: first)
        let killedAt = ContinuousClock.now
        var wrote = false
        while !wrote, ContinuousClock.now - killedAt < .seconds(15) {
            wrote = try c.docker(2, ["service", "scale", "--detach", "web=3"]).succeeded
            if !wrote { try await Task.sleep(for: .milliseconds(200)) }
        }
        print("etcd leader \(first) SIGKILL → first write through node2: \(ContinuousClock.now - killedAt)")
        #expect(wrote, "no write within 15 s of the etcd leader's death")
        let scaled = await ClusterTests.eventually(.seconds(15)) { Self.running(c, 2) == 3 }
        #expect(scaled, "3 running: \(Self.running(c, 2))")
        // meshd's leader did not change: its lease outlived etcd's election.
        #expect(Self.managerStatus(c, 2)["node1"] == "Ready Leader", "\(Self.managerStatus(c, 2))")

        // Two of three members gone: no quorum.
        let second = try #require(etcd.members.map(\.name).first { $0 != first && etcd.pid($0) != nil })
        etcd.kill(member: second)
        let refusedAt = ContinuousClock.now
        var attempts: [String] = []
        func attempt() throws -> Exec.Output {
            let at = ContinuousClock.now
            let out = try c.docker(3, ["service", "scale", "--detach", "web=4"])
            attempts.append("\(out.succeeded ? "ok" : "refused") in \(ContinuousClock.now - at)")
            return out
        }
        var refusal = try attempt()
        // Without quorum no write can commit; a write the leader took just before may still have landed.
        while refusal.succeeded, ContinuousClock.now - refusedAt < .seconds(15) {
            try await Task.sleep(for: .milliseconds(500))
            refusal = try attempt()
        }
        print(
            "no etcd quorum: \(refusal.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) after \(ContinuousClock.now - refusedAt): \(attempts)"
        )
        #expect(!refusal.succeeded && refusal.stderr.contains("leader"), "a write without quorum: \(refusal.stdout)\(refusal.stderr)")
        let forwarding = try Self.answersEverywhere(c)
        #expect(forwarding, "the published port stopped answering without etcd quorum")

        try etcd.restart(member: first)
        try etcd.restart(member: second)
        try await etcd.waitHealthy(timeout: .seconds(30))
        var recovered = false
        let back = ContinuousClock.now
        while !recovered, ContinuousClock.now - back < .seconds(30) {
            recovered = try c.docker(3, ["service", "scale", "--detach", "web=4"]).succeeded
            if !recovered { try await Task.sleep(for: .milliseconds(500)) }
        }
        print("etcd quorum back → first write: \(ContinuousClock.now - back)")
        #expect(recovered, "no write after etcd came back: \(c.log(1).suffix(2000))")
        let four = await ClusterTests.eventually(.seconds(20)) {
            Self.running(c, 3) == 4 && Self.managerStatus(c, 3).values.filter { $0.hasSuffix("Leader") }.count == 1
        }
        #expect(four, "after recovery: \(Self.running(c, 3)) running, \(Self.managerStatus(c, 3))")

        stop.set()
        let traffic = await loop.value
        print("client during the etcd faults: \(traffic.sent) requests, \(traffic.failed) failed")
        #expect(traffic.sent >= 50 && traffic.failed == 0, "failed requests: \(traffic.failures.prefix(10))")
    }

    /// The leader cut off the underlay (its bridge port down, its etcd member with it): it steps down by
    /// itself, the majority elects another within 15 s, and after healing there is one leader.
    @Test func aPartitionedLeaderStepsDown() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let (c, etcd) = try await Self.formSwarm(tag: "mdp")
        defer {
            etcd.stop()
            c.destroy()
        }
        let underlay = c.lab.underlayNamespace
        _ = try Exec.run(["ip", "-n", underlay, "link", "set", "u1", "down"])
        let cutAt = ContinuousClock.now
        var newLeader: String?
        let elected = await ClusterTests.eventually(.seconds(15)) {
            newLeader = Self.leader(otherThan: "node1", c)
            return newLeader != nil
        }
        print("leader partitioned → a new leader: \(ContinuousClock.now - cutAt) (\(newLeader ?? "none"))")
        #expect(elected && ContinuousClock.now - cutAt < .seconds(15), "\(Self.managerStatus(c, 2))")
        // The cut-off manager no longer leads: it says so instead of answering from a stale view.
        let isolated = try c.docker(1, ["service", "scale", "--detach", "web=3"])
        #expect(!isolated.succeeded, "the partitioned manager took a write: \(isolated.stdout)")
        let survivor = newLeader == "node2" ? 3 : 2
        _ = ClusterTests.check(try c.docker(survivor, ["service", "scale", "--detach", "web=3"]), "scale on the majority side", c)

        _ = try Exec.run(["ip", "-n", underlay, "link", "set", "u1", "up"])
        let healed = await ClusterTests.eventually(.seconds(30)) {
            let rows = Self.managerStatus(c, 1)
            // Back, following or leading again (a lease that lapsed while etcd's cut-off member
            // rejoined under load lets anyone win the next campaign): what matters is one leader.
            return ["Ready Reachable", "Ready Leader"].contains(rows["node1"]) && rows.values.filter { $0.hasSuffix("Leader") }.count == 1
                && Self.running(c, 1) == 3
        }
        #expect(healed, "after healing, through node1: \(Self.managerStatus(c, 1)), \(Self.running(c, 1)) running")
        #expect(etcd.leader() != nil)
    }
}

/// Tells a loop on another task to end.
final class StopFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
