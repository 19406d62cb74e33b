import Foundation
import MeshKernel
import MeshTestbed
import Testing
@testable import MeshDataplane

/// Encrypted overlays on the host lane, whose kernel has no ESP (no esp4, no rfc4106): the node
/// refuses the encrypted network with the kernel's answer and attaches nothing of it, while a
/// plain network beside it works; and the drop rule SecureOverlay plans, committed to a node
/// namespace, reads back with `nft -j` as drawn in its doc comment.
@Suite(.serialized) struct EncryptedRefusalTests {
    static let plain = OverlayNetwork(
        id: "plain", name: "plain", vni: 5101, subnet: IPPrefix("10.51.0.0/24")!, gateway: IPAddress("10.51.0.1")!)
    static let secret = OverlayNetwork(
        id: "secret", name: "secret", vni: 5102, subnet: IPPrefix("10.52.0.0/24")!, gateway: IPAddress("10.52.0.1")!,
        encrypted: true)

    static func keys() -> PeerKeys {
        PeerKeys(
            nodeID: "peer", nodeAddress: IPAddress("198.18.8.2")!,
            keys: [
                PairKey(
                    generation: 1, outbound: SAKey(spi: 0x1001, key: .init(repeating: 1, count: 16), salt: [1, 1, 1, 1]),
                    inbound: SAKey(spi: 0x1002, key: .init(repeating: 2, count: 16), salt: [2, 2, 2, 2]))
            ])
    }

    @Test func aNodeWithoutESPRefusesTheEncryptedNetworkAndAttachesNothingOfIt() async throws {
        try requireRoot()
        let group = NamespaceGroup(tag: "mkt-esp")
        let id = "mktesp\(getpid() % 100_000)x\(group.prefix.split(separator: "-").last!)"
        defer {
            for name in NetworkNamespace.list() where name.hasPrefix(Naming(nodeID: id).sandboxPrefix) {
                try? NetworkNamespace.delete(named: name)
            }
            group.destroy()
        }
        let node = try group.create("node")
        let h = try NetlinkHandle(namespace: node)
        try await h.apply([.linkSet("lo", LinkChange(up: true))])
        try await h.linkAdd(LinkSpec(name: "under0", kind: .veth(peerName: "under1", peerNamespace: nil), mtu: 1500, up: true))
        try await h.addrAdd(InterfaceAddress(device: "under0", prefix: IPPrefix("198.18.8.1/24")!))
        _ = try group.create("task1")
        _ = try group.create("task2")
        let state = DataplaneState(
            node: NodeIdentity(id: id, advertiseAddress: IPAddress("198.18.8.1")!, namespace: group.name("node")),
            networks: [Self.plain, Self.secret],
            localEndpoints: [
                LocalEndpoint(id: "task1", network: "plain", namespace: group.name("task1"), address: IPAddress("10.51.0.11")!),
                LocalEndpoint(id: "task2", network: "secret", namespace: group.name("task2"), address: IPAddress("10.52.0.11")!),
            ],
            remoteEndpoints: [
                RemoteEndpoint(network: "secret", address: IPAddress("10.52.0.12")!, nodeID: "peer", nodeAddress: IPAddress("198.18.8.2")!)
            ],
            peerKeys: [Self.keys()])

        let r = Reconciler(lb: .nftables)
        let report = try await r.apply(state)
        let refused = await r.refusedNetworks()
        // The reason names the network and carries the kernel's own words.
        let why = try #require(refused["secret"])
        #expect(why.contains("network secret is encrypted") && why.contains("ESP"), "\(why)")
        #expect(why.contains("AEAD") || why.contains("not found") || why.contains("not supported"), "kernel's answer: \(why)")
        #expect(report.changes.contains { $0.contains("refused") && $0.contains("secret") })
        #expect(refused["plain"] == nil)

        // The plain network is carried; the encrypted one has no sandbox, and its task no interface.
        let naming = Naming(nodeID: id)
        #expect(NetworkNamespace.list().contains(naming.sandbox("plain")))
        #expect(!NetworkNamespace.list().contains(naming.sandbox("secret")))
        let task2 = try Exec.json(["ip", "-n", group.name("task2"), "-j", "link", "show"]) as? [[String: Any]] ?? []
        #expect(task2.map { $0["ifname"] as? String } == ["lo"])
        let task1 = try Exec.json(["ip", "-n", group.name("task1"), "-j", "link", "show"]) as? [[String: Any]] ?? []
        #expect(task1.contains { $0["ifname"] as? String == "eth0" })
        // No SA, no policy, no cleartext path: nothing of the secret VNI exists on this node.
        #expect(try Exec.check(["ip", "-n", group.name("node"), "xfrm", "state"]).isEmpty)
        #expect(try Exec.check(["ip", "-n", group.name("node"), "xfrm", "policy"]).isEmpty)
        let links = try Exec.check(["ip", "-n", group.name("node"), "-j", "link", "show"])
        #expect(!links.contains("mvx5102"))
        // The same state again changes nothing but says again why.
        let again = try await r.apply(state)
        #expect(again.changes.allSatisfy { $0.contains("refused") }, "\(again.changes)")
        // `meshd dataplane apply` (a fresh process) says it with its own exit status.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(group.prefix)-state.json")
        defer { try? FileManager.default.removeItem(at: file) }
        try JSONEncoder().encode(state).write(to: file)
        let cli = try Exec.run([DataplaneLab.locateMeshd(), "dataplane", "apply", "--state", file.path])
        #expect(cli.status == 3 && cli.stderr.contains("network secret is encrypted"), "\(cli.status) \(cli.stderr)")
    }

    @Test func theDropRuleReadsBackAsPlanned() async throws {
        try requireRoot()
        let group = NamespaceGroup(tag: "mkt-espnft")
        defer { group.destroy() }
        let node = try group.create("node")
        let nft = try node.openNFTables()
        var model = NodeModel()
        model.secureVNIs = [5102, 0x0a0b0c]
        model.dataPathPort = 4789
        var applied = SecureOverlay.Applied()
        var changes: [String] = []
        let plan = try SecureOverlay.plan(&applied, to: model, changes: &changes)
        #expect(plan.xfrm.isEmpty && plan.after.isEmpty)
        try await nft.commit(plan.before)

        let listing = try Exec.json(["ip", "netns", "exec", group.name("node"), "nft", "-j", "list", "table", "inet", "meshd_esp"])
        let items = (listing as? [String: Any])?["nftables"] as? [[String: Any]] ?? []
        let chains = items.compactMap { $0["chain"] as? [String: Any] }
        #expect(Set(chains.compactMap { $0["hook"] as? String }) == ["input", "output"])
        #expect(chains.allSatisfy { $0["prio"] as? Int == -150 && $0["policy"] as? String == "accept" })
        let rules = items.compactMap { $0["rule"] as? [String: Any] }
        #expect(rules.count == 2)
        for rule in rules {
            let text = "\(rule["expr"] ?? "")"
            #expect(text.contains("drop") && text.contains("counter"), "\(text)")
            #expect(text.contains("@vxlan_port") && text.contains("@secure_vnis"), "\(text)")
            // Input drops what was not decrypted (nft prints `meta ipsec missing`, the secpath key),
            // output what will not be encrypted (`rt ipsec missing`).
            let check = rule["chain"] as? String == "input" ? "[\"meta\": [\"key\": \"ipsec\"]]" : "[\"rt\": [\"key\": \"ipsec\"]]"
            #expect(text.contains(check) && text.contains("\"right\": 0"), "\(text)")
        }
        // The VNIs as the packet carries them (3 bytes) and the port, read back by the reconciler's reader.
        let read = try await SecureOverlay.read(nft: nft, xfrm: nil, local: IPAddress("198.18.8.1")!)
        #expect(read.table && read.vnis == [5102, 0x0a0b0c] && read.port == 4789 && !read.damaged)
        // Someone flushes a chain (`nft flush chain`, a firewall reload): the read notices and the plan
        // rebuilds the table in one transaction with its removal (found by review).
        _ = try Exec.run(["ip", "netns", "exec", group.name("node"), "nft", "flush", "chain", "inet", "meshd_esp", "input"])
        var damaged = try await SecureOverlay.read(nft: nft, xfrm: nil, local: IPAddress("198.18.8.1")!)
        #expect(damaged.damaged)
        let repair = try SecureOverlay.plan(&damaged, to: model, changes: &changes)
        try await nft.commit(repair.before)
        #expect(changes.contains { $0.contains("rebuilt") })
        let healed = try await SecureOverlay.read(nft: nft, xfrm: nil, local: IPAddress("198.18.8.1")!)
        #expect(!healed.damaged && healed.vnis == [5102, 0x0a0b0c] && healed.port == 4789)
        #expect(try nft.listRules(SecureOverlay.table).count == 2)
        // Idempotent against what the kernel holds, and removal is one table delete.
        var again = healed
        #expect(try SecureOverlay.plan(&again, to: model, changes: &changes).isEmpty)
        let gone = try SecureOverlay.plan(&again, to: NodeModel(), changes: &changes)
        try await nft.commit(gone.after)
        #expect(try nft.listTables(family: .inet).isEmpty)
    }
}
