import Foundation

/// `POST /services/create` and `/services/{id}/update` bodies, and `Service.Spec`: Docker Engine API
/// v1.47+ `ServiceSpec` with every field of its `TaskSpec` and `ContainerSpec`, so a spec a client sent
/// comes back from inspect as it was sent. Unknown keys are ignored as dockerd ignores them; a known
/// field meshd cannot honour is refused by name in `ServiceSpecNormalizer`, never dropped.
public struct ServiceSpec: Codable, Sendable, Equatable {
    public var Name: String?
    public var Labels: [String: String]?
    public var TaskTemplate: TaskSpec
    public var Mode: ServiceMode?
    public var UpdateConfig: UpdateConfig?
    public var RollbackConfig: UpdateConfig?
    /// Deprecated in Docker (use `TaskTemplate.Networks`): honoured when the task template names none, shown back here.
    public var Networks: [NetworkAttachmentConfig]?
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

/// Any JSON value, kept only to know that a client sent it (fields meshd refuses by name).
public struct PresentValue: Codable, Sendable, Equatable {
    public init() {}
    public init(from decoder: Decoder) throws {}
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode([String: String]())
    }
}

/// Where a secret or config appears in the container and with which owner and mode.
public struct FileTarget: Codable, Sendable, Equatable {
    public var Name: String?
    public var UID: String?
    public var GID: String?
    public var Mode: UInt32?
    public init(Name: String? = nil, UID: String? = nil, GID: String? = nil, Mode: UInt32? = nil) {
        self.Name = Name
        self.UID = UID
        self.GID = GID
        self.Mode = Mode
    }
}

public struct SecretReference: Codable, Sendable, Equatable {
    public var File: FileTarget?
    public var SecretID: String?
    public var SecretName: String?
    public init(File: FileTarget? = nil, SecretID: String? = nil, SecretName: String? = nil) {
        self.File = File
        self.SecretID = SecretID
        self.SecretName = SecretName
    }
}

public struct ConfigReference: Codable, Sendable, Equatable {
    public var File: FileTarget?
    /// A config used by the runtime itself (a Windows credential spec): refused by name.
    public var Runtime: PresentValue?
    public var ConfigID: String?
    public var ConfigName: String?
    public init(File: FileTarget? = nil, ConfigID: String? = nil, ConfigName: String? = nil) {
        self.File = File
        self.ConfigID = ConfigID
        self.ConfigName = ConfigName
    }
}

public struct TaskSpec: Codable, Sendable, Equatable {
    /// Always present in what meshd sends: `service ps` dereferences it.
    public var ContainerSpec: ContainerSpec?
    /// Plugin and network-attachment tasks: refused (meshd runs container tasks only).
    public var PluginSpec: PresentValue?
    public var NetworkAttachmentSpec: PresentValue?
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
    public var Privileges: Privileges?
    public var Init: Bool?
    public var StopSignal: String?
    public var TTY: Bool?
    public var OpenStdin: Bool?
    public var ReadOnly: Bool?
    public var Mounts: [Mount]?
    public var StopGracePeriod: Nanoseconds?
    /// Go's field is `Healthcheck` (the API reference spells it `HealthCheck`; keys fold either way).
    public var Healthcheck: HealthConfig?
    public var Hosts: [String]?
    public var DNSConfig: DNSConfig?
    /// Files from the swarm's secrets and configs (mounted into containers; a host-process task is refused them).
    public var Secrets: [SecretReference]?
    public var Configs: [ConfigReference]?
    public var Isolation: String?
    public var Sysctls: [String: String]?
    public var CapabilityAdd: [String]?
    public var CapabilityDrop: [String]?
    public var Ulimits: [Ulimit]?
    public var OomScoreAdj: Int64?

    public struct DNSConfig: Codable, Sendable, Equatable {
        public var Nameservers: [String]?
        public var Search: [String]?
        public var Options: [String]?
        public init(Nameservers: [String]? = nil, Search: [String]? = nil, Options: [String]? = nil) {
            self.Nameservers = Nameservers
            self.Search = Search
            self.Options = Options
        }
    }

    public struct HealthConfig: Codable, Sendable, Equatable {
        public var Test: [String]?
        public var Interval: Nanoseconds?
        public var Timeout: Nanoseconds?
        public var StartPeriod: Nanoseconds?
        public var StartInterval: Nanoseconds?
        public var Retries: Int64?
        public init() {}
    }

    public struct Privileges: Codable, Sendable, Equatable {
        public var CredentialSpec: CredentialSpec?
        public var SELinuxContext: SELinuxContext?
        public var Seccomp: Seccomp?
        public var AppArmor: AppArmor?
        public var NoNewPrivileges: Bool?
        public struct CredentialSpec: Codable, Sendable, Equatable {
            public init(Config: String? = nil, File: String? = nil, Registry: String? = nil) {
                self.Config = Config
                self.File = File
                self.Registry = Registry
            }
            public var Config: String?
            public var File: String?
            public var Registry: String?
        }
        public struct SELinuxContext: Codable, Sendable, Equatable {
            public init(Disable: Bool? = nil, User: String? = nil, Role: String? = nil, Type: String? = nil, Level: String? = nil) {
                self.Disable = Disable
                self.User = User
                self.Role = Role
                self.`Type` = `Type`
                self.Level = Level
            }
            public var Disable: Bool?
            public var User: String?
            public var Role: String?
            public var `Type`: String?
            public var Level: String?
        }
        /// `Profile` is Go `[]byte`: base64 text in JSON, kept as text.
        public struct Seccomp: Codable, Sendable, Equatable {
            public init(Mode: String? = nil, Profile: String? = nil) {
                self.Mode = Mode
                self.Profile = Profile
            }
            public var Mode: String?
            public var Profile: String?
        }
        public struct AppArmor: Codable, Sendable, Equatable {
            public init(Mode: String? = nil) {
                self.Mode = Mode
            }
            public var Mode: String?
        }
        public init() {}
    }

    public struct Mount: Codable, Sendable, Equatable {
        /// bind, volume, tmpfs, npipe, cluster, image
        public var `Type`: String?
        public var Source: String?
        public var Target: String?
        public var ReadOnly: Bool?
        public var Consistency: String?
        public var BindOptions: BindOptions?
        public var VolumeOptions: VolumeOptions?
        public var ImageOptions: ImageOptions?
        public var TmpfsOptions: TmpfsOptions?
        public struct BindOptions: Codable, Sendable, Equatable {
            public init(
                Propagation: String? = nil, NonRecursive: Bool? = nil, CreateMountpoint: Bool? = nil, ReadOnlyNonRecursive: Bool? = nil,
                ReadOnlyForceRecursive: Bool? = nil
            ) {
                self.Propagation = Propagation
                self.NonRecursive = NonRecursive
                self.CreateMountpoint = CreateMountpoint
                self.ReadOnlyNonRecursive = ReadOnlyNonRecursive
                self.ReadOnlyForceRecursive = ReadOnlyForceRecursive
            }
            public var Propagation: String?
            public var NonRecursive: Bool?
            public var CreateMountpoint: Bool?
            public var ReadOnlyNonRecursive: Bool?
            public var ReadOnlyForceRecursive: Bool?
        }
        public struct VolumeOptions: Codable, Sendable, Equatable {
            public init(NoCopy: Bool? = nil, Labels: [String: String]? = nil, DriverConfig: Driver? = nil, Subpath: String? = nil) {
                self.NoCopy = NoCopy
                self.Labels = Labels
                self.DriverConfig = DriverConfig
                self.Subpath = Subpath
            }
            public var NoCopy: Bool?
            public var Labels: [String: String]?
            public var DriverConfig: Driver?
            public var Subpath: String?
        }
        public struct ImageOptions: Codable, Sendable, Equatable {
            public init(Subpath: String? = nil) {
                self.Subpath = Subpath
            }
            public var Subpath: String?
        }
        public struct TmpfsOptions: Codable, Sendable, Equatable {
            public init(SizeBytes: Int64? = nil, Mode: UInt32? = nil, Options: [[String]]? = nil) {
                self.SizeBytes = SizeBytes
                self.Mode = Mode
                self.Options = Options
            }
            public var SizeBytes: Int64?
            public var Mode: UInt32?
            public var Options: [[String]]?
        }
        public init(Type: String? = nil, Source: String? = nil, Target: String? = nil) {
            self.`Type` = `Type`
            self.Source = Source
            self.Target = Target
        }
    }

    public struct Ulimit: Codable, Sendable, Equatable {
        public init(Name: String? = nil, Soft: Int64? = nil, Hard: Int64? = nil) {
            self.Name = Name
            self.Soft = Soft
            self.Hard = Hard
        }
        public var Name: String?
        public var Soft: Int64?
        public var Hard: Int64?
    }

    public init(Image: String, Args: [String]? = nil, Env: [String]? = nil) {
        self.Image = Image
        self.Args = Args
        self.Env = Env
    }
}

public struct ResourceRequirements: Codable, Sendable, Equatable {
    public var Limits: Limit?
    public var Reservations: Resources?
    public struct Limit: Codable, Sendable, Equatable {
        public var NanoCPUs: Int64?
        public var MemoryBytes: Int64?
        public var Pids: Int64?
        public init(NanoCPUs: Int64? = nil, MemoryBytes: Int64? = nil, Pids: Int64? = nil) {
            self.NanoCPUs = NanoCPUs
            self.MemoryBytes = MemoryBytes
            self.Pids = Pids
        }
    }
    public struct Resources: Codable, Sendable, Equatable {
        public var NanoCPUs: Int64?
        public var MemoryBytes: Int64?
        public var GenericResources: [GenericResource]?
        public init(NanoCPUs: Int64? = nil, MemoryBytes: Int64? = nil) {
            self.NanoCPUs = NanoCPUs
            self.MemoryBytes = MemoryBytes
        }
    }
    /// Exactly one member is set.
    public struct GenericResource: Codable, Sendable, Equatable {
        public var NamedResourceSpec: Named?
        public var DiscreteResourceSpec: Discrete?
        public init() {}
        public struct Named: Codable, Sendable, Equatable {
            public init(Kind: String? = nil, Value: String? = nil) {
                self.Kind = Kind
                self.Value = Value
            }
            public var Kind: String?
            public var Value: String?
        }
        public struct Discrete: Codable, Sendable, Equatable {
            public init(Kind: String? = nil, Value: Int64? = nil) {
                self.Kind = Kind
                self.Value = Value
            }
            public var Kind: String?
            public var Value: Int64?
        }
    }
    public init(Limits: Limit? = nil, Reservations: Resources? = nil) {
        self.Limits = Limits
        self.Reservations = Reservations
    }
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
        public init(Spread: Spread? = nil) { self.Spread = Spread }
        public struct Spread: Codable, Sendable, Equatable {
            public var SpreadDescriptor: String
            public init(SpreadDescriptor: String) { self.SpreadDescriptor = SpreadDescriptor }
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
        public init(MaxConcurrent: UInt64? = nil, TotalCompletions: UInt64? = nil) {
            self.MaxConcurrent = MaxConcurrent
            self.TotalCompletions = TotalCompletions
        }
    }
    public struct Empty: Codable, Sendable, Equatable { public init() {} }

    public static func replicated(_ n: UInt64) -> ServiceMode { ServiceMode(Replicated: .init(Replicas: n)) }
    public static var global: ServiceMode { ServiceMode(Global: Empty()) }

    public init(Replicated: Replicated? = nil, Global: Empty? = nil, ReplicatedJob: ReplicatedJob? = nil, GlobalJob: Empty? = nil) {
        self.Replicated = Replicated
        self.Global = Global
        self.ReplicatedJob = ReplicatedJob
        self.GlobalJob = GlobalJob
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
