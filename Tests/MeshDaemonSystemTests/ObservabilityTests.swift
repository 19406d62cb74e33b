import Foundation
import MeshKernel
import MeshRuntime
import MeshTestbed
import Testing

/// Issue 18: what an operator sees of a running cluster. Three real daemons with
/// `--metrics-addr` and JSON logs; the metrics each serves in its own namespace must count the
/// requests the test sends, no more and no fewer.
@Suite(.serialized) struct ObservabilityTests {
    static let metricsURL = "http://127.0.0.1:9323/metrics"

    /// node `n`'s /metrics, fetched from inside its namespace (where the daemon listens).
    static func metrics(_ c: DaemonCluster, _ n: Int) throws -> String {
        let r = try Exec.run([
            "nsenter", "--net=/run/netns/\(c.lab.nodeNamespace(n))", "curl", "-s", "--max-time", "5", metricsURL,
        ])
        return r.succeeded ? r.stdout : ""
    }

    /// The value of the sample `name{labels}` (labels as printed, in order), nil when absent.
    static func value(_ text: String, _ sample: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1))
        }
        return nil
    }

    @Test func metricsCountTheTrafficSentAndLogsAreJSON() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mdo", extraArguments: ["--metrics-addr", "127.0.0.1:9323", "--log-format", "json"])
        defer { c.destroy() }
        try ClusterTests.formSwarm(c, network: "obs")
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "web", "--network", "obs", "-p", "8080:8000",
                    "--replicas", "3", "meshd/whoami",
                ]), "service create", c)
        let probe = try #require(try await ClusterTests().taskNamespace(c, service: "web"), "no task of web")
        let url2 = "http://\(c.address(2)):8080/"
        let answering = try await ClusterTests.eventually(.seconds(30)) {
            (try c.lab.spread(from: c.lab.clientNamespace, url: url2, count: 3))["failed"] == nil
        }
        #expect(answering, "node2:8080 does not answer")

        // Published port on node 2: 12 connections from the underlay client.
        let portSample = "meshd_published_connections_total{service=\"web\",protocol=\"tcp\",port=\"8080\"}"
        let portBefore = Self.value(try Self.metrics(c, 2), portSample) ?? 0
        let sent = try c.lab.spread(from: c.lab.clientNamespace, url: url2, count: 12)
        #expect(sent["failed"] == nil, "\(sent)")
        let node2 = try Self.metrics(c, 2)
        #expect(Self.value(node2, portSample) == portBefore + 12, "node2 metrics:\n\(node2.prefix(4000))")
        #expect((Self.value(node2, "meshd_published_bytes_total{service=\"web\",protocol=\"tcp\",port=\"8080\"}") ?? 0) > 0)

        // The VIP from a task: 7 connections, counted on the task's node under the service's name.
        let vip = try #require(
            ClusterTests.vip(try c.docker(1, ["service", "inspect", "web", "--format", "{{json .Endpoint.VirtualIPs}}"]).stdout, c))
        let probeNode = try #require(
            (1...3).first { n in c.nodeID(n).map { probe.hasPrefix(TaskRuntime.namespacePrefix(nodeID: $0)) } ?? false })
        let vipSample = "meshd_vip_connections_total{service=\"web\",network=\"obs\",vip=\"\(vip)\"}"
        let vipBefore = Self.value(try Self.metrics(c, probeNode), vipSample) ?? 0
        let viaVIP = try c.lab.spread(from: probe, url: "http://\(vip):8000/", count: 7)
        #expect(viaVIP["failed"] == nil, "\(viaVIP)")
        let probeMetrics = try Self.metrics(c, probeNode)
        #expect(Self.value(probeMetrics, vipSample) == vipBefore + 7, "node\(probeNode) metrics:\n\(probeMetrics.prefix(4000))")

        // The task's resolver: one query answered locally, counted by transport and rcode.
        let qBefore = Self.value(probeMetrics, "meshd_dns_queries_total{transport=\"udp\"}") ?? 0
        let dig = try Exec.run(["ip", "netns", "exec", probe, "dig", "+short", "+time=2", "+tries=1", "web"])
        #expect(dig.stdout.contains(vip), "dig web: \(dig.stdout)")
        let afterDig = try Self.metrics(c, probeNode)
        #expect(Self.value(afterDig, "meshd_dns_queries_total{transport=\"udp\"}") == qBefore + 1)
        #expect((Self.value(afterDig, "meshd_dns_answers_total{rcode=\"noerror\"}") ?? 0) >= 1)

        print(
            "node\(probeNode) traffic:\n"
                + afterDig.split(separator: "\n").filter { $0.hasPrefix("meshd_vip_") || $0.hasPrefix("meshd_dns_q") }.joined(
                    separator: "\n"))

        // The manager's view, gossip, the dataplane: present and computed.
        let node1 = try Self.metrics(c, 1)
        let running = try await ClusterTests.eventually(.seconds(10)) {
            Self.value(try Self.metrics(c, 1), "meshd_manager_tasks{state=\"running\"}") == 3
        }
        #expect(running, "manager tasks:\n\(node1.split(separator: "\n").filter { $0.contains("meshd_manager_tasks") })")
        #expect(Self.value(node1, "meshd_gossip_members{state=\"alive\"}") == 3, "\(node1.prefix(3000))")
        #expect((Self.value(node1, "meshd_gossip_packets_received_total") ?? 0) > 0)
        #expect(node1.contains("meshd_dataplane_apply_seconds_count{kind=\"full\"}"))
        #expect(node1.contains("meshd_task_start_seconds_count"))
        #expect(Self.value(node1, "meshd_control_refusals_total{cause=\"unknownNode\"}") == 0, "\(node1.suffix(1500))")

        // Issue 13: an idle manager runs no pass (the loop it replaced ran one a second, each reading
        // every object in the store). Nothing changes for 5 s here; heartbeats and status reports that
        // repeat what the store holds write nothing. One pass of slack for a late report settling.
        let passes = "meshd_manager_pass_seconds_count"
        let idleFrom = try #require(Self.value(try Self.metrics(c, 1), passes), "no \(passes) in node1's metrics")
        try await Task.sleep(for: .seconds(5))
        let idleTo = try #require(Self.value(try Self.metrics(c, 1), passes))
        #expect(idleTo - idleFrom <= 1, "an idle manager ran \(idleTo - idleFrom) passes in 5 s")

        // Every line each daemon wrote is one JSON object with a time, level and message.
        for n in 1...3 {
            let lines = c.log(n).split(separator: "\n")
            #expect(!lines.isEmpty)
            for line in lines {
                let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(obj?["level"] is String && obj?["msg"] is String && obj?["time"] is String, "node\(n) log line: \(line)")
            }
        }
        #expect(c.log(1).contains("\"msg\":\"swarm initialised"), "\(c.log(1))")
    }
}
