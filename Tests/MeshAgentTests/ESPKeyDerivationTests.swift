import MeshControl
import MeshDataplane
import MeshKernel
import Testing
@testable import MeshAgent

/// Pair keys derived from the gossip keys: both ends agree with the directions swapped, every
/// direction, pair and generation differs, and the dataplane state takes them for the nodes of
/// encrypted networks only.
@Suite struct ESPKeyDerivationTests {
    static let old = [UInt8](repeating: 7, count: 32), new = [UInt8](repeating: 9, count: 32)

    @Test func bothEndsDeriveTheSameSAsWithTheDirectionsSwapped() {
        let a = ESPKeyDerivation.peerKeys(local: "n1", peer: "n2", address: IPAddress("198.18.0.2")!, secrets: [Self.old])
        let b = ESPKeyDerivation.peerKeys(local: "n2", peer: "n1", address: IPAddress("198.18.0.1")!, secrets: [Self.old])
        #expect(a.keys[0].outbound == b.keys[0].inbound && a.keys[0].inbound == b.keys[0].outbound)
        #expect(a.keys[0].generation == b.keys[0].generation)
        #expect(a.keys[0].outbound != a.keys[0].inbound)
        let k = a.keys[0].outbound
        #expect(k.key.count == 16 && k.salt.count == 4 && k.spi >= 256)
        // Not the gossip key itself.
        #expect(k.key != Array(Self.old.prefix(16)))
    }

    @Test func everyPairAndGenerationHasItsOwnKeysAndARotationKeepsTheOrder() {
        let n2 = ESPKeyDerivation.peerKeys(local: "n1", peer: "n2", address: IPAddress("198.18.0.2")!, secrets: [Self.new, Self.old])
        let n3 = ESPKeyDerivation.peerKeys(local: "n1", peer: "n3", address: IPAddress("198.18.0.3")!, secrets: [Self.new, Self.old])
        #expect(n2.keys.count == 2 && n2.keys[0].generation != n2.keys[1].generation)
        #expect(n2.keys[0].outbound != n2.keys[1].outbound && n2.keys[0].outbound.spi != n2.keys[1].outbound.spi)
        #expect(n2.keys[0].outbound != n3.keys[0].outbound)
        // The primary (sealing) key is the gossip primary's.
        let single = ESPKeyDerivation.peerKeys(local: "n1", peer: "n2", address: IPAddress("198.18.0.2")!, secrets: [Self.new])
        #expect(n2.keys[0] == single.keys[0])
    }

    @Test func theStateCarriesKeysForNodesOfEncryptedNetworksOnly() {
        let secret = OverlayNetwork(
            id: "s", name: "secret", vni: 4200, subnet: IPPrefix("10.42.0.0/24")!, gateway: IPAddress("10.42.0.1")!, encrypted: true)
        let plain = OverlayNetwork(id: "p", name: "plain", vni: 4201, subnet: IPPrefix("10.43.0.0/24")!, gateway: IPAddress("10.43.0.1")!)
        let a = NodeAssignment(
            node: NodeIdentity(id: "n1", advertiseAddress: IPAddress("198.18.0.1")!), networks: [secret, plain],
            remoteTasks: [
                .init(
                    id: "r2", name: "x.1", service: "x", nodeID: "n2", nodeAddress: IPAddress("198.18.0.2")!,
                    attachments: [.init(network: "s", address: IPAddress("10.42.0.12")!)]),
                .init(
                    id: "r3", name: "y.1", service: "y", nodeID: "n3", nodeAddress: IPAddress("198.18.0.3")!,
                    attachments: [.init(network: "p", address: IPAddress("10.43.0.13")!)]),
            ])
        let state = AssignmentPlan.dataplane(a, attached: [:], draining: [], secrets: [Self.old])
        #expect(state.peerKeys.map(\.nodeID) == ["n2"])
        #expect(state.problems().isEmpty, "\(state.problems())")
        #expect(AssignmentPlan.dataplane(a, attached: [:], draining: []).peerKeys.isEmpty)
    }
}
