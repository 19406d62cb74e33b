import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// Issue 15: the stock docker CLI's flags for fields meshd records but does not enforce yet come back
/// from `docker service inspect` on a real daemon, and `swarm init`'s flags reach the swarm's spec (`docker info`).
@Suite(.serialized) struct SpecFidelityTests {
    @Test func cliFlagsComeBackFromInspect() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mds", nodes: 1)
        defer { c.destroy() }
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "swarm", "init", "--advertise-addr", c.address(1), "--task-history-limit", "3", "--cert-expiry", "720h",
                    "--availability", "pause",
                ]),
            "swarm init", c)
        let swarm = try c.docker(1, ["info", "--format", "{{json .Swarm.Cluster.Spec}}"])
        let swarmSpec = try #require(try JSONSerialization.jsonObject(with: Data(swarm.stdout.utf8)) as? [String: Any])
        #expect((swarmSpec["Orchestration"] as? [String: Any])?["TaskHistoryRetentionLimit"] as? Int == 3, "\(swarm.stdout)")
        #expect((swarmSpec["CAConfig"] as? [String: Any])?["NodeCertExpiry"] as? Int == 720 * 3600 * 1_000_000_000)
        // `--availability` is the init request's, applied to the first node.
        #expect(try c.docker(1, ["node", "inspect", "self", "--format", "{{.Spec.Availability}}"]).stdout.contains("pause"))
        let me = try c.docker(1, ["info", "--format", "{{.Swarm.NodeID}}"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = ClusterTests.check(try c.docker(1, ["node", "update", "--availability", "active", me]), "node update", c)

        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "fid", "--tty", "--init", "--read-only", "--stop-signal", "SIGINT",
                    "--stop-grace-period", "3s", "--limit-memory", "64m", "--limit-cpu", "0.5", "--reserve-memory", "32m",
                    "--health-cmd", "true", "--health-interval", "2s", "--health-retries", "4",
                    "--dns", "1.1.1.1", "--dns-search", "example.com", "--dns-option", "ndots:2", "--host", "a:10.0.0.1",
                    "--sysctl", "net.core.somaxconn=1024", "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--group", "adm",
                    "--ulimit", "nofile=1024:2048", "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1048576",
                    "--log-driver", "json-file", "--log-opt", "max-size=10m", "--restart-window", "1m",
                    "--placement-pref", "spread=node.labels.zone", "--replicas-max-per-node", "2",
                    "--no-resolve-image", "meshd/whoami",
                ]),
            "service create", c)
        let out = try c.docker(1, ["service", "inspect", "fid", "--format", "{{json .Spec.TaskTemplate}}"])
        let task = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any], "\(out.stderr)")
        let spec = task["ContainerSpec"] as? [String: Any] ?? [:]
        #expect(spec["TTY"] as? Bool == true && spec["Init"] as? Bool == true && spec["ReadOnly"] as? Bool == true, "\(out.stdout)")
        #expect(spec["StopSignal"] as? String == "SIGINT" && spec["StopGracePeriod"] as? Int == 3_000_000_000)
        #expect((spec["Healthcheck"] as? [String: Any])?["Test"] as? [String] == ["CMD-SHELL", "true"])
        #expect((spec["Healthcheck"] as? [String: Any])?["Retries"] as? Int == 4)
        let dns = spec["DNSConfig"] as? [String: Any] ?? [:]
        #expect(dns["Nameservers"] as? [String] == ["1.1.1.1"] && dns["Search"] as? [String] == ["example.com"])
        #expect(dns["Options"] as? [String] == ["ndots:2"])
        #expect(spec["Hosts"] as? [String] == ["10.0.0.1 a"])
        #expect(spec["Sysctls"] as? [String: String] == ["net.core.somaxconn": "1024"])
        #expect(spec["CapabilityAdd"] as? [String] == ["CAP_NET_ADMIN"] && spec["CapabilityDrop"] as? [String] == ["CAP_MKNOD"])
        #expect(spec["Groups"] as? [String] == ["adm"])
        #expect((spec["Ulimits"] as? [[String: Any]])?.first?["Hard"] as? Int == 2048)
        #expect((spec["Mounts"] as? [[String: Any]])?.first?["Type"] as? String == "tmpfs")
        let resources = task["Resources"] as? [String: Any] ?? [:]
        #expect((resources["Limits"] as? [String: Any])?["MemoryBytes"] as? Int == 64 << 20)
        #expect((resources["Limits"] as? [String: Any])?["NanoCPUs"] as? Int == 500_000_000)
        #expect((resources["Reservations"] as? [String: Any])?["MemoryBytes"] as? Int == 32 << 20)
        #expect((task["LogDriver"] as? [String: Any])?["Name"] as? String == "json-file")
        #expect((task["RestartPolicy"] as? [String: Any])?["Window"] as? Int == 60_000_000_000)
        let placement = task["Placement"] as? [String: Any] ?? [:]
        #expect(placement["MaxReplicas"] as? Int == 2 && (placement["Preferences"] as? [Any])?.count == 1)

        // The recorded fields do not stop the task from running as a process.
        let running = try await ClusterTests.eventually(.seconds(30)) {
            ClusterTests.lines(
                try c.docker(1, ["service", "ps", "fid", "--filter", "desired-state=running", "--format", "{{.CurrentState}}"]).stdout
            ).contains { $0.hasPrefix("Running") }
        }
        #expect(running)
        // A secret the swarm does not have is refused.
        let secret = try c.docker(1, ["service", "create", "--detach", "--name", "sec", "--secret", "nosuch", "meshd/whoami"])
        #expect(!secret.succeeded && secret.stderr.contains("nosuch"), "\(secret.stderr)")
        _ = ClusterTests.check(try c.docker(1, ["service", "rm", "fid"]), "service rm", c)
    }
}
