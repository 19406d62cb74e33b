import Foundation

/// Computes what converges the cluster: a pure function of a snapshot and the current time (and a random
/// source for new task IDs), so every scenario is reproducible in a test. The manager applies the plan to the
/// store, runs the scheduler, and calls again on any change or at `plan.nextWake`.
///
/// Per service, in order:
/// 1. tasks on nodes that are gone, down or drained (or, for global services, no longer match the
///    constraints), and tasks of removed services, are shut down;
/// 2. replicated: missing slots get tasks (lowest free slot numbers), extra slots are shut down highest
///    first; global: every eligible node without a task gets one;
/// 3. ended tasks are restarted per the restart policy (condition, delay, max attempts);
/// 4. slot hand-over of rolling updates: a stop-first replacement (desired `ready`) starts once the old task
///    has stopped; a start-first one retires the old task once it runs;
/// 5. the rolling update itself (see `RolloutStep`).
public struct Orchestrator: Sendable {
    public init() {}

    public func reconcile(_ snapshot: ClusterSnapshot, now: Date, only serviceIDs: Set<String>? = nil) -> OrchestratorPlan {
        var g = SystemRandomNumberGenerator()
        return reconcile(snapshot, now: now, only: serviceIDs, ids: &g)
    }

    /// `only`: reconcile just these services (those whose spec or tasks changed), so a change costs in
    /// proportion to its service rather than to the cluster; nil reconciles everything (after a node change,
    /// a restart, or at `nextWake`).
    public func reconcile<G: RandomNumberGenerator>(
        _ snapshot: ClusterSnapshot, now: Date, only serviceIDs: Set<String>? = nil,
        ids: inout G
    ) -> OrchestratorPlan {
        var plan = OrchestratorPlan()
        let nodes = Dictionary(snapshot.nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var byService: [String: [ClusterTask]] = [:]
        for t in snapshot.tasks { byService[t.serviceID, default: []].append(t) }
        let known = Set(snapshot.services.map(\.id))

        // Tasks of removed services stop.
        for (serviceID, tasks) in byService.sorted(by: { $0.key < $1.key }) where !known.contains(serviceID) {
            for var t in tasks.sorted(by: { $0.id < $1.id }) where t.isActive {
                t.desiredState = .shutdown
                t.updatedAt = now
                plan.updatedTasks.append(t)
            }
        }

        let sortedNodes = snapshot.nodes.sorted { $0.id < $1.id }
        // The services to work on, in ID order: sorting only those when the pass names them.
        let order: [Int]
        if let serviceIDs {
            order = snapshot.services.indices.filter { serviceIDs.contains(snapshot.services[$0].id) }
                .sorted { snapshot.services[$0].id < snapshot.services[$1].id }
        } else {
            order = snapshot.serviceOrder()
        }
        for i in order {
            let service = snapshot.services[i]
            var work = ServiceWork(
                service: service, tasks: byService[service.id] ?? [], nodes: nodes,
                sortedNodes: sortedNodes, now: now)
            work.shutDownMisplaced()
            if service.spec.mode.isJob {
                // A job has no replicas to keep and no rolling update: an update is a new iteration.
                work.runJob(ids: &ids)
                work.restartEnded(ids: &ids)
            } else {
                if service.spec.mode.isGlobal { work.fillNodes(ids: &ids) } else { work.scaleSlots(ids: &ids) }
                work.restartEnded(ids: &ids)
                work.handOver()
                work.roll(ids: &ids)
            }
            work.emit(into: &plan)
        }
        return plan
    }
}

/// A slot of a replicated service (node empty) or a node of a global one (slot 0).
struct Unit: Hashable, Comparable {
    var slot: Int
    var node: String
    static func < (a: Unit, b: Unit) -> Bool { (a.slot, a.node) < (b.slot, b.node) }
}

/// One service's tasks being changed in one pass.
struct ServiceWork {
    var service: ClusterService
    let original: ClusterService
    var tasks: [String: ClusterTask]
    let originalTasks: [String: ClusterTask]
    var createdIDs: [String] = []
    let nodes: [String: ClusterNode]
    let sortedNodes: [ClusterNode]
    let constraints: [PlacementConstraint]
    let now: Date
    var wake: Date?

    init(service: ClusterService, tasks: [ClusterTask], nodes: [String: ClusterNode], sortedNodes: [ClusterNode], now: Date) {
        self.service = service
        self.original = service
        let map = Dictionary(tasks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.tasks = map
        self.originalTasks = map
        self.nodes = nodes
        self.sortedNodes = sortedNodes
        // Specs are validated on create/update; an unparsable stored constraint matches no node.
        self.constraints =
            (try? PlacementConstraint.parseAll(service.spec.task.constraints))
            ?? [PlacementConstraint(key: .nodeID, equals: true, value: "")]
        self.now = now
    }

    var isGlobal: Bool { service.spec.mode.isGlobal }

    func unit(_ t: ClusterTask) -> Unit { isGlobal ? Unit(slot: 0, node: t.nodeID) : Unit(slot: t.slot, node: "") }

    /// Tasks in a stable order (slot, node, creation, ID).
    var ordered: [ClusterTask] {
        tasks.values.sorted { ($0.slot, $0.nodeID, $0.createdAt, $0.id) < ($1.slot, $1.nodeID, $1.createdAt, $1.id) }
    }

    func eligible(_ node: ClusterNode) -> Bool { node.acceptsNewTasks && constraints.allSatisfy { $0.matches(node) } }

    /// The node can still run (or is still running) what it has.
    func nodeAlive(_ id: String) -> Bool { nodes[id].map { $0.state != .down } ?? false }

    func isDirty(_ t: ClusterTask) -> Bool { t.specVersion != service.specVersion }

    mutating func put(_ t: ClusterTask) {
        var t = t
        t.updatedAt = now
        tasks[t.id] = t
    }

    mutating func shutDown(_ t: ClusterTask, message: String? = nil) {
        var t = t
        t.desiredState = .shutdown
        if let message, !t.status.state.isTerminal { t.status.message = message }
        put(t)
    }

    @discardableResult
    mutating func create<G: RandomNumberGenerator>(unit: Unit, desired: TaskState, attempt: Int = 0, ids: inout G) -> ClusterTask {
        var id = ObjectID.make(using: &ids)
        while tasks[id] != nil { id = ObjectID.make(using: &ids) }
        var t = ClusterTask(
            id: id, serviceID: service.id, slot: unit.slot, nodeID: unit.node, spec: service.spec.task,
            specVersion: service.specVersion, desiredState: desired, attempt: attempt, now: now)
        if service.spec.mode.isJob { t.jobIteration = service.specVersion }
        tasks[id] = t
        createdIDs.append(id)
        return t
    }

    mutating func wake(at date: Date) { if wake == nil || date < wake! { wake = date } }

    // MARK: 1. misplaced tasks

    mutating func shutDownMisplaced() {
        for t in ordered where t.isActive && !t.nodeID.isEmpty {
            guard let node = nodes[t.nodeID] else {
                shutDown(t, message: "node removed from the cluster")
                continue
            }
            if node.state == .down {
                shutDown(t, message: "node is down")
                continue
            }
            if node.availability == .drain {
                shutDown(t, message: "node is drained")
                continue
            }
            if isGlobal, !constraints.allSatisfy({ $0.matches(node) }) {
                shutDown(t, message: "node no longer satisfies the service constraints")
            }
        }
    }

    // MARK: 2. replicas and global coverage

    mutating func scaleSlots<G: RandomNumberGenerator>(ids: inout G) {
        let want = service.spec.mode.replicas ?? 0
        var occupied: [Int: [ClusterTask]] = [:]
        for t in ordered where t.isActive { occupied[t.slot, default: []].append(t) }
        if occupied.count > want {
            for slot in occupied.keys.sorted(by: >).prefix(occupied.count - want) {
                for t in occupied[slot]! { shutDown(t, message: "service scaled down") }
            }
        } else if occupied.count < want {
            var missing = want - occupied.count
            var slot = 1
            while missing > 0 {
                if occupied[slot] == nil {
                    create(unit: Unit(slot: slot, node: ""), desired: .running, ids: &ids)
                    missing -= 1
                }
                slot += 1
            }
        }
    }

    mutating func fillNodes<G: RandomNumberGenerator>(ids: inout G) {
        let covered = Set(tasks.values.filter(\.isActive).map(\.nodeID))
        for node in sortedNodes where eligible(node) && !covered.contains(node.id) {
            create(unit: Unit(slot: 0, node: node.id), desired: .running, ids: &ids)
        }
    }

    // MARK: 2b. jobs

    /// swarmkit's job orchestrators, over the current iteration (tasks of the service's
    /// `specVersion`): tasks of earlier iterations stop; a task that completed is done (desired
    /// `complete`, so its node lets it go); a replicated job starts tasks in the lowest slots
    /// (0-based, as the CLI's job progress counts them) that neither completed nor have a task
    /// meant to run, at most `maxConcurrent` running at once, until `totalCompletions`; a global
    /// job starts one task on every eligible node that has none of this iteration.
    mutating func runJob<G: RandomNumberGenerator>(ids: inout G) {
        for t in ordered where isDirty(t) && t.isActive { shutDown(t, message: "job run again by a service update") }
        for t in ordered where !isDirty(t) && t.desiredState == .running && t.status.state == .complete {
            var done = t
            done.desiredState = .complete
            put(done)
        }
        let current = ordered.filter { !isDirty($0) }
        switch service.spec.mode {
        case .replicatedJob(let concurrent, let total):
            var taken = Set(current.filter { $0.status.state == .complete || $0.desiredState == .running }.map(\.slot))
            var budget = concurrent - current.filter { $0.desiredState == .running && !$0.status.state.isTerminal }.count
            var slot = 0
            while budget > 0 && slot < total {
                if taken.insert(slot).inserted {
                    create(unit: Unit(slot: slot, node: ""), desired: .running, ids: &ids)
                    budget -= 1
                }
                slot += 1
            }
        case .globalJob:
            let covered = Set(current.filter { $0.status.state == .complete || $0.desiredState == .running }.map(\.nodeID))
            for node in sortedNodes where eligible(node) && !covered.contains(node.id) {
                create(unit: Unit(slot: 0, node: node.id), desired: .running, ids: &ids)
            }
        case .replicated, .global:
            break
        }
    }

    // MARK: 3. restart policy

    mutating func restartEnded<G: RandomNumberGenerator>(ids: inout G) {
        let policy = service.effectiveRestartPolicy
        for t in ordered where t.desiredState == .running && t.status.state.isTerminal {
            let wanted: Bool
            switch policy.condition {
            case .none: wanted = false
            case .onFailure: wanted = t.status.state != .complete
            // A job's task that completed is done, whatever the condition says (swarmkit's rule).
            case .any: wanted = !service.spec.mode.isJob || t.status.state != .complete
            }
            guard wanted, policy.maxAttempts == 0 || t.attempt < policy.maxAttempts else { continue }
            let due = t.status.timestamp.addingTimeInterval(Double(policy.delay) / 1e9)
            guard now >= due else {
                wake(at: due)
                continue
            }
            shutDown(t)
            if isGlobal {
                // A global task comes back on its node only if the node may still run it.
                if let node = nodes[t.nodeID], eligible(node) {
                    create(unit: unit(t), desired: .running, attempt: t.attempt + 1, ids: &ids)
                }
            } else {
                create(unit: unit(t), desired: .running, attempt: t.attempt + 1, ids: &ids)
            }
        }
    }

    // MARK: 4. hand-over within a unit

    mutating func handOver() {
        var units: [Unit: [ClusterTask]] = [:]
        for t in ordered { units[unit(t), default: []].append(t) }
        for (_, group) in units.sorted(by: { $0.key < $1.key }) {
            // Stop-first: the replacement waits (desired `ready`) until nothing else in the unit still runs.
            for r in group where r.desiredState == .ready {
                let stillRunning = group.contains { o in
                    o.id != r.id && o.desiredState != .ready && o.status.state >= .assigned
                        && !o.status.state.isTerminal && nodeAlive(o.nodeID)
                }
                if !stillRunning {
                    var r = tasks[r.id]!
                    r.desiredState = .running
                    put(r)
                }
            }
            // Start-first: the old task retires once its replacement runs.
            let current = group.filter { !isDirty($0) && $0.desiredState == .running && $0.status.state == .running }
            if !current.isEmpty {
                for o in group where isDirty(o) && tasks[o.id]!.isActive {
                    shutDown(tasks[o.id]!, message: "replaced by an updated task")
                }
            }
        }
    }

    // MARK: output

    func emit(into plan: inout OrchestratorPlan) {
        for id in createdIDs { plan.createdTasks.append(tasks[id]!) }
        let created = Set(createdIDs)
        for t in ordered where !created.contains(t.id) && originalTasks[t.id] != t {
            plan.updatedTasks.append(t)
        }
        if service != original {
            var s = service
            s.updatedAt = now
            plan.updatedServices.append(s)
        }
        if let wake { plan.wake(at: wake) }
    }
}
