import MeshKernel
import Testing

@testable import MeshDataplane

/// The IPv6 half of published ports, as pure plans: the node's rule follows the ingress
/// network (the table remade in one transaction, its elements with it), and the ingress
/// sandbox's IPv6 ports change by set elements only.
@Suite struct IngressPlan6Tests {
    static func rules(_ b: NFTBatch) -> [String] {
        b.operations.compactMap { if case .addRule(let r, _) = $0 { return r.comment } else { return nil } }
    }

    @Test func theNodesIPv6RuleComesAndGoesWithADualStackIngress() {
        var want = NodeModel()
        want.ingressLink = true
        want.published = [.init(proto: .tcp, port: 8000), .init(proto: .udp, port: 53)]
        var applied = NodeIngress.Applied()
        var changes: [String] = []
        let v4 = NodeIngress.plan(&applied, to: want, changes: &changes)
        #expect(!Self.rules(v4).contains(NodeIngress.dnat6Comment) && !applied.ingress6)

        want.ingress6 = true
        changes = []
        let both = NodeIngress.plan(&applied, to: want, changes: &changes)
        guard case .deleteTable(let t)? = both.operations.first else {
            Issue.record("the table is not remade: \(both.operations.prefix(2))")
            return
        }
        #expect(t == NodeIngress.table)
        #expect(Self.rules(both).filter { $0 == NodeIngress.dnat6Comment }.count == 2)  // prerouting and output
        let readded = both.operations.reduce(0) { n, op in if case .addElements(_, let e) = op { n + e.count } else { n } }
        #expect(readded == 2 && applied.ingress6 && applied.published == want.published, "\(changes)")

        changes = []
        #expect(NodeIngress.plan(&applied, to: want, changes: &changes).isEmpty && changes.isEmpty)
        want.published.insert(.init(proto: .tcp, port: 9000))
        let one = NodeIngress.plan(&applied, to: want, only: [.init(proto: .tcp, port: 9000)], changes: &changes)
        #expect(one.operations.count == 1 && changes == ["node: publish 9000/tcp"])
    }

    @Test func ipv6PublishedPortsAreElementsOfTheSandboxsIPv6Table() {
        var want = BalancerState(
            gateway: IPAddress("10.255.0.1")!, ingressSource: IPAddress("10.255.0.201")!, gateway6: IPAddress("fd00:ff::1")!)
        want.ingressSource6 = IPAddress("fd00:ff::c9")!
        let key = BalancerState.PortKey(proto: .tcp, port: 8000)
        want.published6[key] = [
            .init(address: IPAddress("fd00:ff::b")!, port: 80, weight: 1), .init(address: IPAddress("fd00:ff::c")!, port: 80, weight: 1),
        ]
        var applied = NFTBalancer.Applied()
        var changes: [String] = []
        let first = NFTBalancer.plan(&applied, to: want, family: .ipv6, changes: &changes)
        #expect(Self.rules(first).contains("published dispatch") && Self.rules(first).contains("ingress snat"))
        #expect(changes.contains("nft: IPv6 published-port dispatch"), "\(changes)")
        #expect(changes.contains("nft: IPv6 port 8000/tcp → fd00:ff::b:80 fd00:ff::c:80"), "\(changes)")

        want.published6[key]![1].weight = 0  // draining: its slot goes
        var scope = DesiredModel.Touched()
        scope.ports = [key]
        changes = []
        let drain = NFTBalancer.plan(&applied, to: want, family: .ipv6, scope: scope, changes: &changes)
        // Elements, and the one-slot chain the first time a port has one slot.
        #expect(Self.rules(drain) == ["1 slots"] && changes == ["nft: IPv6 port 8000/tcp → fd00:ff::b:80"], "\(changes)")
        want.published6[key] = nil
        changes = []
        _ = NFTBalancer.plan(&applied, to: want, family: .ipv6, scope: scope, changes: &changes)
        #expect(changes == ["nft: remove IPv6 port 8000/tcp"] && applied.portTargets.isEmpty)
    }
}
