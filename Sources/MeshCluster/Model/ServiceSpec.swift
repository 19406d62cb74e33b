import Foundation
import MeshValues

/// Durations are integer nanoseconds, as in the Docker API, so specs round-trip without conversion.
public typealias Nanoseconds = Int64

public enum ServiceMode: Codable, Sendable, Equatable {
    case replicated(replicas: Int)
    case global
    /// Runs tasks to completion: `totalCompletions` of them, at most `maxConcurrent` at a time.
    case replicatedJob(maxConcurrent: Int, totalCompletions: Int)
    /// Runs one task to completion on every eligible node (and on nodes that join later).
    case globalJob

    /// One task per node (a global service or global job) rather than per slot.
    public var isGlobal: Bool {
        switch self {
        case .global, .globalJob: true
        case .replicated, .replicatedJob: false
        }
    }
    public var isJob: Bool {
        switch self {
        case .replicatedJob, .globalJob: true
        case .replicated, .global: false
        }
    }
    public var replicas: Int? { if case .replicated(let n) = self { n } else { nil } }
    /// `replicated`, `global`, `replicated-job`, `global-job`: what may not change on update.
    public var kind: String {
        switch self {
        case .replicated: "replicated"
        case .global: "global"
        case .replicatedJob: "replicated-job"
        case .globalJob: "global-job"
        }
    }
}

public struct PortConfig: Codable, Sendable, Equatable, Hashable {
    public var name: String
    public var `protocol`: TransportProtocol
    public var targetPort: UInt16
    /// 0 asks for an automatic port (30000-32767) for ingress ports.
    public var publishedPort: UInt16
    public var publishMode: PublishMode
    public init(
        name: String = "", protocol: TransportProtocol = .tcp, targetPort: UInt16, publishedPort: UInt16 = 0,
        publishMode: PublishMode = .ingress
    ) {
        self.name = name
        self.protocol = `protocol`
        self.targetPort = targetPort
        self.publishedPort = publishedPort
        self.publishMode = publishMode
    }
}

public struct EndpointSpec: Codable, Sendable, Equatable {
    public var mode: EndpointMode
    public var ports: [PortConfig]
    public init(mode: EndpointMode = .vip, ports: [PortConfig] = []) {
        self.mode = mode
        self.ports = ports
    }
}

public struct RestartPolicy: Codable, Sendable, Equatable {
    public enum Condition: String, Codable, Sendable { case none, onFailure = "on-failure", any }
    public var condition: Condition
    public var delay: Nanoseconds
    /// 0: unlimited.
    public var maxAttempts: Int
    /// Recorded only: the window over which swarmkit counts `maxAttempts`; meshd counts over the task's life.
    public var window: Nanoseconds?
    public init(condition: Condition = .any, delay: Nanoseconds = 5_000_000_000, maxAttempts: Int = 0, window: Nanoseconds? = nil) {
        self.condition = condition
        self.delay = delay
        self.maxAttempts = maxAttempts
        self.window = window
    }
}

public struct UpdateConfig: Codable, Sendable, Equatable {
    public enum FailureAction: String, Codable, Sendable { case pause, `continue`, rollback }
    public enum Order: String, Codable, Sendable { case stopFirst = "stop-first", startFirst = "start-first" }
    /// Tasks replaced at once; 0 means all at once.
    public var parallelism: Int
    public var delay: Nanoseconds
    public var failureAction: FailureAction
    /// How long a new task must stay running before it counts as updated.
    public var monitor: Nanoseconds
    public var maxFailureRatio: Double
    public var order: Order
    public init(
        parallelism: Int = 1, delay: Nanoseconds = 0, failureAction: FailureAction = .pause,
        monitor: Nanoseconds = 5_000_000_000, maxFailureRatio: Double = 0, order: Order = .stopFirst
    ) {
        self.parallelism = parallelism
        self.delay = delay
        self.failureAction = failureAction
        self.monitor = monitor
        self.maxFailureRatio = maxFailureRatio
        self.order = order
    }
}

public struct NetworkTarget: Codable, Sendable, Equatable {
    /// A network ID (names are resolved before they are stored).
    public var target: String
    public var aliases: [String]
    /// Recorded only (overlay driver options per attachment).
    public var driverOpts: [String: String]
    public init(target: String, aliases: [String] = [], driverOpts: [String: String] = [:]) {
        self.target = target
        self.aliases = aliases
        self.driverOpts = driverOpts
    }

    enum CodingKeys: String, CodingKey { case target, aliases, driverOpts }
    /// Stores written before `driverOpts` existed decode with none.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        target = try c.decode(String.self, forKey: .target)
        aliases = try c.decode([String].self, forKey: .aliases)
        driverOpts = try c.decodeIfPresent([String: String].self, forKey: .driverOpts) ?? [:]
    }
}

/// What every task of a service runs: Docker's `TaskTemplate`, every field of it stored.
///
/// Enforced: `image`, `command`, `args`, `env` (the process driver runs them), `restartPolicy` condition,
/// delay and max attempts (the orchestrator), `constraints` and `placement.maxReplicas`/`platforms` (the
/// scheduler), `networks` with their aliases (the allocator, the agent and DNS), `forceUpdate`.
/// Recorded only — stored and shown as dockerd shows them, part of the template (so a change replaces
/// tasks, as in swarmkit), not acted on yet: `labels`, `hostname` (a task's hostname is its ID), `dir`,
/// `user`, `restartPolicy.window`, `network.driverOpts`, `container` (see `ContainerOptions`),
/// `resources`, `placement.spreadDescriptors` and `logDriver`.
public struct TaskSpec: Codable, Sendable, Equatable {
    public var image: String
    public var command: [String]
    public var args: [String]
    public var env: [String]
    public var labels: [String: String]
    public var hostname: String
    public var dir: String
    public var user: String
    public var restartPolicy: RestartPolicy?
    public var constraints: [String]
    public var networks: [NetworkTarget]
    /// Bumped by `service update --force` to make tasks dirty without another change.
    public var forceUpdate: UInt64
    public var container: ContainerOptions
    public var resources: TaskResources
    public var placement: PlacementOptions
    public var logDriver: DriverConfig?

    public init(
        image: String, command: [String] = [], args: [String] = [], env: [String] = [],
        labels: [String: String] = [:], hostname: String = "", dir: String = "", user: String = "",
        restartPolicy: RestartPolicy? = nil, constraints: [String] = [], networks: [NetworkTarget] = [],
        forceUpdate: UInt64 = 0, container: ContainerOptions = ContainerOptions(), resources: TaskResources = TaskResources(),
        placement: PlacementOptions = PlacementOptions(), logDriver: DriverConfig? = nil
    ) {
        self.image = image
        self.command = command
        self.args = args
        self.env = env
        self.labels = labels
        self.hostname = hostname
        self.dir = dir
        self.user = user
        self.restartPolicy = restartPolicy
        self.constraints = constraints
        self.networks = networks
        self.forceUpdate = forceUpdate
        self.container = container
        self.resources = resources
        self.placement = placement
        self.logDriver = logDriver
    }

    enum CodingKeys: String, CodingKey {
        case image, command, args, env, labels, hostname, dir, user, restartPolicy, constraints, networks, forceUpdate
        case container, resources, placement, logDriver
    }

    /// Stores written before the recorded fields existed decode with their defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        image = try c.decode(String.self, forKey: .image)
        command = try c.decode([String].self, forKey: .command)
        args = try c.decode([String].self, forKey: .args)
        env = try c.decode([String].self, forKey: .env)
        labels = try c.decode([String: String].self, forKey: .labels)
        hostname = try c.decode(String.self, forKey: .hostname)
        dir = try c.decode(String.self, forKey: .dir)
        user = try c.decode(String.self, forKey: .user)
        restartPolicy = try c.decodeIfPresent(RestartPolicy.self, forKey: .restartPolicy)
        constraints = try c.decode([String].self, forKey: .constraints)
        networks = try c.decode([NetworkTarget].self, forKey: .networks)
        forceUpdate = try c.decode(UInt64.self, forKey: .forceUpdate)
        container = try c.decodeIfPresent(ContainerOptions.self, forKey: .container) ?? ContainerOptions()
        resources = try c.decodeIfPresent(TaskResources.self, forKey: .resources) ?? TaskResources()
        placement = try c.decodeIfPresent(PlacementOptions.self, forKey: .placement) ?? PlacementOptions()
        logDriver = try c.decodeIfPresent(DriverConfig.self, forKey: .logDriver)
    }
}

public struct ServiceSpec: Codable, Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    public var task: TaskSpec
    public var mode: ServiceMode
    public var update: UpdateConfig?
    public var rollback: UpdateConfig?
    public var endpoint: EndpointSpec
    /// The client gave the networks in the deprecated top-level `ServiceSpec.Networks` (docker-py's
    /// `networks=`): they live in `task.networks` like any others, and inspect shows them where they
    /// were sent, as dockerd does, until an update sends `TaskTemplate.Networks`.
    public var networksAtServiceLevel: Bool

    public init(
        name: String, labels: [String: String] = [:], task: TaskSpec, mode: ServiceMode = .replicated(replicas: 1),
        update: UpdateConfig? = nil, rollback: UpdateConfig? = nil, endpoint: EndpointSpec = EndpointSpec(),
        networksAtServiceLevel: Bool = false
    ) {
        self.networksAtServiceLevel = networksAtServiceLevel
        self.name = name
        self.labels = labels
        self.task = task
        self.mode = mode
        self.update = update
        self.rollback = rollback
        self.endpoint = endpoint
    }

    enum CodingKeys: String, CodingKey { case name, labels, task, mode, update, rollback, endpoint, networksAtServiceLevel }
    /// Stores written before `networksAtServiceLevel` existed decode without it.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        labels = try c.decode([String: String].self, forKey: .labels)
        task = try c.decode(TaskSpec.self, forKey: .task)
        mode = try c.decode(ServiceMode.self, forKey: .mode)
        update = try c.decodeIfPresent(UpdateConfig.self, forKey: .update)
        rollback = try c.decodeIfPresent(UpdateConfig.self, forKey: .rollback)
        endpoint = try c.decode(EndpointSpec.self, forKey: .endpoint)
        networksAtServiceLevel = try c.decodeIfPresent(Bool.self, forKey: .networksAtServiceLevel) ?? false
    }

    /// Whether tasks made from `other` must be replaced to match this spec (swarmkit's `IsTaskDirty`:
    /// the task template or the endpoint spec changed; replicas alone do not count).
    public func replacesTasks(of other: ServiceSpec) -> Bool {
        task != other.task || endpoint != other.endpoint
    }

    /// swarmkit's checks on create, update and rollback (`controlapi/service.go`), and the one place each
    /// of these rules lives: the API edge (`ServiceSpecNormalizer`) parses and defaults, this decides.
    public func validate() throws(ClusterError) {
        guard Self.isValidName(name) else { throw .invalidArgument("name must be valid as a DNS name component") }
        guard !task.image.isEmpty else { throw .invalidArgument("ContainerSpec: image reference must be provided") }
        if let n = mode.replicas, n < 0 { throw .invalidArgument("replicas must be 0 or more") }
        if case .replicatedJob(let concurrent, let total) = mode, concurrent < 0 || total < 0 {
            throw .invalidArgument("ReplicatedJob: MaxConcurrent and TotalCompletions must be 0 or more")
        }
        for c in task.constraints { _ = try PlacementConstraint.parse(c) }
        if let p = task.restartPolicy, p.delay < 0 { throw .invalidArgument("TaskSpec: restart-delay cannot be negative") }
        if let w = task.restartPolicy?.window, w < 0 { throw .invalidArgument("TaskSpec: restart-window cannot be negative") }
        if let g = task.container.stopGracePeriod, g < 0 {
            throw .invalidArgument("ContainerSpec: stop-grace-period cannot be negative")
        }
        if let h = task.container.healthcheck,
            [h.interval, h.timeout, h.startPeriod, h.startInterval].contains(where: { $0 < 0 }) || h.retries < 0
        {
            throw .invalidArgument("ContainerSpec: Healthcheck durations and retries cannot be negative")
        }
        if let h = task.container.healthcheck {
            // swarmkit's validateHealthCheck: a duration is unset (0) or at least 1 ms.
            for (name, d) in [
                ("Interval", h.interval), ("Timeout", h.timeout), ("StartPeriod", h.startPeriod), ("StartInterval", h.startInterval),
            ]
            where d != 0 && d < 1_000_000 {
                throw .invalidArgument("ContainerSpec: \(name) in Healthcheck cannot be less than 1ms")
            }
            // A test a node could not run is refused here rather than ignored there.
            switch h.test.first {
            case nil, "NONE": break
            case "CMD" where h.test.count > 1, "CMD-SHELL" where h.test.count == 2 && !h.test[1].isEmpty: break
            default:
                throw .invalidArgument(
                    "ContainerSpec: Healthcheck Test must be [\"NONE\"], [\"CMD\", args...] or [\"CMD-SHELL\", command], not \(h.test)")
            }
        }
        for m in task.container.mounts where m.target.isEmpty {
            throw .invalidArgument("ContainerSpec: mount \(m.kind.rawValue) has no target")
        }
        // swarmkit's validateSecretRefsSpec / validateConfigRefsSpec: a file name each, no two at one path.
        var targets: [String: String] = [:]
        for (kind, refs, secret) in [("secret", task.container.secrets ?? [], true), ("config", task.container.configs ?? [], false)] {
            for r in refs {
                guard !r.id.isEmpty, !r.name.isEmpty else {
                    throw .invalidArgument("malformed \(kind) reference: it needs an ID and a name")
                }
                guard !r.fileName.isEmpty else { throw .invalidArgument("malformed \(kind) reference: \(r.name) has no File.Name") }
                guard !r.fileName.split(separator: "/").contains(".."), !r.fileName.contains("\0") else {
                    throw .invalidArgument("\(kind) reference \(r.name): File.Name \(r.fileName) must not contain ..")
                }
                let target = r.target(secret: secret)
                if let other = targets[target] {
                    throw .invalidArgument("\(kind) references '\(other)' and '\(r.name)' have a conflicting target: '\(target)'")
                }
                targets[target] = r.name
            }
        }
        let r = task.resources
        if let l = r.limits, l.nanoCPUs < 0 || l.memoryBytes < 0 || l.pids < 0 {
            throw .invalidArgument("TaskSpec: Resources.Limits cannot be negative")
        }
        if let v = r.reservations, v.nanoCPUs < 0 || v.memoryBytes < 0 {
            throw .invalidArgument("TaskSpec: Resources.Reservations cannot be negative")
        }
        if endpoint.mode == .dnsrr, endpoint.ports.contains(where: { $0.publishMode == .ingress }) {
            throw .invalidArgument("EndpointSpec: port published with ingress mode can't be used with dnsrr mode")
        }
        // swarmkit keys a published port by number and protocol: the same port in host and ingress mode
        // is a duplicate too.
        var seen = Set<String>()
        for p in endpoint.ports where p.publishedPort != 0 {
            guard seen.insert("\(p.publishedPort)/\(p.protocol.rawValue)").inserted else {
                throw .invalidArgument("EndpointSpec: duplicate published ports provided")
            }
        }
        for (what, u) in [("UpdateConfig", update), ("RollbackConfig", rollback)] {
            guard let u else { continue }
            guard u.parallelism >= 0 else { throw .invalidArgument("\(what): parallelism cannot be negative") }
            guard u.delay >= 0 else { throw .invalidArgument("\(what): update-delay cannot be negative") }
            guard u.monitor >= 0 else { throw .invalidArgument("\(what): update-monitor cannot be negative") }
            guard u.maxFailureRatio.isFinite, u.maxFailureRatio >= 0, u.maxFailureRatio <= 1 else {
                throw .invalidArgument("\(what): update-maxfailureratio cannot be less than 0 or bigger than 1")
            }
        }
    }

    /// swarmkit's `isValidDNSName`: letters, digits, `-` and `_`, starting and ending with a letter or
    /// digit, at most 63 (no dots: the name is one DNS label of `<name>.<network>`).
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count <= 63, let first = bytes.first, let last = bytes.last else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }
        return alnum(first) && alnum(last) && bytes.allSatisfy { alnum($0) || $0 == 45 || $0 == 95 }
    }
}
