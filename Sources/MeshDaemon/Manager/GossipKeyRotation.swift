import MeshCluster

/// A manager-driven rotation of the gossip key, make-before-break as memberlist's keyring allows:
/// every node installs the new key (still sealing with the old), then every node seals with the
/// new one (still opening the old), then every node drops the old. A step goes to the next only
/// when every connected node has applied it (or `stepTimeout` passed: a node that does not answer
/// must not hold the cluster's key forever; it gets the current set when its session restarts).
/// Owns no socket and reads no clock: the manager plane feeds it acks and the time.
struct GossipKeyRotation: Sendable, Equatable {
    enum Step: Sendable, Equatable { case install, use, remove, done }

    let old: GossipKey
    let new: GossipKey
    private(set) var step: Step = .install
    private(set) var generation: UInt64
    private(set) var stepStarted: Duration
    private var acked: Set<String> = []

    init(old: GossipKey, new: GossipKey, generation: UInt64, now: Duration) {
        self.old = old
        self.new = new
        self.generation = generation
        self.stepStarted = now
    }

    /// The keys every node must hold at this step, primary first.
    var keys: [GossipKey] {
        switch step {
        case .install: [old, new]
        case .use: [new, old]
        case .remove, .done: [new]
        }
    }

    mutating func applied(by node: String, generation g: UInt64) {
        if g == generation { acked.insert(node) }
    }

    /// Moves to the next step when `connected` have all applied this one, or it has waited
    /// `stepTimeout`; returns the nodes that had not answered when it moved on by timeout.
    mutating func advance(connected: Set<String>, now: Duration, stepTimeout: Duration) -> (moved: Bool, unanswered: Set<String>) {
        guard step != .done else { return (false, []) }
        let missing = connected.subtracting(acked)
        guard missing.isEmpty || now - stepStarted >= stepTimeout else { return (false, []) }
        switch step {
        case .install: step = .use
        case .use: step = .remove
        case .remove: step = .done
        case .done: break
        }
        generation += 1
        acked = []
        stepStarted = now
        return (true, missing)
    }
}
