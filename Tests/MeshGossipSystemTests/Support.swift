import Foundation
import Testing
import MeshTestbed

struct NotRoot: Error, CustomStringConvertible {
    var description: String { "gossip system tests create network namespaces and need root: run scripts/test as root" }
}

struct MissingBinary: Error, CustomStringConvertible {
    let path: String
    var description: String { "meshd not found at \(path): build it first (swift build --build-tests builds it)" }
}

/// One `meshd gossip` process in its namespace: stdin for commands, stdout parsed as JSON lines
/// with the monotonic time each line arrived.
final class GossipProcess: @unchecked Sendable {
    let name: String
    let address: String
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let lock = NSLock()
    private var lines: [(at: ContinuousClock.Instant, object: [String: Any])] = []

    init(meshd: String, namespace: String, name: String, address: String, args: [String]) throws {
        self.name = name
        self.address = address
        // `ip netns exec` setns()es and then execs meshd, so this pid is meshd's own: signals hit it.
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", namespace, meshd, "gossip", "--name", name, "--bind", address] + args
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let handle = output.fileHandleForReading
        Thread { [weak self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let nl = pending.firstIndex(of: 0x0A) {
                    let line = pending[pending.startIndex..<nl]
                    pending = Data(pending[(nl + 1)...])
                    if let obj = try? JSONSerialization.jsonObject(with: line) as? [String: Any] {
                        self?.append(obj)
                    }
                }
            }
        }.start()
    }

    private func append(_ o: [String: Any]) { lock.withLock { lines.append((ContinuousClock.now, o)) } }

    var pid: Int32 { process.processIdentifier }

    func send(_ command: String) {
        try? input.fileHandleForWriting.write(contentsOf: Data((command + "\n").utf8))
    }

    func events(since: ContinuousClock.Instant? = nil) -> [(at: ContinuousClock.Instant, object: [String: Any])] {
        lock.withLock { lines.filter { since == nil || $0.at >= since! } }
    }

    /// First time (after `since`) this node reported `about` in `state`.
    func sawMember(_ about: String, _ state: String, since: ContinuousClock.Instant? = nil) -> ContinuousClock.Instant? {
        events(since: since).first {
            $0.object["event"] as? String == "member" && $0.object["name"] as? String == about && $0.object["state"] as? String == state
        }?.at
    }

    /// Sends a command that prints one JSON object of kind `event` and waits for it.
    func query(_ command: String, event: String, timeout: Duration = .seconds(5)) async -> [String: Any]? {
        let start = ContinuousClock.now
        send(command)
        while ContinuousClock.now - start < timeout {
            if let hit = events(since: start).last(where: { $0.object["event"] as? String == event }) { return hit.object }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    func signal(_ sig: Int32) { if process.isRunning { kill(pid, sig) } }

    func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }
}

/// N namespaces on a bridge in an underlay namespace of their own, one gossip process each.
///
///     underlay ns: br0 ── vI ══ eth0 (node I, 198.19.7.I/24)
final class GossipCluster: @unchecked Sendable {
    let group: NamespaceGroup
    let count: Int
    let meshd: String
    var nodes: [GossipProcess?]
    let keyFile: String

    init(count: Int, keys: [String] = ["00112233445566778899aabbccddeeff"]) throws {
        guard getuid() == 0 else { throw NotRoot() }
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        meshd = ProcessInfo.processInfo.environment["MESHD_BIN"] ?? Self.findMeshd(near: dir)
        guard FileManager.default.isExecutableFile(atPath: meshd) else { throw MissingBinary(path: meshd) }
        self.count = count
        nodes = Array(repeating: nil, count: count + 1)
        group = NamespaceGroup(tag: "mgs")
        keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(group.prefix)-keys").path
        try (keys.joined(separator: "\n") + "\n").write(toFile: keyFile, atomically: true, encoding: .utf8)
        do {
            _ = try group.create("u")
            let u = group.name("u")
            try Exec.check(["ip", "-n", u, "link", "add", "br0", "type", "bridge"])
            try Exec.check(["ip", "-n", u, "link", "set", "br0", "up"])
            for i in 1...count {
                _ = try group.create("n\(i)")
                let n = group.name("n\(i)")
                try Exec.check(["ip", "-n", u, "link", "add", "v\(i)", "type", "veth", "peer", "name", "eth0", "netns", n])
                try Exec.check(["ip", "-n", u, "link", "set", "v\(i)", "master", "br0", "up"])
                try Exec.check(["ip", "-n", n, "addr", "add", "\(address(i))/24", "dev", "eth0"])
                try Exec.check(["ip", "-n", n, "link", "set", "eth0", "up"])
                try Exec.check(["ip", "-n", n, "link", "set", "lo", "up"])
            }
        } catch {
            group.destroy()
            throw error
        }
    }

    static func findMeshd(near dir: URL) -> String {
        var d = dir
        for _ in 0..<4 {
            let candidate = d.appendingPathComponent("meshd").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            d = d.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("meshd").path
    }

    func address(_ i: Int) -> String { "198.19.7.\(i)" }
    func name(_ i: Int) -> String { "n\(i)" }

    /// Starts node i, joining through node 1 unless it is node 1.
    @discardableResult
    func start(_ i: Int, keyFile: String? = nil, extra: [String] = []) throws -> GossipProcess {
        var args = ["--key-file", keyFile ?? self.keyFile, "--label", "mgs", "--network", "net"] + extra
        if i != 1 { args += ["--seed", "\(address(1)):7946"] }
        let p = try GossipProcess(meshd: meshd, namespace: group.name("n\(i)"), name: name(i), address: address(i), args: args)
        nodes[i] = p
        return p
    }

    func node(_ i: Int) -> GossipProcess { nodes[i]! }

    /// Polls `condition` until it holds or `timeout` passes.
    func wait(_ timeout: Duration, _ condition: () -> Bool) async -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return condition()
    }

    /// Every running node sees every other listed node alive.
    func converged(_ live: [Int], since: ContinuousClock.Instant? = nil) -> Bool {
        live.allSatisfy { i in live.allSatisfy { j in i == j || node(i).sawMember(name(j), "alive", since: since) != nil } }
    }

    func shutdown() {
        for p in nodes.compactMap({ $0 }) { p.stop() }
        try? FileManager.default.removeItem(atPath: keyFile)
        group.destroy()
    }
}
