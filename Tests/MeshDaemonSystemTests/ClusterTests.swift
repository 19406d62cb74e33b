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

    /// `swarm init` on node 1, the other nodes join it as workers, and `network create -d overlay network`.
    static func formSwarm(_ c: DaemonCluster, network: String) throws {
        _ = check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let token = try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for n in 2...c.nodeCount { _ = check(try c.docker(n, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "join", c) }
        _ = check(try c.docker(1, ["network", "create", "-d", "overlay", network]), "network create", c)
    }

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
        let create = Self.check(
            try c.docker(
                1,
                [
                    "service", "create", "--name", "whoami", "-p", "8000:8000", "--network", "demo",
                    "--replicas", "2", "meshd/whoami",
                ]), "service create", c)
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

        // Each task sees the client's own address, through every node (issue 19). Labelled
        // meshd.ingress.snat=true, node 1 runs Docker's ingress: its traffic comes from its ingress
        // address; the label removed, from the client again. Other nodes never change.
        func seen(_ n: Int) throws -> Set<String> {
            let out = try Exec.run(
                ["ip", "netns", "exec", c.lab.clientNamespace, "curl", "-s", "--max-time", "5", "-H", "Connection: close"]
                    + Array(repeating: "http://\(c.address(n)):8000/", count: 6))
            return Set(
                Self.lines(out.stdout).filter { $0.hasPrefix("RemoteAddr: ") }
                    .map { String($0.dropFirst("RemoteAddr: ".count).split(separator: ":")[0]) })
        }
        let client = "\(DataplaneLab.clientAddress)"
        for n in 1...3 {
            let s = try seen(n)
            #expect(s == [client], "through node \(n) the tasks saw \(s)")
        }
        _ = Self.check(try c.docker(1, ["node", "update", "--label-add", "meshd.ingress.snat=true", "node1"]), "node update", c)
        let snat = try await Self.eventually(.seconds(15)) {
            let s = try seen(1)
            return s.count == 1 && !s.contains(client) && s.first?.hasPrefix("10.") == true
        }
        #expect(snat, "with meshd.ingress.snat=true node 1's tasks saw \((try? seen(1)) ?? [])")
        #expect(try seen(2) == [client])
        _ = Self.check(try c.docker(1, ["node", "update", "--label-rm", "meshd.ingress.snat", "node1"]), "node update", c)
        let unlabelled = try await Self.eventually(.seconds(15)) { try seen(1) == [client] }
        #expect(unlabelled, "without the label node 1's tasks saw \((try? seen(1)) ?? [])")

        // The tasks' output, fetched from the nodes that run them.
        let logs = try c.docker(1, ["service", "logs", "whoami"])
        #expect(
            Self.lines(logs.stdout + logs.stderr).filter { $0.contains("listening on") }.count == 2,
            "service logs: \(logs.stdout)\(logs.stderr)")

        // scale to 5 with meshctl: all five answer, the VIP stays, DNS from a task of another service.
        let vipBefore = try c.docker(1, ["service", "inspect", "whoami", "--format", "{{json .Endpoint.VirtualIPs}}"]).stdout
        _ = Self.check(try c.meshctl(1, ["service", "scale", "whoami=5"]), "meshctl service scale", c)
        let five = try await Self.eventually(.seconds(20)) {
            (try c.lab.spread(from: c.lab.clientNamespace, url: "http://\(c.address(1)):8000/", count: 25)).filter { $0.key != "failed" }
                .count == 5
        }
        #expect(
            five,
            "5 replicas do not all answer: \((try? c.lab.spread(from: c.lab.clientNamespace, url: "http://\(c.address(1)):8000/", count: 25)) ?? [:])"
        )
        let vipAfter = try c.docker(1, ["service", "inspect", "whoami", "--format", "{{json .Endpoint.VirtualIPs}}"]).stdout
        #expect(vipBefore == vipAfter && vipBefore.contains("Addr"), "VIPs \(vipBefore) → \(vipAfter)")

        _ = Self.check(
            try c.docker(1, ["service", "create", "--name", "probe", "--network", "demo", "busybox", "sleep", "100000"]),
            "service create probe", c)
        let probe = try #require(try await self.taskNamespace(c, service: "probe"), "no probe task")
        let vip = try #require(Self.vip(vipAfter, c), "no VIP on demo in \(vipAfter)")
        let dnsFive = try await Self.eventually(.seconds(15)) {
            Self.lines(try Exec.run(["ip", "netns", "exec", probe, "dig", "+short", "+time=1", "+tries=1", "tasks.whoami"]).stdout).count
                == 5
        }
        let tasksDig = try Exec.run(["ip", "netns", "exec", probe, "dig", "+short", "+time=1", "+tries=1", "tasks.whoami"]).stdout
        #expect(dnsFive, "tasks.whoami: \(tasksDig)")
        let serviceDig = try Exec.run(["ip", "netns", "exec", probe, "dig", "+short", "+time=1", "+tries=1", "whoami"]).stdout
        #expect(Self.lines(serviceDig) == [vip], "whoami resolves to \(serviceDig), the VIP is \(vip)")
        let ping = try Exec.run(["ip", "netns", "exec", probe, "ping", "-c", "1", "-W", "2", vip])
        #expect(ping.succeeded, "ping \(vip): \(ping.stdout)")
        let east = try Exec.run(["ip", "netns", "exec", probe, "wget", "-q", "-O", "-", "-T", "3", "http://\(vip):8000/"])
        #expect(east.stdout.hasPrefix("I'm "), "east-west through the VIP: \(east.stdout)\(east.stderr)")

        // drain node 2: its tasks move while a client keeps calling; then active again.
        let drainLoop = ClientLoop(c, url: "http://\(c.address(1)):8000/")
        _ = Self.check(try c.docker(1, ["node", "update", "--availability", "drain", "node2"]), "node update drain", c)
        let moved = try await Self.eventually(.seconds(30)) {
            let nodes = Self.lines(
                try c.docker(
                    1, ["service", "ps", "whoami", "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}"]
                ).stdout)
            return nodes.count == 5 && nodes.allSatisfy { !$0.hasPrefix("node2") && $0.contains("Running") }
        }
        try await Task.sleep(for: .seconds(2))
        let drained = drainLoop.stop()
        print("drain: client requests \(drained)")
        #expect(moved, "tasks did not leave node2: \((try? c.docker(1, ["service", "ps", "whoami"]).stdout) ?? "")")
        #expect(drained.failed == 0 && drained.ok > 10, "requests during drain: \(drained)")
        _ = Self.check(try c.docker(1, ["node", "update", "--availability", "active", "node2"]), "node update active", c)

        // rolling update of the image, one task at a time, with no failed request; then rollback.
        let updateLoop = ClientLoop(c, url: "http://\(c.address(2)):8000/")
        let update = Self.check(
            try c.docker(1, ["service", "update", "--image", "jwilder/whoami", "--update-delay", "1s", "whoami"]),
            "service update --image", c)
        let updated = updateLoop.stop()
        print("rolling update: client requests \(updated)")
        #expect(updated.failed == 0 && updated.ok > 10, "requests during the rolling update: \(updated)")
        #expect(update.stdout.contains("whoami") || update.stderr.contains("converged"), "\(update.stdout)\(update.stderr)")
        let images = Set(
            Self.lines(try c.docker(1, ["service", "ps", "whoami", "--filter", "desired-state=running", "--format", "{{.Image}}"]).stdout))
        #expect(images == ["jwilder/whoami:latest"], "after the update: \(images)")
        _ = Self.check(try c.meshctl(1, ["service", "rollback", "whoami"]), "meshctl service rollback", c)
        let image = try c.docker(1, ["service", "inspect", "whoami", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}"]).stdout
        #expect(image.trimmingCharacters(in: .whitespacesAndNewlines) == "meshd/whoami:latest", "after rollback: \(image)")

        // SIGKILL node 3's daemon: its backends leave every balancer, its tasks are rescheduled,
        // and a restart rejoins with no manual step.
        let killed = ContinuousClock.now
        c.kill9(3)
        let clean = try await Self.eventually(.seconds(20)) {
            let a = try c.lab.spread(from: c.lab.clientNamespace, url: "http://\(c.address(1)):8000/", count: 10)
            let b = try c.lab.spread(from: c.lab.clientNamespace, url: "http://\(c.address(2)):8000/", count: 10)
            return a["failed"] == nil && b["failed"] == nil
        }
        print("node3 SIGKILL: no failed request through nodes 1 and 2 after \(ContinuousClock.now - killed)")
        #expect(clean, "requests still fail after node3's daemon died")
        let rescheduled = try await Self.eventually(.seconds(40)) {
            let nodes = Self.lines(
                try c.docker(
                    1, ["service", "ps", "whoami", "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}"]
                ).stdout)
            return nodes.count == 5 && nodes.allSatisfy { !$0.hasPrefix("node3") && $0.contains("Running") }
        }
        #expect(rescheduled, "tasks not rescheduled: \((try? c.docker(1, ["service", "ps", "whoami"]).stdout) ?? "")")
        let down = try c.docker(1, ["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]).stdout
        #expect(down.contains("node3 Down"), "node ls: \(down)")
        try c.start(3)
        try await c.waitForSocket(3)
        let back = try await Self.eventually(.seconds(30)) {
            try c.docker(1, ["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]).stdout.contains("node3 Ready")
        }
        #expect(back, "node3 did not come back: \(c.log(3).suffix(1500))")

        // Removing the services and the network leaves nothing on any node but the swarm itself;
        // leaving the swarm leaves nothing at all.
        // As with swarmkit, `network rm` may follow `service rm` at once: the removed services' tasks,
        // still stopping, do not hold the network (and their nodes cope with it going first).
        _ = Self.check(try c.docker(1, ["service", "rm", "whoami", "probe"]), "service rm", c)
        let networkRm = try c.docker(1, ["network", "rm", "demo"])
        #expect(networkRm.succeeded, "network rm right after service rm: \(networkRm.stderr)")
        let ids = (1...3).map { c.nodeID($0) }
        let empty = await Self.eventually(.seconds(20)) { (1...3).allSatisfy { c.ownedNamespaces($0).isEmpty } }
        #expect(empty, "left after rm: \((1...3).flatMap { c.ownedNamespaces($0) })")
        for n in [3, 2, 1] { _ = Self.check(try c.docker(n, ["swarm", "leave", "--force"]), "swarm leave node\(n)", c) }
        for n in 1...3 {
            #expect(c.ownedNamespaces(n, nodeID: ids[n - 1]).isEmpty)
            let table = try Exec.run(["ip", "netns", "exec", c.lab.nodeNamespace(n), "nft", "list", "table", "inet", "meshd"])
            #expect(!table.succeeded, "node\(n) still has table inet meshd")
            let link = try Exec.run(["ip", "-n", c.lab.nodeNamespace(n), "link", "show", "meshd-ingress"])
            #expect(!link.succeeded, "node\(n) still has meshd-ingress")
        }
    }

    /// The namespace of a running task of `service` (the runtime's `mtask-<node>-<task>`).
    func taskNamespace(_ c: DaemonCluster, service: String) async throws -> String? {
        for _ in 0..<100 {
            let rows = Self.lines(
                try c.docker(
                    1,
                    [
                        "service", "ps", service, "--no-trunc", "--filter", "desired-state=running",
                        "--format", "{{.ID}} {{.Node}} {{.CurrentState}}",
                    ]
                ).stdout)
            for row in rows where row.contains("Running") {
                let parts = row.split(separator: " ")
                guard parts.count >= 2, let n = Int(parts[1].dropFirst(4)), let ns = c.taskNamespace(n, task: String(parts[0])) else {
                    continue
                }
                if NetworkNamespace.exists(named: ns) { return ns }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    /// The VIP on the demo network: the non-ingress entry of `Endpoint.VirtualIPs`.
    static func vip(_ json: String, _ c: DaemonCluster) -> String? {
        guard let list = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] else { return nil }
        let ingress = (try? c.docker(1, ["network", "inspect", "ingress", "--format", "{{.Id}}"]).stdout)?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let entry = list.first { ($0["NetworkID"] as? String) != ingress }
        return (entry?["Addr"] as? String)?.split(separator: "/").first.map(String.init)
    }
}

/// A client on the underlay calling `url` in a loop (new connection each time) until stopped.
final class ClientLoop: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private var counts = (ok: 0, failed: 0)
    private let done = DispatchSemaphore(value: 0)

    init(_ c: DaemonCluster, url: String) {
        let ns = c.lab.clientNamespace
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                let spread = (try? c.lab.spread(from: ns, url: url, count: 5)) ?? ["failed": 5]
                let failed = spread["failed"] ?? 0
                lock.withLock {
                    counts.ok += 5 - failed
                    counts.failed += failed
                }
            }
            done.signal()
        }
    }

    func stop() -> (ok: Int, failed: Int) {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { counts }
    }
}
