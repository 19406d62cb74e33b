import MeshKernel
import Testing
@testable import MeshDataplane

/// The balancers' plans are pure: these check what would be sent, without a kernel.
@Suite struct BalancerPlanTests {
    static func vip(_ i: Int) -> IPAddress { .v4(0x0A60_0000 + UInt32(i)) }
    static func backend(_ i: Int, _ j: Int) -> IPAddress { .v4(0x0A80_0000 + UInt32(i * 8 + j)) }

    static func state(services n: Int, backends: Int = 3) -> BalancerState {
        var s = BalancerState(gateway: IPAddress("10.96.0.1")!)
        for i in 1...n {
            s.vips[vip(i)] = (0..<backends).map { .init(address: backend(i, $0), port: nil, weight: 1) }
        }
        return s
    }

    static func elementCount(_ b: NFTBatch) -> Int {
        b.operations.reduce(0) { n, op in
            switch op {
            case .addElements(_, let e), .deleteElements(_, let e): n + e.count
            default: n + 1
            }
        }
    }

    @Test func nftablesPlanIsIdempotent() {
        var changes: [String] = []
        let want = Self.state(services: 50)
        var applied = NFTBalancer.Applied()
        let first = NFTBalancer.plan(&applied, to: want, changes: &changes)
        #expect(!first.isEmpty)
        changes = []
        var again = applied
        let second = NFTBalancer.plan(&again, to: want, changes: &changes)
        #expect(second.isEmpty && changes.isEmpty && again == applied)
    }

    @Test func oneBackendChangeAmongTenThousandIsOneSmallBatch() {
        var changes: [String] = []
        var want = Self.state(services: 10_000)
        var applied = NFTBalancer.Applied()
        _ = NFTBalancer.plan(&applied, to: want, changes: &changes)
        want.vips[Self.vip(5_000)]![1].address = IPAddress("10.200.0.1")!
        changes = []
        let clock = ContinuousClock()
        var batch = NFTBatch()
        var scope = DesiredModel.Touched()
        scope.vips = [Self.vip(5_000)]
        let took = clock.measure { batch = NFTBalancer.plan(&applied, to: want, scope: scope, changes: &changes) }
        // Replace one slot: delete + add of one element; no rule, chain or set touched.
        #expect(Self.elementCount(batch) == 2)
        #expect(
            batch.operations.allSatisfy {
                if case .addElements = $0 { return true }
                if case .deleteElements = $0 { return true }
                return false
            })
        #expect(changes.count == 1)
        #expect(took < .milliseconds(20))  // scoped: the 9,999 other VIPs are not looked at
    }

    @Test func scalingTouchesOnlyTheChangedSlotsAndAddsAChainOncePerCount() {
        var changes: [String] = []
        var want = Self.state(services: 2)
        var grown = NFTBalancer.Applied()
        _ = NFTBalancer.plan(&grown, to: want, changes: &changes)
        want.vips[Self.vip(1)]!.append(.init(address: Self.backend(1, 7), port: nil, weight: 1))
        let grow = NFTBalancer.plan(&grown, to: want, changes: &changes)
        #expect(
            grow.operations.contains {
                if case .addChain(let c) = $0 { return c.name == "vip-4" }
                return false
            })
        #expect(grown.vipTargets[Self.vip(1)]?.count == 4)
        // Scale the other one to 4 as well: the chain exists, only elements move.
        want.vips[Self.vip(2)]!.append(.init(address: Self.backend(2, 7), port: nil, weight: 1))
        let second = NFTBalancer.plan(&grown, to: want, changes: &changes)
        #expect(
            !second.operations.contains {
                if case .addChain = $0 { return true }
                return false
            })
        #expect(Self.elementCount(second) == 3)  // mod: delete + add; one new slot
    }

    @Test func drainingRemovesTheSlotForNftablesAndSetsWeightZeroForIPVS() {
        var changes: [String] = []
        var want = Self.state(services: 1)
        var nft = NFTBalancer.Applied(), ipvs = IPVSBalancer.Applied()
        _ = NFTBalancer.plan(&nft, to: want, changes: &changes)
        _ = IPVSBalancer.plan(&ipvs, to: want, changes: &changes)
        want.vips[Self.vip(1)]![0].weight = 0
        let n2 = NFTBalancer.plan(&nft, to: want, changes: &changes)
        #expect(nft.vipTargets[Self.vip(1)]?.count == 2 && !n2.isEmpty)
        let p = IPVSBalancer.plan(&ipvs, to: want, changes: &changes)
        #expect(
            p.ipvsFirst == [
                .updateDestination(
                    .fwmark(IPVSBalancer.vipBase + 1, ipv6: false),
                    IPVSDestination(Self.backend(1, 0), port: 0, weight: 0))
            ])
        #expect(p.nft.isEmpty && p.ipvsLast.isEmpty)
    }

    @Test func ipvsPlanIsIdempotentAndRemovesInOrder() {
        var changes: [String] = []
        var want = Self.state(services: 3)
        want.ingressSource = IPAddress("10.255.0.201")
        want.published[.init(proto: .tcp, port: 8000)] = [.init(address: Self.backend(9, 0), port: 80, weight: 1)]
        var applied = IPVSBalancer.Applied()
        let first = IPVSBalancer.plan(&applied, to: want, changes: &changes)
        #expect(
            first.ipvsFirst.filter {
                if case .addService = $0 { return true }
                return false
            }.count == 4)
        var copy = applied
        let again = IPVSBalancer.plan(&copy, to: want, changes: &changes)
        #expect(again.isEmpty)
        want.vips[Self.vip(2)] = nil
        let removal = IPVSBalancer.plan(&applied, to: want, changes: &changes)
        #expect(removal.ipvsFirst.isEmpty)
        #expect(removal.nft.operations.count == 1)  // stop marking …
        #expect(removal.ipvsLast == [.deleteService(.fwmark(IPVSBalancer.vipBase + 2, ipv6: false))])  // … then delete
    }

    /// A dual-stack network's VIP twins: their own `table ip6 meshd`, made once, then set
    /// elements only; a one-backend change among 1,000 twins is one element out, one in; an
    /// IPv4-only sandbox (no `gateway6`) has no such table, and losing the subnet removes it.
    @Test func ipv6TwinsAreTheirOwnTableAndChangeByElements() {
        func v6(_ i: Int, _ j: Int) -> IPAddress { IPAddress("fd00:60::\(String(i * 8 + j, radix: 16))")! }
        var want = BalancerState(gateway: IPAddress("10.96.0.1")!, gateway6: IPAddress("fd00:60::1")!)
        for i in 1...1_000 { want.vips6[v6(i, 0)] = (1...3).map { .init(address: v6(i, $0), port: nil, weight: 1) } }
        want.hairpin6 = [v6(1, 1)]
        var changes: [String] = []
        var applied = NFTBalancer.Applied()
        let first = NFTBalancer.plan(&applied, to: want, family: .ipv6, changes: &changes)
        #expect(
            first.operations.contains { if case .addTable(let t) = $0 { return t == NFTBalancer.Family.ipv6.table } else { return false } })
        #expect(changes.first == "nft: add table ip6 meshd (hairpin via fd00:60::1)" && applied.vipTargets.count == 1_000)
        // The IPv4 balancer does not see the twins.
        var v4 = NFTBalancer.Applied()
        changes = []
        _ = NFTBalancer.plan(&v4, to: want, changes: &changes)
        #expect(v4.vipTargets.isEmpty && !changes.contains { $0.contains("fd00") }, "\(changes)")

        changes = []
        var again = applied
        #expect(NFTBalancer.plan(&again, to: want, family: .ipv6, changes: &changes).isEmpty && changes.isEmpty && again == applied)

        want.vips6[v6(500, 0)]![1].address = v6(999, 7)
        var scope = DesiredModel.Touched()
        scope.vips6 = [v6(500, 0)]
        changes = []
        let one = NFTBalancer.plan(&applied, to: want, family: .ipv6, scope: scope, changes: &changes)
        #expect(
            Self.elementCount(one) == 2 && changes == ["nft: VIP \(v6(500, 0)) → \(v6(500, 1)) \(v6(999, 7)) \(v6(500, 3))"], "\(changes)")

        var v4only = want
        v4only.gateway6 = nil
        changes = []
        let gone = NFTBalancer.plan(&applied, to: v4only, family: .ipv6, changes: &changes)
        #expect(changes == ["nft: delete table ip6 meshd"] && gone.operations.count == 1 && applied == NFTBalancer.Applied())
        var none = NFTBalancer.Applied()
        #expect(NFTBalancer.plan(&none, to: v4only, family: .ipv6, changes: &changes).isEmpty)
    }
}
