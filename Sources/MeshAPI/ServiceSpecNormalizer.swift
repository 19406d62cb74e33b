/// What dockerd and swarmkit do to a service spec before storing it, so that every backend sees
/// one canonical form: a mode with `Replicas` (the CLI sends `"Replicated":{}` without a count),
/// ports with protocol and publish mode, an endpoint mode, a known update order.
public enum ServiceSpecNormalizer {
    public static func normalize(_ input: ServiceSpec) throws(EngineError) -> ServiceSpec {
        var spec = input
        if let name = spec.Name, !name.isEmpty, !isValidName(name) {
            throw .invalidArgument("rpc error: code = InvalidArgument desc = name must be valid as a DNS name component")
        }
        guard let image = spec.TaskTemplate.ContainerSpec?.Image, !image.isEmpty else {
            throw .invalidArgument("rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided")
        }
        guard image.utf8.count <= 512 else { throw .invalidArgument("image reference is too long") }

        var mode = spec.Mode ?? ServiceMode(Replicated: .init())
        guard mode.memberCount <= 1 else {
            throw .invalidArgument("rpc error: code = InvalidArgument desc = more than one service mode given")
        }
        if mode.memberCount == 0 { mode.Replicated = .init() }
        if mode.Replicated != nil, mode.Replicated?.Replicas == nil { mode.Replicated?.Replicas = 1 }
        spec.Mode = mode

        var endpoint = spec.EndpointSpec ?? EndpointSpec()
        let endpointMode = (endpoint.Mode ?? "").isEmpty ? "vip" : endpoint.Mode!
        guard endpointMode == "vip" || endpointMode == "dnsrr" else {
            throw .invalidArgument("rpc error: code = InvalidArgument desc = EndpointSpec: invalid resolution mode: \(endpointMode)")
        }
        endpoint.Mode = endpointMode
        if let ports = endpoint.Ports {
            guard ports.count <= 1024 else { throw .invalidArgument("too many published ports") }
            var seen = Set<String>()
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
                if publish == "ingress", endpointMode == "dnsrr" {
                    throw .invalidArgument(
                        "rpc error: code = InvalidArgument desc = EndpointSpec: port published with ingress mode can't be used with dnsrr mode"
                    )
                }
                if let pub = p.PublishedPort, pub != 0, !seen.insert("\(pub)/\(proto)").inserted {
                    throw .invalidArgument("rpc error: code = InvalidArgument desc = EndpointSpec: duplicate published ports provided")
                }
                return p
            }
        }
        spec.EndpointSpec = endpoint

        spec.UpdateConfig = try normalize(spec.UpdateConfig, what: "UpdateConfig")
        spec.RollbackConfig = try normalize(spec.RollbackConfig, what: "RollbackConfig")
        if let c = spec.TaskTemplate.RestartPolicy?.Condition, !c.isEmpty, !["none", "on-failure", "any"].contains(c) {
            throw .invalidArgument("invalid RestartCondition \(c)")
        }
        if let nets = spec.TaskTemplate.Networks, nets.count > 64 { throw .invalidArgument("too many networks") }
        return spec
    }

    static func normalize(_ c: UpdateConfig?, what: String) throws(EngineError) -> UpdateConfig? {
        guard var c else { return nil }
        if (c.Order ?? "").isEmpty { c.Order = "stop-first" }
        guard c.Order == "stop-first" || c.Order == "start-first" else { throw .invalidArgument("\(what): invalid Order \(c.Order!)") }
        if let a = c.FailureAction, !a.isEmpty, !["pause", "continue", "rollback"].contains(a) {
            throw .invalidArgument("\(what): invalid FailureAction \(a)")
        }
        if (c.Delay ?? 0) < 0 || (c.Monitor ?? 0) < 0 { throw .invalidArgument("\(what): negative duration") }
        return c
    }

    /// swarmkit's rule: letters, digits, `-` and `_`, starting and ending alphanumeric, at most 63.
    static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count <= 63, let first = bytes.first, let last = bytes.last else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }
        return alnum(first) && alnum(last) && bytes.allSatisfy { alnum($0) || $0 == 45 || $0 == 95 }
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
