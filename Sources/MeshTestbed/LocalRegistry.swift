import Foundation
import Synchronization

/// A real Debian `docker-registry` on 127.0.0.1 with its storage in a temporary directory, for
/// image tests and the demo. The port is random below 32768 and another is tried if it is taken;
/// the process is ended by its pid in `stop()` (and the directory removed).
public final class LocalRegistry: Sendable {
    public let directory: String
    public let port: Int
    private let process: Mutex<Process?>

    /// `127.0.0.1:<port>`: what an image reference names it by.
    public var address: String { "127.0.0.1:\(port)" }
    /// The registry's filesystem storage (`docker/registry/v2/...`).
    public var storage: String { directory + "/storage" }
    public var logPath: String { directory + "/registry.log" }

    public static let binary = "/usr/bin/docker-registry"

    private init(directory: String, port: Int, process: Process) {
        self.directory = directory
        self.port = port
        self.process = Mutex(process)
    }

    /// Starts one and waits until `GET /v2/` answers.
    public static func start(tag: String = "meshd-registry") async throws -> LocalRegistry {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            .path
        try FileManager.default.createDirectory(atPath: dir + "/storage", withIntermediateDirectories: true)
        var lastLog = ""
        for _ in 0..<8 {
            let port = Int.random(in: 20000..<32000)
            let (registry, log) = try await launch(directory: dir, storage: dir + "/storage", port: port, namespace: nil)
            if let registry { return registry }
            lastLog = log
            // Someone else has the port: try another; any other failure is final.
            if !lastLog.contains("address already in use") { break }
        }
        try? FileManager.default.removeItem(atPath: dir)
        throw Exec.Failure(command: [binary, "serve"], output: .init(status: -1, stdout: "", stderr: "registry did not start\n" + lastLog))
    }

    /// The same registry (its storage, its port) served on 127.0.0.1 inside network namespace
    /// `namespace` as well, by a registry process of its own: daemons in node namespaces then
    /// reach what the test pushed at the address the image references name. Push through the
    /// first one only; the others read the same files.
    public func replica(in namespace: String) async throws -> LocalRegistry {
        let dir = directory + "-\(namespace)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let (registry, log) = try await Self.launch(directory: dir, storage: storage, port: port, namespace: namespace)
        guard let registry else {
            try? FileManager.default.removeItem(atPath: dir)
            throw Exec.Failure(
                command: [Self.binary, "serve"],
                output: .init(status: -1, stdout: "", stderr: "registry in \(namespace) did not start\n" + log))
        }
        return registry
    }

    private static func launch(directory dir: String, storage: String, port: Int, namespace: String?) async throws -> (
        LocalRegistry?, String
    ) {
        let config = """
            version: 0.1
            log:
              level: warn
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: \(storage)
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
            """
        try config.write(toFile: dir + "/config.yml", atomically: true, encoding: .utf8)
        // nsenter, not `ip netns exec`: the same mounts as ours, so it reads the storage we wrote.
        let inNamespace = namespace.map { ["/usr/bin/nsenter", "--net=/run/netns/\($0)"] } ?? []
        let p = Process()
        p.executableURL = URL(fileURLWithPath: inNamespace.first ?? binary)
        p.arguments = Array(inNamespace.dropFirst()) + (namespace == nil ? [] : [binary]) + ["serve", dir + "/config.yml"]
        _ = FileManager.default.createFile(atPath: dir + "/registry.log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/registry.log"))
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        try p.run()
        try? log.close()
        let registry = LocalRegistry(directory: dir, port: port, process: p)
        // Generous: on a loaded 2-core machine the Go binary can take seconds to start.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if !p.isRunning { break }
            if let o = try? Exec.run(
                inNamespace + ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1", "http://127.0.0.1:\(port)/v2/"]),
                o.stdout == "200"
            {
                return (registry, "")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let text = (try? String(contentsOfFile: dir + "/registry.log", encoding: .utf8)) ?? ""
        registry.stopProcess()
        return (nil, text)
    }

    public var isRunning: Bool { process.withLock { $0?.isRunning ?? false } }

    private func stopProcess() {
        guard
            let p = process.withLock({ p -> Process? in
                defer { p = nil }
                return p
            })
        else { return }
        if p.isRunning { kill(p.processIdentifier, SIGTERM) }
        if !DaemonCluster.reap(p, within: .seconds(5)) {
            kill(p.processIdentifier, SIGKILL)
            _ = DaemonCluster.reap(p, within: .seconds(5))
        }
    }

    /// Ends the registry by pid and removes its directory.
    public func stop() {
        stopProcess()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Where the registry keeps blob `hex` (sha256), for tests that corrupt what it serves.
    public func blobDataPath(hex: String) -> String {
        "\(storage)/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }
}
