import Foundation
import Testing
import MeshTestbed

/// Five `meshd gossip` processes in five namespaces on a bridge: real UDP and TCP on 7946,
/// AES-GCM on the wire, failures made with real signals.
@Suite(.serialized)
struct RealClusterTests {
    @Test func sigkilledNodeIsSeenDeadByAllAndRejoinsAfterRestart() async throws {
        let c = try GossipCluster(count: 5)
        defer { c.shutdown() }
        for i in 1...5 { try c.start(i) }
        #expect(await c.wait(.seconds(40)) { c.converged(Array(1...5)) }, "5 nodes did not converge")
        try await Task.sleep(for: .seconds(2))

        let killedAt = ContinuousClock.now
        c.node(5).signal(SIGKILL)
        let allSee = await c.wait(.seconds(40)) { (1...4).allSatisfy { c.node($0).sawMember("n5", "dead", since: killedAt) != nil } }
        #expect(allSee, "not every node saw n5 dead")
        let times = (1...4).compactMap { c.node($0).sawMember("n5", "dead", since: killedAt) }.map { $0 - killedAt }
        if let worst = times.max() {
            print("gossip: SIGKILL → dead at all 4 others after \(worst) (first \(times.min()!))")
            // An upper bound for a loaded CI machine; the benchmark measures the real figure (goal 5 s).
            #expect(worst < .seconds(15), "detection took \(worst)")
        }

        c.node(5).stop()
        let restartedAt = ContinuousClock.now
        try c.start(5)
        #expect(
            await c.wait(.seconds(30)) { (1...4).allSatisfy { c.node($0).sawMember("n5", "alive", since: restartedAt) != nil } },
            "restarted n5 was not seen alive again")
        #expect(
            await c.wait(.seconds(20)) {
                c.converged(Array(1...5), since: restartedAt) || (1...4).allSatisfy { c.node(5).sawMember("n\($0)", "alive") != nil }
            })
    }

    @Test func sigstoppedNodeIsDeclaredDeadAndRefutesOnSigcont() async throws {
        let c = try GossipCluster(count: 5)
        defer { c.shutdown() }
        // Gossip is best effort and push/pull repairs what it misses (CI once saw one node miss the
        // write for the default 30 s): 5 s here so the wait below covers a repair.
        for i in 1...5 { try c.start(i, extra: ["--push-pull", "5"]) }
        #expect(await c.wait(.seconds(40)) { c.converged(Array(1...5)) })
        c.node(3).send("set net ep task3 up")
        #expect(
            await c.wait(.seconds(30)) {
                [1, 2, 4, 5].allSatisfy { i in
                    c.node(i).events().contains { $0.object["event"] as? String == "table" && $0.object["key"] as? String == "task3" }
                }
            })

        let stoppedAt = ContinuousClock.now
        c.node(3).signal(SIGSTOP)
        #expect(
            await c.wait(.seconds(50)) { [1, 2, 4, 5].allSatisfy { c.node($0).sawMember("n3", "dead", since: stoppedAt) != nil } },
            "SIGSTOPped n3 was not declared dead")
        // Its entry is withdrawn from watchers when it is declared dead.
        #expect(
            [1, 2, 4, 5].allSatisfy { i in
                c.node(i).events(since: stoppedAt).contains {
                    $0.object["event"] as? String == "table" && $0.object["kind"] as? String == "delete"
                        && $0.object["key"] as? String == "task3"
                }
            })

        let contAt = ContinuousClock.now
        c.node(3).signal(SIGCONT)
        #expect(
            await c.wait(.seconds(80)) { [1, 2, 4, 5].allSatisfy { c.node($0).sawMember("n3", "alive", since: contAt) != nil } },
            "n3 did not refute after SIGCONT")
        let stats = await c.node(3).query("stats", event: "stats")
        #expect((stats?["refutations"] as? Int ?? 0) > 0, "n3 should have refuted: \(String(describing: stats))")
        // And its entry comes back.
        #expect(
            [1, 2, 4, 5].allSatisfy { i in
                c.node(i).events(since: contAt).contains {
                    $0.object["event"] as? String == "table" && $0.object["kind"] as? String == "create"
                        && $0.object["key"] as? String == "task3"
                }
            })
    }

    @Test func keyRotationWhileUpdatesFlowLosesNothing() async throws {
        let k1 = "00112233445566778899aabbccddeeff", k2 = "ffeeddccbbaa99887766554433221100ffeeddccbbaa9988"
        let c = try GossipCluster(count: 5, keys: [k1])
        defer { c.shutdown() }
        // Gossip is best effort; push/pull repairs what it misses. 5 s here so the test need not wait 60.
        for i in 1...5 { try c.start(i, extra: ["--push-pull", "5"]) }
        #expect(await c.wait(.seconds(40)) { c.converged(Array(1...5)) })

        var written = 0
        func writes(_ n: Int) async throws {
            for _ in 0..<n {
                for i in 1...5 { c.node(i).send("set net ep n\(i)-\(written) v") }
                written += 1
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        try await writes(5)
        for step in ["install-key \(k2)", "use-key \(k2)", "remove-key \(k1)"] {
            for i in 1...5 {
                c.node(i).send(step)
                try await writes(2)
            }
        }
        try await writes(5)
        let total = written * 5
        let all = await c.wait(.seconds(60)) {
            (1...5).allSatisfy { i in
                Set(
                    c.node(i).events().filter { $0.object["event"] as? String == "table" && $0.object["kind"] as? String == "create" }
                        .compactMap { $0.object["key"] as? String }
                ).count >= total
            }
        }
        #expect(all, "not every node saw all \(total) entries")
        for i in 1...5 {
            let entries = await c.node(i).query("entries net", event: "entries")
            #expect(entries?["count"] as? Int == total, "n\(i): \(String(describing: entries?["count"]))")
            let stats = await c.node(i).query("stats", event: "stats")
            #expect(stats?["droppedUndecryptable"] as? Int == 0, "n\(i) dropped packets during rotation: \(String(describing: stats))")
            print("gossip rotation: n\(i) \(String(describing: stats))")
        }
        // No command failed (a rotation step rejected would show up here).
        #expect(!(1...5).contains { i in c.node(i).events().contains { $0.object["event"] as? String == "error" } })
    }

    @Test func nodeWithTheWrongKeyNeverJoinsAndIsCounted() async throws {
        let c = try GossipCluster(count: 3)
        defer { c.shutdown() }
        try c.start(1)
        try c.start(2)
        #expect(await c.wait(.seconds(30)) { c.converged([1, 2]) })
        let otherKey = FileManager.default.temporaryDirectory.appendingPathComponent("\(c.group.prefix)-other").path
        try "0f0e0d0c0b0a09080706050403020100\n".write(toFile: otherKey, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: otherKey) }
        try c.start(3, keyFile: otherKey)
        try await Task.sleep(for: .seconds(5))
        #expect(c.node(1).sawMember("n3", "alive") == nil && c.node(2).sawMember("n3", "alive") == nil)
        #expect(c.node(3).sawMember("n1", "alive") == nil)
        let stats = await c.node(1).query("stats", event: "stats")
        #expect((stats?["droppedUndecryptable"] as? Int ?? 0) > 0, "\(String(describing: stats))")
    }
}
