import ArgumentParser
import Foundation
import MeshDataplane
import MeshKernel
import MeshTestbed

/// iperf3 TCP throughput between two tasks on two nodes over meshd's VXLAN overlay (what
/// `meshd dataplane apply` made: task veth → sandbox → vxlan0 → underlay → vxlan0 → sandbox → task
/// veth), beside the same two node namespaces talking over the underlay veths directly; one stream
/// and four, MTUs as configured (the overlay's is meshd's underlay − 50).
struct OverlayBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overlay",
        abstract: "Overlay throughput (iperf3 TCP): task to task over VXLAN vs node to node over the underlay.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Seconds per iperf3 run.") var duration = 10
    @Option(parsing: .upToNextOption, help: "Parallel stream counts, a row each.") var streams: [Int] = [1, 4]

    enum Side: String, CaseIterable { case overlay, underlay }
    struct Run {
        var bitsPerSecond: Double
        var bytes: Double
        var retransmits: Int
    }

    static let port = 5201
    static let sender = IPAddress("10.20.0.21")!
    static let receiver = IPAddress("10.20.0.22")!

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        guard (try? Exec.check(["sh", "-c", "command -v iperf3"])) != nil else {
            throw ValidationError("iperf3 is missing: scripts/setup installs it")
        }
        guard !streams.isEmpty, streams.allSatisfy({ (1...128).contains($0) }) else {
            throw ValidationError("--streams: at least one count, each 1…128")
        }
        let rounds = options.quick ? 1 : options.rounds
        let seconds = options.quick ? 2 : duration
        let lab = try await DataplaneLab.build(tag: "meshbench", nodes: 2)
        defer { lab.destroy() }
        let tasks: [DataplaneLab.TaskSpec] = [
            .init(id: "sender", service: nil, node: 1, addresses: [("web", Self.sender)]),
            .init(id: "receiver", service: nil, node: 2, addresses: [("web", Self.receiver)]),
        ]
        for t in tasks { try await lab.createTask(t.id) }
        try lab.applyAll(lab.states(networks: [DataplaneScenario.web], tasks: tasks, services: []))

        // Client and server namespace and the server's address, per side.
        let ends: [Side: (client: String, server: String, address: IPAddress)] = [
            .overlay: (lab.taskNamespace("sender"), lab.taskNamespace("receiver"), Self.receiver),
            .underlay: (lab.nodeNamespace(1), lab.nodeNamespace(2), lab.underlayAddress(2)),
        ]
        guard let sandbox = lab.sandboxes(1).first else { throw ValidationError("meshd made no sandbox on node 1") }
        let mtu: [Side: Int] = [
            .overlay: try Self.mtu(lab.taskNamespace("sender"), "eth0"), .underlay: try Self.mtu(lab.nodeNamespace(1), "eth0"),
        ]
        let vxlanMTU = try Self.mtu(sandbox, "vxlan0")
        for side in Side.allCases {
            let e = ends[side]!
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            // `ip netns exec` execs iperf3, so this pid is the server's own (ended by the lab's destroy).
            p.arguments = ["netns", "exec", e.server, "iperf3", "-s", "-B", "\(e.address)", "-p", "\(Self.port)"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            lab.track(p)
            try Self.waitListening(e.server, process: p)
        }
        print(
            "overlay: iperf3 TCP, \(seconds) s per run, \(streams.map { "\($0)" }.joined(separator: "/")) stream(s), \(rounds) round(s); "
                + "task MTU \(mtu[.overlay]!) (vxlan0 \(vxlanMTU)) over VXLAN vs node MTU \(mtu[.underlay]!) on the underlay veth")

        var samples: [String: [Run]] = [:]
        for round in 0..<rounds {
            let order = round % 2 == 0 ? Side.allCases : Side.allCases.reversed()
            for n in streams {
                for side in order {
                    let e = ends[side]!
                    let before = side == .overlay ? try Self.txBytes(sandbox, "vxlan0") : 0
                    let r = try Self.iperf(from: e.client, to: e.address, streams: n, seconds: seconds)
                    if side == .overlay {
                        // The overlay side must really have crossed vxlan0: at least the payload went out there.
                        let sent = try Self.txBytes(sandbox, "vxlan0") - before
                        guard Double(sent) >= r.bytes else {
                            throw ValidationError(
                                "overlay run moved \(Int(r.bytes)) bytes but node 1's vxlan0 sent only \(sent): not the VXLAN path")
                        }
                    }
                    samples["\(n)/\(side.rawValue)", default: []].append(r)
                }
            }
        }

        var json = BenchResults(
            "overlay", quick: options.quick,
            [
                "rounds": rounds, "seconds": seconds, "streams": streams, "mtu_overlay": mtu[.overlay]!, "mtu_underlay": mtu[.underlay]!,
                "mtu_vxlan0": vxlanMTU,
            ])
        print("")
        print("                         Gbit/s    retransmits   overlay / underlay")
        for n in streams {
            var med: [Side: Double] = [:]
            for side in Side.allCases {
                let xs = samples["\(n)/\(side.rawValue)"] ?? []
                let gbps = median(xs.map { $0.bitsPerSecond / 1e9 })
                med[side] = gbps
                let retr = xs.map(\.retransmits).reduce(0, +)
                let label = "\(n) stream\(n == 1 ? "" : "s") \(side.rawValue)".padding(toLength: 22, withPad: " ", startingAt: 0)
                print("  " + label + String(format: "%8.2f   %10d", gbps, retr))
                json["s\(n)_\(side.rawValue)_gbps"] = gbps
                json["s\(n)_\(side.rawValue)_samples_gbps"] = xs.map { $0.bitsPerSecond / 1e9 }
                json["s\(n)_\(side.rawValue)_retransmits"] = retr
                json.metric("\(n) stream\(n == 1 ? "" : "s") \(side.rawValue): throughput", gbps, "Gbit/s")
            }
            let ratio = med[.overlay]! / med[.underlay]!
            print(
                "  " + "\(n) stream\(n == 1 ? "" : "s"): overlay / underlay".padding(toLength: 46, withPad: " ", startingAt: 0)
                    + String(format: "%.2fx", ratio))
            json["s\(n)_ratio"] = ratio
            json.metric("\(n) stream\(n == 1 ? "" : "s"): overlay / underlay", ratio, "×", goal: ">=", 0.9)
        }
        print("  (medians; goal: overlay >= 0.9x the underlay)")
        try json.write(to: options.json)
    }

    /// One iperf3 client run; fails on any error iperf3 reports or a run that moved nothing.
    static func iperf(from ns: String, to address: IPAddress, streams: Int, seconds: Int) throws -> Run {
        let argv = [
            "ip", "netns", "exec", ns, "iperf3", "-c", "\(address)", "-p", "\(port)", "-t", "\(seconds)", "-P", "\(streams)", "-J",
        ]
        let out = try Exec.run(argv)
        let doc = (try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8))) as? [String: Any]
        if let error = doc?["error"] as? String { throw ValidationError("iperf3 to \(address): \(error)") }
        guard out.succeeded, let end = doc?["end"] as? [String: Any], let received = end["sum_received"] as? [String: Any],
            let sent = end["sum_sent"] as? [String: Any], let bps = received["bits_per_second"] as? Double,
            let bytes = received["bytes"] as? Double, bps > 0
        else {
            throw ValidationError("iperf3 to \(address) failed (exit \(out.status)): \(out.stderr) \(out.stdout.prefix(400))")
        }
        return Run(bitsPerSecond: bps, bytes: bytes, retransmits: (sent["retransmits"] as? Int) ?? 0)
    }

    static func mtu(_ ns: String, _ device: String) throws -> Int {
        let links = try Exec.json(["ip", "-n", ns, "-j", "link", "show", device]) as? [[String: Any]]
        guard let mtu = links?.first?["mtu"] as? Int else { throw ValidationError("no MTU for \(device) in \(ns)") }
        return mtu
    }

    static func txBytes(_ ns: String, _ device: String) throws -> Int {
        let links = try Exec.json(["ip", "-n", ns, "-j", "-s", "link", "show", device]) as? [[String: Any]]
        guard let stats = links?.first?["stats64"] as? [String: Any], let tx = stats["tx"] as? [String: Any],
            let bytes = tx["bytes"] as? Int
        else { throw ValidationError("no counters for \(device) in \(ns)") }
        return bytes
    }

    /// Until the iperf3 server in `ns` listens (up to 10 s).
    static func waitListening(_ ns: String, process: Process) throws {
        let deadline = Date().addingTimeInterval(10)
        while true {
            let out = try Exec.run(["ip", "netns", "exec", ns, "ss", "-Hltn", "sport = :\(port)"])
            if out.stdout.contains(":\(port)") { return }
            guard process.isRunning else { throw ValidationError("iperf3 -s in \(ns) exited with status \(process.terminationStatus)") }
            if Date() >= deadline { throw ValidationError("iperf3 -s in \(ns) does not listen within 10 s") }
            usleep(100_000)
        }
    }
}
