import MeshDataplane

/// Keys for the encrypted overlay between nodes 1 and 2 of a `DataplaneLab`, one generation at a
/// time, as the agent derives them (here random): `ab` seals node 1 → node 2, `ba` node 2 → node 1.
/// For the VM lane's tests and the `esp` benchmark, which program pairs by hand.
public struct ESPGeneration: Sendable {
    public var g: UInt64
    public var ab: SAKey
    public var ba: SAKey

    /// Generation `g` with random keys; the SPIs are `spiBase + g·16 + 1` and `+ 2`, so each user
    /// (test or benchmark) keeps its own range.
    public static func random(_ g: UInt64, spiBase: UInt32 = 0x4d00) -> ESPGeneration {
        var r = SystemRandomNumberGenerator()
        func sa(_ spi: UInt32) -> SAKey { SAKey(spi: spi, key: (0..<16).map { _ in r.next() }, salt: (0..<4).map { _ in r.next() }) }
        return ESPGeneration(g: g, ab: sa(spiBase + UInt32(g) * 16 + 1), ba: sa(spiBase + UInt32(g) * 16 + 2))
    }
}

extension DataplaneLab {
    /// `states` (nodes 1 and 2) with `gens` (primary first) as each node's keys for the other.
    public func withPairKeys(_ states: [DataplaneState], _ gens: [ESPGeneration]) -> [DataplaneState] {
        var s = states
        s[0].peerKeys = [
            PeerKeys(
                nodeID: nodeID(2), nodeAddress: underlayAddress(2),
                keys: gens.map { PairKey(generation: $0.g, outbound: $0.ab, inbound: $0.ba) })
        ]
        s[1].peerKeys = [
            PeerKeys(
                nodeID: nodeID(1), nodeAddress: underlayAddress(1),
                keys: gens.map { PairKey(generation: $0.g, outbound: $0.ba, inbound: $0.ab) })
        ]
        return s
    }
}
