/// Builds one DNS message. Names are compressed against every name already written (RFC 1035
/// 4.1.4), matched case-insensitively, so an answer's owner name points back at the question and
/// keeps the asker's spelling.
public struct DNSWireWriter {
    public private(set) var bytes: [UInt8]
    /// Lowercased wire form of a name suffix → where it starts. Only offsets < 0x4000 can be pointed to.
    private var suffixes: [[UInt8]: Int] = [:]

    public init(capacity: Int = 512) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v)) }
    public mutating func u32(_ v: UInt32) {
        bytes.append(UInt8(v >> 24)); bytes.append(UInt8(truncatingIfNeeded: v >> 16))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v))
    }
    public mutating func append<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }

    /// Overwrites a big-endian u16 written earlier (RDLENGTH, header counts).
    public mutating func patch16(at i: Int, _ v: UInt16) {
        bytes[i] = UInt8(v >> 8); bytes[i + 1] = UInt8(truncatingIfNeeded: v)
    }

    /// Drops everything from `length` on (used to back out a record that did not fit).
    public mutating func truncate(to length: Int) {
        bytes.removeSubrange(length...)
        suffixes = suffixes.filter { $0.value < length }
    }

    public mutating func name(_ n: DNSName, compress: Bool = true) {
        let w = n.wire
        var i = 0
        while w[i] != 0 {
            if compress {
                let key = w[i...].map(DNSName.lower)
                if let at = suffixes[key] {
                    u16(0xC000 | UInt16(at))
                    return
                }
                if bytes.count < 0x4000 { suffixes[key] = bytes.count }
            }
            let len = Int(w[i])
            bytes.append(contentsOf: w[i...(i + len)])
            i += 1 + len
        }
        bytes.append(0)
    }
}
