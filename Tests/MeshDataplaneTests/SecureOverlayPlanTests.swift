import MeshKernel
import Testing
@testable import MeshDataplane

/// The encrypted-overlay plan is pure: what the node namespace would be sent per change, checked
/// without a kernel (the VM lane checks the kernel does what the plan says).
@Suite struct SecureOverlayPlanTests {
    static func ip(_ s: String) -> IPAddress { IPAddress(s)! }
    static let secret = OverlayNetwork(
        id: "secret", name: "secret", vni: 4200, subnet: IPPrefix("10.42.0.0/24")!, gateway: ip("10.42.0.1"), encrypted: true)
    static let me = NodeIdentity(id: "n1", advertiseAddress: ip("198.18.0.1"), namespace: "node1")

    /// Keys as the manager would hand them to n1 for peer `n`: SPIs tell the directions apart.
    static func keys(_ n: Int, generations: [UInt64] = [1]) -> PeerKeys {
        PeerKeys(
            nodeID: "n\(n)", nodeAddress: ip("198.18.0.\(n)"),
            keys: generations.map { g in
                PairKey(
                    generation: g,
                    outbound: SAKey(
                        spi: 0x1000 * UInt32(g) + UInt32(n) * 16 + 1, key: [UInt8](repeating: 0xab, count: 16), salt: [1, 2, 3, 4]),
                    inbound: SAKey(
                        spi: 0x1000 * UInt32(g) + UInt32(n) * 16 + 2, key: [UInt8](repeating: 0xcd, count: 16), salt: [5, 6, 7, 8]))
            })
    }
    static func remote(_ n: Int, _ host: Int) -> RemoteEndpoint {
        RemoteEndpoint(network: "secret", address: ip("10.42.0.\(host)"), nodeID: "n\(n)", nodeAddress: ip("198.18.0.\(n)"))
    }
    static func state(peers: [Int] = [2, 3], keys: [PeerKeys]? = nil) -> DataplaneState {
        DataplaneState(
            node: me, networks: [secret],
            localEndpoints: [LocalEndpoint(id: "t1", network: "secret", namespace: "task1", address: ip("10.42.0.11"))],
            remoteEndpoints: peers.map { remote($0, 10 + $0) }, peerKeys: keys ?? peers.map { Self.keys($0) })
    }

    /// One line per operation, as `ip xfrm`/`nft` would name it (no key: descriptions hide them).
    static func lines(_ p: SecureOverlay.Plan) -> [String] {
        func nft(_ b: NFTBatch, _ tag: String) -> [String] {
            b.operations.map { op in
                switch op {
                case .addTable(let t): "\(tag) add table \(t.name)"
                case .deleteTable(let t): "\(tag) delete table \(t.name)"
                case .addSet(let s): "\(tag) add set \(s.name)"
                case .addChain(let c): "\(tag) add chain \(c.name)"
                case .addRule(let r, _): "\(tag) add rule \(r.chain.name) \(r.comment ?? "")"
                case .addElements(let s, let e): "\(tag) add \(s.name) " + e.map { "\($0.key)" }.joined(separator: ",")
                case .deleteElements(let s, let e): "\(tag) delete \(s.name) " + e.map { "\($0.key)" }.joined(separator: ",")
                default: "\(tag) \(op)"
                }
            }
        }
        func xfrm(_ ops: [XFRMOperation], _ tag: String) -> [String] {
            ops.map { op -> String in
                switch op {
                case .stateAdd(let s): "\(tag) state add \(s)"
                case .stateUpdate(let s): "\(tag) state update \(s)"
                case .stateDelete(let id): "\(tag) state delete \(id)"
                case .policyAdd(let p): "\(tag) policy add \(p)"
                case .policyUpdate(let p): "\(tag) policy update \(p)"
                case .policyDelete(let id): "\(tag) policy delete \(id)"
                }
            }
        }
        return nft(p.before, "before") + xfrm(p.xfrm, "xfrm") + nft(p.after, "after") + xfrm(p.xfrmAfter, "xfrm after")
    }

    static func plan(_ a: inout SecureOverlay.Applied, _ m: DesiredModel, only: Set<IPAddress>? = nil) throws -> [String] {
        var changes: [String] = []
        return lines(try SecureOverlay.plan(&a, to: m.node, only: only, changes: &changes))
    }

    static let reqid = "reqid \(SecureOverlay.reqid)"

    static func pairLines(_ n: Int, out: UInt32, in inbound: UInt32) -> [String] {
        let peer = "198.18.0.\(n)"
        let o = XFRMState.spiText(out), i = XFRMState.spiText(inbound)
        return [
            "xfrm state add src \(peer) dst 198.18.0.1 proto esp spi \(i) \(reqid) mode transport",
            "xfrm state add src 198.18.0.1 dst \(peer) proto esp spi \(o) \(reqid) mode transport",
            "xfrm policy update src \(peer)/32 dst 198.18.0.1/32 proto udp dport 4789 dir in priority 100 tmpl src \(peer) dst 198.18.0.1 proto esp \(reqid) mode transport",
            "xfrm policy update src 198.18.0.1/32 dst \(peer)/32 proto udp dport 4789 dir out priority 100 tmpl src 198.18.0.1 dst \(peer) proto esp spi \(o) \(reqid) mode transport",
        ]
    }

    @Test func firstApplyInstallsTheDropRuleThenEveryPair() throws {
        let m = DesiredModel(Self.state(), underlayMTU: 1500)
        var a = SecureOverlay.Applied()
        let got = try Self.plan(&a, m)
        let want =
            [
                "before add table meshd_esp", "before add set secure_vnis", "before add set vxlan_port",
                "before add chain input", "before add rule input secure VNI not decrypted",
                "before add chain output", "before add rule output secure VNI not encrypted",
                "before add vxlan_port 0x12b5", "before add secure_vnis 0x001068",
            ] + Self.pairLines(2, out: 0x1021, in: 0x1022) + Self.pairLines(3, out: 0x1031, in: 0x1032)
        #expect(got == want)
        // The encrypted network's MTU leaves room for ESP as well as VXLAN.
        #expect(m.sandboxes.values.first?.vxlan?.mtu == UInt32(1500 - 50 - 40))
        // Idempotent: the same model again is no operation at all.
        #expect(try Self.plan(&a, m).isEmpty)
    }

    @Test func aNewPairCostsThatPairOnly() throws {
        let s = Self.state()
        var idx = StateIndex(s, model: DesiredModel(s, underlayMTU: 1500))
        var a = SecureOverlay.Applied()
        _ = try Self.plan(&a, idx.model)
        var touched = DesiredModel.Changes()
        try idx.apply(.peerKeys(Self.keys(4)), &touched)
        // Keys alone program nothing: n4 has no endpoint on the encrypted network yet.
        #expect(touched.espPeers.isEmpty)
        try idx.apply(.remoteEndpoint(Self.remote(4, 14)), &touched)
        #expect(touched.espPeers == [Self.ip("198.18.0.4")])
        #expect(try Self.plan(&a, idx.model, only: touched.espPeers) == Self.pairLines(4, out: 0x1041, in: 0x1042))
        // A second endpoint of a known pair touches no pair.
        var again = DesiredModel.Changes()
        try idx.apply(.remoteEndpoint(Self.remote(4, 24)), &again)
        #expect(again.espPeers.isEmpty)
    }

    @Test func rotationIsMakeBeforeBreak() throws {
        let s = Self.state(peers: [2])
        var idx = StateIndex(s, model: DesiredModel(s, underlayMTU: 1500))
        var a = SecureOverlay.Applied()
        _ = try Self.plan(&a, idx.model)
        func step(_ gens: [UInt64]) throws -> [String] {
            var t = DesiredModel.Changes()
            try idx.apply(.peerKeys(Self.keys(2, generations: gens)), &t)
            #expect(t.espPeers == [Self.ip("198.18.0.2")])
            return try Self.plan(&a, idx.model, only: t.espPeers)
        }
        // 1. install: the new inbound and outbound states, sending still with the old.
        #expect(
            try step([1, 2]) == [
                "xfrm state add src 198.18.0.2 dst 198.18.0.1 proto esp spi 0x00002022 \(Self.reqid) mode transport",
                "xfrm state add src 198.18.0.1 dst 198.18.0.2 proto esp spi 0x00002021 \(Self.reqid) mode transport",
            ])
        // 2. use: one atomic replace of the out policy; nothing added or removed.
        #expect(
            try step([2, 1]) == [
                "xfrm policy update src 198.18.0.1/32 dst 198.18.0.2/32 proto udp dport 4789 dir out priority 100 tmpl src 198.18.0.1 dst 198.18.0.2 proto esp spi 0x00002021 \(Self.reqid) mode transport"
            ])
        // 3. remove: the old states, last.
        #expect(
            try step([2]) == [
                "xfrm state delete src 198.18.0.1 dst 198.18.0.2 proto esp spi 0x00001021",
                "xfrm state delete src 198.18.0.2 dst 198.18.0.1 proto esp spi 0x00001022",
            ])
    }

    @Test func theLastEndpointRemovesThePairStatesFirst() throws {
        let s = Self.state(peers: [2])
        var idx = StateIndex(s, model: DesiredModel(s, underlayMTU: 1500))
        var a = SecureOverlay.Applied()
        _ = try Self.plan(&a, idx.model)
        var t = DesiredModel.Changes()
        try idx.apply(.removeRemoteEndpoint(network: "secret", address: Self.ip("10.42.0.12")), &t)
        #expect(
            try Self.plan(&a, idx.model, only: t.espPeers) == [
                "xfrm state delete src 198.18.0.1 dst 198.18.0.2 proto esp spi 0x00001021",
                "xfrm state delete src 198.18.0.2 dst 198.18.0.1 proto esp spi 0x00001022",
                "xfrm policy delete src 198.18.0.1/32 dst 198.18.0.2/32 proto udp dport 4789 dir out",
                "xfrm policy delete src 198.18.0.2/32 dst 198.18.0.1/32 proto udp dport 4789 dir in",
            ])
        #expect(a.pairs.isEmpty)
        // The drop rule stays as long as the network does.
        #expect(a.vnis == [4200])
    }

    @Test func theDropRuleLeavesAfterTheNetwork() throws {
        var a = SecureOverlay.Applied()
        _ = try Self.plan(&a, DesiredModel(Self.state(peers: [2]), underlayMTU: 1500))
        let empty = DataplaneState(node: Self.me)
        let got = try Self.plan(&a, DesiredModel(empty, underlayMTU: 1500))
        // Pairs go with the network; the table (rule and VNIs) only in `after`, once the sandbox is gone.
        #expect(got.filter { $0.hasPrefix("before") }.isEmpty)
        #expect(got.last == "after delete table meshd_esp")
        #expect(got.filter { $0.hasPrefix("xfrm") }.count == 4)
        #expect(a == SecureOverlay.Applied())
    }

    /// A new data-path port: its drop element and policies before the sandboxes move to it, the old
    /// port's only after they have (the old order left the old port unguarded meanwhile).
    @Test func anotherPortIsGuardedBeforeAndTheOldOneReleasedAfterTheSandboxes() throws {
        var a = SecureOverlay.Applied()
        _ = try Self.plan(&a, DesiredModel(Self.state(peers: []), underlayMTU: 1500))
        var s = Self.state(peers: [])
        s.node.dataPathPort = 4790
        #expect(
            try Self.plan(&a, DesiredModel(s, underlayMTU: 1500)) == ["before add vxlan_port 0x12b6", "after delete vxlan_port 0x12b5"])

        var b = SecureOverlay.Applied()
        _ = try Self.plan(&b, DesiredModel(Self.state(), underlayMTU: 1500))
        var moved = Self.state()
        moved.node.dataPathPort = 4790
        let got = try Self.plan(&b, DesiredModel(moved, underlayMTU: 1500))
        let deletes = got.filter { $0.contains("policy delete") }
        #expect(!deletes.isEmpty && deletes.allSatisfy { $0.hasPrefix("xfrm after ") }, "\(got)")
        #expect(got.contains { $0.hasPrefix("xfrm policy update") && $0.contains("dport 4790") }, "\(got)")
    }

    @Test func aPeerWithoutKeysGetsNoPairAndStaysDropped() throws {
        let m = DesiredModel(Self.state(peers: [2, 5], keys: [Self.keys(2)]), underlayMTU: 1500)
        #expect(m.peersWithoutKeys == ["n5"])
        #expect(Set(m.node.esp.keys) == [Self.ip("198.18.0.2")])
        #expect(m.node.secureVNIs == [4200])
    }

    @Test func aRefusedNetworkHasNoSandboxNoRuleNoPair() {
        let m = DesiredModel(Self.state(), underlayMTU: 1500, refused: ["secret"])
        #expect(m.sandboxes.isEmpty)
        #expect(m.node.secureVNIs.isEmpty && m.node.esp.isEmpty)
    }

    @Test func keysNeverPrintAndBadKeysAreRefused() throws {
        let s = Self.state()
        for text in [String(describing: s), String(reflecting: s), "\(s.peerKeys)"] {
            // The test keys are bytes 171 (0xab) and 205 (0xcd): no decimal, hex or base64 form of them.
            let forms = ["171", "205", "abab", "cdcd", "ABAB", "CDCD", "q6ur", "zc3N"]
            #expect(!forms.contains { text.contains($0) }, "a key byte in: \(text)")
        }
        var bad = s
        bad.peerKeys[0].keys[0].outbound.key = [1, 2, 3]
        bad.peerKeys[1].keys[0].inbound.spi = 7
        let problems = bad.problems()
        #expect(problems.contains { $0.contains("node n2") && $0.contains("16 bytes") })
        #expect(problems.contains { $0.contains("node n3") && $0.contains("reserved") })
        #expect(!problems.joined().contains("171"))
        var ingress = s
        ingress.networks[0].ingress = true
        #expect(ingress.problems().contains { $0.contains("cannot be encrypted") })
    }
}
