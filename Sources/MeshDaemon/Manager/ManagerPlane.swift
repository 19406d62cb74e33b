import Foundation
import Logging
import MeshCluster
import MeshControl
import MeshGossip
import MeshKernel
import Synchronization
import X509

/// A manager's control plane: the 2377 listener (joins, and one session per node that receives its
/// assignment and reports its tasks' states), and the loop that converges the store (orchestrator,
/// allocator, scheduler) and marks silent nodes down. All state changes go through the controller.
public actor ManagerPlane {
    public let controller: ClusterController
    public let listenPort: Int
    private let server: ControlServer
    private let nodeID: String
    private var sessions: [String: Session] = [:]
    private var lastSeen: [String: Date] = [:]
    private let startedAt = Date()
    private var loop: Task<Void, Never>?
    private var liveness: NodeLiveness
    private let metrics = ManagerMetrics()
    /// What each node last reported of its traffic (the cluster page shows it).
    private var traffic: [String: NodeTraffic] = [:]

    public func nodeTraffic() -> [String: NodeTraffic] { traffic }

    // MARK: gossip keys

    /// Docker rotates the gossip key every 12 h; nil: only when a node is removed.
    private var gossipKeyPeriod: Duration?
    private var rotation: GossipKeyRotation?
    private var keyGeneration: UInt64 = 1
    private var rotateSoon = false
    private let epoch = ContinuousClock.now
    private lazy var lastRotation = ContinuousClock.now - epoch
    private func setGossipKeyPeriod(_ p: Duration?) { gossipKeyPeriod = p }
    private var sinceStart: Duration { ContinuousClock.now - epoch }

    private func keySet() async -> GossipKeySet? {
        guard let keys = try? await controller.read({ m throws(ClusterError) in m.settings.gossipKeys }) else { return nil }
        return GossipKeySet(generation: keyGeneration, keys: keys.map { KeyHex.encode($0.bytes) })
    }

    private func broadcastKeys() async {
        guard let set = await keySet() else { return }
        for (node, session) in sessions.sorted(by: { $0.key < $1.key }) {
            do { try await session.writer.send(json: ControlMessage.gossipKeys(set)) } catch {
                if sessions[node]?.token == session.token { sessions[node] = nil }
            }
        }
    }

    /// Starts a rotation when one is due (the period, or a node removed) and moves a running one on.
    private func stepRotation() async {
        let now = sinceStart
        do {
            if var r = rotation {
                let (moved, unanswered) = r.advance(connected: Set(sessions.keys), now: now, stepTimeout: .seconds(30))
                rotation = r
                guard moved else { return }
                if !unanswered.isEmpty {
                    DaemonLog.manager.warning("gossip key rotation went on without \(unanswered.sorted().joined(separator: ", "))")
                }
                let keys = r.keys
                _ = try await controller.withManager { m throws(ClusterError) in try m.setGossipKeys(keys) }
                keyGeneration = r.generation
                if r.step == .done {
                    rotation = nil
                    lastRotation = now
                    metrics.gossipKeyRotations.increment()
                    DaemonLog.manager.info("gossip key rotated")
                    return
                }
                await broadcastKeys()
                return
            }
            let due = gossipKeyPeriod.map { now - lastRotation >= $0 } ?? false
            guard rotateSoon || due else { return }
            rotateSoon = false
            guard let current = try await controller.read({ m throws(ClusterError) in m.settings.gossipKeys }).first else { return }
            let r = GossipKeyRotation(old: current, new: GossipKey.generate(), generation: keyGeneration + 1, now: now)
            _ = try await controller.withManager { m throws(ClusterError) in try m.setGossipKeys(r.keys) }
            rotation = r
            keyGeneration = r.generation
            await broadcastKeys()
        } catch {
            DaemonLog.manager.warning("gossip key rotation: \(error)")
        }
    }
    private var onTraffic: (@Sendable () -> Void)?
    private var wantsTraffic: (@Sendable () -> Bool)?
    private var trafficAsked = false
    private func setWantsTraffic(_ f: (@Sendable () -> Bool)?) { wantsTraffic = f }

    /// Tells every node to report traffic when a page opened, and to stop when the last one closed.
    private func askForTraffic() async {
        let want = wantsTraffic?() ?? false
        guard want != trafficAsked else { return }
        trafficAsked = want
        if !want { traffic = [:] }
        for (_, session) in sessions.sorted(by: { $0.key < $1.key }) {
            try? await session.writer.send(json: ControlMessage.trafficWanted(want))
        }
    }
    private func setTrafficHook(_ hook: (@Sendable () -> Void)?) { onTraffic = hook }

    /// Answers an Engine API request a follower manager forwarded (the daemon's router).
    public typealias ForwardHandler = @Sendable (ForwardedRequest) async -> ForwardedResponse
    private var forwardHandler: ForwardHandler?
    /// Where the managers' shared store is (`etcd://…`), for managers that join; nil on SQLite.
    private var storeURL: String?
    private func setSharing(store: String?, forward: ForwardHandler?) {
        storeURL = store
        forwardHandler = forward
    }
    /// The manager list last sent to nodes, so a change is sent once.
    private var sentManagers: [String] = []

    struct Session {
        let token: UUID
        let peer: ControlPeer
        let writer: ControlWriter
        var sent: NodeAssignment?
    }

    /// `onCommit` gets every store commit made while the plane runs, in commit order (the daemon turns
    /// them into `docker events`).
    public static func start(
        controller: ClusterController, record: NodeRecord, certificate: NodeCertificate,
        liveness: NodeLiveness = NodeLiveness(gracePeriod: 10),
        onCommit: (@Sendable (StoreCommit) -> Void)? = nil, onTraffic: (@Sendable () -> Void)? = nil,
        gossipKeyPeriod: Duration? = .seconds(12 * 3600), wantsTraffic: (@Sendable () -> Bool)? = nil,
        storeURL: String? = nil, forward: ForwardHandler? = nil
    ) async throws -> ManagerPlane {
        guard let (host, port) = NodePlane.split(record.listenAddr) else {
            throw DaemonError.config("listen address \(record.listenAddr) is not host:port")
        }
        let box = PlaneBox()
        let server: ControlServer
        do {
            // The CA goes with the manager's certificate so a joiner can check it against its token; the
            // certificate is the one in force at each connection (renewal swaps it under the listener).
            server = try await ControlServer.start(
                host: host, port: port, identity: { certificate.server }, caPEM: { certificate.caPEM }
            ) {
                peer, inbound, writer in
                guard let plane = box.plane else { return }
                try await plane.handle(peer: peer, inbound: inbound, writer: writer)
            }
        } catch {
            throw DaemonError.config("cannot listen for the control plane on \(record.listenAddr): \(error)")
        }
        let plane = ManagerPlane(controller: controller, server: server, nodeID: record.nodeID, liveness: liveness)
        // Before the listener hands the plane any connection: a manager joining at once gets the store's address.
        await plane.setSharing(store: storeURL, forward: forward)
        box.plane = plane
        if let onCommit { await plane.watchStore(onCommit) }
        await plane.setTrafficHook(onTraffic)
        await plane.setGossipKeyPeriod(gossipKeyPeriod)
        await plane.setWantsTraffic(wantsTraffic)
        await plane.runLoop()
        return plane
    }

    private init(controller: ClusterController, server: ControlServer, nodeID: String, liveness: NodeLiveness) {
        self.controller = controller
        self.server = server
        self.listenPort = server.port
        self.nodeID = nodeID
        self.liveness = liveness
    }

    public func stop() async {
        loop?.cancel()
        _ = await loop?.value
        storeWatch?.cancel()
        _ = await storeWatch?.value
        await server.close()
    }

    // MARK: connections

    private func handle(peer: ControlPeer, inbound: ControlInbound, writer: ControlWriter) async throws {
        var it = inbound.makeAsyncIterator()
        guard let first = try await inbound.next(ControlMessage.self, iterator: &it) else { return }
        let name = await peer.commonName()
        switch first {
        case .joinRequest(let request):
            let response = await join(request)
            try await writer.send(json: ControlMessage.joinResponse(response))
            if let error = response.error { throw ControlRefused(.joinRefused, error) }
        case .hello(let claimed):
            // Each refusal answers why, then throws so the listener counts it and hangs up.
            guard let name else {
                try await writer.send(json: ControlMessage.error("a node session needs the node's certificate (got none for \(claimed))"))
                throw ControlRefused(.noCertificate, "hello from \(claimed) without a certificate")
            }
            guard name == claimed else {
                try await writer.send(
                    json: ControlMessage.error("a node session needs the node's certificate (got \(name) for \(claimed))"))
                throw ControlRefused(.identityMismatch, "hello from \(claimed) with the certificate of \(name)")
            }
            // A certificate stays valid under the CA until it expires; a node removed from the store
            // must not keep a session (assignments, logs requests) on the strength of it.
            guard try await isMember(name) else {
                try await writer.send(json: ControlMessage.error("node \(name) is not a member of this swarm (it was removed)"))
                throw ControlRefused(.unknownNode, "hello from removed node \(name)")
            }
            let token = UUID()
            sessions[name] = Session(token: token, peer: peer, writer: writer, sent: nil)
            reported[name] = nil
            heard(from: name)
            livenessDirty = true
            await pushAll(only: name)
            if !sentManagers.isEmpty { try await writer.send(json: ControlMessage.managers(sentManagers)) }
            if let set = await keySet() { try await writer.send(json: ControlMessage.gossipKeys(set)) }
            if trafficAsked { try await writer.send(json: ControlMessage.trafficWanted(true)) }
            if let wanted = await wantedTrust() { try await writer.send(json: ControlMessage.trust(wanted)) }
            if storeURL != nil, try await isManager(name) {
                let (current, previous) = await unlockKeysText()
                try await writer.send(json: ControlMessage.unlockKeys(current: current, previous: previous))
            }
            defer { Task { self.ended(name, token: token) } }
            while let message = try await inbound.next(ControlMessage.self, iterator: &it) {
                heard(from: name)
                switch message {
                case .status(let reports): await record(reports, from: name)
                case .traffic(let t):
                    traffic[name] = t
                    onTraffic?()
                case .logs(let id, let output): pendingLogs.removeValue(forKey: id)?.resume(returning: output)
                case .gossipKeysApplied(let g):
                    rotation?.applied(by: name, generation: g)
                    await stepRotation()
                case .heldCertificates(let held): await record(held, from: name)
                default: continue
                }
            }
        case .renewCertificate(let csrPEM):
            try await renew(csrPEM, peer: name, writer: writer)
        case .forward(let request):
            // Only another manager of this swarm may have the leader act for it.
            guard let name, try await isManager(name) else {
                try await writer.send(json: ControlMessage.error("only a manager of this swarm may forward requests"))
                throw ControlRefused(.identityMismatch, "forwarded request from \(name ?? "a peer without a certificate"), not a manager")
            }
            guard let forwardHandler else {
                try await writer.send(json: ControlMessage.error("this manager does not answer forwarded requests"))
                return
            }
            try await writer.send(json: ControlMessage.forwarded(await forwardHandler(request)))
        default:
            try await writer.send(json: ControlMessage.error("expected a join request or a hello"))
        }
    }

    /// A node's certificate renewed: only over mutual TLS with its current certificate, only for a
    /// member, only for the node that certificate names; valid as long as the swarm's
    /// `CAConfig.NodeCertExpiry` says now.
    private func renew(_ csrPEM: String, peer name: String?, writer: ControlWriter) async throws {
        guard let name else {
            try await writer.send(json: ControlMessage.error("a certificate renewal needs the node's current certificate"))
            throw ControlRefused(.noCertificate, "certificate renewal without a certificate")
        }
        guard try await isMember(name) else {
            try await writer.send(json: ControlMessage.error("node \(name) is not a member of this swarm (it was removed)"))
            throw ControlRefused(.unknownNode, "certificate renewal for removed node \(name)")
        }
        let csr: CertificateSigningRequest
        do { csr = try CertificateSigningRequest(pemEncoded: csrPEM) } catch {
            try await writer.send(json: ControlMessage.error("the certificate signing request does not parse: \(error)"))
            return
        }
        guard ClusterCA.commonName(of: csr.subject) == name else {
            try await writer.send(json: ControlMessage.error("a node may renew only its own certificate (\(name))"))
            throw ControlRefused(.identityMismatch, "certificate renewal by \(name) for another node")
        }
        let validity = await controller.certificateValidity
        do {
            let chain = try await controller.withManager { m throws(ClusterError) in
                [try m.renewCertificate(nodeID: name, csr: csr, validity: validity)] + m.issuedChain
            }
            metrics.certificatesIssued.increment()
            try await writer.send(json: ControlMessage.certificate(PEMChain.pem(chain)))
        } catch let e as ClusterError {
            try await writer.send(json: ControlMessage.error(e.description))
        }
    }

    private func isManager(_ nodeID: String) async throws -> Bool {
        try await controller.read { m throws(ClusterError) in try m.store.get(ClusterNode.self, id: nodeID)?.role == .manager }
    }

    private func isMember(_ nodeID: String) async throws -> Bool {
        try await controller.read { m throws(ClusterError) in try m.store.get(ClusterNode.self, id: nodeID) != nil }
    }

    /// Peers the 2377 listener refused, by cause (no certificate, another CA, a removed node…).
    public nonisolated var refusals: ControlRefusals {
        get async { await server.refusals }
    }

    private func ended(_ nodeID: String, token: UUID) {
        if sessions[nodeID]?.token == token { sessions[nodeID] = nil }
    }

    private var pendingLogs: [String: CheckedContinuation<[String: String], Never>] = [:]

    /// A task's output, asked of the node that runs it; nil when the node is not connected or does
    /// not answer within 5 s.
    public func logs(taskID: String, nodeID: String) async -> String? {
        guard let session = sessions[nodeID] else { return nil }
        let id = UUID().uuidString
        let output = await withCheckedContinuation { (c: CheckedContinuation<[String: String], Never>) in
            pendingLogs[id] = c
            Task {
                try? await session.writer.send(json: ControlMessage.logsRequest(requestID: id, taskIDs: [taskID]))
                try? await Task.sleep(for: .seconds(5))
                self.expireLogs(id)
            }
        }
        return output[taskID]
    }

    private func expireLogs(_ id: String) { pendingLogs.removeValue(forKey: id)?.resume(returning: [:]) }

    private func join(_ request: JoinRequest) async -> JoinResponse {
        do {
            let csr = try CertificateSigningRequest(pemEncoded: request.csrPEM)
            guard let nodeID = ClusterCA.commonName(of: csr.subject) else {
                return JoinResponse(error: "the certificate request names no node")
            }
            let validity = await controller.certificateValidity
            let result = try await controller.withManager { m throws(ClusterError) in
                let joined = try m.join(
                    token: request.token, nodeID: nodeID, hostname: request.hostname,
                    addr: request.advertiseAddress.description, csr: csr, certificateValidity: validity)
                var described = joined.node
                described.description = NodeFacts.description(request.platform)
                _ = try m.store.update(described)
                let managers = try m.store.list(ClusterNode.self).compactMap(\.managerAddr).sorted()
                return (
                    [joined.certificate] + m.issuedChain, m.settings.gossipKeys.map { KeyHex.encode($0.bytes) },
                    m.ca.certificatePEM, managers, joined.node.role
                )
            }
            let certificatePEM = PEMChain.pem(result.0)
            DaemonLog.manager.info("node \(nodeID) (\(request.hostname), \(request.advertiseAddress)) joined")
            return JoinResponse(
                nodeID: nodeID, certificatePEM: certificatePEM, caPEM: result.2, gossipKeys: result.1, managers: result.3,
                store: result.4 == .manager ? storeURL : nil)
        } catch let e as ClusterError {
            return JoinResponse(error: e.description)
        } catch {
            return JoinResponse(error: "invalid join request: \(error)")
        }
    }

    // MARK: certificates

    /// The certificates every node should hold, as last sent to the sessions.
    private var sentTrust: CertificateTrust?

    private func wantedTrust() async -> CertificateTrust? {
        guard let info = try? await controller.read({ m throws(ClusterError) in m.clusterTLSInfo }) else { return nil }
        return CertificateTrust(info)
    }

    /// What a node holds, stored when it changed; a root rotation ends with the last node's.
    private func record(_ held: CertificateTrust, from nodeID: String) async {
        let info = held.tlsInfo
        do {
            let finished = try await controller.withManager { m throws(ClusterError) in
                try m.recordTLSInfo(info, nodeID: nodeID)
                return try m.finishRootRotationIfConverged()
            }
            if finished { rootRotated() }
        } catch {
            DaemonLog.manager.warning("certificates held by \(nodeID): \(error)")
        }
    }

    private func rootRotated() {
        metrics.rootRotations.increment()
        DaemonLog.manager.info("root CA rotated: every node holds a certificate of the new root, which nodes now trust")
    }

    /// Sends every session the certificates wanted when that changed (a root rotation began or ended).
    private func sendTrustIfChanged() async {
        guard let wanted = await wantedTrust(), wanted != sentTrust else { return }
        sentTrust = wanted
        for (node, session) in sessions.sorted(by: { $0.key < $1.key }) {
            do { try await session.writer.send(json: ControlMessage.trust(wanted)) } catch {
                if sessions[node]?.token == session.token { sessions[node] = nil }
            }
        }
    }

    /// The state each node last reported per task: a report repeats every heartbeat, and only a
    /// change is worth a store write (and a control-loop pass).
    private var reported: [String: [String: TaskReport.State]] = [:]

    private func record(_ reports: [TaskReport], from nodeID: String) async {
        let now = Date()
        for r in reports where reported[nodeID]?[r.id] != r.state {
            reported[nodeID, default: [:]][r.id] = r.state
            let state: TaskState
            switch r.state {
            case .preparing: state = .preparing
            case .starting: state = .starting
            case .running: state = .running
            case .complete: state = .complete
            case .failed: state = .failed
            case .shutdown: state = .shutdown
            case .rejected: state = .rejected
            }
            let failed = state == .failed || state == .rejected
            let status = TaskStatus(
                state: state, timestamp: now, message: Self.message(for: state, r.message),
                err: failed ? r.message : "")
            // A task the manager already forgot (removed service) is not an error worth a log line.
            _ = try? await controller.withManager { m throws(ClusterError) in
                try m.reportTaskStatus(taskID: r.id, nodeID: nodeID, status: status)
            }
        }
    }

    static func message(for state: TaskState, _ text: String) -> String {
        switch state {
        case .preparing: return "preparing"
        case .running: return "started"
        case .complete: return "finished"
        case .failed, .rejected: return text.isEmpty ? "failed" : "started"
        case .shutdown: return "shutdown"
        default: return text
        }
    }

    // MARK: store watch

    /// Hands the store's commits to `onCommit` while the plane runs.
    private var storeWatch: Task<Void, Never>?

    /// Watches from now on: writes made before the plane started (the swarm's own creation) are not
    /// replayed, as dockerd's store watch starts with the manager.
    private func watchStore(_ onCommit: @escaping @Sendable (StoreCommit) -> Void) async {
        // Reading the store's handle cannot fail; the typed throws comes with `read`. Nor can the SQLite store's
        // watch (the daemon runs no other backend yet); a shared store's watch fails only when it is unreachable.
        guard let store = try? await controller.read({ m in m.store }), let watch = try? store.watch() else { return }
        storeWatch = Task {
            for await commit in watch.commits { onCommit(commit) }
        }
    }

    // MARK: convergence

    private func runLoop() {
        let changes = controller.changes
        let (wake, waker) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        loop = Task {
            await withTaskGroup(of: Void.self) { g in
                g.addTask { for await _ in changes { waker.yield() } }
                // No periodic pass: one runs on a change, when an orchestrator delay (restart, rolling
                // update) is due, or when a node's heartbeat deadline passes, so an idle manager reads
                // nothing however many services it holds. Key rotation and traffic asks look at the
                // plane's own state once a second.
                g.addTask {
                    var ticks = 0
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(100))
                        if await self.isDue() { waker.yield() }
                        ticks += 1
                        if ticks % 10 == 0 { await self.housekeeping() }
                    }
                }
                g.addTask {
                    for await _ in wake {
                        if Task.isCancelled { break }
                        await self.converge()
                    }
                }
                await Task.yield()
                while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                waker.finish()
                g.cancelAll()
            }
        }
        waker.yield()
    }

    private var nextWake: Date?
    /// When liveness was last evaluated: a heartbeat deadline before it has been acted on.
    private var lastLivenessCheck = Date.distantPast
    /// A node was heard from again after a silence, or opened a session: it may be ready again.
    private var livenessDirty = false

    /// Records a message from `node`; one that ends a silence longer than the grace period asks for a
    /// liveness pass (the node is down in the store and is ready again).
    private func heard(from node: String, now: Date = Date()) {
        if let seen = lastSeen[node], now.timeIntervalSince(seen) > liveness.gracePeriod { livenessDirty = true }
        lastSeen[node] = now
    }

    private func isDue() -> Bool {
        let now = Date()
        if livenessDirty || (nextWake.map { now >= $0 } ?? false) { return true }
        // A heartbeat deadline that passed since the last check (nodes never heard from count from the start).
        let grace = liveness.gracePeriod
        let start = startedAt.addingTimeInterval(grace)
        if start >= lastLivenessCheck && start < now { return true }
        return lastSeen.values.contains { seen in
            let deadline = seen.addingTimeInterval(grace)
            return deadline >= lastLivenessCheck && deadline < now
        }
    }

    private func converge() async {
        let now = Date()
        lastLivenessCheck = now
        livenessDirty = false
        let start = ContinuousClock.now
        do {
            let seen = lastSeen, since = startedAt, liveness = liveness
            _ = try await controller.withManager { m throws(ClusterError) in
                try m.applyLiveness(liveness, lastSeen: seen, since: since, now: now)
            }
            nextWake = try await controller.withManager { m throws(ClusterError) in try m.reconcile(now: now) }
            // A node removed may have been the last one a root rotation waited for.
            if try await controller.read({ m throws(ClusterError) in m.pendingRoot != nil }),
                try await controller.withManager({ m throws(ClusterError) in try m.finishRootRotationIfConverged() })
            {
                rootRotated()
            }
        } catch {
            metrics.passFailures.increment()
            DaemonLog.manager.warning("reconcile: \(error)")
            // Nothing may change to wake it (the store was unreachable): try again in a second.
            nextWake = now.addingTimeInterval(1)
        }
        metrics.pass.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
        await sendTrustIfChanged()
        await pushAll()
        await housekeeping()
    }

    /// What the plane checks of its own state every second, without reading the store.
    private func housekeeping() async {
        await stepRotation()
        await askForTraffic()
        await sendUnlockKeysIfChanged()
    }

    // MARK: autolock keys (a swarm on etcd)

    /// The keys last handed to the other managers.
    private var sentUnlockKeys: [String?]?

    private func unlockKeysText() async -> (String?, String?) {
        let (current, previous) = await controller.currentUnlockKeys
        return (current?.description, previous?.description)
    }

    /// Hands the other managers of a swarm on etcd the autolock keys when they changed (autolock turned
    /// on or off, the key rotated, an unlock settled): each may have to take over, and the store's CA key
    /// opens only with them. Only over a manager's own session (mutual TLS, a manager in the store).
    private func sendUnlockKeysIfChanged() async {
        guard storeURL != nil else { return }
        let (current, previous) = await unlockKeysText()
        guard sentUnlockKeys != [current, previous] else { return }
        sentUnlockKeys = [current, previous]
        for (node, session) in sessions.sorted(by: { $0.key < $1.key }) where node != nodeID {
            guard (try? await isManager(node)) == true else { continue }
            try? await session.writer.send(json: ControlMessage.unlockKeys(current: current, previous: previous))
        }
    }

    /// Sends each connected node its assignment when it differs from the last one it got. One read
    /// of the store for all of them.
    private func pushAll(only: String? = nil) async {
        let view: (ClusterSnapshot, ClusterSettings, DataFiles)
        let start = ContinuousClock.now
        do {
            view = try await controller.read { m throws(ClusterError) in
                let snapshot = try m.store.snapshot()
                let wanted = DataFiles.referenced(snapshot)
                var data = DataFiles()
                for id in wanted.secrets { data.secrets[id] = try m.secret(id) }
                for id in wanted.configs { data.configs[id] = try m.store.get(ClusterConfig.self, id: id) }
                return (snapshot, m.settings, data)
            }
        } catch {
            DaemonLog.manager.warning("assignments: \(error)")
            return
        }
        metrics.storeRead.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
        metrics.count(view.0)
        metrics.sessions.record(sessions.count)
        // A node removed while connected loses its session at once, not when it next reconnects.
        let members = Set(view.0.nodes.map(\.id))
        for (node, session) in sessions where !members.contains(node) {
            DaemonLog.manager.info("node \(node) was removed: closing its session")
            session.peer.close()
            sessions[node] = nil
            // It still holds the gossip key: a new one, so that it reads and writes nothing more.
            rotateSoon = true
        }
        // The leader's address first: a node that lost its session tries the managers in this order.
        let mine = view.0.nodes.first { $0.id == nodeID }?.managerAddr
        let managers = (mine.map { [$0] } ?? []) + view.0.nodes.compactMap(\.managerAddr).filter { $0 != mine }.sorted()
        if managers != sentManagers {
            sentManagers = managers
            for (_, session) in sessions.sorted(by: { $0.key < $1.key }) {
                try? await session.writer.send(json: ControlMessage.managers(managers))
            }
        }
        for (node, session) in sessions.sorted(by: { $0.key < $1.key }) where only == nil || only == node {
            guard let assignment = AssignmentBuilder.build(view.0, settings: view.1, nodeID: node, data: view.2),
                assignment != session.sent
            else { continue }
            do {
                try await session.writer.send(json: ControlMessage.assignment(assignment))
                metrics.assignmentsSent.increment()
                if sessions[node]?.token == session.token { sessions[node]?.sent = assignment }
            } catch {
                if sessions[node]?.token == session.token { sessions[node] = nil }
            }
        }
    }
}

/// Lets the listener's handler reach the plane that owns the listener, set once after both exist
/// (a connection that arrives before is closed unanswered; the node retries).
final class PlaneBox: Sendable {
    private let value = Mutex<ManagerPlane?>(nil)
    var plane: ManagerPlane? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
