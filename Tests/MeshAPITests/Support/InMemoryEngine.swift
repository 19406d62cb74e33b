import Foundation
import MeshAPI

/// A single-node engine kept in memory, only for driving the API server in tests: tasks start
/// running as soon as they exist and write a couple of log lines. It follows swarmkit's rules
/// closely enough that the real docker CLI accepts every answer.
actor InMemoryEngine: EngineBackend {
    struct State {
        var cluster: ClusterInfo?
        var tokens = JoinTokens(Worker: "", Manager: "")
        var isManager = false
        var selfID = ""
        var nodes: [Node] = []
        var services: [Service] = []
        var tasks: [SwarmTask] = []
        var networks: [NetworkResource] = []
        var logs: [String: [LogMessage]] = [:]
        var index: UInt64 = 10
        var nextSubnet = 1
        /// Open `logs --follow` streams.
        var followers = 0
    }
    var s = State()
    let hostname: String
    /// What `GET /events` streams; tests publish into it.
    nonisolated let eventLog = EventLog(capacity: 64)
    /// Every parsed `GET /events` query, in order.
    var eventQueries: [EventQuery] = []

    func events(_ query: EventQuery) async throws(EngineError) -> AsyncStream<EventMessage> {
        eventQueries.append(query)
        return eventLog.subscribe(query)
    }

    init(hostname: String = "node1") { self.hostname = hostname }

    /// It keeps no secrets or configs: lists are empty (what `docker stack rm` reads before removing).
    func listSwarmData(_ kind: SwarmDataKind, _ filter: SwarmDataFilter) async throws(EngineError) -> [SwarmDataObject] {
        try requireManager()
        return []
    }

    static func randomID(_ n: Int = 25) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<n).map { _ in alphabet.randomElement()! })
    }

    func bump() -> ObjectVersion {
        s.index += 1
        return ObjectVersion(s.index)
    }

    func requireManager() throws(EngineError) {
        guard s.cluster != nil || !s.selfID.isEmpty else { throw .notInSwarm }
        guard s.isManager else { throw .notAManager }
    }

    // MARK: swarm

    func swarmInfo() async -> SwarmInfo {
        guard !s.selfID.isEmpty else { return SwarmInfo() }
        let addr = s.nodes.first { $0.ID == s.selfID }?.Status.Addr ?? "127.0.0.1"
        return SwarmInfo(
            NodeID: s.selfID, NodeAddr: addr, LocalNodeState: .active, ControlAvailable: s.isManager,
            RemoteManagers: [.init(NodeID: s.selfID, Addr: "\(addr):2377")], Nodes: s.nodes.count,
            Managers: s.nodes.filter { $0.ManagerStatus != nil }.count, Cluster: s.isManager ? s.cluster : nil)
    }

    func inspectSwarm() async throws(EngineError) -> Swarm {
        try requireManager()
        return Swarm(cluster: s.cluster!, JoinTokens: s.tokens)
    }

    func makeToken() -> String { "SWMTKN-1-\(Self.randomID(50))-\(Self.randomID(25))" }

    func initSwarm(_ request: SwarmInitRequest) async throws(EngineError) -> String {
        guard s.selfID.isEmpty else { throw .alreadyInSwarm }
        let now = Date()
        var spec = request.Spec ?? SwarmSpec()
        spec.Name = "default"
        spec.Orchestration = .init(TaskHistoryRetentionLimit: 5)
        spec.Raft = .init(SnapshotInterval: 10000, KeepOldSnapshots: 0, LogEntriesForSlowFollowers: 500, ElectionTick: 10, HeartbeatTick: 1)
        spec.Dispatcher = .init(HeartbeatPeriod: .seconds(5))
        spec.CAConfig = .init(NodeCertExpiry: .seconds(90 * 24 * 3600))
        let pool = (request.DefaultAddrPool ?? []).isEmpty ? ["10.0.0.0/8"] : request.DefaultAddrPool!
        let tls = TLSInfo(
            TrustRoot: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
            CertIssuerSubject: Data("CN=swarm-ca".utf8).base64EncodedString(),
            CertIssuerPublicKey: Data([0x30, 0x59, 0x30, 0x13]).base64EncodedString())
        s.cluster = ClusterInfo(
            ID: Self.randomID(), Version: bump(), CreatedAt: now, UpdatedAt: now, Spec: spec, TLSInfo: tls,
            DefaultAddrPool: pool, SubnetSize: request.SubnetSize ?? 24,
            DataPathPort: (request.DataPathPort ?? 0) == 0 ? 4789 : request.DataPathPort!)
        s.tokens = JoinTokens(Worker: makeToken(), Manager: makeToken())
        s.isManager = true
        s.selfID = Self.randomID()
        var addr = request.AdvertiseAddr ?? ""
        if addr.isEmpty { addr = "127.0.0.1" }
        if let colon = addr.firstIndex(of: ":") { addr = String(addr[..<colon]) }
        let availability = (request.Availability ?? "").isEmpty ? "active" : request.Availability!
        s.nodes = [
            Node(
                ID: s.selfID, Version: bump(), CreatedAt: now, UpdatedAt: now,
                Spec: NodeSpec(Labels: [:], Role: "manager", Availability: availability),
                Description: .init(
                    Hostname: hostname, Platform: .init(Architecture: "x86_64", OS: "linux"),
                    Resources: .init(NanoCPUs: 2_000_000_000, MemoryBytes: 4 << 30),
                    Engine: .init(EngineVersion: "0.1.0"), TLSInfo: tls),
                Status: .init(State: "ready", Addr: addr),
                ManagerStatus: .init(Leader: true, Reachability: "reachable", Addr: "\(addr):2377"))
        ]
        s.networks = [
            NetworkResource(
                Name: "ingress", Id: Self.randomID(), Created: now,
                IPAM: IPAM(Config: [IPAMConfig(Subnet: "10.0.0.0/24", Gateway: "10.0.0.1")]), Ingress: true,
                Options: ["com.docker.network.driver.overlay.vxlanid_list": "4096"])
        ]
        return s.selfID
    }

    func joinSwarm(_ request: SwarmJoinRequest) async throws(EngineError) {
        guard s.selfID.isEmpty else { throw .alreadyInSwarm }
        // Without a manager to ask, a well-formed token is what this test engine can check.
        let parts = request.JoinToken.split(separator: "-")
        guard parts.count == 4, parts[0] == "SWMTKN", parts[1] == "1", parts[2].count == 50, parts[3].count == 25 else {
            throw .invalidArgument("invalid join token")
        }
        s.selfID = Self.randomID()
        s.isManager = false
    }

    func leaveSwarm(force: Bool) async throws(EngineError) {
        guard !s.selfID.isEmpty else { throw .notPartOfSwarm }
        if s.isManager && !force { throw .lastManagerLeaving }
        s = State()
    }

    func updateSwarm(_ spec: SwarmSpec, version: UInt64, rotate: SwarmRotation) async throws(EngineError) {
        try requireManager()
        guard version == s.cluster!.Version.Index else { throw .updateOutOfSequence }
        var spec = spec
        spec.Name = "default"
        s.cluster!.Spec = spec
        if rotate.workerToken { s.tokens.Worker = makeToken() }
        if rotate.managerToken { s.tokens.Manager = makeToken() }
        s.cluster!.Version = bump()
        s.cluster!.UpdatedAt = Date()
    }

    func unlockKey() async throws(EngineError) -> String {
        try requireManager()
        return ""
    }

    // MARK: nodes

    func listNodes(_ filter: NodeFilter) async throws(EngineError) -> [Node] {
        try requireManager()
        return s.nodes.filter(filter.matches)
    }

    func node(_ ref: String) throws(EngineError) -> Int {
        let n = try NameResolver.resolve(
            ref, kind: "node", in: s.nodes.indices, id: { s.nodes[$0].ID },
            name: { s.nodes[$0].Spec.Name ?? s.nodes[$0].Description.Hostname })
        return n
    }

    func inspectNode(_ ref: String) async throws(EngineError) -> Node {
        try requireManager()
        return s.nodes[try node(ref)]
    }

    func updateNode(_ ref: String, version: UInt64, spec: NodeSpec) async throws(EngineError) {
        try requireManager()
        let i = try node(ref)
        guard s.nodes[i].Version.Index == version else { throw .updateOutOfSequence }
        if spec.Role == "worker", s.nodes[i].Spec.Role == "manager", s.nodes.filter({ $0.Spec.Role == "manager" }).count == 1 {
            throw .demoteLastManager
        }
        s.nodes[i].Spec = spec
        s.nodes[i].Version = bump()
        s.nodes[i].UpdatedAt = Date()
    }

    func removeNode(_ ref: String, force: Bool) async throws(EngineError) {
        try requireManager()
        let i = try node(ref)
        guard force || s.nodes[i].Status.State == "down" else { throw .nodeNotDown(s.nodes[i].ID) }
        s.nodes.remove(at: i)
    }
}
