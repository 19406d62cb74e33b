import Foundation
import MeshKernel

/// What the agent asks the runtime to run.
public struct TaskLaunch: Sendable, Equatable {
    public var id: String
    public var image: String
    public var args: [String]
    public var env: [String: String]
    /// The task's /etc/resolv.conf and /etc/hosts (private to it).
    public var resolvConf: String
    public var hosts: String
    /// What a container driver needs beyond the command line (service, slot, command and args
    /// apart, user, limits, labels); the process driver ignores it.
    public var container: ContainerOptions
    /// Secrets and configs as files in the container (refused by the process driver).
    public var files: [TaskFile] = []
    public init(
        id: String, image: String, args: [String] = [], env: [String: String] = [:],
        resolvConf: String = "nameserver 127.0.0.11\noptions ndots:0\n", hosts: String? = nil, container: ContainerOptions? = nil
    ) {
        self.container = container ?? ContainerOptions(args: args)
        self.id = id
        self.image = image
        self.args = args
        self.env = env
        self.resolvConf = resolvConf
        self.hosts = hosts ?? "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    }
}

/// A node's tasks: each gets a named network namespace (so the dataplane can attach it and DNS
/// can serve inside it) with private /etc/resolv.conf, /etc/hosts and /etc/hostname files, and a
/// driver that runs it there: the process driver for images in the node's catalog (a host
/// process; fast, the built-in whoami and busybox), the OCI driver (runc) for the rest when the
/// node has an image store.
public actor TaskRuntime {
    public struct Running: Sendable {
        public let id: String
        public let namespace: String
        /// The process whose end is the task's end.
        public var process: TaskProcess { handle.process }
        /// The task's first process inside its namespace (readiness reads its sockets).
        public var pid: pid_t { handle.taskPID }
        public var command: [String] { handle.command }
        /// "process" or "oci".
        public let driver: String
        public let handle: any TaskHandle
    }

    public let nodeID: String
    public let dataRoot: String
    public let catalog: ImageCatalog
    /// In the order they are asked: the first that accepts a task runs it.
    public let drivers: [any TaskDriver]
    private var tasks: [String: Running] = [:]
    private var chosen: [String: any TaskDriver] = [:]

    /// `images`: the node's image store; without one, an image not in the catalog fails the task
    /// with the catalog's message, as before there were containers.
    /// `builtinImages` false: the catalog maps only `images.json`'s names (`--no-builtin-images`).
    public init(
        nodeID: String, dataRoot: String, meshd: String, images: (any RootfsProvider)? = nil, runc: String = "runc",
        builtinImages: Bool = true
    ) throws(RuntimeError) {
        self.nodeID = nodeID
        self.dataRoot = dataRoot
        do { catalog = try ImageCatalog(dataRoot: dataRoot, meshd: meshd, builtins: builtinImages) } catch { throw .image(error) }
        var drivers: [any TaskDriver] = [ProcessDriver(catalog: catalog)]
        if let images { drivers.append(OCIDriver(nodeID: nodeID, dataRoot: dataRoot, images: images, runc: runc)) }
        self.drivers = drivers
    }

    /// The OCI driver's core, when the node runs containers.
    public var containers: OCIDriverCore? { drivers.lazy.compactMap { ($0 as? OCIDriver)?.core }.first }

    /// `mtask-<node>-<task>`: not under the dataplane's `meshd-<node>-` prefix, whose namespaces
    /// it owns and removes.
    public nonisolated func namespaceName(_ task: String) -> String { Self.namespaceName(nodeID: nodeID, task: task) }
    public static func namespaceName(nodeID: String, task: String) -> String { namespacePrefix(nodeID: nodeID) + short(task) }
    /// What every task namespace of a node starts with.
    public static func namespacePrefix(nodeID: String) -> String { "mtask-\(short(nodeID))-" }
    /// The dataplane's rule for names (`KernelName`), 16 characters: node and task ids are base36,
    /// so names are what they always were.
    static func short(_ s: String) -> String { KernelName.short(s, length: 16) }

    /// Makes the task's namespaces and files and starts it. An image no driver can run fails
    /// here, with the reason, before anything is made.
    public func start(_ t: TaskLaunch) async throws(RuntimeError) -> Running {
        _ = try await prepare(t)
        return try await launch(t)
    }

    /// The driver for `t`: the catalog's first, then the image store's.
    func driver(for t: TaskLaunch) throws(RuntimeError) -> any TaskDriver {
        if let d = drivers.first(where: { $0.accepts(t) }) { return d }
        // No image store: the catalog's own message says how to map the image.
        do { _ = try catalog.command(image: t.image, args: t.args) } catch { throw .image(error) }
        return drivers[0]
    }

    func sandbox(_ id: String) -> TaskSandbox {
        let ns = namespaceName(id)
        return TaskSandbox(
            taskID: id, namespace: ns, namespacePath: "/run/netns/\(ns)", etcDirectory: "/etc/netns/\(ns)",
            taskDirectory: "\(dataRoot)/tasks/\(id)")
    }

    /// The image a task's driver still has to fetch from a registry before `prepare` (nil: none).
    public func imageToFetch(_ t: TaskLaunch) async -> String? {
        guard let d = try? driver(for: t), let oci = d as? OCIDriver else { return nil }
        return await oci.core.images.isFetched(image: t.image) ? nil : t.image
    }

    /// Pulls an image for the container driver (`imageToFetch` said it is needed).
    public func fetch(image: String) async throws(RuntimeError) {
        guard let core = containers else { return }
        try await core.images.fetch(image: image)
    }

    /// Makes the task's network namespace (lo up) and its files, without starting it: the agent
    /// attaches the network and DNS in between, so the task never runs without them.
    public func prepare(_ t: TaskLaunch) async throws(RuntimeError) -> String {
        let d = try driver(for: t)
        try await d.prepare(t)
        chosen[t.id] = d
        do { return try await makeSandbox(t, driver: d) } catch {
            // A task that cannot be set up keeps nothing the driver made for it (a rootfs).
            chosen[t.id] = nil
            await d.release(t.id)
            throw error
        }
    }

    private func makeSandbox(_ t: TaskLaunch, driver d: any TaskDriver) async throws(RuntimeError) -> String {
        let s = sandbox(t.id)
        let ns = s.namespace
        let dir = s.taskDirectory
        let etc = s.etcDirectory  // where `ip netns exec` looks
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
            try t.resolvConf.write(toFile: "\(etc)/resolv.conf", atomically: true, encoding: .utf8)
            try t.hosts.write(toFile: "\(etc)/hosts", atomically: true, encoding: .utf8)
            // A container may have the service's host name; a host process's is always its task id.
            let hostname = d is ProcessDriver ? t.id : RuntimeSpecBuilder.hostname(for: t)
            try "\(hostname)\n".write(toFile: "\(etc)/hostname", atomically: true, encoding: .utf8)
        } catch {
            throw .files("task \(t.id): cannot write its files: \(error.localizedDescription)")
        }
        do {
            let handle = try NetworkNamespace.exists(named: ns) ? NetworkNamespace.open(named: ns) : NetworkNamespace.create(named: ns)
            try await NetlinkHandle(namespace: handle).linkSetUp("lo")
        } catch {
            throw .namespace(ns, "\(error)")
        }
        return ns
    }

    /// Starts a prepared task (again, if it had ended).
    public func launch(_ t: TaskLaunch) async throws(RuntimeError) -> Running {
        if let r = tasks[t.id], r.process.current == .running { return r }
        let d: any TaskDriver
        if let c = chosen[t.id] {
            d = c
        } else {
            d = try driver(for: t)
            try await d.prepare(t)
            chosen[t.id] = d
        }
        let handle = try await d.launch(t, in: sandbox(t.id))
        let r = Running(id: t.id, namespace: namespaceName(t.id), driver: d.kind, handle: handle)
        tasks[t.id] = r
        return r
    }

    public func task(_ id: String) -> Running? { tasks[id] }

    /// Stops the task (its stop signal, then SIGKILL after `grace`); its namespace stays until `remove`.
    public func stop(_ id: String, grace: Duration = .seconds(10)) async -> TaskProcess.State? {
        guard let r = tasks[id] else { return nil }
        return await r.handle.stop(grace: grace)
    }

    /// Stops the task if needed and removes its namespace and files (and its container).
    public func remove(_ id: String) async {
        if let r = tasks[id] {
            _ = await r.handle.stop(grace: .seconds(2))
            await r.handle.remove()
        }
        tasks[id] = nil
        if let d = chosen.removeValue(forKey: id) { await d.release(id) }
        let ns = namespaceName(id)
        try? NetworkNamespace.delete(named: ns)
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(ns)")
        try? FileManager.default.removeItem(atPath: "\(dataRoot)/tasks/\(id)")
    }

    /// Keeps an ended task's container (its record, bundle and log, for `docker ps -a` and
    /// `docker logs`) but not its network namespace, which only a running task needs; `remove`
    /// takes the rest later.
    public func retire(_ id: String) async {
        if let r = tasks[id], r.process.current == .running { _ = await r.handle.stop(grace: .seconds(2)) }
        let ns = namespaceName(id)
        try? NetworkNamespace.delete(named: ns)
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(ns)")
    }

    /// A process started in a running task (`docker exec`): containers only.
    public func exec(_ id: String, _ request: ExecRequest) async throws(RuntimeError) -> ExecSession {
        guard let r = tasks[id] else { throw .exec("no task \(id) on this node") }
        guard let c = r.handle as? ContainerTask else {
            throw .unsupported("task \(id) is a host process (image \(r.command.first ?? "?")): exec needs a container")
        }
        return try await c.exec(request)
    }

    /// One run of a health check inside the task: in its container (`runc exec`), or for a host
    /// process in its namespace with its environment. Ended (its process group killed) once
    /// `check.timeout` passes, which counts as a failure, as dockerd's timeout does. nil: no such
    /// task, or not running.
    public func probe(_ id: String, _ check: HealthCheck) async -> HealthProbe? {
        guard let r = tasks[id], r.process.current == .running else { return nil }
        let start = Date()
        let session: ExecSession
        do {
            if let c = r.handle as? ContainerTask {
                session = try await c.exec(ExecRequest(args: check.argv))
            } else if let h = r.handle as? HostProcessTask {
                session = try Self.startHostProbe(h, argv: check.argv)
            } else {
                return HealthProbe(start: start, end: Date(), exitCode: -1, output: "no way to probe a \(r.driver) task")
            }
        } catch {
            return HealthProbe(start: start, end: Date(), exitCode: -1, output: "cannot start the health check: \(error)")
        }
        return await Self.finish(session, start: start, timeout: check.timeout)
    }

    static func startHostProbe(_ h: HostProcessTask, argv: [String]) throws(RuntimeError) -> ExecSession {
        let out = try Spawn.pipe()
        let pid: pid_t
        do {
            pid = try Spawn.start(["ip", "netns", "exec", h.namespace] + argv, environment: h.environment, stdout: out.write)
        } catch {
            close(out.read)
            close(out.write)
            throw error
        }
        close(out.write)
        return ExecSession(pid: pid, stdin: nil, stdout: out.read, stderr: nil, console: nil)
    }

    /// Reads the probe's output (stderr folded into stdout for a host probe; both kept for a
    /// container's) until it ends or its time is up.
    static func finish(_ session: ExecSession, start: Date, timeout: Duration) async -> HealthProbe {
        let timer = Task {
            try await Task.sleep(for: timeout)
            // The process itself (a container's exec'd process, or the host probe's group): runc
            // then exits with its status, and the pipes close.
            guard session.current == .running else { return true }
            if session.processPID == session.pid {
                kill(-session.pid, SIGKILL)
            } else if let p = session.processPID, p > 0 {
                kill(p, SIGKILL)
            } else {
                kill(session.pid, SIGKILL)  // runc has not said which pid yet: end runc, and stop reading
            }
            return true
        }
        let output = await ExecSession.offThread { () -> [UInt8] in
            var got: [UInt8] = []
            session.pumpOutput { _, chunk in
                if got.count < HealthProbe.outputLimit { got += chunk.prefix(HealthProbe.outputLimit - got.count) }
            }
            return got
        }
        let code = await session.wait()
        timer.cancel()
        session.close()
        let timedOut = (try? await timer.value) == true
        if timedOut {
            return HealthProbe(start: start, end: Date(), exitCode: -1, output: "Health check exceeded timeout (\(timeout))")
        }
        return HealthProbe(start: start, end: Date(), exitCode: code, output: String(decoding: output, as: UTF8.self))
    }

    /// Tasks left by a previous life of this daemon (killed, then restarted): their containers
    /// deleted, their processes ended and their namespaces and files removed, as dockerd without
    /// live-restore does; the manager's next assignment starts what should run. Returns how many
    /// there were.
    @discardableResult
    public func removeLeftovers() async -> Int {
        var removed = 0
        for d in drivers { removed += await d.removeLeftovers() }
        let prefix = Self.namespacePrefix(nodeID: nodeID)
        for ns in NetworkNamespace.list() where ns.hasPrefix(prefix) && !tasks.values.contains(where: { $0.namespace == ns }) {
            Self.removeNamespace(ns)
            removed += 1
        }
        return removed
    }

    /// Ends every process in the named namespace (a task is its own process group), then removes
    /// the namespace and its /etc/netns files.
    public static func removeNamespace(_ ns: String) {
        for pid in NetworkNamespace.pids(named: ns) {
            kill(-pid, SIGKILL)
            kill(pid, SIGKILL)
        }
        try? NetworkNamespace.delete(named: ns)
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(ns)")
    }

    /// The task's output as text, in order (a container's json-file log read back).
    public func log(_ id: String) -> String {
        if let r = tasks[id] { return r.handle.log() }
        return (try? String(contentsOfFile: "\(dataRoot)/tasks/\(id)/log", encoding: .utf8)) ?? ""
    }
}
