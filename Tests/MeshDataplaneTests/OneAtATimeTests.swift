import Synchronization
import Testing
@testable import MeshDataplane

@Suite struct OneAtATimeTests {
    /// Callers that suspend inside their turn never overlap, and all of them get a turn.
    @Test func turnsNeverOverlap() async {
        let gate = OneAtATime()
        let log = Log()
        await withTaskGroup(of: Void.self) { g in
            for i in 0..<8 {
                g.addTask {
                    await gate.enter()
                    log.lines.withLock { $0.append("in \(i)") }
                    try? await Task.sleep(for: .milliseconds(5))
                    log.lines.withLock { $0.append("out \(i)") }
                    gate.leave()
                }
            }
        }
        let entries = log.lines.withLock { $0 }
        #expect(entries.count == 16)
        for k in stride(from: 0, to: entries.count, by: 2) {
            #expect(entries[k].hasPrefix("in ") && entries[k + 1] == "out " + entries[k].dropFirst(3))
        }
    }
}

final class Log: Sendable { let lines = Mutex<[String]>([]) }
