/// The gossip keys a node must hold, primary (the one it seals with) first, as hex. Sent by the
/// manager on every session's start and at each step of a rotation; the node installs them all,
/// seals with the first, drops any other, saves them, and answers `gossipKeysApplied(generation)`.
public struct GossipKeySet: Codable, Sendable, Equatable {
    public var generation: UInt64
    public var keys: [String]
    public init(generation: UInt64, keys: [String]) {
        self.generation = generation
        self.keys = keys
    }
}
