import ArgumentParser
import Foundation
import MeshKernel
import MeshTestbed

/// 10,000 permanent neighbours + 1,000 FDB entries on a vxlan0, programmed by MeshKernel (one
/// pipelined batch) and by `ip -batch` / `bridge -batch`, each into its own fresh namespace.
struct NeighFDB: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neigh-fdb",
        abstract: "Program N permanent neighbours and M FDB entries: MeshKernel vs ip -batch / bridge -batch.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Neighbour entries.") var neighbours = 10_000
    @Option(help: "FDB entries.") var fdb = 1_000

    struct Sample { var meshNeigh: Double, meshFDB: Double, ipNeigh: Double, ipFDB: Double }

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        let n = options.quick ? 1_000 : neighbours
        let m = options.quick ? 100 : fdb
        let rounds = options.quick ? 1 : options.rounds
        let neighs = (0..<n).map { i in
            Neighbor(
                device: "vxlan0", address: .v4(0x0A80_0000 | UInt32(i)), mac: MACAddress(rawValue: 0x02_6d_01_00_00_00 | UInt64(i % 4096))!)
        }
        let fdbs = (0..<m).map { i in
            FDBEntry(
                device: "vxlan0", mac: MACAddress(rawValue: 0x02_6d_02_00_00_00 | UInt64(i))!,
                destination: .v4(0xC612_0000 | UInt32(i % 250 + 1)))
        }
        let ipNeighBatch =
            neighs.map { "neigh add \($0.address) lladdr \($0.mac!) dev vxlan0 nud permanent" }.joined(separator: "\n") + "\n"
        let bridgeBatch =
            fdbs.map { "fdb append \($0.mac) dev vxlan0 dst \($0.destination!) self permanent" }.joined(separator: "\n") + "\n"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshbench-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let neighFile = dir.appendingPathComponent("neigh.batch").path
        let fdbFile = dir.appendingPathComponent("fdb.batch").path
        try ipNeighBatch.write(toFile: neighFile, atomically: true, encoding: .utf8)
        try bridgeBatch.write(toFile: fdbFile, atomically: true, encoding: .utf8)

        print("neigh-fdb: \(n) permanent neighbours + \(m) FDB entries on vxlan0, \(rounds) round(s), fresh namespace per side per round")
        var samples: [Sample] = []
        for round in 0..<rounds {
            var s = Sample(meshNeigh: 0, meshFDB: 0, ipNeigh: 0, ipFDB: 0)
            // Alternate which side goes first so neither always gets the warmer cache.
            for side in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                let group = NamespaceGroup(tag: "meshbench")
                defer { group.destroy() }
                let ns = try group.create(side == 0 ? "mesh" : "ip")
                let nl = try NetlinkHandle(namespace: ns)
                try await nl.linkAdd(
                    LinkSpec(name: "vxlan0", kind: .vxlan(VXLANAttributes(vni: 4097, local: IPAddress("198.18.0.1")!)), up: true))
                if side == 0 {
                    let clock = ContinuousClock()
                    s.meshNeigh = seconds(try await clock.measure { try await nl.apply(neighs.map { .neigh(.add, $0) }) })
                    s.meshFDB = seconds(try await clock.measure { try await nl.apply(fdbs.map { .fdb(.append, $0) }) })
                } else {
                    let clock = ContinuousClock()
                    s.ipNeigh = seconds(try clock.measure { try Exec.check(["ip", "-n", ns.name!, "-batch", neighFile]) })
                    s.ipFDB = seconds(try clock.measure { try Exec.check(["bridge", "-n", ns.name!, "-batch", fdbFile]) })
                }
                // Both sides must have programmed everything, or the timing means nothing.
                let got = try await nl.neighList(device: "vxlan0").count
                let gotFDB = try await nl.fdbList(device: "vxlan0").filter { $0.destination != nil }.count
                guard got == n, gotFDB == m else {
                    throw ValidationError(
                        "side \(side == 0 ? "MeshKernel" : "iproute2") programmed \(got)/\(n) neighbours, \(gotFDB)/\(m) FDB entries")
                }
            }
            samples.append(s)
            print(
                String(
                    format: "  round %d: MeshKernel %.1f ms + %.1f ms   iproute2 %.1f ms + %.1f ms",
                    round + 1, s.meshNeigh * 1e3, s.meshFDB * 1e3, s.ipNeigh * 1e3, s.ipFDB * 1e3))
        }
        let mN = median(samples.map(\.meshNeigh)), mF = median(samples.map(\.meshFDB))
        let iN = median(samples.map(\.ipNeigh)), iF = median(samples.map(\.ipFDB))
        let meshTotal = median(samples.map { $0.meshNeigh + $0.meshFDB }), ipTotal = median(samples.map { $0.ipNeigh + $0.ipFDB })
        func rate(_ count: Int, _ t: Double) -> String { String(format: "%10.0f/s", Double(count) / t) }
        print("")
        print("                      MeshKernel     iproute2 batch   ratio (MeshKernel rate / iproute2 rate)")
        print("  neighbours      \(rate(n, mN))     \(rate(n, iN))      \(String(format: "%.2fx", iN / mN))")
        print("  fdb entries     \(rate(m, mF))     \(rate(m, iF))      \(String(format: "%.2fx", iF / mF))")
        print(
            "  all entries     \(rate(n + m, meshTotal))     \(rate(n + m, ipTotal))      \(String(format: "%.2fx", ipTotal / meshTotal))  (goal >= 1.0x)"
        )
        print("  (medians; iproute2 times include starting the ip/bridge process, about 1-2 ms)")
        var result = BenchResults(
            "neigh-fdb", quick: options.quick,
            [
                "neighbours": n, "fdb": m, "rounds": rounds,
                "mesh_neigh_s": mN, "mesh_fdb_s": mF, "ip_neigh_s": iN, "bridge_fdb_s": iF,
                "ratio_neigh": iN / mN, "ratio_fdb": iF / mF, "ratio_total": ipTotal / meshTotal,
            ])
        result.metric("neighbours: MeshKernel", Double(n) / mN, "/s")
        result.metric("neighbours: ip -batch", Double(n) / iN, "/s")
        result.metric("fdb entries: MeshKernel", Double(m) / mF, "/s")
        result.metric("fdb entries: bridge -batch", Double(m) / iF, "/s")
        result.metric("all entries: MeshKernel rate / iproute2 rate", ipTotal / meshTotal, "×", goal: ">=", 1)
        try result.write(to: options.json)
    }
}
