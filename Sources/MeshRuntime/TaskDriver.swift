import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// What `TaskRuntime.prepare` made for a task before its driver runs it: the named network
/// namespace (the dataplane has attached it and DNS serves in it by launch time) and the task's
/// private /etc files.
public struct TaskSandbox: Sendable, Equatable {
    public var taskID: String
    public var namespace: String
    /// `/run/netns/<namespace>`, what `ip netns` and a runtime spec's network path name.
    public var namespacePath: String
    /// `/etc/netns/<namespace>`: resolv.conf, hosts, hostname.
    public var etcDirectory: String
    /// `<dataRoot>/tasks/<id>`.
    public var taskDirectory: String
}

/// A started task, whichever driver runs it.
public protocol TaskHandle: Sendable {
    /// The process whose end is the task's end (the task itself, or the `runc run` that waits for it).
    var process: TaskProcess { get }
    /// The task's first process inside its namespace: where readiness looks for its listeners.
    var taskPID: pid_t { get }
    /// What runs, for status and errors.
    var command: [String] { get }
    /// The stop signal, then SIGKILL after `grace`.
    func stop(grace: Duration) async -> TaskProcess.State
    /// After the task ended: what the driver made for it goes (runc state, bundle).
    func remove() async
    /// Its output so far as text, in order.
    func log() -> String
}

/// How a task's process is made and run once its namespace exists. The runtime picks a driver
/// per task (the process catalog first, so built-in images stay fast) and keeps the namespace,
/// files and dataplane the same whichever it is.
public protocol TaskDriver: Sendable {
    var kind: String { get }
    /// Whether this driver runs `t` at all (asked in order; the first that does gets it).
    func accepts(_ t: TaskLaunch) -> Bool
    /// What must hold before anything is made for the task (an image to map, a rootfs to get);
    /// throws the reason the task cannot run on this node.
    func prepare(_ t: TaskLaunch) async throws(RuntimeError)
    func launch(_ t: TaskLaunch, in sandbox: TaskSandbox) async throws(RuntimeError) -> any TaskHandle
    /// The task is gone: whatever `prepare` made for it can go.
    func release(_ taskID: String) async
    /// What a previous life of this daemon left running; returns how many were removed.
    func removeLeftovers() async -> Int
}

/// Today's driver: a task is a host process from the image catalog, started by `ip netns exec`
/// (network namespace, plus a mount namespace with /etc/netns/<ns>/* bound over /etc) and
/// `unshare --uts` (a host name of its own).
public struct ProcessDriver: TaskDriver {
    public let catalog: ImageCatalog
    public var kind: String { "process" }
    public init(catalog: ImageCatalog) { self.catalog = catalog }

    public func accepts(_ t: TaskLaunch) -> Bool { (try? catalog.command(image: t.image, args: t.args)) != nil }

    public func prepare(_ t: TaskLaunch) async throws(RuntimeError) {
        do { _ = try catalog.command(image: t.image, args: t.args) } catch { throw .image(error) }
        // A host process shares the host's file system: there is nowhere private to put the files.
        if !t.files.isEmpty {
            throw .unsupported(
                "secrets and configs (\(t.files.map(\.name).joined(separator: ", "))) are mounted into containers only: image \(t.image) runs as a host process from this node's catalog"
            )
        }
    }

    public func launch(_ t: TaskLaunch, in s: TaskSandbox) async throws(RuntimeError) -> any TaskHandle {
        let command: [String]
        do { command = try catalog.command(image: t.image, args: t.args) } catch { throw .image(error) }
        var env = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": t.id, "HOME": "/root"]
        env.merge(t.env) { _, new in new }
        let argv = ["ip", "netns", "exec", s.namespace, "unshare", "--uts", "sh", "-c", "hostname \"$0\" && exec \"$@\"", t.id] + command
        let p = try TaskProcess(argv: argv, environment: env, logPath: "\(s.taskDirectory)/log")
        return HostProcessTask(process: p, command: command, namespace: s.namespace, environment: env)
    }

    public func release(_ taskID: String) async {}
    /// The runtime's namespace sweep ends these: a task process lives in its task namespace.
    public func removeLeftovers() async -> Int { 0 }
}

struct HostProcessTask: TaskHandle {
    let process: TaskProcess
    let command: [String]
    /// Where it runs and with what environment: a health probe runs the same way.
    let namespace: String
    let environment: [String: String]
    var taskPID: pid_t { process.pid }
    func stop(grace: Duration) async -> TaskProcess.State { await process.stop(grace: grace) }
    func remove() async {}
    func log() -> String { (try? String(contentsOfFile: process.logPath, encoding: .utf8)) ?? "" }
}
