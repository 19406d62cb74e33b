import Foundation

/// Housekeeping the orchestrator leaves to a second pass: which ended tasks give their addresses back, and
/// which old tasks are deleted. Docker keeps the last `TaskHistoryRetentionLimit` (5) tasks per slot so
/// `service ps` can show the `\_` history.
public struct TaskReaper: Sendable {
    public var retentionLimit: Int

    public init(retentionLimit: Int = 5) { self.retentionLimit = retentionLimit }

    public struct Plan: Sendable, Equatable {
        /// Tasks that hold addresses but will not run again: release them (`NetworkAllocator.releaseTask`)
        /// and store the task without its attachments.
        public var release: [String] = []
        /// Tasks to delete from the store (release their addresses first).
        public var delete: [String] = []
    }

    /// A task is finished when it will not run again: it ended, or it is meant to stop and its node is down
    /// or gone (nobody will report it stopping).
    public static func isFinished(_ t: ClusterTask, nodes: [String: ClusterNode]) -> Bool {
        if t.desiredState <= .running { return false }
        if t.status.state.isTerminal { return true }
        guard !t.nodeID.isEmpty, let node = nodes[t.nodeID] else { return true }
        return node.state == .down
    }

    public func plan(_ snapshot: ClusterSnapshot) -> Plan {
        let nodes = Dictionary(snapshot.nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let services = Set(snapshot.services.map(\.id))
        var plan = Plan()
        var history: [String: [ClusterTask]] = [:]
        for t in snapshot.tasks {
            let finished = Self.isFinished(t, nodes: nodes)
            guard finished else { continue }
            if !services.contains(t.serviceID) {
                plan.delete.append(t.id)
                continue
            }
            if !t.networks.isEmpty { plan.release.append(t.id) }
            let key = "\(t.serviceID)/\(t.slot)/\(t.slot == 0 ? t.nodeID : "")"
            history[key, default: []].append(t)
        }
        for (_, old) in history.sorted(by: { $0.key < $1.key }) where old.count > retentionLimit {
            let newestFirst = old.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
            plan.delete.append(contentsOf: newestFirst.dropFirst(retentionLimit).map(\.id))
        }
        plan.release.sort()
        plan.delete.sort()
        return plan
    }
}
