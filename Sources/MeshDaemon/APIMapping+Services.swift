import MeshAPI
import MeshCluster

/// MeshCluster → MeshAPI for services and their specs. Empty collections become absent fields, as Go's
/// `omitempty` leaves them, except where the CLI dereferences the value (`ContainerSpec`, `Replicas`).
extension APIMapping {
    public static func service(_ s: ClusterService, status: MeshCluster.ServiceStatus? = nil) -> MeshAPI.Service {
        let spec = apiServiceSpec(s.spec)
        return Service(
            ID: s.id, Version: ObjectVersion(s.version), CreatedAt: s.createdAt, UpdatedAt: s.updatedAt,
            Spec: spec, PreviousSpec: s.previousSpec.map(apiServiceSpec),
            Endpoint: Service.Endpoint(
                Spec: spec.EndpointSpec,
                Ports: nonEmpty(s.endpoint.ports.map(apiPort)),
                VirtualIPs: nonEmpty(s.endpoint.virtualIPs.map { Service.VirtualIP(NetworkID: $0.networkID, Addr: $0.addr) })),
            UpdateStatus: s.updateStatus.map(updateStatus),
            ServiceStatus: status.map(serviceStatus))
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
        }
        var endpoint = MeshAPI.EndpointSpec(Mode: s.endpoint.mode.rawValue)
        endpoint.Ports = nonEmpty(s.endpoint.ports.map(apiPort))
        return MeshAPI.ServiceSpec(
            Name: s.name, Labels: s.labels, TaskTemplate: apiTaskSpec(s.task), Mode: mode,
            UpdateConfig: s.update.map(apiUpdateConfig), RollbackConfig: s.rollback.map(apiUpdateConfig),
            EndpointSpec: endpoint)
    }

    public static func apiTaskSpec(_ t: MeshCluster.TaskSpec) -> MeshAPI.TaskSpec {
        var container = MeshAPI.ContainerSpec(Image: t.image, Args: nonEmpty(t.args), Env: nonEmpty(t.env))
        container.Labels = t.labels.isEmpty ? nil : t.labels
        container.Command = nonEmpty(t.command)
        container.Hostname = t.hostname.isEmpty ? nil : t.hostname
        container.Dir = t.dir.isEmpty ? nil : t.dir
        container.User = t.user.isEmpty ? nil : t.user
        var spec = MeshAPI.TaskSpec(
            ContainerSpec: container, Resources: ResourceRequirements(),
            RestartPolicy: t.restartPolicy.map {
                MeshAPI.RestartPolicy(Condition: $0.condition.rawValue, Delay: $0.delay, MaxAttempts: UInt64(max(0, $0.maxAttempts)))
            },
            Placement: Placement(Constraints: nonEmpty(t.constraints)),
            Networks: nonEmpty(t.networks.map { NetworkAttachmentConfig(Target: $0.target, Aliases: nonEmpty($0.aliases)) }),
            ForceUpdate: t.forceUpdate)
        spec.Runtime = "container"
        return spec
    }

    static func apiUpdateConfig(_ c: MeshCluster.UpdateConfig) -> MeshAPI.UpdateConfig {
        MeshAPI.UpdateConfig(
            Parallelism: UInt64(max(0, c.parallelism)), Delay: c.delay, FailureAction: c.failureAction.rawValue,
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
}
