import Crypto
import Foundation
import MeshAPI
import MeshRuntime

/// The Engine API's container and exec endpoints over one node's `TaskRuntime`: the containers
/// of the tasks it runs (the OCI driver's), as dockerd shows its own. The daemon serves its
/// socket with it; tests serve a runtime of their own with the same code.
public actor NodeContainers {
    public let runtime: TaskRuntime
    /// Ended execs are forgotten this long after their end (dockerd's exec cleanup is 5 minutes).
    let execLifetime: Duration
    /// At most this many exec instances are kept; ended ones go first.
    let maxExecs: Int
    private var execs: [String: ExecRecord] = [:]
    /// A task's health, by task id (the node agent's, which runs the checks); nil: no check.
    public typealias HealthLookup = @Sendable (String) async -> HealthState?
    let health: HealthLookup

    public init(
        runtime: TaskRuntime, execLifetime: Duration = .seconds(300), maxExecs: Int = 256, health: @escaping HealthLookup = { _ in nil }
    ) {
        self.runtime = runtime
        self.health = health
        self.execLifetime = execLifetime
        self.maxExecs = maxExecs
    }

    /// dockerd's ids are 64 hex digits; a task's container has its name: the id is the name's
    /// SHA-256, stable across daemon restarts and the same on every node that asks.
    public static func id(_ name: String) -> String {
        SHA256.hash(data: Data(name.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    func all() async -> [ContainerTask] { await runtime.containers?.all() ?? [] }

    /// An id, a unique id prefix, or a name (with or without its `/`).
    func resolve(_ ref: String) async throws(EngineError) -> ContainerTask {
        let cs = await all()
        let name = ref.hasPrefix("/") ? String(ref.dropFirst()) : ref
        if let c = cs.first(where: { Self.id($0.name) == ref || $0.name == name }) { return c }
        let matches = ref.isEmpty ? [] : cs.filter { Self.id($0.name).hasPrefix(ref.lowercased()) }
        if matches.count > 1 { throw .invalidArgument("multiple containers found with provided prefix: \(ref)") }
        guard let c = matches.first else { throw .noSuchContainer(ref) }
        return c
    }

    // MARK: list and inspect

    public func list(_ o: ContainerListOptions) async -> [ContainerSummary] {
        let now = Date()
        var out: [ContainerSummary] = []
        for c in await all().filter({ o.all || $0.process.current == .running }).sorted(by: { $0.facts.created > $1.facts.created }) {
            let h = await health(c.taskID)
            let s = Self.summary(c, now: now, health: h)
            if o.filter.matches(s, health: h?.status.rawValue ?? "none") { out.append(s) }
        }
        if let limit = o.limit { out = Array(out.prefix(limit)) }
        return out
    }

    public func counts() async -> ContainerCounts {
        let cs = await all()
        let running = cs.filter { $0.process.current == .running }.count
        return ContainerCounts(running: running, stopped: cs.count - running)
    }

    static func summary(_ c: ContainerTask, now: Date, health: HealthState? = nil) -> ContainerSummary {
        let state = c.process.current
        let status: String
        switch state {
        case .running:
            // dockerd's "Up 2 minutes (healthy)", "(health: starting)".
            let suffix = health.map { $0.status == .starting ? " (health: starting)" : " (\($0.status.rawValue))" } ?? ""
            status = "Up " + humanDuration(now.timeIntervalSince(c.facts.created)) + suffix
        default:
            let ended = c.process.endedAt ?? now
            status = "Exited (\(exitCode(state))) \(humanDuration(now.timeIntervalSince(ended))) ago"
        }
        return ContainerSummary(
            Id: id(c.name), Names: ["/" + c.name], Image: c.facts.image, Command: c.spec.process.args.joined(separator: " "),
            Created: Int64(c.facts.created.timeIntervalSince1970), Labels: c.spec.annotations,
            State: state == .running ? "running" : "exited", Status: status, Mounts: mounts(c))
    }

    public func inspect(_ ref: String) async throws(EngineError) -> ContainerInspect {
        let c = try await resolve(ref)
        let state = c.process.current
        let running = state == .running
        let args = c.spec.process.args
        let cid = Self.id(c.name)
        let execIDs = execs.values.filter { $0.containerID == cid }.map(\.id).sorted()
        var st = ContainerInspect.State(
            Status: running ? "running" : "exited", Running: running, Pid: running ? c.initPID : 0,
            ExitCode: running ? 0 : Self.exitCode(state), StartedAt: EngineJSON.formatDate(c.facts.created),
            FinishedAt: c.process.endedAt.map(EngineJSON.formatDate) ?? "0001-01-01T00:00:00Z")
        if let h = await health(c.taskID) {
            st.Health = .init(
                Status: h.status.rawValue, FailingStreak: h.failingStreak,
                Log: h.log.map {
                    .init(
                        Start: EngineJSON.formatDate($0.start), End: EngineJSON.formatDate($0.end), ExitCode: $0.exitCode,
                        Output: $0.output)
                })
        }
        return ContainerInspect(
            Id: cid, Created: EngineJSON.formatDate(c.facts.created), Path: args.first ?? "", Args: Array(args.dropFirst()),
            State: st, Image: c.facts.image, Name: "/" + c.name,
            Config: .init(
                Hostname: c.spec.hostname, User: c.facts.user, Env: c.spec.process.env, Cmd: c.facts.cmd, Image: c.facts.image,
                WorkingDir: c.spec.process.cwd, Entrypoint: c.facts.entrypoint, Labels: c.spec.annotations, StopSignal: nil),
            HostConfig: .init(NetworkMode: "default", Runtime: "runc"),
            NetworkSettings: .init(SandboxKey: "/run/netns/\(c.facts.namespace)"), Mounts: Self.mounts(c),
            ExecIDs: execIDs.isEmpty ? nil : execIDs)
    }

    /// The service's mounts as the driver made them.
    static func mounts(_ c: ContainerTask) -> [MountPoint] {
        c.facts.mounts.map { m in
            MountPoint(
                Type: m.kind.rawValue, Name: m.name, Source: m.source, Destination: m.destination,
                Driver: m.kind == .volume ? "local" : "", RW: !m.readOnly)
        }
    }

    static func exitCode(_ s: TaskProcess.State) -> Int32 {
        switch s {
        case .running: 0
        case .exited(let c): c
        case .signalled(let n): 128 + n
        }
    }

    /// go-units' `HumanDuration`, which `docker ps` shows.
    static func humanDuration(_ t: TimeInterval) -> String {
        let seconds = Int(t)
        if seconds < 1 { return "Less than a second" }
        if seconds == 1 { return "1 second" }
        if seconds < 60 { return "\(seconds) seconds" }
        let minutes = Int(t / 60)
        if minutes == 1 { return "About a minute" }
        if minutes < 60 { return "\(minutes) minutes" }
        let hours = Int((t / 3600).rounded())
        if hours == 1 { return "About an hour" }
        if hours < 48 { return "\(hours) hours" }
        if hours < 24 * 7 * 2 { return "\(hours / 24) days" }
        if hours < 24 * 30 * 2 { return "\(hours / 24 / 7) weeks" }
        if hours < 24 * 365 * 2 { return "\(hours / 24 / 30) months" }
        return "\(Int(t / 3600 / 24 / 365)) years"
    }

    // MARK: logs, wait, kill

    public func logs(_ ref: String, options: LogOptions) async throws(EngineError) -> AsyncStream<OutputChunk> {
        let c = try await resolve(ref)
        let path = c.logPath
        let process = c.process
        let since = options.since.map { d -> String in
            let whole = floor(d.timeIntervalSince1970)
            return JSONLog.timestamp(timespec(tv_sec: Int(whole), tv_nsec: Int((d.timeIntervalSince1970 - whole) * 1e9)))
        }
        func chunks(_ entries: [LogEntry]) -> [OutputChunk] {
            entries.compactMap { e in
                if e.stream == .stdout ? !options.stdout : !options.stderr { return nil }
                // Both are RFC 3339 in UTC with nine digits: text order is time order.
                if let since, e.time <= since { return nil }
                let text = options.timestamps ? e.time + " " + e.log : e.log
                return OutputChunk(e.stream == .stdout ? .stdout : .stderr, Array(text.utf8))
            }
        }
        return AsyncStream { continuation in
            let pump = Task {
                var reader = JSONLogTail(path: path)
                var first = chunks(reader.next())
                if let tail = options.tail { first = Array(first.suffix(tail)) }
                for ch in first { continuation.yield(ch) }
                while options.follow && !Task.isCancelled {
                    let ended = process.current != .running
                    // After the end one last read: what the container wrote just before it.
                    for ch in chunks(reader.next()) { continuation.yield(ch) }
                    if ended { break }
                    try? await Task.sleep(for: .milliseconds(100))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
    }

    public func wait(_ ref: String) async throws(EngineError) -> AsyncStream<ContainerWaitResponse> {
        let process = try await resolve(ref).process
        return AsyncStream { continuation in
            let waiter = Task {
                let end = await process.wait()
                continuation.yield(ContainerWaitResponse(StatusCode: Int64(Self.exitCode(end))))
                continuation.finish()
            }
            continuation.onTermination = { _ in waiter.cancel() }
        }
    }

    public func kill(_ ref: String, signal: String?) async throws(EngineError) {
        let c = try await resolve(ref)
        guard let number = SignalName.parse(signal ?? "KILL") else { throw .invalidArgument("Invalid signal: \(signal ?? "")") }
        let notRunning = EngineError.conflict("Cannot kill container: \(ref): container \(Self.id(c.name)) is not running")
        guard c.process.current == .running else { throw notRunning }
        guard await c.signal(number) else { throw notRunning }
    }

    // MARK: exec

    struct ExecRecord {
        let id: String
        let containerID: String
        let taskID: String
        let request: ExecCreateRequest
        var session: ExecSession?
        var started = false
        var exitCode: Int32?
        var ended: ContinuousClock.Instant?
        var size: ExecTerminal?
        /// The process's host pid, kept after the session goes.
        var pid: Int32 = 0
        var tty: Bool { request.Tty ?? false }
    }

    public func createExec(_ ref: String, _ request: ExecCreateRequest) async throws(EngineError) -> String {
        let c = try await resolve(ref)
        guard c.process.current == .running else { throw .conflict("container \(Self.id(c.name)) is not running") }
        pruneExecs()
        guard execs.count < maxExecs else {
            throw .unavailable("this node keeps at most \(maxExecs) exec instances and all are running or waiting to start")
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        let id = bytes.map { String(format: "%02x", $0) }.joined()
        var record = ExecRecord(id: id, containerID: Self.id(c.name), taskID: c.taskID, request: request)
        if let s = request.ConsoleSize, s.count == 2 { record.size = ExecTerminal(rows: s[0], columns: s[1]) }
        execs[id] = record
        return id
    }

    /// Ended execs past their lifetime go; above the bound, the longest ended go first.
    func pruneExecs() {
        let now = ContinuousClock.now
        execs = execs.filter { _, e in e.ended.map { now - $0 < execLifetime } ?? true }
        let ended = execs.values.filter { $0.ended != nil }.sorted { $0.ended! < $1.ended! }
        for e in ended.prefix(max(0, execs.count - maxExecs + 1)) { execs[e.id] = nil }
    }

    func record(_ id: String) throws(EngineError) -> ExecRecord {
        guard let e = execs[id] else { throw .noSuchExec(id) }
        return e
    }

    public func startExec(_ id: String, _ start: ExecStartRequest) async throws(EngineError) -> ExecAttachment? {
        var e = try record(id)
        guard !e.started else { throw .conflict("Exec command \(id) is already running") }
        guard let c = await runtime.containers?.container(e.taskID), c.process.current == .running else {
            throw .conflict("container \(e.containerID) is not running")
        }
        let tty = start.Tty ?? e.tty
        if let s = start.ConsoleSize, s.count == 2 { e.size = ExecTerminal(rows: s[0], columns: s[1]) }
        let r = e.request
        let detach = start.Detach ?? false
        let request = ExecRequest(
            args: r.Cmd ?? [], env: r.Env ?? [], user: r.User.flatMap { $0.isEmpty ? nil : $0 },
            workdir: r.WorkingDir.flatMap { $0.isEmpty ? nil : $0 },
            tty: tty ? (e.size ?? ExecTerminal(rows: 24, columns: 80)) : nil, stdin: !tty && !detach && (r.AttachStdin ?? false))
        e.started = true
        execs[id] = e
        let session: ExecSession
        do { session = try await c.exec(request) } catch {
            execs[id]?.exitCode = 126
            execs[id]?.ended = .now
            throw Self.engineError(error)
        }
        execs[id]?.session = session
        let output = ExecOutput()
        let attached = !detach
        let wantOut = r.AttachStdout ?? true, wantErr = r.AttachStderr ?? true
        // The output is read to its end on a thread of its own: at the attached client's pace
        // (ExecOutput), and once nobody is attached (detached, or the client left) into nowhere,
        // so the process never blocks on a client that is not there.
        let reader = Thread {
            session.pumpOutput { index, bytes in
                guard attached else { return }
                let stream: OutputChunk.Stream = index == 0 ? .stdout : .stderr
                if stream == .stdout ? wantOut : wantErr { output.put(OutputChunk(stream, Array(bytes))) }
            }
            Task {
                let code = await session.wait()
                await self.ended(id, code: code, pid: session.processPID ?? 0)
                session.close()
                // After the exit code is recorded: the CLI asks for it once the stream closed.
                output.finish()
            }
        }
        reader.name = "exec-output"
        reader.start()
        guard attached else { return nil }
        let input = DispatchQueue(label: "exec-input")
        return ExecAttachment(
            tty: tty, output: output.stream,
            send: { bytes in
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    input.async {
                        try? session.write(bytes)
                        done.resume()
                    }
                }
            },
            closeInput: {
                // A pty has no half-close: its input ends with the process.
                guard !tty else { return }
                input.async { session.close(session.stdin) }
            }, detach: { output.detach() })
    }

    func ended(_ id: String, code: Int32, pid: Int32) {
        execs[id]?.exitCode = code
        execs[id]?.pid = pid
        execs[id]?.ended = .now
        execs[id]?.session = nil
    }

    public func resizeExec(_ id: String, rows: UInt16, columns: UInt16) throws(EngineError) {
        var e = try record(id)
        let size = ExecTerminal(rows: rows, columns: columns)
        e.size = size
        execs[id] = e
        guard let session = e.session else { return }
        guard session.console != nil else { throw .invalidArgument("exec \(id) has no TTY to resize") }
        do { try session.resize(size) } catch { throw .internalError("\(error)") }
    }

    public func inspectExec(_ id: String) throws(EngineError) -> ExecInspect {
        let e = try record(id)
        let cmd = e.request.Cmd ?? []
        let pid = e.session?.processPID ?? e.pid
        return ExecInspect(
            ID: e.id, Running: e.started && e.ended == nil, ExitCode: e.exitCode,
            ProcessConfig: .init(
                privileged: false, user: e.request.User ?? "", tty: e.tty, entrypoint: cmd.first ?? "",
                arguments: Array(cmd.dropFirst())),
            OpenStdin: e.request.AttachStdin ?? false, OpenStderr: e.request.AttachStderr ?? false,
            OpenStdout: e.request.AttachStdout ?? false, ContainerID: e.containerID, Pid: pid)
    }

    /// The runtime's reasons in dockerd's classes: what the request asked wrongly is a 400.
    static func engineError(_ e: RuntimeError) -> EngineError {
        switch e {
        case .user, .noCommand, .unsupported: .invalidArgument(e.description)
        default: .internalError(e.description)
        }
    }
}

/// Reads a json-file log as it grows: each call returns the complete lines written since the last.
struct JSONLogTail {
    let path: String
    private var offset: UInt64 = 0
    init(path: String) { self.path = path }

    mutating func next() -> [LogEntry] {
        guard let h = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? h.close() }
        guard (try? h.seek(toOffset: offset)) != nil, let data = try? h.readToEnd(), !data.isEmpty else { return [] }
        // Up to the last newline only: a line being written is read next time.
        guard let last = data.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
        let complete = data[data.startIndex...last]
        offset += UInt64(complete.count)
        let decoder = JSONDecoder()
        return complete.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(LogEntry.self, from: Data($0)) }
    }
}
