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
    public init(
        id: String, image: String, args: [String] = [], env: [String: String] = [:],
        resolvConf: String = "nameserver 127.0.0.11\noptions ndots:0\n", hosts: String? = nil
    ) {
        self.id = id
        self.image = image
        self.args = args
        self.env = env
        self.resolvConf = resolvConf
        self.hosts = hosts ?? "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    }
}

/// The first task driver: a task is a process in its own network, UTS and mount namespaces.
/// Its network namespace is named (so the dataplane can attach it and DNS can serve inside it),
/// its host name is the task id, and `ip netns exec` gives it private /etc/resolv.conf and
/// /etc/hosts from /etc/netns/<name>/ in a mount namespace of its own.
public actor TaskRuntime {
    public struct Running: Sendable {
        public let id: String
        public let namespace: String
        public let process: TaskProcess
        public let command: [String]
    }

    public let nodeID: String
    public let dataRoot: String
    public let catalog: ImageCatalog
    private var tasks: [String: Running] = [:]

    public init(nodeID: String, dataRoot: String, meshd: String) throws(RuntimeError) {
        self.nodeID = nodeID
        self.dataRoot = dataRoot
        do { catalog = try ImageCatalog(dataRoot: dataRoot, meshd: meshd) } catch { throw .image(error) }
    }

    /// `mtask-<node>-<task>`: not under the dataplane's `meshd-<node>-` prefix, whose namespaces
    /// it owns and removes.
    public nonisolated func namespaceName(_ task: String) -> String { Self.namespaceName(nodeID: nodeID, task: task) }
    public static func namespaceName(nodeID: String, task: String) -> String { namespacePrefix(nodeID: nodeID) + short(task) }
    /// What every task namespace of a node starts with.
    public static func namespacePrefix(nodeID: String) -> String { "mtask-\(short(nodeID))-" }
    /// The dataplane's rule for names (`KernelName`), 16 characters: node and task ids are base36,
    /// so names are what they always were.
    static func short(_ s: String) -> String { KernelName.short(s, length: 16) }

    /// Makes the task's namespaces and files and starts it. An unmapped image fails here, with
    /// the catalog's message, before anything is made.
    public func start(_ t: TaskLaunch) async throws(RuntimeError) -> Running {
        _ = try await prepare(t)
        return try launch(t)
    }

    /// Makes the task's network namespace (lo up) and its files, without starting it: the agent
    /// attaches the network and DNS in between, so the task never runs without them.
    public func prepare(_ t: TaskLaunch) async throws(RuntimeError) -> String {
        do { _ = try catalog.command(image: t.image, args: t.args) } catch { throw .image(error) }
        let ns = namespaceName(t.id)
        let dir = "\(dataRoot)/tasks/\(t.id)"
        let etc = "/etc/netns/\(ns)"  // where `ip netns exec` looks
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
            try t.resolvConf.write(toFile: "\(etc)/resolv.conf", atomically: true, encoding: .utf8)
            try t.hosts.write(toFile: "\(etc)/hosts", atomically: true, encoding: .utf8)
            try "\(t.id)\n".write(toFile: "\(etc)/hostname", atomically: true, encoding: .utf8)
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

    /// Starts a prepared task's process (again, if it had ended).
    public func launch(_ t: TaskLaunch) throws(RuntimeError) -> Running {
        if let r = tasks[t.id], r.process.current == .running { return r }
        let command: [String]
        do { command = try catalog.command(image: t.image, args: t.args) } catch { throw .image(error) }
        let ns = namespaceName(t.id)
        var env = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": t.id, "HOME": "/root"]
        env.merge(t.env) { _, new in new }
        // ip netns exec: network namespace + a mount namespace with /etc/netns/<ns>/* bound over /etc;
        // unshare --uts: a host name of its own.
        let argv = ["ip", "netns", "exec", ns, "unshare", "--uts", "sh", "-c", "hostname \"$0\" && exec \"$@\"", t.id] + command
        let p = try TaskProcess(argv: argv, environment: env, logPath: "\(dataRoot)/tasks/\(t.id)/log")
        let r = Running(id: t.id, namespace: ns, process: p, command: command)
        tasks[t.id] = r
        return r
    }

    public func task(_ id: String) -> Running? { tasks[id] }

    /// Stops the task (SIGTERM, then SIGKILL after `grace`); its namespace stays until `remove`.
    public func stop(_ id: String, grace: Duration = .seconds(10)) async -> TaskProcess.State? {
        guard let r = tasks[id] else { return nil }
        return await r.process.stop(grace: grace)
    }

    /// Stops the task if needed and removes its namespace and files.
    public func remove(_ id: String) async {
        if let r = tasks[id] { _ = await r.process.stop(grace: .seconds(2)) }
        tasks[id] = nil
        let ns = namespaceName(id)
        try? NetworkNamespace.delete(named: ns)
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(ns)")
        try? FileManager.default.removeItem(atPath: "\(dataRoot)/tasks/\(id)")
    }

    /// Tasks left by a previous life of this daemon (killed, then restarted): their processes are
    /// ended and their namespaces and files removed, as dockerd without live-restore does; the
    /// manager's next assignment starts what should run. Returns how many there were.
    @discardableResult
    public func removeLeftovers() -> Int {
        let prefix = Self.namespacePrefix(nodeID: nodeID)
        var removed = 0
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

    public func log(_ id: String) -> String {
        (try? String(contentsOfFile: "\(dataRoot)/tasks/\(id)/log", encoding: .utf8)) ?? ""
    }
}
