import Foundation
import MeshDataplane
import MeshKernel

/// Everything a node agent needs to run its share of the cluster, as values: what the manager
/// assigns (networks, services, this node's tasks) plus what gossip says about other nodes'
/// tasks. The agent turns it into processes, dataplane state and DNS records.
public struct NodeAssignment: Sendable, Equatable, Codable {
    public struct Service: Sendable, Equatable, Codable {
        public var id: String
        public var name: String
        public var mode: EndpointMode
        public var vips: [BalancedService.VIP]
        public var ports: [BalancedService.Port]
        public var aliases: [String]
        public init(
            id: String, name: String, mode: EndpointMode = .vip, vips: [BalancedService.VIP] = [],
            ports: [BalancedService.Port] = [], aliases: [String] = []
        ) {
            self.id = id
            self.name = name
            self.mode = mode
            self.vips = vips
            self.ports = ports
            self.aliases = aliases
        }
    }
    public struct Attachment: Sendable, Hashable, Codable {
        public var network: String
        public var address: IPAddress
        public init(network: String, address: IPAddress) {
            self.network = network
            self.address = address
        }
    }
    public enum DesiredState: String, Sendable, Codable { case running, shutdown }
    /// What a container driver needs of the service beyond `LocalTask.args` (which is command
    /// and args in one, as the process catalog takes them): swarmkit's ContainerSpec fields.
    public struct ContainerFields: Sendable, Equatable, Codable {
        public var serviceName: String
        /// The service's Command (replaces an image's Entrypoint) and Args (replace its Cmd).
        public var command: [String]
        public var args: [String]
        public var user: String
        public var dir: String
        public var hostname: String
        public var labels: [String: String]
        public var stopSignal: String
        public var stopGraceNanos: Int64?
        public var memoryBytes: Int64
        public var nanoCPUs: Int64
        /// Optional on the wire (nil: none), so a node and a manager of different builds still agree.
        public var mounts: [Mount]?
        public var readOnly: Bool?
        public var capabilityAdd: [String]?
        public var capabilityDrop: [String]?
        public var sysctls: [String: String]?
        public var groups: [String]?
        /// `IP host [alias…]` lines for /etc/hosts (`--host`), in the service's order.
        public var hosts: [String]?
        /// The service's health check (`--health-*`); nil: none, and the task is weighted once it listens.
        public var healthcheck: HealthCheck?
        public init(
            serviceName: String, command: [String] = [], args: [String] = [], user: String = "", dir: String = "",
            hostname: String = "", labels: [String: String] = [:], stopSignal: String = "", stopGraceNanos: Int64? = nil,
            memoryBytes: Int64 = 0, nanoCPUs: Int64 = 0, mounts: [Mount]? = nil, readOnly: Bool? = nil, capabilityAdd: [String]? = nil,
            capabilityDrop: [String]? = nil, sysctls: [String: String]? = nil, groups: [String]? = nil, hosts: [String]? = nil,
            healthcheck: HealthCheck? = nil
        ) {
            self.healthcheck = healthcheck
            self.mounts = mounts
            self.readOnly = readOnly
            self.capabilityAdd = capabilityAdd
            self.capabilityDrop = capabilityDrop
            self.sysctls = sysctls
            self.groups = groups
            self.hosts = hosts
            self.serviceName = serviceName
            self.command = command
            self.args = args
            self.user = user
            self.dir = dir
            self.hostname = hostname
            self.labels = labels
            self.stopSignal = stopSignal
            self.stopGraceNanos = stopGraceNanos
            self.memoryBytes = memoryBytes
            self.nanoCPUs = nanoCPUs
        }
    }
    /// A health check as the service gave it: zeros mean dockerd's defaults, which the node applies.
    public typealias HealthCheck = HealthConfig
    /// A service mount as the node applies it (swarmkit's Mount, the parts a local driver uses).
    public struct Mount: Sendable, Equatable, Codable {
        /// `bind`, `volume` or `tmpfs`.
        public var type: String
        /// Host path (bind), volume name (volume; empty: an anonymous volume of the task), empty (tmpfs).
        public var source: String
        public var target: String
        public var readOnly: Bool
        /// A new volume gets no copy of the image's files at the target.
        public var noCopy: Bool?
        public var tmpfsSizeBytes: Int64?
        public var tmpfsMode: UInt32?
        /// Labels for a volume this mount makes.
        public var volumeLabels: [String: String]?
        /// Options the service set that a node does not apply (`BindOptions.Propagation`, a volume
        /// driver, …), by name: a container with them fails, naming them, rather than run without.
        public var unapplied: [String]?
        public init(
            type: String, source: String, target: String, readOnly: Bool = false, noCopy: Bool? = nil, tmpfsSizeBytes: Int64? = nil,
            tmpfsMode: UInt32? = nil, volumeLabels: [String: String]? = nil, unapplied: [String]? = nil
        ) {
            self.volumeLabels = volumeLabels
            self.unapplied = unapplied
            self.type = type
            self.source = source
            self.target = target
            self.readOnly = readOnly
            self.noCopy = noCopy
            self.tmpfsSizeBytes = tmpfsSizeBytes
            self.tmpfsMode = tmpfsMode
        }
    }
    /// A task this node runs.
    public struct LocalTask: Sendable, Equatable, Codable {
        public var id: String
        public var name: String
        public var service: String
        public var image: String
        public var args: [String]
        public var env: [String: String]
        public var desired: DesiredState
        /// In interface order: eth0 first. The first non-ingress network carries the default route.
        public var attachments: [Attachment]
        /// nil from a manager that predates containers: the task's args are then the container's Args.
        public var container: ContainerFields?
        /// The secrets and configs it reads, with their data: only the nodes that run a task that
        /// names one ever receive it (over the session's mutual TLS).
        public var files: [TaskFile]?
        public init(
            id: String, name: String, service: String, image: String, args: [String] = [], env: [String: String] = [:],
            desired: DesiredState = .running, attachments: [Attachment], container: ContainerFields? = nil, files: [TaskFile]? = nil
        ) {
            self.files = files
            self.container = container
            self.id = id
            self.name = name
            self.service = service
            self.image = image
            self.args = args
            self.env = env
            self.desired = desired
            self.attachments = attachments
        }
    }
    /// One secret or config as a file in a task's container.
    public struct TaskFile: Sendable, Equatable, Codable {
        public enum Kind: String, Sendable, Codable { case secret, config }
        public var kind: Kind
        public var name: String
        /// The absolute path in the container.
        public var target: String
        public var data: Data
        public var uid: String
        public var gid: String
        public var mode: UInt32
        public init(kind: Kind, name: String, target: String, data: Data, uid: String, gid: String, mode: UInt32) {
            self.kind = kind
            self.name = name
            self.target = target
            self.data = data
            self.uid = uid
            self.gid = gid
            self.mode = mode
        }
    }
    /// A task on another node, as its node published it.
    public struct RemoteTask: Sendable, Equatable, Codable {
        public var id: String
        public var name: String
        public var service: String
        public var nodeID: String
        public var nodeAddress: IPAddress
        /// false while the task drains: no new connections.
        public var serving: Bool
        public var attachments: [Attachment]
        public init(
            id: String, name: String, service: String, nodeID: String, nodeAddress: IPAddress, serving: Bool = true,
            attachments: [Attachment]
        ) {
            self.id = id
            self.name = name
            self.service = service
            self.nodeID = nodeID
            self.nodeAddress = nodeAddress
            self.serving = serving
            self.attachments = attachments
        }
    }
    /// Another node's ingress address (replies to ingress traffic it forwards come back to it).
    public struct PeerIngress: Sendable, Equatable, Codable {
        public var nodeID: String
        public var nodeAddress: IPAddress
        public var address: IPAddress
        public init(nodeID: String, nodeAddress: IPAddress, address: IPAddress) {
            self.nodeID = nodeID
            self.nodeAddress = nodeAddress
            self.address = address
        }
    }

    public var node: NodeIdentity
    public var networks: [OverlayNetwork]
    public var services: [Service]
    public var tasks: [LocalTask]
    public var remoteTasks: [RemoteTask]
    public var peers: [PeerIngress]
    /// This node's ended tasks still in the manager's task history (not in `tasks`): their
    /// containers stay (`docker ps -a`, `docker logs`, `service logs`) until they leave it, as
    /// dockerd keeps a Swarm task's container until the task is pruned. Nil from an older manager.
    public var retained: [String]?

    public init(
        node: NodeIdentity, networks: [OverlayNetwork] = [], services: [Service] = [], tasks: [LocalTask] = [],
        remoteTasks: [RemoteTask] = [], peers: [PeerIngress] = []
    ) {
        self.node = node
        self.networks = networks
        self.services = services
        self.tasks = tasks
        self.remoteTasks = remoteTasks
        self.peers = peers
    }
}
