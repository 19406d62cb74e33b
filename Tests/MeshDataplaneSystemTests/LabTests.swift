import Foundation
import MeshDataplane
import MeshKernel
import MeshTestbed
import Testing

/// The lab itself, before any meshd runs: namespaces, the underlay, state files.
@Suite struct LabTests {
    @Test func underlayConnectsNodesAndClient() async throws {
        try requireRoot()
        let lab = try await DataplaneLab.build()
        defer { lab.destroy() }
        for n in 1...3 {
            let addrs = try Exec.check(["ip", "-n", lab.nodeNamespace(n), "-j", "-4", "addr", "show", "dev", "eth0"])
            #expect(addrs.contains("\"198.18.0.\(n)\""))
        }
        for (from, to) in [(1, "198.18.0.2"), (2, "198.18.0.3"), (3, "198.18.0.100")] {
            let o = try Exec.run(["ip", "netns", "exec", lab.nodeNamespace(from), "ping", "-c", "1", "-W", "2", to])
            #expect(o.succeeded, "node\(from) → \(to): \(o.stdout)")
        }
        // Node ids are unique per lab and fit Naming's 12 characters, so sandboxes never collide.
        let other = try await DataplaneLab.build()
        defer { other.destroy() }
        #expect(Set(lab.nodeIDs).isDisjoint(with: other.nodeIDs))
        #expect(lab.nodeIDs.allSatisfy { $0.count <= 12 && $0.hasPrefix("mkt") })
    }

    @Test func statesDecodeAndNameEveryPeer() async throws {
        try requireRoot()
        let lab = try await DataplaneLab.build()
        defer { lab.destroy() }
        let s = DataplaneScenario(lab: lab)
        let states = lab.states(networks: [DataplaneScenario.web], tasks: s.tasks(backends: 2), services: [DataplaneScenario.whoami])
        #expect(states.count == 3)
        for (i, st) in states.enumerated() {
            let path = try lab.write(st, node: i + 1)
            let decoded = try JSONDecoder().decode(DataplaneState.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(decoded == st)
            #expect(st.node.namespace == lab.nodeNamespace(i + 1))
            #expect(st.networks.map(\.id) == ["web", "ingress"])
            #expect(st.services.first?.allBackends.count == 4)
        }
        // Node 1: the client locally; the others' tasks on both networks plus their ingress addresses remotely.
        #expect(states[0].localEndpoints.map(\.id) == ["client"])
        #expect(states[0].remoteEndpoints.count == 4 + 2)
        #expect(states[1].localEndpoints.map(\.interfaceName) == ["eth0", "eth1"])
        #expect(states[1].localEndpoints.map(\.carriesDefaultRoute) == [true, false])
        let ingressPeers = states[1].remoteEndpoints.filter { $0.network == "ingress" && $0.address.description.hasPrefix("10.255.0.20") }
        #expect(Set(ingressPeers.map(\.nodeID)) == [lab.nodeID(1), lab.nodeID(3)])
        // No published port: no ingress network.
        let plain = lab.states(networks: [DataplaneScenario.web], tasks: s.tasks(backends: 2), services: [])
        #expect(plain[0].networks.map(\.id) == ["web"] && plain[0].node.ingressAddress == nil)
    }

    @Test func destroyRemovesSandboxesOfItsNodes() async throws {
        try requireRoot()
        let lab = try await DataplaneLab.build()
        // What a dataplane would make: a sandbox named for one of the lab's nodes.
        let sandbox = Naming(nodeID: lab.nodeID(2)).sandbox("web")
        _ = try NetworkNamespace.create(named: sandbox)
        #expect(lab.sandboxes(2) == [sandbox])
        lab.destroy()
        #expect(!NetworkNamespace.exists(named: sandbox))
        // With the trailing "-": another lab of this process may be "…-1X" while this one is "…-1".
        #expect(!NetworkNamespace.list().contains { $0.hasPrefix(lab.group.prefix + "-") })
    }
}
