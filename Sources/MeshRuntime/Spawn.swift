import CMeshShim
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// posix_spawn with the descriptors a task or a runc command needs, and the pipe reading around
/// it. Not Foundation's Process: its long-lived children held up other launches on Linux.
enum Spawn {
    /// Starts `argv` (argv[0] looked up in PATH) with `stdin`/`stdout`/`stderr` dup'ed from the
    /// given descriptors of ours (nil: /dev/null, or for stderr: the same as stdout). Nothing
    /// else of ours is inherited: a child that outlives the daemon must not hold its sockets.
    static func start(
        _ argv: [String], environment: [String: String]? = nil, stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil,
        stdoutFile: String? = nil, newProcessGroup: Bool = true
    ) throws(RuntimeError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if let stdoutFile {
            posix_spawn_file_actions_addopen(&actions, 1, stdoutFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else if let stdout {
            posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        if let stderr { posix_spawn_file_actions_adddup2(&actions, stderr, 2) } else { posix_spawn_file_actions_adddup2(&actions, 1, 2) }
        _ = meshd_spawn_closefrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // No signal blocked and every one at its default: a thread of ours may block or ignore
        // some, and a child inherits both across exec (a shell's trap on a blocked signal never runs).
        var flags = Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        if newProcessGroup {
            // Its own process group, so stopping the task reaches everything it started.
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        let env = environment ?? ProcessInfo.processInfo.environment
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cArgs + cEnv { free(p) } }
        var rc: Int32 = 0
        // Registered as it is made: the orphan reaper never sees a child of ours nobody waits for.
        let child = ChildRegistry.shared.spawning { () -> pid_t? in
            var child: pid_t = 0
            rc = posix_spawnp(&child, argv[0], &actions, &attributes, cArgs, cEnv)
            return rc == 0 ? child : nil
        }
        guard let child else { throw .spawn(command: argv.joined(separator: " "), errno: rc) }
        return child
    }

    /// A pipe whose ends are closed on exec (the child gets its end by dup2 only).
    static func pipe() throws(RuntimeError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard Glibc.pipe(&fds) == 0 else { throw .files("pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    /// Blocks until `pid` ends; its status as TaskProcess reports it.
    static func wait(_ pid: pid_t) -> TaskProcess.State {
        var status: Int32 = 0
        defer { ChildRegistry.shared.reaped(pid) }
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .exited(-1) }
        }
        return decode(status)
    }

    /// The status of `pid` if it has ended (reaped then), else nil.
    static func tryWait(_ pid: pid_t) -> TaskProcess.State? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        ChildRegistry.shared.reaped(pid)
        return decode(status)
    }

    static func decode(_ status: Int32) -> TaskProcess.State {
        let low = status & 0x7f
        return low == 0 ? .exited((status >> 8) & 0xff) : .signalled(low)
    }

    /// Reads every descriptor to its end, handing each chunk to `chunk(index, bytes)`; closes them.
    /// `giveUp` is asked on every quiet `tick`: true ends the reading early (a writer that
    /// outlived the process that mattered).
    static func drain(
        _ fds: [Int32], tick: Int32 = 200, giveUp: () -> Bool = { false }, chunk: (Int, ArraySlice<UInt8>) -> Void
    ) {
        var open = fds.map { Optional($0) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open.contains(where: { $0 != nil }) {
            var polls = open.compactMap { $0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&polls, nfds_t(polls.count), tick)
            if n < 0 && errno == EINTR { continue }
            if n == 0 {
                if giveUp() { break }
                continue
            }
            for p in polls where p.revents != 0 {
                guard let index = open.firstIndex(of: p.fd) else { continue }
                let got = buffer.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) }
                if got > 0 {
                    chunk(index, buffer[0..<got])
                } else if got == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(p.fd)
                    open[index] = nil
                }
            }
        }
        for fd in open.compactMap({ $0 }) { close(fd) }
    }

    struct Output: Sendable {
        var state: TaskProcess.State
        var stdout: String
        var stderr: String
    }

    /// Runs a short command to its end and returns what it printed (runc's own verbs); `input`, if
    /// given, is its stdin (written from another thread, so a child that prints before it reads
    /// all of it cannot stall on a full pipe).
    static func run(_ argv: [String], environment: [String: String]? = nil, input: [UInt8]? = nil) throws(RuntimeError) -> Output {
        var fds: [Int32] = []
        func pipeOrClose() throws(RuntimeError) -> (read: Int32, write: Int32) {
            do {
                let p = try pipe()
                fds += [p.read, p.write]
                return p
            } catch {
                for fd in fds { close(fd) }
                throw error
            }
        }
        func socketPairOrClose() throws(RuntimeError) -> (read: Int32, write: Int32) {
            var pair: [Int32] = [0, 0]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                let reason = String(cString: strerror(errno))
                for fd in fds { close(fd) }
                throw .files("socketpair: \(reason)")
            }
            fds += pair
            // The child only reads; our end only writes.
            _ = shutdown(pair[0], Int32(SHUT_WR))
            _ = shutdown(pair[1], Int32(SHUT_RD))
            return (pair[0], pair[1])
        }
        let out = try pipeOrClose()
        let err = try pipeOrClose()
        // stdin is a socket pair, not a pipe, so the writer can ask for EPIPE instead of SIGPIPE.
        let stdin = try input.map { _ throws(RuntimeError) in try socketPairOrClose() }
        let pid: pid_t
        do {
            pid = try start(
                argv, environment: environment, stdin: stdin?.read, stdout: out.write, stderr: err.write, newProcessGroup: false)
        } catch {
            for fd in fds { close(fd) }
            throw error
        }
        close(out.write)
        close(err.write)
        var writer: Thread?
        let written = DispatchSemaphore(value: 0)
        if let stdin, let input {
            close(stdin.read)
            let fd = stdin.write
            writer = Thread {
                input.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        // MSG_NOSIGNAL: a child that exits without reading all of it gives EPIPE, not SIGPIPE.
                        let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                        if n > 0 { offset += n } else if n < 0, errno == EINTR { continue } else { break }
                    }
                }
                close(fd)
                written.signal()
            }
            writer?.start()
        }
        var bytes: [[UInt8]] = [[], []]
        drain([out.read, err.read]) { i, chunk in bytes[i] += chunk }
        let state = wait(pid)
        if writer != nil { written.wait() }
        return Output(
            state: state, stdout: String(decoding: bytes[0], as: UTF8.self), stderr: String(decoding: bytes[1], as: UTF8.self))
    }
}
