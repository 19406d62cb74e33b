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
    @Option(help: "wrk connections.") var connections = 16
    @Option(help: "Load balancer: nftables or ipvs.") var lb = "nftables"

    struct Result {
        var rps: Double
        var p50: Double
        var p99: Double
    }
    enum Side: String, CaseIterable { case vip, direct, haproxy }

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        for tool in ["wrk", "haproxy"] where (try? Exec.check(["sh", "-c", "command -v \(tool)"])) == nil {
            throw ValidationError("\(tool) is missing: scripts/setup installs it")
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
            for t in tasks { try await lab.createTask(t.id) }
            let service = DataplaneLab.ServiceDef(
                id: "whoami", name: "whoami", vips: [.init(network: "web", address: DataplaneScenario.vip)])
            try lab.applyAll(lab.states(networks: [DataplaneScenario.web], tasks: tasks, services: [service]), lb: lb)
            try lab.startWhoami(task: "w1", name: "w1")

            let config = """
                global
                  maxconn 4096
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
            print(
                "vip: wrk -c\(connections) for \(seconds) s per run, client task node1 → whoami on node2 over VXLAN, lb \(lb), \(rounds) round(s)"
            )
            var samples: [String: [Result]] = [:]
            for round in 0..<rounds {
                // Rotate the order so no side always runs first.
                let order = Side.allCases.indices.map { Side.allCases[($0 + round) % Side.allCases.count] }
                for close in [false, true] {
                    for side in order {
                        let r = try wrk(lab, url: urls[side]!, close: close, seconds: seconds)
                        samples["\(side.rawValue)/\(close ? "close" : "keepalive")", default: []].append(r)
                    }
                }
            }
            print("")
            print("                         req/s        p50 ms     p99 ms    vs direct   vs haproxy")
            var json = BenchResults(
                "vip", quick: options.quick, ["rounds": rounds, "seconds": seconds, "lb": lb, "connections": connections])
            // Every wrk run's figures, for the report's plot: samples[mode][side] = [{rps, p50_ms, p99_ms}].
            var runs: [String: [String: [[String: Double]]]] = [:]
            for mode in ["keepalive", "close"] {
                for side in Side.allCases {
                    runs[mode, default: [:]][side.rawValue] = (samples["\(side.rawValue)/\(mode)"] ?? []).map {
                        ["rps": $0.rps, "p50_ms": $0.p50, "p99_ms": $0.p99]
                    }
                }
            }
            json["samples"] = runs
            for mode in ["keepalive", "close"] {
                let med = Side.allCases.reduce(into: [Side: Result]()) { acc, side in
                    let xs = samples["\(side.rawValue)/\(mode)"] ?? []
                    acc[side] = Result(rps: median(xs.map(\.rps)), p50: median(xs.map(\.p50)), p99: median(xs.map(\.p99)))
                }
                for side in Side.allCases {
                    let r = med[side]!
                    let label = "\(mode) \(side.rawValue)".padding(toLength: 20, withPad: " ", startingAt: 0)
                    print(
                        "  " + label
                            + String(
                                format: "%10.0f   %8.3f   %8.3f     %5.2fx      %5.2fx", r.rps,
                                r.p50, r.p99, r.rps / med[.direct]!.rps, r.rps / med[.haproxy]!.rps))
                    json["\(mode)_\(side.rawValue)_rps"] = r.rps
                    json["\(mode)_\(side.rawValue)_p50_ms"] = r.p50
                    json["\(mode)_\(side.rawValue)_p99_ms"] = r.p99
                    json.metric("\(mode) \(side.rawValue): req/s", r.rps, "req/s")
                    json.metric("\(mode) \(side.rawValue): p99", r.p99, "ms")
                }
                json["\(mode)_vip_vs_direct"] = med[.vip]!.rps / med[.direct]!.rps
                json["\(mode)_vip_vs_haproxy"] = med[.vip]!.rps / med[.haproxy]!.rps
                json.metric("\(mode): VIP / direct (req/s)", med[.vip]!.rps / med[.direct]!.rps, "×", goal: ">=", 0.95)
                json.metric("\(mode): VIP / haproxy (req/s)", med[.vip]!.rps / med[.haproxy]!.rps, "×", goal: ">", 1)
            }
            print("  (medians; goal: VIP >= 0.95x direct and ahead of haproxy)")
            try json.write(to: options.json)
        }
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

    /// One wrk run from the client task; fails on socket errors or non-2xx answers.
    func wrk(_ lab: DataplaneLab, url: String, close: Bool, seconds: Int) throws -> Result {
        var argv = ["ip", "netns", "exec", lab.taskNamespace("client"), "wrk", "-t2", "-c\(connections)", "-d\(seconds)s", "--latency"]
        if close { argv += ["-H", "Connection: close"] }
        let out = try Exec.check(argv + [url])
        if out.contains("Non-2xx") { throw ValidationError("wrk \(url): non-2xx answers\n\(out)") }
        if close == false, out.contains("Socket errors") { throw ValidationError("wrk \(url): socket errors\n\(out)") }
        guard let rps = Self.number(after: "Requests/sec:", in: out) else { throw ValidationError("wrk printed no rate:\n\(out)") }
        return Result(rps: rps, p50: Self.latency("50%", out) ?? 0, p99: Self.latency("99%", out) ?? 0)
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
