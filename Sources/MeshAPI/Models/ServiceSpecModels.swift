import Foundation

/// `POST /services/create` and `/services/{id}/update` bodies, and `Service.Spec`.
/// Only the fields the CLI sends or reads; the rest of a Docker spec is ignored on input.
public struct ServiceSpec: Codable, Sendable, Equatable {
    public var Name: String?
    public var Labels: [String: String]?
    public var TaskTemplate: TaskSpec
    public var Mode: ServiceMode?
    public var UpdateConfig: UpdateConfig?
    public var RollbackConfig: UpdateConfig?
    public var EndpointSpec: EndpointSpec?

    public init(
        Name: String? = nil, Labels: [String: String]? = nil, TaskTemplate: TaskSpec = TaskSpec(), Mode: ServiceMode? = nil,
        UpdateConfig: UpdateConfig? = nil, RollbackConfig: UpdateConfig? = nil, EndpointSpec: EndpointSpec? = nil
    ) {
        self.Name = Name
        self.Labels = Labels
        self.TaskTemplate = TaskTemplate
        self.Mode = Mode
        self.UpdateConfig = UpdateConfig
        self.RollbackConfig = RollbackConfig
        self.EndpointSpec = EndpointSpec
    }
}

public struct TaskSpec: Codable, Sendable, Equatable {
    /// Always present in what meshd sends: `service ps` dereferences it.
    public var ContainerSpec: ContainerSpec?
    public var Resources: ResourceRequirements?
    public var RestartPolicy: RestartPolicy?
    public var Placement: Placement?
    public var Networks: [NetworkAttachmentConfig]?
    public var LogDriver: Driver?
    public var ForceUpdate: UInt64?
    public var Runtime: String?

    public init(
        ContainerSpec: ContainerSpec? = nil, Resources: ResourceRequirements? = nil, RestartPolicy: RestartPolicy? = nil,
        Placement: Placement? = nil, Networks: [NetworkAttachmentConfig]? = nil, LogDriver: Driver? = nil, ForceUpdate: UInt64? = nil
    ) {
        self.ContainerSpec = ContainerSpec
        self.Resources = Resources
        self.RestartPolicy = RestartPolicy
        self.Placement = Placement
        self.Networks = Networks
        self.LogDriver = LogDriver
        self.ForceUpdate = ForceUpdate
    }
}

public struct ContainerSpec: Codable, Sendable, Equatable {
    public var Image: String
    public var Labels: [String: String]?
    public var Command: [String]?
    public var Args: [String]?
    public var Hostname: String?
    public var Env: [String]?
    public var Dir: String?
    public var User: String?
    public var Groups: [String]?
    public var TTY: Bool?
    public var OpenStdin: Bool?
    public var ReadOnly: Bool?
    public var Init: Bool?
    public var StopSignal: String?
    public var StopGracePeriod: Nanoseconds?
    public var Hosts: [String]?
    public var DNSConfig: DNSConfig?

    public struct DNSConfig: Codable, Sendable, Equatable {
        public var Nameservers: [String]?
        public var Search: [String]?
        public var Options: [String]?
        public init() {}
    }

    public init(Image: String, Args: [String]? = nil, Env: [String]? = nil) {
        self.Image = Image
        self.Args = Args
        self.Env = Env
    }
}

public struct ResourceRequirements: Codable, Sendable, Equatable {
    public var Limits: Limit?
    public var Reservations: Limit?
    public struct Limit: Codable, Sendable, Equatable {
        public var NanoCPUs: Int64?
        public var MemoryBytes: Int64?
        public var Pids: Int64?
        public init() {}
    }
    public init() {}
}

public struct RestartPolicy: Codable, Sendable, Equatable {
    /// none, on-failure, any
    public var Condition: String?
    public var Delay: Nanoseconds?
    public var MaxAttempts: UInt64?
    public var Window: Nanoseconds?
    public init(Condition: String? = nil, Delay: Nanoseconds? = nil, MaxAttempts: UInt64? = nil, Window: Nanoseconds? = nil) {
        self.Condition = Condition
        self.Delay = Delay
        self.MaxAttempts = MaxAttempts
        self.Window = Window
    }
}

public struct Placement: Codable, Sendable, Equatable {
    public var Constraints: [String]?
    public var Preferences: [PlacementPreference]?
    public var MaxReplicas: UInt64?
    public var Platforms: [Node.Platform]?

    public struct PlacementPreference: Codable, Sendable, Equatable {
        public var Spread: Spread?
        public struct Spread: Codable, Sendable, Equatable {
            public var SpreadDescriptor: String
        }
    }
    public init(Constraints: [String]? = nil, MaxReplicas: UInt64? = nil) {
        self.Constraints = Constraints
        self.MaxReplicas = MaxReplicas
    }
}

public struct NetworkAttachmentConfig: Codable, Sendable, Equatable {
    /// A network ID once created; the CLI may send a name (stack deploy does) and meshd resolves it.
    public var Target: String
    public var Aliases: [String]?
    public var DriverOpts: [String: String]?
    public init(Target: String, Aliases: [String]? = nil) {
        self.Target = Target
        self.Aliases = Aliases
    }
}

/// Exactly one member is set. `Replicated.Replicas` is always present in what meshd sends.
public struct ServiceMode: Codable, Sendable, Equatable {
    public var Replicated: Replicated?
    public var Global: Empty?
    public var ReplicatedJob: ReplicatedJob?
    public var GlobalJob: Empty?

    public struct Replicated: Codable, Sendable, Equatable {
        public var Replicas: UInt64?
        public init(Replicas: UInt64? = nil) { self.Replicas = Replicas }
    }
    public struct ReplicatedJob: Codable, Sendable, Equatable {
        public var MaxConcurrent: UInt64?
        public var TotalCompletions: UInt64?
    }
    public struct Empty: Codable, Sendable, Equatable { public init() {} }

    public static func replicated(_ n: UInt64) -> ServiceMode { ServiceMode(Replicated: .init(Replicas: n)) }
    public static var global: ServiceMode { ServiceMode(Global: Empty()) }

    public init(Replicated: Replicated? = nil, Global: Empty? = nil) {
        self.Replicated = Replicated
        self.Global = Global
    }

    /// `replicated`, `global`, `replicated-job`, `global-job`: the mode filter's and `service ls`'s names.
    public var name: String {
        if self.Global != nil { return "global" }
        if self.ReplicatedJob != nil { return "replicated-job" }
        if self.GlobalJob != nil { return "global-job" }
        return "replicated"
    }

    var memberCount: Int {
        [self.Replicated != nil, self.Global != nil, self.ReplicatedJob != nil, self.GlobalJob != nil].filter { $0 }.count
    }
}

public struct UpdateConfig: Codable, Sendable, Equatable {
    public var Parallelism: UInt64?
    public var Delay: Nanoseconds?
    /// pause, continue, rollback
    public var FailureAction: String?
    public var Monitor: Nanoseconds?
    public var MaxFailureRatio: Double?
    /// stop-first, start-first ("" means stop-first)
    public var Order: String?
    public init(
        Parallelism: UInt64? = nil, Delay: Nanoseconds? = nil, FailureAction: String? = nil, Monitor: Nanoseconds? = nil,
        MaxFailureRatio: Double? = nil, Order: String? = nil
    ) {
        self.Parallelism = Parallelism
        self.Delay = Delay
        self.FailureAction = FailureAction
        self.Monitor = Monitor
        self.MaxFailureRatio = MaxFailureRatio
        self.Order = Order
    }
}

public struct EndpointSpec: Codable, Sendable, Equatable {
    /// vip, dnsrr
    public var Mode: String?
    public var Ports: [PortConfig]?
    public init(Mode: String? = nil, Ports: [PortConfig]? = nil) {
        self.Mode = Mode
        self.Ports = Ports
    }
}

public struct PortConfig: Codable, Sendable, Equatable, Hashable {
    public var Name: String?
    /// tcp, udp, sctp
    public var `Protocol`: String?
    public var TargetPort: UInt32
    public var PublishedPort: UInt32?
    /// ingress, host
    public var PublishMode: String?
    public init(Protocol: String? = "tcp", TargetPort: UInt32, PublishedPort: UInt32? = nil, PublishMode: String? = "ingress") {
        self.Protocol = `Protocol`
        self.TargetPort = TargetPort
        self.PublishedPort = PublishedPort
        self.PublishMode = PublishMode
    }
}

extension PortConfig {
    enum CodingKeys: String, CodingKey { case Name, `Protocol`, TargetPort, PublishedPort, PublishMode }

    /// Go omits a zero TargetPort (`omitempty`), so it may be absent.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        Name = try c.decodeIfPresent(String.self, forKey: .Name)
        self.Protocol = try c.decodeIfPresent(String.self, forKey: .Protocol)
        TargetPort = try c.decodeIfPresent(UInt32.self, forKey: .TargetPort) ?? 0
        PublishedPort = try c.decodeIfPresent(UInt32.self, forKey: .PublishedPort)
        PublishMode = try c.decodeIfPresent(String.self, forKey: .PublishMode)
    }
}
