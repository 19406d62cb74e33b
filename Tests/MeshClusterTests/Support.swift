import Foundation
import MeshKernel
import Testing
@testable import MeshCluster

/// The seeded generator (MeshKernel's) so IDs and random sequences repeat between runs.
typealias SplitMix64 = MeshKernel.SplitMix64

let t0 = Date(timeIntervalSince1970: 1_800_000_000)

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshcluster-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

func removeTemporary(_ path: String) {
    try? FileManager.default.removeItem(at: URL(fileURLWithPath: path).deletingLastPathComponent())
}

func node(
    _ id: String, _ hostname: String? = nil, role: NodeRole = .worker, availability: NodeAvailability = .active,
    state: NodeState = .ready, labels: [String: String] = [:]
) -> ClusterNode {
    ClusterNode(id: id, hostname: hostname ?? id, role: role, availability: availability, state: state, labels: labels, now: t0)
}

func service(
    _ id: String, name: String? = nil, replicas: Int? = 1, image: String = "meshd/whoami",
    constraints: [String] = [], update: UpdateConfig? = nil, rollback: UpdateConfig? = nil,
    restart: RestartPolicy? = nil
) -> ClusterService {
    let spec = ServiceSpec(
        name: name ?? id,
        task: TaskSpec(image: image, restartPolicy: restart, constraints: constraints),
        mode: replicas.map { .replicated(replicas: $0) } ?? .global,
        update: update, rollback: rollback)
    return ClusterService(id: id, spec: spec, now: t0)
}

/// A cluster run in memory: each step applies the orchestrator's plan and the scheduler's decisions, then
/// plays the agents (assigned tasks start, or fail if their image is in `failingImages`; shut-down tasks
/// stop), then advances the clock.
struct Simulation {
    var snapshot: ClusterSnapshot
    var now = t0
    var rng = SplitMix64(seed: 42)
    var failingImages: Set<String> = []
    /// Nodes whose agent does nothing (crashed or unreachable).
    var deadAgents: Set<String> = []
    var lastPlan = OrchestratorPlan()

    init(nodes: [ClusterNode], services: [ClusterService]) {
        snapshot = ClusterSnapshot(nodes: nodes, services: services)
    }

    mutating func step(seconds: Double = 1) {
        let plan = Orchestrator().reconcile(snapshot, now: now, ids: &rng)
        lastPlan = plan
        apply(plan)
        for t in Scheduler().schedule(snapshot, now: now) { put(t) }
        playAgents()
        now = now.addingTimeInterval(seconds)
    }

    mutating func run(steps: Int, seconds: Double = 1) {
        for _ in 0..<steps { step(seconds: seconds) }
    }

    /// Steps until `done` holds (checked before each step); records an issue if it never does.
    @discardableResult
    mutating func run(
        maxSteps: Int = 200, seconds: Double = 1, sourceLocation: SourceLocation = #_sourceLocation,
        until done: (Simulation) -> Bool
    ) -> Bool {
        for _ in 0..<maxSteps {
            if done(self) { return true }
            step(seconds: seconds)
        }
        if done(self) { return true }
        Issue.record("did not converge within \(maxSteps) steps", sourceLocation: sourceLocation)
        return false
    }

    mutating func apply(_ plan: OrchestratorPlan) {
        for s in plan.updatedServices { put(s) }
        for t in plan.updatedTasks { put(t) }
        snapshot.tasks.append(contentsOf: plan.createdTasks)
    }

    mutating func put(_ t: ClusterTask) {
        if let i = snapshot.tasks.firstIndex(where: { $0.id == t.id }) { snapshot.tasks[i] = t } else { snapshot.tasks.append(t) }
    }
    mutating func put(_ s: ClusterService) {
        if let i = snapshot.services.firstIndex(where: { $0.id == s.id }) { snapshot.services[i] = s } else { snapshot.services.append(s) }
    }

    mutating func playAgents() {
        for i in snapshot.tasks.indices {
            var t = snapshot.tasks[i]
            guard !t.nodeID.isEmpty, !deadAgents.contains(t.nodeID),
                let n = snapshot.nodes.first(where: { $0.id == t.nodeID }), n.state != .down
            else { continue }
            if t.desiredState == .running, t.status.state == .assigned {
                t.status =
                    failingImages.contains(t.spec.image)
                    ? TaskStatus(state: .failed, timestamp: now, message: "started", err: "task: non-zero exit (1)")
                    : TaskStatus(state: .running, timestamp: now, message: "started")
            } else if t.desiredState > .running, !t.status.state.isTerminal {
                t.status = TaskStatus(state: .shutdown, timestamp: now, message: "shutdown")
            }
            snapshot.tasks[i] = t
        }
    }

    // Queries.

    func service(_ id: String) -> ClusterService { snapshot.services.first { $0.id == id }! }
    func tasks(_ serviceID: String) -> [ClusterTask] { snapshot.tasks.filter { $0.serviceID == serviceID } }
    func running(_ serviceID: String) -> [ClusterTask] {
        tasks(serviceID).filter { $0.desiredState == .running && $0.status.state == .running }
    }
    func runningPerNode(_ serviceID: String) -> [String: Int] {
        var out: [String: Int] = [:]
        for t in running(serviceID) { out[t.nodeID, default: 0] += 1 }
        return out
    }
    mutating func setNode(_ id: String, _ change: (inout ClusterNode) -> Void) {
        let i = snapshot.nodes.firstIndex { $0.id == id }!
        change(&snapshot.nodes[i])
    }
    mutating func updateService(_ id: String, _ change: (inout ServiceSpec) -> Void) throws {
        var s = service(id)
        var spec = s.spec
        change(&spec)
        try s.update(to: spec, now: now)
        put(s)
    }
}
