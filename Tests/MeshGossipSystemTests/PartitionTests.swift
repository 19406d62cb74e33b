import Foundation
import Testing
import MeshTestbed

/// A real partition: n5's port on the underlay bridge goes down, both sides keep writing, the
/// port comes back, and every node ends with the same table.
@Suite(.serialized)
struct PartitionTests {
    @Test func splitThenHealEndsWithIdenticalTables() async throws {
        let c = try GossipCluster(count: 5)
        defer { c.shutdown() }
        for i in 1...5 { try c.start(i, extra: ["--push-pull", "5"]) }
        #expect(await c.wait(.seconds(40)) { c.converged(Array(1...5)) })
        for i in 1...5 { c.node(i).send("set net ep before-\(i) v") }
        try await Task.sleep(for: .seconds(1))

        let u = c.group.name("u")
        let splitAt = ContinuousClock.now
        try Exec.check(["ip", "-n", u, "link", "set", "v5", "down"])
        #expect(
            await c.wait(.seconds(40)) {
                (1...4).allSatisfy { c.node($0).sawMember("n5", "dead", since: splitAt) != nil }
                    && c.node(5).sawMember("n1", "dead", since: splitAt) != nil
            },
            "the sides did not see each other dead")
        // Both sides write while split; n5 also deletes one of its entries.
        c.node(1).send("set net ep during-1 v")
        c.node(5).send("set net ep during-5 v")
        c.node(5).send("delete net ep before-5")
        try await Task.sleep(for: .seconds(2))

        let healAt = ContinuousClock.now
        try Exec.check(["ip", "-n", u, "link", "set", "v5", "up"])
        #expect(
            await c.wait(.seconds(80)) { (1...4).allSatisfy { c.node($0).sawMember("n5", "alive", since: healAt) != nil } },
            "membership did not heal")
        // 6 entries: before-1…4, during-1, during-5 (before-5 deleted while split).
        var last: [Int: [String]] = [:]
        let same = await c.wait(.seconds(60)) {
            for i in 1...5 {
                let start = ContinuousClock.now
                c.node(i).send("entries net")
                while ContinuousClock.now - start < .seconds(2),
                    c.node(i).events(since: start).first(where: { $0.object["event"] as? String == "entries" }) == nil
                { usleep(20_000) }
                last[i] = c.node(i).events(since: start).first { $0.object["event"] as? String == "entries" }?.object["keys"] as? [String]
            }
            let want = ["ep/before-1", "ep/before-2", "ep/before-3", "ep/before-4", "ep/during-1", "ep/during-5"]
            return (1...5).allSatisfy { last[$0] == want }
        }
        #expect(same, "tables differ after heal: \(last)")
    }
}
