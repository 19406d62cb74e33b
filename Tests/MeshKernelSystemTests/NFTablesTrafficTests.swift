import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

/// A VIP load-balanced by an nftables numgen map, carrying real HTTP requests from curl.
@Suite("nftables traffic proof")
struct NFTablesTrafficTests {
    @Test func numgenVIPSpreadsEvenlyAndStopsSendingToADeletedBackend() async throws {
        guard getuid() == 0 else { throw NotRoot() }
        let lab = try await LoadBalancerLab.build(tag: "mkt-nftlb")
        defer { lab.destroy() }
        let nft = try lab.lb.openNFTables()

        let t = NFTTable(.ip, "meshd")
        let pre = NFTChain(t, "prerouting", base: .init(type: .nat, hook: .prerouting, priority: -100))
        let services = NFTSet(t, "services", key: NFTKeyType(.ipv4Address, .inetProto, .inetService), kind: .verdictMap)
        let svc = NFTChain(t, "svc-web")
        func backendMap(_ n: Int) -> NFTSet {
            NFTSet(t, "svc-web-\(n)", key: NFTKeyType(.integer(bytes: 4)), kind: .map(NFTKeyType(.ipv4Address, .inetService)))
        }
        func elements(_ addrs: [IPAddress]) -> [NFTElement] {
            addrs.enumerated().map { .map(.u32(UInt32($0.offset)), to: .concat(.address($0.element), .port(80))) }
        }

        // Incremental numgen ("numgen inc mod 3") would give exactly 10/10/10; random is what the
        // dataplane uses, so use it and check the spread is the one a fair die gives, then prove
        // exactness with the incremental generator.
        var b = NFTBatch()
        b.add(t)
        b.add(pre)
        b.add(services)
        b.add(svc)
        b.add(backendMap(3))
        b.add(elements(lab.backendAddresses), to: backendMap(3))
        b.add([.map(.concat(.address(LoadBalancerLab.vip), .proto(6), .port(80)), to: .goto("svc-web"))], to: services)
        b.add(NFTRule(pre, NFTExpr.vmap([.ipDaddr, .l4proto, .thDport], "services")))
        b.add(
            NFTRule(
                svc,
                [
                    .numgen(random: false, modulus: 3, offset: 0, into: .r(0)),
                    .lookup(set: "svc-web-3", from: .r(0), into: .r(0), invert: false),
                    .nat(.dnat, family: .ip, address: .r(0), port: .r(1), flags: [.protoSpecified]),
                ],
                comment: "svc-web"))
        try await nft.commit(b)

        let spread = try lab.spread(30)
        #expect(spread == ["backend1": 10, "backend2": 10, "backend3": 10], "\(spread)")
        #expect(lab.backends.map(\.requestCount) == [10, 10, 10])

        // Random selection: every backend gets traffic, none gets it all.
        let handle = try #require(try nft.listRules(t, chain: "svc-web").first?.handle)
        b = NFTBatch()
        b.replace(NFTRule(svc, NFTExpr.dnatNumgen(modulus: 3, map: "svc-web-3"), comment: "svc-web"), handle: handle)
        try await nft.commit(b)
        let random = try lab.spread(30)
        #expect(random["failed"] == nil && random.count == 3, "\(random)")

        // Delete backend 2: one batch swaps in a 2-entry map and the rule that uses it.
        b = NFTBatch()
        b.add(backendMap(2))
        b.add(elements([lab.backendAddresses[0], lab.backendAddresses[2]]), to: backendMap(2))
        b.replace(NFTRule(svc, NFTExpr.dnatNumgen(modulus: 2, map: "svc-web-2"), comment: "svc-web"), handle: handle)
        b.delete(backendMap(3))
        try await nft.commit(b)
        let before = lab.backends[1].requestCount
        let after = try lab.spread(30)
        #expect(after["backend2"] == nil && after["failed"] == nil, "\(after)")
        #expect((after["backend1"] ?? 0) + (after["backend3"] ?? 0) == 30)
        #expect(lab.backends[1].requestCount == before, "the deleted backend still got requests")
    }

    /// The O(1)-update layout of the benchmark (NFTServiceRuleset) carries real traffic: a VIP
    /// dispatched to the chain for its backend count, then moved to two backends with element
    /// changes only.
    @Test func serviceLayoutCarriesTrafficAndUpdatesWithElementsOnly() async throws {
        guard getuid() == 0 else { throw NotRoot() }
        let lab = try await LoadBalancerLab.build(tag: "mkt-nftsvc")
        defer { lab.destroy() }
        let nft = try lab.lb.openNFTables()
        let r = NFTServiceRuleset(table: NFTTable(.ip, "meshd"))
        var b = r.base()
        r.addModulus(3, to: &b)
        r.addModulus(2, to: &b)
        r.add(service: 5, vip: LoadBalancerLab.vip, backends: lab.backendAddresses.map { ($0, 80) }, to: &b)
        try await nft.commit(b)
        let spread = try lab.spread(60)
        #expect(spread["failed"] == nil && spread.count == 3, "\(spread)")
        let rules = try nft.listRules(r.table).count

        // Backends 1 and 3 only: the service gets a new id and moves to the 2-backend chain.
        b = NFTBatch()
        r.remove(service: 5, vip: LoadBalancerLab.vip, backends: 3, to: &b)
        r.add(service: 6, vip: LoadBalancerLab.vip, backends: [(lab.backendAddresses[0], 80), (lab.backendAddresses[2], 80)], to: &b)
        #expect(b.operations.allSatisfy { if case .addElements = $0 { true } else if case .deleteElements = $0 { true } else { false } })
        try await nft.commit(b)
        let before = lab.backends[1].requestCount
        let after = try lab.spread(30)
        #expect(after["failed"] == nil && after["backend2"] == nil && after.count == 2, "\(after)")
        #expect(lab.backends[1].requestCount == before)
        #expect(try nft.listRules(r.table).count == rules)
    }
}
