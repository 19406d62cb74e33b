import ArgumentParser
import Foundation
import Logging
import MeshAPI
import Metrics
import Prometheus
import MeshDaemon
import MeshDataplane
import MeshImage
import MeshKernel
import MeshRuntime

/// `meshd daemon`: one node of a cluster. The Docker-compatible API listens on a unix socket; the
/// node joins or makes a swarm when a client says so, and resumes its membership when restarted.
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run a node: the API on a unix socket, the control plane, gossip, the dataplane and tasks.",
        discussion: """
            Drive it with `meshctl -H unix://SOCKET …` or `docker -H unix://SOCKET …`: `swarm init`, \
            `swarm join`, `network create`, `service create`. State lives under --data-root; a restarted \
            daemon rejoins by itself. SIGTERM or SIGINT stop it and its tasks (a restarted daemon ends any task a crashed run left; the manager starts what should run).
            """)

    @Option(help: "Directory for the node's state (membership, certificates, the manager's database, task files).")
    var dataRoot: String
    @Option(help: "Unix socket for the API (default: <data-root>/meshd.sock).") var socket: String?
    @Option(
        name: [.customShort("H"), .customLong("host")],
        help: "Also serve the API here: unix://PATH (instead of --socket) or tcp://HOST:PORT (needs --tlsverify). Repeatable.")
    var hosts: [String] = []
    @Option(help: "On a manager: rotate the gossip key this often (e.g. 12h, 30m, 45s; 0: only when a node is removed).")
    var gossipKeyRotation = "12h"
    @Flag(help: "Require mutual TLS on tcp:// hosts: clients need a certificate --tlscacert signed (there is no plaintext TCP).")
    var tlsverify = false
    @Option(help: "CA (PEM) that client certificates must chain to.") var tlscacert: String?
    @Option(help: "The API's TLS certificate (PEM).") var tlscert: String?
    @Option(help: "The API's TLS key (PEM).") var tlskey: String?
    @Option(help: "Load balancer: auto (IPVS when the kernel has it), nftables or ipvs.") var lb = "auto"
    @Option(help: "Host name this node reports (default: the machine's).") var hostname: String?
    @Option(help: "Least severe log level written: debug, info, warn, error or fatal (as dockerd's).") var logLevel = "info"
    @Option(help: "Log lines as text or json (one JSON object a line, for a collector).") var logFormat = "text"
    @Option(help: "Serve Prometheus metrics on http://HOST:PORT/metrics (off unless given; e.g. 127.0.0.1:9323).")
    var metricsAddr: String?
    @Option(help: "Serve the read-only cluster page on http://HOST:PORT/ (off unless given; loopback only, e.g. 127.0.0.1:9324).")
    var uiAddr: String?

    /// dockerd's level names, mapped onto swift-log's.
    static func level(_ name: String) -> Logger.Level? {
        switch name.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "warn", "warning": .warning
        case "error": .error
        case "fatal", "panic": .critical
        default: nil
        }
    }
    @Option(
        name: .customLong("registry-mirror"),
        help: "A mirror for docker.io images, http(s)://HOST[:PORT], tried before Docker Hub (dockerd's flag). Repeatable.")
    var registryMirrors: [String] = []
    @Option(
        name: .customLong("insecure-registry"),
        help: "A registry (HOST[:PORT] or a CIDR) reached without verified TLS, then plain HTTP (127.0.0.0/8 always is). Repeatable.")
    var insecureRegistries: [String] = []
    @Flag(
        name: .customLong("no-builtin-images"),
        help:
            "Run busybox, alpine and whoami images as containers from a registry, like any other image, instead of from this host's programs (images.json still applies)."
    )
    var noBuiltinImages = false
    /// Where docker.io is served after the mirrors; tests point it at a dead port so nothing leaves the machine.
    @Option(name: .customLong("registry-hub"), help: .hidden) var registryHub = "https://" + RegistryOptions.dockerHubHost
    @Option(
        name: .customLong("cluster-store"),
        help:
            "Keep the swarm this daemon initialises in etcd, etcd://HOST:PORT[,HOST:PORT…][/PREFIX], so that several managers share it (default: SQLite in the data root, one manager). Managers that join get it from the swarm."
    )
    var clusterStore: String?
    @Option(name: .customLong("leader-ttl"), help: .hidden) var leaderTTL: Int64 = 5
    @Option(name: .customLong("min-cert-expiry"), help: .hidden) var minCertExpiry = "1h"
    @Option(help: "Group of the API socket, a name or gid (default: docker if that group exists, else root's).")
    var group: String?

    func run() async throws {
        guard let level = Self.level(logLevel) else { throw ValidationError("--log-level must be debug, info, warn, error or fatal") }
        guard let format = LogOutput.Format(rawValue: logFormat) else { throw ValidationError("--log-format must be text or json") }
        LoggingSystem.bootstrap { label in LogOutput(label: label, level: level, format: format) }
        let log = Logger(label: "meshd")
        // The child subreaper of its tasks: a TTY exec (`runc exec -d`, MeshRuntime.Subreaper) leaves
        // its process to the daemon, which must wait for its exit code. The reaper collects the
        // orphans that come with it and nobody waits for (a process task's daemonized children, a
        // container init whose `runc run` died); it leaves every child a reaper thread waits for.
        try Subreaper.become()
        OrphanReaper.start()
        let metricsEndpoint = try metricsAddr.map { try Self.hostPort($0, flag: "--metrics-addr") }
        let uiEndpoint = try uiAddr.map { try Self.hostPort($0, flag: "--ui-addr") }
        // The page has no login and no TLS: it must not be reachable from another machine.
        if let ui = uiEndpoint, !["127.0.0.1", "::1", "localhost"].contains(ui.host), !ui.host.hasPrefix("127.") {
            throw ValidationError("--ui-addr must be a loopback address (127.0.0.1, ::1 or localhost): the page has no TLS")
        }
        // One registry for the process, bootstrapped before any component makes its counters.
        let registry = PrometheusCollectorRegistry()
        if metricsEndpoint != nil { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
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
        var unixHost: String?
        var tcpHosts: [(host: String, port: Int)] = []
        for h in hosts {
            if h.hasPrefix("unix://") {
                unixHost = String(h.dropFirst(7))
            } else if h.hasPrefix("tcp://") {
                tcpHosts.append(try Self.hostPort(String(h.dropFirst(6)), flag: "-H tcp://"))
            } else {
                throw ValidationError("-H \(h): give unix://PATH or tcp://HOST:PORT")
            }
        }
        var tls: TLSFiles?
        if !tcpHosts.isEmpty {
            // A plaintext TCP API is root on this node for whoever reaches the port: never offered.
            guard tlsverify else {
                throw ValidationError("-H tcp://… needs --tlsverify: meshd serves the API over TCP only with mutual TLS")
            }
            guard let tlscacert, let tlscert, let tlskey else {
                throw ValidationError("--tlsverify needs --tlscacert, --tlscert and --tlskey")
            }
            tls = TLSFiles(caCertificate: tlscacert, certificate: tlscert, key: tlskey)
        }
        let socketPath = unixHost ?? socket ?? "\(root)/meshd.sock"
        let meshd = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        var options = Daemon.Options(
            dataRoot: root, lb: kind, meshd: Self.executablePath() ?? meshd, hostname: hostname ?? ProcessInfo.processInfo.hostName)
        options.gossipKeyPeriod = try Self.period(gossipKeyRotation)
        for m in registryMirrors {
            if let problem = RegistryEndpoint.validateMirror(m) { throw ValidationError("--registry-mirror: \(problem)") }
        }
        if let problem = RegistryEndpoint.validateMirror(registryHub) { throw ValidationError("--registry-hub: \(problem)") }
        // A CIDR that does not parse would otherwise be ignored: refused at start, as dockerd does.
        for r in insecureRegistries where r.contains("/") && !RegistryOptions.isValidCIDR(r) {
            throw ValidationError("--insecure-registry \(r): not a CIDR (e.g. 10.0.0.0/8) nor HOST[:PORT]")
        }
        options.builtinImages = !noBuiltinImages
        options.registry = RegistryOptions(mirrors: registryMirrors, insecureRegistries: insecureRegistries, dockerHub: registryHub)
        if let clusterStore {
            if let problem = Daemon.problem(clusterStore: clusterStore) { throw ValidationError("--cluster-store: \(problem)") }
            options.clusterStore = clusterStore
        }
        guard (2...60).contains(leaderTTL) else { throw ValidationError("--leader-ttl must be 2 to 60 seconds") }
        options.leaderTTL = leaderTTL
        guard let floor = try? Self.period(minCertExpiry) else { throw ValidationError("--min-cert-expiry must be like 1h, 30m or 45s") }
        options.minimumCertificateExpiry = TimeInterval(floor.components.seconds)
        let daemon = Daemon(options: options)
        try await daemon.resume()
        // APIServer replaces a stale socket itself, and refuses to remove anything that is not a socket.
        let server = try await APIServer.start(socketPath: socketPath, router: APIRouter(backend: daemon), socketGroup: socketGroup)
        var tcpServers: [APIServer] = []
        for (host, port) in tcpHosts {
            do {
                tcpServers.append(try await APIServer.start(host: host, port: port, tls: tls!, router: APIRouter(backend: daemon)))
            } catch {
                for t in tcpServers { await t.stop() }
                await server.stop()
                for t in tcpServers { await t.stop() }
                await daemon.shutdown()
                throw ValidationError("cannot serve the API on tcp://\(addr(host, port)): \(error)")
            }
            log.info("API on tcp://\(addr(host, port)) (mutual TLS)")
        }
        var metrics: HTTPEndpoint?
        if let (host, port) = metricsEndpoint {
            let export = MetricsExport(registry: registry)
            metrics = try await HTTPEndpoint.start(host: host, port: port) { _, uri, _ in
                guard uri == "/metrics" || uri.hasPrefix("/metrics?") else { return .error(.notFound("page not found")) }
                let body = await export.render(daemon)
                return APIResponse(
                    status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: .bytes(body))
            }
            log.info("metrics on http://\(addr(host, metrics!.port))/metrics")
        }
        var ui: HTTPEndpoint?
        if let (host, port) = uiEndpoint {
            let page = ClusterPage(daemon: daemon)
            ui = try await HTTPEndpoint.start(host: host, port: port) { method, uri, headers in await page.handle(method, uri, headers) }
            log.info("cluster page on http://\(addr(host, ui!.port))/")
        }
        log.info("API on unix://\(socketPath) (lb \(kind.rawValue))")
        await Self.waitForTermination()
        log.info("stopping")
        await server.stop()
        await metrics?.stop()
        await ui?.stop()
        await daemon.shutdown()
        unlink(socketPath)
    }

    /// `12h`, `30m`, `45s` (whole numbers); `0` is none.
    static func period(_ text: String) throws -> Duration? {
        if text == "0" { return nil }
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600]
        guard let unit = text.last.flatMap({ units[$0] }), let n = Int64(text.dropLast()), n > 0 else {
            throw ValidationError("--gossip-key-rotation must be like 12h, 30m or 45s, or 0")
        }
        return .seconds(n * unit)
    }

    static func hostPort(_ addr: String, flag: String) throws -> (host: String, port: Int) {
        guard let colon = addr.lastIndex(of: ":"), let port = Int(addr[addr.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("\(flag) must be HOST:PORT, e.g. 127.0.0.1:9323")
        }
        return (String(addr[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
    }

    func addr(_ host: String, _ port: Int) -> String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

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
