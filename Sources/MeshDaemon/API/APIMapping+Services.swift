import MeshAPI
import MeshCluster
import MeshValues

/// MeshCluster → MeshAPI for services and their specs. Empty collections become absent fields, as Go's
/// `omitempty` leaves them, except where the CLI dereferences the value (`ContainerSpec`, `Replicas`).
extension APIMapping {
    /// `dualStack` as for `task`: a VIP on a dual-stack network is listed with its IPv6 twin.
    public static func service(
        _ s: ClusterService, status: MeshCluster.ServiceStatus? = nil, dualStack: [String: (IPPrefix, IPPrefix)] = [:]
    ) -> MeshAPI.Service {
        let spec = apiServiceSpec(s.spec)
        let vips = s.endpoint.virtualIPs.flatMap { v in
            [Service.VirtualIP(NetworkID: v.networkID, Addr: v.addr)]
                + (twin(of: v.addr, on: v.networkID, dualStack).map { [Service.VirtualIP(NetworkID: v.networkID, Addr: $0)] } ?? [])
        }
        var out = Service(
            ID: s.id, Version: ObjectVersion(s.version), CreatedAt: s.createdAt, UpdatedAt: s.updatedAt,
            Spec: spec, PreviousSpec: s.previousSpec.map(apiServiceSpec),
            Endpoint: Service.Endpoint(
                Spec: spec.EndpointSpec,
                Ports: nonEmpty(s.endpoint.ports.map(apiPort)),
                VirtualIPs: nonEmpty(vips)),
            UpdateStatus: s.updateStatus.map(updateStatus),
            ServiceStatus: status.map(serviceStatus))
        if s.spec.mode.isJob {
            out.JobStatus = .init(JobIteration: ObjectVersion(s.specVersion), LastExecution: s.jobStartedAt)
        }
        return out
    }

    public static func serviceStatus(_ s: MeshCluster.ServiceStatus) -> Service.ServiceStatus {
        Service.ServiceStatus(
            RunningTasks: UInt64(max(0, s.runningTasks)), DesiredTasks: UInt64(max(0, s.desiredTasks)),
            CompletedTasks: UInt64(max(0, s.completedTasks)))
    }

    static func updateStatus(_ u: MeshCluster.UpdateStatus) -> Service.UpdateStatus {
        Service.UpdateStatus(
            State: u.state.rawValue, StartedAt: u.startedAt, CompletedAt: u.completedAt,
            Message: u.message.isEmpty ? nil : u.message)
    }

    public static func apiServiceSpec(_ s: MeshCluster.ServiceSpec) -> MeshAPI.ServiceSpec {
        let mode: MeshAPI.ServiceMode
        switch s.mode {
        case .replicated(let n): mode = .replicated(UInt64(max(0, n)))
        case .global: mode = .global
        case .replicatedJob(let concurrent, let total):
            mode = MeshAPI.ServiceMode(
                ReplicatedJob: .init(MaxConcurrent: UInt64(max(0, concurrent)), TotalCompletions: UInt64(max(0, total))))
        case .globalJob: mode = MeshAPI.ServiceMode(GlobalJob: .init())
        }
        var endpoint = MeshAPI.EndpointSpec(Mode: s.endpoint.mode.rawValue)
        endpoint.Ports = nonEmpty(s.endpoint.ports.map(apiPort))
        var spec = MeshAPI.ServiceSpec(
            Name: s.name, Labels: s.labels, TaskTemplate: apiTaskSpec(s.task), Mode: mode,
            UpdateConfig: s.update.map(apiUpdateConfig), RollbackConfig: s.rollback.map(apiUpdateConfig),
            EndpointSpec: endpoint)
        if s.networksAtServiceLevel {
            spec.Networks = spec.TaskTemplate.Networks
            spec.TaskTemplate.Networks = nil
        }
        return spec
    }

    /// Every field `clusterServiceSpec` stored, in Docker's shape: Go's `omitempty` leaves zero values out,
    /// pointers (`Init`, `StopGracePeriod`, `Healthcheck`, `DNSConfig`, `Privileges`, `LogDriver`,
    /// `Resources.Limits`/`Reservations`) come back when they were sent, even empty.
    public static func apiTaskSpec(_ t: MeshCluster.TaskSpec) -> MeshAPI.TaskSpec {
        var container = MeshAPI.ContainerSpec(Image: t.image, Args: nonEmpty(t.args), Env: nonEmpty(t.env))
        container.Labels = t.labels.isEmpty ? nil : t.labels
        container.Command = nonEmpty(t.command)
        container.Hostname = t.hostname.isEmpty ? nil : t.hostname
        container.Dir = t.dir.isEmpty ? nil : t.dir
        container.User = t.user.isEmpty ? nil : t.user
        apply(t.container, to: &container)
        var resources = ResourceRequirements()
        resources.Limits = t.resources.limits.map {
            ResourceRequirements.Limit(NanoCPUs: nonZero($0.nanoCPUs), MemoryBytes: nonZero($0.memoryBytes), Pids: nonZero($0.pids))
        }
        resources.Reservations = t.resources.reservations.map { r in
            var out = ResourceRequirements.Resources(NanoCPUs: nonZero(r.nanoCPUs), MemoryBytes: nonZero(r.memoryBytes))
            out.GenericResources = nonEmpty(
                r.genericResources.map { g in
                    var out = ResourceRequirements.GenericResource()
                    switch g {
                    case .named(let kind, let value): out.NamedResourceSpec = .init(Kind: kind, Value: value)
                    case .discrete(let kind, let value): out.DiscreteResourceSpec = .init(Kind: kind, Value: value)
                    }
                    return out
                })
            return out
        }
        var placement = Placement(Constraints: nonEmpty(t.constraints), MaxReplicas: nonZero(t.placement.maxReplicas))
        placement.Preferences = nonEmpty(
            t.placement.spreadDescriptors.map { Placement.PlacementPreference(Spread: .init(SpreadDescriptor: $0)) })
        placement.Platforms = nonEmpty(t.placement.platforms.map { Node.Platform(Architecture: $0.architecture, OS: $0.os) })
        var spec = MeshAPI.TaskSpec(
            ContainerSpec: container, Resources: resources,
            RestartPolicy: t.restartPolicy.map {
                MeshAPI.RestartPolicy(
                    Condition: $0.condition.rawValue, Delay: $0.delay, MaxAttempts: UInt64(max(0, $0.maxAttempts)), Window: $0.window)
            },
            Placement: placement,
            Networks: nonEmpty(
                t.networks.map {
                    var n = NetworkAttachmentConfig(Target: $0.target, Aliases: nonEmpty($0.aliases))
                    n.DriverOpts = $0.driverOpts.isEmpty ? nil : $0.driverOpts
                    return n
                }),
            LogDriver: t.logDriver.map { Driver(Name: $0.name, Options: $0.options.isEmpty ? nil : $0.options) },
            ForceUpdate: t.forceUpdate)
        spec.Runtime = "container"
        return spec
    }

    static func apply(_ o: ContainerOptions, to c: inout MeshAPI.ContainerSpec) {
        c.Groups = nonEmpty(o.groups)
        c.TTY = o.tty ? true : nil
        c.OpenStdin = o.openStdin ? true : nil
        c.ReadOnly = o.readOnly ? true : nil
        c.Init = o.initProcess
        c.StopSignal = o.stopSignal.isEmpty ? nil : o.stopSignal
        c.StopGracePeriod = o.stopGracePeriod
        c.Healthcheck = o.healthcheck.map { h in
            var out = MeshAPI.ContainerSpec.HealthConfig()
            out.Test = nonEmpty(h.test)
            out.Interval = nonZero(h.interval)
            out.Timeout = nonZero(h.timeout)
            out.StartPeriod = nonZero(h.startPeriod)
            out.StartInterval = nonZero(h.startInterval)
            out.Retries = nonZero(h.retries)
            return out
        }
        c.Hosts = nonEmpty(o.hosts)
        c.DNSConfig = o.dnsConfig.map {
            .init(Nameservers: nonEmpty($0.nameservers), Search: nonEmpty($0.search), Options: nonEmpty($0.options))
        }
        c.Privileges = o.privileges.map { p in
            var out = MeshAPI.ContainerSpec.Privileges()
            out.CredentialSpec = p.credentialSpec.map {
                .init(Config: nonEmpty($0.config), File: nonEmpty($0.file), Registry: nonEmpty($0.registry))
            }
            out.SELinuxContext = p.seLinuxContext.map {
                .init(
                    Disable: $0.disable ? true : nil, User: nonEmpty($0.user), Role: nonEmpty($0.role), Type: nonEmpty($0.type),
                    Level: nonEmpty($0.level))
            }
            out.Seccomp = p.seccomp.map { .init(Mode: nonEmpty($0.mode), Profile: nonEmpty($0.profile)) }
            out.AppArmor = p.appArmorMode.map { .init(Mode: nonEmpty($0)) }
            out.NoNewPrivileges = p.noNewPrivileges ? true : nil
            return out
        }
        c.Mounts = nonEmpty(o.mounts.map { apiMount($0) })
        c.Isolation = nonEmpty(o.isolation)
        c.Sysctls = o.sysctls.isEmpty ? nil : o.sysctls
        c.CapabilityAdd = nonEmpty(o.capabilityAdd)
        c.CapabilityDrop = nonEmpty(o.capabilityDrop)
        c.Ulimits = nonEmpty(o.ulimits.map { MeshAPI.ContainerSpec.Ulimit(Name: $0.name, Soft: $0.soft, Hard: $0.hard) })
        c.OomScoreAdj = nonZero(o.oomScoreAdj)
        func file(_ r: ContainerOptions.DataReference) -> FileTarget {
            FileTarget(Name: r.fileName, UID: r.uid, GID: r.gid, Mode: r.mode)
        }
        c.Secrets = o.secrets.map { $0.map { SecretReference(File: file($0), SecretID: $0.id, SecretName: $0.name) } }
        c.Configs = o.configs.map { $0.map { ConfigReference(File: file($0), ConfigID: $0.id, ConfigName: $0.name) } }
    }

    static func apiMount(_ m: ContainerOptions.Mount) -> MeshAPI.ContainerSpec.Mount {
        var out = MeshAPI.ContainerSpec.Mount(Type: m.kind.rawValue, Source: nonEmpty(m.source), Target: nonEmpty(m.target))
        out.ReadOnly = m.readOnly ? true : nil
        out.Consistency = nonEmpty(m.consistency)
        out.BindOptions = m.bindOptions.map {
            .init(
                Propagation: nonEmpty($0.propagation), NonRecursive: $0.nonRecursive ? true : nil,
                CreateMountpoint: $0.createMountpoint ? true : nil, ReadOnlyNonRecursive: $0.readOnlyNonRecursive ? true : nil,
                ReadOnlyForceRecursive: $0.readOnlyForceRecursive ? true : nil)
        }
        out.VolumeOptions = m.volumeOptions.map {
            .init(
                NoCopy: $0.noCopy ? true : nil, Labels: $0.labels.isEmpty ? nil : $0.labels,
                DriverConfig: $0.driverConfig.map { Driver(Name: $0.name, Options: $0.options.isEmpty ? nil : $0.options) },
                Subpath: nonEmpty($0.subpath))
        }
        out.ImageOptions = m.imageSubpath.map { .init(Subpath: nonEmpty($0)) }
        out.TmpfsOptions = m.tmpfsOptions.map {
            .init(SizeBytes: nonZero($0.sizeBytes), Mode: nonZero($0.mode), Options: nonEmpty($0.options))
        }
        return out
    }

    static func apiUpdateConfig(_ c: MeshCluster.UpdateConfig) -> MeshAPI.UpdateConfig {
        MeshAPI.UpdateConfig(
            Parallelism: UInt64(max(0, c.parallelism)), Delay: nonZero(c.delay), FailureAction: c.failureAction.rawValue,
            Monitor: c.monitor, MaxFailureRatio: c.maxFailureRatio, Order: c.order.rawValue)
    }

    static func apiPort(_ p: MeshCluster.PortConfig) -> MeshAPI.PortConfig {
        var out = MeshAPI.PortConfig(
            Protocol: p.protocol.rawValue, TargetPort: UInt32(p.targetPort),
            PublishedPort: p.publishedPort == 0 ? nil : UInt32(p.publishedPort),
            PublishMode: p.publishMode.rawValue)
        out.Name = p.name.isEmpty ? nil : p.name
        return out
    }

    static func nonEmpty<T>(_ values: [T]) -> [T]? { values.isEmpty ? nil : values }
    static func nonEmpty(_ s: String) -> String? { s.isEmpty ? nil : s }
    static func nonZero<T: BinaryInteger>(_ n: T) -> T? { n == 0 ? nil : n }
}
