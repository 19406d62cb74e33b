/// The fixed 12-byte message header (RFC 1035 4.1.1).
public struct DNSHeader: Sendable, Hashable {
    public var id: UInt16
    public var isResponse: Bool
    public var opcode: UInt8
    public var authoritative: Bool
    public var truncated: Bool
    public var recursionDesired: Bool
    public var recursionAvailable: Bool
    public var authenticData: Bool
    public var checkingDisabled: Bool
    /// The low 4 bits of the response code; EDNS carries the rest in OPT.
    public var rcode: UInt8
    public var qdCount: UInt16 = 0
    public var anCount: UInt16 = 0
    public var nsCount: UInt16 = 0
    public var arCount: UInt16 = 0

    public static let size = 12

    public init(
        id: UInt16 = 0, isResponse: Bool = false, opcode: UInt8 = 0, authoritative: Bool = false,
        truncated: Bool = false, recursionDesired: Bool = false, recursionAvailable: Bool = false,
        authenticData: Bool = false, checkingDisabled: Bool = false, rcode: UInt8 = 0
    ) {
        self.id = id
        self.isResponse = isResponse
        self.opcode = opcode
        self.authoritative = authoritative
        self.truncated = truncated
        self.recursionDesired = recursionDesired
        self.recursionAvailable = recursionAvailable
        self.authenticData = authenticData
        self.checkingDisabled = checkingDisabled
        self.rcode = rcode
    }

    public init(from r: inout DNSWireReader) throws(DNSWireError) {
        id = try r.u16()
        let flags = try r.u16()
        isResponse = flags & 0x8000 != 0
        opcode = UInt8((flags >> 11) & 0xF)
        authoritative = flags & 0x0400 != 0
        truncated = flags & 0x0200 != 0
        recursionDesired = flags & 0x0100 != 0
        recursionAvailable = flags & 0x0080 != 0
        authenticData = flags & 0x0020 != 0
        checkingDisabled = flags & 0x0010 != 0
        rcode = UInt8(flags & 0xF)
        qdCount = try r.u16()
        anCount = try r.u16()
        nsCount = try r.u16()
        arCount = try r.u16()
    }

    public var flags: UInt16 {
        var f = UInt16(opcode & 0xF) << 11 | UInt16(rcode & 0xF)
        if isResponse { f |= 0x8000 }
        if authoritative { f |= 0x0400 }
        if truncated { f |= 0x0200 }
        if recursionDesired { f |= 0x0100 }
        if recursionAvailable { f |= 0x0080 }
        if authenticData { f |= 0x0020 }
        if checkingDisabled { f |= 0x0010 }
        return f
    }

    public func encode(into w: inout DNSWireWriter) {
        w.u16(id)
        w.u16(flags)
        w.u16(qdCount)
        w.u16(anCount)
        w.u16(nsCount)
        w.u16(arCount)
    }
}
