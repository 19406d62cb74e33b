import ArgumentParser
import Foundation
import MeshAPI
import MeshDaemon
import MeshDataplane
import MeshKernel

/// `meshd daemon`: one node of a cluster. The Docker-compatible API listens on a unix socket; the
/// node joins or makes a swarm when a client says so, and resumes its membership when restarted.
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run a node: the API on a unix socket, the control plane, gossip, the dataplane and tasks.",
        discussion: """
            Drive it with `meshctl -H unix://SOCKET …` or `docker -H unix://SOCKET …`: `swarm init`, \
            `swarm join`, `network create`, `service create`. State lives under --data-root; a restarted \
            daemon rejoins by itself. SIGTERM or SIGINT stop it (tasks keep running until it comes back).
            """)

    @Option(help: "Directory for the node's state (membership, certificates, the manager's database, task files).")
    var dataRoot: String
    @Option(help: "Unix socket for the API (default: <data-root>/meshd.sock).") var socket: String?
    @Option(help: "Load balancer: auto (IPVS when the kernel has it), nftables or ipvs.") var lb = "auto"
    @Option(help: "Host name this node reports (default: the machine's).") var hostname: String?
    @Option(help: "Group of the API socket, a name or gid (default: docker if that group exists, else root's).")
    var group: String?

    func run() async throws {
        let kind: LoadBalancerKind
        switch lb {
        case "auto": kind = LoadBalancerKind.detect()
        default:
            guard let k = LoadBalancerKind(rawValue: lb) else { throw ValidationError("--lb must be auto, nftables or ipvs") }
            kind = k
        }
        let root = URL(fileURLWithPath: dataRoot).standardizedFileURL.path
        // Resolved before anything starts, so a mistyped --group fails at once. (Daemon.resume makes the data root, 0700.)
        let socketGroup = try APISocket.group(named: group)
        let socketPath = socket ?? "\(root)/meshd.sock"
        let meshd = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let daemon = Daemon(
            options: .init(
                dataRoot: root, lb: kind, meshd: Self.executablePath() ?? meshd,
                hostname: hostname ?? ProcessInfo.processInfo.hostName))
        try await daemon.resume()
        // APIServer replaces a stale socket itself, and refuses to remove anything that is not a socket.
        let server = try await APIServer.start(socketPath: socketPath, router: APIRouter(backend: daemon), socketGroup: socketGroup)
        FileHandle.standardError.write(Data("meshd: API on unix://\(socketPath) (lb \(kind.rawValue))\n".utf8))
        await Self.waitForTermination()
        FileHandle.standardError.write(Data("meshd: stopping\n".utf8))
        await server.stop()
        await daemon.shutdown()
        unlink(socketPath)
    }

    static func executablePath() -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
    }

    static func waitForTermination() async {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        let sources = [SIGTERM, SIGINT].map { sig in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { continuation.yield(sig) }
            s.resume()
            return s
        }
        for await _ in stream { break }
        for s in sources { s.cancel() }
    }
}
