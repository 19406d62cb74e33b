import Foundation
import MeshControl
import MeshDataplane
import MeshDNS
import MeshKernel
import MeshRuntime

/// Runs one node's share of the cluster from `NodeAssignment`s: starts and stops task processes,
/// attaches them to their networks, keeps every load balancer and DNS resolver current.
/// A task is withdrawn from the load balancers (weight 0) before it is stopped, and it is never
/// started before its network and resolver are in place.
public actor NodeAgent {
    public typealias TaskState = TaskReport.State
    public typealias TaskStatus = TaskReport

    public let runtime: TaskRuntime
    public let reconciler: Reconciler
    public let dns: DNSServer
    public let stopGrace: Duration
    public var startSettle: Duration = .milliseconds(300)
    /// Tasks being stopped beside the turn (`stopAside`): drained, still attached and in the
    /// dataplane at weight 0 until their process has ended, reported running until then.
    private var stopping: Set<String> = []
    /// Stopping tasks whose health check never passed: they report starting, not running, to the end.
    private var stoppingUnproven: Set<String> = []
    private var stopTasks: [String: Task<Void, Never>] = [:]
    /// Ended tasks whose containers stay while the manager keeps them in its history
    /// (`NodeAssignment.retained`): out of the dataplane, no namespace, removed once they leave it.
    private var kept: Set<String> = []
    private var attached: [String: NetworkNamespace] = [:]
    private var rejected: [String: String] = [:]
    private var dnsTasks: Set<String> = []
    private var dnsServices: Set<String> = []
    private var dnsNetworks: Set<String> = []
    private var launches: [String: TaskLaunch] = [:]
    private var graces: [String: Duration] = [:]
    private var stopped: Set<String> = []
    private let turn = OneAtATime()
    private let metrics = AgentMetrics()
    /// The assignment last applied and the remote tasks in the dataplane now, for `updateRemote`.
    private var current: NodeAssignment?
    private var remoteApplied: [String: NodeAssignment.RemoteTask] = [:]
    private var remoteByService: [String: Set<String>] = [:]
    /// Indexes of `current`, built once per assignment so a remote change looks up, not scans.
    private var currentServices: [String: NodeAssignment.Service] = [:]
    private var currentNetworks: Set<String> = []
    /// The assignment's networks by id: a dual-stack one gives remote tasks an IPv6 address too.
    private var currentNetworksByID: [String: OverlayNetwork] = [:]
    private var currentLocalByService: [String: [NodeAssignment.LocalTask]] = [:]
    /// The gossip keys (primary first) the pairs' ESP keys are derived from, and the peers keyed now.
    private var espSecrets: [[UInt8]] = []
    private var keyedPeers: [String: IPAddress] = [:]
    /// Image pulls run beside the turn, one per image: tasks waiting for one report preparing and
    /// are started by the change that follows its end (`fetched`), which is applied at once.
    private var fetching: [String: Task<Void, Never>] = [:]
    private var fetchFailures: [String: String] = [:]
    private var waiting: Set<String> = []
    private var isShutDown = false
    /// Tasks with a health check: its state decides their weight (0 until a probe passes, and
    /// while unhealthy), here and, through the session's directory, on every other node.
    private var health: [String: Watched] = [:]
    private var healthLoops: [String: Task<Void, Never>] = [:]
    private var servingListener: (@Sendable () async -> Void)?
    /// The lifecycle of this node's containers (runc tasks), as dockerd reports its own in `docker events`.
    private var containerListener: (@Sendable (ContainerEvent) -> Void)?
    private var containerWatches: [String: Task<Void, Never>] = [:]
    /// Containers started here and not yet destroyed: what their events name.
    private var containerSubjects: [String: ContainerEvent.Subject] = [:]
    struct Watched {
        var check: HealthCheck
        var state = HealthState()
        var started: ContinuousClock.Instant?
    }

    public init(runtime: TaskRuntime, reconciler: Reconciler, dns: DNSServer, stopGrace: Duration = .seconds(10)) {
        self.runtime = runtime
        self.reconciler = reconciler
        self.dns = dns
        self.stopGrace = stopGrace
    }

    /// Converges the node on `a`; returns the dataplane's report of the final step.
    @discardableResult
    public func apply(_ a: NodeAssignment) async throws -> ChangeReport {
        // One assignment at a time: the session calls this from its message loop and from
        // directory updates, and the actor alone would interleave them at every await.
        await turn.enter()
        defer { turn.leave() }
        return try await applyInTurn(a)
    }

    /// A pull ended: the latest assignment again (read once the turn is ours, so never an older
    /// one), which starts the tasks that waited for it or rejects them with the registry's answer.
    private func fetched(_ image: String, failure: String?) async {
        fetching[image] = nil
        if let failure { fetchFailures[image] = failure }
        await turn.enter()
        defer { turn.leave() }
        guard !isShutDown, var a = current else { return }
        // The other nodes' tasks as they are now: `updateRemote` has moved on since `current` was
        // applied, and the stale list would take their endpoints back out of the dataplane.
        a.remoteTasks = remoteApplied.values.sorted { $0.id < $1.id }
        _ = try? await applyInTurn(a)
    }

    /// New tasks whose image must come from a registry first: a pull for each image not already
    /// under way, off the turn. Returns the tasks that wait (reported preparing).
    private func startFetches(_ ids: [String], _ wanted: [String: NodeAssignment.LocalTask]) async -> Set<String> {
        var waits: Set<String> = []
        for id in ids {
            let t = wanted[id]!
            let probe = TaskLaunch(id: id, image: t.image, args: t.args)
            guard let image = await runtime.imageToFetch(probe) else { continue }
            if let failure = fetchFailures[image] {
                rejected[id] = failure
                metrics.tasksRejected.increment()
                continue
            }
            waits.insert(id)
            if fetching[image] == nil {
                let runtime = runtime
                fetching[image] = Task {
                    var failure: String?
                    do { try await runtime.fetch(image: image) } catch { failure = "\(error)" }
                    await self.fetched(image, failure: failure)
                }
            }
        }
        return waits
    }

    private func applyInTurn(_ a: NodeAssignment) async throws -> ChangeReport {
        let began = ContinuousClock.now
        let wanted = Dictionary(a.tasks.filter { $0.desired == .running }.map { ($0.id, $0) }, uniquingKeysWith: { x, _ in x })
        let candidates = wanted.keys.filter { attached[$0] == nil && rejected[$0] == nil }.sorted()
        // 0. Images still to pull are pulled beside the turn: those tasks wait, the rest go on.
        waiting = await startFetches(candidates, wanted)
        // A failure is given to the tasks that waited for it, once; a later task tries again.
        fetchFailures = [:]
        let toStart = candidates.filter { !waiting.contains($0) && rejected[$0] == nil }
        // A rolling update pulls the new image before the old task stops (as swarmkit's executor
        // prepares first): a service with a task waiting for its image keeps its leaving tasks
        // running (drained) until the pull has ended.
        let pullingServices = Set(waiting.compactMap { wanted[$0]?.service })
        let toStop = attached.keys.filter { id in
            wanted[id] == nil && !stopping.contains(id) && !pullingServices.contains(launches[id]?.container.serviceID ?? "")
        }.sorted()

        // 1. Namespaces for new tasks (an unmapped image is rejected here, with the reason).
        // All at once: a pull or an image's unpack for one task must not hold up the others.
        var prepared: [String] = []
        let runtime = runtime
        let outcomes = await withTaskGroup(of: (String, Result<(TaskLaunch, NetworkNamespace), Error>).self) { group in
            for id in toStart {
                let t = wanted[id]!
                group.addTask {
                    do {
                        var launch = TaskLaunch(id: id, image: t.image, args: t.args, env: t.env, container: try Self.containerOptions(t))
                        launch.files = (t.files ?? []).map {
                            TaskFile(name: $0.name, target: $0.target, data: $0.data, uid: $0.uid, gid: $0.gid, mode: $0.mode)
                        }
                        let name = try await runtime.prepare(launch)
                        do { return (id, .success((launch, try NetworkNamespace.open(named: name)))) } catch {
                            // Prepared but unusable: what prepare made (namespace, rootfs) goes now.
                            await runtime.remove(id)
                            throw error
                        }
                    } catch {
                        return (id, .failure(error))
                    }
                }
            }
            var all: [String: Result<(TaskLaunch, NetworkNamespace), Error>] = [:]
            for await (id, r) in group { all[id] = r }
            return all
        }
        for id in toStart {
            switch outcomes[id]! {
            case .success((let launch, let ns)):
                attached[id] = ns
                launches[id] = launch
                if let n = wanted[id]!.container?.stopGraceNanos, n >= 0 { graces[id] = .nanoseconds(n) }
                prepared.append(id)
            case .failure(let error):
                rejected[id] = "\(error)"
                metrics.tasksRejected.increment()
            }
        }
        let names = attached.mapValues { $0.name ?? $0.path }
        // A task with a health check is not served until it passes one: the service's, over the
        // image's HEALTHCHECK as dockerd merges them.
        for id in prepared {
            let image = await runtime.containers?.imageConfig(id)?.healthcheck
            if let h = Self.effectiveHealthcheck(service: wanted[id]!.container?.healthcheck, image: image),
                let check = HealthCheck(
                    test: h.test, intervalNanos: h.intervalNanos, timeoutNanos: h.timeoutNanos, startPeriodNanos: h.startPeriodNanos,
                    startIntervalNanos: h.startIntervalNanos, retries: h.retries)
            {
                health[id] = Watched(check: check)
            }
        }

        // 2. Tasks on their way out stop receiving new connections first; then they stop beside
        // the turn. Each may wait out its whole grace (a pid 1 that ignores SIGTERM), and in the
        // turn that held up every change after it: a new service's tasks waited for a removed
        // one's stop (Swarm stops and starts tasks independently too).
        if !toStop.isEmpty {
            _ = try await reconciler.converge(
                AssignmentPlan.dataplane(a, attached: names, draining: Set(toStop).union(notServing), secrets: espSecrets))
            for id in toStop {
                if let h = health[id], !h.state.hasPassed { stoppingUnproven.insert(id) }
                forgetHealth(id)
                stopAside(id)
            }
        }

        // 3. The dataplane with the new ones (the stopping ones stay at weight 0); then their resolvers.
        // New tasks join their balancers at weight 0: no connection reaches them before they run.
        var report = try await reconciler.converge(
            AssignmentPlan.dataplane(a, attached: names, draining: Set(prepared).union(notServing), secrets: espSecrets))
        try await syncDNS(a)
        // Reported to the manager and dropped from its assignments by now: forgotten.
        stopped.formIntersection(a.tasks.map(\.id))
        // Taken back before this node ever started them (a service created and removed at once):
        // nothing to stop, but the manager keeps them in every assignment until it hears they ended.
        for t in a.tasks where t.desired == .shutdown && attached[t.id] == nil { stopped.insert(t.id) }
        // Pruned from the manager's history: their containers go.
        if !kept.isEmpty {
            let history = Set(a.tasks.map(\.id)).union(a.retained ?? [])
            let pruned = kept.subtracting(history)
            kept.subtract(pruned)
            await withDiscardingTaskGroup { group in
                for id in pruned { group.addTask { await runtime.remove(id) } }
            }
            for id in pruned { containerRemoved(id) }
        }
        // An encrypted network this node cannot protect (no ESP in its kernel) takes no task:
        // the dataplane left it out, and the task fails with the kernel's answer.
        let refusedNetworks = await reconciler.refusedNetworks()
        if !refusedNetworks.isEmpty {
            for id in prepared {
                guard let at = wanted[id]!.attachments.first(where: { refusedNetworks[$0.network] != nil }) else { continue }
                rejected[id] = refusedNetworks[at.network]!
                metrics.tasksRejected.increment()
            }
        }
        let ingress = a.networks.first(where: \.isIngress)?.id
        for id in prepared where rejected[id] == nil {
            let t = wanted[id]!
            let networks = t.attachments.map(\.network).filter { $0 != ingress }
            try await dns.attach(attached[id]!, networks: networks)
        }

        // 4. Only now the processes.
        // Together as well: a container's start (runc) is tens of milliseconds, mostly waiting.
        var started: [(pid: pid_t, namespace: String)] = []
        let toLaunch = prepared.filter { rejected[$0] == nil }.map { ($0, launches[$0]!) }
        let launched = await withTaskGroup(of: (String, Result<pid_t, Error>).self) { group in
            for (id, launch) in toLaunch {
                group.addTask {
                    do { return (id, .success(try await runtime.launch(launch).pid)) } catch { return (id, .failure(error)) }
                }
            }
            var all: [String: Result<pid_t, Error>] = [:]
            for await (id, r) in group { all[id] = r }
            return all
        }
        for (id, launch) in toLaunch {
            switch launched[id]! {
            case .success(let pid):
                await containerStarted(id, launch)
                if health[id] != nil {
                    health[id]!.started = .now
                    watchHealth(id)
                } else {
                    started.append((pid, attached[id]!.path))
                }
            case .failure(let error):
                rejected[id] = "\(error)"
                forgetHealth(id)
                metrics.tasksRejected.increment()
            }
        }
        for id in rejected.keys where wanted[id] == nil { rejected[id] = nil }
        if !prepared.isEmpty {
            // A process needs a moment to listen once spawned. Those with no health check to tell
            // take weight once each listens, or after `startSettle` for those that never do; the
            // others once a probe passes (`healthChanged`).
            let deadline = ContinuousClock.now + startSettle
            while ContinuousClock.now < deadline,
                !started.allSatisfy({ TaskReadiness.isListening(pid: $0.pid, namespacePath: $0.namespace) })
            {
                try? await Task.sleep(for: .milliseconds(10))
            }
            var running = names
            for id in prepared where rejected[id] != nil { running[id] = nil }
            report.changes += try await reconciler.converge(
                AssignmentPlan.dataplane(a, attached: running, draining: notServing, secrets: espSecrets)
            ).changes
            // Refused before they ran: nothing of them stays but the reason.
            for id in prepared
            where rejected[id] != nil
                && refusedNetworks.keys.contains(where: { n in
                    wanted[id]!.attachments.contains { $0.network == n }
                })
            {
                attached[id] = nil
                launches[id] = nil
                forgetHealth(id)
                await runtime.remove(id)
            }
        }
        metrics.assignments.increment()
        metrics.started(prepared.filter { rejected[$0] == nil }.count, after: ContinuousClock.now - began)
        current = a
        currentServices = Dictionary(a.services.map { ($0.id, $0) }, uniquingKeysWith: { x, _ in x })
        currentNetworks = Set(a.networks.map(\.id))
        currentNetworksByID = AssignmentPlan.networksByID(a)
        currentLocalByService = Dictionary(grouping: a.tasks, by: \.service)
        remoteApplied = Dictionary(a.remoteTasks.map { ($0.id, $0) }, uniquingKeysWith: { x, _ in x })
        remoteByService = [:]
        for r in a.remoteTasks { remoteByService[r.service, default: []].insert(r.id) }
        keyedPeers = Dictionary(
            AssignmentPlan.peerKeys(a, secrets: espSecrets).map { ($0.nodeID, $0.nodeAddress) }, uniquingKeysWith: { x, _ in x })
        return report
    }

    /// Stops `id` beside the turn with its grace (the service's --stop-grace-period where it set
    /// one, else the node's), then takes it out of the dataplane, its resolver and the runtime in
    /// the turn.
    private func stopAside(_ id: String) {
        stopping.insert(id)
        let grace = graces[id] ?? stopGrace
        let serviceSignal = launches[id]?.container.stopSignal
        let runtime = runtime
        stopTasks[id] = Task {
            // A task that already ended (complete, failed) is not killed: no kill or stop event.
            let running = await runtime.task(id)?.process.current == .running
            if running {
                // By number, as dockerd's event gives it: the service's stop signal, else the image's.
                var name = serviceSignal ?? ""
                if serviceSignal == nil, let image = await runtime.containers?.imageConfig(id) { name = image.stopSignal }
                self.containerEvent(id, "kill", ["signal": String(SignalName.parse(name) ?? 15)])
            }
            let end = await runtime.stop(id, grace: grace)
            // A stop's `die` comes from here, before its `stop` (the end's own watch stays quiet).
            if running, let end { self.containerEvent(id, "die", ["exitCode": String(Self.exitCode(end))]) }
            await self.stopEnded(id, requested: running)
        }
    }

    /// A stop ended: the task's endpoints and backends go as single-object changes (the cost of
    /// its attachments), then its namespace and files.
    private func stopEnded(_ id: String, requested: Bool) async {
        await turn.enter()
        defer { turn.leave() }
        stopTasks[id] = nil
        guard !isShutDown, stopping.contains(id) else { return }
        // Only while the last assignment still carries the task: its addresses are still its own
        // then. Once it is dropped (it reported shutdown), that apply removed them, and an address
        // may already be a new task's.
        var changes: [DataplaneChange] = []
        let service = launches[id]?.container.serviceID ?? ""
        if let t = currentLocalByService[service]?.first(where: { $0.id == id }) {
            for at in t.attachments {
                if currentServices[service] != nil {
                    changes.append(.removeBackend(service: service, network: at.network, address: at.address))
                }
                changes.append(.removeLocalEndpoint(task: id, network: at.network))
            }
        }
        if let ns = attached.removeValue(forKey: id) { try? await dns.detach(ns) }
        if !changes.isEmpty {
            // A failure here leaves weight-0 entries the next full apply removes (the task is no
            // longer attached).
            _ = try? await reconciler.apply(changes)
        }
        // Its container stays while the manager still has the task (it is only now reporting its
        // end, or the history keeps it); an older manager sends no history, and the next
        // assignment without the task removes it.
        // The stop ends in the process's end: `die` (from its watch) came first, `stop` says it was asked for.
        if requested { containerEvent(id, "stop") }
        if currentLocalByService[service]?.contains(where: { $0.id == id }) == true || current?.retained?.contains(id) == true {
            await runtime.retire(id)
            kept.insert(id)
        } else {
            await runtime.remove(id)
            containerRemoved(id)
        }
        launches[id] = nil
        graces[id] = nil
        stopped.insert(id)
        stopping.remove(id)
        stoppingUnproven.remove(id)
    }

    /// New gossip keys (a session's start or a rotation step): the pairs' ESP keys derived from
    /// them reach the kernel before this returns, so the caller's acknowledgement to the manager
    /// means this node's SAs are at that step. Costs the pairs (single-object key changes).
    public func setESPSecrets(_ secrets: [[UInt8]]) async throws {
        await turn.enter()
        defer { turn.leave() }
        guard secrets != espSecrets else { return }
        guard let a = current else {
            espSecrets = secrets
            return
        }
        // Only the pairs' keys change: single-object changes, not a new full state (which would
        // also roll back what gossip changed since the assignment).
        let changes: [DataplaneChange] = keyedPeers.sorted { $0.key < $1.key }.map { id, address in
            secrets.isEmpty
                ? .removePeerKeys(node: id)
                : .peerKeys(ESPKeyDerivation.peerKeys(local: a.node.id, peer: id, address: address, secrets: secrets))
        }
        if !changes.isEmpty { _ = try await reconciler.apply(changes) }
        // Recorded only once the kernel has them: after a failed apply the manager's resend of the
        // same set must program it again, not be acknowledged as already applied.
        espSecrets = secrets
        if secrets.isEmpty { keyedPeers = [:] }
    }

    /// Other nodes' tasks that changed (nil: gone), applied as single-object changes on top of the
    /// last assignment: their endpoints, their services' backends, their DNS records. Costs the
    /// changed tasks and their services, never the node's whole state.
    @discardableResult
    public func updateRemote(_ changed: [String: NodeAssignment.RemoteTask?]) async throws -> ChangeReport {
        await turn.enter()
        defer { turn.leave() }
        guard let a = current else { return ChangeReport() }
        metrics.remoteChanges.increment(by: Int64(changed.count))
        let networks = currentNetworks, services = currentServices
        var removals: [DataplaneChange] = [], additions: [DataplaneChange] = []
        var affected: Set<String> = []
        let store = dns.store
        for (id, new) in changed.sorted(by: { $0.key < $1.key }) {
            let wanted = AssignmentPlan.visible(new, node: a.node.id, networks: networks)
            let old = remoteApplied[id]
            guard old != wanted else { continue }
            let oldAt = Set(old?.attachments ?? []), newAt = Set(wanted?.attachments ?? [])
            let moved = old?.nodeID != wanted?.nodeID || old?.nodeAddress != wanted?.nodeAddress
            let reweighted = old?.serving != wanted?.serving || old?.service != wanted?.service
            for at in old?.attachments ?? [] where !newAt.contains(at) {
                removals.append(.removeRemoteEndpoint(network: at.network, address: at.address))
                if let a6 = currentNetworksByID[at.network]?.address6(for: at.address) {
                    removals.append(.removeRemoteEndpoint(network: at.network, address: a6))
                }
                if let o = old, services[o.service] != nil {
                    removals.append(.removeBackend(service: o.service, network: at.network, address: at.address))
                }
            }
            if let w = wanted {
                for at in w.attachments where moved || reweighted || !oldAt.contains(at) {
                    additions += AssignmentPlan.remoteEndpoints(at, w, currentNetworksByID).map { .remoteEndpoint($0) }
                    if services[w.service] != nil {
                        additions.append(
                            .backend(
                                service: w.service,
                                .init(
                                    network: at.network, address: at.address,
                                    weight: w.serving ? 1 : 0)))
                    }
                }
            }
            if let o = old {
                remoteByService[o.service]?.remove(id)
                affected.insert(o.service)
            }
            remoteApplied[id] = wanted
            if let w = wanted {
                remoteByService[w.service, default: []].insert(id)
                affected.insert(w.service)
            }
            // DNS answers serving tasks only, as the full path does.
            if let w = wanted, w.serving {
                store.update {
                    $0.upsert(AssignmentPlan.dnsTask(w, service: services[w.service], ingress: a.ingressID, networks: currentNetworksByID))
                }
                dnsTasks.insert(id)
            } else if dnsTasks.contains(id) {
                store.removeTask(id: id)
                dnsTasks.remove(id)
            }
        }
        // A service's DNS record names the networks its tasks are on: recomputed for the services touched.
        for sid in affected.sorted() {
            guard let s = services[sid] else { continue }
            let remotes = (remoteByService[sid] ?? []).compactMap { remoteApplied[$0] }
            let record = AssignmentPlan.dnsService(
                s, local: currentLocalByService[sid] ?? [], remote: remotes, ingress: a.ingressID, byID: currentNetworksByID)
            store.update { $0.upsert(record) }
        }
        // A node's first task on an encrypted network brings that pair's keys, ahead of its endpoints.
        var keys: [DataplaneChange] = []
        if !espSecrets.isEmpty {
            let secure = Set(a.networks.filter(\.isEncrypted).map(\.id))
            for case .remoteEndpoint(let r) in additions where secure.contains(r.network) && keyedPeers[r.nodeID] != r.nodeAddress {
                keyedPeers[r.nodeID] = r.nodeAddress
                keys.append(
                    .peerKeys(ESPKeyDerivation.peerKeys(local: a.node.id, peer: r.nodeID, address: r.nodeAddress, secrets: espSecrets)))
            }
        }
        let changes = keys + removals + additions
        guard !changes.isEmpty else { return ChangeReport() }
        return try await reconciler.apply(changes)
    }

    /// dockerd's merge of a container's health check with its image's: none from the service takes
    /// the image's whole; a service check without a test takes the image's test, and each zero field
    /// the image's value. `["NONE"]` (`--no-healthcheck`) stays, and means no check.
    static func effectiveHealthcheck(service: HealthConfig?, image: HealthConfig?) -> HealthConfig? {
        guard let image else { return service }
        return service?.filled(from: image) ?? image
    }

    /// The service's container fields as the runtime takes them (used when the task's image is
    /// a container's, not the process catalog's).
    static func containerOptions(_ t: NodeAssignment.LocalTask) throws(RuntimeError) -> ContainerOptions {
        guard let c = t.container else { return ContainerOptions(name: t.name, serviceID: t.service, args: t.args) }
        let parts = t.name.split(separator: ".")
        var o = ContainerOptions(
            name: t.name, serviceID: t.service, serviceName: c.serviceName, slot: parts.count == 3 ? String(parts[1]) : "",
            command: c.command, args: c.args, user: c.user.isEmpty ? nil : c.user, workdir: c.dir.isEmpty ? nil : c.dir,
            hostname: c.hostname.isEmpty ? nil : c.hostname, stopSignal: c.stopSignal.isEmpty ? nil : c.stopSignal, labels: c.labels,
            resources: TaskResources(
                memoryBytes: c.memoryBytes > 0 ? c.memoryBytes : nil, nanoCPUs: c.nanoCPUs > 0 ? c.nanoCPUs : nil))
        o.mounts = try (c.mounts ?? []).map { m throws(RuntimeError) in
            guard let kind = ContainerMount.Kind(rawValue: m.type) else {
                throw .unsupported("mount of type \(m.type) at \(m.target): a node runs bind, volume and tmpfs mounts only")
            }
            var out = ContainerMount(
                kind: kind, source: m.source, target: m.target, readOnly: m.readOnly, noCopy: m.noCopy ?? false,
                tmpfsSizeBytes: m.tmpfsSizeBytes, tmpfsMode: m.tmpfsMode)
            out.volumeLabels = m.volumeLabels ?? [:]
            out.unapplied = m.unapplied ?? []
            return out
        }
        o.readOnly = c.readOnly ?? false
        o.capabilityAdd = c.capabilityAdd ?? []
        o.capabilityDrop = c.capabilityDrop ?? []
        o.sysctls = c.sysctls ?? [:]
        o.groups = c.groups ?? []
        o.extraHosts = c.hosts ?? []
        return o
    }

    private func syncDNS(_ a: NodeAssignment) async throws {
        let records = AssignmentPlan.dns(a, notServing: notServing)
        let store = dns.store
        store.update { index in
            for n in records.networks { index.upsert(n) }
            for s in records.services { index.upsert(s) }
            for t in records.tasks { index.upsert(t) }
        }
        let tasks = Set(records.tasks.map(\.id)), services = Set(records.services.map(\.id)), networks = Set(records.networks.map(\.id))
        for id in dnsTasks.subtracting(tasks) { store.removeTask(id: id) }
        for id in dnsServices.subtracting(services) { store.removeService(id: id) }
        for id in dnsNetworks.subtracting(networks) { store.removeNetwork(id: id) }
        dnsTasks = tasks
        dnsServices = services
        dnsNetworks = networks
    }

    /// Every task this agent knows of, for the manager.
    public func status() async -> [TaskStatus] {
        var out: [TaskStatus] = []
        for (id, why) in rejected { out.append(TaskStatus(id: id, state: .rejected, message: why, exitCode: nil)) }
        for id in waiting where attached[id] == nil && rejected[id] == nil {
            out.append(TaskStatus(id: id, state: .preparing, message: "pulling image", exitCode: nil))
        }
        for id in attached.keys {
            if stopping.contains(id) {
                // Running until its process has ended, as Swarm reports it: a stop-first update
                // starts the new task only once the old one is gone. Stopped on purpose: whatever
                // signal ended it, it reports shutdown, not failure.
                if let r = await runtime.task(id), r.process.current == .running {
                    let state: TaskState = stoppingUnproven.contains(id) ? .starting : .running
                    out.append(TaskStatus(id: id, state: state, message: "stopping", exitCode: nil))
                } else {
                    out.append(TaskStatus(id: id, state: .shutdown, message: "shutdown", exitCode: nil))
                }
                continue
            }
            guard let r = await runtime.task(id) else {
                out.append(TaskStatus(id: id, state: .preparing, message: "preparing", exitCode: nil))
                continue
            }
            let checked = health[id]?.state
            switch r.process.current {
            // Starting until a probe has passed (a rolling update waits for that, as Swarm's does),
            // even when the first probes already made it unhealthy.
            case .running where checked.map({ !$0.hasPassed }) == true:
                let message = checked!.status == .unhealthy ? "starting: unhealthy" : "starting"
                out.append(TaskStatus(id: id, state: .starting, message: message, exitCode: nil))
            case .running where checked?.status == .unhealthy:
                out.append(TaskStatus(id: id, state: .running, message: "unhealthy", exitCode: nil))
            case .running: out.append(TaskStatus(id: id, state: .running, message: "started", exitCode: nil))
            case .exited(0): out.append(TaskStatus(id: id, state: .complete, message: "finished", exitCode: 0))
            case .exited(let c): out.append(TaskStatus(id: id, state: .failed, message: "task: non-zero exit (\(c))", exitCode: c))
            case .signalled(let s):
                out.append(TaskStatus(id: id, state: .failed, message: "task: killed by signal \(s)", exitCode: 128 + s))
            }
        }
        for id in stopped where attached[id] == nil { out.append(TaskStatus(id: id, state: .shutdown, message: "shutdown", exitCode: nil)) }
        return out.sorted { $0.id < $1.id }
    }

    /// Stops every task and removes what the agent made (the dataplane keeps what the caller
    /// applies next; pass an empty assignment first to remove it too).
    public func shutdown() async {
        // Stops under way end first, each with its own grace (a leave's empty assignment started
        // them; the removes below would cut them to 2 s).
        for t in Array(stopTasks.values) { await t.value }
        // A pull in flight is not waited for: its task ends on its own, and finds nothing to start.
        isShutDown = true
        for f in fetching.values { f.cancel() }
        for id in Array(health.keys) { forgetHealth(id) }
        fetching = [:]
        waiting = []
        stopTasks = [:]
        stopping = []
        let leaving = attached
        attached = [:]
        for ns in leaving.values { try? await dns.detach(ns) }
        // All at once: each stop may wait out its grace period (a container's pid 1 that ignores
        // SIGTERM), and `swarm leave` with thirty tasks took over a minute one after another.
        let runtime = self.runtime
        let ended = kept
        kept = []
        await withDiscardingTaskGroup { group in
            for id in Set(leaving.keys).union(ended) { group.addTask { await runtime.remove(id) } }
        }
    }
}

/// One event of a container's life on this node (`create`, `start`, `kill`, `die`, `stop`,
/// `destroy`, `health_status: <status>`), for the daemon's `docker events`.
public struct ContainerEvent: Sendable, Equatable {
    /// What every event of the container names: its task, name, image and labels.
    public struct Subject: Sendable, Equatable {
        public var taskID: String
        public var name: String
        public var image: String
        public var labels: [String: String]
    }
    public var subject: Subject
    public var action: String
    /// Beyond the subject's: `exitCode` for `die`, `signal` for `kill`.
    public var attributes: [String: String]
}

extension NodeAgent {
    /// Called for each event of this node's containers (host-process tasks have none, as they
    /// are not containers to `docker ps` either).
    public func onContainerEvent(_ f: @escaping @Sendable (ContainerEvent) -> Void) { containerListener = f }

    private func containerEvent(_ id: String, _ action: String, _ attributes: [String: String] = [:]) {
        guard let subject = containerSubjects[id], let listener = containerListener else { return }
        listener(ContainerEvent(subject: subject, action: action, attributes: attributes))
    }

    /// A task the runtime started: for a container, `create` and `start`, and a watch on its end (`die`).
    private func containerStarted(_ id: String, _ launch: TaskLaunch) async {
        guard let running = await runtime.task(id), running.driver == "oci" else { return }
        let labels = await runtime.containers?.container(id)?.spec.annotations ?? [:]
        let name = await runtime.containers?.container(id)?.name ?? launch.container.name ?? id
        containerSubjects[id] = .init(taskID: id, name: name, image: launch.image, labels: labels)
        containerEvent(id, "create")
        containerEvent(id, "start")
        let process = running.process
        containerWatches[id] = Task { [weak self] in
            let end = await process.wait()
            await self?.containerEnded(id, end)
        }
    }

    /// A container's end on its own; one being stopped gets its `die` from the stop.
    private func containerEnded(_ id: String, _ end: TaskProcess.State) {
        guard !stopping.contains(id) else { return }
        containerEvent(id, "die", ["exitCode": String(Self.exitCode(end))])
    }

    /// dockerd's exit code: the status, or 128 + the signal.
    static func exitCode(_ end: TaskProcess.State) -> Int32 {
        switch end {
        case .exited(let c): c
        case .signalled(let sig): 128 + sig
        case .running: 0
        }
    }

    private func containerRemoved(_ id: String) {
        containerWatches.removeValue(forKey: id)
        containerEvent(id, "destroy")
        containerSubjects[id] = nil
    }
}

extension NodeAgent {
    /// Tasks with a health check that has not passed, or that failed since: weight 0 everywhere.
    public var notServing: Set<String> { Set(health.filter { !$0.value.state.isServing }.keys) }

    /// A task's health, for `docker inspect` and `docker ps`; nil: it has no check.
    public func health(_ id: String) -> HealthState? { health[id]?.state }

    /// Called after a task's serving changed here (its weight is already in this node's
    /// balancers), so the session tells the other nodes.
    public func onServingChange(_ f: @escaping @Sendable () async -> Void) { servingListener = f }

    private func forgetHealth(_ id: String) {
        healthLoops.removeValue(forKey: id)?.cancel()
        health[id] = nil
    }

    /// Probes `id` until it stops: each result goes through `HealthState`, and a change of
    /// serving re-weights only that task's backends.
    private func watchHealth(_ id: String) {
        let runtime = runtime
        healthLoops[id] = Task { [weak self] in
            while !Task.isCancelled {
                guard let self, let (delay, check) = await self.nextProbe(id) else { return }
                try? await Task.sleep(for: delay)
                guard !Task.isCancelled else { return }
                let began = ContinuousClock.now
                guard let probe = await runtime.probe(id, check) else { return }
                await self.record(id, probe, began: began)
            }
        }
    }

    /// When to probe `id` next, and with what; nil once it is no longer watched.
    private func nextProbe(_ id: String) -> (Duration, HealthCheck)? {
        guard let w = health[id], let started = w.started else { return nil }
        return (w.state.nextDelay(w.check, sinceStart: .now - started), w.check)
    }

    private func record(_ id: String, _ probe: HealthProbe, began: ContinuousClock.Instant) async {
        guard var w = health[id], let started = w.started else { return }
        let wasServing = w.state.isServing, wasStatus = w.state.status
        w.state.record(probe, retries: w.check.retries, inStartPeriod: began - started < w.check.startPeriod)
        health[id] = w
        metrics.healthProbes.increment()
        if w.state.status != wasStatus { containerEvent(id, "health_status: \(w.state.status.rawValue)") }
        guard w.state.isServing != wasServing else { return }
        await healthChanged(id)
    }

    /// One task's weight in this node's balancers and its DNS record, changed alone (the cost of
    /// its attachments); then the session republishes it for the others.
    private func healthChanged(_ id: String) async {
        await turn.enter()
        guard let a = current, attached[id] != nil, !stopping.contains(id), health[id] != nil,
            let t = a.tasks.first(where: { $0.id == id }), t.desired == .running
        else {
            turn.leave()
            return
        }
        // The state may have moved again while this waited for the turn: apply what it is now.
        let nowServing = health[id]!.state.isServing
        var changes: [DataplaneChange] = []
        if currentServices[t.service] != nil {
            for at in t.attachments {
                changes.append(.backend(service: t.service, .init(network: at.network, address: at.address, weight: nowServing ? 1 : 0)))
            }
        }
        let store = dns.store
        if nowServing {
            if let s = currentServices[t.service] {
                let record = AssignmentPlan.dnsTask(t, service: s, ingress: a.ingressID)
                store.update { $0.upsert(record) }
                dnsTasks.insert(id)
            }
        } else if dnsTasks.contains(id) {
            store.removeTask(id: id)
            dnsTasks.remove(id)
        }
        metrics.healthChanges.increment()
        do { _ = try await reconciler.apply(changes) } catch {
            // The next full apply (any assignment) puts the weight right; nothing else to do here.
        }
        turn.leave()
        await servingListener?()
    }
}

/// Traffic through one of this node's VIPs or published ports, named for its service.
public struct ServiceTraffic: Sendable, Equatable {
    public enum Entry: Sendable, Equatable {
        /// A service's VIP on one network (the network's name).
        case vip(IPAddress, network: String)
        /// A published port of the routing mesh.
        case published(TransportProtocol, UInt16)
    }
    public var service: String
    public var entry: Entry
    public var count: TrafficCounts.Count
}

extension NodeAgent {
    /// What the kernel counted for each VIP and published port of the services this node
    /// carries. Reads the meter's sets once per sandbox; a VIP or port no service of the current
    /// assignment names (between an assignment and its apply) is left out.
    public func traffic() async -> [ServiceTraffic] {
        guard let a = current else { return [] }
        let naming = Naming(nodeID: a.node.id)
        var networkBySandbox: [String: OverlayNetwork] = [:]
        for n in a.networks { networkBySandbox[naming.sandbox(n.id)] = n }
        var vipOwner: [String: [IPAddress: String]] = [:]  // network id → VIP → service name
        var portOwner: [BalancerState.PortKey: String] = [:]
        for s in a.services {
            for v in s.vips { vipOwner[v.network, default: [:]][v.address] = s.name }
            for p in s.ports where (p.mode ?? .ingress) == .ingress {
                portOwner[.init(proto: p.protocol ?? .tcp, port: p.published)] = s.name
            }
        }
        var out: [ServiceTraffic] = []
        for (sandbox, counts) in await reconciler.traffic() {
            guard let network = networkBySandbox[sandbox] else { continue }
            for (vip, c) in counts.vips {
                if let service = vipOwner[network.id]?[vip] {
                    out.append(.init(service: service, entry: .vip(vip, network: network.name), count: c))
                }
            }
            for (key, c) in counts.ports {
                if let service = portOwner[key] { out.append(.init(service: service, entry: .published(key.proto, key.port), count: c)) }
            }
        }
        return out
    }
}
