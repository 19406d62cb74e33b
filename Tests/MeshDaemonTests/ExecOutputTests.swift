import Foundation
import MeshAPI
import Synchronization
import Testing

@testable import MeshDaemon

/// An exec's output between its reading thread and the client: bounded, in order, and never
/// holding the reader once the client is gone.
@Suite struct ExecOutputTests {
    final class Count: Sendable {
        private let n = Mutex(0)
        func add() { n.withLock { $0 += 1 } }
        var value: Int { n.withLock { $0 } }
    }

    static func chunk(_ i: Int) -> OutputChunk { OutputChunk(.stdout, [UInt8(i)]) }

    @Test func theReaderWaitsForASlowClientAndNothingIsLost() async throws {
        let out = ExecOutput(limit: 2)
        let put = Count()
        Thread {
            for i in 0..<5 {
                out.put(Self.chunk(i))
                put.add()
            }
            out.finish()
        }.start()
        try await Task.sleep(for: .milliseconds(200))
        #expect(put.value == 2, "the reader is held at the limit")
        var got: [OutputChunk] = []
        while let c = await out.next() { got.append(c) }
        #expect(got == (0..<5).map(Self.chunk))
        #expect(put.value == 5)
    }

    @Test func aClientThatLeftReleasesTheReader() async throws {
        let out = ExecOutput(limit: 1)
        let done = Count()
        Thread {
            for i in 0..<100 { out.put(Self.chunk(i)) }
            done.add()
        }.start()
        #expect(await out.next() == Self.chunk(0))
        try await Task.sleep(for: .milliseconds(100))
        #expect(done.value == 0)
        out.detach()
        for _ in 0..<100 where done.value == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(done.value == 1, "the reader ran to its end once the client left")
        #expect(await out.next() == nil)
    }
}
