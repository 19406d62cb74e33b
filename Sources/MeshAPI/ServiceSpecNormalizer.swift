/// The API edge of the one service-spec pipeline: what dockerd's router and its conversion to swarmkit
/// do to a spec before swarmkit sees it. It owns every rule about the request's *form*: enumerated
/// strings (mode, endpoint mode, protocol, publish mode, restart condition, failure action, order, mount
/// type, isolation, runtime), number ranges that the API's types allow but swarmkit's do not, request
/// size limits, fields meshd refuses by name (plugin tasks, generic resources' empty members, the
/// deprecated top-level `Networks` together with `TaskTemplate.Networks`), and dockerd's defaults (a mode with `Replicas`, ports
/// with protocol and publish mode, an endpoint mode, an update order).
///
/// Rules about the spec's *meaning* (name, image, constraints, dnsrr with ingress ports, duplicate
/// published ports, negative durations) belong to `MeshCluster.ServiceSpec.validate`, which runs on
/// create, update and rollback; network names are resolved by the cluster manager. Each rule lives in
/// exactly one of the two places. A backend runs this once (meshd's does it inside
/// `APIMapping.clusterServiceSpec`); the router does not, so nothing is normalised twice.
public enum ServiceSpecNormalizer {
    public static let maxReplicas: UInt64 = 100_000

    public static func normalize(_ input: ServiceSpec) throws(EngineError) -> ServiceSpec {
        var spec = input
        // The deprecated top-level `Networks` (docker-py sends it for `networks=`) is what swarmkit
        // attaches when the task template names none; it stays where it was sent and the cluster spec
        // takes it as the task's networks. Both lists at once would leave one of them unused.
        if let nets = spec.Networks, !nets.isEmpty {
            if let task = spec.TaskTemplate.Networks, !task.isEmpty {
                throw .invalidArgument(
                    "ServiceSpec.Networks and TaskTemplate.Networks are both given: "
                        + "use TaskTemplate.Networks (ServiceSpec.Networks is deprecated)")
            }
        } else {
            spec.Networks = nil
        }
        let image = spec.TaskTemplate.ContainerSpec?.Image ?? ""
        guard image.utf8.count <= 512 else { throw .invalidArgument("image reference is too long") }
        try checkTaskTemplate(spec.TaskTemplate)

        var mode = spec.Mode ?? ServiceMode(Replicated: .init())
        guard mode.memberCount <= 1 else {
            throw .invalidArgument("rpc error: code = InvalidArgument desc = more than one service mode given")
        }
        if var job = mode.ReplicatedJob {
            // dockerd's defaults: one at a time, and as many completions as may run at once.
            if job.MaxConcurrent == nil { job.MaxConcurrent = 1 }
            if job.TotalCompletions == nil { job.TotalCompletions = job.MaxConcurrent }
            for (name, n) in [("MaxConcurrent", job.MaxConcurrent!), ("TotalCompletions", job.TotalCompletions!)] where n > maxReplicas {
                throw .invalidArgument(
                    "rpc error: code = InvalidArgument desc = ReplicatedJob: \(name) must be at most \(maxReplicas), not \(n)")
            }
            mode.ReplicatedJob = job
        }
        if mode.memberCount == 0 { mode.Replicated = .init() }
        if mode.Replicated != nil, mode.Replicated?.Replicas == nil { mode.Replicated?.Replicas = 1 }
        if let n = mode.Replicated?.Replicas, n > maxReplicas {
            throw .invalidArgument("rpc error: code = InvalidArgument desc = replicas must be at most \(maxReplicas), not \(n)")
        }
        spec.Mode = mode

        var endpoint = spec.EndpointSpec ?? EndpointSpec()
        let endpointMode = (endpoint.Mode ?? "").isEmpty ? "vip" : endpoint.Mode!
        guard endpointMode == "vip" || endpointMode == "dnsrr" else {
            throw .invalidArgument("rpc error: code = InvalidArgument desc = EndpointSpec: invalid resolution mode: \(endpointMode)")
        }
        endpoint.Mode = endpointMode
        if let ports = endpoint.Ports {
            guard ports.count <= 1024 else { throw .invalidArgument("too many published ports") }
            endpoint.Ports = try ports.map { (p: PortConfig) throws(EngineError) -> PortConfig in
                var p = p
                let proto = (p.Protocol ?? "").isEmpty ? "tcp" : p.Protocol!
                guard ["tcp", "udp", "sctp"].contains(proto) else { throw .invalidArgument("invalid protocol \(proto)") }
                p.Protocol = proto
                let publish = (p.PublishMode ?? "").isEmpty ? "ingress" : p.PublishMode!
                guard publish == "ingress" || publish == "host" else { throw .invalidArgument("invalid publish mode \(publish)") }
                p.PublishMode = publish
                guard p.TargetPort >= 1, p.TargetPort <= 65535 else {
                    throw .invalidArgument(
                        "rpc error: code = InvalidArgument desc = EndpointSpec: target port \(p.TargetPort) is out of range")
                }
                if let pub = p.PublishedPort, pub > 65535 {
                    throw .invalidArgument("rpc error: code = InvalidArgument desc = EndpointSpec: published port \(pub) is out of range")
                }
                return p
            }
        }
        spec.EndpointSpec = endpoint

        spec.UpdateConfig = try normalize(spec.UpdateConfig, what: "UpdateConfig")
        spec.RollbackConfig = try normalize(spec.RollbackConfig, what: "RollbackConfig")
        return spec
    }

    static func checkTaskTemplate(_ t: TaskSpec) throws(EngineError) {
        if t.PluginSpec != nil { throw .invalidArgument("TaskTemplate.PluginSpec: plugin tasks are not supported by meshd") }
        if t.NetworkAttachmentSpec != nil {
            throw .invalidArgument("TaskTemplate.NetworkAttachmentSpec: network attachment tasks are not supported by meshd")
        }
        if let r = t.Runtime, !r.isEmpty, r != "container" {
            throw .invalidArgument("TaskTemplate.Runtime: only container tasks are supported by meshd, not \(r)")
        }
        if let c = t.RestartPolicy?.Condition, !c.isEmpty, !["none", "on-failure", "any"].contains(c) {
            throw .invalidArgument("invalid RestartCondition: \"\(c)\"")
        }
        if let nets = t.Networks, nets.count > 64 { throw .invalidArgument("too many networks") }
        for g in t.Resources?.Reservations?.GenericResources ?? [] {
            guard (g.NamedResourceSpec != nil) != (g.DiscreteResourceSpec != nil) else {
                throw .invalidArgument(
                    "TaskTemplate.Resources.Reservations.GenericResources: each needs exactly one of NamedResourceSpec and DiscreteResourceSpec"
                )
            }
        }
        for p in t.Placement?.Preferences ?? [] where p.Spread == nil {
            throw .invalidArgument("TaskTemplate.Placement.Preferences: only Spread preferences are supported")
        }
        guard let c = t.ContainerSpec else { return }
        // swarmkit: a reference without a file target is malformed (it would be a file nowhere).
        for r in c.Secrets ?? [] where (r.File?.Name ?? "").isEmpty {
            throw .invalidArgument("ContainerSpec.Secrets: malformed secret reference \(r.SecretName ?? ""): File.Name is required")
        }
        for r in c.Configs ?? [] {
            if r.Runtime != nil { throw .invalidArgument("ContainerSpec.Configs: Runtime configs (credential specs) are not supported") }
            if (r.File?.Name ?? "").isEmpty {
                throw .invalidArgument("ContainerSpec.Configs: malformed config reference \(r.ConfigName ?? ""): File.Name is required")
            }
        }
        if let i = c.Isolation, !["", "default", "process", "hyperv"].contains(i) {
            throw .invalidArgument("ContainerSpec.Isolation: invalid isolation \(i)")
        }
        // swarmkit's validateMounts: each target absolute and used once, a bind's source absolute,
        // a tmpfs without one; and no `..` in a path (it would leave the image on the node).
        var targets = Set<String>()
        for m in c.Mounts ?? [] {
            let kind = m.`Type` ?? ""
            guard ["bind", "volume", "tmpfs", "npipe", "cluster", "image"].contains(kind) else {
                throw .invalidArgument("ContainerSpec.Mounts: invalid mount type \"\(kind)\"")
            }
            let target = m.Target ?? ""
            guard target.hasPrefix("/") else {
                throw .invalidArgument("ContainerSpec.Mounts: invalid mount target, must be an absolute path: \(target)")
            }
            guard !target.split(separator: "/").contains(".."), !target.contains("\0") else {
                throw .invalidArgument("ContainerSpec.Mounts: invalid mount target, must not contain '..': \(target)")
            }
            guard targets.insert(target).inserted else {
                throw .invalidArgument("ContainerSpec.Mounts: mount target \(target) is used more than once")
            }
            let source = m.Source ?? ""
            if kind == "bind", !source.hasPrefix("/") {
                throw .invalidArgument("ContainerSpec.Mounts: invalid bind mount source, must be an absolute path: \(source)")
            }
            if kind == "tmpfs", !source.isEmpty {
                throw .invalidArgument("ContainerSpec.Mounts: invalid tmpfs source, source must be empty")
            }
        }
        for u in c.Ulimits ?? [] where (u.Name ?? "").isEmpty {
            throw .invalidArgument("ContainerSpec.Ulimits: a ulimit needs a Name")
        }
    }

    static func normalize(_ c: UpdateConfig?, what: String) throws(EngineError) -> UpdateConfig? {
        guard var c else { return nil }
        if (c.Order ?? "").isEmpty { c.Order = "stop-first" }
        guard c.Order == "stop-first" || c.Order == "start-first" else { throw .invalidArgument("\(what): invalid Order \(c.Order!)") }
        if let a = c.FailureAction, !a.isEmpty, !["pause", "continue", "rollback"].contains(a) {
            throw .invalidArgument("\(what): invalid FailureAction \(a)")
        }
        return c
    }

    /// `GET /services/{id}?insertDefaults=true`: swarmkit's defaults filled in (`api/defaults/service.go`).
    public static func withDefaults(_ input: ServiceSpec) -> ServiceSpec {
        var spec = input
        func fill(_ c: UpdateConfig?) -> UpdateConfig {
            var c = c ?? UpdateConfig()
            c.Parallelism = c.Parallelism ?? 1
            c.FailureAction = (c.FailureAction ?? "").isEmpty ? "pause" : c.FailureAction
            c.Monitor = (c.Monitor ?? 0) == 0 ? .seconds(5) : c.Monitor
            c.MaxFailureRatio = c.MaxFailureRatio ?? 0
            c.Order = (c.Order ?? "").isEmpty ? "stop-first" : c.Order
            return c
        }
        spec.UpdateConfig = fill(spec.UpdateConfig)
        spec.RollbackConfig = fill(spec.RollbackConfig)
        var restart = spec.TaskTemplate.RestartPolicy ?? RestartPolicy()
        restart.Condition = (restart.Condition ?? "").isEmpty ? "any" : restart.Condition
        restart.Delay = restart.Delay ?? .seconds(5)
        restart.MaxAttempts = restart.MaxAttempts ?? 0
        spec.TaskTemplate.RestartPolicy = restart
        if spec.TaskTemplate.ContainerSpec != nil {
            spec.TaskTemplate.ContainerSpec!.StopGracePeriod = spec.TaskTemplate.ContainerSpec!.StopGracePeriod ?? .seconds(10)
            spec.TaskTemplate.ContainerSpec!.DNSConfig = spec.TaskTemplate.ContainerSpec!.DNSConfig ?? .init()
        }
        spec.TaskTemplate.Resources = spec.TaskTemplate.Resources ?? ResourceRequirements()
        spec.TaskTemplate.Placement = spec.TaskTemplate.Placement ?? Placement()
        return spec
    }
}
