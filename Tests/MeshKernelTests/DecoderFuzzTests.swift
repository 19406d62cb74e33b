// Deterministic fuzzing of every decoder. Property: nothing traps (a trap kills the test process),
// parseAll's output re-encodes and re-parses to the same messages, TLV walks re-encode to the same
// entries, and NetlinkMonitor.decode agrees with the per-object decoders.
//
// Inputs per run (fixed seeds, so every run sees the same ones):
//   randomBuffers          60,000   random bytes, half with a plausible nlmsghdr
//   mutatedWireMessages    80,000   seed replies/requests on the wire, 1–4 mutations each
//   mutatedPayloads        60,000   seed payloads fed straight to the decoders, 1–4 mutations each
//   nestedAttributeLengths 24,000   every nla_len (nested ones too) of a seed set to 0/3/4/5/65535/…
//   total                 224,000   (each input goes through parseAll or all decoders, usually both)
// Measured (debug build): 1.1–3.4 s per test; the four run in parallel, so the whole unit run
// (87 tests) takes about 5.5 s wall clock. Each test prints its counts ("fuzz <name>: …").
@testable import MeshKernel
import Testing

/// Everything the fuzz suite learned about one batch of inputs.
struct FuzzReport: CustomStringConvertible {
    var inputs = 0
    var parsedMessages = 0
    var parseErrors = 0
    var decoded = 0
    var failures: [String] = []

    mutating func fail(_ what: String, _ input: [UInt8]) {
        if failures.count < 5 { failures.append("\(what): \(hex(input.prefix(96)))") } else if failures.count == 5 { failures.append("…") }
    }
    var description: String {
        "\(inputs) inputs, \(parsedMessages) messages parsed, \(parseErrors) rejected by parseAll, \(decoded) decoded objects"
    }
}

enum Fuzz {
    /// Seeds: the hand-made replies plus every request shape the encoders produce.
    static let seedMessages: [NetlinkMessage] = {
        var out = Replies.all
        let requests: [NetlinkRequest] = [
            try? LinkMessages.add(
                LinkSpec(
                    name: "vxlan0", kind: .vxlan(VXLANAttributes(vni: 4097, local: IPAddress("198.18.0.1"), ttl: 3, underlayIndex: 2))),
                masterIndex: 1),
            try? LinkMessages.add(LinkSpec(name: "veth0", kind: .veth(peerName: "veth1", peerNamespace: nil), mtu: 1400), masterIndex: nil),
            try? LinkMessages.add(LinkSpec(name: "br0", kind: .bridge, mac: MACAddress("02:00:00:00:00:01"), up: true), masterIndex: nil),
            try? AddressMessages.change(.add, InterfaceAddress(device: .index(3), prefix: IPPrefix("fe80::2/64")!, label: "x"), index: 3),
            try? RouteMessages.change(
                .replace,
                Route(
                    destination: IPPrefix("2001:db8::/32")!, gateway: IPAddress("fe80::1"), device: .index(3), table: 1000, onlink: true,
                    metric: 5, preferredSource: IPAddress("2001:db8::2")), deviceIndex: 3),
            try? NeighbourMessages.change(
                .replace, Neighbor(device: .index(4), address: IPAddress("fe80::3")!, mac: MACAddress("02:00:00:00:00:03")), index: 4),
            try? NeighbourMessages.change(
                .append, FDBEntry(device: .index(6), mac: .zero, destination: IPAddress("2001:db8::9"), vni: 9, port: 4789), index: 6),
            try? RuleMessages.change(.add, FIBRule(priority: 1000, mark: 0x4dff_00c9, table: 0x4dff_00c9)),
            try? RuleMessages.change(.add, FIBRule(priority: 1000, source: IPPrefix("fd00::/64")!, table: 77)),
        ].compactMap { $0 }
        out += requests.map { NetlinkMessage(type: $0.type, flags: $0.flags | 2, seq: 1, pid: 0, payload: $0.body) }
        // An uncapped error echoing a whole request, and a DONE with a TLV.
        let echoed = out[out.count - 1].encoded()
        out.append(
            NetlinkMessage(
                type: 2, flags: 0x200, seq: 1, pid: 0, payload: le32(Int32(-22)) + echoed + tlv(1, string: "bad") + tlv(2, u32: 24)))
        out.append(NetlinkMessage(type: 3, flags: 0x202, seq: 1, pid: 0, payload: le32(Int32(0)) + tlv(1, string: "done")))
        return out
    }()

    static let rtmTypes: [UInt16] = [2, 3, 16, 17, 18, 20, 21, 24, 25, 28, 29, 30, 32, 33]
    static let extremeLengths: [UInt32] = [0, 1, 3, 4, 5, 15, 16, 17, 0xFFFF, 0x1_0000, 0xFFFF_FFFF]

    /// Fixed header length before the attributes of a payload of this message type.
    static func familyHeaderLength(_ type: UInt16) -> Int {
        switch type {
        case 16, 17, 18: return 16
        case 20, 21, 22: return 8
        case 24, 25, 26, 28, 29, 30, 32, 33, 34: return 12
        case 2: return 20
        case 3: return 4
        default: return 0
        }
    }

    /// Offsets of every nla_len field in `bytes[start..<end]`, recursing into every value as if it
    /// were a nest (and also past a leading ifinfomsg, as in VETH_INFO_PEER).
    static func attributeLengthOffsets(_ bytes: [UInt8], _ start: Int, _ end: Int, depth: Int = 0, into out: inout [Int]) {
        var o = start
        while o + 4 <= end {
            let len = Int(bytes[o]) | Int(bytes[o + 1]) << 8
            out.append(o)
            guard len >= 4, o + len <= end else { return }
            if depth < 4 && len > 8 {
                attributeLengthOffsets(bytes, o + 4, o + len, depth: depth + 1, into: &out)
                if len > 20 { attributeLengthOffsets(bytes, o + 20, o + len, depth: depth + 1, into: &out) }
            }
            o += (len + 3) & ~3
        }
    }

    static func setLE16(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        guard at + 2 <= b.count else { return }
        b[at] = UInt8(truncatingIfNeeded: v)
        b[at + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }
    static func setLE32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        guard at + 4 <= b.count else { return }
        for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }

    /// One random structural or byte-level mutation. `attrStart` is where TLVs begin (for nla_len targets).
    static func mutate(_ b: inout [UInt8], attrStart: Int, isWire: Bool, _ rng: inout SplitMix64) {
        switch rng.below(isWire ? 11 : 10) {
        case 0, 1:  // flip a few bits
            guard !b.isEmpty else { return }
            for _ in 0...rng.below(4) { b[rng.below(b.count)] ^= UInt8(1) << UInt8(rng.below(8)) }
        case 2:  // random byte
            guard !b.isEmpty else { return }
            b[rng.below(b.count)] = rng.byte()
        case 3:  // truncate
            b.removeLast(rng.below(b.count + 1))
        case 4:  // append garbage
            b += rng.bytes(rng.below(24))
        case 5:  // delete a run
            guard !b.isEmpty else { return }
            let at = rng.below(b.count)
            b.removeSubrange(at..<min(b.count, at + 1 + rng.below(8)))
        case 6:  // insert a run
            b.insert(contentsOf: rng.bytes(1 + rng.below(8)), at: rng.below(b.count + 1))
        case 7:  // duplicate a chunk
            guard !b.isEmpty else { return }
            let at = rng.below(b.count), n = 1 + rng.below(min(32, b.count - at))
            b.insert(contentsOf: b[at..<at + n], at: rng.below(b.count + 1))
        case 8, 9:  // an attribute length (possibly nested) set to an extreme
            var offsets: [Int] = []
            attributeLengthOffsets(b, min(attrStart, b.count), b.count, into: &offsets)
            guard !offsets.isEmpty else { return }
            let v = rng.chance(4) ? UInt32(rng.below(0x1_0000)) : extremeLengths[rng.below(extremeLengths.count)]
            setLE16(&b, offsets[rng.below(offsets.count)], v)
        default:  // nlmsg_len set to an extreme
            let v = rng.chance(3) ? UInt32(max(0, b.count + rng.below(9) - 4)) : extremeLengths[rng.below(extremeLengths.count)]
            setLE32(&b, 0, v)
        }
    }

    /// Feeds one payload, under each message type that reaches a decoder, to every decoder.
    static func decodeEverything(_ payload: [UInt8], flags: UInt16, report: inout FuzzReport) {
        for type in rtmTypes {
            let m = NetlinkMessage(type: type, flags: flags, seq: 0, pid: 0, payload: payload)
            decodeEverything(m, report: &report)
        }
    }

    static func decodeEverything(_ m: NetlinkMessage, report: inout FuzzReport) {
        let link = LinkMessages.decode(m)
        let addr = AddressMessages.decode(m)
        let route = RouteMessages.decode(m)
        let neigh = NeighbourMessages.decodeNeighbor(m)
        let fdb = NeighbourMessages.decodeFDB(m)
        let rule = RuleMessages.decode(m)
        if rule != nil, m.type != 32 { report.fail("a rule from message type \(m.type)", m.payload) }
        let event = NetlinkMonitor.decode(m)
        _ = try? NetlinkStatus.parse(m, isDone: false)
        _ = try? NetlinkStatus.parse(m, isDone: true)
        let found = [link != nil, addr != nil, route != nil, neigh != nil, fdb != nil, rule != nil].filter { $0 }.count
        report.decoded += found
        // The monitor must say what the object decoders say.
        let expected: RouteEvent? =
            switch m.type {
            case 16: link.map(RouteEvent.linkChanged)
            case 20: addr.map(RouteEvent.addressAdded)
            case 24: route.map(RouteEvent.routeAdded)
            case 28: fdb.map(RouteEvent.fdbChanged) ?? neigh.map(RouteEvent.neighborChanged)
            case 29: fdb.map(RouteEvent.fdbRemoved) ?? neigh.map(RouteEvent.neighborRemoved)
            default: event
            }
        if event != expected { report.fail("monitor disagrees for type \(m.type)", m.payload) }
        if found > 1 { report.fail("several decoders accepted type \(m.type)", m.payload) }
    }

    /// parseAll, the re-encode/re-parse round trip, the TLV walk and its round trip, then every decoder.
    static func exerciseWire(_ bytes: [UInt8], report: inout FuzzReport) {
        report.inputs += 1
        let attrs = NetlinkAttributes(bytes)
        let reencoded = attrs.entries.flatMap { tlv($0.type, $0.value) }
        if NetlinkAttributes(reencoded) != attrs { report.fail("TLV round trip", bytes) }
        let messages: [NetlinkMessage]
        do { messages = try NetlinkMessage.parseAll(bytes) } catch {
            report.parseErrors += 1
            return
        }
        report.parsedMessages += messages.count
        let again = try? NetlinkMessage.parseAll(messages.flatMap { $0.encoded() })
        if again != messages { report.fail("parseAll round trip", bytes) }
        for m in messages { decodeEverything(m, report: &report) }
    }

    static func finish(_ name: String, _ report: FuzzReport, _ started: ContinuousClock.Instant) {
        print("fuzz \(name): \(report) in \(ContinuousClock.now - started)")
        #expect(report.failures.isEmpty, "\(report.failures.joined(separator: "\n"))")
    }
}

@Suite struct DecoderFuzzTests {
    @Test func randomBuffers() {
        let started = ContinuousClock.now
        var rng = SplitMix64(seed: 0x6D65_7368_0001)
        var report = FuzzReport()
        for i in 0..<60_000 {
            var b = rng.bytes(rng.below(97))
            if i % 2 == 0, b.count >= 16 {
                // a plausible header so parseAll gets past the length check
                Fuzz.setLE32(&b, 0, UInt32(rng.chance(4) ? b.count - rng.below(4) : (16 + rng.below(b.count - 15))))
                Fuzz.setLE16(&b, 4, UInt32(Fuzz.rtmTypes[rng.below(Fuzz.rtmTypes.count)]))
            }
            Fuzz.exerciseWire(b, report: &report)
            if i % 4 == 0 { Fuzz.decodeEverything(b, flags: UInt16(truncatingIfNeeded: rng.next()), report: &report) }
        }
        Fuzz.finish("randomBuffers", report, started)
        #expect(report.inputs == 60_000)
        #expect(report.parsedMessages > 10_000)
    }

    @Test func mutatedWireMessages() {
        let started = ContinuousClock.now
        var rng = SplitMix64(seed: 0x6D65_7368_0002)
        var report = FuzzReport()
        let seeds = Fuzz.seedMessages.map { $0.encoded() }
        for _ in 0..<80_000 {
            var b = seeds[rng.below(seeds.count)]
            if rng.chance(6) { b += seeds[rng.below(seeds.count)] }  // several messages per datagram
            for _ in 0...rng.below(4) {
                let start = 16 + Fuzz.familyHeaderLength(UInt16(b.count >= 6 ? Int(b[4]) : 0))
                Fuzz.mutate(&b, attrStart: start, isWire: true, &rng)
            }
            Fuzz.exerciseWire(b, report: &report)
        }
        Fuzz.finish("mutatedWireMessages", report, started)
        #expect(report.inputs == 80_000)
        #expect(report.parsedMessages > 20_000 && report.parseErrors > 5_000)
        #expect(report.decoded > 5_000)
    }

    @Test func mutatedPayloads() {
        let started = ContinuousClock.now
        var rng = SplitMix64(seed: 0x6D65_7368_0003)
        var report = FuzzReport()
        for _ in 0..<60_000 {
            let seed = Fuzz.seedMessages[rng.below(Fuzz.seedMessages.count)]
            var p = seed.payload
            for _ in 0...rng.below(4) { Fuzz.mutate(&p, attrStart: Fuzz.familyHeaderLength(seed.type), isWire: false, &rng) }
            report.inputs += 1
            var m = seed
            m.payload = p
            if rng.chance(3) { m.flags = [0, 0x100, 0x200, 0x300, UInt16(truncatingIfNeeded: rng.next())][rng.below(5)] }
            if rng.chance(4) { m.type = Fuzz.rtmTypes[rng.below(Fuzz.rtmTypes.count)] }
            Fuzz.decodeEverything(m, report: &report)
            if rng.chance(8) {
                let wire = m.encoded()
                let parsed = try? NetlinkMessage.parseAll(wire)
                if parsed != [m] { report.fail("encode/parse of one message", wire) }
            }
        }
        Fuzz.finish("mutatedPayloads", report, started)
        #expect(report.inputs == 60_000)
        #expect(report.decoded > 5_000)
    }

    @Test func nestedAttributeLengths() {
        let started = ContinuousClock.now
        var rng = SplitMix64(seed: 0x6D65_7368_0004)
        var report = FuzzReport()
        let targets = Fuzz.seedMessages.map { m -> (NetlinkMessage, [Int]) in
            var offsets: [Int] = []
            Fuzz.attributeLengthOffsets(m.payload, Fuzz.familyHeaderLength(m.type), m.payload.count, into: &offsets)
            return (m, offsets)
        }.filter { !$0.1.isEmpty }
        #expect(targets.count >= 10)
        for _ in 0..<24_000 {
            let (seed, offsets) = targets[rng.below(targets.count)]
            var m = seed
            for _ in 0...rng.below(2) {
                let v = rng.chance(3) ? UInt32(rng.below(0x1_0000)) : Fuzz.extremeLengths[rng.below(Fuzz.extremeLengths.count)]
                Fuzz.setLE16(&m.payload, offsets[rng.below(offsets.count)], v)
            }
            report.inputs += 1
            Fuzz.decodeEverything(m, report: &report)
            _ = NetlinkAttributes(m.payload.dropFirst(Fuzz.familyHeaderLength(m.type)))
            if rng.chance(4) {
                Fuzz.exerciseWire(m.encoded(), report: &report)
                report.inputs -= 1
            }
        }
        Fuzz.finish("nestedAttributeLengths", report, started)
        #expect(report.inputs == 24_000)
    }
}
