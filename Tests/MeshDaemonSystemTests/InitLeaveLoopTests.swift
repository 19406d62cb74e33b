import Foundation
import Synchronization
import MeshTestbed
import Testing

/// `swarm init` then `swarm leave --force`, over and over on one real daemon, while clients keep
/// opening connections to its 2377 port: the daemon used to die (SIGILL in NIO) when a connection
/// was accepted as leave closed the control server. `MESHD_INIT_LEAVE_CYCLES` sets the number of
/// cycles (500 on demand; CI runs fewer).
@Suite(.serialized) struct InitLeaveLoopTests {
    static var cycles: Int { ProcessInfo.processInfo.environment["MESHD_INIT_LEAVE_CYCLES"].flatMap(Int.init) ?? 60 }

    @Test func initAndLeaveUnderConnectionsNeverCrash() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mdl", nodes: 1)
        defer { c.destroy() }
        let address = c.address(1)
        let stop = StopFlag()
        let connected = Mutex(0)
        // Connection attempts from the underlay's client side, as joining nodes would make them. On
        // threads of their own: Exec.run waits for its child, and on Swift's cooperative pool (two
        // threads here) the knockers starved every other suite of this test process.
        let knockers = DispatchGroup()
        for _ in 0..<2 {
            DispatchQueue.global().async(group: knockers) {
                while !stop.isSet {
                    // A TCP connect that hangs up at once (bash's /dev/tcp): accepted, then dropped.
                    let connect = ["timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/\(address)/2377"]
                    if let out = try? Exec.run(["ip", "netns", "exec", c.lab.clientNamespace] + connect), out.succeeded {
                        connected.withLock { $0 += 1 }
                    }
                    usleep(20_000)
                }
            }
        }
        let began = ContinuousClock.now
        var done = 0
        for i in 0..<Self.cycles {
            let initOut = try c.docker(1, ["swarm", "init", "--advertise-addr", address])
            guard initOut.succeeded else {
                Issue.record("cycle \(i): swarm init failed: \(initOut.stderr)\n\(c.log(1).suffix(3000))")
                break
            }
            let leave = try c.docker(1, ["swarm", "leave", "--force"])
            guard leave.succeeded else {
                Issue.record("cycle \(i): swarm leave failed: \(leave.stderr)\n\(c.log(1).suffix(3000))")
                break
            }
            done += 1
        }
        stop.set()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in knockers.notify(queue: .global()) { done.resume() } }
        let connections = connected.withLock { $0 }
        print("init/leave: \(done) cycles in \(ContinuousClock.now - began), \(connections) connections accepted meanwhile")
        #expect(done == Self.cycles)
        #expect(connections > 0, "no connection reached 2377: the race was not exercised")
        #expect(c.pid(1).map { kill($0, 0) == 0 } == true, "the daemon died: \(c.log(1).suffix(3000))")
    }
}
