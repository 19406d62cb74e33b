import MeshKernel
import Testing
@testable import MeshDataplane

@Suite struct DesiredModelTests {
    let model = DesiredModel(Fixture.state(), underlayMTU: 9000)

    @Test func oneSandboxPerNetworkNamedForNodeAndNetwork() throws {
        #expect(Set(model.sandboxes.keys) == ["meshd-n1-demo", "meshd-n1-ingress"])
        let demo = try #require(model.sandboxes["meshd-n1-demo"])
        #expect(demo.vxlan?.mtu == 8950)  // underlay − 50
        #expect(demo.vxlan?.local == IPAddress("198.18.0.1"))  // pinned to the advertise address
        #expect(demo.loAddresses == [IPAddress("10.10.0.1")!, IPAddress("10.10.0.2")!])
        #expect(demo.neighbours == [IPAddress("10.10.0.12")!: Naming.vxlanMAC(node: "n2", vni: 4097)])
        #expect(demo.fdb == [Naming.vxlanMAC(node: "n2", vni: 4097): IPAddress("198.18.0.2")!])
        #expect(demo.balancer.vips[IPAddress("10.10.0.2")!]?.map(\.address) == [IPAddress("10.10.0.11")!, IPAddress("10.10.0.12")!])
        #expect(demo.balancer.hairpin == [IPAddress("10.10.0.11")!])
        let ep = try #require(demo.endpoints[Naming.veth(task: "t1", network: "demo")])
        #expect(ep.gateway == IPAddress("10.10.0.1") && ep.interface == "eth0" && ep.prefixLength == 24)
    }

    @Test func ingressPublishesEverywhereAndHostModeOnlyWithALocalTask() throws {
        let ing = try #require(model.sandboxes["meshd-n1-ingress"])
        let key = BalancerState.PortKey(proto: .tcp, port: 8000)
        #expect(ing.balancer.published[key]?.map { "\($0.address):\($0.port!)" } == ["10.255.0.11:80", "10.255.0.12:80"])
        #expect(ing.balancer.ingressSource == IPAddress("10.255.0.201"))
        #expect(ing.loAddresses.contains(IPAddress("10.255.0.201")!))
        #expect(model.node.published == [key] && model.node.ingressLink)
        // The ingress endpoint does not take the task's default route.
        #expect(ing.endpoints.values.first?.gateway == nil)

        var s = Fixture.state()
        s.services[0].ports = [.init(published: 8000, target: 80, mode: .host)]
        let host = DesiredModel(s, underlayMTU: 1500)
        #expect(host.sandboxes["meshd-n1-ingress"]?.balancer.published[key]?.map(\.address) == [IPAddress("10.255.0.11")!])
        s.localEndpoints.removeAll { $0.network == "ingress" }
        let none = DesiredModel(s, underlayMTU: 1500)
        #expect(none.node.published.isEmpty)
        #expect(none.sandboxes["meshd-n1-ingress"]?.balancer.published.isEmpty == true)
    }

    @Test func dnsrrServicesGetNoVIP() {
        var s = Fixture.state()
        s.services[0].endpointMode = .dnsrr
        let m = DesiredModel(s, underlayMTU: 1500)
        #expect(m.sandboxes["meshd-n1-demo"]?.balancer.vips.isEmpty == true)
        #expect(m.sandboxes["meshd-n1-demo"]?.loAddresses == [IPAddress("10.10.0.1")!])
    }

    @Test func namesAreStableAndDistinct() {
        #expect(Naming.vxlanMAC(node: "n1", vni: 4097) == Naming.vxlanMAC(node: "n1", vni: 4097))
        #expect(Naming.vxlanMAC(node: "n1", vni: 4097) != Naming.vxlanMAC(node: "n2", vni: 4097))
        #expect(!Naming.vxlanMAC(node: "n1", vni: 1).isMulticast && Naming.vxlanMAC(node: "n1", vni: 1).isLocallyAdministered)
        #expect(Naming.veth(task: "t1", network: "demo").utf8.count == 10)
        // A '-' in an id cannot make two nodes' sandbox names meet.
        #expect(Naming(nodeID: "a-b").sandbox("c") != Naming(nodeID: "a").sandbox("b-c"))
    }

    @Test func weightsBecomeInterleavedSlotsAndDrainingGetsNone() {
        let a = IPAddress("10.0.0.1")!, b = IPAddress("10.0.0.2")!, c = IPAddress("10.0.0.3")!
        let slots = SlotLayout.expand([
            .init(address: a, port: nil, weight: 4), .init(address: b, port: nil, weight: 2), .init(address: c, port: nil, weight: 0),
        ])
        #expect(slots.map(\.address) == [a, b, a])  // 4:2 reduces to 2:1
        #expect(SlotLayout.expand([.init(address: c, port: nil, weight: 0)]).isEmpty)
    }
}

@Suite struct IncrementalModelTests {
    /// A state with `n` services, then the same after one change either way: the incremental
    /// model must equal the one built from scratch, and the change must name only what it touched.
    @Test func singleChangesMatchAFullRebuild() throws {
        var s = Fixture.state()
        let base = DesiredModel(s, underlayMTU: 1500)
        var idx = StateIndex(s, model: base)
        var web = s.services[0]
        web.backends!.removeAll { $0.address == IPAddress("10.10.0.12") }
        web.ports = [.init(published: 8080, target: 80)]
        var touched = DesiredModel.Changes()
        try idx.apply(.service(web), &touched)
        s.services[0] = web
        #expect(idx.model == DesiredModel(s, underlayMTU: 1500))
        #expect(touched.sandboxes["meshd-n1-demo"]?.vips == [IPAddress("10.10.0.2")!])
        #expect(touched.nodePorts == [.init(proto: .tcp, port: 8000), .init(proto: .tcp, port: 8080)])

        let t3 = LocalEndpoint(id: "t3", network: "demo", namespace: "task3", address: IPAddress("10.10.0.13")!)
        touched = .init()
        try idx.apply(.localEndpoint(t3), &touched)
        s.localEndpoints.append(t3)
        #expect(idx.model == DesiredModel(s, underlayMTU: 1500))
        #expect(touched.sandboxes["meshd-n1-demo"]?.endpoints == [Naming.veth(task: "t3", network: "demo")])

        // Removing one of two remote endpoints on n2 keeps n2's FDB entry; removing the last drops it.
        touched = .init()
        try idx.apply(.removeRemoteEndpoint(network: "ingress", address: IPAddress("10.255.0.12")!), &touched)
        #expect(idx.model.sandboxes["meshd-n1-ingress"]?.fdb.count == 1)
        try idx.apply(.removeRemoteEndpoint(network: "ingress", address: IPAddress("10.255.0.202")!), &touched)
        #expect(idx.model.sandboxes["meshd-n1-ingress"]?.fdb.isEmpty == true)

        // A conflicting port is refused and changes nothing.
        let other = BalancedService(id: "s2", name: "api", ports: [.init(published: 8080, target: 1)])
        #expect(throws: DataplaneError.self) { try idx.apply(.service(other), &touched) }
    }
}
