import MeshKernel

/// The IPsec keys this node shares with one peer node, for the VXLAN of encrypted networks
/// between their underlay addresses. The manager derives them per pair and per generation and
/// hands them to the two nodes of the pair only; both hold the same values with the directions
/// swapped.
///
/// During a key rotation a pair holds two generations: every listed key is installed (so a
/// packet sealed with either opens), the first one seals what this node sends. Rotation is
/// make-before-break across the two nodes: [old, new] (new accepted), then [new, old] (new
/// used), then [new] (old removed), each step applied by both before the next.
public struct PeerKeys: Codable, Sendable, Equatable {
    public var nodeID: String
    /// The peer's underlay address (where its VXLAN comes from and goes to).
    public var nodeAddress: IPAddress
    /// Primary (sending) first; never empty in a valid state.
    public var keys: [PairKey]

    public init(nodeID: String, nodeAddress: IPAddress, keys: [PairKey]) {
        self.nodeID = nodeID
        self.nodeAddress = nodeAddress
        self.keys = keys
    }
}

/// One generation of a pair's keys: one SA per direction.
public struct PairKey: Codable, Sendable, Equatable {
    public var generation: UInt64
    /// This node → the peer.
    public var outbound: SAKey
    /// The peer → this node.
    public var inbound: SAKey

    public init(generation: UInt64, outbound: SAKey, inbound: SAKey) {
        self.generation = generation
        self.outbound = outbound
        self.inbound = inbound
    }
}

/// An ESP SA's SPI and AES-GCM-128 key material (RFC 4106: 16-byte key, 4-byte salt). Its
/// description names the SPI only: keys never reach a log or an error.
public struct SAKey: Codable, Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var spi: UInt32
    public var key: [UInt8]
    public var salt: [UInt8]

    public init(spi: UInt32, key: [UInt8], salt: [UInt8]) {
        self.spi = spi
        self.key = key
        self.salt = salt
    }

    public var description: String {
        let h = String(spi, radix: 16)
        return "spi 0x" + String(repeating: "0", count: max(0, 8 - h.count)) + h + " (key hidden)"
    }
    public var debugDescription: String { description }
}
