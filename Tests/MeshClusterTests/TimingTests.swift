import Foundation
import Testing
@testable import MeshCluster

/// Cost of the control loop's pure parts and of a manager pass over SQLite, printed as medians. The only
/// assertions are on results; the figures go into the report.
@Suite(.serialized) struct TimingTests {
    func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s[s.count / 2]
    }

    func ms(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    @Test func largeClusterPass() {
        let nodes = (0..<100).map { node(String(format: "n%03d", $0)) }
        let services = (0..<200).map { service(String(format: "s%03d", $0), replicas: 10) }
        var sim = Simulation(nodes: nodes, services: services)
        sim.run(steps: 2)
        #expect(sim.snapshot.tasks.filter { $0.status.state == .running }.count == 2000)
        var orchestrate: [Double] = [], schedule: [Double] = [], oneService: [Double] = []
        for _ in 0..<5 {
            orchestrate.append(ms { #expect(Orchestrator().reconcile(sim.snapshot, now: sim.now).isEmpty) })
            schedule.append(ms { #expect(Scheduler().schedule(sim.snapshot, now: sim.now).isEmpty) })
            oneService.append(ms { _ = Orchestrator().reconcile(sim.snapshot, now: sim.now, only: ["s007"]) })
        }
        print(
            "timing: 100 nodes, 2000 tasks: orchestrator pass \(median(orchestrate)) ms, one-service pass \(median(oneService)) ms, scheduler pass \(median(schedule)) ms (medians of 5)"
        )
    }

    @Test func managerScaleTwoToTwenty() throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        var g = SplitMix64(seed: 3)
        let ids = (0..<3).map { _ in ObjectID.make(using: &g) }
        var m = try ClusterManager.initialize(
            store: try SQLiteClusterStore(path: path), nodeID: ids[0], hostname: "node1",
            advertiseAddr: "192.168.70.1", now: t0)
        for (i, id) in ids.enumerated().dropFirst() {
            _ = try m.join(
                token: m.settings.tokens.worker, nodeID: id, hostname: "node\(i + 1)", addr: "192.168.70.\(i + 1)",
                csr: try ClusterCA.makeRequest(nodeID: id).csr, now: t0)
        }
        _ = try m.createNetwork(NetworkRequest(name: "demo"), now: t0)
        var spec = ServiceSpec(
            name: "web", task: TaskSpec(image: "x", networks: [NetworkTarget(target: "demo")]), mode: .replicated(replicas: 2))
        spec.endpoint.ports = [PortConfig(targetPort: 80, publishedPort: 8080)]
        _ = try m.createService(spec, now: t0)
        var samples: [Double] = []
        for round in 0..<5 {
            let s = try m.store.resolve(ClusterService.self, "web")
            var up = s.spec
            up.mode = .replicated(replicas: round % 2 == 0 ? 20 : 2)
            samples.append(
                try ms {
                    _ = try m.updateService("web", version: s.version, spec: up, now: t0)
                    _ = try m.reconcile(now: t0)
                })
            let active = try m.store.tasks(serviceID: s.id).filter { $0.isActive && $0.status.state == .assigned }
            if round % 2 == 0 { #expect(active.count >= 18) }
        }
        print(
            "timing: manager update+reconcile (scale 2<->20 over SQLite, 3 nodes): median \(median(samples)) ms, max \(samples.max()!) ms")
    }
}
