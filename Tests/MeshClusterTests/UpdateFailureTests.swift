import Foundation
import Testing
@testable import MeshCluster

/// Failure handling of rolling updates beyond pause and rollback: continue, the failure ratio, and the
/// monitor window.
@Suite struct UpdateFailureTests {
    let three = [node("n1", role: .manager), node("n2"), node("n3")]

    @Test func continueGoesThroughEverySlot() throws {
        let update = UpdateConfig(parallelism: 1, delay: 0, failureAction: .continue, monitor: 1_000_000_000)
        var sim = Simulation(
            nodes: three,
            services: [
                service(
                    "web", replicas: 3, image: "v1", update: update,
                    restart: RestartPolicy(condition: .none))
            ])
        sim.failingImages = ["bad"]
        sim.run { $0.running("web").count == 3 }
        try sim.updateService("web") { $0.task.image = "bad" }
        sim.run(maxSteps: 60) { $0.service("web").updateStatus?.state == .completed }
        #expect(sim.tasks("web").filter { $0.spec.image == "bad" && $0.desiredState == .running }.count == 3)
        #expect(sim.service("web").rollout == nil)
    }

    @Test func maxFailureRatioToleratesSomeFailures() throws {
        // 4 slots, ratio 0.5: the first two failures are tolerated, the third pauses.
        let update = UpdateConfig(parallelism: 1, delay: 0, failureAction: .pause, monitor: 1_000_000_000, maxFailureRatio: 0.5)
        var sim = Simulation(
            nodes: three,
            services: [
                service(
                    "web", replicas: 4, image: "v1", update: update,
                    restart: RestartPolicy(condition: .none))
            ])
        sim.failingImages = ["bad"]
        sim.run { $0.running("web").count == 4 }
        try sim.updateService("web") { $0.task.image = "bad" }
        sim.run(maxSteps: 60) { $0.service("web").updateStatus?.state == .paused }
        #expect(sim.tasks("web").filter { $0.spec.image == "bad" }.count == 3)
        #expect(sim.service("web").rollout?.failures == 3)
        #expect(sim.running("web").count == 1)
    }

    @Test func failureInsideTheMonitorWindowCountsAfterItDoesNot() throws {
        let update = UpdateConfig(parallelism: 1, delay: 0, failureAction: .pause, monitor: 30_000_000_000)
        func start() throws -> Simulation {
            var sim = Simulation(
                nodes: three,
                services: [
                    service(
                        "web", replicas: 2, image: "v1", update: update,
                        restart: RestartPolicy(condition: .none))
                ])
            sim.run { $0.running("web").count == 2 }
            try sim.updateService("web") { $0.task.image = "v2" }
            sim.run { $0.running("web").contains { $0.spec.image == "v2" } }
            return sim
        }
        // Crashes 5 s after it started: inside the window, the update pauses.
        var early = try start()
        early.run(steps: 5)
        var t = early.running("web").first { $0.spec.image == "v2" }!
        t.status = TaskStatus(state: .failed, timestamp: early.now, err: "exit 1")
        early.put(t)
        early.run(steps: 2)
        #expect(early.service("web").updateStatus?.state == .paused)

        // Runs past the window: the update goes on and completes; a later crash is not the update's.
        var late = try start()
        late.run(maxSteps: 100) { $0.service("web").updateStatus?.state == .completed }
        var u = late.running("web")[0]
        u.status = TaskStatus(state: .failed, timestamp: late.now, err: "exit 1")
        late.put(u)
        late.run(steps: 2)
        #expect(late.service("web").updateStatus?.state == .completed)
        #expect(late.service("web").updateStatus?.completedAt.map { $0.timeIntervalSince(t0) } ?? 0 >= 30)
    }
}
