import Foundation

/// Places tasks on nodes. Candidates are ready, active nodes that satisfy the service's constraints, its
/// platforms (`Placement.Platforms`) and its per-node replica limit (`Placement.MaxReplicas`); among
/// them the one with the fewest tasks of this service wins, then the one with the fewest tasks in total,
/// then the lowest node ID (so the result is deterministic).
public struct Scheduler: Sendable {
    /// Active tasks per node, and per (service, node), and the host-mode ports they hold on each node.
    public struct Load: Sendable, Equatable {
        public private(set) var total: [String: Int] = [:]
        public private(set) var perService: [String: [String: Int]] = [:]
        /// `port/proto` published in host mode, per node.
        public private(set) var hostPorts: [String: Set<String>] = [:]

        public init(tasks: [ClusterTask], services: [ClusterService] = []) {
            // Only services with host-mode ports matter here; none is copied.
            var ports: [String: Set<String>] = [:]
            for i in services.indices where services[i].endpoint.ports.contains(where: { $0.publishMode == .host }) {
                ports[services[i].id] = Scheduler.hostPorts(services[i])
            }
            for t in tasks where Self.counts(t) {
                add(serviceID: t.serviceID, nodeID: t.nodeID, hostPorts: ports[t.serviceID] ?? [])
            }
        }

        /// A task loads its node while it is meant to run and has not ended.
        static func counts(_ t: ClusterTask) -> Bool { !t.nodeID.isEmpty && t.isActive && !t.status.state.isTerminal }

        public mutating func add(serviceID: String, nodeID: String, hostPorts ports: Set<String> = []) {
            total[nodeID, default: 0] += 1
            perService[serviceID, default: [:]][nodeID, default: 0] += 1
            if !ports.isEmpty { hostPorts[nodeID, default: []].formUnion(ports) }
        }
        public func count(serviceID: String, nodeID: String) -> Int { perService[serviceID]?[nodeID] ?? 0 }
    }

    /// Place only tasks whose addresses were allocated (state `allocated` or later), as the manager does;
    /// false also places `new` tasks (for callers without an allocator).
    public var requireAllocation: Bool

    public init(requireAllocation: Bool = false) { self.requireAllocation = requireAllocation }

    /// Host-mode ports with a fixed published port: two tasks publishing one of them cannot share a node.
    static func hostPorts(_ service: ClusterService) -> Set<String> {
        Set(
            service.spec.endpoint.ports.filter { $0.publishMode == .host && $0.publishedPort != 0 }
                .map { "\($0.publishedPort)/\($0.protocol.rawValue)" })
    }

    /// The node for one new task of `service`, or why there is none (Docker's `no suitable node (...)`).
    public func pickNode(for service: ClusterService, nodes: [ClusterNode], load: Load) -> Result<String, NoSuitableNode> {
        let constraints: [PlacementConstraint]
        do { constraints = try PlacementConstraint.parseAll(service.spec.task.constraints) } catch {
            return .failure(NoSuitableNode(reason: error.description))
        }
        var unavailable = 0
        var unsatisfied = 0
        var portsTaken = 0
        var wrongPlatform = 0
        var atMaxReplicas = 0
        let placement = service.spec.task.placement
        let ports = Self.hostPorts(service)
        var best: (Int, Int, String)?
        for node in nodes {
            guard node.acceptsNewTasks else {
                unavailable += 1
                continue
            }
            guard constraints.allSatisfy({ $0.matches(node) }) else {
                unsatisfied += 1
                continue
            }
            guard Self.supports(node, placement.platforms) else {
                wrongPlatform += 1
                continue
            }
            let here = load.count(serviceID: service.id, nodeID: node.id)
            guard placement.maxReplicas == 0 || UInt64(here) < placement.maxReplicas else {
                atMaxReplicas += 1
                continue
            }
            guard ports.isDisjoint(with: load.hostPorts[node.id] ?? []) else {
                portsTaken += 1
                continue
            }
            let key = (here, load.total[node.id] ?? 0, node.id)
            if best == nil || key < best! { best = key }
        }
        if let best { return .success(best.2) }
        return .failure(
            NoSuitableNode(
                nodes: nodes.count, unavailable: unavailable, unsatisfied: unsatisfied,
                hostPortsTaken: portsTaken, wrongPlatform: wrongPlatform, atMaxReplicas: atMaxReplicas))
    }

    /// swarmkit's PlatformFilter: no platforms means any node; else one must match, an empty member
    /// matching anything, with `x86_64`/`amd64` and `aarch64`/`arm64` the same architecture.
    static func supports(_ node: ClusterNode, _ platforms: [PlacementOptions.Platform]) -> Bool {
        guard !platforms.isEmpty else { return true }
        func arch(_ a: String) -> String {
            switch a {
            case "x86_64": "amd64"
            case "aarch64": "arm64"
            default: a
            }
        }
        return platforms.contains {
            ($0.architecture.isEmpty || arch($0.architecture) == arch(node.description.architecture))
                && ($0.os.isEmpty || $0.os == node.description.os)
        }
    }

    /// Assigns every unscheduled task of the snapshot that is meant to run: replicated tasks get a node,
    /// global tasks (which come with one) are checked against it. Returns the tasks that changed: `assigned`
    /// with a node, or `pending` with the reason in `status.err` (shown by `service ps`).
    public func schedule(_ snapshot: ClusterSnapshot, now: Date) -> [ClusterTask] {
        let waiting = snapshot.tasks
            .filter {
                $0.desiredState <= .running && $0.status.state < .assigned
                    && (!requireAllocation || $0.status.state >= .allocated)
            }
            .sorted { ($0.serviceID, $0.slot, $0.nodeID, $0.id) < ($1.serviceID, $1.slot, $1.nodeID, $1.id) }
        // Most passes place nothing: they must not pay for the load and the lookups.
        guard !waiting.isEmpty else { return [] }
        let services = snapshot.serviceIndex()
        let nodes = snapshot.nodes.sorted { $0.id < $1.id }
        let nodesByID = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var load = Load(tasks: snapshot.tasks, services: snapshot.services)
        var changed: [ClusterTask] = []
        for var task in waiting {
            guard let at = services[task.serviceID] else { continue }
            let service = snapshot.services[at]
            let outcome: Result<String, NoSuitableNode>
            if task.nodeID.isEmpty {
                outcome = pickNode(for: service, nodes: nodes, load: load)
            } else if let node = nodesByID[task.nodeID] {
                outcome = pickNode(for: service, nodes: [node], load: load)
            } else {
                outcome = .failure(NoSuitableNode(reason: "node \(task.nodeID) is not in the cluster"))
            }
            let before = task
            switch outcome {
            case .success(let nodeID):
                task.nodeID = nodeID
                task.status = TaskStatus(state: .assigned, timestamp: now, message: "scheduler assigned task to node")
                load.add(serviceID: task.serviceID, nodeID: nodeID, hostPorts: Self.hostPorts(service))
            case .failure(let why):
                if task.status.state != .pending || task.status.err != why.description {
                    task.status = TaskStatus(state: .pending, timestamp: now, message: "pending task scheduling", err: why.description)
                }
            }
            if task != before {
                task.updatedAt = now
                changed.append(task)
            }
        }
        return changed
    }
}

/// Why a task could not be placed, worded like swarmkit's
/// `no suitable node (scheduling constraints not satisfied on 3 nodes)`.
public struct NoSuitableNode: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(reason: String) { description = "no suitable node (\(reason))" }

    public init(nodes: Int, unavailable: Int, unsatisfied: Int, hostPortsTaken: Int = 0, wrongPlatform: Int = 0, atMaxReplicas: Int = 0) {
        func n(_ k: Int) -> String { k == 1 ? "1 node" : "\(k) nodes" }
        var parts: [String] = []
        if nodes == 0 { parts.append("no nodes in the cluster") }
        if atMaxReplicas > 0 { parts.append("max replicas per node limit exceed") }
        if wrongPlatform > 0 { parts.append("unsupported platform on \(n(wrongPlatform))") }
        if unavailable > 0 { parts.append("\(n(unavailable)) not available for new tasks") }
        if unsatisfied > 0 { parts.append("scheduling constraints not satisfied on \(n(unsatisfied))") }
        if hostPortsTaken > 0 { parts.append("host-mode port already in use on \(n(hostPortsTaken))") }
        description = "no suitable node (\(parts.joined(separator: "; ")))"
    }
}
