/// Builds one DNS message. Names are compressed against every name already written (RFC 1035
/// 4.1.4), matched case-insensitively, so an answer's owner name points back at the question and
/// keeps the asker's spelling.
public struct DNSWireWriter {
    public private(set) var bytes: [UInt8]
    /// Where each label written out in full starts (only offsets < 0x4000 can be pointed to).
    /// A message holds a handful of names, so a linear scan beats hashing every suffix.
    private var labelOffsets: [Int] = []

    public init(capacity: Int = 512) {
        bytes = []
        bytes.reserveCapacity(capacity)
        labelOffsets.reserveCapacity(16)
    }

    public var count: Int { bytes.count }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }
    public mutating func u32(_ v: UInt32) {
        bytes.append(UInt8(v >> 24))
        bytes.append(UInt8(truncatingIfNeeded: v >> 16))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }
    public mutating func append<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }

    /// Overwrites a big-endian u16 written earlier (RDLENGTH, header counts).
    public mutating func patch16(at i: Int, _ v: UInt16) {
        bytes[i] = UInt8(v >> 8)
        bytes[i + 1] = UInt8(truncatingIfNeeded: v)
    }

    /// Drops everything from `length` on (used to back out a record that did not fit).
    public mutating func truncate(to length: Int) {
        bytes.removeSubrange(length...)
        labelOffsets.removeAll { $0 >= length }
    }

    public mutating func name(_ n: DNSName, compress: Bool = true) {
        let w = n.wire
        var i = 0
        // This name's labels become pointer targets only once it is complete: until then a
        // suffix match could run into bytes not written yet.
        let firstNew = labelOffsets.count
        defer { if !compress { labelOffsets.removeSubrange(firstNew...) } }
        var written: [Int] = []
        while w[i] != 0 {
            if compress, let at = labelOffsets.first(where: { matches(at: $0, w, from: i) }) {
                u16(0xC000 | UInt16(at))
                labelOffsets += written
                return
            }
            if bytes.count < 0x4000 { written.append(bytes.count) }
            let len = Int(w[i])
            bytes.append(contentsOf: w[i...(i + len)])
            i += 1 + len
        }
        bytes.append(0)
        labelOffsets += written
    }

    /// Does the name already written at `p` (following its pointers) equal `w[i...]`, ignoring case?
    private func matches(at p: Int, _ w: [UInt8], from i: Int) -> Bool {
        var p = p, i = i, hops = 0
        while true {
            var len = bytes[p]
            while len & 0xC0 == 0xC0 {
                hops += 1
                if hops > 64 { return false }
                p = Int(len & 0x3F) << 8 | Int(bytes[p + 1])
                len = bytes[p]
            }
            guard len == w[i], p + Int(len) < bytes.count else { return false }
            if len == 0 { return true }
            for k in 1...Int(len) where DNSName.lower(bytes[p + k]) != DNSName.lower(w[i + k]) { return false }
            p += 1 + Int(len)
            i += 1 + Int(len)
        }
    }
}
