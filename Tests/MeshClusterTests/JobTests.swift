import Foundation
import Testing
@testable import MeshCluster

/// Job services (`--mode replicated-job|global-job`): tasks run to completion, never more than
/// `MaxConcurrent` at once, until `TotalCompletions`; an update runs the job again.
@Suite struct JobTests {
    let three = [node("n1", role: .manager), node("n2"), node("n3")]

    static func job(_ id: String, _ mode: ServiceMode, image: String = "busybox", restart: RestartPolicy? = nil) -> ClusterService {
        var s = service(id, image: image, restart: restart)
        s.spec.mode = mode
        s = ClusterService(id: id, spec: s.spec, now: t0)
        return s
    }

    /// The running tasks of `id` end with exit 0, as their node would report.
    static func finishRunning(_ sim: inout Simulation, _ id: String, count: Int = .max) {
        for var t in sim.running(id).sorted(by: { $0.slot < $1.slot }).prefix(count) {
            t.status = TaskStatus(state: .complete, timestamp: sim.now, message: "finished")
            sim.put(t)
        }
    }

    @Test func aReplicatedJobRunsMaxConcurrentAtATimeUntilTotalCompletions() throws {
        var sim = Simulation(nodes: three, services: [Self.job("j", .replicatedJob(maxConcurrent: 2, totalCompletions: 5))])
        sim.run { $0.running("j").count == 2 }
        sim.run(steps: 3)
        #expect(sim.running("j").count == 2, "no more than MaxConcurrent at once")
        #expect(Set(sim.running("j").map(\.slot)) == [0, 1], "slots count from 0, as the CLI's job progress does")
        #expect(sim.tasks("j").allSatisfy { $0.jobIteration == 1 })
        var seen = 0
        while sim.tasks("j").filter({ $0.status.state == .complete }).count < 5 {
            Self.finishRunning(&sim, "j", count: 1)
            sim.run(steps: 2)
            seen += 1
            #expect(sim.running("j").count <= 2)
            try #require(seen < 20, "the job never completed")
        }
        sim.run(steps: 5)
        let done = sim.tasks("j")
        #expect(done.count == 5 && Set(done.map(\.slot)) == Set(0..<5), "five tasks, one per slot, none restarted")
        #expect(done.allSatisfy { $0.desiredState == .complete && $0.status.state == .complete })
        let status = try #require(sim.snapshot.status(ofService: "j"))
        #expect(status.completedTasks == 5 && status.desiredTasks == 0 && status.runningTasks == 0)
        #expect(Orchestrator().reconcile(sim.snapshot, now: sim.now).isEmpty, "a finished job stays finished")
    }

    @Test func failedJobTasksRestartOnFailureEvenUnderConditionAny() throws {
        var sim = Simulation(
            nodes: three,
            services: [
                Self.job(
                    "j", .replicatedJob(maxConcurrent: 1, totalCompletions: 1), image: "bad",
                    restart: RestartPolicy(delay: 0, maxAttempts: 2))
            ])
        sim.failingImages = ["bad"]
        sim.run(steps: 20)
        let tasks = sim.tasks("j").sorted { $0.attempt < $1.attempt }
        #expect(tasks.map(\.attempt) == [0, 1, 2] && tasks.allSatisfy { $0.slot == 0 && $0.status.state == .failed })
        // A completed task is never restarted, though the condition is `any`.
        var ok = Simulation(
            nodes: three, services: [Self.job("k", .replicatedJob(maxConcurrent: 1, totalCompletions: 1), restart: RestartPolicy(delay: 0))]
        )
        ok.run { $0.running("k").count == 1 }
        Self.finishRunning(&ok, "k")
        ok.run(steps: 5)
        #expect(ok.tasks("k").count == 1 && ok.tasks("k")[0].desiredState == .complete)
    }

    @Test func aGlobalJobRunsOnceOnEveryNodeAndOnNodesThatJoin() throws {
        var sim = Simulation(nodes: three, services: [Self.job("g", .globalJob)])
        sim.run { $0.running("g").count == 3 }
        Self.finishRunning(&sim, "g")
        sim.run(steps: 3)
        #expect(sim.tasks("g").count == 3 && sim.tasks("g").allSatisfy { $0.status.state == .complete })
        sim.snapshot.nodes.append(node("n4"))
        sim.run { $0.running("g").count == 1 }
        #expect(sim.running("g").map(\.nodeID) == ["n4"])
        Self.finishRunning(&sim, "g")
        sim.run(steps: 3)
        #expect(sim.tasks("g").count == 4 && Orchestrator().reconcile(sim.snapshot, now: sim.now).isEmpty)
    }

    @Test func anUpdateRunsTheJobAgainAndStopsTheOldIteration() throws {
        var sim = Simulation(nodes: three, services: [Self.job("j", .replicatedJob(maxConcurrent: 2, totalCompletions: 2))])
        sim.run { $0.running("j").count == 2 }
        Self.finishRunning(&sim, "j", count: 1)
        sim.run(steps: 2)
        try sim.updateService("j") { $0.mode = .replicatedJob(maxConcurrent: 3, totalCompletions: 3) }
        #expect(sim.service("j").specVersion == 2 && sim.service("j").rollout == nil)
        sim.run { $0.running("j").count == 3 }
        let old = sim.tasks("j").filter { $0.jobIteration == 1 }
        #expect(old.count == 2)
        #expect(old.filter { $0.status.state == .complete }.count == 1, "what completed stays complete")
        #expect(old.filter { $0.desiredState == .shutdown && $0.status.state == .shutdown }.count == 1, "the unfinished one stops")
        #expect(sim.running("j").allSatisfy { $0.jobIteration == 2 })
        #expect(throws: ClusterError.self) { try sim.updateService("j") { $0.mode = .replicated(replicas: 3) } }
    }
}
