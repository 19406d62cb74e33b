import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// `swarm init --autolock` on a real daemon through the docker CLI: the unlock key is shown and
/// rotates; neither node.json nor cluster.sqlite holds a private key in the open; a restarted
/// manager is locked (`docker info` says so, cluster commands get dockerd's message) until
/// `swarm unlock` with the current key — an old or malformed key changes nothing — and then runs
/// its service again; `--autolock=false` stores the keys open and the next restart needs no key.
@Suite(.serialized) struct AutolockSystemTests {
    static func privateKeyFiles(_ c: DaemonCluster) -> [String] {
        ["node.json", "cluster.sqlite"].filter { name in
            FileManager.default.contents(atPath: "\(c.dataRoot(1))/\(name)")?.range(of: Data("PRIVATE KEY".utf8)) != nil
        }
    }

    static func restart(_ c: DaemonCluster) async throws {
        c.stop(1)
        try c.start(1)
        try await c.waitForSocket(1)
    }

    @Test func aLockedManagerWaitsForItsKey() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mal", nodes: 1)
        defer { c.destroy() }
        let initOut = ClusterTests.check(
            try c.docker(1, ["swarm", "init", "--autolock", "--advertise-addr", c.address(1)]), "swarm init --autolock", c)
        let key1 = try c.docker(1, ["swarm", "unlock-key", "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key1.hasPrefix("SWMKEY-1-") && initOut.stdout.contains(key1), "\(initOut.stdout)")
        let spec = try c.docker(1, ["info", "--format", "{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}"])
        #expect(spec.stdout.contains("true"), "\(spec)")
        #expect(Self.privateKeyFiles(c).isEmpty, "a private key in the open: \(Self.privateKeyFiles(c))")

        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "web", "--replicas", "1", "meshd/whoami"]), "service create", c)
        let running = try await ClusterTests.eventually(.seconds(30)) {
            try c.docker(1, ["service", "ls", "--format", "{{.Replicas}}"]).stdout.contains("1/1")
        }
        #expect(running)

        let rotated = ClusterTests.check(try c.docker(1, ["swarm", "unlock-key", "--rotate", "-q"]), "unlock-key --rotate", c)
        let key2 = rotated.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key2.hasPrefix("SWMKEY-1-") && key2 != key1)
        #expect(try c.docker(1, ["swarm", "unlock-key", "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == key2)
        #expect(try c.meshctl(1, ["swarm", "unlock-key", "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == key2)

        try await Self.restart(c)
        #expect(try c.docker(1, ["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.contains("locked"))
        let refused = try c.docker(1, ["node", "ls"])
        #expect(!refused.succeeded && refused.stderr.contains("Swarm is encrypted and needs to be unlocked"), "\(refused.stderr)")
        let joinWhileLocked = try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)])
        #expect(!joinWhileLocked.succeeded && joinWhileLocked.stderr.contains("already part of a swarm"), "\(joinWhileLocked.stderr)")
        // Another swarm's key opens nothing, nor does a malformed one; the node stays locked.
        let other = try Exec.run(
            ["docker", "--config", "\(c.directory)/docker", "-H", "unix://\(c.socket(1))", "swarm", "unlock"],
            stdin: "SWMKEY-1-" + String(repeating: "A", count: 43) + "\n")
        #expect(!other.succeeded && other.stderr.contains("invalid key provided"), "\(other.stderr)")
        let garbage = try Exec.run(
            ["docker", "--config", "\(c.directory)/docker", "-H", "unix://\(c.socket(1))", "swarm", "unlock"], stdin: "nope\n")
        #expect(!garbage.succeeded && garbage.stderr.contains("invalid key"), "\(garbage.stderr)")
        #expect(try c.docker(1, ["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.contains("locked"))

        // meshctl's unlock, with the key piped in as to docker's.
        let unlocked = try Exec.run([c.meshctl, "-H", "unix://\(c.socket(1))", "swarm", "unlock"], stdin: key2 + "\n")
        _ = ClusterTests.check(unlocked, "meshctl swarm unlock", c)
        #expect(try c.docker(1, ["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.contains("active"))
        let back = try await ClusterTests.eventually(.seconds(30)) {
            try c.docker(1, ["service", "ls", "--format", "{{.Name}} {{.Replicas}}"]).stdout.contains("web 1/1")
                && c.docker(1, ["node", "ls", "--format", "{{.Status}}"]).stdout.contains("Ready")
        }
        let tasks = try c.docker(1, ["service", "ps", "web"]).stdout
        #expect(back, "after unlock: \(tasks)")
        let again = try c.docker(1, ["swarm", "unlock"])
        #expect(!again.succeeded && again.stderr.contains("not locked"), "\(again.stderr)")

        // Unlocked with the new key, the one before the rotation (kept until then, so that a crash
        // mid-rotation or a lost answer cannot lock the manager out) opens nothing any more.
        try await Self.restart(c)
        let old = try Exec.run(
            ["docker", "--config", "\(c.directory)/docker", "-H", "unix://\(c.socket(1))", "swarm", "unlock"], stdin: key1 + "\n")
        #expect(!old.succeeded && old.stderr.contains("invalid key provided"), "\(old.stderr)")
        let relock = try Exec.run(
            ["docker", "--config", "\(c.directory)/docker", "-H", "unix://\(c.socket(1))", "swarm", "unlock"], stdin: key2 + "\n")
        _ = ClusterTests.check(relock, "swarm unlock after the second restart", c)
        #expect(Self.privateKeyFiles(c).isEmpty, "a private key in the open after unlock: \(Self.privateKeyFiles(c))")

        // Autolock off: the keys are stored open again, and a restart needs no key.
        _ = ClusterTests.check(try c.docker(1, ["swarm", "update", "--autolock=false"]), "swarm update --autolock=false", c)
        #expect(Set(Self.privateKeyFiles(c)) == ["node.json", "cluster.sqlite"])
        #expect(try c.docker(1, ["swarm", "unlock-key", "-q"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        let noKey = try c.meshctl(1, ["swarm", "unlock-key", "--rotate"])
        #expect(!noKey.succeeded && noKey.stderr.contains("autolock is not turned on"), "\(noKey)")
        try await Self.restart(c)
        let open = await ClusterTests.eventually(.seconds(30)) { (try? c.docker(1, ["node", "ls"]))?.succeeded == true }
        #expect(open, "\(c.log(1).suffix(2000))")

        // On again (swarm update), and a locked manager can still leave with --force.
        _ = ClusterTests.check(try c.docker(1, ["swarm", "update", "--autolock=true"]), "swarm update --autolock=true", c)
        #expect(Self.privateKeyFiles(c).isEmpty)
        try await Self.restart(c)
        #expect(try c.docker(1, ["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.contains("locked"))
        _ = ClusterTests.check(try c.docker(1, ["swarm", "leave", "--force"]), "swarm leave --force", c)
        #expect(try c.docker(1, ["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.contains("inactive"))
        #expect(!FileManager.default.fileExists(atPath: "\(c.dataRoot(1))/node.json"))
    }
}
