/// Appends big-endian integers and length-prefixed strings and blobs. Encoding cannot fail; the
/// length limits are enforced by the callers that build the values (and again by the reader).
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }
    mutating func u32(_ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }
    mutating func u64(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }
    /// u16 length then UTF-8; names and keys are short by contract (see WireLimits).
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u16(UInt16(min(utf8.count, Int(UInt16.max))))
        bytes.append(contentsOf: utf8.prefix(Int(UInt16.max)))
    }
    /// u32 length then raw bytes.
    mutating func blob(_ b: [UInt8]) {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
}
