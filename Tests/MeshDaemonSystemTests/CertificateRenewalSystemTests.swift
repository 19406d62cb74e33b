import Foundation
import MeshKernel
import MeshTestbed
import Testing
import X509

/// Issue 17: node certificates are renewed before they expire. Real daemons through the docker CLI,
/// with `--cert-expiry 20s` (the daemons' floor lowered from swarmkit's 1 h by the hidden
/// `--min-cert-expiry`). After the first certificates have expired, every 2377 handshake still works:
/// a restarted worker's session (it runs a task placed on it), the manager's own node plane, and a
/// new node joining (it checks the manager's listener certificate). Without renewal each of these
/// fails the TLS handshake with an expired certificate.
@Suite(.serialized) struct CertificateRenewalSystemTests {
    static func record(_ c: DaemonCluster, _ n: Int) -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: "\(c.dataRoot(n))/node.json"),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return obj
    }

    static func certificate(_ c: DaemonCluster, _ n: Int) -> Certificate? {
        (record(c, n)["certificatePEM"] as? String).flatMap { try? Certificate(pemEncoded: $0) }
    }

    static func mode(_ path: String) -> mode_t {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o777 : 0
    }

    @Test func certificatesRenewBeforeTheyExpireAndEveryHandshakeStillWorks() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(
            tag: "mdz", extraArguments: ["--min-cert-expiry", "10s", "--metrics-addr", "127.0.0.1:9323"])
        defer { c.destroy() }
        // Under the floor: refused in swarmkit's words, and nothing is made.
        let low = try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1), "--cert-expiry", "5s"])
        #expect(!low.succeeded && low.stderr.contains("minimum certificate expiry time is 10s"), "\(low.stderr)")
        _ = ClusterTests.check(
            try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1), "--cert-expiry", "20s"]), "swarm init", c)
        let token = try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = ClusterTests.check(try c.docker(2, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "join node2", c)
        let first = try (1...2).map { n in try #require(Self.certificate(c, n), "node\(n) has no certificate") }
        for cert in first {
            let life = cert.notValidAfter.timeIntervalSince(cert.notValidBefore) - 3600
            #expect(abs(life - 20) < 1, "issued for \(life) s")
        }
        let spec = try c.docker(1, ["info", "--format", "{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}"]).stdout
        #expect(spec.trimmingCharacters(in: .whitespacesAndNewlines) == "20s", "\(spec)")

        // Past the first certificates' end, with a margin for the renewals' retries.
        let end = first.map(\.notValidAfter).max()!
        try await Task.sleep(for: .seconds(max(0, end.timeIntervalSinceNow) + 3))
        for (i, n) in (1...2).enumerated() {
            let now = try #require(Self.certificate(c, n))
            #expect(now.serialNumber != first[i].serialNumber, "node\(n) did not renew:\n\(c.log(n).suffix(2000))")
            #expect(now.notValidAfter > Date(), "node\(n)'s certificate ended at \(now.notValidAfter)")
            // The key stays the node's: renewal certifies it again.
            #expect(now.publicKey == first[i].publicKey)
            #expect(Self.mode("\(c.dataRoot(n))/node.json") == 0o600)
        }
        let renewals = ObservabilityTests.value(try ObservabilityTests.metrics(c, 1), "meshd_manager_certificate_renewals_total") ?? 0
        #expect(renewals >= 2, "renewals: \(renewals)")

        // A restarted worker makes a new session with what node.json holds: a task placed on it runs.
        c.kill9(2)
        try c.start(2)
        try await c.waitForSocket(2)
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "pinned", "--constraint", "node.hostname==node2",
                    "meshd/whoami",
                ]),
            "service create", c)
        let running = try await ClusterTests.eventually(.seconds(30)) {
            try c.docker(1, ["service", "ps", "pinned", "--format", "{{.Node}} {{.CurrentState}}"]).stdout.contains("node2 Running")
        }
        let ps = try c.docker(1, ["service", "ps", "pinned"]).stdout
        #expect(running, "\(ps)\n--- node2 log:\n\(c.log(2).suffix(3000))")

        // A joiner checks the manager listener's certificate: the renewed one, in force without a restart.
        _ = ClusterTests.check(try c.docker(3, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "join node3", c)
        let three = try await ClusterTests.eventually(.seconds(20)) {
            try c.docker(1, ["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]).stdout.contains("node3 Ready")
        }
        let listed = try c.docker(1, ["node", "ls"]).stdout
        #expect(three, "\(listed)")
        // Still renewing on and on: past another whole life, node 3's first certificate was replaced too.
        let third = try #require(Self.certificate(c, 3))
        try await Task.sleep(for: .seconds(max(0, third.notValidAfter.timeIntervalSinceNow) + 3))
        #expect(Self.certificate(c, 3)?.serialNumber != third.serialNumber, "node3 did not renew:\n\(c.log(3).suffix(2000))")
        let nodes = try c.docker(1, ["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]).stdout
        #expect(ClusterTests.lines(nodes).filter { $0.hasSuffix(" Ready") }.count == 3, "\(nodes)")
    }
}
