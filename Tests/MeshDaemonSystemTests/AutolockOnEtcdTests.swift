import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// Issue 17, autolock on a swarm whose managers share etcd, through the docker CLI: the leader hands
/// the unlock key to the other managers over their sessions (memory only; each seals its own key in
/// node.json with it), so a survivor takes over when the leader is SIGKILLed and opens the store's
/// sealed CA key. A restarted manager is locked until `swarm unlock` with the key in force, which it
/// checks against the store in etcd. After `unlock-key --rotate` (through a manager that does not
/// lead) the other managers hold the new key: the next takeover works and the restarted manager
/// unlocks with it. (The key before a rotation keeps opening the store until an unlock with the new
/// one settles it, as on a single manager: a crash mid-rotation must not lock the swarm out.)
@Suite(.serialized) struct AutolockOnEtcdTests {
    static func sealed(_ c: DaemonCluster, _ n: Int) -> Bool {
        guard let data = FileManager.default.contents(atPath: "\(c.dataRoot(n))/node.json"),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return false }
        return obj["sealedKeyPEM"] is String && (obj["keyPEM"] as? String ?? "").isEmpty
    }

    static func unlock(_ c: DaemonCluster, _ n: Int, _ key: String) throws -> Exec.Output {
        try Exec.run(["docker", "--config", "\(c.directory)/docker", "-H", "unix://\(c.socket(n))", "swarm", "unlock"], stdin: key + "\n")
    }

    static func trimmed(_ s: String) -> String { s.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// The hostname node `n` shows as Leader, nil while none.
    static func leader(_ c: DaemonCluster, seenFrom n: Int) -> String? {
        SeveralManagersTests.managerStatus(c, n).first(where: { $0.value.hasSuffix("Leader") })?.key
    }

    static func scale(_ c: DaemonCluster, through n: Int, to replicas: Int) async throws -> Bool {
        try await ClusterTests.eventually(.seconds(20)) {
            try c.docker(n, ["service", "scale", "--detach", "web=\(replicas)"]).succeeded
        }
    }

    @Test func managersOnEtcdHoldTheUnlockKeyTakeOverAndUnlock() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let store = "etcd://" + (1...3).map { "198.18.0.\($0):2379" }.joined(separator: ",") + "/mdg"
        let c = try await DaemonCluster.build(tag: "mdg", nodes: 3, extraArguments: ["--cluster-store", store])
        defer { c.destroy() }
        let etcd = try await EtcdServer.start(in: (1...3).map { (c.lab.nodeNamespace($0), c.address($0)) }, tag: "mdg-etcd")
        defer { etcd.stop() }

        let initOut = ClusterTests.check(
            try c.docker(1, ["swarm", "init", "--autolock", "--advertise-addr", c.address(1)]), "swarm init --autolock", c)
        let key1 = Self.trimmed(try c.docker(1, ["swarm", "unlock-key", "-q"]).stdout)
        #expect(key1.hasPrefix("SWMKEY-1-") && initOut.stdout.contains(key1), "\(initOut.stdout)")
        let token = Self.trimmed(try c.docker(1, ["swarm", "join-token", "-q", "manager"]).stdout)
        for n in 2...3 {
            _ = ClusterTests.check(try c.docker(n, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "manager join \(n)", c)
        }
        // Each manager got the key from the leader: its own key is sealed at rest.
        let sealedEverywhere = await ClusterTests.eventually(.seconds(20)) { (1...3).allSatisfy { Self.sealed(c, $0) } }
        #expect(sealedEverywhere, "node.json sealed: \((1...3).map { Self.sealed(c, $0) })\n\(c.log(2).suffix(2000))")
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "web", "--replicas", "1", "meshd/whoami"]), "service create", c)

        // The leader dies: a survivor opens the sealed CA key with the key it was handed, and leads.
        c.kill9(1)
        let took = await ClusterTests.eventually(.seconds(20)) {
            [2, 3].contains { Self.leader(c, seenFrom: $0).map { $0 != "node1" } ?? false }
        }
        #expect(took, "no survivor leads:\n--- node2:\n\(c.log(2).suffix(3000))\n--- node3:\n\(c.log(3).suffix(2000))")
        #expect(try await Self.scale(c, through: 2, to: 2), "scale through node2 after the takeover: \(c.log(2).suffix(2000))")

        // Restarted, node1 is locked; a wrong key changes nothing, the key in force unlocks it.
        try c.start(1)
        try await c.waitForSocket(1)
        let state = Self.trimmed(try c.docker(1, ["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout)
        #expect(state == "locked", "node1 after restart: \(state)")
        let refused = try c.docker(1, ["service", "ls"])
        #expect(!refused.succeeded && refused.stderr.contains("Swarm is encrypted and needs to be unlocked"), "\(refused.stderr)")
        let wrong = try Self.unlock(c, 1, "SWMKEY-1-" + String(repeating: "A", count: 43))
        #expect(!wrong.succeeded, "a wrong key unlocked node1")
        _ = ClusterTests.check(try Self.unlock(c, 1, key1), "swarm unlock node1", c)
        let back = await ClusterTests.eventually(.seconds(20)) {
            SeveralManagersTests.managerStatus(c, 2)["node1"] == "Ready Reachable"
        }
        #expect(back, "node ls: \(SeveralManagersTests.managerStatus(c, 2))")

        // A rotation through a manager that does not lead reaches every manager.
        let leaderNow = try #require(Self.leader(c, seenFrom: 2))
        let follower = [1, 2, 3].first { "node\($0)" != leaderNow }!
        let key2 = Self.trimmed(
            ClusterTests.check(try c.docker(follower, ["swarm", "unlock-key", "--rotate", "-q"]), "unlock-key --rotate", c).stdout)
        #expect(key2.hasPrefix("SWMKEY-1-") && key2 != key1)
        let leaderIndex = Int(leaderNow.dropFirst(4))!
        // The others hold the new key before the leader goes (their node.json is resealed with it).
        try await Task.sleep(for: .seconds(3))
        c.kill9(leaderIndex)
        let survivors = [1, 2, 3].filter { $0 != leaderIndex }
        let next = await ClusterTests.eventually(.seconds(20)) {
            survivors.contains { Self.leader(c, seenFrom: $0).map { $0 != leaderNow } ?? false }
        }
        #expect(next, "no survivor leads after the rotation:\n\(c.log(survivors[0]).suffix(3000))")
        #expect(try await Self.scale(c, through: survivors[0], to: 3), "scale after the second takeover")
        try c.start(leaderIndex)
        try await c.waitForSocket(leaderIndex)
        let garbage = try Self.unlock(c, leaderIndex, "nope")
        #expect(!garbage.succeeded && garbage.stderr.contains("invalid key"), "\(garbage.stderr)")
        _ = ClusterTests.check(try Self.unlock(c, leaderIndex, key2), "swarm unlock with the new key", c)
        let all = try await ClusterTests.eventually(.seconds(30)) {
            ClusterTests.lines(
                try c.docker(survivors[0], ["service", "ps", "web", "--filter", "desired-state=running", "--format", "{{.CurrentState}}"])
                    .stdout
            )
            .filter { $0.hasPrefix("Running") }.count == 3
        }
        let ps = try c.docker(survivors[0], ["service", "ps", "web"]).stdout
        #expect(all, "\(ps)")
    }
}
