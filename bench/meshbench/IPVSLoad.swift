import ArgumentParser
import Foundation
import MeshKernel
import MeshTestbed

/// S virtual services x D masqueraded destinations: MeshKernel's pipelined genl batch vs
/// `ipvsadm -R` of the same rules. Needs IPVS, so it runs in the VM lane: `bench/vm ipvs-load`.
struct IPVSLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipvs-load",
        abstract: "Load S services x D destinations into IPVS: MeshKernel vs ipvsadm -R (needs a kernel with IPVS: bench/vm).")

    @OptionGroup var options: BenchOptions
    @Option(help: "Services.") var services = 10_000
    @Option(help: "Destinations per service.") var destinations = 10

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        let s = options.quick ? 200 : services
        let d = destinations
        let rounds = options.quick ? 1 : options.rounds
        func vip(_ i: Int) -> IPAddress { .v4(0x0A60_0000 + UInt32(i)) }
        func backend(_ i: Int, _ j: Int) -> IPAddress { .v4(0x0A80_0000 + UInt32(i * d + j)) }

        var rules = ""
        rules.reserveCapacity(s * (d + 1) * 48)
        for i in 0..<s {
            rules += "-A -t \(vip(i)):80 -s rr\n"
            for j in 0..<d { rules += "-a -t \(vip(i)):80 -r \(backend(i, j)):8080 -m -w 1\n" }
        }
        print("ipvs-load: \(s) services x \(d) destinations (\(s * d) in all), \(rounds) round(s), fresh namespace per side per round")
        var mesh: [Double] = [], adm: [Double] = []
        for round in 0..<rounds {
            for side in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                let group = NamespaceGroup(tag: "meshbench")
                defer { group.destroy() }
                let ns = try group.create(side == 0 ? "mesh" : "adm")
                try await NetlinkHandle(namespace: ns).linkSetUp("lo")
                let ipvs = try IPVSHandle(namespace: ns)
                let clock = ContinuousClock()
                if side == 0 {
                    mesh.append(
                        seconds(
                            try await clock.measure {
                                var ops: [IPVSOperation] = []
                                ops.reserveCapacity(s * (d + 1))
                                for i in 0..<s {
                                    let key = IPVSServiceKey.tuple(.tcp, vip(i), 80)
                                    ops.append(.addService(IPVSService(key, scheduler: "rr")))
                                    for j in 0..<d { ops.append(.addDestination(key, IPVSDestination(backend(i, j), port: 8080))) }
                                }
                                try await ipvs.apply(ops)
                            }))
                } else {
                    adm.append(
                        seconds(
                            try clock.measure {
                                try Exec.check(["ip", "netns", "exec", ns.name!, "ipvsadm", "-R"], stdin: rules)
                            }))
                }
                let listed = try await ipvs.listServices().count
                let dests = try await ipvs.listDestinations(.tuple(.tcp, vip(s - 1), 80)).count
                guard listed == s, dests == d else {
                    throw ValidationError(
                        "side \(side == 0 ? "MeshKernel" : "ipvsadm -R") loaded \(listed)/\(s) services, \(dests)/\(d) destinations")
                }
            }
            print(String(format: "  round %d: MeshKernel %.0f ms   ipvsadm -R %.0f ms", round + 1, mesh.last! * 1e3, adm.last! * 1e3))
        }
        let m = median(mesh), a = median(adm)
        print(
            String(
                format: "  medians: MeshKernel %.0f ms, ipvsadm -R %.0f ms: MeshKernel takes %.2fx ipvsadm's time (goal <= 1.0x)",
                m * 1e3, a * 1e3, m / a))
        var result = BenchResults(
            "ipvs-load", quick: options.quick,
            [
                "services": s, "destinations": d, "rounds": rounds, "mesh_s": m, "ipvsadm_s": a, "ratio": m / a,
                "mesh_samples_s": mesh, "ipvsadm_samples_s": adm,
            ])
        result.metric("load \(s) × \(d): MeshKernel", m, "s")
        result.metric("load \(s) × \(d): ipvsadm -R", a, "s")
        result.metric("MeshKernel / ipvsadm -R (time)", m / a, "×", goal: "<=", 1)
        try result.write(to: options.json)
    }
}
