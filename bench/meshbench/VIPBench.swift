import ArgumentParser
import Foundation
import MeshDataplane
import MeshKernel
import MeshTestbed

/// wrk from a client task on node 1 to one `meshd whoami` backend on node 2, three ways over the
/// same overlay: through the service VIP (meshd's balancer), straight to the backend, and through
/// haproxy (TCP mode) running in a task of its own on node 1. Keep-alive and a new connection per
/// request (`Connection: close`).
struct VIPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vip",
        abstract: "VIP throughput and latency (wrk): meshd's VIP vs straight to the backend vs haproxy in TCP mode.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Seconds per wrk run.") var duration = 5
    @Option(
        parsing: .upToNextOption,
        help: "wrk connection counts, a row each (the first is the plotted one).")
    var connections: [Int] = [16, 64, 256]
    @Option(help: "Load balancer: nftables or ipvs.") var lb = "nftables"
    @Option(
        help:
            "wrk's request timeout in seconds: a request without an answer by then is an error (and fails the run); wrk's own 2 s counted a loaded debug build's p99 as errors."
    )
    var timeout = 10
    @Flag(help: "Print every wrk run with its errors and the TIME_WAIT sockets on each side.") var verbose = false
    @Flag(
        help: ArgumentHelp(
            "Leave the client namespaces' ephemeral ports at the kernel's defaults (diagnosis: shows why they fail).",
            visibility: .hidden))
    var defaultPortBudget = false

    struct Result {
        var rps: Double
        var p50: Double
        var p99: Double
        var requests: Int
        /// wrk's socket errors (connect, read, write, timeout) and non-2xx/3xx answers.
        var errors: WrkErrors
    }
    struct WrkErrors: Equatable {
        var connect = 0, read = 0, write = 0, timeout = 0, status = 0
        var total: Int { connect + read + write + timeout + status }
        var description: String { "connect \(connect), read \(read), write \(write), timeout \(timeout), non-2xx \(status)" }
        static func + (a: WrkErrors, b: WrkErrors) -> WrkErrors {
            WrkErrors(
                connect: a.connect + b.connect, read: a.read + b.read, write: a.write + b.write, timeout: a.timeout + b.timeout,
                status: a.status + b.status)
        }
    }
    enum Side: String, CaseIterable { case vip, direct, haproxy }

    /// Every namespace that opens connections (the client task, and haproxy towards the backend)
    /// gets the same source-port budget: TIME_WAIT reuse for outgoing connections (after 1 s) and
    /// a wide range; the client's is split into one range of 21,504 ports per side. With the
    /// kernel's defaults (28,232 ports, 60 s TIME_WAIT, `tcp_tw_reuse=2`: loopback only) a
    /// connection-per-request run leaves a TIME_WAIT socket for about every second request on the
    /// client (wrk closes as soon as it has read the answer, racing whoami's close) and for nine in
    /// ten on haproxy's side towards the backend, so a side could sustain only ~900 (client) or
    /// ~500 (haproxy) new connections a second before connect() failed, and wrk drops a connection
    /// whose connect fails. Disjoint client ranges because the VIP keeps the client's address: a
    /// connection through the VIP and one straight to the backend from the same client port are the
    /// same 4-tuple at the backend and in its node's conntrack, so no side starts on the other
    /// sides' TIME_WAIT entries.
    static let tcpReuse = ("net.ipv4.tcp_tw_reuse", "1")
    static let wholeRange = "1024 65535"
    static func clientPorts(_ side: Side) -> String {
        switch side {
        case .vip: return "1024 22527"
        case .direct: return "22528 44031"
        case .haproxy: return "44032 65535"
        }
    }

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        for tool in ["wrk", "haproxy"] where (try? Exec.check(["sh", "-c", "command -v \(tool)"])) == nil {
            throw ValidationError("\(tool) is missing: scripts/setup installs it")
        }
        guard !connections.isEmpty, connections.allSatisfy({ $0 >= 2 }) else {
            throw ValidationError("--connections: at least one count, each at least 2 (wrk runs 2 threads)")
        }
        let rounds = options.quick ? 1 : options.rounds
        let seconds = options.quick ? 1 : duration
        let lab = try await DataplaneLab.build(tag: "meshbench", nodes: 2)
        defer { lab.destroy() }
        let dir = lab.stateDirectory
        let pidFile = "\(dir)/haproxy.pid"
        do {
            let backend = IPAddress("10.20.0.11")!, proxy = IPAddress("10.20.0.6")!
            let tasks: [DataplaneLab.TaskSpec] = [
                .init(id: "client", service: nil, node: 1, addresses: [("web", DataplaneScenario.clientTask)]),
                .init(id: "haproxy", service: nil, node: 1, addresses: [("web", proxy)]),
                .init(id: "w1", service: "whoami", node: 2, addresses: [("web", backend)]),
            ]
            var clientNS: NetworkNamespace?
            for t in tasks {
                let ns = try await lab.createTask(t.id)
                // Only namespaces this benchmark made: the client side of every path.
                if t.id != "w1", !defaultPortBudget {
                    try ns.setSysctl(Self.tcpReuse.0, Self.tcpReuse.1)
                    try ns.setSysctl("net.ipv4.ip_local_port_range", Self.wholeRange)
                }
                if t.id == "client" { clientNS = ns }
            }
            let service = DataplaneLab.ServiceDef(
                id: "whoami", name: "whoami", vips: [.init(network: "web", address: DataplaneScenario.vip)])
            try lab.applyAll(lab.states(networks: [DataplaneScenario.web], tasks: tasks, services: [service]), lb: lb)
            try lab.startWhoami(task: "w1", name: "w1")

            let config = """
                global
                  maxconn 8192
                defaults
                  mode tcp
                  timeout connect 2s
                  timeout client 30s
                  timeout server 30s
                frontend vip
                  bind \(proxy):8080
                  default_backend whoami
                backend whoami
                  server w1 \(backend):8000

                """
            try config.write(toFile: "\(dir)/haproxy.cfg", atomically: true, encoding: .utf8)
            // -D: haproxy forks and writes its pid file, then the command returns.
            let status = try Self.spawnAndWait([
                "/usr/sbin/ip", "netns", "exec", lab.taskNamespace("haproxy"),
                "haproxy", "-D", "-f", "\(dir)/haproxy.cfg", "-p", pidFile,
            ])
            guard status == 0 else { throw ValidationError("haproxy did not start (status \(status))") }
            defer { Self.killPidFile(pidFile) }

            let urls: [Side: String] = [
                .vip: "http://\(DataplaneScenario.vip):8000/", .direct: "http://\(backend):8000/",
                .haproxy: "http://\(proxy):8080/",
            ]
            // Every path must answer before it is timed. haproxy -D returns once it has forked, and on a
            // loaded machine its worker may not serve yet: each path gets up to 10 s.
            for side in Side.allCases { try Self.waitUntilAnswering(lab, url: urls[side]!, side: side) }
            let budget =
                defaultPortBudget
                ? "kernel default ports"
                : "tcp_tw_reuse=1, ip_local_port_range "
                    + Side.allCases.map { "\($0.rawValue) \(Self.clientPorts($0))" }.joined(separator: ", ")
                    + " (haproxy's own: \(Self.wholeRange))"
            print(
                "vip: wrk -t2 -c\(connections.map(String.init).joined(separator: "/")) for \(seconds) s per run, "
                    + "client task node1 → whoami on node2 over VXLAN, lb \(lb), \(rounds) round(s); client side: \(budget)"
            )
            var samples: [String: [Result]] = [:]
            let modes = ["keepalive", "close"]
            for round in 0..<rounds {
                // Rotate the order so no side always runs first.
                let order = Side.allCases.indices.map { Side.allCases[($0 + round) % Side.allCases.count] }
                for c in connections {
                    for mode in modes {
                        for side in order {
                            if !defaultPortBudget { try clientNS!.setSysctl("net.ipv4.ip_local_port_range", Self.clientPorts(side)) }
                            let clashes = verbose ? conntrackFailures(lab) : 0
                            let r = try wrk(lab, url: urls[side]!, connections: c, close: mode == "close", seconds: seconds)
                            samples[Self.key(c, mode, side), default: []].append(r)
                            if verbose {
                                print(
                                    "  round \(round) "
                                        + "-c\(c) \(mode) \(side.rawValue)".padding(toLength: 25, withPad: " ", startingAt: 0)
                                        + String(format: "%9.0f req/s %8d requests  ", r.rps, r.requests)
                                        + "errors: \(r.errors.description); TIME_WAIT " + timeWait(lab)
                                        + "; node1 sandbox conntrack insert_failed +\(conntrackFailures(lab) - clashes)")
                            }
                        }
                    }
                }
            }
            print("")
            print("                              req/s        p50 ms     p99 ms    vs direct   vs haproxy   errors")
            var json = BenchResults(
                "vip", quick: options.quick,
                [
                    "rounds": rounds, "seconds": seconds, "lb": lb, "timeout_s": timeout, "connections": connections[0],
                    "connection_counts": connections,
                    "port_budget": defaultPortBudget ? "default" : budget,
                ])
            var failures: [String] = []
            for c in connections {
                // Every wrk run's figures, for the report's plot: samples[mode][side] = [{rps, p50_ms, p99_ms}];
                // the first connection count keeps the unprefixed keys the report plots.
                let prefix = c == connections[0] ? "" : "c\(c)_"
                var runs: [String: [String: [[String: Double]]]] = [:]
                for mode in modes {
                    for side in Side.allCases {
                        runs[mode, default: [:]][side.rawValue] = (samples[Self.key(c, mode, side)] ?? []).map {
                            [
                                "rps": $0.rps, "p50_ms": $0.p50, "p99_ms": $0.p99, "requests": Double($0.requests),
                                "errors": Double($0.errors.total),
                            ]
                        }
                    }
                }
                json["\(prefix)samples"] = runs
                for mode in modes {
                    var med: [Side: Result] = [:]
                    for side in Side.allCases {
                        let xs = samples[Self.key(c, mode, side)] ?? []
                        med[side] = Result(
                            rps: median(xs.map(\.rps)), p50: median(xs.map(\.p50)), p99: median(xs.map(\.p99)),
                            requests: xs.map(\.requests).reduce(0, +), errors: xs.map(\.errors).reduce(WrkErrors(), +))
                    }
                    for side in Side.allCases {
                        let r = med[side]!
                        let label = "-c\(c) \(mode) \(side.rawValue)".padding(toLength: 25, withPad: " ", startingAt: 0)
                        print(
                            "  " + label
                                + String(
                                    format: "%10.0f   %8.3f   %8.3f     %5.2fx      %5.2fx    %6d", r.rps,
                                    r.p50, r.p99, r.rps / med[.direct]!.rps, r.rps / med[.haproxy]!.rps, r.errors.total))
                        json["\(prefix)\(mode)_\(side.rawValue)_rps"] = r.rps
                        json["\(prefix)\(mode)_\(side.rawValue)_p50_ms"] = r.p50
                        json["\(prefix)\(mode)_\(side.rawValue)_p99_ms"] = r.p99
                        json["\(prefix)\(mode)_\(side.rawValue)_errors"] = r.errors.total
                        json.metric("-c\(c) \(mode) \(side.rawValue): req/s", r.rps, "req/s")
                        json.metric("-c\(c) \(mode) \(side.rawValue): p99", r.p99, "ms")
                        json.metric(
                            "-c\(c) \(mode) \(side.rawValue): socket errors and non-2xx", Double(r.errors.total), "", goal: "==", 0)
                        if r.errors.total > 0 {
                            failures.append("-c\(c) \(mode) \(side.rawValue): \(r.errors.description) in \(r.requests) requests")
                        }
                    }
                    json["\(prefix)\(mode)_vip_vs_direct"] = med[.vip]!.rps / med[.direct]!.rps
                    json["\(prefix)\(mode)_vip_vs_haproxy"] = med[.vip]!.rps / med[.haproxy]!.rps
                    json.metric("-c\(c) \(mode): VIP / direct (req/s)", med[.vip]!.rps / med[.direct]!.rps, "×", goal: ">=", 0.95)
                    json.metric("-c\(c) \(mode): VIP / haproxy (req/s)", med[.vip]!.rps / med[.haproxy]!.rps, "×", goal: ">", 1)
                }
            }
            print("  (medians; errors summed over the rounds; goal: VIP >= 0.95x direct and ahead of haproxy, no errors)")
            json["failures"] = failures
            try json.write(to: options.json)
            // A side that lost requests did not do the same work: its rate is no result.
            if !failures.isEmpty {
                throw ValidationError("wrk saw errors, so these rates are not comparable:\n  " + failures.joined(separator: "\n  "))
            }
        }
    }

    static func key(_ c: Int, _ mode: String, _ side: Side) -> String { "\(c)/\(mode)/\(side.rawValue)" }

    /// conntrack's insert_failed counter of node 1's sandbox (the client side's balancer), summed over CPUs.
    func conntrackFailures(_ lab: DataplaneLab) -> Int {
        guard let sandbox = lab.sandboxes(1).first,
            let out = try? Exec.run(["ip", "netns", "exec", sandbox, "cat", "/proc/net/stat/nf_conntrack"]).stdout
        else { return 0 }
        let lines = out.split(separator: "\n").map { $0.split(separator: " ") }
        guard let header = lines.first, let column = header.firstIndex(of: "insert_failed") else { return 0 }
        return lines.dropFirst().compactMap { $0.count > column ? Int($0[column], radix: 16) : nil }.reduce(0, +)
    }

    /// TIME_WAIT sockets in the client, haproxy and backend namespaces (for --verbose).
    func timeWait(_ lab: DataplaneLab) -> String {
        ["client", "haproxy", "w1"].map { task in
            let out = (try? Exec.run(["ip", "netns", "exec", lab.taskNamespace(task), "ss", "-Htan", "state", "time-wait"]))?.stdout ?? ""
            return "\(task) \(out.split(separator: "\n").count)"
        }.joined(separator: ", ")
    }

    static func waitUntilAnswering(_ lab: DataplaneLab, url: String, side: Side) throws {
        let deadline = Date().addingTimeInterval(10)
        while true {
            let last = try Exec.run([
                "ip", "netns", "exec", lab.taskNamespace("client"), "curl", "-sS", "--max-time", "2",
                "-H", "Connection: close", url,
            ])
            if last.succeeded, last.stdout.hasPrefix("I'm w1") { return }
            if Date() >= deadline {
                throw ValidationError(
                    "\(side.rawValue) does not answer \(url) within 10 s: curl exit \(last.status), "
                        + "\(last.stderr.trimmingCharacters(in: .whitespacesAndNewlines)), body \(last.stdout.debugDescription)")
            }
            usleep(250_000)
        }
    }

    /// One wrk run from the client task with its rate, latencies and every error wrk counted.
    func wrk(_ lab: DataplaneLab, url: String, connections: Int, close: Bool, seconds: Int) throws -> Result {
        var argv = [
            "ip", "netns", "exec", lab.taskNamespace("client"), "wrk", "-t2", "-c\(connections)", "-d\(seconds)s", "--timeout",
            "\(timeout)s", "--latency",
        ]
        if close { argv += ["-H", "Connection: close"] }
        let out = try Exec.check(argv + [url])
        guard let rps = Self.number(after: "Requests/sec:", in: out) else { throw ValidationError("wrk printed no rate:\n\(out)") }
        return Result(
            rps: rps, p50: Self.latency("50%", out) ?? 0, p99: Self.latency("99%", out) ?? 0,
            requests: Self.requests(out) ?? 0, errors: Self.errors(out))
    }

    /// "  51234 requests in 5.00s, 12.3MB read"
    static func requests(_ text: String) -> Int? {
        guard let line = text.split(separator: "\n").first(where: { $0.contains(" requests in ") }) else { return nil }
        return line.split(separator: " ").first.flatMap { Int($0) }
    }

    /// "  Socket errors: connect 0, read 3, write 0, timeout 0" and "  Non-2xx or 3xx responses: 5".
    static func errors(_ text: String) -> WrkErrors {
        var e = WrkErrors()
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("Socket errors:") {
                let fields = t.dropFirst("Socket errors:".count).split(separator: ",").map {
                    $0.split(separator: " ").map(String.init)
                }
                for f in fields where f.count == 2 {
                    let n = Int(f[1]) ?? 0
                    switch f[0] {
                    case "connect": e.connect = n
                    case "read": e.read = n
                    case "write": e.write = n
                    case "timeout": e.timeout = n
                    default: break
                    }
                }
            } else if t.hasPrefix("Non-2xx or 3xx responses:") {
                e.status = Int(t.split(separator: " ").last ?? "") ?? 0
            }
        }
        return e
    }

    static func number(after label: String, in text: String) -> Double? {
        guard let line = text.split(separator: "\n").first(where: { $0.contains(label) }) else { return nil }
        return line.split(separator: " ").last.flatMap { Double($0) }
    }

    /// wrk's latency distribution line ("     99%    1.23ms") in milliseconds.
    static func latency(_ pct: String, _ text: String) -> Double? {
        guard let line = text.split(separator: "\n").first(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix(pct) }),
            let value = line.split(separator: " ").last
        else { return nil }
        let units: [(String, Double)] = [("us", 1e-3), ("ms", 1), ("s", 1e3), ("m", 6e4)]
        for (u, scale) in units where value.hasSuffix(u) { return Double(value.dropLast(u.count)).map { $0 * scale } }
        return nil
    }

    /// posix_spawn + waitpid, output to /dev/null: a daemonising child must not be left holding a
    /// pipe of ours, and Foundation's Process did not notice this child's exit here.
    static func spawnAndWait(_ argv: [String]) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in Int32(0)...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        var cargs = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, &cargs, environ)
        guard rc == 0 else { throw ValidationError("posix_spawn \(argv[0]): errno \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    static func killPidFile(_ path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        for pid in text.split(whereSeparator: \.isWhitespace).compactMap({ Int32($0) }) where pid > 1 { kill(pid, SIGKILL) }
    }
}
