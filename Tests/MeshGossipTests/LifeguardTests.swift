import Testing
@testable import MeshGossip

/// The formulas against the numbers memberlist's defaults produce (reference §1.4).
struct LifeguardTests {
    @Test(arguments: [(10, 8), (100, 12), (1000, 16), (1, 4), (0, 0)])
    func retransmitLimitMatchesMemberlist(n: Int, expected: Int) {
        #expect(Lifeguard.retransmitLimit(mult: 4, nodes: n) == expected)
    }

    @Test(arguments: [(5, 4), (10, 4), (100, 8), (1000, 12)])
    func suspicionFloorMatchesMemberlist(n: Int, seconds: Int) {
        let min = Lifeguard.suspicionMin(mult: 4, nodes: n, interval: .seconds(1))
        #expect(abs(Double(min.components.seconds) - Double(seconds)) < 0.01)
        #expect(min * 6 == .seconds(seconds * 6))
    }

    @Test func suspicionShrinksWithConfirmations() {
        let min = Duration.seconds(4), max = Duration.seconds(24)
        let t0 = Lifeguard.suspicionTimeout(confirmations: 0, k: 2, min: min, max: max)
        let t1 = Lifeguard.suspicionTimeout(confirmations: 1, k: 2, min: min, max: max)
        let t2 = Lifeguard.suspicionTimeout(confirmations: 2, k: 2, min: min, max: max)
        let t3 = Lifeguard.suspicionTimeout(confirmations: 3, k: 2, min: min, max: max)
        #expect(t0 == max)
        #expect(t1 < t0 && t1 > t2)
        #expect(t2 == min && t3 == min)
        // memberlist: max − log(2)/log(3)·(max − min) ≈ 11.38 s after one of two confirmations.
        #expect(abs(Double(t1.components.seconds) + Double(t1.components.attoseconds) / 1e18 - 11.381) < 0.01)
    }

    @Test(arguments: [(10, 30), (32, 30), (64, 60), (1000, 180)])
    func pushPullScalesAbove32Nodes(n: Int, seconds: Int64) {
        #expect(Lifeguard.pushPullScale(.seconds(30), nodes: n) == .seconds(seconds))
    }

    @Test func awarenessClampsAndScales() {
        var a = Awareness(max: 8)
        a.apply(-1)
        #expect(a.score == 0 && a.scale(.seconds(1)) == .seconds(1))
        a.apply(3)
        #expect(a.scale(.seconds(1)) == .seconds(4))
        a.apply(100)
        #expect(a.score == 7 && a.scale(.milliseconds(500)) == .seconds(4))
    }

    @Test func defaultsAreTheDocumentedOnes() {
        let c = GossipConfig()
        #expect(c.probeInterval == .milliseconds(800) && c.probeTimeout == .milliseconds(400))
        #expect(c.gossipInterval == .milliseconds(200) && c.gossipNodes == 3)
        #expect(c.retransmitMult == 4 && c.pushPullInterval == .seconds(30) && c.packetSize == 1400)
        #expect(c.suspicionMult == 3 && c.suspicionMaxTimeoutMult == 6 && c.indirectChecks == 3)
    }
}
