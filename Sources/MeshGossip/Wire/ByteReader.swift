/// Why a packet or stream could not be decoded. Every decoder throws one of these instead of
/// trapping, whatever the input.
public enum WireError: Error, Equatable, Sendable {
    case truncated
    case tooLarge(field: String, size: Int, limit: Int)
    case unknownType(UInt8)
    case invalid(String)
}

/// Upper bounds checked before anything is allocated from a length read off the wire.
public struct WireLimits: Sendable, Equatable {
    /// Node, network, table and key names.
    public var maxName = 512
    /// One table entry's value.
    public var maxValue = 1 << 20
    /// Members, network events or entries in one push/pull.
    public var maxItems = 1 << 20
    public init() {}
}

/// A cursor over received bytes. Reads check the remaining length first, so a hostile length can
/// neither read past the end nor make us reserve memory the packet does not back.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var offset: Int
    let end: Int

    init(_ bytes: [UInt8], from: Int = 0, to: Int? = nil) {
        self.bytes = bytes
        offset = from
        end = to ?? bytes.count
    }

    var remaining: Int { end - offset }
    var isAtEnd: Bool { offset >= end }

    mutating func u8() throws(WireError) -> UInt8 {
        guard remaining >= 1 else { throw .truncated }
        defer { offset += 1 }
        return bytes[offset]
    }
    mutating func u16() throws(WireError) -> UInt16 {
        guard remaining >= 2 else { throw .truncated }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }
    mutating func u32() throws(WireError) -> UInt32 {
        guard remaining >= 4 else { throw .truncated }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(bytes[offset + i]) }
        offset += 4
        return v
    }
    mutating func u64() throws(WireError) -> UInt64 {
        guard remaining >= 8 else { throw .truncated }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[offset + i]) }
        offset += 8
        return v
    }
    mutating func take(_ n: Int) throws(WireError) -> [UInt8] {
        guard n >= 0, remaining >= n else { throw .truncated }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }
    mutating func skip(_ n: Int) throws(WireError) {
        guard n >= 0, remaining >= n else { throw .truncated }
        offset += n
    }
    mutating func string(_ field: String, max: Int) throws(WireError) -> String {
        let n = Int(try u16())
        guard n <= max else { throw .tooLarge(field: field, size: n, limit: max) }
        let b = try take(n)
        guard let s = String(validating: b, as: UTF8.self) else { throw .invalid("\(field): not UTF-8") }
        return s
    }
    mutating func blob(_ field: String, max: Int) throws(WireError) -> [UInt8] {
        let n = Int(try u32())
        guard n <= max else { throw .tooLarge(field: field, size: n, limit: max) }
        return try take(n)
    }
    /// A count of items each at least `minSize` bytes long: rejected unless the rest of the input
    /// could hold that many, so `reserveCapacity(count)` is always backed by real bytes.
    mutating func count(_ field: String, max: Int, minSize: Int) throws(WireError) -> Int {
        let n = Int(try u32())
        guard n <= max else { throw .tooLarge(field: field, size: n, limit: max) }
        guard n * minSize <= remaining else { throw .truncated }
        return n
    }
}
