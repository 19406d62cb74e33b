import MeshKernel

public struct DNSQuestion: Sendable, Hashable {
    public var name: DNSName
    public var type: DNSType
    public var qclass: DNSClass

    public init(name: DNSName, type: DNSType, qclass: DNSClass = .internet) {
        self.name = name
        self.type = type
        self.qclass = qclass
    }

    init(from r: inout DNSWireReader) throws(DNSWireError) {
        name = try r.name()
        type = DNSType(rawValue: try r.u16())
        qclass = DNSClass(rawValue: try r.u16())
    }

    func encode(into w: inout DNSWireWriter) {
        w.name(name)
        w.u16(type.rawValue)
        w.u16(qclass.rawValue)
    }
}

/// Record data for the types the server speaks; anything else is kept as raw bytes.
public enum DNSRData: Sendable, Hashable {
    case a(IPAddress)
    case aaaa(IPAddress)
    case ptr(DNSName)
    case cname(DNSName)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
    case raw([UInt8])
}

public struct DNSResourceRecord: Sendable, Hashable {
    public var name: DNSName
    public var type: DNSType
    public var rclass: DNSClass
    public var ttl: UInt32
    public var data: DNSRData

    public init(name: DNSName, type: DNSType, rclass: DNSClass = .internet, ttl: UInt32, data: DNSRData) {
        self.name = name
        self.type = type
        self.rclass = rclass
        self.ttl = ttl
        self.data = data
    }

    /// Reads one record. The caller has already seen the owner name and type when `type` is OPT.
    init(from r: inout DNSWireReader) throws(DNSWireError) {
        name = try r.name()
        type = DNSType(rawValue: try r.u16())
        rclass = DNSClass(rawValue: try r.u16())
        ttl = try r.u32()
        let length = Int(try r.u16())
        guard r.remaining >= length else { throw .truncated(at: r.offset) }
        let end = r.offset + length
        switch type {
        case .a:
            guard length == 4 else { throw .badRDataLength(type: type.rawValue, length: length) }
            data = .a(IPAddress(bytes: try r.take(4))!)
        case .aaaa:
            guard length == 16 else { throw .badRDataLength(type: type.rawValue, length: length) }
            data = .aaaa(IPAddress(bytes: try r.take(16))!)
        case .ptr, .cname:
            let n = try r.name()
            data = type == .ptr ? .ptr(n) : .cname(n)
        case .srv:
            guard length >= 7 else { throw .badRDataLength(type: type.rawValue, length: length) }
            let p = try r.u16(), wt = try r.u16(), port = try r.u16()
            data = .srv(priority: p, weight: wt, port: port, target: try r.name())
        default:
            data = .raw(try r.take(length))
        }
        // A name inside rdata may be compressed and shorter or longer than RDLENGTH claims.
        guard r.offset == end else { throw .badRDataLength(type: type.rawValue, length: length) }
    }

    func encode(into w: inout DNSWireWriter) {
        w.name(name)
        w.u16(type.rawValue)
        w.u16(rclass.rawValue)
        w.u32(ttl)
        let lengthAt = w.count
        w.u16(0)
        switch data {
        case .a(let ip), .aaaa(let ip): w.append(ip.bytes)
        case .ptr(let n), .cname(let n): w.name(n)
        case .srv(let p, let wt, let port, let target):
            // RFC 2782: the SRV target must not be compressed.
            w.u16(p)
            w.u16(wt)
            w.u16(port)
            w.name(target, compress: false)
        case .raw(let b): w.append(b)
        }
        w.patch16(at: lengthAt, UInt16(w.count - lengthAt - 2))
    }
}

/// EDNS0 as carried by an OPT pseudo-record (RFC 6891).
public struct DNSEDNS: Sendable, Hashable {
    /// Largest UDP payload the sender can take.
    public var payloadSize: UInt16
    /// The upper 8 bits of the 12-bit response code.
    public var extendedRCode: UInt8
    public var version: UInt8
    public var dnssecOK: Bool
    public var options: [UInt8]

    public init(payloadSize: UInt16, extendedRCode: UInt8 = 0, version: UInt8 = 0, dnssecOK: Bool = false, options: [UInt8] = []) {
        self.payloadSize = payloadSize
        self.extendedRCode = extendedRCode
        self.version = version
        self.dnssecOK = dnssecOK
        self.options = options
    }

    init(record: DNSResourceRecord) {
        payloadSize = record.rclass.rawValue
        extendedRCode = UInt8(record.ttl >> 24)
        version = UInt8(truncatingIfNeeded: record.ttl >> 16)
        dnssecOK = record.ttl & 0x8000 != 0
        if case .raw(let b) = record.data { options = b } else { options = [] }
    }

    func encode(into w: inout DNSWireWriter) {
        w.u8(0)
        w.u16(DNSType.opt.rawValue)
        w.u16(payloadSize)
        w.u32(UInt32(extendedRCode) << 24 | UInt32(version) << 16 | (dnssecOK ? 0x8000 : 0))
        w.u16(UInt16(options.count))
        w.append(options)
    }
}
