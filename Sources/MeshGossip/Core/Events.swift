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

    /// The four drop counters as one value, by cause.
    public var dropped: GossipDrops {
        GossipDrops(
            plaintext: droppedPlaintext, undecryptable: droppedUndecryptable, wrongLabel: droppedWrongLabel,
            malformed: droppedMalformed)
    }
}

/// UDP packets and TCP frames the gossip layer threw away unread, by cause, since it started: plain counters
/// for metrics (one per cause) and for the attacker tests. Nothing dropped ever reaches membership or tables.
public struct GossipDrops: Sendable, Equatable, CustomStringConvertible {
    /// Unsealed traffic while this node has a keyring: whoever sent it does not hold the key.
    public var plaintext = 0
    /// Sealed traffic no installed key opens (a wrong key, tampering), or sealed traffic while this node has none.
    public var undecryptable = 0
    /// Another cluster's label.
    public var wrongLabel = 0
    /// Not an envelope, or a payload that does not decode.
    public var malformed = 0
    public init(plaintext: Int = 0, undecryptable: Int = 0, wrongLabel: Int = 0, malformed: Int = 0) {
        self.plaintext = plaintext
        self.undecryptable = undecryptable
        self.wrongLabel = wrongLabel
        self.malformed = malformed
    }
    public var total: Int { plaintext + undecryptable + wrongLabel + malformed }
    public var description: String {
        "plaintext=\(plaintext) undecryptable=\(undecryptable) wrongLabel=\(wrongLabel) malformed=\(malformed)"
    }
}

public enum TableError: Error, Equatable, Sendable {
    case notOnNetwork(String)
    case ownedBy(String)
    case notFound
    case tooLarge(String)
}
