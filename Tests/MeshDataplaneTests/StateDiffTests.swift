import MeshKernel
import Testing
@testable import MeshDataplane

/// The agent's path: a new full state becomes single-object changes against the applied one, and
/// a remote task's backend goes in alone. Either way the model must equal a rebuild from scratch.
@Suite struct StateDiffTests {
    static func applied(_ s: DataplaneState) -> StateIndex { StateIndex(s, model: DesiredModel(s, underlayMTU: 1500)) }

    @Test func aNewStateBecomesTheChangesThatRebuildIt() throws {
        let old = Fixture.state()
        var idx = Self.applied(old)
        var new = old
        new.services[0].backends!.removeAll { $0.address == Fixture.ip("10.10.0.12") }
        new.services.append(
            BalancedService(
                id: "s2", name: "api", vips: [.init(network: "demo", address: Fixture.ip("10.10.0.3"))],
                backends: [.init(network: "demo", address: Fixture.ip("10.10.0.14"))]))
        new.localEndpoints.append(LocalEndpoint(id: "t3", network: "demo", namespace: "task3", address: Fixture.ip("10.10.0.13")))
        new.remoteEndpoints.removeAll { $0.address == Fixture.ip("10.10.0.12") }
        new.remoteEndpoints.append(
            RemoteEndpoint(
                network: "demo", address: Fixture.ip("10.10.0.14"), nodeID: "n3",
                nodeAddress: Fixture.ip("198.18.0.3")))
        let changes = try #require(idx.changes(to: new))
        #expect(changes.count == 5, "\(changes)")
        var touched = DesiredModel.Changes()
        for c in changes { try idx.apply(c, &touched) }
        #expect(idx.model == DesiredModel(new, underlayMTU: 1500))
        // On ingress only web's published port is looked at again (its backends changed).
        let ingress = touched.sandboxes["meshd-n1-ingress"]
        #expect(
            ingress?.ports == [.init(proto: .tcp, port: 8000)] && ingress?.endpoints.isEmpty == true
                && ingress?.neighbours.isEmpty == true, "\(touched)")
        #expect(idx.changes(to: new)?.isEmpty == true)
    }

    @Test func aPublishedPortMovesBetweenServicesInOneDiff() throws {
        var old = Fixture.state()
        old.services.append(BalancedService(id: "s2", name: "api", ports: [.init(published: 9000, target: 1)]))
        var idx = Self.applied(old)
        var new = old
        new.services[0].ports = [.init(published: 9000, target: 80)]
        new.services[1].ports = [.init(published: 8000, target: 1)]
        // Both take the other's port: whichever goes first conflicts, so the order cannot help and
        // the change is refused; the reconciler then falls back to a full apply.
        let swap = try #require(idx.changes(to: new))
        var touched = DesiredModel.Changes()
        #expect(throws: DataplaneError.self) { for c in swap { try idx.apply(c, &touched) } }

        idx = Self.applied(old)
        var moved = old
        moved.services[1].ports = []
        moved.services[0].ports = [.init(published: 8000, target: 80), .init(published: 9000, target: 80)]
        for c in try #require(idx.changes(to: moved)) { try idx.apply(c, &touched) }
        #expect(idx.model == DesiredModel(moved, underlayMTU: 1500))
    }

    @Test func anotherNetworkAsksForAFullApply() {
        let old = Fixture.state()
        var new = old
        new.networks.removeAll { $0.id == "demo" }
        #expect(Self.applied(old).changes(to: new) == nil)
        var moved = old
        moved.node.advertiseAddress = Fixture.ip("198.18.0.9")
        #expect(Self.applied(old).changes(to: moved) == nil)
    }

    @Test func oneBackendInAndOutCostsItsService() throws {
        var s = Fixture.state()
        var idx = Self.applied(s)
        var touched = DesiredModel.Changes()
        try idx.apply(
            .remoteEndpoint(
                RemoteEndpoint(
                    network: "demo", address: Fixture.ip("10.10.0.15"), nodeID: "n3",
                    nodeAddress: Fixture.ip("198.18.0.3"))), &touched)
        try idx.apply(.backend(service: "s1", .init(network: "demo", address: Fixture.ip("10.10.0.15"), weight: 0)), &touched)
        s.remoteEndpoints.append(
            RemoteEndpoint(
                network: "demo", address: Fixture.ip("10.10.0.15"), nodeID: "n3",
                nodeAddress: Fixture.ip("198.18.0.3")))
        s.services[0].backends!.append(.init(network: "demo", address: Fixture.ip("10.10.0.15"), weight: 0))
        #expect(idx.model == DesiredModel(s, underlayMTU: 1500))
        #expect(touched.sandboxes["meshd-n1-demo"]?.vips == [Fixture.ip("10.10.0.2")])

        // Re-weighted in place, then removed.
        try idx.apply(.backend(service: "s1", .init(network: "demo", address: Fixture.ip("10.10.0.15"), weight: 1)), &touched)
        s.services[0].backends![s.services[0].backends!.count - 1].weight = 1
        #expect(idx.model == DesiredModel(s, underlayMTU: 1500))
        try idx.apply(.removeBackend(service: "s1", network: "demo", address: Fixture.ip("10.10.0.15")), &touched)
        s.services[0].backends!.removeLast()
        #expect(idx.model == DesiredModel(s, underlayMTU: 1500))

        #expect(throws: DataplaneError.self) {
            try idx.apply(.backend(service: "nope", .init(network: "demo", address: Fixture.ip("10.10.0.16"))), &touched)
        }
        #expect(throws: DataplaneError.self) {
            try idx.apply(.backend(service: "s1", .init(network: "demo", address: Fixture.ip("10.99.0.16"))), &touched)
        }
    }
}
