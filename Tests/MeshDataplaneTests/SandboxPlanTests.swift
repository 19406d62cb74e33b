import MeshKernel
import Testing
@testable import MeshDataplane

/// The sandbox's own planners, without a kernel: what they would send, in order, with undo.
@Suite struct SandboxPlanTests {
    let model = DesiredModel(Fixture.state(), underlayMTU: 1500)

    func empty(_ want: SandboxModel) -> SandboxModel {
        var m = want
        m.loAddresses = []
        m.endpoints = [:]
        m.neighbours = [:]
        m.fdb = [:]
        m.subnetRouted = false
        return m
    }

    @Test func routesForAFreshSandboxThenNothingThenOnlyTheScope() throws {
        let want = try #require(model.sandboxes["meshd-n1-demo"])
        let fresh = SandboxRoutes.additions(empty(want), want, scope: nil)
        // lo: gateway and VIP; the subnet route; n2's task as a neighbour; n2 in the FDB.
        #expect(
            fresh.lines == [
                "lo 10.10.0.1/32", "lo 10.10.0.2/32", "route 10.10.0.0/24 dev vxlan0",
                "neigh 10.10.0.12 lladdr \(Naming.vxlanMAC(node: "n2", vni: 4097))",
                "fdb \(Naming.vxlanMAC(node: "n2", vni: 4097)) dst 198.18.0.2",
            ])
        #expect(fresh.ops.count == 5 && fresh.undo.count == 5)
        #expect(SandboxRoutes.additions(want, want, scope: nil).ops.isEmpty)
        #expect(SandboxRoutes.removals(want, want, scope: nil).ops.isEmpty)

        // One neighbour gone, another new, scoped to the one new: only it is compared.
        var next = want
        next.neighbours[IPAddress("10.10.0.13")!] = Naming.vxlanMAC(node: "n2", vni: 4097)
        next.neighbours[IPAddress("10.10.0.12")!] = nil
        var scope = DesiredModel.Touched()
        scope.neighbours = [IPAddress("10.10.0.13")!]
        let add = SandboxRoutes.additions(want, next, scope: scope)
        #expect(add.lines == ["neigh 10.10.0.13 lladdr \(Naming.vxlanMAC(node: "n2", vni: 4097))"])
        if case .neigh(.delete, let n)? = add.undo.first {
            #expect(n.address == IPAddress("10.10.0.13"))
        } else {
            Issue.record("\(add.undo)")
        }
        #expect(SandboxRoutes.removals(want, next, scope: scope).ops.isEmpty)
        scope.neighbours.insert(IPAddress("10.10.0.12")!)
        #expect(SandboxRoutes.removals(want, next, scope: scope).lines == ["delete neigh 10.10.0.12"])
        var have = want
        SandboxRoutes.settle(&have, to: next, scope: scope)
        #expect(have.neighbours == next.neighbours)
    }

    @Test func removingTheTaskDetachesItsVethAndTheVIPsAddress() throws {
        let have = try #require(model.sandboxes["meshd-n1-demo"])
        var s = Fixture.state()
        s.localEndpoints.removeAll()
        s.services.removeAll()
        let want = try #require(DesiredModel(s, underlayMTU: 1500).sandboxes["meshd-n1-demo"])
        let gone = SandboxRoutes.removals(have, want, scope: nil)
        #expect(gone.lines == ["detach \(Naming.veth(task: "t1", network: "demo"))", "delete lo 10.10.0.2/32"])
    }

    @Test func anIngressAttachmentBesideAnotherNetworkAnswersThroughTheIngressGateway() throws {
        let ing = try #require(model.sandboxes["meshd-n1-ingress"]?.endpoints.values.first)
        let ops = TaskAttachment.taskSide(ing)
        // address, up, then the table-77 default route and the source rule; no main-table default.
        #expect(ops.count == 4, "\(ops)")
        if case .route(.replace, let r) = ops[2] {
            #expect(r.table == Naming.taskReturnTable && r.gateway == IPAddress("10.255.0.1") && r.destination.length == 0)
        } else {
            Issue.record("\(ops[2])")
        }
        if case .rule(.add, let rule) = ops[3] {
            #expect(rule.source == .host(IPAddress("10.255.0.11")!) && rule.table == Naming.taskReturnTable)
        } else {
            Issue.record("\(ops[3])")
        }
        let demo = try #require(model.sandboxes["meshd-n1-demo"]?.endpoints.values.first)
        let demoOps = TaskAttachment.taskSide(demo)
        #expect(demoOps.count == 3)
        if case .route(.replace, let r) = demoOps[2] { #expect(r.table == Route.mainTable && r.gateway == IPAddress("10.10.0.1")) }
    }
}
