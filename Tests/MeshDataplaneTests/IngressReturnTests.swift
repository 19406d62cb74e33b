import MeshKernel
import Testing

#if canImport(Glibc)
    import Glibc
#endif
@testable import MeshDataplane

/// What the state asks of ingress that keeps the client's address, and the pure plan that
/// programs it: per other node one map element, one rule, one route; nothing per task or service.
@Suite struct IngressReturnTests {
    let n2 = Naming.vxlanMAC(node: "n2", vni: 4096)
    let n2Ingress = IPAddress("10.255.0.202")!

    @Test func theIngressSandboxKnowsEveryOtherNodesIngressAddressAndTasksTheirGateway() throws {
        let model = DesiredModel(Fixture.state(), underlayMTU: 1500)
        let ing = try #require(model.sandboxes["meshd-n1-ingress"])
        // Only the node's own address (10.255.0.202), not n2's task on ingress (10.255.0.12).
        #expect(ing.returns == [n2: n2Ingress])
        #expect(model.sandboxes["meshd-n1-demo"]?.returns.isEmpty == true)
        #expect(!ing.balancer.ingressSNAT)
        // t1's ingress attachment (its default route is on demo) answers through the ingress gateway.
        #expect(ing.endpoints.values.first?.returnGateway == IPAddress("10.255.0.1"))
        #expect(model.sandboxes["meshd-n1-demo"]?.endpoints.values.first?.returnGateway == nil)

        var s = Fixture.state()
        s.node.ingressSNAT = true
        #expect(DesiredModel(s, underlayMTU: 1500).sandboxes["meshd-n1-ingress"]?.balancer.ingressSNAT == true)
    }

    @Test func aNodeLeavingTouchesOnlyItsReturnPath() throws {
        var model = DesiredModel(Fixture.state(), underlayMTU: 1500)
        let peer = try #require(Fixture.state().remoteEndpoints.first { $0.isNodeIngress == true })
        var c = DesiredModel.Changes()
        model.setRemote(old: peer, new: nil, &c)
        #expect(model.sandboxes["meshd-n1-ingress"]?.returns.isEmpty == true)
        #expect(c.sandboxes["meshd-n1-ingress"]?.returns == [n2])
        // A remote task on ingress is no return path: removing it touches none.
        var model2 = DesiredModel(Fixture.state(), underlayMTU: 1500)
        var c2 = DesiredModel.Changes()
        let task = try #require(Fixture.state().remoteEndpoints.first { $0.network == "ingress" && $0.isNodeIngress != true })
        model2.setRemote(old: task, new: nil, &c2)
        #expect(c2.sandboxes["meshd-n1-ingress"]?.returns.isEmpty == true)
        #expect(model2.sandboxes["meshd-n1-ingress"]?.returns == [n2: n2Ingress])
    }

    @Test func planAddsThenChangesNothingThenRemovesInOrder() {
        let mark = IngressReturn.mark(n2Ingress)
        #expect(mark == 0x4dff_00ca)  // 0x4d000000 + the low 24 bits of 10.255.0.202
        var a = IngressReturn.Applied()
        var lines: [String] = []
        let first = IngressReturn.plan(&a, to: [n2: n2Ingress], changes: &lines)
        // The route and rule exist before the element that sets the mark leading to them.
        #expect(first.before.count == 2 && first.after.isEmpty)
        if case .route(.replace, let r) = first.before[0] {
            #expect(r.table == mark && r.gateway == n2Ingress && r.onlink && r.device == .name("vxlan0"))
        } else {
            Issue.record("first op is \(first.before[0])")
        }
        if case .rule(.add, let r) = first.before[1] { #expect(r.mark == mark && r.table == mark && r.priority == 1000) }
        let ops = first.nft.operations.map(\.label)
        #expect(ops.contains("add table ip meshd_return") && ops.contains { $0.hasPrefix("add map ip meshd_return entries") })
        #expect(a.entries == [n2: mark] && a.rules == [mark] && a.routes == [mark: n2Ingress])

        var again: [String] = []
        let second = IngressReturn.plan(&a, to: [n2: n2Ingress], only: [n2], changes: &again)
        #expect(second.before.isEmpty && second.nft.isEmpty && second.after.isEmpty && again.isEmpty)

        // A scope that names another node compares only that one.
        let other = Naming.vxlanMAC(node: "n3", vni: 4096)
        let scoped = IngressReturn.plan(&a, to: [:], only: [other], changes: &again)
        #expect(scoped.nft.isEmpty && a.entries == [n2: mark])

        var gone: [String] = []
        let third = IngressReturn.plan(&a, to: [:], only: [n2], changes: &gone)
        #expect(third.before.isEmpty && third.after.count == 2)
        #expect(third.nft.operations.map(\.label).allSatisfy { $0.hasPrefix("delete element") }, "\(third.nft.operations)")
        #expect(a.entries.isEmpty && a.rules.isEmpty && a.routes.isEmpty)
        #expect(gone == ["ingress return: delete \(n2)"])
    }

    /// A dual-stack ingress: the same marks, an IPv6 rule and route per other node (next hop the
    /// twin of its ingress address), the IPv6 map written beside the IPv4 one; a scoped change of
    /// one node touches its IPv6 pair only; dropping the IPv6 subnet removes the IPv6 side.
    @Test func theIPv6SideFollowsTheIPv4One() {
        let subnet = IPPrefix("10.255.0.0/16")!, subnet6 = IPPrefix("fd00:ff::/64")!
        func twin(_ a: IPAddress) -> IPAddress? { subnet6.embedding(hostOf: a, in: subnet) }
        let n3 = Naming.vxlanMAC(node: "n3", vni: 4096), n3Ingress = IPAddress("10.255.0.203")!
        let mark = IngressReturn.mark(n2Ingress), mark3 = IngressReturn.mark(n3Ingress)
        var a = IngressReturn.Applied()
        var lines: [String] = []
        let first = IngressReturn.plan(&a, to: [n2: n2Ingress, n3: n3Ingress], twin: twin, changes: &lines)
        #expect(first.before.count == 8 && first.after.isEmpty)
        #expect(a.rules6 == [mark, mark3] && a.routes6 == [mark: IPAddress("fd00:ff::ca")!, mark3: IPAddress("fd00:ff::cb")!])
        let ops = first.nft.operations.map(\.label)
        #expect(ops.contains("add table ip6 meshd_return") && lines.contains("nft: add table ip6 meshd_return"), "\(ops)")
        let v6rules = first.before.compactMap { if case .rule(.add, let r) = $0, r.family == AF_INET6 { r } else { nil } }
        #expect(v6rules.count == 2)

        var again: [String] = []
        #expect(IngressReturn.plan(&a, to: [n2: n2Ingress, n3: n3Ingress], twin: twin, only: [n2], changes: &again).before.isEmpty)
        let gone = IngressReturn.plan(&a, to: [n2: n2Ingress], twin: twin, only: [n3], changes: &again)
        // n3's IPv4 and IPv6 rule and route go; n2's stay.
        #expect(gone.before.isEmpty && gone.after.count == 4, "\(gone.after)")
        #expect(a.rules6 == [mark] && a.routes6 == [mark: IPAddress("fd00:ff::ca")!])
        let deletes = gone.nft.operations.map(\.label)
        #expect(deletes.count == 2 && deletes.allSatisfy { $0.hasPrefix("delete element") }, "\(deletes)")

        var v4only: [String] = []
        let dropped = IngressReturn.plan(&a, to: [n2: n2Ingress], only: [n2], changes: &v4only)
        #expect(v4only == ["nft: delete table ip6 meshd_return"] && dropped.after.count == 2)
        #expect(!a.table6 && a.rules6.isEmpty && a.routes6.isEmpty && a.rules == [mark])
    }
}
