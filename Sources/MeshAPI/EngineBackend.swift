import Foundation

/// What the API server asks of the daemon. The server parses and validates requests and formats
/// answers; the backend owns the state and resolves `{id}` references itself (`NameResolver`), so every
/// method takes the reference as the user wrote it. Service specs arrive as decoded: the backend runs
/// them through `ServiceSpecNormalizer` once and resolves network names in `TaskTemplate.Networks`
/// (`stack deploy` sends names), so each rule runs in one place.
///
/// Errors: throw `EngineError`; its case picks the status code (see the canonical messages in
/// `EngineError`). A backend not in a swarm throws `.notInSwarm`; a worker throws `.notAManager`.
public protocol EngineBackend: Sendable {
    // MARK: swarm
    /// This node's membership, for `/info`, and the `Swarm` header of `/_ping`. Never fails.
    func swarmInfo() async -> SwarmInfo
    func inspectSwarm() async throws(EngineError) -> Swarm
    /// Returns the new node's ID.
    func initSwarm(_ request: SwarmInitRequest) async throws(EngineError) -> String
    func joinSwarm(_ request: SwarmJoinRequest) async throws(EngineError)
    func leaveSwarm(force: Bool) async throws(EngineError)
    func updateSwarm(_ spec: SwarmSpec, version: UInt64, rotate: SwarmRotation) async throws(EngineError)
    func unlockKey() async throws(EngineError) -> String
    /// `swarm unlock`: a restarted manager of an autolocked swarm given its key.
    func unlockSwarm(_ key: String) async throws(EngineError)

    // MARK: nodes
    func listNodes(_ filter: NodeFilter) async throws(EngineError) -> [Node]
    func inspectNode(_ ref: String) async throws(EngineError) -> Node
    func updateNode(_ ref: String, version: UInt64, spec: NodeSpec) async throws(EngineError)
    func removeNode(_ ref: String, force: Bool) async throws(EngineError)

    // MARK: services
    /// `spec` is as the client sent it (decoded case-insensitively).
    func createService(_ spec: ServiceSpec) async throws(EngineError) -> ServiceCreateResponse
    /// `status`: fill `ServiceStatus` (running/desired task counts).
    func listServices(_ filter: ServiceFilter, status: Bool) async throws(EngineError) -> [Service]
    func inspectService(_ ref: String) async throws(EngineError) -> Service
    /// `rollback`: restore `PreviousSpec` (the body is then ignored, as dockerd does).
    func updateService(_ ref: String, version: UInt64, spec: ServiceSpec, rollback: Bool) async throws(EngineError) -> ServiceUpdateResponse
    func removeService(_ ref: String) async throws(EngineError)
    /// The service's task output. The stream finishes when everything asked for was sent, or
    /// never with `follow`; the server stops reading when the client goes away.
    func serviceLogs(_ ref: String, options: LogOptions) async throws(EngineError) -> AsyncStream<LogMessage>

    // MARK: tasks
    func listTasks(_ filter: TaskFilter) async throws(EngineError) -> [SwarmTask]
    func inspectTask(_ ref: String) async throws(EngineError) -> SwarmTask

    // MARK: networks
    func createNetwork(_ request: NetworkCreateRequest) async throws(EngineError) -> NetworkCreateResponse
    func listNetworks(_ filter: NetworkFilter) async throws(EngineError) -> [NetworkResource]
    /// `scope` is `swarm` when the CLI limits the lookup (`?scope=swarm`), else nil.
    func inspectNetwork(_ ref: String, scope: String?) async throws(EngineError) -> NetworkResource
    func removeNetwork(_ ref: String) async throws(EngineError)
    /// Removes the networks no service uses (never `ingress`); returns the removed names.
    func pruneNetworks() async throws(EngineError) -> [String]

    // MARK: secrets and configs
    /// `POST /secrets/create`, `POST /configs/create`.
    func createSwarmData(_ kind: SwarmDataKind, _ spec: SwarmDataSpec) async throws(EngineError) -> IDResponse
    func listSwarmData(_ kind: SwarmDataKind, _ filter: SwarmDataFilter) async throws(EngineError) -> [SwarmDataObject]
    func inspectSwarmData(_ kind: SwarmDataKind, _ ref: String) async throws(EngineError) -> SwarmDataObject
    /// Only the labels may change (swarmkit's rule).
    func updateSwarmData(_ kind: SwarmDataKind, _ ref: String, version: UInt64, spec: SwarmDataSpec) async throws(EngineError)
    func removeSwarmData(_ kind: SwarmDataKind, _ ref: String) async throws(EngineError)

    // MARK: events
    /// `GET /events` (`query` is parsed and validated): the buffered events `since`/`until` select, then
    /// live ones; the stream finishes at `until` (at once when it has passed) and the server stops reading
    /// when the client goes away. Outside a swarm and on a worker it carries nothing and stays open: dockerd
    /// shows swarm events only on managers, and meshd has no local (container, image) events.
    func events(_ query: EventQuery) async throws(EngineError) -> AsyncStream<EventMessage>

    // MARK: images
    /// `GET /distribution/{image}/json`. meshd's catalogue has no registry digests: throwing here
    /// makes the CLI print its "could not be accessed on a registry" warning and go on.
    func distributionInspect(_ image: String) async throws(EngineError) -> DistributionInspect

    // MARK: managers that do not lead
    /// A cluster request (`APIRouter.isClusterRequest`) as the client sent it, answered by the manager that
    /// leads when this one does not (swarmkit's raft proxy does the same for its control API); nil: this
    /// backend answers it itself.
    func forwardToLeader(method: String, uri: String, contentType: String?, body: [UInt8], registryAuth: String?) async -> APIResponse?
    /// `GET /images/json`: the node's own image store.
    func listImages() async throws(EngineError) -> [ImageSummary]
    /// `GET /images/{name}/json`: a reference the store knows (a tag, a digest, an ID or its prefix).
    func inspectImage(_ ref: String) async throws(EngineError) -> ImageInspect
    /// `POST /images/create`: pulls `reference` (as `fromImage` and `tag` make it) into the store.
    func pullImage(_ reference: String) async throws(EngineError) -> ImagePullResult

    // MARK: volumes (the node's own)
    func listVolumes() async throws(EngineError) -> [VolumeResource]
    /// An empty name makes an anonymous volume (64 hex), as dockerd does.
    func createVolume(name: String, labels: [String: String]) async throws(EngineError) -> VolumeResource
    func inspectVolume(_ name: String) async throws(EngineError) -> VolumeResource
    /// 409 while a running container has it mounted; `force` removes it all the same only when no container does.
    func removeVolume(_ name: String, force: Bool) async throws(EngineError)

    // MARK: containers
    // The containers of the tasks this node runs (each node's socket lists only its own). `ref`
    // is an id, an id prefix or a name; an unknown one throws `.noSuchContainer`.

    /// `GET /containers/json`.
    func listContainers(_ options: ContainerListOptions) async throws(EngineError) -> [ContainerSummary]
    /// `GET /containers/{ref}/json`.
    func inspectContainer(_ ref: String) async throws(EngineError) -> ContainerInspect
    /// `GET /containers/{ref}/logs`: the lines `options` select, then (following) new ones until
    /// the container ended or the reader went away.
    func containerLogs(_ ref: String, options: LogOptions) async throws(EngineError) -> AsyncStream<OutputChunk>
    /// `POST /containers/{ref}/wait`: throws before the stream for an unknown container; the stream
    /// carries one answer, at the container's end.
    func waitContainer(_ ref: String) async throws(EngineError) -> AsyncStream<ContainerWaitResponse>
    /// `POST /containers/{ref}/kill`: `signal` as given (`KILL`, `SIGHUP`, `9`); nil: SIGKILL.
    func killContainer(_ ref: String, signal: String?) async throws(EngineError)
    /// `docker info`'s counts.
    func containerCounts() async -> ContainerCounts

    // MARK: exec
    /// `POST /containers/{ref}/exec`: the new exec's id.
    func createExec(_ ref: String, _ request: ExecCreateRequest) async throws(EngineError) -> String
    /// `POST /exec/{id}/start`. Detached: started, nil returned. Attached: its streams.
    func startExec(_ id: String, _ request: ExecStartRequest) async throws(EngineError) -> ExecAttachment?
    /// `POST /exec/{id}/resize`.
    func resizeExec(_ id: String, rows: UInt16, columns: UInt16) async throws(EngineError)
    /// `GET /exec/{id}/json`.
    func inspectExec(_ id: String) async throws(EngineError) -> ExecInspect
}

public struct LogOptions: Sendable, Equatable {
    public var follow = false
    public var stdout = true
    public var stderr = true
    public var timestamps = false
    public var details = false
    public var since: Date?
    /// nil: all lines.
    public var tail: Int?
    public init() {}
}

public struct LogMessage: Sendable, Equatable {
    public enum Stream: UInt8, Sendable { case stdout = 1, stderr = 2 }
    public var stream: Stream
    public var timestamp: Date
    /// One line, without its newline.
    public var line: String
    public var serviceID: String
    public var nodeID: String
    public var taskID: String
    public init(stream: Stream, timestamp: Date, line: String, serviceID: String, nodeID: String, taskID: String) {
        self.stream = stream
        self.timestamp = timestamp
        self.line = line
        self.serviceID = serviceID
        self.nodeID = nodeID
        self.taskID = taskID
    }
}

/// `GET /distribution/{image}/json`.
public struct DistributionInspect: Codable, Sendable, Equatable {
    public struct Descriptor: Codable, Sendable, Equatable {
        public var mediaType: String
        public var digest: String
        public var size: Int64
        public init(mediaType: String, digest: String, size: Int64) {
            self.mediaType = mediaType
            self.digest = digest
            self.size = size
        }
    }
    public struct Platform: Codable, Sendable, Equatable {
        public var architecture: String
        public var os: String
        public init(architecture: String, os: String) {
            self.architecture = architecture
            self.os = os
        }
    }
    public var Descriptor: Descriptor
    public var Platforms: [Platform]
    public init(Descriptor: Descriptor, Platforms: [Platform]) {
        self.Descriptor = Descriptor
        self.Platforms = Platforms
    }
}

public extension EngineBackend {
    /// An engine with no autolock is never locked, as dockerd answers an unlocked node.
    func unlockSwarm(_ key: String) async throws(EngineError) { throw .swarmNotLocked }
    func createSwarmData(_ kind: SwarmDataKind, _ spec: SwarmDataSpec) async throws(EngineError) -> IDResponse {
        throw .notImplemented("\(kind.rawValue)s are not served by this engine")
    }
    func listSwarmData(_ kind: SwarmDataKind, _ filter: SwarmDataFilter) async throws(EngineError) -> [SwarmDataObject] {
        throw .notImplemented("\(kind.rawValue)s are not served by this engine")
    }
    func inspectSwarmData(_ kind: SwarmDataKind, _ ref: String) async throws(EngineError) -> SwarmDataObject {
        throw .notImplemented("\(kind.rawValue)s are not served by this engine")
    }
    func updateSwarmData(_ kind: SwarmDataKind, _ ref: String, version: UInt64, spec: SwarmDataSpec) async throws(EngineError) {
        throw .notImplemented("\(kind.rawValue)s are not served by this engine")
    }
    func removeSwarmData(_ kind: SwarmDataKind, _ ref: String) async throws(EngineError) {
        throw .notImplemented("\(kind.rawValue)s are not served by this engine")
    }

    func listContainers(_ options: ContainerListOptions) async throws(EngineError) -> [ContainerSummary] { [] }
    func inspectContainer(_ ref: String) async throws(EngineError) -> ContainerInspect { throw .noSuchContainer(ref) }
    func containerLogs(_ ref: String, options: LogOptions) async throws(EngineError) -> AsyncStream<OutputChunk> {
        throw .noSuchContainer(ref)
    }
    func waitContainer(_ ref: String) async throws(EngineError) -> AsyncStream<ContainerWaitResponse> { throw .noSuchContainer(ref) }
    func killContainer(_ ref: String, signal: String?) async throws(EngineError) { throw .noSuchContainer(ref) }
    func containerCounts() async -> ContainerCounts { ContainerCounts() }
    func createExec(_ ref: String, _ request: ExecCreateRequest) async throws(EngineError) -> String { throw .noSuchContainer(ref) }
    func startExec(_ id: String, _ request: ExecStartRequest) async throws(EngineError) -> ExecAttachment? { throw .noSuchExec(id) }
    func resizeExec(_ id: String, rows: UInt16, columns: UInt16) async throws(EngineError) { throw .noSuchExec(id) }
    func inspectExec(_ id: String) async throws(EngineError) -> ExecInspect { throw .noSuchExec(id) }

    func forwardToLeader(method: String, uri: String, contentType: String?, body: [UInt8], registryAuth: String?) async -> APIResponse? {
        nil
    }

    /// Without a registry there is no digest to pin: the CLI warns and uses the name as given.
    func distributionInspect(_ image: String) async throws(EngineError) -> DistributionInspect {
        throw .notFound("no registry digest for \(image): meshd runs images from its catalogue")
    }
    func listImages() async throws(EngineError) -> [ImageSummary] { [] }
    func inspectImage(_ ref: String) async throws(EngineError) -> ImageInspect { throw .notFound("No such image: \(ref)") }
    func pullImage(_ reference: String) async throws(EngineError) -> ImagePullResult {
        throw .notImplemented("this engine has no image store")
    }
    func listVolumes() async throws(EngineError) -> [VolumeResource] { [] }
    func createVolume(name: String, labels: [String: String]) async throws(EngineError) -> VolumeResource {
        throw .notImplemented("this engine has no volumes")
    }
    func inspectVolume(_ name: String) async throws(EngineError) -> VolumeResource { throw .notFound("get \(name): no such volume") }
    func removeVolume(_ name: String, force: Bool) async throws(EngineError) { throw .notFound("get \(name): no such volume") }
}
