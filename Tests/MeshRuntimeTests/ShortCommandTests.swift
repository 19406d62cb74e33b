import Foundation
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

    @Test func aLongChildDoesNotHoldUpOthers() async throws {
        let started = ContinuousClock.now
        let long = Task.detached { try ShortCommand.run(["/bin/sleep", "3"]) }
        try await Task.sleep(for: .milliseconds(100))
        var quick = 0
        while ContinuousClock.now - started < .seconds(2) {
            #expect(try ShortCommand.run(["/bin/true"]).status == 0)
            quick += 1
        }
        #expect(quick > 10, "only \(quick) short commands ended while a long one ran")
        #expect(try await long.value.status == 0)
    }
}
