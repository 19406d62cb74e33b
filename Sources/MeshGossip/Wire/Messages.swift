/// A member's liveness as this node believes it.
public enum MemberState: UInt8, Sendable, Codable, CustomStringConvertible {
    case alive = 0, suspect = 1, dead = 2, left = 3
    public var description: String { ["alive", "suspect", "dead", "left"][Int(rawValue)] }
    /// Alive and suspect members still count: their entries are visible, they are gossiped to.
    public var isLive: Bool { self == .alive || self == .suspect }
}

/// "Node X at incarnation I is alive at this address."
public struct AliveMessage: Equatable, Sendable {
    public var incarnation: UInt32
    public var node: String
    public var address: PeerAddress
}

/// Suspect and dead name the node, its incarnation and who says so; a dead message from the
/// node itself is a graceful leave.
public struct AccusationMessage: Equatable, Sendable {
    public var incarnation: UInt32
    public var node: String
    public var from: String
}

/// Node joined (or left) a network at Lamport time `ltime`. Everyone keeps these, so every node
/// knows which peers carry which network's table.
public struct NetworkEvent: Equatable, Sendable {
    public var ltime: UInt64
    public var node: String
    public var network: String
    public var joined: Bool
}

/// One version of a table entry: the value, or a tombstone when `deleted`.
public struct TableEvent: Equatable, Sendable {
    public var ltime: UInt64
    public var deleted: Bool
    public var owner: String
    public var network: String
    public var table: String
    public var key: String
    public var value: [UInt8]
}

/// A member as carried in a full-state exchange.
public struct MemberRecord: Equatable, Sendable {
    public var node: String
    public var address: PeerAddress
    public var incarnation: UInt32
    public var state: MemberState
}

/// The full-state exchange sent over TCP: every member, every network event, and the entries of
/// the networks the receiver carries (tombstones included, so deletes reach those who missed them).
public struct PushPull: Equatable, Sendable {
    public var isReply: Bool
    public var isJoin: Bool
    public var sender: String
    public var ltime: UInt64
    public var senderNetworks: [String]
    public var members: [MemberRecord]
    public var networkEvents: [NetworkEvent]
    public var entries: [TableEvent]
}

/// Everything that travels between nodes. Type numbers are wire protocol: append only.
public enum Message: Equatable, Sendable {
    case ping(seq: UInt32, target: String, source: String, sourceAddress: PeerAddress)
    case indirectPing(seq: UInt32, target: String, targetAddress: PeerAddress, source: String, sourceAddress: PeerAddress, wantNack: Bool)
    case ack(seq: UInt32)
    case nack(seq: UInt32)
    case alive(AliveMessage)
    case suspect(AccusationMessage)
    case dead(AccusationMessage)
    case network(NetworkEvent)
    case table(TableEvent)
    case pushPull(PushPull)

    enum Kind: UInt8 {
        case ping = 0, indirectPing = 1, ack = 2, suspect = 3, alive = 4, dead = 5, pushPull = 6, nack = 11
        case network = 20, table = 21
    }
}
