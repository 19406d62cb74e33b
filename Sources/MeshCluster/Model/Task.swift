import Foundation

/// Docker's task states in lifecycle order; the order is what `<` compares (a task only moves forward).
public enum TaskState: String, Codable, Sendable, CaseIterable, Comparable {
    case new, allocated, pending, assigned, accepted, preparing, ready, starting, running
    case complete, shutdown, failed, rejected, remove, orphaned

    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: TaskState, b: TaskState) -> Bool { a.rank < b.rank }

    /// Past running: the task will not run (again).
    public var isTerminal: Bool { self > .running }
}

/// One address of a task on one network.
public struct NetworkAttachment: Codable, Sendable, Equatable {
    public var networkID: String
    /// `a.b.c.d/len`, the length being the network's prefix length (as Docker prints it).
    public var address: String
    public init(networkID: String, address: String) {
        self.networkID = networkID
        self.address = address
    }
}

public struct TaskStatus: Codable, Sendable, Equatable {
    public var state: TaskState
    public var timestamp: Date
    public var message: String
    /// Why the task failed or cannot be scheduled; shown in `service ps` ERROR.
    public var err: String
    public init(state: TaskState, timestamp: Date, message: String = "", err: String = "") {
        self.state = state
        self.timestamp = timestamp
        self.message = message
        self.err = err
    }
}

/// One instance of a service on one node (Docker's `Task`).
public struct ClusterTask: Codable, Sendable, Equatable, Identifiable {
    public var id: String
    public var version: UInt64
    public var createdAt: Date
    public var updatedAt: Date
    public var serviceID: String
    /// 1...N for replicated services, 0 for global ones (which are keyed by node).
    public var slot: Int
    /// Empty until scheduled; preset for global tasks.
    public var nodeID: String
    public var desiredState: TaskState
    public var status: TaskStatus
    /// The task template it runs (the CLI reads `Spec.ContainerSpec`).
    public var spec: TaskSpec
    /// The service's `specVersion` this task was made from; older means dirty (not `_up-to-date`).
    public var specVersion: UInt64
    /// Restarts of this slot/node in a row that led to this task (0 for the first).
    public var attempt: Int
    public var networks: [NetworkAttachment]
    /// Ports published in host mode (for `service ps` PORTS).
    public var hostPorts: [PortConfig]
    /// A job's task: the iteration (the service's `specVersion`) it belongs to; nil otherwise.
    public var jobIteration: UInt64?

    public init(
        id: String, serviceID: String, slot: Int, nodeID: String = "", spec: TaskSpec, specVersion: UInt64,
        desiredState: TaskState = .running, attempt: Int = 0, now: Date
    ) {
        self.id = id
        self.version = 0
        self.createdAt = now
        self.updatedAt = now
        self.serviceID = serviceID
        self.slot = slot
        self.nodeID = nodeID
        self.desiredState = desiredState
        self.status = TaskStatus(state: .new, timestamp: now, message: "created")
        self.spec = spec
        self.specVersion = specVersion
        self.attempt = attempt
        self.networks = []
        self.hostPorts = []
    }

    /// Meant to run or to start soon (desired `ready` or `running`).
    public var isActive: Bool { desiredState <= .running }
}
