import Foundation
import Synchronization
import MeshRuntime
import Testing

/// `ShortCommand`: what the testbed's Exec runs every tool through. A long child on one thread
/// must not hold up a short one on another (Foundation's Process did: the rolling-update client
/// loop got one round of curl in while `docker service update` ran).
@Suite struct ShortCommandTests {
    @Test func outputStatusAndStdin() throws {
        let echo = try ShortCommand.run(["/bin/sh", "-c", "cat; echo err >&2; exit 3"], stdin: Array("in\n".utf8))
        #expect(echo.status == 3 && !echo.signalled)
        #expect(echo.stdout == "in\n" && echo.stderr == "err\n")
        let killed = try ShortCommand.run(["/bin/sh", "-c", "kill -9 $$"])
        #expect(killed.signalled && killed.status == 9)
        // A child that reads little of a large input and exits: EPIPE for the writer, no SIGPIPE for us.
        let big = [UInt8](repeating: 65, count: 4 << 20)
        let head = try ShortCommand.run(["/usr/bin/head", "-c", "3"], stdin: big)
        #expect(head.status == 0 && head.stdout == "AAA")
        #expect(throws: RuntimeError.self) { try ShortCommand.run(["/nonexistent/tool"]) }
    }

    /// Counts short commands that end while the long one still runs. The long one runs on a thread
    /// of its own (not the test pool, which a busy host lane can hold up for seconds), and the count
    /// is by the long child's state, not by wall-clock windows: Foundation's Process got 0 or 1 here.
    @Test func aLongChildDoesNotHoldUpOthers() throws {
        // nil while the long child runs; then its status (-1 when it could not be run).
        let longEnded = Mutex<Int32?>(nil)
        let thread = Thread {
            let status = (try? ShortCommand.run(["/bin/sleep", "3"]))?.status ?? -1
            longEnded.withLock { $0 = status }
        }
        thread.start()
        var quick = 0
        while longEnded.withLock({ $0 == nil }) && quick < 20 {
            #expect(try ShortCommand.run(["/bin/true"]).status == 0)
            if longEnded.withLock({ $0 == nil }) { quick += 1 }
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect(quick >= 3, "only \(quick) short commands ended while a long one ran")
        while longEnded.withLock({ $0 == nil }) { Thread.sleep(forTimeInterval: 0.05) }
        #expect(longEnded.withLock { $0 } == 0)
    }
}
