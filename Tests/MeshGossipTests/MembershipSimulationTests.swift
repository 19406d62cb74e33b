import Testing
@testable import MeshGossip

/// SWIM/Lifeguard behaviour in the deterministic simulator, with memberlist-LAN intervals.
struct MembershipSimulationTests {
    @Test func joinStormOf100Converges() {
        let sim = Simulator.joining(100, config: GossipConfig(), seed: 1)
        let t = sim.run(until: { sim.nodes.allSatisfy { $0.liveCount == 100 } }, limit: .seconds(60))
        #expect(t != nil, "not every node saw 100 live members")
        if let t { #expect(t < .seconds(30)) }
        #expect(sim.largestPacket <= 1400)
    }

    @Test func crashedNodeIsDeclaredDeadByEveryoneWithinTheBound() {
        let sim = Simulator.converged(100, config: GossipConfig(), seed: 2)
        let rec = Recorder(count: 100)
        rec.attach(sim)
        sim.run(for: .seconds(5))
        sim.crash(42)
        let start = sim.now
        let t = sim.run(until: { (0..<100).allSatisfy { $0 == 42 || sees(sim, $0, "n42", .dead) } }, limit: .seconds(60))
        #expect(t != nil)
        // N = 100: floor 3·2·0.8 s = 4.8 s after the first failed probe; allow for reaching n42 in the rotation.
        if let t { #expect(t - start < .seconds(15), "took \(t - start)") }
        #expect(!rec.memberEvents.contains { $0.state == .dead && $0.about != "n42" })
    }

    @Test func fiveNodesDetectAKillWithinFiveSeconds() {
        var times: [Double] = []
        for seed in 0..<20 as Range<UInt64> {
            let sim = Simulator.converged(5, config: GossipConfig(), seed: seed)
            sim.run(for: .seconds(3) + .milliseconds(Int64(seed * 97 % 1000)))
            sim.crash(4)
            let start = sim.now
            let t = sim.run(until: { (0..<4).allSatisfy { sees(sim, $0, "n4", .dead) } }, step: .milliseconds(10), limit: .seconds(60))
            times.append(seconds((t ?? .seconds(999)) - start))
        }
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2]
        #expect(median <= 4.5, "median \(median) s, all \(sorted)")
        #expect(sorted.last! < 8, "slowest \(sorted.last!) s")
    }

    @Test func noFalsePositivesIn10MinutesAt20PercentLoss() {
        let sim = Simulator.converged(30, config: GossipConfig(), conditions: NetworkConditions(loss: 0.2), seed: 3)
        let rec = Recorder(count: 30)
        rec.attach(sim)
        sim.run(for: .seconds(600))
        let dead = rec.memberEvents.filter { $0.state == .dead }
        #expect(dead.isEmpty, "false positives: \(dead.count)")
        #expect(sim.nodes.allSatisfy { $0.liveCount == 30 })
    }

    @Test func pausedNodeIsDeclaredDeadThenRefutesAndReturns() throws {
        let sim = Simulator.converged(10, config: GossipConfig(), networks: ["net"], seed: 4)
        let rec = Recorder(count: 10)
        rec.attach(sim)
        try sim.perform(3) { n, now in try n.set(network: "net", table: "ep", key: "task3", value: [3], at: now) }
        sim.run(for: .seconds(5))
        #expect((0..<10).allSatisfy { rec.views[$0][EntryKey(network: "net", table: "ep", key: "task3")] == [3] })
        sim.pause(3)
        let dead = sim.run(until: { (0..<10).allSatisfy { $0 == 3 || sees(sim, $0, "n3", .dead) } }, limit: .seconds(60))
        #expect(dead != nil)
        // Withdrawn from every other node's watchers the moment it was declared dead.
        #expect((0..<10).allSatisfy { $0 == 3 || rec.views[$0][EntryKey(network: "net", table: "ep", key: "task3")] == nil })
        let oldInc = sim.nodes[0].member("n3")!.incarnation
        sim.resume(3)
        let back = sim.run(until: { (0..<10).allSatisfy { sees(sim, $0, "n3", .alive) } }, limit: .seconds(120))
        #expect(back != nil, "n3 did not refute")
        #expect(sim.nodes[0].member("n3")!.incarnation > oldInc)
        #expect(sim.nodes[3].stats.refutations > 0)
        #expect((0..<10).allSatisfy { rec.views[$0][EntryKey(network: "net", table: "ep", key: "task3")] == [3] }, "entries not restored")
        #expect(rec.inconsistent.isEmpty, "\(rec.inconsistent)")
    }

    @Test func restartedNodeRejoinsWithHigherIncarnation() throws {
        let sim = Simulator.converged(8, config: GossipConfig(), networks: ["net"], seed: 5)
        let rec = Recorder(count: 8)
        rec.attach(sim)
        try sim.perform(5) { n, now in try n.set(network: "net", table: "ep", key: "old", value: [1], at: now) }
        sim.run(for: .seconds(3))
        sim.crash(5)
        #expect(sim.run(until: { (0..<8).allSatisfy { $0 == 5 || sees(sim, $0, "n5", .dead) } }, limit: .seconds(60)) != nil)
        sim.restart(5, seed: 0, incarnation: 100)
        sim.perform(5) { n, now in n.joinNetwork("net", at: now) }
        try sim.perform(5) { n, now in try n.set(network: "net", table: "ep", key: "new", value: [2], at: now) }
        #expect(sim.run(until: { (0..<8).allSatisfy { sees(sim, $0, "n5", .alive) } }, limit: .seconds(30)) != nil)
        sim.run(for: .seconds(90))
        // The restarted node outbids its previous life's entry with a tombstone; its new one is everywhere.
        for i in 0..<8 {
            let e = sim.nodes[i].entries(network: "net")
            #expect(e[EntryKey(network: "net", table: "ep", key: "old")] == nil, "node \(i) still shows the stale entry")
            #expect(e[EntryKey(network: "net", table: "ep", key: "new")]?.value == [2], "node \(i) misses the new entry")
        }
    }

    @Test func gracefulLeaveIsSeenAsLeftNotDead() {
        let sim = Simulator.converged(10, config: GossipConfig(), seed: 6)
        sim.run(for: .seconds(2))
        sim.perform(7) { n, now in n.leave(at: now) }
        sim.run(for: .milliseconds(100))
        sim.crash(7)
        let t = sim.run(until: { (0..<10).allSatisfy { $0 == 7 || sees(sim, $0, "n7", .left) } }, limit: .seconds(5))
        #expect(t != nil)
    }

    @Test func udpBlockedButTcpWorksIsNotDeclaredDead() {
        // One-way UDP loss of 100% to and from n2 is modelled as a partition of datagrams only.
        let sim = Simulator.converged(5, config: GossipConfig(), conditions: NetworkConditions(loss: 0), seed: 7)
        let rec = Recorder(count: 5)
        rec.attach(sim)
        sim.blockUDP(of: 2)
        sim.run(for: .seconds(60))
        #expect(!rec.memberEvents.contains { $0.about == "n2" && $0.state == .dead })
        #expect((0..<5).contains { $0 != 2 && sim.nodes[$0].stats.tcpOnlyProbes > 0 })
    }

    @Test func aStrugglingNodeSlowsItselfDownNotOthers() {
        // n2 is cut off: its probes fail and the nacks it asked for never arrive, so Lifeguard
        // raises its own health score. The others' probes of n2 fail too, but their helpers do
        // nack, which tells them the fault is not theirs: their scores stay at zero.
        let sim = Simulator.converged(8, config: GossipConfig(), seed: 8)
        sim.partition = (0..<8).map { $0 == 2 ? 1 : 0 }
        sim.run(for: .seconds(10))
        #expect(sim.nodes[2].awareness.score > 0)
        #expect((0..<8).allSatisfy { $0 == 2 || sim.nodes[$0].awareness.score == 0 })
    }
}
