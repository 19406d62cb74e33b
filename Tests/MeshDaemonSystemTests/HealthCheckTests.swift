import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// A service's `--health-cmd` decides whether its tasks take connections (issue 19): a task is
/// served only once a probe passes, leaves every node's balancer (and DNS) when it turns
/// unhealthy, and comes back when it passes again, while a client loop sees no failure.
@Suite(.serialized) struct HealthCheckTests {
    @Test func healthDecidesWhichTasksEveryNodeBalancesTo() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mdw")
        defer { c.destroy() }
        // The probe reads flags the test sets: `up` for all, `sick-<task>` for one task (a
        // host-process task's HOSTNAME is its task id, which whoami answers with).
        let flags = "/tmp/mdw-health-\(getpid())"
        try FileManager.default.createDirectory(atPath: flags, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: flags) }
        try ClusterTests.formSwarm(c, network: "health")
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "web", "-p", "8100:8000", "--network", "health",
                    "--replicas", "2", "--health-cmd", "test -e \(flags)/up && test ! -e \(flags)/sick-$HOSTNAME",
                    "--health-interval", "500ms", "--health-timeout", "2s", "--health-retries", "1", "meshd/whoami",
                ]), "service create", c)
        func states() throws -> [String] {
            ClusterTests.lines(
                try c.docker(1, ["service", "ps", "web", "--filter", "desired-state=running", "--format", "{{.CurrentState}}"]).stdout)
        }
        func answers(_ n: Int, _ count: Int = 12) throws -> [String: Int] {
            try c.lab.spread(from: c.lab.clientNamespace, url: "http://\(c.address(n)):8100/", count: count)
        }
        // Running processes whose check has not passed: Starting, and no node sends them a connection.
        let starting = try await ClusterTests.eventually(.seconds(30)) {
            let s = try states()
            return s.count == 2 && s.allSatisfy { $0.hasPrefix("Starting") }
        }
        #expect(starting, "both tasks Starting: \((try? states()) ?? [])")
        try await Task.sleep(for: .seconds(2))
        // By now their probes have failed (one retry): still Starting, since none ever passed.
        let stillStarting = try states()
        #expect(stillStarting.count == 2 && stillStarting.allSatisfy { $0.hasPrefix("Starting") }, "\(stillStarting)")
        for n in 1...3 {
            let got = try answers(n, 4)
            #expect(got == ["failed": 4], "node \(n) sent connections to tasks not yet healthy: \(got)")
        }

        // Healthy: Running, and every node balances over both.
        _ = FileManager.default.createFile(atPath: "\(flags)/up", contents: nil)
        let running = try await ClusterTests.eventually(.seconds(20)) {
            let s = try states()
            return s.count == 2 && s.allSatisfy { $0.hasPrefix("Running") }
        }
        #expect(running, "both tasks Running once healthy: \((try? states()) ?? [])")
        var tasks: Set<String> = []
        for n in 1...3 {
            let both = try await ClusterTests.eventually(.seconds(15)) {
                let got = try answers(n)
                return got["failed"] == nil && got.keys.count == 2
            }
            let got = try answers(n)
            #expect(both, "node \(n) does not balance over both healthy tasks: \(got)")
            tasks.formUnion(got.keys.filter { $0 != "failed" })
        }
        let names = tasks.sorted()
        try #require(names.count == 2, "two task names: \(names)")
        let sick = names[0], well = names[1]

        // One turns unhealthy: out of every node's balancer, then back once it passes again,
        // with a client calling throughout.
        let loop = ClientLoop(c, url: "http://\(c.address(2)):8100/")
        _ = FileManager.default.createFile(atPath: "\(flags)/sick-\(sick)", contents: nil)
        let turned = ContinuousClock.now
        for n in 1...3 {
            let out = try await ClusterTests.eventually(.seconds(15)) { try answers(n) == [well: 12] }
            let got = try answers(n)
            #expect(out, "node \(n) still sends to the unhealthy task \(sick): \(got)\n\(c.log(n).suffix(1500))")
        }
        // The first failing probe comes within an interval (500 ms) of the flag; one retry.
        print("health: unhealthy task out of all three nodes' balancers \(ContinuousClock.now - turned) after its flag")
        try FileManager.default.removeItem(atPath: "\(flags)/sick-\(sick)")
        let healed = ContinuousClock.now
        for n in 1...3 {
            let back = try await ClusterTests.eventually(.seconds(15)) { try answers(n)[sick] != nil }
            let got = try answers(n)
            #expect(back, "node \(n) does not send to \(sick) again once healthy: \(got)")
        }
        print("health: healthy again on all three nodes \(ContinuousClock.now - healed) after its flag went")
        let counts = loop.stop()
        #expect(counts.failed == 0 && counts.ok > 0, "client loop through node 2: \(counts)")
        print("health: client loop \(counts.ok) ok, \(counts.failed) failed across an unhealthy spell")
    }
}
