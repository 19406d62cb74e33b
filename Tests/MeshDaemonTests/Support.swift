import Foundation
import MeshAPI
import MeshCluster
import MeshDaemon
import Testing

/// A swarm in a temporary store: one manager (the controller's node) and `workers` joined workers, with
/// the directory removed when `body` returns or throws.
struct TestCluster {
    let controller: ClusterController
    let managerID: String
    let workerIDs: [String]
    let store: SQLiteClusterStore

    static func with<R>(workers: Int = 0, _ body: (TestCluster) async throws -> R) async throws -> R {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshdaemon-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteClusterStore(path: dir.appendingPathComponent("cluster.sqlite").path)
        let managerID = ObjectID.make()
        let manager = try ClusterManager.initialize(
            store: store, nodeID: managerID, hostname: "manager1",
            advertiseAddr: "192.168.50.1")
        let controller = ClusterController(manager: manager, selfNodeID: managerID)
        var workerIDs: [String] = []
        for i in 0..<workers {
            workerIDs.append(try await join(controller, hostname: "worker\(i + 1)", addr: "192.168.50.\(2 + i)"))
        }
        return try await body(TestCluster(controller: controller, managerID: managerID, workerIDs: workerIDs, store: store))
    }

    /// Joins a node the way the 2377 listener does, with a real CSR and the current token of `role`.
    static func join(_ controller: ClusterController, hostname: String, addr: String, role: NodeRole = .worker) async throws -> String {
        let id = ObjectID.make()
        let (_, csr) = try ClusterCA.makeRequest(nodeID: id)
        let token = try await controller.read { m throws(ClusterError) in m.settings.tokens.token(for: role) }
        return try await controller.withManager { m throws(ClusterError) in
            try m.join(token: token, nodeID: id, hostname: hostname, addr: addr, csr: csr).node.id
        }
    }

    func reconcile() async throws {
        _ = try await controller.withManager { m throws(ClusterError) in try m.reconcile() }
    }

    /// Plays the agents: every assigned task that should run reports running, every task told to stop
    /// reports shutdown.
    func playAgents() async throws {
        let tasks = try store.list(ClusterTask.self)
        let now = Date()
        for t in tasks where !t.nodeID.isEmpty {
            let next: TaskState?
            if t.desiredState == .running, t.status.state >= .assigned, t.status.state < .running {
                next = .running
            } else if t.desiredState > .running, !t.status.state.isTerminal, t.status.state >= .assigned {
                next = .shutdown
            } else {
                next = nil
            }
            guard let next else { continue }
            let status = TaskStatus(state: next, timestamp: now, message: next == .running ? "started" : "shutdown")
            _ = try await controller.withManager { m throws(ClusterError) in
                try m.reportTaskStatus(taskID: t.id, nodeID: t.nodeID, status: status)
            }
        }
    }

    /// Reconcile and agent rounds until nothing changes (bounded).
    func converge(rounds: Int = 8) async throws {
        for _ in 0..<rounds {
            try await reconcile()
            try await playAgents()
        }
    }
}

/// The `EngineError` a call threw, or nil if it returned.
func engineError(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> EngineError? {
    do {
        try await body()
        return nil
    } catch let e as EngineError {
        return e
    } catch {
        Issue.record("not an EngineError: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

func filter(_ values: [String: [String]]) -> FilterArgs { FilterArgs(values) }

/// A minimal service spec as the CLI sends it after normalisation.
func webSpec(
    _ name: String, image: String = "meshd/whoami", replicas: UInt64 = 1, networks: [String] = [],
    ports: [MeshAPI.PortConfig] = [], labels: [String: String]? = nil
) -> MeshAPI.ServiceSpec {
    var spec = MeshAPI.ServiceSpec(
        Name: name, Labels: labels,
        TaskTemplate: MeshAPI.TaskSpec(
            ContainerSpec: MeshAPI.ContainerSpec(Image: image),
            Networks: networks.isEmpty ? nil : networks.map { NetworkAttachmentConfig(Target: $0) }),
        Mode: .replicated(replicas),
        UpdateConfig: MeshAPI.UpdateConfig(
            Parallelism: 1, FailureAction: "pause", Monitor: 5_000_000_000, MaxFailureRatio: 0,
            Order: "stop-first"),
        EndpointSpec: MeshAPI.EndpointSpec(Mode: "vip", Ports: ports.isEmpty ? nil : ports))
    spec.TaskTemplate.ContainerSpec?.Args = ["--port", "80"]
    return spec
}

/// A JSON value's object members, for checking the keys the docker CLI reads.
func jsonObject<T: Encodable>(_ value: T) throws -> [String: Any] {
    let data = try EngineJSON.encoder().encode(value)
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

func object(_ any: Any?) -> [String: Any] { any as? [String: Any] ?? [:] }
func array(_ any: Any?) -> [Any] { any as? [Any] ?? [] }
