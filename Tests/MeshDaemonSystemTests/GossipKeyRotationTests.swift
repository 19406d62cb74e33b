import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// Issue 17: the manager rotates the gossip key (install → use → remove on every node) on a
/// schedule and when a node is removed. No gossip packet may be lost to a key mismatch while the
/// mesh carries a service, and a removed node is cut off: what it still sends, sealed with the old
/// key, is dropped and counted.
@Suite(.serialized) struct GossipKeyRotationTests {
    static func keys(_ c: DaemonCluster, _ n: Int) -> [String] {
        guard let data = FileManager.default.contents(atPath: "\(c.dataRoot(n))/node.json"),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [] }
        return obj["gossipKeys"] as? [String] ?? []
    }

    @Test func keysRotateEverywhereWithoutLossAndARemovedNodeIsCutOff() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(
            tag: "mdk", extraArguments: ["--gossip-key-rotation", "3s", "--metrics-addr", "127.0.0.1:9323"])
        defer { c.destroy() }
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let first = Self.keys(c, 1)
        #expect(first.count == 1)
        let token = try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for n in 2...3 { _ = ClusterTests.check(try c.docker(n, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "join", c) }
        _ = ClusterTests.check(try c.docker(1, ["network", "create", "-d", "overlay", "keys"]), "network create", c)
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "web", "--network", "keys", "-p", "8080:8000", "--replicas", "3",
                    "meshd/whoami",
                ]),
            "service create", c)

        // Rotations every 3 s: all three nodes come to hold one key, the same, not the first.
        let rotated = try await ClusterTests.eventually(.seconds(60)) {
            let now = (1...3).map { Self.keys(c, $0) }
            let rotations = ObservabilityTests.value(try ObservabilityTests.metrics(c, 1), "meshd_manager_gossip_key_rotations_total") ?? 0
            return now.allSatisfy { $0.count == 1 && $0 == now[0] && $0 != first } && rotations >= 2
        }
        #expect(rotated, "keys: \((1...3).map { Self.keys(c, $0) })\n\(c.log(1).suffix(2000))")
        // The mesh kept working through them: node 1's port reaches the tasks on every node (their
        // endpoints come by gossip), and no node dropped a packet it could not open.
        let spread = try await ClusterTests.eventually(.seconds(20)) {
            (try c.lab.spread(from: c.lab.clientNamespace, url: "http://\(c.address(1)):8080/", count: 30)).keys.filter { $0 != "failed" }
                .count == 3
        }
        let last = try c.lab.spread(from: c.lab.clientNamespace, url: "http://\(c.address(1)):8080/", count: 30)
        #expect(spread, "\(last)")
        for n in 1...3 {
            let m = try ObservabilityTests.metrics(c, n)
            #expect(ObservabilityTests.value(m, "meshd_gossip_dropped_total{cause=\"undecryptable\"}") == 0, "node\(n)")
            #expect(ObservabilityTests.value(m, "meshd_gossip_members{state=\"alive\"}") == 3, "node\(n)")
        }

        // node 3 removed while its daemon runs on: node 1 and 2 move to a key it never gets, and
        // what it sends is dropped as undecryptable.
        let node3 = try #require(c.nodeID(3))
        _ = ClusterTests.check(try c.docker(1, ["node", "rm", "--force", node3]), "node rm", c)
        let cutOff = try await ClusterTests.eventually(.seconds(40)) {
            let k1 = Set(Self.keys(c, 1)), k3 = Set(Self.keys(c, 3))
            let dropped =
                ObservabilityTests.value(try ObservabilityTests.metrics(c, 1), "meshd_gossip_dropped_total{cause=\"undecryptable\"}") ?? 0
            return k1.isDisjoint(with: k3) && Self.keys(c, 2) == Self.keys(c, 1) && dropped > 0
        }
        let metrics1 = try ObservabilityTests.metrics(c, 1)
        #expect(cutOff, "keys: \((1...3).map { Self.keys(c, $0) })\n\(metrics1.suffix(3000))")
    }
}
