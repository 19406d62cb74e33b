import Foundation
import MeshKernel
import MeshTestbed
import Testing
@testable import MeshRuntime

@Suite struct HealthStateTests {
    static func probe(_ code: Int32) -> HealthProbe { HealthProbe(start: Date(), end: Date(), exitCode: code, output: "") }

    @Test func testsAndDefaultsAreDockersOwn() throws {
        #expect(HealthCheck(test: []) == nil, "an empty test is the image's, which a node does not read")
        #expect(HealthCheck(test: ["NONE"]) == nil)
        #expect(HealthCheck(test: ["CMD"]) == nil)
        #expect(HealthCheck(test: ["SHELL", "true"]) == nil)
        let shell = try #require(HealthCheck(test: ["CMD-SHELL", "curl -f localhost || exit 1"]))
        #expect(shell.argv == ["/bin/sh", "-c", "curl -f localhost || exit 1"])
        #expect(shell.interval == .seconds(30) && shell.timeout == .seconds(30) && shell.retries == 3)
        #expect(shell.startPeriod == .zero && shell.startInterval == .seconds(5))
        let exec = try #require(
            HealthCheck(test: ["CMD", "/bin/true", "-x"], intervalNanos: 1_000_000_000, timeoutNanos: 2_000_000, retries: 1))
        #expect(exec.argv == ["/bin/true", "-x"])
        #expect(exec.interval == .seconds(1) && exec.timeout == .milliseconds(2) && exec.retries == 1)
    }

    @Test func aPassMakesItHealthyAndRetriesFailuresInARowMakeItUnhealthy() {
        var s = HealthState()
        #expect(s.status == .starting && !s.isServing && !s.hasPassed)
        let changed1 = s.record(Self.probe(0), retries: 3, inStartPeriod: false)
        #expect(changed1)
        #expect(s.status == .healthy && s.isServing && s.hasPassed)
        let changed2 = s.record(Self.probe(1), retries: 3, inStartPeriod: false)
        #expect(!changed2)
        let changed3 = s.record(Self.probe(1), retries: 3, inStartPeriod: false)
        #expect(!changed3)
        #expect(s.status == .healthy && s.failingStreak == 2)
        // A pass in between starts the count again.
        s.record(Self.probe(0), retries: 3, inStartPeriod: false)
        #expect(s.failingStreak == 0)
        for _ in 0..<2 { s.record(Self.probe(2), retries: 3, inStartPeriod: false) }
        #expect(s.status == .healthy)
        let changed4 = s.record(Self.probe(-1), retries: 3, inStartPeriod: false)
        #expect(changed4)
        #expect(s.status == .unhealthy && !s.isServing && s.failingStreak == 3)
        let changed5 = s.record(Self.probe(0), retries: 3, inStartPeriod: false)
        #expect(changed5)
        #expect(s.status == .healthy)
    }

    @Test func failuresInTheStartPeriodDoNotCountUntilAPass() {
        var s = HealthState()
        for _ in 0..<10 { s.record(Self.probe(1), retries: 1, inStartPeriod: true) }
        #expect(s.status == .starting && s.failingStreak == 0)
        s.record(Self.probe(1), retries: 1, inStartPeriod: false)
        #expect(s.status == .unhealthy && !s.hasPassed)
        // Once it has passed, a failure counts even inside the start period (dockerd's rule).
        var t = HealthState()
        t.record(Self.probe(0), retries: 1, inStartPeriod: true)
        t.record(Self.probe(1), retries: 1, inStartPeriod: true)
        #expect(t.status == .unhealthy)
    }

    @Test func theLogKeepsTheLastFiveAndTheDelayFollowsThePeriod() throws {
        var s = HealthState()
        for code in Int32(1)...7 { s.record(Self.probe(code), retries: 100, inStartPeriod: false) }
        #expect(s.log.map(\.exitCode) == [3, 4, 5, 6, 7])
        let c = try #require(
            HealthCheck(
                test: ["CMD", "true"], intervalNanos: 10_000_000_000, startPeriodNanos: 60_000_000_000, startIntervalNanos: 1_000_000_000))
        let fresh = HealthState()
        #expect(fresh.nextDelay(c, sinceStart: .seconds(2)) == .seconds(1))
        #expect(fresh.nextDelay(c, sinceStart: .seconds(61)) == .seconds(10))
        var passed = HealthState()
        passed.record(Self.probe(0), retries: 3, inStartPeriod: true)
        #expect(passed.nextDelay(c, sinceStart: .seconds(2)) == .seconds(10))
    }
}

/// Probes of real host-process tasks in their namespaces (root).
@Suite(.serialized) struct HealthProbeTests {
    @Test func aProbeRunsInTheTaskWithItsEnvironmentAndIsEndedAtItsTimeout() async throws {
        let (rt, dir) = try TaskRuntimeTests.runtime()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Removed before the test returns, whatever happens: a task left behind keeps its namespace.
        var failure: (any Error)?
        do {
            _ = try await rt.start(TaskLaunch(id: "hp1abc", image: "busybox", args: ["sleep", "60"], env: ["MARK": "m1"]))
            // In the task's namespace (only lo there) and with its environment.
            let inside = try #require(
                HealthCheck(test: ["CMD-SHELL", "echo $HOSTNAME $MARK; ip -o link | cut -d: -f2; exit 3"]))
            let p = try #require(await rt.probe("hp1abc", inside))
            #expect(p.exitCode == 3)
            #expect(p.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) } == ["hp1abc m1", "lo"], "\(p.output)")
            let truth = try #require(HealthCheck(test: ["CMD", "true"]))
            let pass = try #require(await rt.probe("hp1abc", truth))
            #expect(pass.exitCode == 0)
            // A probe that outlives its timeout is killed and fails, as dockerd's does: its whole
            // process group, so a child holding the output pipe does not hold the probe up.
            let slow = try #require(HealthCheck(test: ["CMD-SHELL", "sleep 30 & sleep 30"], timeoutNanos: 300_000_000))
            let began = ContinuousClock.now
            let timedOut = try #require(await rt.probe("hp1abc", slow))
            #expect(ContinuousClock.now - began < .seconds(5))
            #expect(timedOut.exitCode == -1 && timedOut.output.contains("exceeded timeout"), "\(timedOut)")
            #expect(await rt.probe("nosuchtask", slow) == nil)
        } catch { failure = error }
        await rt.remove("hp1abc")
        #expect(!NetworkNamespace.exists(named: rt.namespaceName("hp1abc")))
        if let failure { throw failure }
    }
}
