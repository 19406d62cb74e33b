import ArgumentParser
import Foundation
import MeshKernel
import MeshTestbed

/// The service ruleset of the nftables dataplane: a verdict map from VIP . proto . port to a
/// per-service chain, whose one rule DNATs through `numgen random mod N` into the service's
/// backend map. Built by MeshKernel (one batch) and written as nft text (for `nft -f`).
struct ServiceRuleset {
    static let table = NFTTable(.ip, "meshbench")
    static let pre = NFTChain(table, "prerouting", base: .init(type: .nat, hook: .prerouting, priority: -100))
    static let services = NFTSet(table, "services", key: NFTKeyType(.ipv4Address, .inetProto, .inetService), kind: .verdictMap)

    let backends: Int

    static func vip(_ i: Int) -> IPAddress { .v4(0x0A60_0000 + UInt32(i)) }          // 10.96.x.y
    func backend(_ i: Int, _ j: Int) -> IPAddress { .v4(0x0A80_0000 + UInt32(i * backends + j)) }  // 10.128.x.y
    static func chain(_ i: Int) -> NFTChain { NFTChain(table, "svc-\(i)") }
    static func map(_ i: Int) -> NFTSet {
        NFTSet(table, "svc-\(i)-be", key: NFTKeyType(.integer(bytes: 4)), kind: .map(NFTKeyType(.ipv4Address, .inetService)))
    }

    static func base() -> NFTBatch {
        var b = NFTBatch()
        b.add(table); b.add(pre); b.add(services)
        b.add(NFTRule(pre, NFTExpr.vmap([.ipDaddr, .l4proto, .thDport], "services")))
        return b
    }

    func add(service i: Int, to b: inout NFTBatch) {
        let m = Self.map(i), c = Self.chain(i)
        b.add(c)
        b.add(m)
        b.add((0..<backends).map { j in .map(.u32(UInt32(j)), to: .concat(.address(backend(i, j)), .port(8080))) }, to: m)
        b.add(NFTRule(c, NFTExpr.match(.l4proto, .eq, .proto(6)) + NFTExpr.dnatNumgen(modulus: UInt32(backends), map: m.name)))
        b.add([.map(.concat(.address(Self.vip(i)), .proto(6), .port(80)), to: .goto(c.name))], to: Self.services)
    }

    func nftBase() -> String {
        """
        table ip meshbench {
          map services { type ipv4_addr . inet_proto . inet_service : verdict; }
          chain prerouting { type nat hook prerouting priority -100; policy accept; ip daddr . meta l4proto . th dport vmap @services; }
        }

        """
    }

    func nftService(_ i: Int) -> String {
        let elements = (0..<backends).map { j in "\(j) : \(backend(i, j)) . 8080" }.joined(separator: ", ")
        return """
        add chain ip meshbench svc-\(i)
        add map ip meshbench svc-\(i)-be { typeof numgen random mod \(backends) : ip daddr . tcp dport; elements = { \(elements) }; }
        add rule ip meshbench svc-\(i) meta l4proto tcp dnat ip to numgen random mod \(backends) map @svc-\(i)-be
        add element ip meshbench services { \(Self.vip(i)) . tcp . 80 : goto svc-\(i) }

        """
    }
}

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
        let r = ServiceRuleset(backends: backends)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshbench-nft-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("ruleset.nft").path
        try (r.nftBase() + (0..<s).map(r.nftService).joined()).write(toFile: file, atomically: true, encoding: .utf8)

        print("nft-load: \(s) services x \(backends) backends = \(s * backends) backend-map elements + \(s) vmap elements, "
              + "\(s) chains and rules; \(rounds) round(s), fresh namespace per side per round")
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
                    mesh.append(seconds(try await clock.measure {
                        var b = ServiceRuleset.base()
                        for i in 0..<s { r.add(service: i, to: &b) }
                        try await sock.commit(b)
                    }))
                } else {
                    nft.append(seconds(try clock.measure { try Exec.check(["ip", "netns", "exec", ns.name!, "nft", "-f", file]) }))
                }
                try verify(sock, services: s, backends: backends, side: side == 0 ? "MeshKernel" : "nft -f")
            }
            print(String(format: "  round %d: MeshKernel %.0f ms   nft -f %.0f ms", round + 1, mesh.last! * 1e3, nft.last! * 1e3))
        }
        let m = median(mesh), n = median(nft)
        print(String(format: "  cold load medians: MeshKernel %.0f ms, nft -f %.0f ms: MeshKernel takes %.2fx nft's time (goal <= 1.0x and < 2 s)",
                     m * 1e3, n * 1e3, m / n))

        // One service added to a table holding `existing` services: the cost must not grow with it.
        var addResults: [(existing: Int, mesh: Double, nft: Double)] = []
        for existing in [100, s] {
            let group = NamespaceGroup(tag: "meshbench")
            defer { group.destroy() }
            let ns = try group.create("add")
            let sock = try ns.openNFTables()
            var b = ServiceRuleset.base()
            for i in 0..<existing { r.add(service: i, to: &b) }
            try await sock.commit(b)
            var meshTimes: [Double] = [], nftTimes: [Double] = []
            let clock = ContinuousClock()
            for k in 0..<adds {
                let i = existing + 2 * k
                meshTimes.append(seconds(try await clock.measure {
                    var one = NFTBatch()
                    r.add(service: i, to: &one)
                    try await sock.commit(one)
                }))
                let snippet = dir.appendingPathComponent("add-\(i + 1).nft").path
                try r.nftService(i + 1).write(toFile: snippet, atomically: true, encoding: .utf8)
                nftTimes.append(seconds(try clock.measure { try Exec.check(["ip", "netns", "exec", ns.name!, "nft", "-f", snippet]) }))
            }
            try verify(sock, services: existing + 2 * adds, backends: backends, side: "additions")
            addResults.append((existing, median(meshTimes), median(nftTimes)))
            print(String(format: "  add one service to %d: MeshKernel %.2f ms   nft -f %.2f ms (median of %d)",
                         existing, median(meshTimes) * 1e3, median(nftTimes) * 1e3, adds))
        }
        let growth = addResults[1].mesh / addResults[0].mesh
        print(String(format: "  one-service add at %d vs 100 existing: MeshKernel %.2fx (goal <= 1.5x, <= 10 ms), nft -f %.2fx",
                     s, growth, addResults[1].nft / addResults[0].nft))
        if let path = options.json {
            let result: [String: Any] = ["benchmark": "nft-load", "services": s, "backends": backends, "rounds": rounds,
                                         "mesh_cold_s": m, "nft_cold_s": n, "ratio_cold": m / n,
                                         "mesh_add_small_s": addResults[0].mesh, "mesh_add_large_s": addResults[1].mesh,
                                         "nft_add_small_s": addResults[0].nft, "nft_add_large_s": addResults[1].nft,
                                         "mesh_add_growth": growth]
            try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
        }
    }

    /// Both sides must have loaded everything, or the timing means nothing.
    func verify(_ sock: NFTSocket, services s: Int, backends: Int, side: String) throws {
        let t = ServiceRuleset.table
        let chains = try sock.listChains(t).count
        let rules = try sock.listRules(t).count
        let vmap = try sock.listElements(ServiceRuleset.services).count
        let sample = try sock.listElements(ServiceRuleset.map(0)).count
        guard chains == s + 1, rules == s + 1, vmap == s, sample == backends else {
            throw ValidationError("\(side) loaded \(chains - 1)/\(s) service chains, \(rules - 1) rules, \(vmap) vmap elements, \(sample)/\(backends) backends")
        }
    }
}
