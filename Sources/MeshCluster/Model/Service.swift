import Foundation

/// Docker's `UpdateStatus`, which drives the CLI's progress display.
public struct UpdateStatus: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        case updating, paused, completed
        case rollbackStarted = "rollback_started", rollbackPaused = "rollback_paused"
        case rollbackCompleted = "rollback_completed"
    }
    public var state: State
    public var startedAt: Date?
    public var completedAt: Date?
    public var message: String
    public init(state: State, startedAt: Date? = nil, completedAt: Date? = nil, message: String = "") {
        self.state = state
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.message = message
    }
}

public struct VirtualIP: Codable, Sendable, Equatable {
    public var networkID: String
    /// `a.b.c.d/len`.
    public var addr: String
    public init(networkID: String, addr: String) {
        self.networkID = networkID
        self.addr = addr
    }
}

/// What the allocator resolved for the endpoint: ports with automatic published ports filled in, and VIPs.
public struct ServiceEndpoint: Codable, Sendable, Equatable {
    public var ports: [PortConfig]
    public var virtualIPs: [VirtualIP]
    public init(ports: [PortConfig] = [], virtualIPs: [VirtualIP] = []) {
        self.ports = ports
        self.virtualIPs = virtualIPs
    }
}

/// Progress of a rolling update or rollback, kept in the service so a manager restart resumes it.
public struct Rollout: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case update, rollback }
    public var kind: Kind
    /// The service `specVersion` being rolled out.
    public var specVersion: UInt64
    /// New tasks of the current batch, watched until they have run for the monitor window.
    public var inFlight: [String]
    /// Updated tasks that run but have not yet run for the monitor window; a failure among them counts.
    public var watching: [String]
    /// No new batch starts before this time (the update delay after the last batch).
    public var nextBatchAt: Date?
    public var failures: Int
    /// Paused on a failure; a new `service update` replaces the rollout.
    public var paused: Bool
    public init(kind: Kind, specVersion: UInt64) {
        self.kind = kind
        self.specVersion = specVersion
        self.inFlight = []
        self.watching = []
        self.nextBatchAt = nil
        self.failures = 0
        self.paused = false
    }
}

/// A service as the manager stores it (Docker's `Service`).
public struct ClusterService: Codable, Sendable, Equatable, Identifiable {
    public var id: String
    public var version: UInt64
    public var createdAt: Date
    public var updatedAt: Date
    public var spec: ServiceSpec
    public var previousSpec: ServiceSpec?
    /// Bumped whenever the spec changes in a way that replaces tasks; tasks carry the value they were made from.
    public var specVersion: UInt64
    public var endpoint: ServiceEndpoint
    public var updateStatus: UpdateStatus?
    public var rollout: Rollout?
    /// When the job's current iteration (tasks of `specVersion`) began: its create or last update.
    /// nil for services that are not jobs.
    public var jobStartedAt: Date?

    public init(id: String, spec: ServiceSpec, now: Date) {
        self.id = id
        self.version = 0
        self.createdAt = now
        self.updatedAt = now
        self.spec = spec
        self.previousSpec = nil
        self.specVersion = 1
        self.endpoint = ServiceEndpoint()
        self.updateStatus = nil
        self.rollout = nil
        self.jobStartedAt = spec.mode.isJob ? now : nil
    }

    /// `service update`: keeps the old spec for rollback; a change that replaces tasks starts a new rolling
    /// update (the orchestrator sets `updating`), a replicas-only change does not (as in swarmkit).
    public mutating func update(to newSpec: ServiceSpec, now: Date) throws(ClusterError) {
        try newSpec.validate()
        try checkSameIdentity(newSpec)
        let replaces = newSpec.replacesTasks(of: spec)
        previousSpec = spec
        spec = newSpec
        updatedAt = now
        // Any update of a job runs it again (swarmkit's new JobIteration): no rolling update, a new
        // iteration whose tasks replace the old ones.
        if spec.mode.isJob {
            specVersion += 1
            jobStartedAt = now
            return
        }
        if replaces {
            specVersion += 1
            updateStatus = nil
            rollout = Rollout(kind: .update, specVersion: specVersion)
        }
    }

    /// swarmkit's `UpdateService` refuses a rename and a mode change (both Unimplemented) before it looks
    /// at the version, so the manager calls this first too.
    public func checkSameIdentity(_ newSpec: ServiceSpec) throws(ClusterError) {
        guard newSpec.name == spec.name else { throw .unimplemented("renaming services is not supported") }
        guard newSpec.mode.kind == spec.mode.kind else { throw .unimplemented("service mode change is not allowed") }
    }

    /// `service rollback` (or `update --rollback`): back to the previous spec, tracked as a rollback.
    public mutating func rollback(now: Date, message: String = "manually requested rollback") throws(ClusterError) {
        guard let previous = previousSpec else {
            throw .failedPrecondition("service \(id) does not have a previous spec")
        }
        // The same rules as create and update: a spec stored before a rule existed is not restored past it.
        try previous.validate()
        let replaces = previous.replacesTasks(of: spec) && !spec.mode.isJob
        previousSpec = spec
        spec = previous
        updatedAt = now
        if spec.mode.isJob {
            specVersion += 1
            jobStartedAt = now
        }
        if replaces {
            specVersion += 1
            rollout = Rollout(kind: .rollback, specVersion: specVersion)
        }
        updateStatus = UpdateStatus(
            state: replaces ? .rollbackStarted : .rollbackCompleted, startedAt: now,
            completedAt: replaces ? nil : now, message: message)
    }

    /// Docker's default when `UpdateConfig`/`RollbackConfig` is absent.
    public var effectiveUpdateConfig: UpdateConfig { spec.update ?? UpdateConfig() }
    public var effectiveRollbackConfig: UpdateConfig { spec.rollback ?? UpdateConfig() }
    public var effectiveRestartPolicy: RestartPolicy { spec.task.restartPolicy ?? RestartPolicy() }
}
