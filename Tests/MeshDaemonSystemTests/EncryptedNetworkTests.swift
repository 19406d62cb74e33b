import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// Issue 17: `docker network create -d overlay --opt encrypted` on real daemons. This host's
/// kernel has no ESP, so the node must refuse to attach a task to the network and say why (the
/// kernel's answer), while a plain network beside it serves; the VM lane proves the encrypted
/// path itself (MeshDataplaneVMTests, `esp…`).
@Suite(.serialized) struct EncryptedNetworkTests {
    @Test func aNodeWithoutESPRejectsTasksOnAnEncryptedNetworkWithTheKernelsReason() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mde", nodes: 1)
        defer { c.destroy() }
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        _ = ClusterTests.check(
            try c.docker(1, ["network", "create", "-d", "overlay", "--opt", "encrypted", "secret"]), "network create --opt encrypted", c)
        let options = try c.docker(1, ["network", "inspect", "secret", "--format", "{{json .Options}}"]).stdout
        #expect(options.contains("\"encrypted\":\"\""), "\(options)")
        _ = ClusterTests.check(try c.docker(1, ["network", "create", "-d", "overlay", "plain"]), "network create", c)
        for (name, network) in [("hidden", "secret"), ("open", "plain")] {
            _ = ClusterTests.check(
                try c.docker(1, ["service", "create", "--detach", "--name", name, "--network", network, "meshd/whoami"]),
                "service create \(name)", c)
        }
        // The task on the encrypted network is rejected with the reason; the plain one runs.
        var errors = ""
        let rejected = try await ClusterTests.eventually(.seconds(60)) {
            errors = try c.docker(1, ["service", "ps", "hidden", "--no-trunc", "--format", "{{.CurrentState}}|{{.Error}}"]).stdout
            return errors.contains("Rejected") || errors.contains("Failed")
        }
        #expect(rejected, "hidden: \(errors)\n\(c.log(1).suffix(2000))")
        #expect(errors.contains("network secret is encrypted") && errors.contains("ESP"), "\(errors)")
        #expect(
            errors.contains("AEAD") || errors.contains("not found") || errors.contains("not supported"), "the kernel's answer: \(errors)")
        let running = try await ClusterTests.eventually(.seconds(60)) {
            try c.docker(1, ["service", "ps", "open", "--format", "{{.CurrentState}}"]).stdout.contains("Running")
        }
        let open = try c.docker(1, ["service", "ps", "open", "--no-trunc"]).stdout
        #expect(running, "\(open)")
        // Nothing of the encrypted network reached the node: no SA, no sandbox for it.
        #expect(try Exec.check(["ip", "-n", c.lab.nodeNamespace(1), "xfrm", "state"]).isEmpty)
        // The ingress network cannot be made encrypted.
        let ingress = try c.docker(1, ["network", "create", "-d", "overlay", "--ingress", "--opt", "encrypted", "ing2"])
        #expect(!ingress.succeeded && ingress.stderr.contains("cannot be encrypted"), "\(ingress.stderr)")
    }
}
