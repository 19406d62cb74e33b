import Foundation
import Synchronization

/// A command left running in the background (`docker events`, a follower) whose output lines are
/// kept with the time each arrived, so a test can check not only what was printed but when.
/// Ended by its pid with `stop()`.
public final class LineStream: Sendable {
    public struct Line: Sendable {
        public let text: String
        public let at: ContinuousClock.Instant
    }

    private let process: Process
    private let state = Mutex<State>(State())

    private struct State {
        var lines: [Line] = []
        var partial = Data()
        var stderr = Data()
        var ended = false
    }

    /// Starts `argv`; stdout is read line by line on a thread of its own, stderr kept for messages.
    /// The reader threads hold the stream until the command's output closes: call `stop()`.
    public init(_ argv: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Exec.locate(argv[0]))
        p.arguments = Array(argv.dropFirst())
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        process = p
        let stdout = UnsafeTransfer(out.fileHandleForReading), stderr = UnsafeTransfer(err.fileHandleForReading)
        Thread {
            let data = stderr.value.readDataToEndOfFile()
            self.state.withLock { $0.stderr = data }
        }.start()
        Thread {
            while true {
                let chunk = stdout.value.availableData
                if chunk.isEmpty { break }
                self.append(chunk)
            }
            self.state.withLock { $0.ended = true }
        }.start()
    }

    private func append(_ chunk: Data) {
        let now = ContinuousClock.now
        state.withLock { s in
            s.partial.append(chunk)
            while let nl = s.partial.firstIndex(of: 0x0A) {
                let line = String(decoding: s.partial[s.partial.startIndex..<nl], as: UTF8.self)
                s.partial.removeSubrange(s.partial.startIndex...nl)
                s.lines.append(Line(text: line, at: now))
            }
        }
    }

    public var lines: [Line] { state.withLock { $0.lines } }
    /// stdout closed (the command ended or closed it).
    public var ended: Bool { state.withLock { $0.ended } }
    public var stderr: String { state.withLock { String(decoding: $0.stderr, as: UTF8.self) } }
    public var isRunning: Bool { process.isRunning }
    public var terminationStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// The first line after the first `after` lines that satisfies `match`, waiting up to `timeout`.
    public func waitForLine(after: Int = 0, within timeout: Duration, _ match: (String) -> Bool) async -> Line? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let l = lines.dropFirst(after).first(where: { match($0.text) }) { return l }
            if ContinuousClock.now >= deadline || ended { return lines.dropFirst(after).first(where: { match($0.text) }) }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits up to `timeout` for the command to end by itself.
    public func waitForExit(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return !process.isRunning
    }

    /// SIGTERM, then SIGKILL after two seconds; always reaped.
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if !DaemonCluster.reap(process, within: .seconds(2)) {
            kill(process.processIdentifier, SIGKILL)
            _ = DaemonCluster.reap(process, within: .seconds(5))
        }
    }

}
