import Foundation

/// Docker's `ServiceStatus` (`service ls` REPLICAS).
public struct ServiceStatus: Codable, Sendable, Equatable {
    public var runningTasks: Int
    public var desiredTasks: Int
    public var completedTasks: Int
}

extension ClusterSnapshot {
    /// Where each service is in `services`, by ID. A service is a large value (its whole spec): a
    /// dictionary of copies, or a sorted copy of the array, cost a pass more than all its other work
    /// together at 10,000 services (profiled: memmove, copy and destroy of services), so passes look
    /// services up through this and copy only the ones they work on.
    public func serviceIndex() -> [String: Int] {
        var index: [String: Int] = [:]
        index.reserveCapacity(services.count)
        for i in services.indices where index[services[i].id] == nil { index[services[i].id] = i }
        return index
    }

    /// The positions of `services` in ID order (a store's lists are in no particular order), without
    /// copying a service.
    public func serviceOrder() -> [Int] {
        let ordered = zip(services.indices.dropLast(), services.indices.dropFirst()).allSatisfy { services[$0].id < services[$1].id }
        return ordered ? Array(services.indices) : services.indices.sorted { services[$0].id < services[$1].id }
    }

    /// Counted like swarmkit: desired = replicas (replicated) or tasks meant to run (global); running = tasks
    /// observed running.
    public func status(ofService id: String) -> ServiceStatus? {
        guard let s = services.first(where: { $0.id == id }) else { return nil }
        var mine = tasks.filter { $0.serviceID == id }
        if s.spec.mode.isJob {
            // A job counts its current iteration: desired is what may still run now (dockerd's
            // min(MaxConcurrent, TotalCompletions - completed) for a replicated job).
            mine = mine.filter { $0.specVersion == s.specVersion }
            let running = mine.filter { $0.status.state == .running }.count
            let completed = mine.filter { $0.status.state == .complete }.count
            let desired: Int
            if case .replicatedJob(let concurrent, let total) = s.spec.mode {
                desired = max(0, min(concurrent, total - completed))
            } else {
                desired = mine.filter { $0.desiredState == .running }.count
            }
            return ServiceStatus(runningTasks: running, desiredTasks: desired, completedTasks: completed)
        }
        let running = mine.filter { $0.status.state == .running && $0.desiredState == .running }.count
        let desired = s.spec.mode.replicas ?? mine.filter { $0.desiredState == .running }.count
        let completed = mine.filter { $0.status.state == .complete }.count
        return ServiceStatus(runningTasks: running, desiredTasks: desired, completedTasks: completed)
    }

    /// The `_up-to-date` task filter: made from the service's current spec.
    public func isUpToDate(_ task: ClusterTask) -> Bool {
        services.first { $0.id == task.serviceID }.map { $0.specVersion == task.specVersion } ?? false
    }

    /// What keeps a network from being removed: services that name it, and tasks attached to it that are
    /// still meant to run and have not ended (swarmkit's `removeNetwork` rule). A task being stopped (its
    /// service removed, or updated off the network) does not hold it; its address goes with the network.
    /// Empty means `network rm` may proceed.
    public func users(ofNetwork id: String) -> (services: [String], tasks: [String]) {
        let s = services.filter { svc in
            svc.spec.task.networks.contains { $0.target == id } || svc.endpoint.virtualIPs.contains { $0.networkID == id }
        }.map(\.id)
        let t = tasks.filter { task in
            task.isActive && !task.status.state.isTerminal && task.networks.contains { $0.networkID == id }
        }.map(\.id)
        return (s, t)
    }
}
