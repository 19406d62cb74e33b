// nftables and IPVS codecs without a kernel: what the encoders write, the decoders read back
// (nf_tables dump replies and IPVS genl replies use the request attributes), plus a seeded fuzz
// of every nftables/IPVS decoder and of the extack-offset-to-element mapping.
//
// Inputs per run: 100,000 mutated nftables/IPVS messages (1-5 mutations each, fixed seed) and
// 20,000 random payloads, each through every decoder and the element-offset mapping.
@testable import MeshKernel
import CNetlink
import Testing

enum NFTFixtures {
    static let t = NFTTable(.inet, "meshd")
    static let chain = NFTChain(t, "svc-1")
    static let map = NFTSet(t, "be", key: NFTKeyType(.integer(bytes: 4)), kind: .map(NFTKeyType(.ipv4Address, .inetService)))
    static let vmap = NFTSet(t, "services", key: NFTKeyType(.ipv4Address, .inetProto, .inetService), kind: .verdictMap)
    static let elements: [NFTElement] = (0..<5).map {
        .map(.u32(UInt32($0)), to: .concat(.address(.v4(0x0a00_0000 + UInt32($0))), .port(80)))
    }

    static func batch() -> NFTBatch {
        var b = NFTBatch()
        b.add(t)
        b.add(NFTChain(t, "pre", base: .init(type: .nat, hook: .prerouting, priority: -100, policy: .accept)))
        b.add(chain)
        b.add(map)
        b.add(vmap)
        b.add(elements, to: map)
        b.add([.map(.concat(.address(.v4(0x0a60_0001)), .proto(6), .port(443)), to: .goto("svc-1"))], to: vmap)
        b.add(
            NFTRule(
                chain, [.counter] + NFTExpr.match(.l4proto, .eq, .proto(6)) + NFTExpr.dnatNumgen(modulus: 5, map: "be"),
                comment: "svc-1"))
        return b
    }

    /// The batch's messages as the kernel would see them (BATCH_BEGIN and END included).
    static func messages() throws -> [NetlinkMessage] {
        let enc = NFTEncoder(firstSeq: 100)
        try enc.encode(batch())
        return try NetlinkMessage.parseAll(enc.bytes)
    }
}

@Suite struct NFTablesCodecTests {
    @Test func batchIsFramedAndOnlyTheLastObjectAsksForAnAck() throws {
        let m = try NFTFixtures.messages()
        #expect(m.count == 10)  // begin, 8 objects, end
        #expect(m.first?.type == 0x10 && m.last?.type == 0x11)  // NFNL_MSG_BATCH_BEGIN / _END
        let acks = m.filter { $0.flags & 0x4 != 0 }.map(\.seq)
        #expect(acks == [m[m.count - 2].seq])
        #expect(Set(m.map(\.seq)).count == m.count, "every message has its own seq")
    }

    @Test func encodedObjectsDecodeBack() throws {
        let m = try NFTFixtures.messages()
        let table = try #require(NFTDecode.table(m[1]))
        #expect(table.name == "meshd" && table.family == .inet)
        let pre = try #require(NFTDecode.chain(m[2]))
        #expect(pre.name == "pre" && pre.hook == 0 && pre.priority == -100 && pre.type == "nat" && pre.policy == 1)
        let set = try #require(NFTDecode.set(m[4]))
        #expect(set.name == "be" && set.isMap && set.keyLength == 4 && set.dataLength == 8 && set.dataType == (7 << 6 | 13))
        let vmap = try #require(NFTDecode.set(m[5]))
        #expect(vmap.keyLength == 12 && vmap.keyType == ((7 << 6 | 12) << 6 | 13) && vmap.dataType == 0xffff_ff00)
        #expect(NFTDecode.elements(m[6]) == NFTFixtures.elements)
        #expect(NFTDecode.elements(m[7]) == [.map(.concat(.address(.v4(0x0a60_0001)), .proto(6), .port(443)), to: .goto("svc-1"))])
    }

    @Test func ruleCarriesItsExpressionsAndComment() throws {
        let m = try NFTFixtures.messages()
        // A request has no handle; give it one as a dump reply would.
        var payload = m[8].payload
        payload += [12, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 42]
        let rule = try #require(NFTDecode.rule(NetlinkMessage(type: m[8].type, flags: 0, seq: 0, pid: 0, payload: payload)))
        #expect(rule.handle == 42 && rule.chain == "svc-1" && rule.comment == "svc-1")
        #expect(rule.expressionNames == ["counter", "meta", "cmp", "numgen", "lookup", "nat"])
    }

    @Test func valuesUseTheKernelsLayout() {
        #expect(NFTValue.port(8080).bytes == [0x1f, 0x90])
        #expect(
            NFTValue.concat(.address(IPAddress("10.0.0.1")!), .proto(6), .port(80)).bytes
                == [10, 0, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0])
        #expect(NFTKeyType(.ipv4Address, .inetProto, .inetService).length == 12)
        #expect(NFTKeyType(.ipv6Address, .inetService).length == 20)
        #expect(NFTKeyType(.inetService).length == 2)
    }

    @Test func elementsBeyondTheKeyLengthAreRefusedBeforeSending() {
        var b = NFTBatch()
        b.add([NFTElement(.port(80))], to: NFTFixtures.map)
        let enc = NFTEncoder(firstSeq: 1)
        #expect(throws: KernelError.self) { try enc.encode(b) }
    }

    @Test func extackOffsetMapsToTheElement() throws {
        var b = NFTBatch()
        b.add(NFTFixtures.elements, to: NFTFixtures.map)
        let enc = NFTEncoder(firstSeq: 1)
        try enc.encode(b)
        let info = try #require(enc.messages[enc.lastSeq])
        let message = Array(enc.bytes[info.start..<(info.start + info.length)])
        // Walk the elements list and check every byte of every element maps to its index.
        let attrs = NetlinkAttributes(message.dropFirst(20))
        let list = try #require(attrs.nested(3))
        #expect(list.entries.count == 5)
        var offset = 20
        while offset < message.count {
            let len = Int(message[offset]) | Int(message[offset + 1]) << 8
            if (Int(message[offset + 2]) | Int(message[offset + 3]) << 8) & 0x3fff == 3 { break }
            offset += (len + 3) & ~3
        }
        var p = offset + 4
        for i in 0..<5 {
            let len = Int(message[p]) | Int(message[p + 1]) << 8
            for o in p..<(p + len) { #expect(NFTSocket.elementIndex(in: message, offset: o) == i) }
            p += (len + 3) & ~3
        }
        #expect(NFTSocket.elementIndex(in: message, offset: 0) == nil)
        #expect(NFTSocket.elementIndex(in: message, offset: message.count + 10) == nil)
    }
}

@Suite struct IPVSCodecTests {
    static let family: UInt16 = 0x20

    static func reply(_ r: NetlinkRequest) -> NetlinkMessage {
        NetlinkMessage(type: r.type, flags: 2, seq: 1, pid: 0, payload: r.body)
    }

    @Test func servicesRoundTrip() throws {
        let services: [IPVSService] = [
            IPVSService(.tuple(.tcp, IPAddress("10.96.0.1")!, 80), scheduler: "rr"),
            IPVSService(.tuple(.udp, IPAddress("fd00::1")!, 53), scheduler: "mh", flags: [.mhPort, .mhFallback]),
            .persistent(.tuple(.tcp, IPAddress("10.96.0.2")!, 443), scheduler: "wrr", seconds: 600),
            IPVSService(.fwmark(7, ipv6: false), scheduler: "sh", flags: [.shFallback], netmaskBits: 24),
        ]
        for s in services {
            let m = Self.reply(try IPVSMessages.encode(.addService(s), family: Self.family))
            #expect(m.payload[0] == UInt8(IPVS_CMD_NEW_SERVICE) && m.payload[1] == 1)
            #expect(IPVSMessages.decodeService(m)?.service == s)
        }
    }

    @Test func destinationsRoundTripWithBigEndianPorts() throws {
        let d = IPVSDestination(
            IPAddress("10.98.0.11")!, port: 8080, forwarding: .directRoute, weight: 0, upperThreshold: 9, lowerThreshold: 2)
        let r = try IPVSMessages.encode(.addDestination(.tuple(.tcp, IPAddress("10.96.0.1")!, 80), d), family: Self.family)
        #expect(r.type == Self.family)
        #expect(IPVSMessages.decodeDestination(Self.reply(r))?.destination == d)
        // The port attribute holds 0x1f90 in network order.
        #expect(r.body.windowsContain([6, 0, UInt8(IPVS_DEST_ATTR_PORT), 0, 0x1f, 0x90]))
    }

    @Test func badInputIsRefused() {
        #expect(throws: KernelError.self) {
            try IPVSMessages.encode(
                .addService(IPVSService(.tuple(.tcp, IPAddress("10.0.0.1")!, 80), scheduler: "way too long a name")), family: 1)
        }
        #expect(throws: KernelError.self) {
            try IPVSMessages.encode(.addService(IPVSService(.tuple(.tcp, IPAddress("10.0.0.1")!, 0))), family: 1)
        }
        #expect(throws: KernelError.self) {
            try IPVSMessages.encode(
                .addDestination(.tuple(.tcp, IPAddress("10.0.0.1")!, 80), IPVSDestination(IPAddress("fd00::1")!, port: 80)), family: 1)
        }
        #expect(IPVSMessages.netmask(bits: 24, v6: false) == UInt32(0xffff_ff00).bigEndian)
    }
}

extension Array where Element == UInt8 {
    func windowsContain(_ needle: [UInt8]) -> Bool {
        guard count >= needle.count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<($0 + needle.count)]) == needle }
    }
}

@Suite struct NFTablesIPVSFuzzTests {
    static func seeds() throws -> [NetlinkMessage] {
        var out = try NFTFixtures.messages()
        let key = IPVSServiceKey.tuple(.tcp, IPAddress("10.96.0.1")!, 80)
        for op: IPVSOperation in [
            .addService(IPVSService(key, scheduler: "rr")),
            .addDestination(key, IPVSDestination(IPAddress("10.98.0.1")!, port: 80)),
            .addService(IPVSService(.fwmark(3, ipv6: true))),
            .addDestination(key, IPVSDestination(IPAddress("fd00::3")!, port: 80, forwarding: .tunnel)),
        ] {
            let r = try IPVSMessages.encode(op, family: 0x20)
            out.append(NetlinkMessage(type: r.type, flags: 2, seq: 1, pid: 0, payload: r.body))
        }
        return out
    }

    static func decodeAll(_ m: NetlinkMessage, _ decoded: inout Int) {
        if NFTDecode.table(m) != nil { decoded += 1 }
        if NFTDecode.chain(m) != nil { decoded += 1 }
        if NFTDecode.rule(m) != nil { decoded += 1 }
        if NFTDecode.set(m) != nil { decoded += 1 }
        decoded += NFTDecode.elements(m).count
        if IPVSMessages.decodeService(m) != nil { decoded += 1 }
        if IPVSMessages.decodeDestination(m) != nil { decoded += 1 }
        _ = NFTDecode.comment(inUserData: m.payload)
        _ = NFTSocket.elementIndex(in: m.encoded(), offset: m.payload.count / 2)
    }

    @Test func mutatedMessagesNeverTrap() throws {
        var rng = SplitMix64(seed: 0x6E66_7400_0001)
        let seeds = try Self.seeds()
        var decoded = 0, inputs = 0
        for _ in 0..<100_000 {
            let seed = seeds[rng.below(seeds.count)]
            var p = seed.payload
            for _ in 0...rng.below(4) { Fuzz.mutate(&p, attrStart: 4, isWire: false, &rng) }
            Self.decodeAll(NetlinkMessage(type: seed.type, flags: seed.flags, seq: 0, pid: 0, payload: p), &decoded)
            inputs += 1
        }
        for _ in 0..<20_000 {
            let p = rng.bytes(rng.below(200))
            Self.decodeAll(NetlinkMessage(type: 0xa00, flags: 2, seq: 0, pid: 0, payload: p), &decoded)
            _ = NFTSocket.elementIndex(in: p, offset: rng.below(256))
            inputs += 1
        }
        print("fuzz nftables/ipvs: \(inputs) inputs, \(decoded) objects decoded")
        #expect(inputs == 120_000 && decoded > 0)
    }
}

extension NFTSet {
    func withKey(_ t: NFTDataType) -> NFTSet { NFTSet(table, name, key: NFTKeyType(t), kind: kind) }
}

@Suite struct NFTablesLimitsTests {
    func encode(_ b: NFTBatch) throws {
        let enc = NFTEncoder(firstSeq: 1)
        try enc.encode(b)
    }

    @Test func oversizedRulesKeysAndValuesAreRefused() {
        var b = NFTBatch()
        b.add(NFTRule(NFTFixtures.chain, Array(repeating: .counter, count: 129)))
        #expect(throws: KernelError.self) { try encode(b) }
        b = NFTBatch()
        b.add(NFTRule(NFTFixtures.chain, [.cmp(.eq, .r(0), NFTValue(bytes: Array(repeating: 1, count: 65)))]))
        #expect(throws: KernelError.self) { try encode(b) }
        b = NFTBatch()
        let wide = NFTSet(NFTFixtures.t, "wide", key: NFTKeyType(fields: Array(repeating: .ipv6Address, count: 5)))
        b.add([NFTElement(NFTValue(bytes: Array(repeating: 0, count: 80)))], to: wide)
        #expect(throws: KernelError.self) { try encode(b) }
        b = NFTBatch()
        b.add(NFTRule(NFTFixtures.chain, [.verdict(.jump(String(repeating: "c", count: 70_000)))]))
        #expect(throws: KernelError.self) { try encode(b) }
        b = NFTBatch()
        b.add([.map(.u32(1), to: .goto(String(repeating: "c", count: 300)))], to: NFTFixtures.vmap.withKey(.integer(bytes: 4)))
        #expect(throws: KernelError.self) { try encode(b) }
        b = NFTBatch()
        b.add(NFTTable(.ip, String(repeating: "t", count: 256)))
        #expect(throws: KernelError.self) { try encode(b) }
        b = NFTBatch()
        b.add([.map(.u32(1), to: .accept)], to: NFTFixtures.map)  // a verdict in a data map
        #expect(throws: KernelError.self) { try encode(b) }
        b = NFTBatch()
        b.add([NFTElement(.u32(1))], to: NFTFixtures.map)  // a map element without a value
        #expect(throws: KernelError.self) { try encode(b) }
        b = NFTBatch()
        b.add(NFTRule(NFTFixtures.chain, Array(repeating: .counter, count: 128)))
        #expect(throws: Never.self) { try encode(b) }
    }
}
