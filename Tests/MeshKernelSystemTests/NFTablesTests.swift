import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

/// Every nftables verb in a fresh namespace, checked with `nft -j list ruleset` there.
@Suite("nftables")
struct NFTablesTests {
    static let t = NFTTable(.ip, "meshd")
    static let pre = NFTChain(t, "prerouting", base: .init(type: .nat, hook: .prerouting, priority: -100))
    static let post = NFTChain(t, "postrouting", base: .init(type: .nat, hook: .postrouting, priority: 100))
    static let filter = NFTChain(t, "forward", base: .init(type: .filter, hook: .forward, priority: 0, policy: .drop))
    static let services = NFTSet(t, "services", key: NFTKeyType(.ipv4Address, .inetProto, .inetService), kind: .verdictMap)
    static let svc1 = NFTChain(t, "svc-1")
    static let backends1 = NFTSet(
        t, "svc-1-backends", key: NFTKeyType(.integer(bytes: 4)),
        kind: .map(NFTKeyType(.ipv4Address, .inetService)))
    static let allowed = NFTSet(t, "allowed", key: NFTKeyType(.ipv4Address))
    static let fromAllowed = NFTChain(t, "from-allowed")

    /// Everything the dataplane uses, in one batch.
    static func fullBatch() -> NFTBatch {
        var b = NFTBatch()
        b.add(t)
        b.add(pre)
        b.add(post)
        b.add(filter)
        b.add(svc1)
        b.add(fromAllowed)
        b.add(NFTRule(fromAllowed, [.counter, .verdict(.accept)]))
        b.add(services)
        b.add(backends1)
        b.add(allowed)
        b.add(
            [
                .map(.u32(0), to: .concat(.address(IPAddress("10.98.0.11")!), .port(8080))),
                .map(.u32(1), to: .concat(.address(IPAddress("10.98.0.12")!), .port(8080))),
            ], to: backends1)
        b.add([.map(.concat(.address(IPAddress("10.97.0.10")!), .proto(6), .port(80)), to: .goto("svc-1"))], to: services)
        b.add([NFTElement(.address(IPAddress("10.99.0.2")!))], to: allowed)
        b.add(NFTRule(pre, [.counter] + NFTExpr.vmap([.ipDaddr, .l4proto, .thDport], "services"), comment: "service dispatch"))
        b.add(NFTRule(svc1, NFTExpr.setMark(0x4000) + NFTExpr.dnatNumgen(modulus: 2, map: "svc-1-backends"), comment: "svc-1 lb"))
        b.add(NFTRule(svc1, NFTExpr.dnatJhash([.ipSaddr], modulus: 2, seed: 7, map: "svc-1-backends")))
        b.add(NFTRule(post, NFTExpr.match(.mark, .eq, .u32(0x4000)) + NFTExpr.masquerade(), comment: "masq"))
        b.add(NFTRule(post, NFTExpr.match(.oifname, .eq, NFTValue(bytes: Array("eth9".utf8) + [0])) + NFTExpr.masquerade(port: 3000)))
        b.add(NFTRule(post, NFTExpr.match(.ipDaddr, .eq, .address(IPAddress("10.98.0.99")!)) + NFTExpr.snat(to: IPAddress("10.98.0.1")!)))
        b.add(
            NFTRule(
                pre,
                NFTExpr.match(.ipDaddr, .eq, .address(IPAddress("10.97.0.99")!))
                    + NFTExpr.dnat(to: IPAddress("10.98.0.11")!, port: 8080)))
        b.add(NFTRule(filter, NFTExpr.ctState([.established, .related]) + [.verdict(.accept)]))
        b.add(NFTRule(filter, NFTExpr.inSet([.ipSaddr], "allowed") + [.counter, .verdict(.jump("from-allowed"))]))
        b.insert(NFTRule(filter, NFTExpr.match(.l4proto, .eq, .proto(17)) + [.verdict(.accept)], comment: "first"))
        return b
    }

    func ruleset(_ s: Scratch) throws -> [[String: Any]] {
        let j = try Exec.json(["ip", "netns", "exec", s.name, "nft", "-j", "list", "ruleset"]) as? [String: Any]
        return j?["nftables"] as? [[String: Any]] ?? []
    }
    func objects(_ s: Scratch, _ kind: String) throws -> [[String: Any]] {
        var out: [[String: Any]] = []
        for o in try ruleset(s) { if let v = o[kind] as? [String: Any] { out.append(v) } }
        return out
    }
    func text(_ s: Scratch) throws -> String { try Exec.check(["ip", "netns", "exec", s.name, "nft", "list", "ruleset"]) }

    @Test func tablesChainsRulesSetsAndMapsInOneBatch() async throws {
        try await withScratch { s in
            let nft = try s.ns.openNFTables()
            try await nft.commit(Self.fullBatch())

            let tables = try objects(s, "table")
            #expect(tables.count == 1 && tables[0]["name"] as? String == "meshd" && tables[0]["family"] as? String == "ip")
            var chains: [String: [String: Any]] = [:]
            for c in try objects(s, "chain") { chains[c["name"] as? String ?? ""] = c }
            #expect(Set(chains.keys) == ["prerouting", "postrouting", "forward", "svc-1", "from-allowed"])
            #expect(chains["prerouting"]?["hook"] as? String == "prerouting")
            #expect(chains["prerouting"]?["prio"] as? Int == -100)
            #expect(chains["prerouting"]?["type"] as? String == "nat")
            #expect(chains["forward"]?["policy"] as? String == "drop")
            #expect(chains["svc-1"]?["hook"] == nil)

            let listing = try text(s)
            // nft decompiles our expressions back into its own syntax: the kernel got what nft would send.
            for needle in [
                "ip daddr . meta l4proto . th dport vmap @services",
                "meta mark set 0x00004000",
                "dnat ip to numgen random mod 2 map @svc-1-backends",
                "dnat ip to jhash ip saddr mod 2 seed 0x7 map @svc-1-backends",
                "meta mark 0x00004000 masquerade",
                "oifname \"eth9\" masquerade to :3000",
                "ip daddr 10.98.0.99 snat to 10.98.0.1",
                "ip daddr 10.97.0.99 dnat to 10.98.0.11:8080",
                "ct state established,related accept",
                "ip saddr @allowed counter packets 0 bytes 0 jump from-allowed",
                "comment \"service dispatch\"",
                "10.97.0.10 . tcp . 80 : goto svc-1",
                "0 : 10.98.0.11 . 8080", "1 : 10.98.0.12 . 8080",
                "type ipv4_addr . inet_proto . inet_service : verdict",
            ] {
                #expect(listing.contains(needle), "nft list ruleset lacks \(needle):\n\(listing)")
            }
            // Inserted rules go first, appended ones last.
            let forward = try nft.listRules(Self.t, chain: "forward")
            #expect(forward.map(\.comment) == ["first", nil, nil])

            let rules = try objects(s, "rule")
            #expect(rules.count == 11)
        }
    }

    @Test func dumpsReadStateBack() async throws {
        try await withScratch { s in
            let nft = try s.ns.openNFTables()
            try await nft.commit(Self.fullBatch())
            #expect(try nft.listTables().map(\.name) == ["meshd"])
            let chains = try nft.listChains(Self.t)
            #expect(Set(chains.map(\.name)) == ["prerouting", "postrouting", "forward", "svc-1", "from-allowed"])
            let pre = chains.first { $0.name == "prerouting" }
            #expect(pre?.hook == NFTHook.prerouting.rawValue && pre?.priority == -100 && pre?.type == "nat")
            let rules = try nft.listRules(Self.t)
            #expect(rules.count == 11)
            let dispatch = rules.first { $0.comment == "service dispatch" }
            #expect(dispatch?.expressionNames == ["counter", "payload", "meta", "payload", "lookup"])
            #expect(dispatch?.packets == 0)
            let sets = try nft.listSets(Self.t)
            #expect(Set(sets.map(\.name)) == ["services", "svc-1-backends", "allowed"])
            #expect(sets.first { $0.name == "services" }?.isMap == true)
            #expect(sets.first { $0.name == "services" }?.keyLength == 12)
            let elements = try nft.listElements(Self.services)
            #expect(elements == [.map(.concat(.address(IPAddress("10.97.0.10")!), .proto(6), .port(80)), to: .goto("svc-1"))])
            let be = try nft.listElements(Self.backends1)
            #expect(Set(be.map(\.key)) == [.u32(0), .u32(1)])
            #expect(be.contains(.map(.u32(1), to: .concat(.address(IPAddress("10.98.0.12")!), .port(8080)))))
        }
    }

    @Test func incrementalElementsReplaceAndDeleteRulesFlushAndDelete() async throws {
        try await withScratch { s in
            let nft = try s.ns.openNFTables()
            try await nft.commit(Self.fullBatch())

            // Elements: add two, delete one: only that changes.
            var b = NFTBatch()
            b.add([NFTElement(.address(IPAddress("10.99.0.3")!)), NFTElement(.address(IPAddress("10.99.0.4")!))], to: Self.allowed)
            try await nft.commit(b)
            b = NFTBatch()
            b.delete([NFTElement(.address(IPAddress("10.99.0.2")!))], from: Self.allowed)
            try await nft.commit(b)
            let sets = try objects(s, "set")
            let allowed = sets.first { $0["name"] as? String == "allowed" }
            #expect(Set(allowed?["elem"] as? [String] ?? []) == ["10.99.0.3", "10.99.0.4"])

            // Replace a rule in place by handle, then delete it by handle.
            let first = try #require(try nft.listRules(Self.t, chain: "forward").first)
            b = NFTBatch()
            b.replace(
                NFTRule(Self.filter, NFTExpr.match(.l4proto, .eq, .proto(132)) + [.verdict(.drop)], comment: "sctp"), handle: first.handle)
            try await nft.commit(b)
            #expect(try text(s).contains("meta l4proto sctp drop comment \"sctp\""))
            b = NFTBatch()
            b.deleteRule(Self.filter, handle: first.handle)
            try await nft.commit(b)
            #expect(try nft.listRules(Self.t, chain: "forward").count == 2)

            // Flush a set, a chain, then the table's rules; the chains and sets stay.
            b = NFTBatch()
            b.flush(Self.allowed)
            b.flush(Self.post)
            try await nft.commit(b)
            #expect(try nft.listElements(Self.allowed).isEmpty)
            #expect(try nft.listRules(Self.t, chain: "postrouting").isEmpty)
            #expect(try nft.listRules(Self.t).count == 7)
            b = NFTBatch()
            b.flush(Self.t)
            try await nft.commit(b)
            #expect(try objects(s, "rule").isEmpty)
            #expect(try objects(s, "chain").count == 5)

            // Delete a chain, a set, then the whole table.
            b = NFTBatch()
            b.delete(Self.allowed)
            try await nft.commit(b)
            #expect(try nft.listSets(Self.t).count == 2)
            b = NFTBatch()
            b.delete(Self.t)
            try await nft.commit(b)
            #expect(try objects(s, "table").isEmpty)
        }
    }

    @Test func otherFamiliesAndIPv6() async throws {
        try await withScratch { s in
            let nft = try s.ns.openNFTables()
            var b = NFTBatch()
            let t6 = NFTTable(.ip6, "meshd6"), ti = NFTTable(.inet, "meshdinet")
            let c6 = NFTChain(t6, "pre", base: .init(type: .nat, hook: .prerouting, priority: -100))
            let ci = NFTChain(ti, "in", base: .init(type: .filter, hook: .input, priority: 0))
            let m6 = NFTSet(t6, "be", key: NFTKeyType(.integer(bytes: 4)), kind: .map(NFTKeyType(.ipv6Address, .inetService)))
            b.add(t6)
            b.add(ti)
            b.add(c6)
            b.add(ci)
            b.add(m6)
            b.add([.map(.u32(0), to: .concat(.address(IPAddress("fd00::11")!), .port(80)))], to: m6)
            b.add(
                NFTRule(
                    c6,
                    NFTExpr.match(.ip6Daddr, .eq, .address(IPAddress("fd00::10")!))
                        + NFTExpr.dnatNumgen(modulus: 1, map: "be", family: .ip6)))
            b.add(NFTRule(ci, NFTExpr.match(.thDport, .eq, .port(53)) + [.counter, .verdict(.accept)]))
            try await nft.commit(b)
            let tables = try objects(s, "table").map { "\($0["family"] ?? "") \($0["name"] ?? "")" }
            #expect(Set(tables) == ["ip6 meshd6", "inet meshdinet"])
            let listing = try text(s)
            #expect(
                listing.contains("ip6 daddr fd00::10 dnat ip6 to numgen random mod 1 map @be")
                    || listing.contains("ip6 daddr fd00::10 dnat to numgen random mod 1 map @be"), "\(listing)")
            #expect(listing.contains("th dport 53 counter packets 0 bytes 0 accept"), "\(listing)")
            #expect(listing.contains("0 : fd00::11 . 80"), "\(listing)")
        }
    }

    @Test func aFailedBatchAppliesNothingAndNamesTheObject() async throws {
        try await withScratch { s in
            let nft = try s.ns.openNFTables()
            try await nft.commit(Self.fullBatch())
            let before = try text(s)

            // A batch whose fourth operation jumps to a chain that does not exist.
            var b = NFTBatch()
            b.add(NFTChain(Self.t, "svc-2"))
            b.add([.map(.concat(.address(IPAddress("10.97.0.11")!), .proto(6), .port(80)), to: .goto("svc-2"))], to: Self.services)
            b.flush(Self.allowed)
            b.add(NFTRule(Self.filter, [.verdict(.jump("no-such-chain"))], comment: "bad jump"))
            let e = await expectKernelError(.noEntry) { try await nft.commit(b) }
            guard case .transaction(let failures, let n)? = e else {
                Issue.record("not a transaction error: \(String(describing: e))")
                return
            }
            #expect(n == 4)
            #expect(failures.map(\.index) == [3])
            #expect(failures.first?.error.description.contains("add rule ip meshd forward comment \"bad jump\"") == true, "\(failures)")
            #expect(try text(s) == before, "the ruleset changed although the batch failed")

            // Deleting an element that is not there names that element, found from the kernel's
            // offset, even in the second 512-element message of the operation.
            let many: [NFTElement] = (1...600).map { NFTElement(.address(.v4(0x0a63_1000 + UInt32($0)))) }
            b = NFTBatch()
            b.add(many, to: Self.allowed)
            try await nft.commit(b)
            let withElements = try text(s)
            var doomed = many
            doomed.insert(NFTElement(.address(IPAddress("10.55.0.1")!)), at: 555)
            b = NFTBatch()
            b.add(NFTChain(Self.t, "svc-3"))
            b.delete(doomed, from: Self.allowed)
            let e2 = await expectKernelError(.noEntry) { try await nft.commit(b) }
            #expect(e2?.description.contains("delete element ip meshd allowed #555 key 0x0a370001") == true, "\(String(describing: e2))")
            #expect(try text(s) == withElements)

            // A nat chain on the forward hook is refused by the kernel.
            b = NFTBatch()
            b.add(NFTChain(Self.t, "bad", base: .init(type: .nat, hook: .forward, priority: 0)))
            let e3 = await expectKernelError(.notSupported) { try await nft.commit(b) }
            #expect(e3?.description.contains("add chain ip meshd bad") == true, "\(String(describing: e3))")
            #expect(try text(s) == withElements)
        }
    }

    /// A set declared with counters gives each element its own, which a lookup that finds the
    /// element adds to; the counts come back with the elements and match what `nft -j` shows.
    @Test func setElementCountersCountLookups() async throws {
        try await withScratch { s in
            let nft = try s.ns.openNFTables()
            let counted = NFTSet(Self.t, "counted", key: NFTKeyType(.ipv4Address), counters: true)
            let out = NFTChain(Self.t, "out", base: .init(type: .filter, hook: .output, priority: 0))
            var b = NFTBatch()
            b.add(Self.t)
            b.add(out)
            b.add(counted)
            b.add([NFTElement(.address(IPAddress("127.0.0.1")!)), NFTElement(.address(IPAddress("127.0.0.2")!))], to: counted)
            b.add(NFTRule(out, NFTExpr.load([.ipDaddr]) + [.lookup(set: counted.name, from: .r(0), into: nil, invert: false)]))
            try await nft.commit(b)
            _ = try Exec.run(["ip", "-n", s.name, "link", "set", "lo", "up"])
            let ping = try Exec.run(["ip", "netns", "exec", s.name, "ping", "-c", "3", "-i", "0.2", "-q", "127.0.0.1"])
            #expect(ping.succeeded, "\(ping.stdout)\(ping.stderr)")
            let got = Dictionary(uniqueKeysWithValues: try nft.listElements(counted).map { ($0.key, $0.counter) })
            // Three echo requests and their three replies all leave through output to 127.0.0.1.
            #expect(got[.address(IPAddress("127.0.0.1")!)]??.packets == 6)
            #expect(got[.address(IPAddress("127.0.0.1")!)]??.bytes == 6 * 84)
            #expect(got[.address(IPAddress("127.0.0.2")!)] == .some(NFTCounter(packets: 0, bytes: 0)))
            let j = try Exec.json(["ip", "netns", "exec", s.name, "nft", "-j", "list", "set", "ip", "meshd", "counted"]) as? [String: Any]
            let set = (j?["nftables"] as? [[String: Any]])?.compactMap { $0["set"] as? [String: Any] }.first
            let shown = (set?["elem"] as? [[String: Any]])?.compactMap { e -> Int? in
                let elem = e["elem"] as? [String: Any]
                guard elem?["val"] as? String == "127.0.0.1" else { return nil }
                return (elem?["counter"] as? [String: Any])?["packets"] as? Int
            }
            #expect(shown == [6], "nft -j: \(String(describing: set))")
        }
    }

    @Test func badInputIsRefusedBeforeTheKernelSeesIt() async throws {
        try await withScratch { s in
            let nft = try s.ns.openNFTables()
            var b = NFTBatch()
            b.add(Self.t)
            b.add(Self.allowed)
            b.add([NFTElement(.port(80))], to: Self.allowed)
            await #expect(throws: KernelError.self) { try await nft.commit(b) }
            #expect(try objects(s, "table").isEmpty, "nothing may be sent when the batch cannot be encoded")
            b = NFTBatch()
            b.add(NFTChain(Self.t, ""))
            await #expect(throws: KernelError.self) { try await nft.commit(b) }
            // Only empty element lists: nothing to send and no ACK to wait for. A socket that gives up
            // on a reply after 200 ms proves it: waiting for an ACK that never comes would throw
            // .timeout (a wall-clock bound would measure the loaded test machine instead).
            b = NFTBatch()
            b.add([], to: Self.allowed)
            b.delete([], from: Self.allowed)
            let impatient = try s.ns.openNFTables(receiveTimeoutMilliseconds: 200)
            try await impatient.commit(b)
            #expect(try objects(s, "table").isEmpty, "an empty batch sends nothing")
        }
    }
}
