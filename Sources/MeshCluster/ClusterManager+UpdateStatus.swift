import Foundation

extension ClusterManager {
    /// `service update` as swarmkit's control API answers it: besides `updateService`, a finished update
    /// status (`completed`, `rollback_completed`) is cleared even when the change replaces no task (a scale).
    /// The docker CLI's progress loop returns at once on `completed`, so a stale one would end `docker
    /// service scale` before the new replicas run. A status that belongs to a rollout still in progress or
    /// paused is kept: the rollout owns it.
    public mutating func updateServiceClearingFinishedStatus(
        _ reference: String, version: UInt64, spec: ServiceSpec,
        now: Date = Date()
    ) throws(ClusterError) -> ClusterService {
        var service = try updateService(reference, version: version, spec: spec, now: now)
        guard service.rollout == nil, let status = service.updateStatus,
            status.state == .completed || status.state == .rollbackCompleted
        else { return service }
        service.updateStatus = nil
        return try store.update(service)
    }
}
