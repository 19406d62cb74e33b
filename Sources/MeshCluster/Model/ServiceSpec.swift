import Foundation
import MeshValues

/// Durations are integer nanoseconds, as in the Docker API, so specs round-trip without conversion.
public typealias Nanoseconds = Int64

public enum ServiceMode: Codable, Sendable, Equatable {
    case replicated(replicas: Int)
    case global

    public var isGlobal: Bool { if case .global = self { true } else { false } }
    public var replicas: Int? { if case .replicated(let n) = self { n } else { nil } }
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
    public init(condition: Condition = .any, delay: Nanoseconds = 5_000_000_000, maxAttempts: Int = 0) {
        self.condition = condition
        self.delay = delay
        self.maxAttempts = maxAttempts
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
    public init(target: String, aliases: [String] = []) {
        self.target = target
        self.aliases = aliases
    }
}

/// What every task of a service runs (Docker's `TaskTemplate`, reduced to what meshd's runtime uses).
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

    public init(
        image: String, command: [String] = [], args: [String] = [], env: [String] = [],
        labels: [String: String] = [:], hostname: String = "", dir: String = "", user: String = "",
        restartPolicy: RestartPolicy? = nil, constraints: [String] = [], networks: [NetworkTarget] = [],
        forceUpdate: UInt64 = 0
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

    public init(
        name: String, labels: [String: String] = [:], task: TaskSpec, mode: ServiceMode = .replicated(replicas: 1),
        update: UpdateConfig? = nil, rollback: UpdateConfig? = nil, endpoint: EndpointSpec = EndpointSpec()
    ) {
        self.name = name
        self.labels = labels
        self.task = task
        self.mode = mode
        self.update = update
        self.rollback = rollback
        self.endpoint = endpoint
    }

    /// Whether tasks made from `other` must be replaced to match this spec (swarmkit's `IsTaskDirty`:
    /// the task template or the endpoint spec changed; replicas alone do not count).
    public func replacesTasks(of other: ServiceSpec) -> Bool {
        task != other.task || endpoint != other.endpoint
    }

    /// Checks Docker also makes on create/update. Names follow Docker's rule for service names.
    public func validate() throws(ClusterError) {
        let nameOK =
            !name.isEmpty && name.count <= 63
            && name.utf8.allSatisfy {
                ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 || $0 == 46
            }
            && name.first != "-" && name.first != "."
        guard nameOK else { throw .invalidArgument("invalid name \"\(name)\": must be 1-63 letters, digits, '-', '_' or '.'") }
        guard !task.image.isEmpty else { throw .invalidArgument("ContainerSpec: image reference must be provided") }
        if let n = mode.replicas, n < 0 { throw .invalidArgument("replicas must be 0 or more") }
        for c in task.constraints { _ = try PlacementConstraint.parse(c) }
        if endpoint.mode == .dnsrr, endpoint.ports.contains(where: { $0.publishMode == .ingress }) {
            throw .invalidArgument("EndpointSpec: port published with ingress mode can't be used with dnsrr mode")
        }
        var seen = Set<String>()
        for p in endpoint.ports where p.publishedPort != 0 {
            let key = "\(p.publishedPort)/\(p.protocol.rawValue)/\(p.publishMode.rawValue)"
            guard seen.insert(key).inserted else {
                throw .invalidArgument("EndpointSpec: duplicate published ports provided (\(p.publishedPort)/\(p.protocol.rawValue))")
            }
        }
        for u in [update, rollback].compactMap({ $0 }) {
            guard u.parallelism >= 0, u.delay >= 0, u.monitor >= 0 else {
                throw .invalidArgument("UpdateConfig: parallelism, delay and monitor must not be negative")
            }
        }
    }
}
