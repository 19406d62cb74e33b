/// A bounds-checked cursor over one DNS message. Every read checks the remaining length first;
/// names follow compression pointers only backwards and at most `maxPointers` times, so a loop or
/// a forward pointer ends in an error, never in a hang.
public struct DNSWireReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int

    static let maxPointers = 64

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }

    public mutating func u8() throws(DNSWireError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated(at: offset) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() throws(DNSWireError) -> UInt16 {
        guard remaining >= 2 else { throw .truncated(at: offset) }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    public mutating func u32() throws(DNSWireError) -> UInt32 {
        guard remaining >= 4 else { throw .truncated(at: offset) }
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    public mutating func take(_ n: Int) throws(DNSWireError) -> [UInt8] {
        guard n >= 0, remaining >= n else { throw .truncated(at: offset) }
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    public mutating func skip(_ n: Int) throws(DNSWireError) {
        guard n >= 0, remaining >= n else { throw .truncated(at: offset) }
        offset += n
    }

    /// Reads a possibly compressed name and returns it uncompressed, in the spelling found.
    public mutating func name() throws(DNSWireError) -> DNSName {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        var pos = offset
        var jumped = false
        var jumps = 0
        // Pointers must go strictly backwards from the label that holds them: with that rule
        // (plus the jump cap as a second guard) no chain can revisit a byte.
        var floor = offset
        while true {
            guard pos < bytes.count else { throw .truncated(at: pos) }
            let len = bytes[pos]
            switch len & 0xC0 {
            case 0x00:
                if len == 0 {
                    out.append(0)
                    if !jumped { offset = pos + 1 }
                    guard out.count <= DNSName.maxWireLength else { throw .nameTooLong }
                    return DNSName(uncheckedWire: out)
                }
                let n = Int(len)
                guard pos + 1 + n <= bytes.count else { throw .truncated(at: pos) }
                guard out.count + 1 + n + 1 <= DNSName.maxWireLength else { throw .nameTooLong }
                out.append(len)
                out.append(contentsOf: bytes[(pos + 1)..<(pos + 1 + n)])
                pos += 1 + n
            case 0xC0:
                guard pos + 1 < bytes.count else { throw .truncated(at: pos) }
                let target = Int(len & 0x3F) << 8 | Int(bytes[pos + 1])
                guard target < floor else { throw .badPointer(at: pos) }
                jumps += 1
                guard jumps <= Self.maxPointers else { throw .tooManyPointers }
                if !jumped {
                    offset = pos + 2
                    jumped = true
                }
                floor = target
                pos = target
            default:
                throw .reservedLabelType(len)
            }
        }
    }
}
