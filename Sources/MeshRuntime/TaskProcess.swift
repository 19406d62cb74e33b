import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// One task's process: started with posix_spawn (not Foundation's Process, whose long-lived
/// children held up other launches here), its output appended to a log file, its exit
/// observed by a thread that does nothing else (which also carries a container's output into
/// its json-file log).
public final class TaskProcess: Sendable {
    public enum State: Sendable, Equatable {
        case running
        case exited(Int32)
        case signalled(Int32)
    }

    public let pid: pid_t
    public let logPath: String
    private let state = Mutex<State>(.running)
    private let endTime = Mutex<Date?>(nil)
    private let waiters = Mutex<[CheckedContinuation<State, Never>]>([])

    public var current: State { state.withLock { $0 } }
    /// When it ended (nil while it runs): a container's `FinishedAt`.
    public var endedAt: Date? { endTime.withLock { $0 } }

    /// Where a task's output goes.
    public enum Output: Sendable, Equatable {
        /// stdout and stderr appended, interleaved as written, to one file (the process driver).
        case file(String)
        /// stdout and stderr through pipes, as json-file lines with their stream and time (containers).
        case jsonLines(String)
    }

    /// Starts `argv` (argv[0] looked up in PATH); stdin is /dev/null, stdout and stderr go to `logPath`.
    public convenience init(argv: [String], environment: [String: String], logPath: String) throws(RuntimeError) {
        try self.init(argv: argv, environment: environment, output: .file(logPath))
    }

    public init(argv: [String], environment: [String: String], output: Output) throws(RuntimeError) {
        switch output {
        case .file(let path):
            logPath = path
            pid = try Spawn.start(argv, environment: environment, stdoutFile: path)
            let thread = Thread { [self] in self.finish(Spawn.wait(self.pid)) }
            thread.name = "task-\(pid)"
            thread.start()
        case .jsonLines(let path):
            logPath = path
            let writer = try JSONLogWriter(path: path)
            let out = try Spawn.pipe()
            let err: (read: Int32, write: Int32)
            do { err = try Spawn.pipe() } catch {
                close(out.read)
                close(out.write)
                throw error
            }
            do { pid = try Spawn.start(argv, environment: environment, stdout: out.write, stderr: err.write) } catch {
                for fd in [out.read, out.write, err.read, err.write] { close(fd) }
                throw error
            }
            close(out.write)
            close(err.write)
            let thread = Thread { [self] in self.pump(out.read, err.read, into: writer) }
            thread.name = "task-\(pid)"
            thread.start()
        }
    }

    /// The task's output until both pipes close, then its exit. Whatever still holds a pipe half
    /// a second after the process ended (a child that escaped it) is not waited for.
    private func pump(_ out: Int32, _ err: Int32, into writer: JSONLogWriter) {
        var ended: (State, ContinuousClock.Instant)?
        Spawn.drain(
            [out, err], tick: 100,
            giveUp: {
                if ended == nil, let end = Spawn.tryWait(pid) { ended = (end, .now) }
                guard let (_, at) = ended else { return false }
                return ContinuousClock.now - at > .milliseconds(500)
            },
            chunk: { i, bytes in writer.append(i == 0 ? .stdout : .stderr, bytes) })
        writer.flush()
        finish(ended?.0 ?? Spawn.wait(pid))
    }

    private func finish(_ end: State) {
        endTime.withLock { $0 = Date() }
        state.withLock { $0 = end }
        for w in waiters.withLock({ list in
            defer { list.removeAll() }
            return list
        }) { w.resume(returning: end) }
    }

    /// Waits for the process to end.
    public func wait() async -> State {
        await withCheckedContinuation { (c: CheckedContinuation<State, Never>) in
            let done: State? = state.withLock { s in
                if s != .running { return s }
                waiters.withLock { $0.append(c) }
                return nil
            }
            if let done { c.resume(returning: done) }
        }
    }

    /// SIGTERM to the task's process group, SIGKILL after `grace`.
    public func stop(grace: Duration = .seconds(10)) async -> State {
        if current != .running { return current }
        kill(-pid, SIGTERM)
        // Polled, not raced against wait(): a continuation cannot be cancelled.
        let deadline = ContinuousClock.now + grace
        while current == .running && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if current != .running { return current }
        kill(-pid, SIGKILL)
        return await wait()
    }
}

public enum RuntimeError: Error, Sendable, CustomStringConvertible {
    case spawn(command: String, errno: Int32)
    case image(ImageCatalog.Failure)
    /// The image store could not supply the image (a bad reference, a pull that failed).
    case pull(image: String, reason: String)
    case namespace(String, String)
    case files(String)
    /// The image's `User` (or the service's) names nobody in the image.
    case user(spec: String, reason: String)
    /// Neither the service nor the image says what to run.
    case noCommand(image: String)
    /// A runc verb failed: its exit status and what it printed.
    case runc(verb: String, status: String, output: String)
    /// What the task's driver cannot do (exec into a host-process task).
    case unsupported(String)
    /// A TTY exec was asked of a process that is not a child subreaper: its exit could not be waited for.
    case subreaperNeeded
    case exec(String)

    public var description: String {
        switch self {
        case .spawn(let c, let e): return "cannot start \(c): \(String(cString: strerror(e)))"
        case .image(let f): return f.description
        case .pull(let image, let reason): return "image \(image): \(reason)"
        case .namespace(let n, let why): return "task namespace \(n): \(why)"
        case .files(let why): return why
        case .user(let spec, let why): return "user \"\(spec)\": \(why)"
        case .noCommand(let image): return "image \(image) has no Entrypoint or Cmd and the service gives no command"
        case .runc(let verb, let status, let output):
            return "runc \(verb) failed (\(status)): \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
        case .unsupported(let what): return what
        case .subreaperNeeded:
            return "a TTY exec needs the daemon to be a child subreaper (Subreaper.become() at startup): runc -d leaves the process to it"
        case .exec(let why): return "exec: \(why)"
        }
    }
}
