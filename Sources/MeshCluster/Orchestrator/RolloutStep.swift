import Foundation

/// Rolling updates and rollbacks, as swarmkit's updater does them but as a step over values:
/// - a batch of `parallelism` units (slots or nodes; 0 = all) with old-spec tasks is replaced at a time;
///   stop-first shuts the old task and adds the new one as desired `ready` (started by the hand-over once the
///   old one stopped); start-first adds the new one running and retires the old one when it runs;
/// - the next batch starts `delay` after every task of the batch runs;
/// - a new task that fails before it has run for `monitor` counts as a failure; above `maxFailureRatio` the
///   failure action applies: pause (`paused`), continue, or rollback (`rollback_started` with the previous spec);
/// - `UpdateStatus` follows Docker: `updating` → `completed`, `rollback_started` → `rollback_completed`.
extension ServiceWork {
    /// A new task that ended on its own (not because it was shut down) failed the update.
    func failedUpdate(_ t: ClusterTask) -> Bool {
        switch t.status.state {
        case .failed, .rejected, .orphaned: true
        case .complete: true
        case .shutdown: t.desiredState <= .running
        default: false
        }
    }

    mutating func roll<G: RandomNumberGenerator>(ids: inout G) {
        let activeDirty = tasks.values.contains { $0.isActive && isDirty($0) }
        if service.rollout == nil {
            let stopped = [.paused, .rollbackPaused].contains(service.updateStatus?.state)
            guard activeDirty, !stopped else { return }
            service.rollout = Rollout(kind: .update, specVersion: service.specVersion)
        }
        guard var r = service.rollout, !r.paused else { return }
        r.specVersion = service.specVersion
        let config = r.kind == .rollback ? service.effectiveRollbackConfig : service.effectiveUpdateConfig
        if service.updateStatus == nil {
            service.updateStatus =
                r.kind == .rollback
                ? UpdateStatus(state: .rollbackStarted, startedAt: now, message: "rollback in progress")
                : UpdateStatus(state: .updating, startedAt: now, message: "update in progress")
        }

        // Watch the batch and the monitor window.
        let monitor = Double(config.monitor) / 1e9
        var failed: [String] = []
        let batchWasRunning = !r.inFlight.isEmpty
        var inFlight: [String] = []
        var watching = r.watching
        for id in r.inFlight {
            guard let t = tasks[id] else { continue }
            if failedUpdate(t) {
                failed.append(id)
                continue
            }
            if t.desiredState > .running { continue }
            if t.status.state == .running { watching.append(id) } else { inFlight.append(id) }
        }
        var stillWatching: [String] = []
        for id in watching {
            guard let t = tasks[id] else { continue }
            if failedUpdate(t) {
                failed.append(id)
                continue
            }
            if t.desiredState > .running { continue }
            let until = t.status.timestamp.addingTimeInterval(monitor)
            if t.status.state == .running, now >= until { continue }
            stillWatching.append(id)
            if t.status.state == .running { wake(at: until) }
        }
        r.inFlight = inFlight
        r.watching = stillWatching
        if batchWasRunning, inFlight.isEmpty {
            r.nextBatchAt = now.addingTimeInterval(Double(config.delay) / 1e9)
        }

        if let first = failed.first {
            r.failures += failed.count
            let units = max(1, Set(tasks.values.filter(\.isActive).map(unit)).count)
            if Double(r.failures) / Double(units) > config.maxFailureRatio {
                let what = r.kind == .rollback ? "rollback" : "update"
                switch config.failureAction {
                case .pause:
                    r.paused = true
                    service.rollout = r
                    service.updateStatus = UpdateStatus(
                        state: r.kind == .rollback ? .rollbackPaused : .paused,
                        startedAt: service.updateStatus?.startedAt, completedAt: nil,
                        message: "\(what) paused due to failure or early termination of task \(first)")
                    return
                case .continue:
                    break
                case .rollback:
                    if r.kind == .update, service.previousSpec != nil {
                        do {
                            try service.rollback(
                                now: now, message: "update rolled back due to failure or early termination of task \(first)")
                        } catch {
                            // Unreachable: the previous spec was checked above.
                        }
                        return
                    }
                    r.paused = true
                    service.rollout = r
                    service.updateStatus = UpdateStatus(
                        state: r.kind == .rollback ? .rollbackPaused : .paused,
                        startedAt: service.updateStatus?.startedAt,
                        message: "\(what) paused due to failure or early termination of task \(first)")
                    return
                }
            }
        }

        // Units still on the old spec, and units part-way through their hand-over.
        var units: [Unit: (dirty: Bool, current: Bool)] = [:]
        for t in tasks.values where t.isActive {
            var u = units[unit(t)] ?? (false, false)
            if isDirty(t) { u.dirty = true } else { u.current = true }
            units[unit(t)] = u
        }
        let todo = units.filter { $0.value.dirty && !$0.value.current }.keys.sorted()
        let handingOver = units.contains { $0.value.dirty && $0.value.current }

        if r.inFlight.isEmpty, todo.isEmpty, !handingOver, r.watching.isEmpty {
            service.rollout = nil
            service.updateStatus = UpdateStatus(
                state: r.kind == .rollback ? .rollbackCompleted : .completed,
                startedAt: service.updateStatus?.startedAt, completedAt: now,
                message: r.kind == .rollback ? "rollback completed" : "update completed")
            return
        }
        if r.inFlight.isEmpty, !todo.isEmpty {
            if let gate = r.nextBatchAt, now < gate {
                wake(at: gate)
            } else {
                let batch = config.parallelism == 0 ? todo[...] : todo.prefix(config.parallelism)
                for u in batch {
                    let old = tasks.values.filter { $0.isActive && isDirty($0) && unit($0) == u }.sorted { $0.id < $1.id }
                    if isGlobal, let node = nodes[u.node], !eligible(node) {
                        for o in old { shutDown(o, message: "node no longer eligible") }
                        continue
                    }
                    let new: ClusterTask
                    if config.order == .stopFirst {
                        for o in old { shutDown(o, message: "replaced by an updated task") }
                        new = create(unit: u, desired: .ready, ids: &ids)
                    } else {
                        new = create(unit: u, desired: .running, ids: &ids)
                    }
                    r.inFlight.append(new.id)
                }
                r.nextBatchAt = nil
            }
        }
        service.rollout = r
    }
}
