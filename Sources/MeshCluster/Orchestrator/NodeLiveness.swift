import Foundation

/// Marks nodes down when their heartbeats stop and ready when they resume (`node ls` STATUS). The manager
/// records when it last heard from each node; this decides from those times, so tests need no clock.
public struct NodeLiveness: Sendable {
    /// Docker's dispatcher declares a node down after missing heartbeats for a few periods (5 s each).
    public var gracePeriod: TimeInterval

    public init(gracePeriod: TimeInterval = 15) { self.gracePeriod = gracePeriod }

    /// The nodes whose state changes; a node never heard from since the manager started counts from `since`.
    public func evaluate(nodes: [ClusterNode], lastSeen: [String: Date], since: Date, now: Date) -> [ClusterNode] {
        var changed: [ClusterNode] = []
        for var node in nodes.sorted(by: { $0.id < $1.id }) {
            let seen = lastSeen[node.id] ?? since
            let alive = now.timeIntervalSince(seen) <= gracePeriod
            let state: NodeState = alive ? (lastSeen[node.id] == nil ? node.state : .ready) : .down
            guard state != node.state else { continue }
            node.state = state
            node.stateMessage = state == .down ? "heartbeat failure" : ""
            node.updatedAt = now
            changed.append(node)
        }
        return changed
    }
}
