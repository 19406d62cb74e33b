import Foundation
import MeshAPI

/// One exec, `echo`, for the hijack tests: each chunk of input comes back upper-cased on
/// stdout; stdin's end (the client's half-close) brings `bye` on stderr, then the end.
extension InMemoryEngine {
    func startExec(_ id: String, _ request: ExecStartRequest) async throws(EngineError) -> ExecAttachment? {
        guard id == "echo" else { throw .noSuchExec(id) }
        if request.Detach == true { return nil }
        let (output, continuation) = AsyncStream<OutputChunk>.makeStream()
        return ExecAttachment(
            tty: request.Tty ?? false, output: output,
            send: { bytes in continuation.yield(OutputChunk(.stdout, Array(String(decoding: bytes, as: UTF8.self).uppercased().utf8))) },
            closeInput: {
                // Later than the half-close itself: the output must still flow after it.
                try? await Task.sleep(for: .milliseconds(200))
                continuation.yield(OutputChunk(.stderr, Array("bye".utf8)))
                continuation.finish()
            })
    }
}
