import MeshAPI
import MeshCluster
import MeshValues

/// MeshAPI → MeshCluster for service specs. Absent fields take the values dockerd and swarmkit give them
/// (Go zero values inside a present object, swarmkit's defaults for absent objects), so the stored spec
/// behaves as dockerd's would. Every number is range-checked before it is narrowed: a request can carry
/// any JSON number.
extension APIMapping {
    public static func clusterServiceSpec(_ api: MeshAPI.ServiceSpec) throws(EngineError) -> MeshCluster.ServiceSpec {
        let container = api.TaskTemplate.ContainerSpec
        let task = MeshCluster.TaskSpec(
            image: container?.Image ?? "", command: container?.Command ?? [], args: container?.Args ?? [],
            env: container?.Env ?? [], labels: container?.Labels ?? [:], hostname: container?.Hostname ?? "",
            dir: container?.Dir ?? "", user: container?.User ?? "",
            restartPolicy: try restartPolicy(api.TaskTemplate.RestartPolicy),
            constraints: api.TaskTemplate.Placement?.Constraints ?? [],
            networks: (api.TaskTemplate.Networks ?? []).map { NetworkTarget(target: $0.Target, aliases: $0.Aliases ?? []) },
            forceUpdate: api.TaskTemplate.ForceUpdate ?? 0)
        return MeshCluster.ServiceSpec(
            name: api.Name ?? "", labels: api.Labels ?? [:], task: task, mode: try mode(api.Mode),
            update: try updateConfig(api.UpdateConfig, what: "UpdateConfig"),
            rollback: try updateConfig(api.RollbackConfig, what: "RollbackConfig"),
            endpoint: try endpointSpec(api.EndpointSpec))
    }

    static func mode(_ m: MeshAPI.ServiceMode?) throws(EngineError) -> MeshCluster.ServiceMode {
        guard let m else { return .replicated(replicas: 1) }
        if m.ReplicatedJob != nil || m.GlobalJob != nil {
            throw .notImplemented("job services (replicated-job, global-job) are not supported by meshd")
        }
        switch (m.Replicated, m.Global) {
        case (nil, nil): return .replicated(replicas: 1)
        case (let r?, nil):
            let n = r.Replicas ?? 1
            guard n <= maxReplicas else {
                throw .invalidArgument(rpc("InvalidArgument", "replicas must be at most \(maxReplicas), not \(n)"))
            }
            return .replicated(replicas: Int(n))
        case (nil, _?): return .global
        case (_?, _?): throw .invalidArgument(rpc("InvalidArgument", "more than one service mode given"))
        }
    }

    static func restartPolicy(_ p: MeshAPI.RestartPolicy?) throws(EngineError) -> MeshCluster.RestartPolicy? {
        guard let p else { return nil }
        let condition: MeshCluster.RestartPolicy.Condition
        switch p.Condition ?? "" {
        case "", "any": condition = .any
        case "none": condition = .none
        case "on-failure": condition = .onFailure
        case let other: throw .invalidArgument("invalid RestartCondition: \"\(other)\"")
        }
        let delay = p.Delay ?? defaultRestartDelay
        guard delay >= 0 else { throw .invalidArgument(rpc("InvalidArgument", "TaskSpec: restart-delay cannot be negative")) }
        return MeshCluster.RestartPolicy(condition: condition, delay: delay, maxAttempts: Int(clamping: p.MaxAttempts ?? 0))
    }

    static func updateConfig(_ c: MeshAPI.UpdateConfig?, what: String) throws(EngineError) -> MeshCluster.UpdateConfig? {
        guard let c else { return nil }
        let action: MeshCluster.UpdateConfig.FailureAction
        switch c.FailureAction ?? "" {
        case "", "pause": action = .pause
        case "continue": action = .continue
        case "rollback": action = .rollback
        case let other: throw .invalidArgument("\(what): invalid FailureAction \(other)")
        }
        let order: MeshCluster.UpdateConfig.Order
        switch c.Order ?? "" {
        case "", "stop-first": order = .stopFirst
        case "start-first": order = .startFirst
        case let other: throw .invalidArgument("\(what): invalid Order \(other)")
        }
        let delay = c.Delay ?? 0
        let monitor = c.Monitor ?? 0
        guard delay >= 0 else { throw .invalidArgument(rpc("InvalidArgument", "\(what): update-delay cannot be negative")) }
        guard monitor >= 0 else { throw .invalidArgument(rpc("InvalidArgument", "\(what): update-monitor cannot be negative")) }
        let ratio = c.MaxFailureRatio ?? 0
        guard ratio.isFinite, ratio >= 0, ratio <= 1 else {
            throw .invalidArgument(rpc("InvalidArgument", "\(what): update-maxfailureratio cannot be less than 0 or bigger than 1"))
        }
        // dockerd sends no Monitor for 0, and swarmkit then uses its default.
        return MeshCluster.UpdateConfig(
            parallelism: Int(clamping: c.Parallelism ?? 0), delay: delay, failureAction: action,
            monitor: monitor == 0 ? defaultMonitor : monitor, maxFailureRatio: ratio, order: order)
    }

    static func endpointSpec(_ e: MeshAPI.EndpointSpec?) throws(EngineError) -> MeshCluster.EndpointSpec {
        guard let e else { return MeshCluster.EndpointSpec() }
        let mode: EndpointMode
        switch e.Mode ?? "" {
        case "", "vip": mode = .vip
        case "dnsrr": mode = .dnsrr
        case let other: throw .invalidArgument(rpc("InvalidArgument", "EndpointSpec: invalid resolution mode: \(other)"))
        }
        var ports: [MeshCluster.PortConfig] = []
        for p in e.Ports ?? [] { ports.append(try port(p)) }
        return MeshCluster.EndpointSpec(mode: mode, ports: ports)
    }

    static func port(_ p: MeshAPI.PortConfig) throws(EngineError) -> MeshCluster.PortConfig {
        let proto: TransportProtocol
        switch p.Protocol ?? "" {
        case "", "tcp": proto = .tcp
        case "udp": proto = .udp
        case "sctp": proto = .sctp
        case let other: throw .invalidArgument("invalid protocol \(other)")
        }
        let publishMode: PublishMode
        switch p.PublishMode ?? "" {
        case "", "ingress": publishMode = .ingress
        case "host": publishMode = .host
        case let other: throw .invalidArgument("invalid publish mode \(other)")
        }
        guard p.TargetPort >= 1, let target = UInt16(exactly: p.TargetPort) else {
            throw .invalidArgument(rpc("InvalidArgument", "EndpointSpec: target port \(p.TargetPort) is out of range"))
        }
        let published = p.PublishedPort ?? 0
        guard let pub = UInt16(exactly: published) else {
            throw .invalidArgument(rpc("InvalidArgument", "EndpointSpec: published port \(published) is out of range"))
        }
        return MeshCluster.PortConfig(
            name: p.Name ?? "", protocol: proto, targetPort: target, publishedPort: pub,
            publishMode: publishMode)
    }
}
