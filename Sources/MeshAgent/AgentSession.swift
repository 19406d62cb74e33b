import Foundation
import MeshControl
import MeshDataplane
import MeshKernel

/// A node's session with its manager over the control channel: says who it is, runs every
/// assignment it receives with the agent (other nodes' tasks taken from the endpoint directory,
/// which it keeps publishing its own tasks to), and reports its tasks' states whenever they
/// change. Returns when the manager closes the connection.
public actor AgentSession {
    public let nodeID: String
    public let agent: NodeAgent
    public let directory: EndpointDirectory?
    public let statusInterval: Duration
    public let heartbeat: Duration
    private var assignment: NodeAssignment?
    /// Other nodes' tasks as gossip has them now, by id.
    private var remote: [String: NodeAssignment.RemoteTask] = [:]
    /// Remote tasks changed since the agent last heard of them.
    private var dirty: Set<String> = []
    private var lastReport: [TaskReport] = []
    /// The running tasks last published to the directory.
    private var published: [NodeAssignment.LocalTask] = []
    public let drainDelay: Duration
    private var writer: ControlWriter?
    /// Counts assignments received, so a pass can tell it has been overtaken.
    private var generation = 0
    private var converging = false
    /// The pass loop started by an assignment, run beside the message loop: awaited there, every
    /// queued assignment got a pass of its own (each up to a drain delay), in order, and the node
    /// fell seconds behind a client that creates and removes services quickly.
    private var passes: Task<Void, Never>?
    /// The connection ended: no pass starts or applies any more (the next session brings a newer
    /// assignment, and an older one applied after it would undo it).
    private var closed = false
    /// A new assignment (or a pass that must start over) waits for a full pass.
    private var fullPending = false
    /// The last pass failed: the next change of any kind gets a full pass, not a delta.
    private var failed = false
    private var drainingSince: [String: ContinuousClock.Instant] = [:]
    /// A local task's health changed whether it is served: the directory must say so.
    private var servingPending = false

    /// How often an idle session tells its manager it is alive; `GET /swarm` shows it as the
    /// dispatcher's heartbeat period.
    public static let defaultHeartbeat: Duration = .seconds(2)

    /// Installs (and saves) the gossip keys the manager sends; the session acknowledges once it returns.
    public typealias KeyHandler = @Sendable (GossipKeySet) async throws -> Void
    let keys: KeyHandler?
    /// Takes the managers' addresses the manager sends (leader first), for the node's next reconnect.
    public typealias ManagersHandler = @Sendable ([String]) async -> Void
    let managers: ManagersHandler?
    /// Takes the certificates the manager wants held (renews, trusts a rotated root) and returns what
    /// the node holds, which the session sends back.
    public typealias TrustHandler = @Sendable (CertificateTrust) async throws -> CertificateTrust
    let trust: TrustHandler?
    /// Takes the autolock keys the leader hands to the other managers (current, previous).
    public typealias UnlockKeysHandler = @Sendable (String?, String?) async -> Void
    let unlockKeys: UnlockKeysHandler?

    public init(
        nodeID: String, agent: NodeAgent, directory: EndpointDirectory?, statusInterval: Duration = .milliseconds(500),
        heartbeat: Duration = AgentSession.defaultHeartbeat, drainDelay: Duration = .milliseconds(750), keys: KeyHandler? = nil,
        managers: ManagersHandler? = nil, trust: TrustHandler? = nil, unlockKeys: UnlockKeysHandler? = nil
    ) {
        self.unlockKeys = unlockKeys
        self.keys = keys
        self.managers = managers
        self.trust = trust
        self.nodeID = nodeID
        self.agent = agent
        self.directory = directory
        self.statusInterval = statusInterval
        self.heartbeat = heartbeat
        self.drainDelay = drainDelay
    }

    public nonisolated func run(_ connection: ControlConnection) async throws {
        try await connection.run { inbound, writer in
            await self.attach(writer)
            await self.agent.onServingChange { [weak self] in await self?.servingChanged() }
            try await writer.send(json: ControlMessage.hello(nodeID: self.nodeID))
            let background = Task {
                await withTaskGroup(of: Void.self) { g in
                    if let directory = self.directory {
                        g.addTask {
                            for await delta in await directory.changes() { await self.remoteChanged(delta) }
                        }
                    }
                    g.addTask {
                        // Unchanged states are sent again every `heartbeat`: they are how the manager
                        // tells a live node from a silent one.
                        var lastSent = ContinuousClock.now
                        while !Task.isCancelled {
                            try? await Task.sleep(for: self.statusInterval)
                            let beat = ContinuousClock.now - lastSent >= self.heartbeat
                            if await self.report(force: beat) { lastSent = ContinuousClock.now }
                            if beat, await self.trafficWanted { await self.reportTraffic() }
                        }
                    }
                }
            }
            defer { background.cancel() }
            do {
                try await self.readMessages(inbound, writer)
            } catch {
                // The pass under way ends before the session does (as the loop that awaited it did).
                await self.passesEnded()
                throw error
            }
            await self.passesEnded()
        }
    }

    private nonisolated func readMessages(_ inbound: ControlInbound, _ writer: ControlWriter) async throws {
        for try await bytes in inbound {
            guard let message = try? JSONDecoder().decode(ControlMessage.self, from: Data(bytes)) else {
                try await writer.send(json: ControlMessage.error("undecodable control message (\(bytes.count) bytes)"))
                continue
            }
            switch message {
            case .assignment(let a):
                await self.received(a)
            case .logsRequest(let id, let taskIDs):
                var output: [String: String] = [:]
                for t in taskIDs { output[t] = await self.agent.runtime.log(t) }
                try await writer.send(json: ControlMessage.logs(requestID: id, output: output))
            case .trafficWanted(let on):
                await self.wantTraffic(on)
            case .gossipKeys(let set):
                guard let keys = self.keys else { continue }
                do {
                    try await keys(set)
                    try await writer.send(json: ControlMessage.gossipKeysApplied(generation: set.generation))
                } catch {
                    try await writer.send(json: ControlMessage.error("node \(self.nodeID): cannot install gossip keys: \(error)"))
                }
            case .managers(let list):
                await self.managers?(list)
            case .unlockKeys(let current, let previous):
                await self.unlockKeys?(current, previous)
            case .trust(let wanted):
                guard let trust = self.trust else { continue }
                do {
                    try await writer.send(json: ControlMessage.heldCertificates(try await trust(wanted)))
                } catch {
                    try await writer.send(
                        json: ControlMessage.error("node \(self.nodeID): cannot take the cluster's certificates: \(error)"))
                }
            case .error(let text):
                throw SessionError.manager(text)
            default:
                continue
            }
        }
    }

    private func attach(_ w: ControlWriter) { writer = w }

    /// Sends `message` to the manager while the session is open (what the node reports on its own,
    /// such as a renewed certificate); dropped once it has ended, as the next session starts afresh.
    public func tell(_ message: ControlMessage) async {
        guard !closed, let writer else { return }
        try? await writer.send(json: message)
    }

    private func passesEnded() async {
        closed = true
        await passes?.value
    }

    /// Kept as the newest: the pass loop, running or started now, takes it at its next pass (a
    /// pass waiting out a drain starts over on it), so assignments that came meanwhile are skipped.
    private func received(_ a: NodeAssignment) {
        generation += 1
        assignment = a
        fullPending = true
        startPasses()
    }

    /// The one pass loop, run as `passes` whoever starts it (an assignment, a remote change, a
    /// health change), so the session's end can wait for it.
    @discardableResult
    private func startPasses() -> Task<Void, Never>? {
        guard !converging, !closed else { return nil }
        // Claimed now, not when the task starts: a second caller before then must not start another.
        converging = true
        // On this actor: nothing runs between the loop's last check and `converging = false`, so
        // a change is either seen by the loop or starts the next one.
        let t = Task {
            await self.passLoop()
            self.converging = false
        }
        passes = t
        return t
    }

    private func servingChanged() async {
        servingPending = true
        if assignment != nil { await converge() }
    }

    private func remoteChanged(_ delta: EndpointDirectory.RemoteDelta) async {
        for (id, task) in delta {
            remote[id] = task
            dirty.insert(id)
        }
        if failed { fullPending = true }
        if assignment != nil { await converge() }
    }

    /// The one owner of ordering on this node: assignments get a full pass (the agent's
    /// converge, which still writes only the difference), remote changes alone only a delta
    /// (`NodeAgent.updateRemote`). An apply that fails is reported and the next change of any kind
    /// gets a full pass. One pass at a time, each on the newest assignment: a pass that waited out
    /// a drain must never apply its assignment after a newer one (it would stop the tasks the
    /// newer one had just started).
    private func converge() async {
        await startPasses()?.value
    }

    private func passLoop() async {
        while !closed, fullPending || (!dirty.isEmpty && assignment != nil) || servingPending {
            if fullPending {
                fullPending = false
                dirty = []  // the full pass takes the remote tasks as they are now
                servingPending = false  // and publishes what is served now
                await convergeOnce()
            } else if servingPending {
                // Only this node's entries whose serving flag moved are written (`publish` compares).
                servingPending = false
                do {
                    try await directory?.publish(published, draining: await agent.notServing)
                } catch {
                    failed = true
                    try? await writer?.send(json: ControlMessage.error("node \(nodeID): \(error)"))
                }
            } else {
                var delta: EndpointDirectory.RemoteDelta = [:]
                for id in dirty { delta[id] = .some(remote[id]) }
                dirty = []
                do {
                    try await agent.updateRemote(delta)
                } catch {
                    failed = true
                    try? await writer?.send(json: ControlMessage.error("node \(nodeID): \(error)"))
                }
            }
        }
    }

    /// The assignment with the other nodes' tasks on its networks.
    private func effective() -> NodeAssignment? {
        guard var a = assignment else { return nil }
        let networks = Set(a.networks.map(\.id))
        a.remoteTasks = remote.values.sorted { $0.id < $1.id }.compactMap {
            AssignmentPlan.visible($0, node: nodeID, networks: networks)
        }
        return a
    }

    private func convergeOnce() async {
        let generation = self.generation
        guard var a = effective() else { return }
        do {
            // Every network the node carries, tasks or not: a node with no task of a published
            // service still balances over the others' tasks on ingress.
            for n in a.networks { try await directory?.watch(n.id) }
            // Tasks on their way out are first marked not serving on every other node (weight 0
            // there, as here), and given `drainDelay` to reach them, before the agent stops them.
            let wanted = Set(a.tasks.filter { $0.desired == .running }.map(\.id))
            let leaving = published.filter { !wanted.contains($0.id) }
            if let directory, !leaving.isEmpty {
                let keep = a.tasks.filter { t in t.desired == .running && published.contains(where: { $0.id == t.id }) }
                try await directory.publish(keep + leaving, draining: Set(leaving.map(\.id)).union(await agent.notServing))
                let now = ContinuousClock.now
                for t in leaving where drainingSince[t.id] == nil { drainingSince[t.id] = now }
                // A task drained by an earlier pass waits only for what is left of its delay.
                let until = leaving.compactMap { drainingSince[$0.id] }.max()! + drainDelay
                if until > now { try? await Task.sleep(until: until, clock: .continuous) }
                // The session ended during the wait: nothing is applied (the next one brings newer).
                guard !closed else { return }
                // A newer assignment came during the wait: start over on it; what drained stays drained.
                guard generation == self.generation else {
                    fullPending = true
                    return
                }
                a = effective() ?? a
            }
            try await agent.apply(a)
            failed = false
            try await directory?.publish(a.tasks, draining: await agent.notServing)
            published = a.tasks.filter { $0.desired == .running }
            let live = Set(published.map(\.id))
            drainingSince = drainingSince.filter { live.contains($0.key) }
        } catch {
            failed = true
            try? await writer?.send(json: ControlMessage.error("node \(nodeID): \(error)"))
        }
        await report(force: true)
    }

    /// The node's traffic by service, when it changed since the last one sent.
    private func reportTraffic() async {
        var t = NodeTraffic()
        for r in await agent.traffic() {
            t.services[r.service, default: .init()].connections += r.count.connections
            t.services[r.service, default: .init()].bytes += r.count.bytes
        }
        guard t != lastTraffic else { return }
        lastTraffic = t
        try? await writer?.send(json: ControlMessage.traffic(t))
    }
    private var lastTraffic = NodeTraffic()
    private var trafficWanted = false
    private func wantTraffic(_ on: Bool) {
        trafficWanted = on
        if on { lastTraffic = NodeTraffic() }  // the manager may have dropped what it had: send the next one
    }

    @discardableResult
    private func report(force: Bool) async -> Bool {
        let now = await agent.status()
        guard force || now != lastReport else { return false }
        lastReport = now
        try? await writer?.send(json: ControlMessage.status(now))
        return true
    }
}

public enum SessionError: Error, Sendable, CustomStringConvertible {
    case manager(String)
    public var description: String {
        switch self {
        case .manager(let text): return "the manager said: \(text)"
        }
    }
}
