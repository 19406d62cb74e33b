import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// Issue 18: the cluster page in a real headless Chromium (Debian's), driven over the DevTools
/// protocol by scripts/page-check.py inside node 1's namespace, where the daemon serves the page.
/// It must show the three nodes and a scale from 2 to 5 within 2 s of the scale command.
@Suite(.serialized) struct ClusterPageTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func aScaleAppearsOnThePageWithinTwoSeconds() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mdu", extraArguments: ["--ui-addr", "127.0.0.1:9324"])
        defer { c.destroy() }
        try ClusterTests.formSwarm(c, network: "page")
        let ready = try await ClusterTests.eventually(.seconds(20)) {
            ClusterTests.lines(try c.docker(1, ["node", "ls", "--format", "{{.Status}}"]).stdout).filter { $0 == "Ready" }.count == 3
        }
        #expect(ready)
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "web", "--network", "page", "-p", "8080:8000", "--replicas", "2",
                    "meshd/whoami",
                ]),
            "service create", c)
        let two = try await ClusterTests.eventually(.seconds(30)) {
            ClusterTests.lines(
                try c.docker(1, ["service", "ps", "web", "--filter", "desired-state=running", "--format", "{{.CurrentState}}"]).stdout
            ).filter { $0.hasPrefix("Running") }.count == 2
        }
        #expect(two)
        // Traffic for the page to show: requests to node 2's published port.
        _ = try c.lab.spread(from: c.lab.clientNamespace, url: "http://\(c.address(2)):8080/", count: 5)

        // The page itself: the HTML, and the view it draws, from inside node 1.
        let html = try Exec.run([
            "nsenter", "--net=/run/netns/\(c.lab.nodeNamespace(1))", "curl", "-s", "--max-time", "5", "http://127.0.0.1:9324/",
        ])
        #expect(html.stdout.contains("<title>meshd cluster</title>") && html.stdout.contains("EventSource"))
        // A worker serves the page too, but has no cluster to show: it says so, as the CLI would.
        let worker = try Exec.run([
            "nsenter", "--net=/run/netns/\(c.lab.nodeNamespace(2))", "curl", "-s", "--max-time", "5", "-w", "\n%{http_code}",
            "http://127.0.0.1:9324/api/cluster",
        ])
        #expect(worker.stdout.hasSuffix("\n503") && worker.stdout.contains("not a swarm manager"), "worker: \(worker.stdout)")

        let artifacts = ProcessInfo.processInfo.environment["MESHD_ARTIFACTS"] ?? Self.repo.appendingPathComponent(".build/artifacts").path
        try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true)
        let shot = "\(artifacts)/cluster-page.png"
        let scale = "docker --config \(c.directory)/docker -H unix://\(c.socket(1)) service scale --detach web=5"
        let r = try Exec.run([
            "timeout", "-s", "KILL", "120", "nsenter", "--net=/run/netns/\(c.lab.nodeNamespace(1))", "python3",
            Self.repo.appendingPathComponent("scripts/page-check.py").path, "--url", "http://127.0.0.1:9324/", "--nodes", "3",
            "--service", "web", "--before", "2", "--after", "5", "--within", "2", "--traffic-at-least", "5", "--scale", scale,
            "--screenshot", shot,
        ])
        print("page-check: \(r.stdout)\(r.stderr)")
        #expect(r.succeeded, "\(r.stdout)\(r.stderr)\n--- node1 log:\n\(c.log(1).suffix(2000))")
        let seen = try JSONSerialization.jsonObject(with: Data((r.stdout.split(separator: "\n").last ?? "{}").utf8)) as? [String: Any]
        #expect(seen?["nodes"] as? [String] == ["node1", "node2", "node3"])
        #expect((seen?["elapsed_ms"] as? Int).map { $0 <= 2000 } == true)
        // Node 2 reported the 5 connections (and more from the check above): the page shows them.
        #expect((seen?["traffic"] as? [Int])?.contains { $0 >= 5 } == true, "traffic on the page: \(String(describing: seen?["traffic"]))")
        let png = FileManager.default.contents(atPath: shot) ?? Data()
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "screenshot \(shot): \(png.count) bytes")
    }
}
