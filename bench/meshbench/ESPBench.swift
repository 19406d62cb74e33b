import ArgumentParser
import Foundation
import MeshDataplane
import MeshKernel
import MeshTestbed

/// Encrypted overlays (`--opt encrypted`) against plain ones, in the VM lane (the only kernel here
/// with ESP). Two nodes of a DataplaneLab, a client task on node 1 and `meshd whoami` on node 2, on a
/// plain overlay and then on an encrypted one (AES-GCM ESP between the two nodes; the order swaps
/// every round): iperf3 throughput between the tasks and wrk's request rate through the service VIP,
/// with each ratio encrypted / plain. Then wrk through the encrypted VIP while the pair's keys rotate
/// make-before-break (install, use, remove: each a `meshd dataplane apply` on both nodes, as a
/// gossip key rotation makes them), which must lose no request. Both networks are never attached
/// at once: ESP is per node pair, so a plain network beside an encrypted one would be encrypted too.
struct ESPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esp",
        abstract: "Encrypted vs plain overlay: iperf3 throughput and wrk through the VIP; a key rotation under wrk loses nothing.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Seconds per iperf3 and wrk run.") var duration = 5
    @Option(help: "wrk connections.") var connections = 16
    @Option(help: "wrk's request timeout in seconds (a request unanswered by then is an error).") var timeout = 10

    static let plain = OverlayNetwork(
        id: "plain", name: "plain", vni: 4301, subnet: IPPrefix("10.61.0.0/24")!, gateway: IPAddress("10.61.0.1")!)
    static let secret = OverlayNetwork(
        id: "secret", name: "secret", vni: 4300, subnet: IPPrefix("10.60.0.0/24")!, gateway: IPAddress("10.60.0.1")!,
        encrypted: true)

    enum Side: String, CaseIterable { case plain, encrypted }

    typealias Generation = ESPGeneration

    static func network(_ side: Side) -> OverlayNetwork { side == .plain ? plain : secret }
    static func address(_ side: Side, _ host: Int) -> IPAddress {
        IPAddress(side == .plain ? "10.61.0.\(host)" : "10.60.0.\(host)")!
    }
    static func vip(_ side: Side) -> IPAddress { address(side, 100) }

    /// Both nodes' states for `side`'s network, with `gens` (primary first) as each node's keys for
    /// the other on the encrypted one.
    static func states(_ lab: DataplaneLab, _ side: Side, _ gens: [Generation]) -> [DataplaneState] {
        let net = network(side)
        let s = lab.states(
            networks: [net],
            tasks: [
                .init(id: "client", service: nil, node: 1, addresses: [(net.id, address(side, 11))]),
                .init(id: "w1", service: "whoami", node: 2, addresses: [(net.id, address(side, 12))]),
            ],
            services: [.init(id: "whoami", name: "whoami", vips: [.init(network: net.id, address: vip(side))])])
        return side == .encrypted ? lab.withPairKeys(s, gens) : s
    }

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        for tool in ["wrk", "iperf3"] where (try? Exec.check(["sh", "-c", "command -v \(tool)"])) == nil {
            throw ValidationError("\(tool) is missing: scripts/setup installs it")
        }
        let rounds = options.quick ? 1 : options.rounds
        let seconds = options.quick ? 2 : duration
        let lab = try await DataplaneLab.build(tag: "meshbench", nodes: 2, requestSeconds: 15)
        defer { lab.destroy() }
        for t in ["client", "w1"] { try await lab.createTask(t) }
        try lab.startWhoami(task: "w1", name: "w1")
        let keys = Generation.random(1, spiBase: 0x4e00)

        // One network at a time: off the other first (a task's eth0 moves between sandboxes).
        var attached: Side?
        func attach(_ side: Side) throws {
            if attached != nil { for n in 1...2 { _ = try lab.apply(lab.emptyState(n), node: n) } }
            _ = try lab.applyAll(Self.states(lab, side, [keys]))
            attached = side
            try waitUntilAnswering(lab, side)
        }

        print(
            "esp: client task node1 → whoami on node2, plain vs encrypted (ESP AES-GCM) overlay, \(rounds) round(s): "
                + "iperf3 \(seconds) s, wrk -t2 -c\(connections) \(seconds) s through the VIP")
        var gbits: [Side: [Double]] = [:], rps: [Side: [Double]] = [:]
        var failures: [String] = []
        for round in 0..<rounds {
            for side in round % 2 == 0 ? [Side.plain, .encrypted] : [.encrypted, .plain] {
                try attach(side)
                gbits[side, default: []].append(try iperf(lab, side, seconds: seconds) / 1e9)
                let r = try wrk(lab, url: "http://\(Self.vip(side)):8000/", seconds: seconds)
                rps[side, default: []].append(r.rps)
                if r.errors.total > 0 { failures.append("round \(round) \(side.rawValue): \(r.errors.description)") }
            }
        }

        // The rotation under load: wrk for the whole of it, the three steps two seconds apart.
        if attached != .encrypted { try attach(.encrypted) }
        let old = keys, next = Generation.random(2, spiBase: 0x4e00)
        var paths: [String] = []
        for (step, gens) in [("install", [keys, next]), ("use", [next, keys]), ("remove", [next])] {
            let st = Self.states(lab, .encrypted, gens)
            for n in 1...2 { paths.append(try lab.write(st[n - 1], node: n, suffix: "-\(step)")) }
        }
        let steps = paths.map { "'\(lab.meshd)' dataplane apply --state '\($0)' >/dev/null || exit 11" }
        // Both nodes take a step, then two seconds pass before the next.
        var lines: [String] = []
        for (i, step) in steps.enumerated() {
            lines.append(step)
            if i % 2 == 1 { lines.append("sleep 2") }
        }
        let rotate = lines.joined(separator: "\n")
        let wrkSeconds = max(10, seconds)
        let out = "\(lab.stateDirectory)/wrk-rotation.txt"
        let script = """
            set -u
            timeout 300 ip netns exec '\(lab.taskNamespace("client"))' wrk -t2 -c\(connections) -d\(wrkSeconds)s \
              --timeout \(timeout)s --latency http://\(Self.vip(.encrypted)):8000/ > '\(out)' 2>&1 &
            w=$!
            sleep 2
            \(rotate)
            echo rotated
            wait $w; echo "wrk-exit=$?"
            """
        let result = try Exec.run(["bash", "-c", script])
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard result.stdout.contains("rotated"), result.stdout.contains("wrk-exit=0") else {
            throw ValidationError("the rotation or wrk failed: \(result.stdout) \(result.stderr)\n\(text)")
        }
        let during = try Self.parse(text)
        if during.errors.total > 0 { failures.append("during the rotation: \(during.errors.description) in \(during.requests) requests") }
        if during.requests == 0 { failures.append("during the rotation: no request answered") }
        // Only the new generation's states are left on both nodes: the rotation really happened.
        for n in 1...2 {
            let states = try Exec.check(["ip", "-n", lab.nodeNamespace(n), "xfrm", "state"])
            if states.contains(XFRMState.spiText(old.ab.spi)) || !states.contains(XFRMState.spiText(next.ab.spi)) {
                failures.append("node\(n): after the rotation its ESP states are not the new generation's alone:\n\(states)")
            }
        }

        let medGbits = Side.allCases.map { median(gbits[$0] ?? []) }, medRPS = Side.allCases.map { median(rps[$0] ?? []) }
        let throughputRatio = medGbits[1] / medGbits[0], rateRatio = medRPS[1] / medRPS[0]
        print("")
        print("                      iperf3 Gbit/s    wrk req/s")
        for (i, side) in Side.allCases.enumerated() {
            print(
                "  " + side.rawValue.padding(toLength: 18, withPad: " ", startingAt: 0)
                    + String(format: "%10.3f   %10.0f", medGbits[i], medRPS[i]))
        }
        print(String(format: "  encrypted / plain   %9.2fx   %9.2fx", throughputRatio, rateRatio))
        print(
            String(
                format: "  during a key rotation: %.0f req/s, %d requests, %d errors (p99 %.2f ms)", during.rps, during.requests,
                during.errors.total, during.p99))
        print("  (medians of \(rounds) round(s); TCG emulates AES in software, so only the ratios mean anything)")
        var json = BenchResults(
            "esp", quick: options.quick, ["rounds": rounds, "seconds": seconds, "connections": connections])
        for (i, side) in Side.allCases.enumerated() {
            json["\(side.rawValue)_gbits"] = medGbits[i]
            json["\(side.rawValue)_rps"] = medRPS[i]
            json.metric("\(side.rawValue): iperf3", medGbits[i], "Gbit/s")
            json.metric("\(side.rawValue): wrk through the VIP", medRPS[i], "req/s")
        }
        json["throughput_ratio"] = throughputRatio
        json["rate_ratio"] = rateRatio
        json["rotation_requests"] = during.requests
        json["rotation_errors"] = during.errors.total
        json.metric("encrypted / plain (iperf3)", throughputRatio, "×")
        json.metric("encrypted / plain (wrk req/s)", rateRatio, "×")
        json.metric("requests failed during a key rotation", Double(during.errors.total), "", goal: "==", 0)
        json["failures"] = failures
        try json.write(to: options.json)
        if !failures.isEmpty { throw ValidationError("the benchmark saw errors:\n  " + failures.joined(separator: "\n  ")) }
    }

    func waitUntilAnswering(_ lab: DataplaneLab, _ side: Side) throws {
        let url = "http://\(Self.vip(side)):8000/"
        let deadline = Date().addingTimeInterval(15)
        while true {
            let last = try Exec.run(["ip", "netns", "exec", lab.taskNamespace("client"), "curl", "-sS", "--max-time", "2", url])
            if last.succeeded, last.stdout.hasPrefix("I'm w1") { return }
            if Date() >= deadline {
                throw ValidationError("\(side.rawValue): the VIP does not answer \(url) within 15 s: \(last.stderr) \(last.stdout)")
            }
            usleep(250_000)
        }
    }

    /// iperf3 from the client task to the backend task, in bits a second received.
    func iperf(_ lab: DataplaneLab, _ side: Side, seconds: Int) throws -> Double {
        let script = """
            timeout 120 ip netns exec '\(lab.taskNamespace("w1"))' iperf3 -s -1 -p 5303 >/dev/null 2>&1 &
            srv=$!
            sleep 1
            timeout 120 ip netns exec '\(lab.taskNamespace("client"))' iperf3 -c \(Self.address(side, 12)) -p 5303 -t \(seconds) -J
            wait $srv
            """
        let out = try Exec.run(["bash", "-c", script])
        let json = (try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8))) as? [String: Any]
        let end = json?["end"] as? [String: Any]
        guard let bps = (end?["sum_received"] as? [String: Any])?["bits_per_second"] as? Double, bps > 0 else {
            throw ValidationError("iperf3 over the \(side.rawValue) overlay measured nothing: \(out.stdout.suffix(500)) \(out.stderr)")
        }
        return bps
    }

    func wrk(_ lab: DataplaneLab, url: String, seconds: Int) throws -> VIPBench.Result {
        try Self.parse(
            try Exec.check([
                "ip", "netns", "exec", lab.taskNamespace("client"), "wrk", "-t2", "-c\(connections)", "-d\(seconds)s",
                "--timeout", "\(timeout)s", "--latency", url,
            ]))
    }

    static func parse(_ out: String) throws -> VIPBench.Result {
        guard let rps = VIPBench.number(after: "Requests/sec:", in: out) else { throw ValidationError("wrk printed no rate:\n\(out)") }
        return VIPBench.Result(
            rps: rps, p50: VIPBench.latency("50%", out) ?? 0, p99: VIPBench.latency("99%", out) ?? 0,
            requests: VIPBench.requests(out) ?? 0, errors: VIPBench.errors(out))
    }
}
