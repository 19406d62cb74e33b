import Foundation
import Testing
@testable import MeshCluster

@Suite struct SchedulerTests {
    @Test func constraintParsing() throws {
        #expect(try PlacementConstraint.parse("node.role==manager") == PlacementConstraint(key: .role, equals: true, value: "manager"))
        #expect(
            try PlacementConstraint.parse(" node.labels.zone != east ")
                == PlacementConstraint(key: .label("zone"), equals: false, value: "east"))
        #expect(try PlacementConstraint.parse("node.hostname==n1").description == "node.hostname==n1")
        for bad in ["node.role=manager", "node.role==boss", "node.colour==red", "node.labels.==x", "node.id==", "a==b==c"] {
            #expect(throws: ClusterError.self, "\(bad)") { try PlacementConstraint.parse(bad) }
        }
        do {
            _ = try PlacementConstraint.parse("node.platform.os==linux")
        } catch {
            #expect(error.description.contains("node.platform.os") && error.description.contains("not supported"))
        }
    }

    @Test func constraintMatching() throws {
        let n = node("abc", "host1", role: .manager, labels: ["zone": "east"])
        func m(_ e: String) throws -> Bool { try PlacementConstraint.parse(e).matches(n) }
        #expect(try m("node.id==abc") && m("node.id==ABC") && !m("node.id!=abc"))
        #expect(try m("node.hostname==host1") && m("node.hostname!=host2"))
        #expect(try m("node.role==manager") && !m("node.role==worker") && m("node.role!=worker"))
        #expect(try m("node.labels.zone==east") && !m("node.labels.zone==East") && m("node.labels.zone!=west"))
        #expect(try !m("node.labels.rack==1") && m("node.labels.rack!=1"))
    }

    @Test func spreadsByServiceThenTotalThenID() {
        let nodes = [node("n3"), node("n1"), node("n2")]
        let s = service("web", replicas: 6)
        let other = service("db")
        var tasks: [ClusterTask] = []
        // n1 already runs two db tasks: web goes to n2 and n3 before n1.
        for i in 0..<2 {
            var t = ClusterTask(id: "db\(i)", serviceID: "db", slot: i + 1, nodeID: "n1", spec: other.spec.task, specVersion: 1, now: t0)
            t.status.state = .running
            tasks.append(t)
        }
        for i in 1...6 { tasks.append(ClusterTask(id: "w\(i)", serviceID: "web", slot: i, spec: s.spec.task, specVersion: 1, now: t0)) }
        let snap = ClusterSnapshot(nodes: nodes, services: [s, other], tasks: tasks)
        let placed = Scheduler().schedule(snap, now: t0)
        #expect(placed.map(\.nodeID) == ["n2", "n3", "n1", "n2", "n3", "n1"])
        #expect(placed.allSatisfy { $0.status.state == .assigned })
    }

    /// `--replicas-max-per-node` and `Placement.Platforms` are enforced, with swarmkit's explanations.
    @Test func maxReplicasPerNodeAndPlatforms() {
        var s = service("web", replicas: 5)
        s.spec.task.placement.maxReplicas = 2
        let tasks = (1...5).map { ClusterTask(id: "w\($0)", serviceID: "web", slot: $0, spec: s.spec.task, specVersion: 1, now: t0) }
        let placed = Scheduler().schedule(ClusterSnapshot(nodes: [node("n1"), node("n2")], services: [s], tasks: tasks), now: t0)
        #expect(placed.filter { $0.status.state == .assigned }.map(\.nodeID).sorted() == ["n1", "n1", "n2", "n2"])
        let pending = placed.filter { $0.status.state == .pending }
        #expect(pending.count == 1)
        #expect(pending.first?.status.err == "no suitable node (max replicas per node limit exceed)")

        var arm = node("n3")
        arm.description.architecture = "aarch64"
        var p = service("p", replicas: 2)
        p.spec.task.placement.platforms = [PlacementOptions.Platform(architecture: "arm64", os: "linux")]
        let ptasks = (1...2).map { ClusterTask(id: "p\($0)", serviceID: "p", slot: $0, spec: p.spec.task, specVersion: 1, now: t0) }
        let pplaced = Scheduler().schedule(ClusterSnapshot(nodes: [node("n1"), arm], services: [p], tasks: ptasks), now: t0)
        #expect(pplaced.map(\.nodeID) == ["n3", "n3"])
        p.spec.task.placement.platforms = [PlacementOptions.Platform(architecture: "s390x", os: "")]
        let none = Scheduler().schedule(ClusterSnapshot(nodes: [node("n1"), arm], services: [p], tasks: ptasks), now: t0)
        #expect(none.first?.status.err == "no suitable node (unsupported platform on 2 nodes)")
    }

    @Test func onlyReadyActiveNodesThatMatch() {
        let nodes = [
            node("n1", availability: .drain), node("n2", availability: .pause), node("n3", state: .down),
            node("n4", labels: ["disk": "ssd"]), node("n5"),
        ]
        let s = service("web", replicas: 3, constraints: ["node.labels.disk==ssd"])
        let tasks = (1...3).map { ClusterTask(id: "w\($0)", serviceID: "web", slot: $0, spec: s.spec.task, specVersion: 1, now: t0) }
        let placed = Scheduler().schedule(ClusterSnapshot(nodes: nodes, services: [s], tasks: tasks), now: t0)
        #expect(placed.map(\.nodeID) == ["n4", "n4", "n4"])
    }

    @Test func noSuitableNodeSaysWhy() {
        let nodes = [node("n1", availability: .drain), node("n2"), node("n3")]
        let s = service("web", replicas: 1, constraints: ["node.role==manager"])
        let t = ClusterTask(id: "w1", serviceID: "web", slot: 1, spec: s.spec.task, specVersion: 1, now: t0)
        let placed = Scheduler().schedule(ClusterSnapshot(nodes: nodes, services: [s], tasks: [t]), now: t0)
        #expect(placed.count == 1 && placed[0].status.state == .pending && placed[0].nodeID.isEmpty)
        #expect(
            placed[0].status.err == "no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 2 nodes)"
        )
        // Nothing changes on a second pass with the same answer.
        let again = Scheduler().schedule(ClusterSnapshot(nodes: nodes, services: [s], tasks: placed), now: t0.addingTimeInterval(5))
        #expect(again.isEmpty)
        let empty = Scheduler().schedule(ClusterSnapshot(nodes: [], services: [s], tasks: [t]), now: t0)
        #expect(empty[0].status.err == "no suitable node (no nodes in the cluster)")
    }

    @Test func hostModePortsDoNotShareANode() {
        let nodes = [node("n1"), node("n2")]
        var s = service("web", replicas: 3)
        s.spec.endpoint.ports = [PortConfig(targetPort: 80, publishedPort: 8080, publishMode: .host)]
        var other = service("other", replicas: 1)
        other.spec.endpoint.ports = [PortConfig(protocol: .udp, targetPort: 80, publishedPort: 8080, publishMode: .host)]
        let tasks =
            (1...3).map { ClusterTask(id: "w\($0)", serviceID: "web", slot: $0, spec: s.spec.task, specVersion: 1, now: t0) }
            + [ClusterTask(id: "x1", serviceID: "other", slot: 1, spec: other.spec.task, specVersion: 1, now: t0)]
        let placed = Scheduler().schedule(ClusterSnapshot(nodes: nodes, services: [s, other], tasks: tasks), now: t0)
        // Placed in service ID order: other's x1, then web's w1...w3.
        #expect(placed.map(\.id) == ["x1", "w1", "w2", "w3"])
        #expect(placed.map(\.status.state) == [.assigned, .assigned, .assigned, .pending])
        #expect(placed[3].status.err == "no suitable node (host-mode port already in use on 2 nodes)")
        #expect(Set(placed[1...2].map(\.nodeID)) == ["n1", "n2"], "one per node")
        #expect(placed[0].nodeID == "n1" && placed[2].nodeID == "n1", "udp 8080 does not clash with tcp 8080")
    }

    @Test func globalTasksAreCheckedOnTheirNode() {
        let nodes = [node("n1"), node("n2", availability: .pause)]
        let s = service("g", replicas: nil)
        let tasks = [
            ClusterTask(id: "g1", serviceID: "g", slot: 0, nodeID: "n1", spec: s.spec.task, specVersion: 1, now: t0),
            ClusterTask(id: "g2", serviceID: "g", slot: 0, nodeID: "n2", spec: s.spec.task, specVersion: 1, now: t0),
        ]
        let placed = Scheduler().schedule(ClusterSnapshot(nodes: nodes, services: [s], tasks: tasks), now: t0)
        #expect(placed.map(\.status.state) == [.assigned, .pending])
        #expect(placed.map(\.nodeID) == ["n1", "n2"])
    }
}
