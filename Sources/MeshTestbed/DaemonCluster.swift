import Foundation
import MeshDataplane
import MeshKernel
import MeshRuntime
import Synchronization

/// Nodes as namespaces on one underlay (a `DataplaneLab`), each running a real `meshd daemon`
/// with its own data root and API socket, driven with meshctl and the docker CLI. Used by the
/// cluster e2e tests, the demo and the convergence benchmark. Everything it starts it ends by
/// pid; everything the daemons made is found through their node IDs and removed.
public final class DaemonCluster: Sendable {
    public let lab: DataplaneLab
    public let directory: String
    public let meshctl: String
    public let lb: String
    /// Given to every daemon after the testbed's own (e.g. `--metrics-addr 127.0.0.1:9323`: each
    /// daemon has its own namespace, so one address serves them all).
    public let extraArguments: [String]
    private let daemons = Mutex<[Int: Process]>([:])
    /// Arguments for one node's daemon only (e.g. `--cluster-store` for the node that runs swarm init),
    /// after `extraArguments`; kept for its restarts.
    private let nodeArguments = Mutex<[Int: [String]]>([:])
    public func setArguments(_ n: Int, _ arguments: [String]) { nodeArguments.withLock { $0[n] = arguments } }

    public init(lab: DataplaneLab, directory: String, lb: String = "nftables", extraArguments: [String] = []) {
        self.lab = lab
        self.directory = directory
        self.lb = lb
        self.extraArguments = extraArguments
        meshctl = URL(fileURLWithPath: lab.meshd).deletingLastPathComponent().appendingPathComponent("meshctl").path
    }

    public static func build(
        tag: String, nodes: Int = 3, lb: String = "nftables", directory: String? = nil, extraArguments: [String] = []
    ) async throws -> DaemonCluster {
        let lab = try await DataplaneLab.build(tag: tag, nodes: nodes, requestSeconds: 3)
        let dir = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("\(lab.group.prefix)-daemons").path
        let cluster = DaemonCluster(lab: lab, directory: dir, lb: lb, extraArguments: extraArguments)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: "\(dir)/docker", withIntermediateDirectories: true)
            for n in 1...nodes { try cluster.start(n) }
            for n in 1...nodes { try await cluster.waitForSocket(n) }
        } catch {
            cluster.destroy()
            throw error
        }
        return cluster
    }

    public var nodeCount: Int { lab.nodeCount }
    public func dataRoot(_ n: Int) -> String { "\(directory)/node\(n)" }
    public func socket(_ n: Int) -> String { "\(directory)/node\(n).sock" }
    public func logPath(_ n: Int) -> String { "\(directory)/node\(n).log" }
    public func address(_ n: Int) -> String { lab.underlayAddress(n).description }

    /// Starts node `n`'s daemon (again, after a kill: it resumes from its data root).
    public func start(_ n: Int) throws {
        let p = Process()
        // nsenter, not `ip netns exec`: the latter gives the daemon a mount namespace whose mounts do
        // not propagate back, so the namespaces it makes (sandboxes, tasks) would be empty files to
        // everyone else on the machine.
        p.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        p.arguments =
            [
                "--net=/run/netns/\(lab.nodeNamespace(n))", lab.meshd, "daemon", "--data-root", dataRoot(n), "--socket", socket(n),
                "--hostname", "node\(n)", "--lb", lb,
                // docker.io is a dead local port: nothing a test asks for can leave the machine.
                "--registry-hub", "http://127.0.0.1:9",
            ] + extraArguments + nodeArguments.withLock { $0[n] ?? [] }
        _ = FileManager.default.createFile(atPath: logPath(n), contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath(n)))
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        try p.run()
        daemons.withLock { $0[n] = p }
    }

    public func waitForSocket(_ n: Int, timeout: Duration = .seconds(30)) async throws {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if (try? Exec.run(["curl", "-s", "--max-time", "2", "--unix-socket", socket(n), "http://d/_ping"]))?.stdout == "OK" { return }
            if let p = daemons.withLock({ $0[n] }), !p.isRunning {
                throw Exec.Failure(command: ["meshd", "daemon"], output: .init(status: p.terminationStatus, stdout: "", stderr: log(n)))
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Exec.Failure(
            command: ["meshd", "daemon"], output: .init(status: -1, stdout: "", stderr: "no API after \(timeout)\n" + log(n)))
    }

    public func log(_ n: Int) -> String { (try? String(contentsOfFile: logPath(n), encoding: .utf8)) ?? "" }

    /// The daemon's pid (nsenter execs meshd, so it is the process we started).
    public func pid(_ n: Int) -> Int32? { daemons.withLock { $0[n] }.map(\.processIdentifier) }

    public func signal(_ n: Int, _ sig: Int32) {
        if let p = daemons.withLock({ $0[n] }), p.isRunning { kill(p.processIdentifier, sig) }
    }

    /// SIGTERM and wait (SIGKILL after `grace`).
    public func stop(_ n: Int, grace: Duration = .seconds(10)) {
        guard let p = daemons.withLock({ $0.removeValue(forKey: n) }) else { return }
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        if !Self.reap(p, within: grace) {
            kill(p.processIdentifier, SIGKILL)
            _ = Self.reap(p, within: .seconds(5))
        }
    }

    public func kill9(_ n: Int) {
        guard let p = daemons.withLock({ $0.removeValue(forKey: n) }), p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        _ = Self.reap(p, within: .seconds(5))
    }

    /// Waits for `p` to end, reaping it ourselves: `waitUntilExit` was seen to hang on a child
    /// killed from a test, leaving it a zombie.
    public static func reap(_ p: Process, within timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        let pid = p.processIdentifier
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno == ECHILD) || !p.isRunning { return true }
            usleep(20_000)
        }
        return false
    }

    // MARK: clients

    public func meshctl(_ n: Int, _ args: [String]) throws -> Exec.Output {
        try Exec.run([meshctl, "-H", "unix://\(socket(n))"] + args)
    }

    public func docker(_ n: Int, _ args: [String]) throws -> Exec.Output {
        try Exec.run(["docker", "--config", "\(directory)/docker", "-H", "unix://\(socket(n))"] + args)
    }

    /// The node ID a daemon keeps in its data root (nil before it is in a swarm).
    public func nodeID(_ n: Int) -> String? {
        guard let data = FileManager.default.contents(atPath: "\(dataRoot(n))/node.json"),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["nodeID"] as? String
    }

    /// Namespaces meshd made for node `n` (sandboxes and tasks).
    public func ownedNamespaces(_ n: Int, nodeID known: String? = nil) -> [String] {
        guard let id = known ?? nodeID(n) else { return [] }
        return Self.ownedNamespaces(nodeID: id)
    }

    public static func ownedNamespaces(nodeID: String) -> [String] {
        let prefixes = [Naming(nodeID: nodeID).sandboxPrefix, TaskRuntime.namespacePrefix(nodeID: nodeID)]
        return NetworkNamespace.list().filter { name in prefixes.contains { name.hasPrefix($0) } }
    }

    /// The namespace of task `task` on node `n` (nil before the node is in a swarm).
    public func taskNamespace(_ n: Int, task: String) -> String? {
        nodeID(n).map { TaskRuntime.namespaceName(nodeID: $0, task: task) }
    }

    /// Node `n`'s runc containers (in its own runc root) and their overlay root file systems,
    /// which a stopped daemon leaves for its next start: deleted, then unmounted, so that the
    /// data root can go.
    func removeContainers(_ n: Int) {
        let root = dataRoot(n)
        let runc = Runc(root: root + "/runc")
        for id in runc.list() { try? runc.delete(id) }
        for t in (try? FileManager.default.contentsOfDirectory(atPath: root + "/rootfs")) ?? [] {
            umount2("\(root)/rootfs/\(t)/rootfs", Int32(MNT_DETACH))
        }
        // Secrets and configs: a tmpfs per task.
        for t in (try? FileManager.default.contentsOfDirectory(atPath: root + "/taskfiles")) ?? [] {
            umount2("\(root)/taskfiles/\(t)", Int32(MNT_DETACH))
        }
    }

    /// Ends every daemon and removes everything the cluster made, daemons' leftovers included.
    public func destroy() {
        let ids = (1...nodeCount).map { nodeID($0) }
        for n in 1...nodeCount { stop(n, grace: .seconds(5)) }
        // Tasks are process groups of their own: a daemon killed hard leaves them behind.
        for n in 1...nodeCount {
            for ns in ownedNamespaces(n, nodeID: ids[n - 1]) { TaskRuntime.removeNamespace(ns) }
            removeContainers(n)
        }
        lab.destroy()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
