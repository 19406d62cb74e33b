import ArgumentParser
import Foundation
import MeshDataplane
import MeshKernel
import MeshTestbed

/// Apply latency of the in-process `Reconciler` on one node: one backend change with 100, 1,000
/// and 10,000 services present (the cost must follow the change, not the total), and attaching
/// one task to a network with few and with 1,000 services. Changes go in as the agent sends
/// them (`apply([DataplaneChange])`); the backend change is also timed as a whole new state.
struct ApplyBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Reconciler apply latency: one backend change at 100/1,000/10,000 services; one task attach at 10 vs 1,000 services.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Service counts for the backend-change series.") var sizes = "100,1000,10000"
    @Option(help: "Timed applies per measurement.") var changes = 41
    @Option(help: "Load balancer: nftables or ipvs.") var lb = "nftables"

    /// 10.64.0.0/12: VIP i = 10.65.0.0 + i, backends 10.72.0.0 + 4i + j.
    static let network = OverlayNetwork(
        id: "bulk", name: "bulk", vni: 4500, subnet: IPPrefix("10.64.0.0/12")!,
        gateway: IPAddress("10.64.0.1")!)
    static func vip(_ i: Int) -> IPAddress { .v4(0x0A41_0000 + UInt32(i)) }
    static func backend(_ i: Int, _ j: Int) -> IPAddress { .v4(0x0A48_0000 + UInt32(4 * i + j)) }

    /// The other of two addresses: every timed change really changes something.
    static func toggle(_ current: IPAddress, _ a: IPAddress, _ b: IPAddress) -> IPAddress { current == a ? b : a }

    static func state(_ lab: DataplaneLab, services n: Int) -> DataplaneState {
        var s = lab.emptyState(1)
        s.networks = [network]
        s.services = (0..<n).map { i in
            BalancedService(
                id: "s\(i)", name: "s\(i)", vips: [.init(network: "bulk", address: vip(i))],
                backends: (0..<3).map { .init(network: "bulk", address: backend(i, $0)) })
        }
        return s
    }

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        guard let kind = LoadBalancerKind(rawValue: lb) else { throw ValidationError("--lb nftables|ipvs") }
        let counts = options.quick ? [20, 200] : sizes.split(separator: ",").compactMap { Int($0) }
        let timed = options.quick ? 5 : changes
        let attachSizes = options.quick ? [10, 200] : [10, 1_000]
        print("apply: in-process Reconciler (--lb \(lb)), one node namespace; \(timed) timed applies per figure")

        var changeMedians: [Int: Double] = [:]
        for n in counts {
            let lab = try await DataplaneLab.build(tag: "meshbench", nodes: 1)
            defer { lab.destroy() }
            let r = Reconciler(lb: kind)
            var state = Self.state(lab, services: n)
            let clock = ContinuousClock()
            var report: ChangeReport?
            let cold = seconds(try await clock.measure { report = try await r.apply(state) })
            guard let report, !report.isEmpty else { throw ValidationError("the cold apply of \(n) services changed nothing") }
            var samples: [Double] = [], fullSamples: [Double] = []
            var fullEmpty = 0
            // One warm-up change: the first change after a full apply copies the tables the full
            // apply shared with the reconciler's baseline (copy-on-write), once.
            state.services[0].backends![2].address = .v4(0x0A4D_0000)
            _ = try await r.apply([.service(state.services[0])])
            for k in 0..<timed {
                // Swap one backend of one service (a different service each time) for a new address,
                // sent as the agent sends it: one changed service.
                let i = (k * 7919) % n
                state.services[i].backends![0].address = Self.toggle(
                    state.services[i].backends![0].address, Self.backend(i, 0), .v4(0x0A4F_0000 + UInt32(i)))
                var changed: ChangeReport?
                samples.append(seconds(try await clock.measure { changed = try await r.apply([.service(state.services[i])]) }))
                guard let changed, !changed.isEmpty, changed.changes.count <= 8 else {
                    throw ValidationError("one backend change at \(n) services made \(changed?.changes.count ?? 0) kernel changes")
                }
            }
            for k in 0..<timed {
                // The same kind of change as a whole new state (what `meshd dataplane apply` does), for comparison.
                let j = (k * 7919 + 1) % n
                state.services[j].backends![1].address = Self.toggle(
                    state.services[j].backends![1].address, Self.backend(j, 1), .v4(0x0A4E_8000 + UInt32(j)))
                var full: ChangeReport?
                fullSamples.append(seconds(try await clock.measure { full = try await r.apply(state) }))
                if full?.isEmpty ?? true { fullEmpty += 1 }
            }
            changeMedians[n] = median(samples)
            print(
                String(
                    format:
                        "  %6d services: cold apply %8.1f ms   one backend change: median %6.2f ms  (min %.2f, max %.2f)   as a full state: %.2f ms",
                    n, cold * 1e3, median(samples) * 1e3, samples.min()! * 1e3, samples.max()! * 1e3, median(fullSamples) * 1e3))
            if fullEmpty > 0 { print("    WARNING: \(fullEmpty) of \(timed) full-state applies of a changed backend reported no change") }
        }

        var attachMedians: [Int: Double] = [:]
        for n in attachSizes {
            let lab = try await DataplaneLab.build(tag: "meshbench", nodes: 1)
            defer { lab.destroy() }
            let r = Reconciler(lb: kind)
            let base = Self.state(lab, services: n)
            _ = try await r.apply(base)
            var samples: [Double] = []
            for k in 0..<timed {
                // A fresh task each time, attached, timed, then detached (untimed).
                let id = "a\(k)"
                try await lab.createTask(id)
                let endpoint = LocalEndpoint(
                    id: id, network: "bulk", namespace: lab.taskNamespace(id),
                    address: .v4(0x0A4E_0000 + UInt32(k + 2)))
                let clock = ContinuousClock()
                var report: ChangeReport?
                samples.append(seconds(try await clock.measure { report = try await r.apply([.localEndpoint(endpoint)]) }))
                guard let report, !report.isEmpty else { throw ValidationError("attaching a task changed nothing") }
                let addr = try Exec.check(["ip", "-n", lab.taskNamespace(id), "-j", "-4", "addr", "show", "dev", "eth0"])
                guard addr.contains("10.78.0.\(k + 2)") else { throw ValidationError("the attached task has no address: \(addr)") }
                _ = try await r.apply([.removeLocalEndpoint(task: id, network: "bulk")])
            }
            attachMedians[n] = median(samples)
            print(
                String(
                    format: "  attach one task at %5d services: median %6.2f ms  (min %.2f, max %.2f)",
                    n, median(samples) * 1e3, samples.min()! * 1e3, samples.max()! * 1e3))
        }
        let small = counts.min()!, large = counts.max()!
        let flat = changeMedians[large]! / changeMedians[small]!
        let attachRatio = attachMedians[attachSizes[1]]! / attachMedians[attachSizes[0]]!
        print("")
        print(
            String(
                format: "  backend change %d vs %d services: %.2fx (goal <= 1.5x), %.2f ms at %d (goal < 10 ms)",
                large, small, flat, changeMedians[large]! * 1e3, large))
        print(
            String(
                format: "  attach at %d vs %d services: %.2fx (goal: independent of the service count, ~1.0x)",
                attachSizes[1], attachSizes[0], attachRatio))
        var json = BenchResults(
            "apply", quick: options.quick, ["lb": lb, "timed": timed, "change_ratio": flat, "attach_ratio": attachRatio])
        for (n, m) in changeMedians { json["change_\(n)_s"] = m }
        for (n, m) in attachMedians { json["attach_\(n)_s"] = m }
        for n in counts {
            json.metric("one backend change at \(n) services", changeMedians[n]! * 1e3, "ms", goal: "<", 10)
        }
        json.metric("backend change \(large) vs \(small) services", flat, "×", goal: "<=", 1.5)
        for n in attachSizes { json.metric("attach one task at \(n) services", attachMedians[n]! * 1e3, "ms") }
        json.metric("attach at \(attachSizes[1]) vs \(attachSizes[0]) services", attachRatio, "×")
        try json.write(to: options.json)
    }
}
