import MeshCluster
import Testing

@testable import MeshDaemon

@Suite struct GossipKeyRotationStepTests {
    @Test func eachStepWaitsForEveryConnectedNodeThenMovesOn() throws {
        let old = GossipKey.generate(), new = GossipKey.generate()
        var r = GossipKeyRotation(old: old, new: new, generation: 7, now: .zero)
        #expect(r.keys == [old, new] && r.step == .install)
        r.applied(by: "n1", generation: 7)
        r.applied(by: "n2", generation: 6)  // an answer to an older set does not count
        #expect(r.advance(connected: ["n1", "n2"], now: .seconds(1), stepTimeout: .seconds(30)).moved == false)
        r.applied(by: "n2", generation: 7)
        #expect(r.advance(connected: ["n1", "n2"], now: .seconds(1), stepTimeout: .seconds(30)).moved)
        #expect(r.step == .use && r.keys == [new, old] && r.generation == 8)
        // A node that never answers holds the cluster up for the step timeout only, and is named.
        r.applied(by: "n1", generation: 8)
        let late = r.advance(connected: ["n1", "n2"], now: .seconds(31), stepTimeout: .seconds(30))
        #expect(late.moved && late.unanswered == ["n2"] && r.step == .remove && r.keys == [new])
        r.applied(by: "n1", generation: 9)
        #expect(r.advance(connected: ["n1"], now: .seconds(32), stepTimeout: .seconds(30)).moved && r.step == .done)
        #expect(r.advance(connected: ["n1"], now: .seconds(99), stepTimeout: .seconds(30)).moved == false)
    }
}
