import ArgumentParser
import Foundation
import MeshTestbed

/// Control-plane failover on three managers sharing etcd (a member in each manager's namespace), timed
/// from the SIGKILL to the first write (`service scale`) that succeeds through a survivor. Side by side,
/// alternating every run: the meshd leader killed (its lease must run out and another manager take over)
/// and the etcd leader killed (etcd elects, the meshd leader stays). Each killed process is restarted and
/// the swarm is back to three Reachable managers before the next run.
struct FailoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover",
        abstract: "Leader SIGKILL → first write through a survivor: meshd leader vs etcd leader, 3 managers on etcd.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Runs of each fault.") var runs = 10

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        let runs = options.quick ? 1 : runs
        print("failover: 3 meshd managers on a 3-member etcd in namespaces; \(runs) runs of each fault, alternating")
        let store = "etcd://" + (1...3).map { "198.18.0.\($0):2379" }.joined(separator: ",") + "/meshbench"
        let c = try await DaemonCluster.build(tag: "meshbench", nodes: 3, extraArguments: ["--cluster-store", store])
        defer { c.destroy() }
        let etcd = try await EtcdServer.start(in: (1...3).map { (c.lab.nodeNamespace($0), c.address($0)) }, tag: "meshbench-etcd")
        defer { etcd.stop() }
        try check(c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]))
        let token = try check(c.docker(1, ["swarm", "join-token", "-q", "manager"])).trimmingCharacters(in: .whitespacesAndNewlines)
        for n in 2...3 { _ = try check(c.docker(n, ["swarm", "join", "--token", token, "\(c.address(1)):2377"])) }
        try await waitForManagers(c)
        _ = try check(c.docker(1, ["service", "create", "--detach", "--name", "web", "--replicas", "1", "meshd/whoami"]))

        var meshdSide: [Double] = [], etcdSide: [Double] = []
        var replicas = 1
        for _ in 0..<runs {
            // meshd's leader.
            let leader = try leaderNode(c)
            let killed = ContinuousClock.now
            c.kill9(leader)
            replicas = replicas % 3 + 1
            meshdSide.append(seconds(try await firstWrite(c, avoiding: leader, replicas: replicas) - killed))
            try c.start(leader)
            try await c.waitForSocket(leader)
            try await waitForManagers(c)

            // etcd's leader.
            guard let member = etcd.leader() else { throw ValidationError("etcd has no leader") }
            let etcdKilled = ContinuousClock.now
            etcd.kill(member: member)
            replicas = replicas % 3 + 1
            etcdSide.append(seconds(try await firstWrite(c, avoiding: 0, replicas: replicas) - etcdKilled))
            try etcd.restart(member: member)
            try await etcd.waitHealthy(timeout: .seconds(30))
            try await waitForManagers(c)
        }

        let ratio = median(meshdSide) / max(median(etcdSide), 0.001)
        print(
            String(
                format: "meshd leader SIGKILL → first write: p50 %.2f s  p99 %.2f s   (goal p99 < 10 s)", median(meshdSide),
                percentile(meshdSide, 0.99)))
        print(
            String(
                format: "etcd leader SIGKILL → first write:  p50 %.2f s  p99 %.2f s   ratio meshd/etcd p50 %.2f×", median(etcdSide),
                percentile(etcdSide, 0.99), ratio))
        var out = BenchResults(
            "failover", quick: options.quick,
            [
                "meshd_p50": median(meshdSide), "meshd_p99": percentile(meshdSide, 0.99), "etcd_p50": median(etcdSide),
                "etcd_p99": percentile(etcdSide, 0.99), "runs": runs, "meshd_samples_s": meshdSide, "etcd_samples_s": etcdSide,
            ])
        out.metric("meshd leader SIGKILL → first write, p50", median(meshdSide), "s")
        out.metric("meshd leader SIGKILL → first write, p99", percentile(meshdSide, 0.99), "s", goal: "<", 10)
        out.metric("etcd leader SIGKILL → first write, p50", median(etcdSide), "s")
        out.metric("ratio meshd leader / etcd leader failover (p50)", ratio, "×")
        try out.write(to: options.json)
    }

    @discardableResult
    func check(_ out: Exec.Output) throws -> String {
        guard out.succeeded else { throw ValidationError("docker failed (\(out.status)): \(out.stderr)\(out.stdout)") }
        return out.stdout
    }

    /// The node whose `node ls` row says Leader, asked through each node in turn.
    func leaderNode(_ c: DaemonCluster) throws -> Int {
        for n in 1...3 {
            let out = try c.docker(n, ["node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"]).stdout
            if let row = out.split(separator: "\n").first(where: { $0.hasSuffix(" Leader") }), let k = Int(row.dropFirst(4).prefix(1)) {
                return k
            }
        }
        throw ValidationError("no manager shows a leader")
    }

    /// Retries `service scale` through the survivors until one succeeds (a failed attempt is what the
    /// clock measures, not an error); gives up after 30 s.
    func firstWrite(_ c: DaemonCluster, avoiding: Int, replicas: Int) async throws -> ContinuousClock.Instant {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            for n in 1...3 where n != avoiding {
                if try c.docker(n, ["service", "scale", "--detach", "web=\(replicas)"]).succeeded { return .now }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ValidationError("no write succeeded within 30 s of the kill")
    }

    /// Three managers, one of them Leader, all Ready and Reachable (60 s at most).
    func waitForManagers(_ c: DaemonCluster) async throws {
        var out = ""
        for _ in 0..<300 {
            for n in 1...3 {
                out = (try? c.docker(n, ["node", "ls", "--format", "{{.Status}} {{.ManagerStatus}}"]).stdout) ?? ""
                let rows = out.split(separator: "\n").map(String.init).sorted()
                if rows == ["Ready Leader", "Ready Reachable", "Ready Reachable"] { return }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ValidationError("the managers are not all back: \(out)")
    }
}
