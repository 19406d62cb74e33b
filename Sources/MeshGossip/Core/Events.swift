/// A change a watcher sees in a replicated table.
public struct TableChange: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case create, update, delete }
    public var kind: Kind
    public var network: String
    public var table: String
    public var key: String
    public var owner: String
    public var value: [UInt8]
    public var description: String { "\(kind) \(network)/\(table)/\(key) owner \(owner)" }
}

/// What the core reports besides traffic: membership changes, table changes, warnings.
public enum GossipEvent: Sendable, Equatable {
    case member(name: String, address: PeerAddress, state: MemberState, incarnation: UInt32)
    case table(TableChange)
    case warning(String)
}

/// What the core asks its driver to do. Bytes are already sealed in the envelope.
public enum GossipOutput: Sendable {
    /// One UDP datagram.
    case packet(to: PeerAddress, bytes: [UInt8])
    /// One TCP exchange: send this frame, and hand any reply frame back to `receiveStream`.
    case stream(to: PeerAddress, bytes: [UInt8])
    case event(GossipEvent)
}

/// Counters a test or an operator reads.
public struct GossipStats: Sendable, Equatable {
    public var packetsSent = 0, bytesSent = 0, packetsReceived = 0, bytesReceived = 0
    public var streamsSent = 0, streamBytesSent = 0, streamsReceived = 0
    public var droppedWrongLabel = 0, droppedUndecryptable = 0, droppedPlaintext = 0, droppedMalformed = 0
    public var refutations = 0, probesFailed = 0, tcpOnlyProbes = 0
    /// Members this node came to suspect (its own probes or others' word).
    public var suspicions = 0
    public init() {}
}

public enum TableError: Error, Equatable, Sendable {
    case notOnNetwork(String)
    case ownedBy(String)
    case notFound
    case tooLarge(String)
}
