import ArgumentParser
import Foundation
import MeshTestbed

/// What a manager's cost does as the store grows (issue 13): one real daemon, the only manager of a
/// one-node swarm, on each store side by side in one run (SQLite, and a one-member etcd in the node's
/// namespace). For each size it holds that many services (no replicas: a task would need a namespace
/// each, and the store's cost is the question) and measures
///
/// - `service create` latency: `POST /services/create` on the docker API socket, timed by curl, each
///   sent once the manager is idle again (a user's one create on a big swarm);
/// - idle CPU: the daemon's user + system time over a window in which nothing changes.
///
/// The services are put there through the same API (one curl, keep-alive, one request after the
/// other), and the time that took is printed too: it is what a script creating them would wait.
/// Goals (issue 13): the largest size within 1.5× of the smallest on both figures, create < 20 ms on etcd.
struct ManagerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manager",
        abstract: "service create latency and idle manager CPU at a small and a large store, SQLite and etcd side by side.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Service counts (the first and the last are compared).") var sizes = "100,1000"
    @Option(help: "Creates timed per size and store.") var creates = 21
    @Option(help: "Idle window per size and store, seconds.") var idle = 10.0

    struct Figures {
        var seed: Double = 0
        /// How many creates `seed` took.
        var seeded = 0
        var create: [Double] = []
        /// Fraction of one core.
        var idleCPU: Double = 0
    }

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        let counts = options.quick ? [20, 200] : sizes.split(separator: ",").compactMap { Int($0) }
        guard counts.count >= 2, counts.allSatisfy({ $0 >= 1 && $0 <= 100_000 }), counts == counts.sorted() else {
            throw ValidationError("--sizes: at least two counts in increasing order, each 1…100000")
        }
        let timed = options.quick ? 5 : creates
        let window = options.quick ? 3.0 : idle
        print("manager: one meshd manager, services with no replicas; \(timed) creates and a \(window) s idle window per size and store")
        var figures: [String: [Int: Figures]] = [:]
        for store in ["sqlite", "etcd"] {
            figures[store] = try await measure(store: store, counts: counts, creates: timed, window: window)
        }

        let small = counts.first!, large = counts.last!
        var out = BenchResults("manager", quick: options.quick, ["sizes": counts, "creates": timed, "idle_window_s": window])
        for store in ["sqlite", "etcd"] {
            let s = figures[store]![small]!, l = figures[store]![large]!
            let createRatio = median(l.create) / max(median(s.create), 1e-6)
            let cpuRatio = l.idleCPU / max(s.idleCPU, 1e-4)
            print(
                String(
                    format: "%@: create p50 %.1f ms at %d, %.1f ms at %d (%.2f×)   idle CPU %.2f%% at %d, %.2f%% at %d (%.2f×)", store,
                    median(s.create) * 1e3, small, median(l.create) * 1e3, large, createRatio, s.idleCPU * 100, small, l.idleCPU * 100,
                    large, cpuRatio))
            for n in counts {
                out["\(store)_\(n)_create_samples_s"] = figures[store]![n]!.create
                out["\(store)_\(n)_idle_cpu"] = figures[store]![n]!.idleCPU
                out["\(store)_\(n)_seed_s"] = figures[store]![n]!.seed
            }
            out.metric("\(store): service create p50 at \(small) services", median(s.create) * 1e3, "ms")
            out.metric(
                "\(store): service create p50 at \(large) services", median(l.create) * 1e3, "ms", goal: store == "etcd" ? "<" : nil,
                store == "etcd" ? 20 : nil)
            out.metric("\(store): create latency ratio \(large) / \(small) services", createRatio, "×", goal: "<=", 1.5)
            out.metric("\(store): idle manager CPU at \(small) services", s.idleCPU * 100, "% of a core")
            out.metric("\(store): idle manager CPU at \(large) services", l.idleCPU * 100, "% of a core")
            out.metric("\(store): idle CPU ratio \(large) / \(small) services", cpuRatio, "×", goal: "<=", 1.5)
            // Back to back, each create waits for the pass the one before it started: what a pass costs.
            for (n, f) in [(small, s), (large, l)] where f.seeded > 0 {
                out.metric("\(store): back-to-back creates up to \(n) services, per create", f.seed / Double(f.seeded) * 1e3, "ms")
            }
        }
        try out.write(to: options.json)
    }

    /// One daemon on `store`, grown to each size in turn.
    func measure(store: String, counts: [Int], creates: Int, window: Double) async throws -> [Int: Figures] {
        let prefix = "/meshbench-manager"
        let storeArguments = store == "etcd" ? ["--cluster-store", "etcd://198.18.0.1:2379\(prefix)"] : []
        let c = try await DaemonCluster.build(
            tag: "meshbench", nodes: 1, extraArguments: ["--metrics-addr", "127.0.0.1:9323"] + storeArguments)
        defer { c.destroy() }
        var etcd: EtcdServer?
        defer { etcd?.stop() }
        if store == "etcd" {
            guard c.address(1) == "198.18.0.1" else { throw ValidationError("the lab's node 1 is \(c.address(1)), not 198.18.0.1") }
            etcd = try await EtcdServer.start(in: [(c.lab.nodeNamespace(1), c.address(1))], tag: "meshbench-etcd")
        }
        let initOut = try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)])
        guard initOut.succeeded else { throw ValidationError("\(store): swarm init failed: \(initOut.stderr)") }
        guard let pid = c.pid(1) else { throw ValidationError("no daemon pid") }

        var result: [Int: Figures] = [:]
        var have = 0
        for n in counts {
            var f = Figures()
            let seedStart = ContinuousClock.now
            try seed(c, store: store, from: have, to: n)
            f.seeded = max(n - have, 0)
            have = n
            f.seed = seconds(ContinuousClock.now - seedStart)
            try await waitIdle(c, pid: pid)
            for k in 0..<creates {
                f.create.append(try timedCreate(c, name: "timed-\(n)-\(k)"))
                have += 1
                try await waitIdle(c, pid: pid)
            }
            let before = try cpuSeconds(pid), began = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(Int(window * 1000)))
            f.idleCPU = (try cpuSeconds(pid) - before) / seconds(ContinuousClock.now - began)
            print(
                String(
                    format: "  %@ %6d services: put there in %.1f s, create p50 %.1f ms (max %.1f), idle CPU %.2f%% of a core", store, n,
                    f.seed, median(f.create) * 1e3, (f.create.max() ?? 0) * 1e3, f.idleCPU * 100))
            result[n] = f
        }
        return result
    }

    static func body(_ name: String) -> String {
        #"{"Name":"\#(name)","TaskTemplate":{"ContainerSpec":{"Image":"meshd/whoami"}},"Mode":{"Replicated":{"Replicas":0}}}"#
    }

    /// Services `from..<to`, created one after the other by one curl (a config file of requests), each
    /// checked for dockerd's 201.
    func seed(_ c: DaemonCluster, store: String, from: Int, to: Int) throws {
        guard to > from else { return }
        let path = "\(c.directory)/seed-\(from)-\(to).curl"
        var config = ""
        for i in from..<to {
            let escaped = Self.body("svc-\(i)").replacingOccurrences(of: "\"", with: "\\\"")
            config += """
                unix-socket = "\(c.socket(1))"
                silent
                request = "POST"
                header = "Content-Type: application/json"
                data = "\(escaped)"
                output = "/dev/null"
                write-out = "%{http_code}\\n"
                url = "http://d/v1.41/services/create"

                """
            if i + 1 < to { config += "next\n" }
        }
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = try Exec.run(["curl", "--config", path])
        let codes = out.stdout.split(separator: "\n")
        let created = codes.filter { $0 == "201" }.count
        guard out.succeeded, created == to - from else {
            throw ValidationError(
                "\(store): \(created) of \(to - from) creates answered 201 (curl \(out.status)): \(Set(codes).sorted()) \(out.stderr.prefix(500))"
            )
        }
    }

    /// One `service create` through the API socket; the time curl measured for the request.
    func timedCreate(_ c: DaemonCluster, name: String) throws -> Double {
        let out = try Exec.run([
            "curl", "-s", "--unix-socket", c.socket(1), "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-X", "POST",
            "-H", "Content-Type: application/json", "-d", Self.body(name), "http://d/v1.41/services/create",
        ])
        let fields = out.stdout.split(separator: " ")
        guard out.succeeded, fields.count == 2, fields[0] == "201", let t = Double(fields[1]) else {
            throw ValidationError("service create \(name): \(out.stdout) \(out.stderr)")
        }
        return t
    }

    /// The manager's passes as its metrics count them.
    func passes(_ c: DaemonCluster) throws -> Double {
        let out = try Exec.run([
            "nsenter", "--net=/run/netns/\(c.lab.nodeNamespace(1))", "curl", "-s", "--max-time", "10", "http://127.0.0.1:9323/metrics",
        ])
        let sample = "meshd_manager_pass_seconds_count "
        guard let line = out.stdout.split(separator: "\n").first(where: { $0.hasPrefix(sample) }),
            let v = Double(line.dropFirst(sample.count))
        else { throw ValidationError("no \(sample)in the daemon's metrics (curl \(out.status))") }
        return v
    }

    /// Until the manager has run no pass for a second and used under a tenth of a core doing it
    /// (a pass still running has not counted yet); two minutes at most.
    func waitIdle(_ c: DaemonCluster, pid: Int32) async throws {
        let deadline = ContinuousClock.now + .seconds(120)
        var last = try passes(c)
        while ContinuousClock.now < deadline {
            let cpu = try cpuSeconds(pid)
            try await Task.sleep(for: .seconds(1))
            let now = try passes(c)
            if now == last, try cpuSeconds(pid) - cpu < 0.1 { return }
            last = now
        }
        throw ValidationError("the manager was not idle within 2 minutes")
    }

    /// User + system CPU seconds of `pid` (/proc/PID/stat fields 14 and 15, in clock ticks).
    func cpuSeconds(_ pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        guard let close = stat.lastIndex(of: ")") else { throw ValidationError("unreadable /proc/\(pid)/stat") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3): utime is field 14, stime 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw ValidationError("unreadable /proc/\(pid)/stat")
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
