import Foundation
import CMeshShim
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// One task's process: started with posix_spawn (not Foundation's Process, whose long-lived
/// children held up other launches here), its output appended to a log file, its exit
/// observed by a thread that does nothing else.
public final class TaskProcess: Sendable {
    public enum State: Sendable, Equatable {
        case running
        case exited(Int32)
        case signalled(Int32)
    }

    public let pid: pid_t
    public let logPath: String
    private let state = Mutex<State>(.running)
    private let waiters = Mutex<[CheckedContinuation<State, Never>]>([])

    public var current: State { state.withLock { $0 } }

    /// Starts `argv` (argv[0] looked up in PATH); stdin is /dev/null, stdout and stderr go to `logPath`.
    public init(argv: [String], environment: [String: String], logPath: String) throws(RuntimeError) {
        self.logPath = logPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of the daemon's: a task that outlives it must not hold its sockets (a
        // restarted daemon could not bind gossip's port while an orphan kept the listener).
        _ = meshd_spawn_closefrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, so stopping the task reaches everything it started.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cArgs + cEnv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, argv[0], &actions, &attributes, cArgs, cEnv)
        guard rc == 0 else { throw .spawn(command: argv.joined(separator: " "), errno: rc) }
        pid = child
        let thread = Thread { [self] in self.reap() }
        thread.name = "task-\(child)"
        thread.start()
    }

    private func reap() {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let low = status & 0x7f
        let end: State = low == 0 ? .exited((status >> 8) & 0xff) : .signalled(low)
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
    case namespace(String, String)
    case files(String)

    public var description: String {
        switch self {
        case .spawn(let c, let e): return "cannot start \(c): \(String(cString: strerror(e)))"
        case .image(let f): return f.description
        case .namespace(let n, let why): return "task namespace \(n): \(why)"
        case .files(let why): return why
        }
    }
}
