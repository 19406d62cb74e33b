import ArgumentParser
import Foundation
import MeshKernel
import MeshTestbed

typealias ServiceRuleset = NFTServiceRuleset

/// Cold load of S services x B backends: MeshKernel's one batch vs `nft -f` of the same ruleset.
struct NFTLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nft-load",
        abstract: "Load S services x B backends into nftables: MeshKernel batch vs nft -f; then add one service at S=100 and S=N.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Services.") var services = 10_000
    @Option(help: "Backends per service.") var backends = 10
    @Option(help: "Single-service additions timed at each size.") var additions = 20

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        let s = options.quick ? 300 : services
        let rounds = options.quick ? 1 : options.rounds
        let adds = options.quick ? 3 : additions
        let r = ServiceRuleset(table: NFTTable(.ip, "meshbench"))

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshbench-nft-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func nftText(_ count: Int) -> String {
            r.nftBase(moduli: [backends]) + (0..<count).map { r.nftService($0, count: backends) }.joined()
        }
        func meshBatch(_ count: Int) -> NFTBatch {
            var b = r.base()
            r.addModulus(backends, to: &b)
            for i in 0..<count {
                r.add(service: i, vip: ServiceRuleset.vip(i), backends: ServiceRuleset.backendAddresses(i, count: backends), to: &b)
            }
            return b
        }
        let file = dir.appendingPathComponent("ruleset.nft").path
        try nftText(s).write(toFile: file, atomically: true, encoding: .utf8)

        print(
            "nft-load: \(s) services x \(backends) backends = \(s * backends) backend elements + \(2 * s) VIP elements; "
                + "\(rounds) round(s), fresh namespace per side per round")
        var mesh: [Double] = [], nft: [Double] = []
        for round in 0..<rounds {
            for side in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                let group = NamespaceGroup(tag: "meshbench")
                defer { group.destroy() }
                let ns = try group.create(side == 0 ? "mesh" : "nft")
                let sock = try ns.openNFTables()
                let clock = ContinuousClock()
                if side == 0 {
                    // Timed from building the batch: nft's time includes parsing its text.
                    mesh.append(seconds(try await clock.measure { try await sock.commit(meshBatch(s)) }))
                } else {
                    nft.append(seconds(try clock.measure { try Exec.check(["ip", "netns", "exec", ns.name!, "nft", "-f", file]) }))
                }
                try verify(sock, r, services: s, side: side == 0 ? "MeshKernel" : "nft -f")
            }
            print(String(format: "  round %d: MeshKernel %.0f ms   nft -f %.0f ms", round + 1, mesh.last! * 1e3, nft.last! * 1e3))
        }
        let m = median(mesh), n = median(nft)
        print(
            String(
                format:
                    "  cold load medians: MeshKernel %.0f ms, nft -f %.0f ms: MeshKernel takes %.2fx nft's time (goal <= 1.0x and < 2 s)",
                m * 1e3, n * 1e3, m / n))

        // One service added to a table holding `existing` services: the cost must not grow with it.
        var addResults: [(existing: Int, mesh: Double, nft: Double)] = []
        var addSamples: [String: Any] = [:]
        for existing in [100, s] {
            // Each side adds to a table it loaded itself, in its own namespace.
            let group = NamespaceGroup(tag: "meshbench")
            defer { group.destroy() }
            let meshNS = try group.create("add-mesh"), nftNS = try group.create("add-nft")
            let sock = try meshNS.openNFTables(), nftSock = try nftNS.openNFTables()
            try await sock.commit(meshBatch(existing))
            let loaded = dir.appendingPathComponent("existing-\(existing).nft").path
            try nftText(existing).write(toFile: loaded, atomically: true, encoding: .utf8)
            try Exec.check(["ip", "netns", "exec", nftNS.name!, "nft", "-f", loaded])
            var meshTimes: [Double] = [], nftTimes: [Double] = []
            let clock = ContinuousClock()
            for k in 0..<adds {
                let i = existing + k
                meshTimes.append(
                    seconds(
                        try await clock.measure {
                            var one = NFTBatch()
                            r.add(
                                service: i, vip: ServiceRuleset.vip(i), backends: ServiceRuleset.backendAddresses(i, count: backends),
                                to: &one)
                            try await sock.commit(one)
                        }))
                let snippet = dir.appendingPathComponent("add-\(i).nft").path
                try r.nftService(i, count: backends).write(toFile: snippet, atomically: true, encoding: .utf8)
                nftTimes.append(seconds(try clock.measure { try Exec.check(["ip", "netns", "exec", nftNS.name!, "nft", "-f", snippet]) }))
            }
            try verify(sock, r, services: existing + adds, side: "MeshKernel additions")
            try verify(nftSock, r, services: existing + adds, side: "nft -f additions")
            addResults.append((existing, median(meshTimes), median(nftTimes)))
            addSamples["\(existing)"] = ["mesh_s": meshTimes, "nft_s": nftTimes]
            print(
                String(
                    format: "  add one service to %d: MeshKernel %.2f ms   nft -f %.2f ms (median of %d)",
                    existing, median(meshTimes) * 1e3, median(nftTimes) * 1e3, adds))
        }
        let growth = addResults[1].mesh / addResults[0].mesh
        print(
            String(
                format: "  one-service add at %d vs 100 existing: MeshKernel %.2fx (goal <= 1.5x, <= 10 ms), nft -f %.2fx",
                s, growth, addResults[1].nft / addResults[0].nft))
        var result = BenchResults(
            "nft-load", quick: options.quick,
            [
                "services": s, "backends": backends, "rounds": rounds, "additions": adds,
                "mesh_cold_s": m, "nft_cold_s": n, "ratio_cold": m / n,
                // Every round's cold load and every timed addition, for the report's plot.
                "mesh_cold_samples_s": mesh, "nft_cold_samples_s": nft, "add_samples": addSamples,
                "add_small_existing": addResults[0].existing, "add_large_existing": addResults[1].existing,
                "mesh_add_small_s": addResults[0].mesh, "mesh_add_large_s": addResults[1].mesh,
                "nft_add_small_s": addResults[0].nft, "nft_add_large_s": addResults[1].nft,
                "mesh_add_growth": growth,
            ])
        result.metric("cold load \(s) × \(backends): MeshKernel", m, "s", goal: "<", 2)
        result.metric("cold load \(s) × \(backends): nft -f", n, "s")
        result.metric("cold load MeshKernel / nft -f (time)", m / n, "×", goal: "<=", 1)
        for a in addResults {
            result.metric("add one service to \(a.existing): MeshKernel", a.mesh * 1e3, "ms", goal: "<=", 10)
            result.metric("add one service to \(a.existing): nft -f", a.nft * 1e3, "ms")
        }
        result.metric("add at \(s) vs 100: MeshKernel growth", growth, "×", goal: "<=", 1.5)
        try result.write(to: options.json)
    }

    /// Both sides must have loaded everything, or the timing means nothing.
    func verify(_ sock: NFTSocket, _ r: ServiceRuleset, services s: Int, side: String) throws {
        let chains = try sock.listChains(r.table).count
        let rules = try sock.listRules(r.table).count
        let slots = try sock.listElements(r.svcSlot).count
        let mods = try sock.listElements(r.svcMod).count
        let be = try sock.listElements(r.backendMap).count
        guard chains == 2, rules == 2, slots == s, mods == s, be == s * backends else {
            throw ValidationError("\(side) loaded \(chains) chains, \(rules) rules, \(slots)/\(s) services, \(be)/\(s * backends) backends")
        }
    }
}
