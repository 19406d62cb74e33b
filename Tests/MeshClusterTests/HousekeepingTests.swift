import Foundation
import Testing
@testable import MeshCluster

@Suite struct HousekeepingTests {
    let three = [node("n1", role: .manager), node("n2"), node("n3")]

    @Test func reaperKeepsFiveTasksPerSlotAndReleasesEndedOnes() {
        var sim = Simulation(
            nodes: three,
            services: [
                service(
                    "web", replicas: 1, image: "bad",
                    restart: RestartPolicy(condition: .any, delay: 0))
            ])
        sim.failingImages = ["bad"]
        sim.run(steps: 12)
        // Give every task an address so release has something to do.
        for i in sim.snapshot.tasks.indices {
            sim.snapshot.tasks[i].networks = [NetworkAttachment(networkID: "n", address: "10.0.1.\(i + 2)/24")]
        }
        let tasks = sim.tasks("web")
        #expect(tasks.count > 6)
        let plan = TaskReaper().plan(sim.snapshot)
        let finished = tasks.filter { $0.desiredState == .shutdown }
        #expect(Set(plan.release) == Set(finished.map(\.id)))
        let newest = finished.sorted { $0.createdAt > $1.createdAt }.prefix(5).map(\.id)
        #expect(Set(plan.delete) == Set(finished.map(\.id)).subtracting(newest))
        #expect(!plan.delete.contains(tasks.first { $0.desiredState == .running }!.id))
    }

    @Test func reaperDeletesTasksOfRemovedServicesAndTasksOnDownNodes() {
        var sim = Simulation(nodes: three, services: [service("web", replicas: 3)])
        sim.run { $0.running("web").count == 3 }
        sim.deadAgents = ["n2"]
        sim.setNode("n2") { $0.state = .down }
        sim.run(steps: 2)
        let onDown = sim.tasks("web").first { $0.nodeID == "n2" }!
        #expect(onDown.status.state == .running && onDown.desiredState == .shutdown)
        #expect(TaskReaper.isFinished(onDown, nodes: Dictionary(uniqueKeysWithValues: sim.snapshot.nodes.map { ($0.id, $0) })))
        sim.snapshot.services.removeAll()
        sim.run(steps: 2)
        let plan = TaskReaper().plan(sim.snapshot)
        #expect(Set(plan.delete) == Set(sim.snapshot.tasks.map(\.id)))
    }

    @Test func livenessMarksSilentNodesDown() {
        let nodes = [node("a"), node("b"), node("c", state: .down), node("d", state: .unknown)]
        let seen = ["a": t0.addingTimeInterval(95), "b": t0.addingTimeInterval(80), "c": t0.addingTimeInterval(99)]
        let changed = NodeLiveness(gracePeriod: 15).evaluate(nodes: nodes, lastSeen: seen, since: t0, now: t0.addingTimeInterval(100))
        #expect(changed.map(\.id) == ["b", "c", "d"])
        #expect(changed.map(\.state) == [.down, .ready, .down])
        #expect(changed[0].stateMessage == "heartbeat failure")
        // Right after a manager restart, nodes not heard from yet keep their state during the grace period.
        #expect(NodeLiveness().evaluate(nodes: nodes, lastSeen: [:], since: t0, now: t0.addingTimeInterval(5)).isEmpty)
    }

    @Test func serviceStatusUpToDateAndNetworkUsers() throws {
        var sim = Simulation(nodes: three, services: [service("web", replicas: 3, update: UpdateConfig(parallelism: 1, monitor: 0))])
        sim.run { $0.running("web").count == 3 }
        #expect(sim.snapshot.status(ofService: "web") == ServiceStatus(runningTasks: 3, desiredTasks: 3, completedTasks: 0))
        try sim.updateService("web") {
            $0.task.image = "v2"
            $0.task.networks = [NetworkTarget(target: "demo")]
        }
        sim.step()
        sim.step()
        let upToDate = sim.tasks("web").filter { sim.snapshot.isUpToDate($0) }
        #expect(upToDate.count == 1 && upToDate[0].spec.image == "v2")
        #expect(sim.snapshot.users(ofNetwork: "demo").services == ["web"])
        #expect(sim.snapshot.users(ofNetwork: "other").services.isEmpty)
        #expect(sim.snapshot.status(ofService: "nope") == nil)
    }

    @Test func reconcilingOneServiceLeavesOthersAlone() {
        let sim = Simulation(nodes: three, services: [service("a", replicas: 2), service("b", replicas: 2)])
        let plan = Orchestrator().reconcile(sim.snapshot, now: t0, only: ["b"])
        #expect(plan.createdTasks.count == 2 && plan.createdTasks.allSatisfy { $0.serviceID == "b" })
    }
}
