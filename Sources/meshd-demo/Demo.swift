import ArgumentParser
import Foundation
import MeshKernel
import MeshRuntime
import MeshTestbed

/// A three-node cluster in network namespaces on this machine: one `meshd daemon` per node, a
/// swarm made with the docker CLI (init on node 1, join 2 and 3), an overlay network and a
/// `whoami` service with three replicas published on port 8000 of every node; curl proves it.
/// Removed at the end unless --keep. An executable of its own: the demo builds its cluster with the
/// testbed (MeshTestbed), which the production `meshd` binary must not link.
@main
struct MeshdDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshd-demo",
        abstract:
            "Three meshd daemons in network namespaces, one swarm, a whoami service with three replicas published on 8000 of every node.",
        discussion: "With --keep the cluster stays for you to drive with meshctl or docker; `meshd-demo --down` removes it.")

    @Flag(help: "Leave the cluster running; `meshd-demo --down` removes it.") var keep = false
    @Flag(help: "Remove a cluster left by --keep.") var down = false
    @Option(help: "Load balancer: nftables or ipvs (ipvs needs a kernel with IPVS).") var lb = "nftables"

    static let record = "/run/meshd-demo.json"
    static let directory = "/run/meshd-demo"
    struct Kept: Codable {
        var namespaces: [String]
        var daemonPids: [Int32]
        var nodeIDs: [String]
        var directory: String
    }

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the demo creates network namespaces: run it as root") }
        if down { return try Self.tearDown() }
        if FileManager.default.fileExists(atPath: Self.record) {
            throw ValidationError("a kept demo cluster exists: remove it first with `meshd-demo --down`")
        }
        print("building: an underlay bridge (198.18.0.0/24), nodes 1-3 at 198.18.0.1-3, a client at 198.18.0.100,")
        print("and one `meshd daemon` per node (API sockets in \(Self.directory)) …")
        let c = try await DaemonCluster.build(tag: "meshd-demo", lb: lb, directory: Self.directory)
        var kept = false
        defer { if !kept { c.destroy() } }

        // The stock docker CLI where it is installed, meshctl for everything otherwise.
        let hasDocker = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
            .contains { FileManager.default.isExecutableFile(atPath: "\($0)/docker") }
        func step(_ n: Int, _ wanted: String, _ args: [String]) throws -> String {
            let tool = hasDocker ? wanted : "meshctl"
            print("\n$ \(tool) -H unix://\(c.socket(n)) \(args.joined(separator: " "))")
            let out = tool == "docker" ? try c.docker(n, args) : try c.meshctl(n, args)
            let text = (out.stdout + out.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty { print(text.split(separator: "\n").suffix(12).map { "  \($0)" }.joined(separator: "\n")) }
            guard out.succeeded else { throw ValidationError("\(tool) \(args.first ?? "") failed; daemon log: \(c.logPath(n))") }
            return out.stdout
        }
        _ = try step(1, "docker", ["swarm", "init", "--advertise-addr", c.address(1)])
        let token = try step(1, "docker", ["swarm", "join-token", "-q", "worker"]).trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try step(2, "docker", ["swarm", "join", "--token", token, "\(c.address(1)):2377"])
        _ = try step(3, "meshctl", ["swarm", "join", "--token", token, "\(c.address(1)):2377"])
        for _ in 0..<50 {
            let ready = try c.meshctl(1, ["node", "ls", "--format", "json"]).stdout.components(separatedBy: "\"ready\"").count - 1
            if ready >= 3 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        _ = try step(1, "meshctl", ["node", "ls"])
        _ = try step(1, "docker", ["network", "create", "-d", "overlay", "demo"])
        _ = try step(
            1, "docker",
            [
                "service", "create", "--name", "whoami", "-p", "8000:8000", "--network", "demo", "--replicas", "3",
                "meshd/whoami",
            ])
        _ = try step(1, "docker", ["service", "ps", "whoami"])

        print("\npublished port 8000 answers on every node, 9 requests each from the client namespace:")
        for n in 1...3 {
            let url = "http://\(c.address(n)):8000/"
            var spread: [String: Int] = [:]
            for _ in 0..<25 {
                spread = try c.lab.spread(from: c.lab.clientNamespace, url: url, count: 9)
                if spread["failed"] == nil && spread.count == 3 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            print("  curl \(url)  →  " + spread.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
        }

        if keep {
            let namespaces = NetworkNamespace.list().filter { $0.hasPrefix(c.lab.group.prefix + "-") }
            let ids = (1...3).compactMap { c.nodeID($0) }
            let record = Kept(namespaces: namespaces, daemonPids: (1...3).compactMap { c.pid($0) }, nodeIDs: ids, directory: c.directory)
            try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: Self.record))
            kept = true
            // The namespaces go when the lab is released: a kept cluster must outlive this process's objects.
            _ = Unmanaged.passRetained(c)
            print(
                """

                kept. Drive it as a user would (any node's socket; node 1 is the manager):
                  meshctl -H unix://\(c.socket(1)) service ls
                  docker -H unix://\(c.socket(1)) service scale whoami=5
                  ip netns exec \(c.lab.clientNamespace) curl -s \(c.address(2)):8000
                daemon logs: \(c.directory)/node*.log
                remove it all: meshd-demo --down
                """)
        } else {
            print("\nremoving everything (run with --keep to explore) …")
        }
    }

    /// Ends the daemons the kept demo started (by pid), their tasks, and removes every namespace.
    static func tearDown() throws {
        guard let data = FileManager.default.contents(atPath: record), let kept = try? JSONDecoder().decode(Kept.self, from: data) else {
            print("no kept demo cluster (\(record) is absent)")
            return
        }
        for pid in kept.daemonPids { kill(pid, SIGTERM) }
        usleep(2_000_000)
        for pid in kept.daemonPids { kill(pid, SIGKILL) }
        let owned = kept.nodeIDs.flatMap(DaemonCluster.ownedNamespaces(nodeID:))
        let lab = NetworkNamespace.list().filter(kept.namespaces.contains)
        for name in owned + lab { TaskRuntime.removeNamespace(name) }
        let removed = owned.count + lab.count
        try? FileManager.default.removeItem(atPath: kept.directory)
        try? FileManager.default.removeItem(atPath: record)
        print("removed \(removed) namespaces and \(kept.daemonPids.count) daemons with their tasks")
    }
}
