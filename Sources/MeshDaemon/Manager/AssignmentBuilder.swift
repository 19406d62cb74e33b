import Foundation
import MeshCluster
import MeshControl
import MeshDataplane
import MeshKernel

/// What one node is told to run, computed from the manager's store: its tasks, the networks they
/// need (and ingress wherever a service publishes a port, since every node answers on it), the
/// services reachable from those networks, and the other nodes' ingress addresses. Other nodes'
/// tasks are not in it: each node learns them over gossip, so a dead node's backends leave every
/// balancer without waiting for the manager.
public enum AssignmentBuilder {
    /// `data`: the secrets and configs the snapshot's tasks name (`DataFiles.referenced`), by ID.
    public static func build(
        _ snapshot: ClusterSnapshot, settings: ClusterSettings, nodeID: String, data: DataFiles = DataFiles()
    ) -> NodeAssignment? {
        guard let node = snapshot.nodes.first(where: { $0.id == nodeID }),
            let address = IPAddress(node.addr)
        else { return nil }
        let ingressID = settings.ingressNetworkID
        let networksByID = Dictionary(snapshot.networks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let servicesByID = snapshot.serviceIndex()
        let identity = MeshDataplane.NodeIdentity(
            id: node.id, advertiseAddress: address, dataPathPort: settings.dataPathPort,
            ingressAddress: ingressAddress(node, ingressID), ingressSNAT: node.labels[Self.ingressSNATLabel] == "true")

        var tasks: [NodeAssignment.LocalTask] = []
        var retained: [String] = []
        for t in snapshot.tasks where t.nodeID == nodeID && t.status.state >= .assigned {
            // A task that finished and is not wanted any more needs nothing from the node but
            // its container, kept while the task is in the history.
            if t.status.state.isTerminal && t.desiredState > .running {
                retained.append(t.id)
                continue
            }
            guard let service = servicesByID[t.serviceID].map({ snapshot.services[$0] }) ?? orphanService(t) else { continue }
            let attachments = t.networks.compactMap { a -> NodeAssignment.Attachment? in
                // A stopping task may outlive its network (`network rm` does not wait for it): the node has
                // no such network to attach it to any more.
                guard networksByID[a.networkID] != nil, let p = IPPrefix(a.address) else { return nil }
                return .init(network: a.networkID, address: p.address)
            }
            let desired: NodeAssignment.DesiredState = t.desiredState <= .running && !t.status.state.isTerminal ? .running : .shutdown
            tasks.append(
                .init(
                    id: t.id, name: taskName(t, serviceName: service.spec.name), service: t.serviceID,
                    image: t.spec.image, args: t.spec.command + t.spec.args, env: environment(t.spec.env),
                    desired: desired, attachments: attachments, container: containerFields(t.spec, serviceName: service.spec.name),
                    files: desired == .running ? data.files(for: t.spec.container) : nil))
        }

        let publishesIngress = snapshot.services.contains { s in s.endpoint.ports.contains { $0.publishMode == .ingress } }
        var carried = Set(tasks.flatMap { $0.attachments.map(\.network) })
        if publishesIngress || carried.contains(ingressID) { carried.insert(ingressID) } else { carried.remove(ingressID) }
        let networks = carried.sorted().compactMap { id -> OverlayNetwork? in
            guard let n = networksByID[id] else { return nil }
            return OverlayNetwork(
                id: n.id, name: n.name, vni: n.vni, subnet: n.subnet.network, gateway: n.gateway,
                ingress: n.ingress ? true : nil, encrypted: n.encrypted && !n.ingress ? true : nil, subnet6: n.subnet6)
        }

        var services: [NodeAssignment.Service] = []
        for i in snapshot.services.indices {
            let s = snapshot.services[i]
            let serviceNetworks = Set(s.spec.task.networks.map(\.target))
            let ports = s.endpoint.ports.map { p in
                MeshDataplane.BalancedService.Port(
                    protocol: TransportProtocol(rawValue: p.protocol.rawValue) ?? .tcp,
                    published: p.publishedPort, target: p.targetPort,
                    mode: p.publishMode == .host ? .host : .ingress)
            }
            let reachable = !serviceNetworks.isDisjoint(with: carried) || (!ports.isEmpty && carried.contains(ingressID))
            let hasLocalTask = tasks.contains { $0.service == s.id }
            guard reachable || hasLocalTask else { continue }
            let vips = s.endpoint.virtualIPs.compactMap { v -> MeshDataplane.BalancedService.VIP? in
                guard carried.contains(v.networkID), let p = IPPrefix(v.addr) else { return nil }
                return .init(network: v.networkID, address: p.address)
            }
            let aliases = Array(Set(s.spec.task.networks.flatMap(\.aliases))).sorted()
            services.append(
                .init(
                    id: s.id, name: s.spec.name, mode: s.spec.endpoint.mode == .dnsrr ? .dnsrr : .vip,
                    vips: vips, ports: carried.contains(ingressID) || hasLocalTask ? ports : [], aliases: aliases))
        }

        var peers: [NodeAssignment.PeerIngress] = []
        if carried.contains(ingressID) {
            // A down node stays a peer until it is removed: "down" means its daemon is silent, and its
            // kernel may well still take connections on its published ports (a daemon SIGKILLed, a manager
            // failing over); the replies of those connections come back through this peer entry. For a
            // node that is really gone the entry costs nothing: no balancer sends to it.
            for other in snapshot.nodes where other.id != nodeID {
                guard let a = IPAddress(other.addr), let ing = ingressAddress(other, ingressID) else { continue }
                peers.append(.init(nodeID: other.id, nodeAddress: a, address: ing))
            }
            peers.sort { $0.nodeID < $1.nodeID }
        }
        // In ID order: the snapshot's is none in particular, and a push compares with what was sent.
        var a = NodeAssignment(
            node: identity, networks: networks, services: services.sorted { $0.id < $1.id }, tasks: tasks.sorted { $0.id < $1.id },
            peers: peers)
        a.retained = retained.sorted()
        return a
    }

    /// Docker's container name for a task: `<service>.<slot>.<task id>`, the node id for global tasks.
    /// The template's fields a container driver applies (the process driver reads only args and env).
    static func containerFields(_ spec: TaskSpec, serviceName: String) -> NodeAssignment.ContainerFields {
        let c = spec.container
        // The kinds a node can make; the others (npipe, cluster, image) reach it too, and it
        // fails the task naming them rather than run without the mount.
        let mounts = c.mounts.map { m in
            NodeAssignment.Mount(
                type: m.kind.rawValue, source: m.source, target: m.target, readOnly: m.readOnly,
                noCopy: m.volumeOptions?.noCopy == true ? true : nil,
                tmpfsSizeBytes: (m.tmpfsOptions?.sizeBytes ?? 0) > 0 ? m.tmpfsOptions?.sizeBytes : nil,
                tmpfsMode: (m.tmpfsOptions?.mode ?? 0) != 0 ? m.tmpfsOptions?.mode : nil,
                volumeLabels: (m.volumeOptions?.labels ?? [:]).isEmpty ? nil : m.volumeOptions?.labels,
                unapplied: unappliedOptions(m))
        }
        func nonEmpty<T: Collection>(_ x: T) -> T? { x.isEmpty ? nil : x }
        return NodeAssignment.ContainerFields(
            serviceName: serviceName, command: spec.command, args: spec.args, user: spec.user, dir: spec.dir,
            hostname: spec.hostname, labels: spec.labels, stopSignal: c.stopSignal,
            stopGraceNanos: c.stopGracePeriod, memoryBytes: spec.resources.limits?.memoryBytes ?? 0,
            nanoCPUs: spec.resources.limits?.nanoCPUs ?? 0, mounts: nonEmpty(mounts), readOnly: c.readOnly ? true : nil,
            capabilityAdd: nonEmpty(c.capabilityAdd), capabilityDrop: nonEmpty(c.capabilityDrop), sysctls: nonEmpty(c.sysctls),
            groups: nonEmpty(c.groups), hosts: nonEmpty(c.hosts),
            // Also without a test: its fields go over the image's HEALTHCHECK on the node (a node
            // with no image check runs none for it).
            healthcheck: c.healthcheck.map { h in
                HealthConfig(
                    test: h.test, intervalNanos: h.interval, timeoutNanos: h.timeout, startPeriodNanos: h.startPeriod,
                    startIntervalNanos: h.startInterval, retries: h.retries)
            })
    }

    /// What a mount asks for beyond what a node's local driver does, by the API's names.
    static func unappliedOptions(_ m: ContainerOptions.Mount) -> [String]? {
        var out: [String] = []
        if !m.consistency.isEmpty && m.consistency != "default" { out.append("Consistency (\(m.consistency))") }
        if let b = m.bindOptions {
            if !b.propagation.isEmpty && b.propagation != "rprivate" { out.append("BindOptions.Propagation (\(b.propagation))") }
            if b.nonRecursive { out.append("BindOptions.NonRecursive") }
            if b.createMountpoint { out.append("BindOptions.CreateMountpoint") }
            if b.readOnlyNonRecursive { out.append("BindOptions.ReadOnlyNonRecursive") }
            if b.readOnlyForceRecursive { out.append("BindOptions.ReadOnlyForceRecursive") }
        }
        if let v = m.volumeOptions {
            if let d = v.driverConfig, !(d.name.isEmpty || d.name == "local") || !d.options.isEmpty {
                out.append("VolumeOptions.DriverConfig (\(d.name.isEmpty ? "local" : d.name)\(d.options.isEmpty ? "" : " with options"))")
            }
            if !v.subpath.isEmpty { out.append("VolumeOptions.Subpath") }
        }
        if let t = m.tmpfsOptions, !t.options.isEmpty { out.append("TmpfsOptions.Options") }
        if m.imageSubpath != nil { out.append("ImageOptions") }
        return out.isEmpty ? nil : out
    }

    public static func taskName(_ t: ClusterTask, serviceName: String) -> String {
        "\(serviceName).\(t.slot == 0 ? t.nodeID : String(t.slot)).\(t.id)"
    }

    /// `docker node update --label-add meshd.ingress.snat=true <node>`: that node's published ports
    /// behave as Docker's (backends see the node's ingress address, not the client's).
    public static let ingressSNATLabel = "meshd.ingress.snat"

    static func ingressAddress(_ node: ClusterNode, _ ingressID: String) -> IPAddress? {
        node.attachments.first { $0.networkID == ingressID }.flatMap { IPPrefix($0.address)?.address }
    }

    static func environment(_ list: [String]) -> [String: String] {
        var env: [String: String] = [:]
        for item in list {
            if let eq = item.firstIndex(of: "=") {
                env[String(item[..<eq])] = String(item[item.index(after: eq)...])
            } else {
                env[item] = ""
            }
        }
        return env
    }

    /// The task of a removed service still has to be stopped: a stand-in named after the task.
    static func orphanService(_ t: ClusterTask) -> ClusterService? {
        ClusterService(id: t.serviceID, spec: MeshCluster.ServiceSpec(name: t.serviceID, task: t.spec), now: t.createdAt)
    }
}

/// The secrets and configs tasks name, read once per assignment pass for the tasks that name any.
public struct DataFiles: Sendable {
    public var secrets: [String: ClusterSecret] = [:]
    public var configs: [String: ClusterConfig] = [:]
    public init() {}

    /// The IDs the snapshot's live tasks refer to: what must be read (nothing when no task names one).
    public static func referenced(_ snapshot: ClusterSnapshot) -> (secrets: Set<String>, configs: Set<String>) {
        var s = Set<String>(), c = Set<String>()
        for t in snapshot.tasks where !t.status.state.isTerminal {
            for r in t.spec.container.secrets ?? [] { s.insert(r.id) }
            for r in t.spec.container.configs ?? [] { c.insert(r.id) }
        }
        return (s, c)
    }

    /// A task's files with their data; one whose object is gone (removed after the task's service
    /// stopped naming it) is left out: a running task keeps what it was given.
    func files(for c: ContainerOptions) -> [NodeAssignment.TaskFile]? {
        var out: [NodeAssignment.TaskFile] = []
        for r in c.secrets ?? [] {
            guard let s = secrets[r.id] else { continue }
            out.append(
                .init(kind: .secret, name: r.name, target: r.target(secret: true), data: s.spec.data, uid: r.uid, gid: r.gid, mode: r.mode))
        }
        for r in c.configs ?? [] {
            guard let x = configs[r.id] else { continue }
            out.append(
                .init(kind: .config, name: r.name, target: r.target(secret: false), data: x.spec.data, uid: r.uid, gid: r.gid, mode: r.mode)
            )
        }
        return out.isEmpty ? nil : out
    }
}
