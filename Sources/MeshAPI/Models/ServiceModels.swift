import Foundation

public struct Service: Codable, Sendable, Equatable {
    public var ID: String
    public var Version: ObjectVersion
    public var CreatedAt: Date
    public var UpdatedAt: Date
    public var Spec: ServiceSpec
    public var PreviousSpec: ServiceSpec?
    public var Endpoint: Endpoint?
    public var UpdateStatus: UpdateStatus?
    /// Only on `GET /services?status=true`.
    public var ServiceStatus: ServiceStatus?
    /// Jobs only (the CLI tells a job by it): the current iteration and when it began.
    public var JobStatus: JobStatus?

    public struct JobStatus: Codable, Sendable, Equatable {
        public var JobIteration: ObjectVersion
        public var LastExecution: Date?
        public init(JobIteration: ObjectVersion, LastExecution: Date? = nil) {
            self.JobIteration = JobIteration
            self.LastExecution = LastExecution
        }
    }

    public struct Endpoint: Codable, Sendable, Equatable {
        public var Spec: EndpointSpec?
        /// Resolved ports, auto-assigned published ports included; `service ls` PORTS reads these.
        public var Ports: [PortConfig]?
        public var VirtualIPs: [VirtualIP]?
        public init(Spec: EndpointSpec? = nil, Ports: [PortConfig]? = nil, VirtualIPs: [VirtualIP]? = nil) {
            self.Spec = Spec
            self.Ports = Ports
            self.VirtualIPs = VirtualIPs
        }
    }
    public struct VirtualIP: Codable, Sendable, Equatable {
        public var NetworkID: String
        /// CIDR form, e.g. `10.0.0.5/24`.
        public var Addr: String
        public init(NetworkID: String, Addr: String) {
            self.NetworkID = NetworkID
            self.Addr = Addr
        }
    }
    public struct UpdateStatus: Codable, Sendable, Equatable {
        /// updating, paused, completed, rollback_started, rollback_paused, rollback_completed
        public var State: String?
        public var StartedAt: Date?
        public var CompletedAt: Date?
        public var Message: String?
        public init(State: String? = nil, StartedAt: Date? = nil, CompletedAt: Date? = nil, Message: String? = nil) {
            self.State = State
            self.StartedAt = StartedAt
            self.CompletedAt = CompletedAt
            self.Message = Message
        }
    }
    public struct ServiceStatus: Codable, Sendable, Equatable {
        public var RunningTasks: UInt64
        public var DesiredTasks: UInt64
        public var CompletedTasks: UInt64
        public init(RunningTasks: UInt64, DesiredTasks: UInt64, CompletedTasks: UInt64 = 0) {
            self.RunningTasks = RunningTasks
            self.DesiredTasks = DesiredTasks
            self.CompletedTasks = CompletedTasks
        }
    }

    public init(
        ID: String, Version: ObjectVersion, CreatedAt: Date, UpdatedAt: Date, Spec: ServiceSpec, PreviousSpec: ServiceSpec? = nil,
        Endpoint: Endpoint? = nil, UpdateStatus: UpdateStatus? = nil, ServiceStatus: ServiceStatus? = nil
    ) {
        self.ID = ID
        self.Version = Version
        self.CreatedAt = CreatedAt
        self.UpdatedAt = UpdatedAt
        self.Spec = Spec
        self.PreviousSpec = PreviousSpec
        self.Endpoint = Endpoint
        self.UpdateStatus = UpdateStatus
        self.ServiceStatus = ServiceStatus
    }
}

/// 201 answer of `POST /services/create`.
public struct ServiceCreateResponse: Codable, Sendable, Equatable {
    public var ID: String
    public var Warnings: [String]?
    public init(ID: String, Warnings: [String]? = nil) {
        self.ID = ID
        self.Warnings = Warnings
    }
}

/// 200 answer of `POST /services/{id}/update`.
public struct ServiceUpdateResponse: Codable, Sendable, Equatable {
    public var Warnings: [String]?
    public init(Warnings: [String]? = nil) { self.Warnings = Warnings }

    enum CodingKeys: String, CodingKey { case Warnings }

    /// Go's `ServiceUpdateResponse.Warnings` has no `omitempty`: dockerd writes `{"Warnings":null}`,
    /// where the synthesized encoder would leave `{}`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let Warnings { try c.encode(Warnings, forKey: .Warnings) } else { try c.encodeNil(forKey: .Warnings) }
    }
}

public struct SwarmTask: Codable, Sendable, Equatable {
    public var ID: String
    public var Version: ObjectVersion
    public var CreatedAt: Date
    public var UpdatedAt: Date
    public var Name: String?
    public var Labels: [String: String]?
    public var Spec: TaskSpec
    public var ServiceID: String
    /// 1…N for replicated services, 0 for global ones.
    public var Slot: Int
    public var NodeID: String
    public var Status: TaskStatus
    /// new … running, complete, shutdown, failed, rejected, remove, orphaned
    public var DesiredState: String
    public var NetworksAttachments: [NetworkAttachment]?
    /// A job's task: the iteration it belongs to (`Service.JobStatus.JobIteration`).
    public var JobIteration: ObjectVersion?

    public struct TaskStatus: Codable, Sendable, Equatable {
        public var Timestamp: Date
        public var State: String
        public var Message: String?
        public var Err: String?
        public var ContainerStatus: ContainerStatus?
        public var PortStatus: PortStatus?
        public init(
            Timestamp: Date, State: String, Message: String? = nil, Err: String? = nil, ContainerStatus: ContainerStatus? = nil,
            PortStatus: PortStatus? = nil
        ) {
            self.Timestamp = Timestamp
            self.State = State
            self.Message = Message
            self.Err = Err
            self.ContainerStatus = ContainerStatus
            self.PortStatus = PortStatus
        }
    }
    public struct ContainerStatus: Codable, Sendable, Equatable {
        public var ContainerID: String?
        public var PID: Int?
        public var ExitCode: Int?
        public init(ContainerID: String? = nil, PID: Int? = nil, ExitCode: Int? = nil) {
            self.ContainerID = ContainerID
            self.PID = PID
            self.ExitCode = ExitCode
        }
    }
    public struct PortStatus: Codable, Sendable, Equatable {
        /// Host-mode published ports.
        public var Ports: [PortConfig]?
        public init(Ports: [PortConfig]? = nil) { self.Ports = Ports }
    }
    public struct NetworkAttachment: Codable, Sendable, Equatable {
        public var Network: AttachedNetwork
        public var Addresses: [String]
        public init(Network: AttachedNetwork, Addresses: [String]) {
            self.Network = Network
            self.Addresses = Addresses
        }
    }
    /// The swarm-side network object as tasks carry it (ID and name are what anyone reads).
    public struct AttachedNetwork: Codable, Sendable, Equatable {
        public var ID: String
        public var Spec: NameSpec
        public struct NameSpec: Codable, Sendable, Equatable {
            public var Name: String
            public init(Name: String) { self.Name = Name }
        }
        public init(ID: String, name: String) {
            self.ID = ID
            Spec = NameSpec(Name: name)
        }
    }

    public init(
        ID: String, Version: ObjectVersion, CreatedAt: Date, UpdatedAt: Date, Name: String? = nil, Labels: [String: String]? = nil,
        Spec: TaskSpec, ServiceID: String, Slot: Int, NodeID: String, Status: TaskStatus, DesiredState: String,
        NetworksAttachments: [NetworkAttachment]? = nil
    ) {
        self.ID = ID
        self.Version = Version
        self.CreatedAt = CreatedAt
        self.UpdatedAt = UpdatedAt
        self.Name = Name
        self.Labels = Labels
        self.Spec = Spec
        self.ServiceID = ServiceID
        self.Slot = Slot
        self.NodeID = NodeID
        self.Status = Status
        self.DesiredState = DesiredState
        self.NetworksAttachments = NetworksAttachments
    }

    /// Task states in the order progress bars and `service ps` use.
    public static let states = [
        "new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running",
        "complete", "shutdown", "failed", "rejected", "remove", "orphaned",
    ]
}
