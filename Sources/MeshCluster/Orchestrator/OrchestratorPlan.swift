import Foundation

/// What one orchestrator pass wants written: new tasks, changed tasks and services, and when to run again
/// (the earliest restart delay, update delay or monitor window that is still running).
public struct OrchestratorPlan: Sendable, Equatable {
    public var createdTasks: [ClusterTask] = []
    public var updatedTasks: [ClusterTask] = []
    public var updatedServices: [ClusterService] = []
    /// Reconcile again at this time even if nothing else changes.
    public var nextWake: Date?

    public init() {}

    public var isEmpty: Bool { createdTasks.isEmpty && updatedTasks.isEmpty && updatedServices.isEmpty }

    mutating func wake(at date: Date) {
        if nextWake == nil || date < nextWake! { nextWake = date }
    }
}

extension ClusterStore {
    /// Writes a plan in one transaction. Objects changed since the snapshot the plan was computed from make
    /// it fail with `update out of sequence` and nothing is written; reconcile again from a fresh snapshot.
    public func apply(_ plan: OrchestratorPlan) throws(ClusterError) {
        try write { tx throws(ClusterError) in
            for s in plan.updatedServices { try tx.update(s) }
            for t in plan.updatedTasks { try tx.update(t) }
            for t in plan.createdTasks { try tx.create(t) }
        }
    }

    /// Writes the scheduler's decisions the same way.
    public func apply(scheduled tasks: [ClusterTask]) throws(ClusterError) {
        try write { tx throws(ClusterError) in
            for t in tasks { try tx.update(t) }
        }
    }
}
