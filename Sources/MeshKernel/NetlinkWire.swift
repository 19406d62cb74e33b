/// Decoding of netlink replies. Pure and bounds-checked: every length the kernel (or a fuzzer)
/// sends is checked against what is actually there before anything is read, so no input traps.

/// One netlink message as received: header fields plus the payload after `nlmsghdr`.
public struct NetlinkMessage: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var seq: UInt32
    public var pid: UInt32
    public var payload: [UInt8]

    public static let headerLength = 16

    public init(type: UInt16, flags: UInt16, seq: UInt32, pid: UInt32, payload: [UInt8]) {
        self.type = type
        self.flags = flags
        self.seq = seq
        self.pid = pid
        self.payload = payload
    }

    /// Splits a datagram into messages. A message whose length is out of range ends the walk with
    /// an error rather than a partial read.
    public static func parseAll(_ bytes: some Collection<UInt8>) throws(WireError) -> [NetlinkMessage] {
        var out: [NetlinkMessage] = []
        var r = ByteReader(Array(bytes))
        while r.remaining >= headerLength {
            let start = r.offset
            let len = Int(r.u32())
            guard len >= headerLength, len <= r.remaining + 4 else {
                throw .badLength(offset: start, length: len)
            }
            let type = r.u16(), flags = r.u16(), seq = r.u32(), pid = r.u32()
            let payload = r.bytes(len - headerLength)
            out.append(NetlinkMessage(type: type, flags: flags, seq: seq, pid: pid, payload: payload))
            r.skip(align4(len) - len)
        }
        return out
    }

    /// Encodes header + payload (for tests and for the request path).
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u32(UInt32(Self.headerLength + payload.count))
        w.u16(type)
        w.u16(flags)
        w.u32(seq)
        w.u32(pid)
        w.append(payload)
        w.pad4()
        return w.bytes
    }
}

public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case badLength(offset: Int, length: Int)
    case truncated(what: String, need: Int, have: Int)
    public var description: String {
        switch self {
        case .badLength(let o, let l): return "message at offset \(o) claims length \(l)"
        case .truncated(let w, let n, let h): return "\(w) needs \(n) bytes, has \(h)"
        }
    }
}

@inline(__always) func align4(_ n: Int) -> Int { (n + 3) & ~3 }

/// Netlink attributes (TLVs) of one message or nest. Lookup is by type with the NESTED and
/// NET_BYTEORDER flag bits masked off; the last occurrence of a type wins, like nla_parse.
public struct NetlinkAttributes: Sendable, Equatable {
    public private(set) var entries: [(type: UInt16, value: [UInt8])] = []

    public static func == (a: Self, b: Self) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.type == $1.type && $0.value == $1.value }
    }

    /// Walks TLVs; a malformed trailing attribute stops the walk (the kernel never sends one,
    /// and nla_parse also stops there) but what came before is kept.
    public init(_ bytes: some Collection<UInt8>) {
        var r = ByteReader(Array(bytes))
        while r.remaining >= 4 {
            let len = Int(r.u16())
            let type = r.u16() & 0x3FFF
            guard len >= 4, len - 4 <= r.remaining else { break }
            entries.append((type, r.bytes(len - 4)))
            r.skip(min(align4(len) - len, r.remaining))
        }
    }

    public subscript(type: Int) -> [UInt8]? { entries.last { $0.type == UInt16(type) }?.value }
    public func has(_ type: Int) -> Bool { self[type] != nil }

    public func u8(_ t: Int) -> UInt8? { self[t].flatMap { $0.count >= 1 ? $0[0] : nil } }
    public func u16(_ t: Int) -> UInt16? { self[t].flatMap { v in v.count >= 2 ? UInt16(v[0]) | UInt16(v[1]) << 8 : nil } }
    public func u32(_ t: Int) -> UInt32? {
        self[t].flatMap { v in v.count >= 4 ? UInt32(v[0]) | UInt32(v[1]) << 8 | UInt32(v[2]) << 16 | UInt32(v[3]) << 24 : nil }
    }
    public func be16(_ t: Int) -> UInt16? { u16(t).map { UInt16(bigEndian: $0) } }
    public func string(_ t: Int) -> String? {
        self[t].map { v in String(decoding: v.prefix { $0 != 0 }, as: UTF8.self) }
    }
    public func nested(_ t: Int) -> NetlinkAttributes? { self[t].map { NetlinkAttributes($0) } }
    public func address(_ t: Int) -> IPAddress? { self[t].flatMap { IPAddress(bytes: $0) } }
    public func mac(_ t: Int) -> MACAddress? { self[t].flatMap { MACAddress(bytes: $0) } }
}

/// Host-order reads over a byte array; reads past the end yield zeros, callers check `remaining` first.
struct ByteReader {
    let data: [UInt8]
    var offset = 0
    init(_ data: [UInt8]) { self.data = data }
    var remaining: Int { data.count - offset }

    mutating func u8() -> UInt8 {
        guard offset < data.count else { return 0 }
        defer { offset += 1 }
        return data[offset]
    }
    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }  // netlink is host order; hosts here are little-endian
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func i32() -> Int32 { Int32(bitPattern: u32()) }
    mutating func bytes(_ n: Int) -> [UInt8] {
        let n = max(0, min(n, remaining))
        defer { offset += n }
        return Array(data[offset..<offset + n])
    }
    mutating func skip(_ n: Int) { offset += max(0, min(n, remaining)) }
}

struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(v & 0xff))
        bytes.append(UInt8(v >> 8))
    }
    mutating func u32(_ v: UInt32) {
        u16(UInt16(v & 0xffff))
        u16(UInt16(v >> 16))
    }
    mutating func append(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func pad4() { while bytes.count % 4 != 0 { bytes.append(0) } }
}

/// The kernel's answer to one request: an ACK, an error with extended-ack fields, or DONE.
struct NetlinkStatus: Equatable {
    var error: Int32  // 0 or -errno
    var message: String?  // NLMSGERR_ATTR_MSG
    var offset: UInt32?  // NLMSGERR_ATTR_OFFS

    /// `payload` of an NLMSG_ERROR (or NLMSG_DONE) message. With NETLINK_CAP_ACK the echoed
    /// request is only its header; with NLM_F_ACK_TLVS (0x200) TLVs follow it.
    static func parse(_ m: NetlinkMessage, isDone: Bool) throws(WireError) -> NetlinkStatus {
        if isDone && m.payload.count < 4 { return NetlinkStatus(error: 0) }
        guard m.payload.count >= 4 else { throw .truncated(what: "nlmsgerr", need: 4, have: m.payload.count) }
        var r = ByteReader(m.payload)
        var s = NetlinkStatus(error: r.i32())
        guard m.flags & 0x200 != 0 else { return s }
        if !isDone {
            // Echoed request: its header, or the whole message if the kernel did not cap it (flag 0x100).
            guard r.remaining >= 16 else { return s }
            var peek = ByteReader(Array(m.payload[4..<8]))
            let echoedLen = Int(peek.u32())
            let capped = m.flags & 0x100 != 0
            r.skip(capped ? 16 : align4(echoedLen))
        }
        let tlvs = NetlinkAttributes(r.bytes(r.remaining))
        s.message = tlvs.string(1)
        s.offset = tlvs.u32(2)
        return s
    }
}
