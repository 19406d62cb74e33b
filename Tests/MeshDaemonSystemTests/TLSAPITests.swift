import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// Issue 17: the API on TCP only with mutual TLS (`-H tcp://… --tlsverify`, dockerd's flags). The
/// real docker CLI with a client certificate gets in; no certificate, another CA's certificate and
/// plaintext do not; a daemon asked for plaintext TCP refuses to start.
@Suite(.serialized) struct TLSAPITests {
    @Test func theTCPAPIIsMutualTLSOnly() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshd-tls-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try TestPKI(name: "meshd API CA")
        let server = try pki.issue("node1", ipAddresses: ["127.0.0.1"])
        let client = try pki.issue("operator")
        let stranger = try TestPKI(name: "someone else's CA").issue("operator")
        func write(_ name: String, _ text: String) throws -> String {
            let path = "\(dir)/\(name)"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let ca = try write("ca.pem", pki.caPEM)
        let cert = try write("cert.pem", server.certificateChainPEM)
        let key = try write("key.pem", server.privateKeyPEM)
        let clientCert = try write("client-cert.pem", client.certificateChainPEM)
        let clientKey = try write("client-key.pem", client.privateKeyPEM)
        let strangerCert = try write("stranger-cert.pem", stranger.certificateChainPEM)
        let strangerKey = try write("stranger-key.pem", stranger.privateKeyPEM)

        let c = try await DaemonCluster.build(
            tag: "mdt", nodes: 1,
            extraArguments: ["-H", "tcp://127.0.0.1:2376", "--tlsverify", "--tlscacert", ca, "--tlscert", cert, "--tlskey", key])
        defer { c.destroy() }
        let inNode = ["nsenter", "--net=/run/netns/\(c.lab.nodeNamespace(1))"]
        let listening = await ClusterTests.eventually(.seconds(15)) { c.log(1).contains("API on tcp://127.0.0.1:2376") }
        #expect(listening, "\(c.log(1))")

        let docker = try Exec.run(
            inNode + [
                "docker", "--config", "\(dir)/docker", "--tlsverify", "--tlscacert", ca, "--tlscert", clientCert, "--tlskey", clientKey,
                "-H", "tcp://127.0.0.1:2376", "version", "--format", "{{.Server.Version}}",
            ])
        #expect(docker.succeeded && !docker.stdout.isEmpty, "docker over mutual TLS: \(docker.stdout)\(docker.stderr)")
        let swarm = try Exec.run(
            inNode + [
                "docker", "--config", "\(dir)/docker", "--tlsverify", "--tlscacert", ca, "--tlscert", clientCert, "--tlskey", clientKey,
                "-H", "tcp://127.0.0.1:2376", "swarm", "init", "--advertise-addr", c.address(1),
            ])
        #expect(swarm.succeeded, "swarm init over TLS: \(swarm.stderr)")

        func curl(_ extra: [String], _ url: String) throws -> Exec.Output {
            try Exec.run(inNode + ["curl", "-s", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}"] + extra + [url])
        }
        let good = try curl(["--cacert", ca, "--cert", clientCert, "--key", clientKey], "https://127.0.0.1:2376/_ping")
        #expect(good.stdout == "200", "with the client certificate: \(good.stdout) \(good.stderr)")
        let anonymous = try curl(["--cacert", ca], "https://127.0.0.1:2376/_ping")
        #expect(!anonymous.succeeded && anonymous.stdout != "200", "no client certificate got \(anonymous.stdout)")
        let foreign = try curl(["--cacert", ca, "--cert", strangerCert, "--key", strangerKey], "https://127.0.0.1:2376/_ping")
        #expect(!foreign.succeeded && foreign.stdout != "200", "another CA's certificate got \(foreign.stdout)")
        let plain = try curl([], "http://127.0.0.1:2376/_ping")
        #expect(plain.stdout != "200", "plaintext HTTP got \(plain.stdout)")

        // Plaintext TCP is not a mode: the daemon refuses to start, saying why.
        let refused = try Exec.run(
            inNode + ["timeout", "20", c.lab.meshd, "daemon", "--data-root", "\(dir)/plain", "-H", "tcp://127.0.0.1:2380"])
        #expect(!refused.succeeded && refused.stderr.contains("--tlsverify"), "\(refused.status) \(refused.stderr)")
    }
}
