import Foundation
import Logging
import MeshAgent
import MeshControl
import MeshDataplane
import MeshDNS
import MeshGossip
import MeshKernel
import MeshRuntime

/// A member node's own machinery: gossip on 7946 (endpoints of other nodes' tasks), the agent that
/// runs this node's tasks, dataplane and resolver, and a session with a manager over 2377 that is
/// reopened, to any known manager, whenever it ends.
public actor NodePlane {
    public let record: NodeRecord
    public let agent: NodeAgent
    public let runtime: TaskRuntime
    let dataRoot: String
    let gossip: GossipAgent
    let directory: EndpointDirectory
    let dns: DNSServer
    /// The certificate in force, renewed by `renewal` before it expires.
    let certificate: NodeCertificate
    private var loop: Task<Void, Never>?
    private var renewal: Task<Void, Never>?
    private var connected = false
    /// Where the autolock keys a leader hands this manager go (the daemon holds them).
    private let unlockKeys: (@Sendable (String?, String?) async -> Void)?

    /// `images`: the node's image store; with one, images outside the process catalog run as runc
    /// containers (MeshImage supplies it), without one they fail the task with the catalog's message.
    static func start(
        record: NodeRecord, certificate: NodeCertificate, dataRoot: String, lb: LoadBalancerKind, meshd: String,
        images: (any RootfsProvider)? = nil, builtinImages: Bool = true,
        unlockKeys: (@Sendable (String?, String?) async -> Void)? = nil
    ) async throws -> NodePlane {
        guard let address = IPAddress(record.advertiseAddr) else {
            throw DaemonError.config("advertise address \(record.advertiseAddr) is not an IP address")
        }
        let keys = try record.gossipKeys.map { hex -> [UInt8] in
            guard let k = KeyHex.decode(hex) else { throw DaemonError.config("gossip key is not hex") }
            return k
        }
        // First: a previous run's tasks go before anything binds (and they are not the manager's to keep).
        let runtime = try TaskRuntime(
            nodeID: record.nodeID, dataRoot: dataRoot, meshd: meshd, images: images, builtinImages: builtinImages)
        let leftovers = await runtime.removeLeftovers()
        if leftovers > 0 { DaemonLog.node.info("ended \(leftovers) task(s) left by a previous run; the manager restarts what should run") }
        let gossip = try GossipAgent(
            name: record.nodeID, transport: TransportConfig(bindHost: record.advertiseAddr),
            envelope: Envelope(label: record.clusterID, keyring: keys.isEmpty ? nil : try Keyring(keys: keys)),
            // A restarted node must outbid what others remember of its previous life.
            incarnation: UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970)),
            seed: UInt64.random(in: 1...UInt64.max))
        try await gossip.start()
        let seeds = record.managers.compactMap { m -> PeerAddress? in
            guard let host = m.split(separator: ":").first, host != Substring(record.advertiseAddr) else { return nil }
            return PeerAddress(String(host), port: 7946)
        }
        if !seeds.isEmpty { await gossip.join(seeds: seeds) }
        let directory = EndpointDirectory(gossip: gossip, nodeID: record.nodeID, nodeAddress: address)
        let dns = try await DNSServer.start(.fromNode(), store: DNSRecordStore(), threads: 1)
        let agent = NodeAgent(runtime: runtime, reconciler: Reconciler(lb: lb), dns: dns, stopGrace: .seconds(5))
        // Encrypted overlays derive their pair keys from the gossip keys (ESPKeyDerivation).
        try await agent.setESPSecrets(keys)
        let plane = NodePlane(
            record: record, certificate: certificate, agent: agent, runtime: runtime, dataRoot: dataRoot, gossip: gossip,
            directory: directory, dns: dns, unlockKeys: unlockKeys)
        await plane.run()
        return plane
    }

    private init(
        record: NodeRecord, certificate: NodeCertificate, agent: NodeAgent, runtime: TaskRuntime, dataRoot: String,
        gossip: GossipAgent, directory: EndpointDirectory, dns: DNSServer,
        unlockKeys: (@Sendable (String?, String?) async -> Void)?
    ) {
        self.unlockKeys = unlockKeys
        self.record = record
        self.certificate = certificate
        self.agent = agent
        self.runtime = runtime
        self.dataRoot = dataRoot
        self.gossip = gossip
        self.directory = directory
        self.dns = dns
    }

    private func run() {
        let record = record, agent = agent, directory = directory, certificate = certificate, unlockKeys = unlockKeys
        let renewer = CertificateRenewer(
            certificate: certificate, dataRoot: dataRoot, managers: { await self.managers }, renewed: { await self.reportHeld() })
        renewal = Task { await renewer.run() }
        let dataRoot = dataRoot
        loop = Task {
            var attempt = 0
            while !Task.isCancelled {
                for manager in self.managers {
                    guard let (host, port) = Self.split(manager) else { continue }
                    do {
                        let connection = try await ControlClient.connect(
                            host: host, port: port, caPEM: certificate.caPEM, identity: certificate.client)
                        attempt = 0
                        self.setConnected(true)
                        let session = AgentSession(
                            nodeID: record.nodeID, agent: agent, directory: directory,
                            keys: { set in try await self.install(set) }, managers: { list in await self.setManagers(list) },
                            trust: { wanted in try certificate.take(wanted, dataRoot: dataRoot) },
                            unlockKeys: { current, previous in await unlockKeys?(current, previous) })
                        self.setSession(session)
                        try await session.run(connection)
                    } catch {
                        if !Task.isCancelled { DaemonLog.node.warning("node \(record.nodeID): session with \(manager) ended: \(error)") }
                    }
                    self.setConnected(false)
                    if Task.isCancelled { return }
                }
                attempt += 1
                // Quick at first (a manager restarting), then at most every 2 s.
                try? await Task.sleep(for: .milliseconds(min(2000, 100 * attempt)))
            }
        }
    }

    /// The managers' 2377 addresses, the leader's first: what the session loop tries, in order.
    private lazy var managers: [String] = record.managers

    /// A new manager list from the leader, kept in node.json so a restart tries the same managers.
    func setManagers(_ list: [String]) async {
        guard !list.isEmpty, list != managers else { return }
        managers = list
        do { try NodeRecord.update(dataRoot: dataRoot) { $0.managers = list } } catch {
            DaemonLog.node.warning("cannot save the manager list: \(error)")
        }
    }

    /// The manager's key set: every key installed, the first sealing, the rest dropped; then saved
    /// to node.json so a restart comes back with it. Opening tries every installed key, so at each
    /// step of a rotation this node still reads what the others send.
    func install(_ set: GossipKeySet) async throws {
        let keys = try set.keys.map { hex -> [UInt8] in
            guard let k = KeyHex.decode(hex) else { throw DaemonError.config("gossip key is not hex") }
            return k
        }
        guard let primary = keys.first else { throw DaemonError.config("an empty gossip key set") }
        try await gossip.updateKeyring { ring in
            for k in keys { try ring.install(k) }
            try ring.use(primary)
            for k in ring.keys where !keys.contains(k) { try ring.remove(k) }
        }
        // The ESP pairs move to the same step before the manager hears this node applied it.
        try await agent.setESPSecrets(keys)
        try NodeRecord.update(dataRoot: dataRoot) { $0.gossipKeys = set.keys }
    }

    /// Gossip packets and frames dropped, by cause (plaintext, wrong key, wrong cluster, garbage).
    public var gossipDrops: GossipDrops {
        get async { await gossip.dropped }
    }

    private func setConnected(_ value: Bool) {
        connected = value
        if !value { session = nil }
    }

    /// The session open now, for what the node tells its manager outside an exchange.
    private var session: AgentSession?
    private func setSession(_ s: AgentSession) { session = s }

    /// Tells the manager what the node holds after a renewal (a root rotation waits for every node's).
    private func reportHeld() async {
        guard let session, let held = try? certificate.held() else { return }
        await session.tell(.heldCertificates(held))
    }
    public var isConnected: Bool { connected }

    /// Logs of a task this node runs (nil when it does not).
    public func log(taskID: String) async -> String? {
        guard FileManager.default.fileExists(atPath: "\(dataRoot)/tasks/\(taskID)") else { return nil }
        return await runtime.log(taskID)
    }

    /// Ends the session, then stops tasks and removes what the dataplane made (`leave`), or keeps
    /// them as they are for a restart (`leave == false`: a daemon that stops is not a node leaving).
    public func stop(leave: Bool) async {
        renewal?.cancel()
        _ = await renewal?.value
        loop?.cancel()
        _ = await loop?.value
        if leave {
            _ = try? await agent.apply(
                NodeAssignment(
                    node: MeshDataplane.NodeIdentity(
                        id: record.nodeID, advertiseAddress: IPAddress(record.advertiseAddr)!)))
            try? await directory.publish([])
            await gossip.leave()
        }
        await directory.stop()
        await agent.shutdown()
        await gossip.shutdown()
        await dns.shutdown()
    }

    /// What a previous run of node `record` left (its tasks, its dataplane), removed without a
    /// plane: a locked manager leaving the swarm never started one.
    static func removeLeftovers(record: NodeRecord, dataRoot: String, lb: LoadBalancerKind, meshd: String) async throws {
        guard let address = IPAddress(record.advertiseAddr) else {
            throw DaemonError.config("advertise address \(record.advertiseAddr) is not an IP address")
        }
        let runtime = try TaskRuntime(nodeID: record.nodeID, dataRoot: dataRoot, meshd: meshd)
        await runtime.removeLeftovers()
        // A fresh reconciler reads what meshd owns for the node, and an empty state removes it all.
        _ = try await Reconciler(lb: lb).apply(
            DataplaneState(node: MeshDataplane.NodeIdentity(id: record.nodeID, advertiseAddress: address)))
    }

    static func split(_ hostPort: String) -> (String, Int)? {
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]) else { return nil }
        return (String(hostPort[..<colon]), port)
    }
}

/// The daemon's loggers, one per part (the label is the `logger` field of a JSON line). Made on
/// first use, which comes after `meshd daemon` bootstraps the logging system with its
/// `--log-level` and `--log-format`.
enum DaemonLog {
    static let daemon = Logger(label: "meshd")
    static let manager = Logger(label: "meshd.manager")
    static let node = Logger(label: "meshd.node")
}
