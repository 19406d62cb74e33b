/// Every interval and multiplier of the protocol. Defaults follow memberlist's LAN profile except
/// where noted; each deviation is there to reach the ≤ 5 s detection goal for a killed node.
public struct GossipConfig: Sendable {
    /// memberlist LAN: 1 s. One probe per interval, randomized round-robin. Most of the time to
    /// detect a killed node is waiting for someone to probe it and then the suspicion floor (a
    /// multiple of this interval): at 1 s the simulator measures a median of 5.0 s to "all see
    /// dead" at N = 5, at 800 ms 3.7 s, for one more ~60-byte ping/ack per node every 0.8 s.
    public var probeInterval: Duration = .milliseconds(800)
    /// memberlist LAN: 500 ms. A LAN round trip is < 1 ms; 400 ms still tolerates a busy receiver
    /// and leaves the indirect and TCP probes the other half of the interval.
    public var probeTimeout: Duration = .milliseconds(400)
    /// memberlist: 3 peers asked to probe indirectly.
    public var indirectChecks = 3
    /// memberlist: 4, which needs k = 2 confirmations and a 4-interval floor (measured 5–6.6 s to
    /// dead at N = 5). 3 needs one independent confirmation and has a 3-interval floor at N ≤ 10
    /// (2.4 s); an unconfirmed suspect still gets 6× that to refute. Zero false positives in the
    /// simulated 10-minute, 20%-loss runs (see the tests and `meshbench gossip`).
    public var suspicionMult = 3
    /// memberlist: 6.
    public var suspicionMaxTimeoutMult = 6
    /// memberlist LAN: 200 ms.
    public var gossipInterval: Duration = .milliseconds(200)
    /// memberlist LAN: 3.
    public var gossipNodes = 3
    /// memberlist: 30 s. Dead nodes still get gossip this long, so a wrongly declared one can refute.
    public var gossipToTheDead: Duration = .seconds(30)
    /// memberlist: 4 → retransmits = 4·ceil(log10(N+1)).
    public var retransmitMult = 4
    /// memberlist LAN: 30 s, scaled up above 32 nodes the same way.
    public var pushPullInterval: Duration = .seconds(30)
    /// NetworkDB: 60 s. Push/pull with a random dead member so split clusters find each other again.
    public var reconnectInterval: Duration = .seconds(60)
    /// NetworkDB: 30 min. Tombstones live this long; must exceed the time for a delete to reach everyone.
    public var tombstoneReap: Duration = .seconds(30 * 60)
    /// NetworkDB: 24 h. Dead members (and their withdrawn entries) are forgotten after this.
    public var deadMemberReap: Duration = .seconds(24 * 3600)
    /// Lifeguard awareness ceiling (memberlist: 8 → score 0…7).
    public var awarenessMax = 8
    /// UDP payload budget before the envelope: memberlist's UDPBufferSize 1400 fits a 1500 MTU.
    public var packetSize = 1400
    /// Probing off lets the benchmark measure pure dissemination at N = 10,000 without N² state.
    public var probing = true
    public var limits = WireLimits()

    public init() {}

    /// For tests: same ratios, every interval divided by `factor`.
    public func scaled(by factor: Int64) -> GossipConfig {
        var c = self
        c.probeInterval = probeInterval / factor
        c.probeTimeout = probeTimeout / factor
        c.gossipInterval = gossipInterval / factor
        c.pushPullInterval = pushPullInterval / factor
        c.gossipToTheDead = gossipToTheDead / factor
        c.reconnectInterval = reconnectInterval / factor
        return c
    }
}
