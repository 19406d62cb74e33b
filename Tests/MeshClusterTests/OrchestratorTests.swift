import Foundation
import Testing
@testable import MeshCluster

@Suite struct OrchestratorTests {
    let three = [node("n1", role: .manager), node("n2"), node("n3")]

    @Test func scaleTwoToTwentyAndBack() throws {
        var sim = Simulation(nodes: three, services: [service("web", replicas: 2)])
        sim.run { $0.running("web").count == 2 }
        try sim.updateService("web") { $0.mode = .replicated(replicas: 20) }
        sim.run { $0.running("web").count == 20 }
        #expect(Set(sim.running("web").map(\.slot)) == Set(1...20))
        #expect(sim.runningPerNode("web").values.sorted() == [6, 7, 7])
        #expect(sim.service("web").updateStatus == nil, "a scale is not an update")
        try sim.updateService("web") { $0.mode = .replicated(replicas: 5) }
        sim.run(steps: 3)
        #expect(Set(sim.running("web").map(\.slot)) == Set(1...5))
        #expect(sim.tasks("web").filter { $0.slot > 5 }.allSatisfy { $0.desiredState == .shutdown && $0.status.state == .shutdown })
        // Converged: a further pass changes nothing.
        #expect(Orchestrator().reconcile(sim.snapshot, now: sim.now).isEmpty)
    }

    @Test func drainMovesTasksAndPauseKeepsThem() throws {
        var sim = Simulation(nodes: three, services: [service("web", replicas: 6)])
        sim.run { $0.running("web").count == 6 }
        #expect(sim.runningPerNode("web") == ["n1": 2, "n2": 2, "n3": 2])
        sim.setNode("n3") { $0.availability = .pause }
        sim.run(steps: 2)
        #expect(sim.runningPerNode("web") == ["n1": 2, "n2": 2, "n3": 2])
        sim.setNode("n2") { $0.availability = .drain }
        sim.run { $0.running("web").count == 6 && $0.runningPerNode("web")["n2"] == nil }
        #expect(sim.runningPerNode("web") == ["n1": 4, "n3": 2], "paused n3 takes no new tasks")
        let drained = sim.tasks("web").filter { $0.nodeID == "n2" }
        #expect(drained.count == 2 && drained.allSatisfy { $0.desiredState == .shutdown && $0.status.state == .shutdown })
        #expect(Set(sim.running("web").map(\.slot)) == Set(1...6))
    }

    @Test func nodeDownReschedules() throws {
        var sim = Simulation(nodes: three, services: [service("web", replicas: 3)])
        sim.run { $0.running("web").count == 3 }
        sim.deadAgents = ["n3"]
        sim.setNode("n3") { $0.state = .down }
        sim.run { $0.running("web").filter { $0.nodeID != "n3" }.count == 3 }
        let lost = sim.tasks("web").filter { $0.nodeID == "n3" }
        #expect(lost.count == 1 && lost[0].desiredState == .shutdown && lost[0].status.message == "node is down")
        // The node comes back: nothing moves back and nothing is duplicated.
        sim.deadAgents = []
        sim.setNode("n3") { $0.state = .ready }
        sim.run(steps: 3)
        #expect(sim.tasks("web").filter(\.isActive).count == 3)
    }

    /// Parallelism 1, delay 10 s, stop-first: one slot at a time, batches at least 10 s apart, never more
    /// than one task missing, `updating` then `completed`.
    @Test func rollingUpdateWithDelay() throws {
        let update = UpdateConfig(parallelism: 1, delay: 10_000_000_000, failureAction: .pause, monitor: 2_000_000_000)
        var sim = Simulation(nodes: three, services: [service("web", replicas: 4, image: "v1", update: update)])
        sim.run { $0.running("web").count == 4 }
        try sim.updateService("web") { $0.task.image = "v2" }
        var starts: [Date] = []
        var sawUpdating = false
        sim.run(maxSteps: 120) { $0.service("web").updateStatus?.state == .completed }
        // Replay to check the invariants along the way.
        var replay = Simulation(nodes: three, services: [service("web", replicas: 4, image: "v1", update: update)])
        replay.run { $0.running("web").count == 4 }
        try replay.updateService("web") { $0.task.image = "v2" }
        for _ in 0..<120 {
            replay.step()
            #expect(replay.running("web").count >= 3)
            if replay.service("web").updateStatus?.state == .updating { sawUpdating = true }
            for t in replay.lastPlan.createdTasks where t.spec.image == "v2" { starts.append(t.createdAt) }
            if replay.service("web").updateStatus?.state == .completed { break }
        }
        #expect(sawUpdating)
        #expect(starts.count == 4)
        for (a, b) in zip(starts, starts.dropFirst()) { #expect(b.timeIntervalSince(a) >= 10) }
        #expect(sim.running("web").allSatisfy { $0.spec.image == "v2" } && sim.running("web").count == 4)
        #expect(sim.service("web").updateStatus?.message == "update completed")
        #expect(sim.service("web").rollout == nil)
    }

    @Test func startFirstNeverDropsBelowTheReplicaCount() throws {
        let update = UpdateConfig(parallelism: 2, delay: 0, monitor: 1_000_000_000, order: .startFirst)
        var sim = Simulation(nodes: three, services: [service("web", replicas: 4, image: "v1", update: update)])
        sim.run { $0.running("web").count == 4 }
        try sim.updateService("web") { $0.task.image = "v2" }
        var maxRunning = 0
        for _ in 0..<60 {
            sim.step()
            #expect(sim.running("web").count >= 4)
            maxRunning = max(maxRunning, sim.running("web").count)
            if sim.service("web").updateStatus?.state == .completed { break }
        }
        #expect(sim.service("web").updateStatus?.state == .completed)
        #expect(maxRunning == 6, "two extra tasks per batch of two")
        #expect(sim.running("web").count == 4 && sim.running("web").allSatisfy { $0.spec.image == "v2" })
    }

    @Test func failedUpdatePauses() throws {
        let update = UpdateConfig(parallelism: 1, delay: 0, failureAction: .pause, monitor: 5_000_000_000)
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
        sim.run(maxSteps: 30) { $0.service("web").updateStatus?.state == .paused }
        let status = sim.service("web").updateStatus!
        #expect(status.message.hasPrefix("update paused due to failure or early termination of task "))
        sim.run(steps: 10)
        // Only the first batch was tried; the other two slots still run v1.
        #expect(sim.tasks("web").filter { $0.spec.image == "bad" }.count == 1)
        #expect(sim.running("web").filter { $0.spec.image == "v1" }.count == 2)
    }

    @Test func failedUpdateRollsBack() throws {
        let update = UpdateConfig(parallelism: 1, delay: 0, failureAction: .rollback, monitor: 5_000_000_000)
        var sim = Simulation(nodes: three, services: [service("web", replicas: 3, image: "v1", update: update)])
        sim.failingImages = ["bad"]
        sim.run { $0.running("web").count == 3 }
        try sim.updateService("web") { $0.task.image = "bad" }
        sim.run(maxSteps: 30) { $0.service("web").updateStatus?.state == .rollbackStarted }
        #expect(sim.service("web").updateStatus!.message.hasPrefix("update rolled back due to failure or early termination of task "))
        #expect(sim.service("web").spec.task.image == "v1" && sim.service("web").previousSpec?.task.image == "bad")
        sim.run(maxSteps: 60) { $0.service("web").updateStatus?.state == .rollbackCompleted }
        #expect(sim.running("web").count == 3 && sim.running("web").allSatisfy { $0.spec.image == "v1" })
    }

    @Test func manualRollbackRestoresThePreviousSpec() throws {
        let update = UpdateConfig(parallelism: 0, delay: 0, monitor: 0)
        var sim = Simulation(nodes: three, services: [service("web", replicas: 3, image: "v1", update: update, rollback: update)])
        sim.run { $0.running("web").count == 3 }
        try sim.updateService("web") {
            $0.task.image = "v2"
            $0.task.env = ["A=1"]
        }
        sim.run { $0.service("web").updateStatus?.state == .completed }
        #expect(sim.running("web").allSatisfy { $0.spec.image == "v2" })
        var s = sim.service("web")
        try s.rollback(now: sim.now)
        sim.put(s)
        #expect(sim.service("web").updateStatus?.state == .rollbackStarted)
        sim.run { $0.service("web").updateStatus?.state == .rollbackCompleted }
        #expect(sim.running("web").count == 3 && sim.running("web").allSatisfy { $0.spec.image == "v1" && $0.spec.env.isEmpty })
        // Up-to-date tasks are exactly the running ones (what the CLI's `_up-to-date` filter shows).
        let current = sim.tasks("web").filter { $0.specVersion == sim.service("web").specVersion }
        #expect(current.count == 3)
    }

    @Test func globalModeFollowsNodes() throws {
        var sim = Simulation(nodes: three, services: [service("g", replicas: nil)])
        sim.run { $0.running("g").count == 3 }
        #expect(sim.running("g").allSatisfy { $0.slot == 0 })
        sim.snapshot.nodes.append(node("n4"))
        sim.run { $0.running("g").count == 4 }
        sim.setNode("n2") { $0.availability = .drain }
        sim.run { $0.running("g").count == 3 && $0.runningPerNode("g")["n2"] == nil }
        sim.setNode("n2") { $0.availability = .active }
        sim.run { $0.running("g").count == 4 }
        #expect(sim.runningPerNode("g").values.allSatisfy { $0 == 1 })

        var managers = Simulation(nodes: three, services: [service("m", replicas: nil, constraints: ["node.role==manager"])])
        managers.run { $0.running("m").count == 1 }
        managers.run(steps: 3)
        #expect(managers.running("m").map(\.nodeID) == ["n1"] && managers.tasks("m").count == 1)
    }

    @Test func globalRollingUpdate() throws {
        var sim = Simulation(
            nodes: three,
            services: [
                service(
                    "g", replicas: nil, image: "v1",
                    update: UpdateConfig(parallelism: 1, monitor: 0))
            ])
        sim.run { $0.running("g").count == 3 }
        try sim.updateService("g") { $0.task.image = "v2" }
        sim.run { $0.service("g").updateStatus?.state == .completed }
        #expect(sim.running("g").count == 3 && sim.running("g").allSatisfy { $0.spec.image == "v2" })
        #expect(Set(sim.running("g").map(\.nodeID)) == ["n1", "n2", "n3"])
    }

    @Test func restartPolicyDelayAndMaxAttempts() throws {
        var sim = Simulation(
            nodes: three,
            services: [
                service(
                    "web", replicas: 1, image: "bad",
                    restart: RestartPolicy(condition: .onFailure, delay: 5_000_000_000, maxAttempts: 3))
            ])
        sim.failingImages = ["bad"]
        sim.run(steps: 60)
        let tasks = sim.tasks("web").sorted { $0.createdAt < $1.createdAt }
        #expect(tasks.count == 4, "the first run and three restarts")
        #expect(tasks.map(\.attempt) == [0, 1, 2, 3])
        for (a, b) in zip(tasks, tasks.dropFirst()) { #expect(b.createdAt.timeIntervalSince(a.status.timestamp) >= 5) }
        #expect(tasks.allSatisfy { $0.status.state == .failed && $0.slot == 1 })
        #expect(tasks.last!.desiredState == .running, "the last one stays, not restarted")

        var none = Simulation(
            nodes: three, services: [service("once", replicas: 2, image: "bad", restart: RestartPolicy(condition: .none))])
        none.failingImages = ["bad"]
        none.run(steps: 20)
        #expect(none.tasks("once").count == 2)
    }

    @Test func completedTasksRestartOnlyWithConditionAny() throws {
        for (condition, expected) in [(RestartPolicy.Condition.any, 2), (.onFailure, 1)] {
            var sim = Simulation(
                nodes: three, services: [service("job", replicas: 1, restart: RestartPolicy(condition: condition, delay: 0))])
            sim.run { $0.running("job").count == 1 }
            var t = sim.running("job")[0]
            t.status = TaskStatus(state: .complete, timestamp: sim.now, message: "finished")
            sim.put(t)
            sim.run(steps: 3)
            #expect(sim.tasks("job").count == expected, "\(condition)")
        }
    }

    @Test func removedServiceTasksShutDown() {
        var sim = Simulation(nodes: three, services: [service("web", replicas: 2)])
        sim.run { $0.running("web").count == 2 }
        sim.snapshot.services.removeAll()
        sim.run(steps: 2)
        #expect(sim.tasks("web").allSatisfy { $0.desiredState == .shutdown && $0.status.state == .shutdown })
    }

    @Test func nextWakeCoversDelays() throws {
        var sim = Simulation(
            nodes: three,
            services: [
                service(
                    "web", replicas: 1, image: "bad",
                    restart: RestartPolicy(condition: .any, delay: 7_000_000_000))
            ])
        sim.failingImages = ["bad"]
        sim.run(steps: 2)
        let plan = Orchestrator().reconcile(sim.snapshot, now: sim.now)
        let failed = sim.tasks("web").first { $0.status.state == .failed }!
        #expect(plan.nextWake == failed.status.timestamp.addingTimeInterval(7))
    }

    /// The plan goes through the real store: versions advance and a stale plan is refused whole.
    @Test func plansApplyToTheStore() throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let store = try SQLiteClusterStore(path: path)
        for n in three { try store.create(n) }
        try store.create(service("web", replicas: 3))
        var rng = SplitMix64(seed: 9)
        let plan = Orchestrator().reconcile(try store.snapshot(), now: t0, ids: &rng)
        #expect(plan.createdTasks.count == 3)
        try store.apply(plan)
        let scheduled = Scheduler().schedule(try store.snapshot(), now: t0)
        #expect(scheduled.count == 3)
        try store.apply(scheduled: scheduled)
        #expect(Set(try store.list(ClusterTask.self).map(\.nodeID)) == ["n1", "n2", "n3"])
        // Re-applying the scheduler's (now stale) decisions fails and changes nothing.
        #expect(throws: ClusterError.self) { try store.apply(scheduled: scheduled) }
        #expect(Orchestrator().reconcile(try store.snapshot(), now: t0).isEmpty)
    }
}
