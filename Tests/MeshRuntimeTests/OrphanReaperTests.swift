import Foundation
import Testing

@testable import MeshRuntime

#if canImport(Glibc)
    import Glibc
#endif

/// The subreaper's reaper: orphans go, children a thread waits for stay (this process is the
/// child subreaper, as `meshd daemon` is). Each reaper only looks at the process groups its test
/// made: the test process has other children (Foundation's Process) that are not for it.
@Suite(.serialized) struct OrphanReaperTests {
    /// Polls one reaper pass at a time until `pid` is reaped (or 5 s pass).
    static func reaped(_ reaper: OrphanReaper, _ wanted: (pid_t) -> Bool) async -> [pid_t] {
        let deadline = ContinuousClock.now + .seconds(5)
        var got: [pid_t] = []
        while ContinuousClock.now < deadline {
            got += reaper.reapOnce()
            if got.contains(where: wanted) { return got }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return got
    }

    @Test func orphansAreReapedAndRegisteredChildrenKeepTheirExitCode() async throws {
        try Subreaper.become()
        // `sleep` outlives its shell: reparented to us, it becomes a zombie nobody waits for.
        let maker = try Spawn.start(["sh", "-c", "sleep 0.2 & exit 0"])
        #expect(Spawn.wait(maker) == .exited(0))
        // A child of ours that ended, whose waiter has not come yet.
        let waited = try Spawn.start(["sh", "-c", "exit 7"])
        let groups: Set<pid_t> = [maker, waited]
        let reaper = OrphanReaper(eligible: { pid in OrphanReaper.processGroup(pid).map { groups.contains($0) } ?? false })
        let got = await Self.reaped(reaper) { OrphanReaper.processGroup($0) == nil && $0 != waited }
        #expect(got.count == 1 && !got.contains(waited), "reaped \(got)")
        #expect(OrphanReaper.isZombie(waited), "the registered child is still there for its waiter")
        #expect(Spawn.wait(waited) == .exited(7))
        #expect(!ChildRegistry.shared.isWaited(waited))
    }

    @Test func nothingIsReapedWhileTheRegistryIsHeld() async throws {
        try Subreaper.become()
        let maker = try Spawn.start(["sh", "-c", "sleep 0.1 & exit 0"])
        #expect(Spawn.wait(maker) == .exited(0))
        let reaper = OrphanReaper(eligible: { OrphanReaper.processGroup($0) == maker })
        ChildRegistry.shared.hold()
        var zombie: pid_t?
        for _ in 0..<250 where zombie == nil {
            zombie = OrphanReaper.children().first { OrphanReaper.processGroup($0) == maker && OrphanReaper.isZombie($0) }
            try await Task.sleep(for: .milliseconds(20))
        }
        let held = reaper.reapOnce()
        ChildRegistry.shared.release()
        let orphan = try #require(zombie, "the orphan became our zombie")
        #expect(held.isEmpty)
        #expect(reaper.reapOnce() == [orphan])
    }
}

/// In OCIDriverTests' suite: its labs share one node name per process, so they must not run
/// beside each other.
extension OCIDriverTests {
    /// The case the subreaper exists for: `runc run` dies, the container's init becomes our
    /// child, and its end leaves a zombie only the reaper collects.
    @Test func aContainerInitWhoseRuncDiedIsReaped() async throws {
        try Subreaper.become()
        try await OCILab.with(tasks: ["z1orphan"]) { lab in
            let r = try await lab.start(lab.launch("z1orphan", ["sh", "-c", "exec sleep 1000"]))
            let c = try #require(await lab.rt.containers?.container("z1orphan"))
            let initPID = c.initPID
            kill(r.process.pid, SIGKILL)
            _ = await r.process.wait()
            var parent: String?
            for _ in 0..<250 where parent != "\(getpid())" {
                parent = OrphanReaper.field(initPID, 1)
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(parent == "\(getpid())", "the init was reparented to this subreaper")
            let reaper = OrphanReaper(eligible: { $0 == initPID })
            #expect(reaper.reapOnce().isEmpty, "a running init is not reaped")
            try lab.runc.kill(c.name, signal: SIGKILL)
            let got = await OrphanReaperTests.reaped(reaper) { $0 == initPID }
            #expect(got == [initPID])
            #expect(OrphanReaper.field(initPID, 0) == nil, "no zombie left")
        }
    }
}
