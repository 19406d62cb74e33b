/// Binary encoding of `Message`: one type byte, then big-endian fields, strings and blobs with
/// length prefixes. Decoding checks every length against `WireLimits` and the bytes present.
public enum MessageCodec {
    public static func encode(_ m: Message) -> [UInt8] {
        var w = ByteWriter()
        encode(m, into: &w)
        return w.bytes
    }

    static func encode(_ m: Message, into w: inout ByteWriter) {
        switch m {
        case let .ping(seq, target, source, sourceAddress):
            w.u8(Message.Kind.ping.rawValue)
            w.u32(seq)
            w.string(target)
            w.string(source)
            w.address(sourceAddress)
        case let .indirectPing(seq, target, targetAddress, source, sourceAddress, wantNack):
            w.u8(Message.Kind.indirectPing.rawValue)
            w.u32(seq)
            w.string(target)
            w.address(targetAddress)
            w.string(source)
            w.address(sourceAddress)
            w.u8(wantNack ? 1 : 0)
        case let .ack(seq):
            w.u8(Message.Kind.ack.rawValue)
            w.u32(seq)
        case let .nack(seq):
            w.u8(Message.Kind.nack.rawValue)
            w.u32(seq)
        case let .alive(a):
            w.u8(Message.Kind.alive.rawValue)
            w.u32(a.incarnation)
            w.string(a.node)
            w.address(a.address)
        case let .suspect(s):
            w.u8(Message.Kind.suspect.rawValue)
            accusation(s, &w)
        case let .dead(d):
            w.u8(Message.Kind.dead.rawValue)
            accusation(d, &w)
        case let .network(n):
            w.u8(Message.Kind.network.rawValue)
            network(n, &w)
        case let .table(t):
            w.u8(Message.Kind.table.rawValue)
            table(t, &w)
        case let .pushPull(p):
            w.u8(Message.Kind.pushPull.rawValue)
            w.u8((p.isReply ? 1 : 0) | (p.isJoin ? 2 : 0))
            w.string(p.sender)
            w.u64(p.ltime)
            w.u32(UInt32(p.senderNetworks.count))
            for n in p.senderNetworks { w.string(n) }
            w.u32(UInt32(p.members.count))
            for m in p.members {
                w.string(m.node)
                w.address(m.address)
                w.u32(m.incarnation)
                w.u8(m.state.rawValue)
            }
            w.u32(UInt32(p.networkEvents.count))
            for n in p.networkEvents { network(n, &w) }
            w.u32(UInt32(p.entries.count))
            for e in p.entries { table(e, &w) }
        }
    }

    private static func accusation(_ a: AccusationMessage, _ w: inout ByteWriter) {
        w.u32(a.incarnation)
        w.string(a.node)
        w.string(a.from)
    }
    private static func network(_ n: NetworkEvent, _ w: inout ByteWriter) {
        w.u64(n.ltime)
        w.string(n.node)
        w.string(n.network)
        w.u8(n.joined ? 1 : 0)
    }
    private static func table(_ t: TableEvent, _ w: inout ByteWriter) {
        w.u64(t.ltime)
        w.u8(t.deleted ? 1 : 0)
        w.string(t.owner)
        w.string(t.network)
        w.string(t.table)
        w.string(t.key)
        w.blob(t.value)
    }

    public static func decode(_ bytes: [UInt8], limits: WireLimits = WireLimits()) throws(WireError) -> Message {
        var r = ByteReader(bytes)
        let m = try decode(&r, limits: limits)
        guard r.isAtEnd else { throw .invalid("\(r.remaining) trailing bytes") }
        return m
    }

    static func decode(_ r: inout ByteReader, limits l: WireLimits) throws(WireError) -> Message {
        let t = try r.u8()
        guard let kind = Message.Kind(rawValue: t) else { throw .unknownType(t) }
        switch kind {
        case .ping:
            return .ping(
                seq: try r.u32(), target: try r.string("target", max: l.maxName),
                source: try r.string("source", max: l.maxName), sourceAddress: try r.address())
        case .indirectPing:
            let seq = try r.u32(), target = try r.string("target", max: l.maxName), ta = try r.address()
            let source = try r.string("source", max: l.maxName), sa = try r.address()
            let flag = try r.u8()
            guard flag <= 1 else { throw .invalid("nack flag \(flag)") }
            return .indirectPing(seq: seq, target: target, targetAddress: ta, source: source, sourceAddress: sa, wantNack: flag == 1)
        case .ack: return .ack(seq: try r.u32())
        case .nack: return .nack(seq: try r.u32())
        case .alive:
            return .alive(AliveMessage(incarnation: try r.u32(), node: try r.string("node", max: l.maxName), address: try r.address()))
        case .suspect: return .suspect(try accusation(&r, l))
        case .dead: return .dead(try accusation(&r, l))
        case .network: return .network(try network(&r, l))
        case .table: return .table(try table(&r, l))
        case .pushPull:
            let flags = try r.u8()
            guard flags <= 3 else { throw .invalid("push/pull flags \(flags)") }
            let sender = try r.string("sender", max: l.maxName), ltime = try r.u64()
            // Minimum encoded sizes: string 2; member 2+1+4+2+4+1; network event 8+2+2+1; entry 8+1+2*4+4.
            let nn = try r.count("networks", max: l.maxItems, minSize: 2)
            var nets: [String] = []
            nets.reserveCapacity(nn)
            for _ in 0..<nn { nets.append(try r.string("network", max: l.maxName)) }
            let nm = try r.count("members", max: l.maxItems, minSize: 14)
            var members: [MemberRecord] = []
            members.reserveCapacity(nm)
            for _ in 0..<nm {
                let node = try r.string("node", max: l.maxName), addr = try r.address(), inc = try r.u32()
                let s = try r.u8()
                guard let state = MemberState(rawValue: s) else { throw .invalid("member state \(s)") }
                members.append(MemberRecord(node: node, address: addr, incarnation: inc, state: state))
            }
            let ne = try r.count("network events", max: l.maxItems, minSize: 13)
            var events: [NetworkEvent] = []
            events.reserveCapacity(ne)
            for _ in 0..<ne { events.append(try network(&r, l)) }
            let nt = try r.count("entries", max: l.maxItems, minSize: 21)
            var entries: [TableEvent] = []
            entries.reserveCapacity(nt)
            for _ in 0..<nt { entries.append(try table(&r, l)) }
            return .pushPull(
                PushPull(
                    isReply: flags & 1 != 0, isJoin: flags & 2 != 0, sender: sender, ltime: ltime,
                    senderNetworks: nets, members: members, networkEvents: events, entries: entries))
        }
    }

    private static func accusation(_ r: inout ByteReader, _ l: WireLimits) throws(WireError) -> AccusationMessage {
        AccusationMessage(incarnation: try r.u32(), node: try r.string("node", max: l.maxName), from: try r.string("from", max: l.maxName))
    }
    private static func network(_ r: inout ByteReader, _ l: WireLimits) throws(WireError) -> NetworkEvent {
        let ltime = try r.u64(), node = try r.string("node", max: l.maxName), net = try r.string("network", max: l.maxName)
        let j = try r.u8()
        guard j <= 1 else { throw .invalid("joined flag \(j)") }
        return NetworkEvent(ltime: ltime, node: node, network: net, joined: j == 1)
    }
    private static func table(_ r: inout ByteReader, _ l: WireLimits) throws(WireError) -> TableEvent {
        let ltime = try r.u64(), d = try r.u8()
        guard d <= 1 else { throw .invalid("deleted flag \(d)") }
        return TableEvent(
            ltime: ltime, deleted: d == 1, owner: try r.string("owner", max: l.maxName),
            network: try r.string("network", max: l.maxName), table: try r.string("table", max: l.maxName),
            key: try r.string("key", max: l.maxName), value: try r.blob("value", max: l.maxValue))
    }
}

/// A UDP payload carries several encoded messages: `[count u8][u16 length × count][messages]`.
/// At most 255 parts; the packer never exceeds the configured packet size.
public enum Compound {
    public static let maxParts = 255
    /// Bytes the header adds for `parts` messages.
    public static func overhead(parts: Int) -> Int { 1 + 2 * parts }

    public static func encode(_ parts: [[UInt8]]) -> [UInt8] {
        precondition(parts.count <= maxParts && parts.allSatisfy { $0.count <= Int(UInt16.max) })
        var w = ByteWriter(capacity: parts.reduce(1) { $0 + 2 + $1.count })
        w.u8(UInt8(parts.count))
        for p in parts { w.u16(UInt16(p.count)) }
        for p in parts { w.raw(p) }
        return w.bytes
    }

    /// Splits a compound payload into messages. Any malformed part fails the whole packet.
    public static func decode(_ bytes: [UInt8], limits: WireLimits = WireLimits()) throws(WireError) -> [Message] {
        var r = ByteReader(bytes)
        let n = Int(try r.u8())
        guard r.remaining >= 2 * n else { throw .truncated }
        var lengths: [Int] = []
        lengths.reserveCapacity(n)
        for _ in 0..<n { lengths.append(Int(try r.u16())) }
        var out: [Message] = []
        out.reserveCapacity(n)
        for len in lengths {
            guard r.remaining >= len else { throw .truncated }
            var part = ByteReader(bytes, from: r.offset, to: r.offset + len)
            out.append(try MessageCodec.decode(&part, limits: limits))
            guard part.isAtEnd else { throw .invalid("compound part has trailing bytes") }
            try r.skip(len)
        }
        guard r.isAtEnd else { throw .invalid("compound has trailing bytes") }
        return out
    }
}
