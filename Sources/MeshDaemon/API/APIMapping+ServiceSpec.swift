import MeshAPI
import MeshCluster
import MeshValues

/// MeshAPI → MeshCluster for service specs: the middle of the one spec pipeline. The request is
/// normalised first (`ServiceSpecNormalizer`: form, enumerations, ranges, refusals by name, dockerd's
/// defaults), then converted field by field — every field of the API's `TaskSpec`/`ContainerSpec` has a
/// home in `MeshCluster.TaskSpec`, so nothing a client sent is lost — and the cluster manager validates
/// the meaning (`MeshCluster.ServiceSpec.validate`). The conversion itself makes no decisions: a value
/// the normaliser let through always has a cluster counterpart. Absent fields take the values dockerd
/// and swarmkit give them (Go zero values inside a present object, swarmkit's defaults for absent
/// objects).
extension APIMapping {
    public static func clusterServiceSpec(_ input: MeshAPI.ServiceSpec) throws(EngineError) -> MeshCluster.ServiceSpec {
        var api = try ServiceSpecNormalizer.normalize(input)
        let atServiceLevel = api.Networks != nil
        if let nets = api.Networks { api.TaskTemplate.Networks = nets }
        return MeshCluster.ServiceSpec(
            name: api.Name ?? "", labels: api.Labels ?? [:], task: taskSpec(api.TaskTemplate), mode: mode(api.Mode),
            update: api.UpdateConfig.map(updateConfig), rollback: api.RollbackConfig.map(updateConfig),
            endpoint: endpointSpec(api.EndpointSpec), networksAtServiceLevel: atServiceLevel)
    }

    static func taskSpec(_ t: MeshAPI.TaskSpec) -> MeshCluster.TaskSpec {
        let c = t.ContainerSpec
        return MeshCluster.TaskSpec(
            image: c?.Image ?? "", command: c?.Command ?? [], args: c?.Args ?? [],
            env: c?.Env ?? [], labels: c?.Labels ?? [:], hostname: c?.Hostname ?? "",
            dir: c?.Dir ?? "", user: c?.User ?? "",
            restartPolicy: t.RestartPolicy.map(restartPolicy),
            constraints: t.Placement?.Constraints ?? [],
            networks: (t.Networks ?? []).map {
                NetworkTarget(target: $0.Target, aliases: $0.Aliases ?? [], driverOpts: $0.DriverOpts ?? [:])
            },
            forceUpdate: t.ForceUpdate ?? 0, container: c.map(containerOptions) ?? ContainerOptions(),
            resources: resources(t.Resources), placement: placement(t.Placement),
            logDriver: t.LogDriver.map { DriverConfig(name: $0.Name, options: $0.Options ?? [:]) })
    }

    static func containerOptions(_ c: MeshAPI.ContainerSpec) -> ContainerOptions {
        var o = ContainerOptions()
        o.groups = c.Groups ?? []
        o.tty = c.TTY ?? false
        o.openStdin = c.OpenStdin ?? false
        o.readOnly = c.ReadOnly ?? false
        o.initProcess = c.Init
        o.stopSignal = c.StopSignal ?? ""
        o.stopGracePeriod = c.StopGracePeriod
        o.healthcheck = c.Healthcheck.map { h in
            var out = ContainerOptions.Healthcheck()
            out.test = h.Test ?? []
            out.interval = h.Interval ?? 0
            out.timeout = h.Timeout ?? 0
            out.startPeriod = h.StartPeriod ?? 0
            out.startInterval = h.StartInterval ?? 0
            out.retries = h.Retries ?? 0
            return out
        }
        o.hosts = c.Hosts ?? []
        o.dnsConfig = c.DNSConfig.map { d in
            var out = ContainerOptions.DNSConfig()
            out.nameservers = d.Nameservers ?? []
            out.search = d.Search ?? []
            out.options = d.Options ?? []
            return out
        }
        o.privileges = c.Privileges.map(privileges)
        o.mounts = (c.Mounts ?? []).map(mount)
        o.isolation = c.Isolation ?? ""
        o.sysctls = c.Sysctls ?? [:]
        o.capabilityAdd = c.CapabilityAdd ?? []
        o.capabilityDrop = c.CapabilityDrop ?? []
        o.ulimits = (c.Ulimits ?? []).map { ContainerOptions.Ulimit(name: $0.Name ?? "", soft: $0.Soft ?? 0, hard: $0.Hard ?? 0) }
        o.oomScoreAdj = c.OomScoreAdj ?? 0
        // Go's zero values for a File sent without them: root, 0444 only when the CLI sends it.
        func reference(_ id: String?, _ name: String?, _ f: FileTarget?) -> ContainerOptions.DataReference {
            ContainerOptions.DataReference(
                id: id ?? "", name: name ?? "", fileName: f?.Name ?? "", uid: f?.UID ?? "", gid: f?.GID ?? "", mode: f?.Mode ?? 0)
        }
        o.secrets = c.Secrets.map { $0.map { reference($0.SecretID, $0.SecretName, $0.File) } }
        o.configs = c.Configs.map { $0.map { reference($0.ConfigID, $0.ConfigName, $0.File) } }
        return o
    }

    static func privileges(_ p: MeshAPI.ContainerSpec.Privileges) -> ContainerOptions.Privileges {
        var out = ContainerOptions.Privileges()
        out.credentialSpec = p.CredentialSpec.map { s in
            var c = ContainerOptions.Privileges.CredentialSpec()
            c.config = s.Config ?? ""
            c.file = s.File ?? ""
            c.registry = s.Registry ?? ""
            return c
        }
        out.seLinuxContext = p.SELinuxContext.map { s in
            var c = ContainerOptions.Privileges.SELinuxContext()
            c.disable = s.Disable ?? false
            c.user = s.User ?? ""
            c.role = s.Role ?? ""
            c.type = s.`Type` ?? ""
            c.level = s.Level ?? ""
            return c
        }
        out.seccomp = p.Seccomp.map { s in
            var c = ContainerOptions.Privileges.Seccomp()
            c.mode = s.Mode ?? ""
            c.profile = s.Profile ?? ""
            return c
        }
        out.appArmorMode = p.AppArmor.map { $0.Mode ?? "" }
        out.noNewPrivileges = p.NoNewPrivileges ?? false
        return out
    }

    static func mount(_ m: MeshAPI.ContainerSpec.Mount) -> ContainerOptions.Mount {
        // The normaliser refused any other type.
        var out = ContainerOptions.Mount(kind: ContainerOptions.Mount.Kind(rawValue: m.`Type` ?? "") ?? .bind, target: m.Target ?? "")
        out.source = m.Source ?? ""
        out.readOnly = m.ReadOnly ?? false
        out.consistency = m.Consistency ?? ""
        out.bindOptions = m.BindOptions.map { b in
            var o = ContainerOptions.Mount.BindOptions()
            o.propagation = b.Propagation ?? ""
            o.nonRecursive = b.NonRecursive ?? false
            o.createMountpoint = b.CreateMountpoint ?? false
            o.readOnlyNonRecursive = b.ReadOnlyNonRecursive ?? false
            o.readOnlyForceRecursive = b.ReadOnlyForceRecursive ?? false
            return o
        }
        out.volumeOptions = m.VolumeOptions.map { v in
            var o = ContainerOptions.Mount.VolumeOptions()
            o.noCopy = v.NoCopy ?? false
            o.labels = v.Labels ?? [:]
            o.driverConfig = v.DriverConfig.map { DriverConfig(name: $0.Name, options: $0.Options ?? [:]) }
            o.subpath = v.Subpath ?? ""
            return o
        }
        out.imageSubpath = m.ImageOptions.map { $0.Subpath ?? "" }
        out.tmpfsOptions = m.TmpfsOptions.map { t in
            var o = ContainerOptions.Mount.TmpfsOptions()
            o.sizeBytes = t.SizeBytes ?? 0
            o.mode = t.Mode ?? 0
            o.options = t.Options ?? []
            return o
        }
        return out
    }

    static func resources(_ r: MeshAPI.ResourceRequirements?) -> TaskResources {
        var out = TaskResources()
        out.limits = r?.Limits.map { l in
            var o = TaskResources.Limits()
            o.nanoCPUs = l.NanoCPUs ?? 0
            o.memoryBytes = l.MemoryBytes ?? 0
            o.pids = l.Pids ?? 0
            return o
        }
        out.reservations = r?.Reservations.map { v in
            var o = TaskResources.Reservations()
            o.nanoCPUs = v.NanoCPUs ?? 0
            o.memoryBytes = v.MemoryBytes ?? 0
            o.genericResources = (v.GenericResources ?? []).map { g in
                if let n = g.NamedResourceSpec { return .named(kind: n.Kind ?? "", value: n.Value ?? "") }
                let d = g.DiscreteResourceSpec
                return .discrete(kind: d?.Kind ?? "", value: d?.Value ?? 0)
            }
            return o
        }
        return out
    }

    static func placement(_ p: MeshAPI.Placement?) -> PlacementOptions {
        var out = PlacementOptions()
        out.spreadDescriptors = (p?.Preferences ?? []).compactMap { $0.Spread?.SpreadDescriptor }
        out.maxReplicas = p?.MaxReplicas ?? 0
        out.platforms = (p?.Platforms ?? []).map { PlacementOptions.Platform(architecture: $0.Architecture, os: $0.OS) }
        return out
    }

    static func mode(_ m: MeshAPI.ServiceMode?) -> MeshCluster.ServiceMode {
        // Normalised: one member, job modes refused, replicas within `maxReplicas`.
        if m?.Global != nil { return .global }
        if m?.GlobalJob != nil { return .globalJob }
        if let job = m?.ReplicatedJob {
            return .replicatedJob(
                maxConcurrent: Int(clamping: job.MaxConcurrent ?? 1),
                totalCompletions: Int(clamping: job.TotalCompletions ?? job.MaxConcurrent ?? 1))
        }
        return .replicated(replicas: Int(clamping: m?.Replicated?.Replicas ?? 1))
    }

    static func restartPolicy(_ p: MeshAPI.RestartPolicy) -> MeshCluster.RestartPolicy {
        let condition: MeshCluster.RestartPolicy.Condition =
            switch p.Condition ?? "" {
            case "none": .none
            case "on-failure": .onFailure
            default: .any
            }
        return MeshCluster.RestartPolicy(
            condition: condition, delay: p.Delay ?? defaultRestartDelay, maxAttempts: Int(clamping: p.MaxAttempts ?? 0),
            window: p.Window)
    }

    static func updateConfig(_ c: MeshAPI.UpdateConfig) -> MeshCluster.UpdateConfig {
        let action: MeshCluster.UpdateConfig.FailureAction =
            switch c.FailureAction ?? "" {
            case "continue": .continue
            case "rollback": .rollback
            default: .pause
            }
        let order: MeshCluster.UpdateConfig.Order = c.Order == "start-first" ? .startFirst : .stopFirst
        let monitor = c.Monitor ?? 0
        // dockerd sends no Monitor for 0, and swarmkit then uses its default.
        return MeshCluster.UpdateConfig(
            parallelism: Int(clamping: c.Parallelism ?? 0), delay: c.Delay ?? 0, failureAction: action,
            monitor: monitor == 0 ? defaultMonitor : monitor, maxFailureRatio: c.MaxFailureRatio ?? 0, order: order)
    }

    static func endpointSpec(_ e: MeshAPI.EndpointSpec?) -> MeshCluster.EndpointSpec {
        MeshCluster.EndpointSpec(mode: e?.Mode == "dnsrr" ? .dnsrr : .vip, ports: (e?.Ports ?? []).map(port))
    }

    static func port(_ p: MeshAPI.PortConfig) -> MeshCluster.PortConfig {
        // Normalised: a known protocol and publish mode, both ports within 16 bits.
        MeshCluster.PortConfig(
            name: p.Name ?? "", protocol: TransportProtocol(rawValue: p.Protocol ?? "") ?? .tcp,
            targetPort: UInt16(clamping: p.TargetPort), publishedPort: UInt16(clamping: p.PublishedPort ?? 0),
            publishMode: PublishMode(rawValue: p.PublishMode ?? "") ?? .ingress)
    }
}
