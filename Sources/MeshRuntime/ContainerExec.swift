import CMeshShim
import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// A process to start in a running container (what `docker exec` asks for).
public struct ExecRequest: Sendable, Equatable {
    public var args: [String]
    /// `KEY=value`, added to the container's environment.
    public var env: [String]
    /// As the image's `User`; nil: the container's user.
    public var user: String?
    public var workdir: String?
    /// A pty of this size; nil: separate stdout and stderr pipes.
    public var tty: ExecTerminal?
    /// Without a TTY: a pipe to its stdin (else /dev/null). A TTY's input is the console.
    public var stdin: Bool
    public init(
        args: [String], env: [String] = [], user: String? = nil, workdir: String? = nil, tty: ExecTerminal? = nil, stdin: Bool = false
    ) {
        self.args = args
        self.env = env
        self.user = user
        self.workdir = workdir
        self.tty = tty
        self.stdin = stdin
    }
}

/// The daemon must be the child subreaper for TTY execs: `runc exec -d` (the only way runc
/// hands out a console) exits once the process started, leaving it to the nearest subreaper,
/// and only a parent can wait for its exit code. Set by the daemon's process at startup
/// (`meshd daemon`), never by a library on its own: it changes whom every orphan of the process
/// tree is reparented to. Tests may set it for their own process.
public enum Subreaper {
    public static func become() throws(RuntimeError) {
        guard meshd_set_child_subreaper(1) == 0 else { throw .exec("prctl(PR_SET_CHILD_SUBREAPER): \(String(cString: strerror(errno)))") }
    }
    public static var isSet: Bool { meshd_child_subreaper() == 1 }
}

/// One exec'd process. Owns its descriptors: read `stdout`/`stderr` (or `console`) to their end,
/// write `stdin`; `close()` releases what is left.
public final class ExecSession: Sendable {
    /// Without a TTY the `runc exec` that waits for the process (signals reach it through runc);
    /// with one, the process itself.
    public let pid: pid_t
    public let stdin: Int32?
    public let stdout: Int32?
    public let stderr: Int32?
    /// The pty master (TTY only): the process's input and output.
    public let console: Int32?
    private let state = Mutex<TaskProcess.State>(.running)
    private let waiters = Mutex<[CheckedContinuation<TaskProcess.State, Never>]>([])
    private let closed = Mutex<Set<Int32>>([])
    private let cleanup: @Sendable () -> Void
    /// Without a TTY: where runc writes the process's own pid (`--pid-file`), and that pid once read.
    private let pidFile: String?
    private let readPID = Mutex<pid_t?>(nil)

    init(
        pid: pid_t, stdin: Int32?, stdout: Int32?, stderr: Int32?, console: Int32?, pidFile: String? = nil,
        cleanup: @escaping @Sendable () -> Void = {}
    ) {
        self.pid = pid
        self.pidFile = pidFile
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.console = console
        self.cleanup = cleanup
        let thread = Thread { [self] in
            let end = Spawn.wait(self.pid)
            _ = self.processPID  // before the pid file goes with the cleanup
            self.cleanup()
            self.state.withLock { $0 = end }
            for w in self.waiters.withLock({ list in
                defer { list.removeAll() }
                return list
            }) { w.resume(returning: end) }
        }
        thread.name = "exec-\(pid)"
        thread.start()
    }

    public var current: TaskProcess.State { state.withLock { $0 } }

    /// The exec'd process as the host sees it (`docker exec`'s Pid); nil until runc wrote it.
    public var processPID: pid_t? {
        guard let pidFile else { return pid }
        return readPID.withLock { known in
            if let known { return known }
            guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let n = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), n > 0
            else { return nil }
            known = n
            return n
        }
    }

    /// The exit code as Docker reports it: a signal's number plus 128.
    public func wait() async -> Int32 {
        let end = await withCheckedContinuation { (c: CheckedContinuation<TaskProcess.State, Never>) in
            let done: TaskProcess.State? = state.withLock { s in
                if s != .running { return s }
                waiters.withLock { $0.append(c) }
                return nil
            }
            if let done { c.resume(returning: done) }
        }
        switch end {
        case .exited(let c): return c
        case .signalled(let s): return 128 + s
        case .running: return -1
        }
    }

    /// TIOCSWINSZ on the console: the program sees the new size (and gets SIGWINCH).
    public func resize(_ size: ExecTerminal) throws(RuntimeError) {
        guard let console else { throw .exec("resize: the exec has no TTY") }
        guard meshd_set_winsize(console, size.rows, size.columns) == 0 else {
            throw .exec("resize: TIOCSWINSZ: \(String(cString: strerror(errno)))")
        }
    }

    /// Closes one of our descriptors (stdin for EOF), once.
    public func close(_ fd: Int32?) {
        guard let fd, closed.withLock({ $0.insert(fd).inserted }) else { return }
        Glibc.close(fd)
    }

    public func close() { for fd in [stdin, stdout, stderr, console] { close(fd) } }

    deinit { close() }

    /// Writes all of `bytes` to stdin (or the console).
    public func write(_ bytes: [UInt8]) throws(RuntimeError) {
        guard let fd = stdin ?? console else { throw .exec("the exec has no stdin") }
        guard !closed.withLock({ $0.contains(fd) }) else { throw .exec("the exec's stdin is closed") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .exec("write: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    public struct Output: Sendable, Equatable {
        public var stdout: String
        public var stderr: String
        public var exitCode: Int32
    }

    /// Reads the output to its end (on a thread of its own: the reads block), then the exit code.
    /// A TTY's output is all `stdout`.
    public func collect() async -> Output {
        let fds = [stdout ?? console, stderr].compactMap { $0 }
        for fd in fds { _ = closed.withLock { $0.insert(fd) } }
        let bytes = await Self.offThread { () -> [[UInt8]] in
            var got: [[UInt8]] = [[], []]
            Spawn.drain(fds) { i, chunk in got[i] += chunk }
            return got
        }
        let code = await wait()
        return Output(
            stdout: String(decoding: bytes[0], as: UTF8.self), stderr: String(decoding: bytes[1], as: UTF8.self), exitCode: code)
    }

    /// Hands the output to `chunk` as it comes (0: stdout, or the console; 1: stderr) until every
    /// stream ended, or the process ended and its streams stayed quiet for half a second (a child
    /// it left still holds them). Blocking: run it on a thread of its own. Reads duplicates of the
    /// descriptors, so the session's own stay valid for writes until `close()`.
    public func pumpOutput(_ chunk: (Int, ArraySlice<UInt8>) -> Void) {
        let fds = [stdout ?? console, stderr].compactMap { $0 }.map { dup($0) }.filter { $0 >= 0 }
        var quietSince: ContinuousClock.Instant?
        Spawn.drain(
            fds, tick: 100,
            giveUp: {
                guard self.current != .running else { return false }
                let now = ContinuousClock.now
                if let q = quietSince { return now - q > .milliseconds(500) }
                quietSince = now
                return false
            }, chunk: chunk)
    }

    /// Blocking work on a thread of its own, so the cooperative pool is never held by it.
    static func offThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            let t = Thread { c.resume(returning: body()) }
            t.start()
        }
    }
}

extension ContainerTask {
    /// `runc exec` in this container. Without a TTY the foreground runc keeps stdout and stderr
    /// apart and exits with the process's code. With one, runc only hands out a console through
    /// `-d --console-socket`: it passes the pty master over a unix socket (SCM_RIGHTS) and exits
    /// once the process runs, so the caller must be a child subreaper to wait for it.
    public func exec(_ r: ExecRequest) async throws(RuntimeError) -> ExecSession {
        guard process.current == .running else { throw .exec("container \(name) is not running") }
        guard !r.args.isEmpty else { throw .exec("no command") }
        if r.tty != nil && !Subreaper.isSet { throw .subreaperNeeded }
        var user: RuntimeSpec.User?
        if let spec = r.user, !spec.isEmpty {
            let u = try UserDatabase(rootfs: rootfs).resolve(spec)
            user = .init(uid: u.uid, gid: u.gid, additionalGids: u.additionalGids.isEmpty ? nil : u.additionalGids)
        }
        let p = RuntimeSpecBuilder.execProcess(
            container: spec.process, args: r.args, env: r.env, user: user, workdir: r.workdir, tty: r.tty)
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let token = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let processFile = "\(bundle)/exec-\(token).json"
        do { try e.encode(p).write(to: URL(fileURLWithPath: processFile)) } catch {
            throw .files("exec in \(name): cannot write its process.json: \(error.localizedDescription)")
        }
        if let tty = r.tty {
            let runc = self.runc, name = self.name, bundle = self.bundle
            let result = await ExecSession.offThread { () -> Result<(pid_t, Int32), RuntimeError> in
                Result { () throws(RuntimeError) in
                    try TTYExec.start(runc: runc, container: name, process: processFile, bundle: bundle, token: token)
                }
            }
            try? FileManager.default.removeItem(atPath: processFile)
            let (pid, master) = try result.get()
            let session = ExecSession(pid: pid, stdin: nil, stdout: nil, stderr: nil, console: master)
            try? session.resize(tty)
            return session
        }
        return try Self.startPiped(runc: runc, container: name, process: processFile, stdin: r.stdin)
    }

    static func startPiped(runc: Runc, container: String, process file: String, stdin wantStdin: Bool) throws(RuntimeError) -> ExecSession {
        let pidFile = (file.hasSuffix(".json") ? String(file.dropLast(5)) : file) + ".pid"
        var opened: [Int32] = []
        func pipe() throws(RuntimeError) -> (read: Int32, write: Int32) {
            let p = try Spawn.pipe()
            opened += [p.read, p.write]
            return p
        }
        do {
            let out = try pipe(), err = try pipe()
            let input = wantStdin ? try pipe() : nil
            let pid = try Spawn.start(
                runc.argv(["exec", "--pid-file", pidFile, "--process", file, container]),
                environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"],
                stdin: input?.read, stdout: out.write, stderr: err.write)
            for fd in [out.write, err.write, input?.read].compactMap({ $0 }) { close(fd) }
            return ExecSession(
                pid: pid, stdin: input?.write, stdout: out.read, stderr: err.read, console: nil, pidFile: pidFile,
                cleanup: {
                    try? FileManager.default.removeItem(atPath: file)
                    try? FileManager.default.removeItem(atPath: pidFile)
                })
        } catch {
            for fd in opened { close(fd) }
            try? FileManager.default.removeItem(atPath: file)
            throw error
        }
    }
}

/// The console-socket handshake of a TTY exec, blocking (run off the cooperative pool).
enum TTYExec {
    static func start(runc: Runc, container: String, process file: String, bundle: String, token: String) throws(RuntimeError) -> (
        pid_t, Int32
    ) {
        // sun_path holds 108 bytes: a short directory of our own, not the bundle's path.
        var template = Array("/tmp/meshd-tty.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw .exec("mkdtemp: \(String(cString: strerror(errno)))") }
        let dir = String(cString: made)
        let socketPath = dir + "/console.sock"
        let pidFile = "\(bundle)/exec-\(token).pid"
        // The process becomes our child when runc exits, before its pid is read: no orphan is
        // reaped until it is registered (or this start failed).
        ChildRegistry.shared.hold()
        defer {
            ChildRegistry.shared.release()
            unlink(socketPath)
            rmdir(dir)
            unlink(pidFile)
        }
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw .exec("socket: \(String(cString: strerror(errno)))") }
        defer { close(listener) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in socketPath.utf8.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 1) == 0 else { throw .exec("console socket \(socketPath): \(String(cString: strerror(errno)))") }

        let err = try Spawn.pipe()
        let runcPID: pid_t
        do {
            runcPID = try Spawn.start(
                runc.argv(["exec", "--detach", "--console-socket", socketPath, "--pid-file", pidFile, "--process", file, container]),
                environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], stderr: err.write, newProcessGroup: false)
        } catch {
            close(err.read)
            close(err.write)
            throw error
        }
        close(err.write)
        var said: [UInt8] = []
        func runcFailed(_ state: TaskProcess.State) -> RuntimeError {
            Spawn.drain([err.read]) { _, chunk in said += chunk }
            return .runc(verb: "exec", status: "\(state)", output: String(decoding: said, as: UTF8.self))
        }

        // The master arrives on the socket; runc exits right after the process started.
        var master: Int32 = -1
        let deadline = ContinuousClock.now + .seconds(30)
        var ended: TaskProcess.State?
        while master < 0 {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 50) > 0 {
                let conn = accept(listener, nil, nil)
                if conn >= 0 {
                    master = meshd_recv_fd(conn)
                    let why = errno
                    close(conn)
                    if master < 0 {
                        Glibc.kill(runcPID, SIGKILL)
                        _ = Spawn.wait(runcPID)
                        close(err.read)
                        throw .exec("console socket: no pty master received: \(String(cString: strerror(why)))")
                    }
                }
                continue
            }
            // runc exited 0 and a further poll found no connection queued: it sent nothing.
            if let e = ended {
                close(err.read)
                throw .exec("runc exec ended (\(e)) without sending a console")
            }
            if let e = Spawn.tryWait(runcPID) {
                if e != .exited(0) { throw runcFailed(e) }
                ended = e
            }
            if ContinuousClock.now > deadline {
                Glibc.kill(runcPID, SIGKILL)
                throw runcFailed(Spawn.wait(runcPID))
            }
        }
        let state = ended ?? Spawn.wait(runcPID)
        guard state == .exited(0) else {
            close(master)
            throw runcFailed(state)
        }
        close(err.read)
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        else {
            close(master)
            throw .exec("runc exec wrote no pid file")
        }
        ChildRegistry.shared.adopt(pid)
        return (pid, master)
    }
}
