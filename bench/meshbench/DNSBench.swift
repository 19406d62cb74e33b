import ArgumentParser
import Foundation
import MeshDNS
import MeshKernel
import MeshTestbed
#if canImport(Glibc)
    import Glibc
#endif

/// dnsperf against meshd's embedded DNS server and against dnsmasq serving the same names from a
/// hosts file, each listening on 127.0.0.11:53 in its own namespace, alternating every round.
struct DNSBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns",
        abstract: "Queries per second and p99 latency: meshd's DNS server vs dnsmasq (--addn-hosts), same names.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Names served.") var names = 10_000
    @Option(help: "Seconds per dnsperf run at full rate.") var seconds = 5
    @Option(help: "Event loop threads for meshd's server.") var threads = 2
    @Option(help: "UDP sockets (SO_REUSEPORT) in meshd's namespace.") var sockets = 2
    // Off by default: on a shared machine a pinned server cannot move away from a core that
    // someone else's build is using, which costs more than the pinning saves.
    @Flag(help: "Pin both servers to CPU 0 and dnsperf to CPU 1 (for a quiet machine).")
    var pin = false
    @Option(help: "Queries dnsperf keeps outstanding.") var outstanding = 200
    @Option(help: "Offered rate for the latency runs (default: half of meshd's measured peak).") var latencyRate: Int?

    struct Side {
        var qps: [Double] = []
        var p99: Double = 0
        var p50: Double = 0
    }

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        let n = options.quick ? 1_000 : names
        let rounds = options.quick ? 1 : options.rounds
        let runSeconds = options.quick ? 1 : seconds
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshbench-dns-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let address = { (i: Int) in IPAddress.v4(0x0A40_0000 | UInt32(i + 1)) }
        let hostsFile = dir.appendingPathComponent("hosts").path
        let queryFile = dir.appendingPathComponent("queries").path
        try (0..<n).map { "\(address($0)) task-\($0)" }.joined(separator: "\n").appending("\n").write(
            toFile: hostsFile, atomically: true, encoding: .utf8)
        try (0..<n).map { "task-\($0) A" }.joined(separator: "\n").appending("\n").write(
            toFile: queryFile, atomically: true, encoding: .utf8)
        let emptyHosts = dir.appendingPathComponent("empty").path
        try "".write(toFile: emptyHosts, atomically: true, encoding: .utf8)

        let group = NamespaceGroup(tag: "meshbench")
        defer { group.destroy() }
        let meshNS = try group.create("meshdns")
        let dnsmasqNS = try group.create("dnsmasq")
        try await NetlinkHandle(namespace: dnsmasqNS).linkSetUp("lo")

        // meshd: memory for the names (this process's RSS before and after loading them), then the server.
        let rssBefore = Self.rss(getpid())
        let store = DNSRecordStore()
        store.update { index in
            index.upsert(DNSNetwork(id: "n1", name: "bench"))
            for i in 0..<n { index.upsert(DNSTask(id: "t\(i)", name: "task-\(i)", addresses: ["n1": [address(i)]])) }
        }
        let meshBytes = Double(Self.rss(getpid()) - rssBefore)
        let server = try await DNSServer.start(
            DNSServer.Configuration(forwarding: .init(upstreams: []), udpSocketsPerNamespace: sockets),
            store: store, threads: threads)
        try await server.attach(meshNS, networks: ["n1"], nodeResolvConf: ResolvConf.Contents())
        let pinned = pin && sysconf(Int32(_SC_NPROCESSORS_ONLN)) >= 2
        if pinned { try Exec.check(["taskset", "-a", "-p", "-c", "0", String(getpid())]) }

        // dnsmasq: its RSS with the names minus its RSS with none.
        var daemons: [Int32] = []
        defer { for pid in daemons { Self.stop(pid) } }
        let emptyPid = try Self.startDnsmasq(in: dnsmasqNS, hosts: emptyHosts, dir: dir, tag: "empty", pinned: pinned)
        daemons.append(emptyPid)
        try await Task.sleep(for: .milliseconds(300))
        let emptyRSS = Self.rss(emptyPid)
        Self.stop(emptyPid)
        daemons.removeAll()
        let pid = try Self.startDnsmasq(in: dnsmasqNS, hosts: hostsFile, dir: dir, tag: "full", pinned: pinned)
        daemons.append(pid)
        try await Task.sleep(for: .milliseconds(300))
        let dnsmasqBytes = Double(Self.rss(pid) - emptyRSS)

        print(
            "dns: \(n) names, dnsperf \(runSeconds) s per run, \(rounds) round(s); meshd \(threads) loop(s) × \(sockets) UDP socket(s); dnsmasq single-threaded; "
                + (pinned ? "servers on CPU 0, dnsperf on CPU 1" : "not pinned"))
        var mesh = Side(), masq = Side()
        for round in 0..<rounds {
            for side in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                let ns = side == 0 ? meshNS : dnsmasqNS
                let r = try Self.dnsperf(ns, queryFile, seconds: runSeconds, outstanding: outstanding, rate: nil, pinned: pinned)
                if side == 0 { mesh.qps.append(r.qps) } else { masq.qps.append(r.qps) }
            }
            print(String(format: "  round %d: meshd %8.0f qps   dnsmasq %8.0f qps", round + 1, mesh.qps.last!, masq.qps.last!))
        }
        let meshPeak = median(mesh.qps), masqPeak = median(masq.qps)
        // Latency at half of meshd's peak, the same offered rate for both.
        let rate = latencyRate ?? max(100, Int(meshPeak / 2))
        for side in [0, 1] {
            let r = try Self.dnsperf(
                side == 0 ? meshNS : dnsmasqNS, queryFile, seconds: options.quick ? 1 : 3,
                outstanding: outstanding, rate: rate, verbose: true, pinned: pinned)
            if side == 0 {
                mesh.p99 = r.p99
                mesh.p50 = r.p50
            } else {
                masq.p99 = r.p99
                masq.p50 = r.p50
            }
        }
        await server.shutdown()

        print("")
        print("                              meshd        dnsmasq     ratio (meshd / dnsmasq)")
        print(
            String(format: "  peak qps (median)     %10.0f     %10.0f     %.2fx  (goal >= 1.0x)", meshPeak, masqPeak, meshPeak / masqPeak))
        print(String(format: "  p50 at %6d qps      %8.3f ms    %8.3f ms", rate, mesh.p50 * 1e3, masq.p50 * 1e3))
        print(String(format: "  p99 at %6d qps      %8.3f ms    %8.3f ms   (goal meshd <= 1 ms)", rate, mesh.p99 * 1e3, masq.p99 * 1e3))
        print(
            String(
                format: "  memory per 10k names  %8.2f MiB    %8.2f MiB   (RSS delta of loading the names)",
                meshBytes / Double(n) * 10_000 / 1_048_576, dnsmasqBytes / Double(n) * 10_000 / 1_048_576))
        var result = BenchResults(
            "dns", quick: options.quick,
            [
                "names": n, "rounds": rounds, "seconds": runSeconds, "threads": threads, "sockets": sockets, "pinned": pinned,
                "meshd_qps": meshPeak, "dnsmasq_qps": masqPeak, "ratio": meshPeak / masqPeak,
                // Every round's peak, for the report's plot.
                "meshd_qps_samples": mesh.qps, "dnsmasq_qps_samples": masq.qps,
                "rate_for_latency": rate, "meshd_p50_s": mesh.p50, "dnsmasq_p50_s": masq.p50,
                "meshd_p99_s": mesh.p99, "dnsmasq_p99_s": masq.p99,
                "meshd_bytes_per_10k": meshBytes / Double(n) * 10_000,
                "dnsmasq_bytes_per_10k": dnsmasqBytes / Double(n) * 10_000,
            ])
        result.metric("peak qps: meshd", meshPeak, "qps")
        result.metric("peak qps: dnsmasq", masqPeak, "qps")
        result.metric("peak qps meshd / dnsmasq", meshPeak / masqPeak, "×", goal: ">=", 1)
        result.metric("p99 at \(rate) qps: meshd", mesh.p99 * 1e3, "ms", goal: "<=", 1)
        result.metric("p99 at \(rate) qps: dnsmasq", masq.p99 * 1e3, "ms")
        result.metric("memory per 10k names: meshd", meshBytes / Double(n) * 10_000 / 1_048_576, "MiB")
        result.metric("memory per 10k names: dnsmasq", dnsmasqBytes / Double(n) * 10_000 / 1_048_576, "MiB")
        try result.write(to: options.json)
    }

    struct PerfResult {
        var qps: Double
        var p50: Double
        var p99: Double
    }

    /// One dnsperf run inside `ns` against 127.0.0.11; fails unless (nearly) every query got NOERROR.
    static func dnsperf(
        _ ns: NetworkNamespace, _ queries: String, seconds: Int, outstanding: Int, rate: Int?,
        verbose: Bool = false, pinned: Bool
    ) throws -> PerfResult {
        var argv =
            ["ip", "netns", "exec", ns.name!] + (pinned ? ["taskset", "-c", "1"] : []) + [
                "dnsperf", "-s", "127.0.0.11", "-d", queries, "-l", String(seconds),
                "-q", String(outstanding), "-c", "4", "-t", "2",
            ]
        if let rate { argv += ["-Q", String(rate)] }
        let out: String
        if verbose {
            // Every query's latency, written straight to a file: piping 100k lines into this
            // process would steal CPU from the server being measured.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("meshbench-dnsperf-\(getpid()).txt").path
            defer { try? FileManager.default.removeItem(atPath: file) }
            let quoted = (argv.dropFirst(4) + ["-v"]).joined(separator: " ")  // after "ip netns exec NS"
            try Exec.check(Array(argv.prefix(4)) + ["sh", "-c", "\(quoted) > \(file)"])
            out = try String(contentsOfFile: file, encoding: .utf8)
        } else {
            out = try Exec.check(argv)
        }
        // The statistics follow the verbose per-query lines ("> NOERROR task-1 A 0.000123").
        let stats = out.range(of: "Statistics:").map { out[$0.upperBound...] } ?? out[...]
        func number(after label: String) -> Double? {
            guard let r = stats.range(of: label) else { return nil }
            return Double(stats[r.upperBound...].drop { $0 == " " }.prefix { $0.isNumber || $0 == "." })
        }
        guard let qps = number(after: "Queries per second:"), let sent = number(after: "Queries sent:"),
            let completed = number(after: "Queries completed:"), sent > 0
        else {
            throw ValidationError("dnsperf printed no statistics:\n\(out)")
        }
        let noError = number(after: "NOERROR ") ?? 0
        guard completed / sent > 0.99, noError / completed > 0.99 else {
            throw ValidationError("\(ns): only \(Int(completed))/\(Int(sent)) queries completed, \(Int(noError)) NOERROR")
        }
        var latencies: [Double] = []
        if verbose {
            // "> NOERROR task-1 A 0.000123"
            for line in out.split(separator: "\n") where line.hasPrefix(">") {
                if let last = line.split(separator: " ").last, let v = Double(last) { latencies.append(v) }
            }
            latencies.sort()
        }
        func pct(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        return PerfResult(qps: qps, p50: pct(0.50), p99: pct(0.99))
    }

    static func startDnsmasq(in ns: NetworkNamespace, hosts: String, dir: URL, tag: String, pinned: Bool) throws -> Int32 {
        let pidFile = dir.appendingPathComponent("dnsmasq-\(tag).pid").path
        let argv =
            (pinned ? ["taskset", "-c", "0"] : []) + [
                "dnsmasq", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--addn-hosts=\(hosts)",
                "--listen-address=127.0.0.11", "--bind-interfaces", "--pid-file=\(pidFile)", "--user=root", "--port=53",
            ]
        // Through sh with stdio closed: the daemon must hold none of Exec's pipes.
        try Exec.check(["ip", "netns", "exec", ns.name!, "sh", "-c", argv.joined(separator: " ") + " </dev/null >/dev/null 2>&1"])
        let text = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = Int32(text), pid > 1 else { throw ValidationError("dnsmasq wrote no pid") }
        return pid
    }

    static func stop(_ pid: Int32) {
        guard kill(pid, SIGTERM) == 0 else { return }
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(10_000) }
    }

    /// Resident set size in bytes, from /proc.
    static func rss(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return 0
    }
}
