import Foundation

/// The parts of Docker's `ContainerSpec` and `TaskSpec` beyond the process meshd starts. dockerd stores
/// what it was given and swarmkit hands it to the executor; meshd does the same, so `service inspect`
/// shows every field a client sent.
///
/// All recorded only: stored, returned by inspect, and part of the task template (so changing one
/// replaces tasks, as in swarmkit), but not acted on by the process driver, which runs a task as a process
/// in its own network, UTS and mount namespaces. The OCI runtime is where groups, tty, openStdin,
/// readOnly, initProcess (`Init`), stopSignal, stopGracePeriod, healthcheck, hosts, dnsConfig, privileges,
/// mounts, isolation, sysctls, capabilityAdd/Drop, ulimits and oomScoreAdj become enforced. What meshd
/// enforces of a task template is listed on `TaskSpec`.
public struct ContainerOptions: Codable, Sendable, Equatable {
    public var groups: [String] = []
    public var tty = false
    public var openStdin = false
    public var readOnly = false
    /// nil: not sent (dockerd keeps the difference between absent and false).
    public var initProcess: Bool?
    public var stopSignal = ""
    public var stopGracePeriod: Nanoseconds?
    public var healthcheck: Healthcheck?
    public var hosts: [String] = []
    public var dnsConfig: DNSConfig?
    public var privileges: Privileges?
    public var mounts: [Mount] = []
    public var isolation = ""
    public var sysctls: [String: String] = [:]
    public var capabilityAdd: [String] = []
    public var capabilityDrop: [String] = []
    public var ulimits: [Ulimit] = []
    public var oomScoreAdj: Int64 = 0
    /// Secrets and configs the task gets as files (swarmkit's SecretReference / ConfigReference).
    /// Optional so that services stored before they existed still decode.
    public var secrets: [DataReference]?
    public var configs: [DataReference]?

    public init() {}

    /// A secret or config a task reads as a file: which object (ID and the name it had when the
    /// service was made) and the file's name, owner and mode in the container.
    public struct DataReference: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        /// `File.Name`: relative to /run/secrets (secrets), or a path (configs: relative to /).
        public var fileName: String
        public var uid: String
        public var gid: String
        public var mode: UInt32
        public init(id: String, name: String, fileName: String, uid: String = "0", gid: String = "0", mode: UInt32 = 0o444) {
            self.id = id
            self.name = name
            self.fileName = fileName
            self.uid = uid
            self.gid = gid
            self.mode = mode
        }

        /// Where the file is in the container: a secret's under /run/secrets unless absolute, a config's
        /// under / unless absolute (dockerd's rules).
        public func target(secret: Bool) -> String {
            if fileName.hasPrefix("/") { return fileName }
            return (secret ? "/run/secrets/" : "/") + fileName
        }
    }

    public struct Healthcheck: Codable, Sendable, Equatable {
        public var test: [String] = []
        public var interval: Nanoseconds = 0
        public var timeout: Nanoseconds = 0
        public var startPeriod: Nanoseconds = 0
        public var startInterval: Nanoseconds = 0
        public var retries: Int64 = 0
        public init() {}
    }

    public struct DNSConfig: Codable, Sendable, Equatable {
        public var nameservers: [String] = []
        public var search: [String] = []
        public var options: [String] = []
        public init() {}
    }

    public struct Privileges: Codable, Sendable, Equatable {
        public struct CredentialSpec: Codable, Sendable, Equatable {
            public var config = "", file = "", registry = ""
            public init() {}
        }
        public struct SELinuxContext: Codable, Sendable, Equatable {
            public var disable = false
            public var user = "", role = "", type = "", level = ""
            public init() {}
        }
        public struct Seccomp: Codable, Sendable, Equatable {
            public var mode = ""
            /// Base64 text, as the API carries Go's `[]byte`.
            public var profile = ""
            public init() {}
        }
        public var credentialSpec: CredentialSpec?
        public var seLinuxContext: SELinuxContext?
        public var seccomp: Seccomp?
        public var appArmorMode: String?
        public var noNewPrivileges = false
        public init() {}
    }

    public struct Mount: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable, CaseIterable { case bind, volume, tmpfs, npipe, cluster, image }
        public struct BindOptions: Codable, Sendable, Equatable {
            public var propagation = ""
            public var nonRecursive = false, createMountpoint = false, readOnlyNonRecursive = false, readOnlyForceRecursive = false
            public init() {}
        }
        public struct VolumeOptions: Codable, Sendable, Equatable {
            public var noCopy = false
            public var labels: [String: String] = [:]
            public var driverConfig: DriverConfig?
            public var subpath = ""
            public init() {}
        }
        public struct TmpfsOptions: Codable, Sendable, Equatable {
            public var sizeBytes: Int64 = 0
            public var mode: UInt32 = 0
            public var options: [[String]] = []
            public init() {}
        }
        public var kind: Kind
        public var source = ""
        public var target: String
        public var readOnly = false
        public var consistency = ""
        public var bindOptions: BindOptions?
        public var volumeOptions: VolumeOptions?
        /// `ImageOptions.Subpath`; nil when no `ImageOptions` was sent.
        public var imageSubpath: String?
        public var tmpfsOptions: TmpfsOptions?
        public init(kind: Kind, target: String) {
            self.kind = kind
            self.target = target
        }
    }

    public struct Ulimit: Codable, Sendable, Equatable {
        public var name: String
        public var soft: Int64
        public var hard: Int64
        public init(name: String, soft: Int64, hard: Int64) {
            self.name = name
            self.soft = soft
            self.hard = hard
        }
    }
}

/// A log or volume driver: a name and its options.
public struct DriverConfig: Codable, Sendable, Equatable {
    public var name: String
    public var options: [String: String]
    public init(name: String, options: [String: String] = [:]) {
        self.name = name
        self.options = options
    }
}

/// `TaskSpec.Resources`. Recorded only: the process driver sets no cgroup limits and the scheduler does
/// not count reservations yet. nil members were not sent (the CLI sends `{"Limits":{},"Reservations":{}}`).
public struct TaskResources: Codable, Sendable, Equatable {
    public struct Limits: Codable, Sendable, Equatable {
        public var nanoCPUs: Int64 = 0, memoryBytes: Int64 = 0, pids: Int64 = 0
        public init() {}
    }
    public enum GenericResource: Codable, Sendable, Equatable {
        case named(kind: String, value: String)
        case discrete(kind: String, value: Int64)
    }
    public struct Reservations: Codable, Sendable, Equatable {
        public var nanoCPUs: Int64 = 0, memoryBytes: Int64 = 0
        public var genericResources: [GenericResource] = []
        public init() {}
    }
    public var limits: Limits?
    public var reservations: Reservations?
    public init() {}
}

/// `Placement` beyond constraints. The scheduler enforces `maxReplicas` (tasks of the service per node)
/// and `platforms` (a node's OS and architecture must match one); spread preferences are recorded only
/// (meshd spreads by its own rule: fewest tasks of the service, then fewest tasks).
public struct PlacementOptions: Codable, Sendable, Equatable {
    public struct Platform: Codable, Sendable, Equatable {
        public var architecture: String
        public var os: String
        public init(architecture: String, os: String) {
            self.architecture = architecture
            self.os = os
        }
    }
    /// `Preferences[].Spread.SpreadDescriptor`, in order.
    public var spreadDescriptors: [String] = []
    public var maxReplicas: UInt64 = 0
    public var platforms: [Platform] = []
    public init() {}
}
