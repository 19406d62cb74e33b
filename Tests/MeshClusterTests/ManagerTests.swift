import Foundation
import MeshKernel
import Testing
import X509
@testable import MeshCluster

/// The manager end to end over a real store, with the agents played by `reportTaskStatus`.
@Suite struct ManagerTests {
    struct Fixture {
        var manager: ClusterManager
        let path: String
        var now = t0
        let ids: [String]

        init() throws {
            path = temporaryPath("cluster.sqlite")
            var g = SplitMix64(seed: 5)
            ids = (0..<3).map { _ in ObjectID.make(using: &g) }
            manager = try ClusterManager.initialize(
                store: try SQLiteClusterStore(path: path), nodeID: ids[0], hostname: "node1",
                advertiseAddr: "192.168.60.1", now: t0)
            for (i, id) in ids.enumerated().dropFirst() {
                let (_, csr) = try ClusterCA.makeRequest(nodeID: id)
                _ = try manager.join(
                    token: manager.settings.tokens.worker, nodeID: id, hostname: "node\(i + 1)",
                    addr: "192.168.60.\(i + 1)", csr: csr, now: t0)
            }
        }

        /// Reconcile, then every node starts what it was given and stops what it should.
        mutating func tick(_ seconds: Double = 1) throws {
            _ = try manager.reconcile(now: now)
            for id in ids {
                for t in try manager.assignments(nodeID: id) {
                    if t.desiredState == .running, t.status.state == .assigned {
                        try manager.reportTaskStatus(taskID: t.id, nodeID: id, status: TaskStatus(state: .running, timestamp: now))
                    } else if t.desiredState > .running, !t.status.state.isTerminal {
                        try manager.reportTaskStatus(taskID: t.id, nodeID: id, status: TaskStatus(state: .shutdown, timestamp: now))
                    }
                }
            }
            now = now.addingTimeInterval(seconds)
        }

        func running(_ serviceID: String) throws -> [ClusterTask] {
            try manager.store.tasks(serviceID: serviceID).filter { $0.desiredState == .running && $0.status.state == .running }
        }
    }

    @Test func servicesGetAddressesConvergeAndCleanUp() throws {
        var f = try Fixture()
        defer { removeTemporary(f.path) }
        #expect(try f.manager.store.list(ClusterNode.self).filter { $0.state == .ready }.count == 3)
        let demo = try f.manager.createNetwork(NetworkRequest(name: "demo"), now: t0)
        #expect(demo.subnet.description == "10.0.1.0/24" && demo.vni == 4097)
        #expect(throws: ClusterError.nameConflict(objectKind: "network", name: "demo")) {
            try f.manager.createNetwork(NetworkRequest(name: "demo"), now: t0)
        }
        var spec = ServiceSpec(
            name: "whoami", task: TaskSpec(image: "meshd/whoami", networks: [NetworkTarget(target: "demo")]),
            mode: .replicated(replicas: 2))
        spec.endpoint.ports = [PortConfig(targetPort: 8000, publishedPort: 8000)]
        let svc = try f.manager.createService(spec, now: t0)
        #expect(svc.spec.task.networks[0].target == demo.id, "names are stored as IDs")
        #expect(svc.endpoint.virtualIPs.map(\.networkID) == [f.manager.settings.ingressNetworkID, demo.id])
        for _ in 0..<3 { try f.tick() }
        var running = try f.running(svc.id)
        #expect(running.count == 2)
        for t in running {
            #expect(t.networks.count == 2)
            #expect(demo.subnet.contains(IPPrefix(t.networks[1].address)!.address))
        }
        // Scale to 5 with the version just read; the VIP does not change.
        let current = try f.manager.store.get(ClusterService.self, id: svc.id)!
        var scaled = current.spec
        scaled.mode = .replicated(replicas: 5)
        let after = try f.manager.updateService("whoami", version: current.version, spec: scaled, now: f.now)
        #expect(after.endpoint.virtualIPs == svc.endpoint.virtualIPs)
        #expect(throws: ClusterError.self) { try f.manager.updateService("whoami", version: current.version, spec: scaled, now: f.now) }
        for _ in 0..<3 { try f.tick() }
        running = try f.running(svc.id)
        #expect(running.count == 5 && Set(running.map(\.nodeID)).count == 3)
        let addresses = running.flatMap { $0.networks.map(\.address) }
        #expect(Set(addresses).count == addresses.count)

        #expect { try f.manager.removeNetwork("demo") } throws: {
            ($0 as? ClusterError)?.description == "network demo is in use by service whoami"
        }
        try f.manager.removeService("whoami")
        for _ in 0..<3 { try f.tick() }
        #expect(try f.manager.store.list(ClusterTask.self).isEmpty)
        try f.manager.removeNetwork("demo")
        #expect(f.manager.allocator.spaces[demo.id] == nil)
        // Only the gateway, and the nodes' ingress addresses, remain.
        let ingress = f.manager.allocator.spaces[f.manager.settings.ingressNetworkID]!
        #expect(ingress.owners.count == 4)
    }

    /// swarmkit lets `network rm` follow `service rm` at once: the removed service's tasks are being
    /// stopped and do not hold the network (meshd refused it until they had stopped and were reaped).
    @Test func networkRemovableRightAfterItsServiceIsRemoved() throws {
        var f = try Fixture()
        defer { removeTemporary(f.path) }
        let demo = try f.manager.createNetwork(NetworkRequest(name: "demo"), now: t0)
        let spec = ServiceSpec(
            name: "web", task: TaskSpec(image: "meshd/whoami", networks: [NetworkTarget(target: "demo")]),
            mode: .replicated(replicas: 2))
        let svc = try f.manager.createService(spec, now: t0)
        for _ in 0..<3 { try f.tick() }
        #expect(try f.running(svc.id).count == 2)
        #expect { try f.manager.removeNetwork("demo") } throws: {
            ($0 as? ClusterError)?.description == "network demo is in use by service web"
        }

        try f.manager.removeService("web", now: f.now)
        // No reconcile pass has run: the tasks still run, and are already told to stop.
        let stopping = try f.manager.store.tasks(serviceID: svc.id)
        #expect(stopping.count == 2 && stopping.allSatisfy { $0.desiredState == .shutdown && $0.status.state == .running })
        try f.manager.removeNetwork("demo")
        #expect(try f.manager.store.list(ClusterNetwork.self).map(\.name) == ["ingress"])
        #expect(f.manager.allocator.spaces[demo.id] == nil)

        // The tasks then stop and are reaped although their network went first.
        for _ in 0..<3 { try f.tick() }
        #expect(try f.manager.store.list(ClusterTask.self).isEmpty)
        // The subnet and VNI are free again.
        #expect(try f.manager.createNetwork(NetworkRequest(name: "again"), now: f.now).vni == demo.vni)
    }

    /// A task that is still meant to run holds its network even when its service no longer names it.
    @Test func onlyTasksStillMeantToRunHoldANetwork() throws {
        let network = "n1"
        func task(_ id: String, desired: TaskState, state: TaskState) -> ClusterTask {
            var t = ClusterTask(
                id: id, serviceID: "s", slot: 1, nodeID: "a", spec: TaskSpec(image: "x"), specVersion: 1,
                desiredState: desired, now: t0)
            t.status = TaskStatus(state: state, timestamp: t0)
            t.networks = [NetworkAttachment(networkID: network, address: "10.0.1.3/24")]
            return t
        }
        let cases: [(TaskState, TaskState, Bool)] = [
            (.running, .running, true), (.running, .assigned, true), (.ready, .new, true),
            (.shutdown, .running, false), (.remove, .running, false), (.running, .failed, false), (.shutdown, .shutdown, false),
        ]
        for (desired, state, holds) in cases {
            let snapshot = ClusterSnapshot(tasks: [task("t", desired: desired, state: state)])
            #expect(snapshot.users(ofNetwork: network).tasks == (holds ? ["t"] : []), "desired \(desired), state \(state)")
            #expect(snapshot.users(ofNetwork: "other").tasks.isEmpty)
        }
    }

    @Test func restartLosesNothing() throws {
        var f = try Fixture()
        defer { removeTemporary(f.path) }
        _ = try f.manager.createNetwork(NetworkRequest(name: "demo"), now: t0)
        _ = try f.manager.createService(
            ServiceSpec(
                name: "web", task: TaskSpec(image: "x", networks: [NetworkTarget(target: "demo")]),
                mode: .replicated(replicas: 3)), now: t0)
        for _ in 0..<3 { try f.tick() }
        // Read from the tables on both sides: a running store's snapshot lists objects in no particular order.
        let before = try f.manager.store.read { tx throws(ClusterError) in try tx.snapshot() }
        let reopened = try #require(try ClusterManager.open(store: try SQLiteClusterStore(path: f.path)))
        #expect(try reopened.store.read { tx throws(ClusterError) in try tx.snapshot() } == before)
        #expect(reopened.allocator == f.manager.allocator)
        #expect(reopened.settings == f.manager.settings)
        #expect(reopened.ca.digest == f.manager.ca.digest)
    }

    @Test func joinTokensNodesAndCertificates() throws {
        var f = try Fixture()
        defer { removeTemporary(f.path) }
        let (_, csr) = try ClusterCA.makeRequest(nodeID: "x")
        var g = SplitMix64(seed: 77)
        let newID = ObjectID.make(using: &g)
        let old = f.manager.settings.tokens.manager
        try f.manager.rotateJoinToken(.manager)
        #expect { try f.manager.join(token: old, nodeID: newID, hostname: "n4", addr: "192.168.60.4", csr: csr, now: t0) } throws: {
            ($0 as? ClusterError)?.description.hasPrefix("A valid join token is necessary") == true
        }
        // A store only this manager opens (SQLite) makes a swarm of one manager: the manager token is
        // refused by name, not answered with a manager that would not survive this one.
        #expect(throws: ClusterError.failedPrecondition(ClusterManager.oneManagerOnly)) {
            try f.manager.join(
                token: f.manager.settings.tokens.manager, nodeID: newID, hostname: "n4", addr: "192.168.60.4", csr: csr, now: t0)
        }
        let (node, cert) = try f.manager.join(
            token: f.manager.settings.tokens.worker, nodeID: newID, hostname: "n4",
            addr: "192.168.60.4", csr: csr, now: t0)
        #expect(node.role == .worker && node.managerAddr == nil)
        #expect(
            try f.manager.ca.verify(cert, now: t0) == NodeIdentity(nodeID: newID, role: .worker, clusterID: f.manager.settings.clusterID))
        // Reopened, the rotated token still holds.
        let reopened = try #require(try ClusterManager.open(store: f.manager.store))
        #expect(reopened.settings.tokens.manager == f.manager.settings.tokens.manager)

        // node update / rm rules.
        let worker = try f.manager.store.resolve(ClusterNode.self, "node2")
        let drained = try f.manager.updateNode(
            "node2", version: worker.version, role: .worker, availability: .drain, labels: ["a": "b"], now: t0)
        #expect(drained.availability == .drain && drained.labels == ["a": "b"])
        #expect(throws: ClusterError.self) {
            try f.manager.updateNode("node2", version: worker.version, role: .worker, availability: .active, labels: [:], now: t0)
        }
        #expect { try f.manager.removeNode("node2", force: false) } throws: {
            ($0 as? ClusterError)?.description.hasSuffix("is not down and can't be removed") == true
        }
        try f.manager.removeNode("node2", force: true)
        #expect(throws: ClusterError.self) { try f.manager.removeNode("node1", force: true) }
        // Promoting is refused as the manager token is; demoting the last manager is refused.
        let n4 = try f.manager.store.resolve(ClusterNode.self, "n4")
        #expect(throws: ClusterError.failedPrecondition(ClusterManager.oneManagerOnly)) {
            try f.manager.updateNode("n4", version: n4.version, role: .manager, availability: .active, labels: [:], now: t0)
        }
        let m1 = try f.manager.store.resolve(ClusterNode.self, "node1")
        #expect(throws: ClusterError.failedPrecondition("attempting to demote the last manager of the swarm")) {
            try f.manager.updateNode("node1", version: m1.version, role: .worker, availability: .active, labels: [:], now: t0)
        }
    }

    @Test func nodeFailureReschedulesThroughLiveness() throws {
        var f = try Fixture()
        defer { removeTemporary(f.path) }
        let svc = try f.manager.createService(ServiceSpec(name: "web", task: TaskSpec(image: "x"), mode: .replicated(replicas: 3)), now: t0)
        for _ in 0..<3 { try f.tick() }
        #expect(try f.running(svc.id).count == 3)
        let lastSeen = [f.ids[0]: f.now, f.ids[1]: f.now, f.ids[2]: f.now.addingTimeInterval(-60)]
        #expect(try f.manager.applyLiveness(lastSeen: lastSeen, since: t0, now: f.now))
        for _ in 0..<3 { try f.tick() }
        let running = try f.running(svc.id)
        #expect(running.count == 3 && !running.contains { $0.nodeID == f.ids[2] })
    }

    @Test func staleTaskReportsAreIgnored() throws {
        var f = try Fixture()
        defer { removeTemporary(f.path) }
        let svc = try f.manager.createService(ServiceSpec(name: "web", task: TaskSpec(image: "x")), now: t0)
        for _ in 0..<2 { try f.tick() }
        let t = try f.running(svc.id)[0]
        #expect(try !f.manager.reportTaskStatus(taskID: t.id, nodeID: t.nodeID, status: TaskStatus(state: .assigned, timestamp: f.now)))
        #expect(throws: ClusterError.self) {
            try f.manager.reportTaskStatus(taskID: t.id, nodeID: "someone-else", status: TaskStatus(state: .failed, timestamp: f.now))
        }
        #expect(try f.manager.store.get(ClusterTask.self, id: t.id)?.status.state == .running)
    }
}
