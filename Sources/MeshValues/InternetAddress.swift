#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 or IPv6 address as a value. Parsing and printing go through inet_pton/inet_ntop so
/// text matches what `ip -j` prints.
public enum IPAddress: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    case v4(UInt32)  // network order value: 10.0.0.1 == 0x0A000001
    case v6(UInt64, UInt64)  // high and low halves, network order

    public init?(_ text: String) {
        // inet_pton reads a C string: text after an embedded NUL would be silently ignored.
        guard !text.utf8.contains(0) else { return nil }
        var a4 = in_addr()
        if inet_pton(AF_INET, text, &a4) == 1 {
            self = .v4(UInt32(bigEndian: a4.s_addr))
            return
        }
        var a6 = in6_addr()
        if inet_pton(AF_INET6, text, &a6) == 1 {
            self.init(bytes: withUnsafeBytes(of: a6) { Array($0) })!
            return
        }
        return nil
    }

    /// From 4 or 16 bytes in network order, as they appear in netlink attributes.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        let b = Array(bytes)
        switch b.count {
        case 4:
            self = .v4(b.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            let hi = b[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let lo = b[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            self = .v6(hi, lo)
        default:
            return nil
        }
    }

    public var bytes: [UInt8] {
        switch self {
        case .v4(let v): return (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) }
        case .v6(let hi, let lo):
            return (0..<8).map { UInt8(truncatingIfNeeded: hi >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: lo >> (56 - 8 * $0)) }
        }
    }

    public var isIPv4: Bool { if case .v4 = self { return true } else { return false } }
    /// AF_INET or AF_INET6.
    public var family: UInt8 { isIPv4 ? UInt8(AF_INET) : UInt8(AF_INET6) }
    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    public var description: String {
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let b = bytes
        let ok = b.withUnsafeBytes { raw in
            inet_ntop(isIPv4 ? AF_INET : AF_INET6, raw.baseAddress, &out, socklen_t(out.count)) != nil
        }
        guard ok else { return "?" }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Numeric order within a family, IPv4 first; no allocation (dataplane diffs sort thousands).
    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        switch (a, b) {
        case (.v4(let x), .v4(let y)): x < y
        case (.v6(let x1, let x2), .v6(let y1, let y2)): (x1, x2) < (y1, y2)
        case (.v4, .v6): true
        case (.v6, .v4): false
        }
    }

    /// This address with every bit after the first `length` cleared.
    public func masked(to length: Int) -> IPAddress {
        var b = bytes
        for i in 0..<b.count {
            let keep = max(0, min(8, length - i * 8))
            b[i] &= keep == 0 ? 0 : ~UInt8(0) << (8 - keep)
        }
        return IPAddress(bytes: b)!
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let a = IPAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an IP address: \(text)"))
        }
        self = a
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// An address with a prefix length, as in `10.0.0.2/24`. The address keeps its host bits
/// (an interface address); `network` clears them.
public struct IPPrefix: Hashable, Sendable, Codable, CustomStringConvertible {
    public let address: IPAddress
    public let length: Int

    public init?(address: IPAddress, length: Int) {
        guard length >= 0, length <= address.bitWidth else { return nil }
        self.address = address
        self.length = length
    }

    /// `a.b.c.d/n`; a bare address means a host prefix (/32 or /128).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let a = IPAddress(String(parts[0])) else { return nil }
        if parts.count == 2 {
            guard let n = Int(parts[1]), String(n) == parts[1] else { return nil }
            self.init(address: a, length: n)
        } else {
            self.init(address: a, length: a.bitWidth)
        }
    }

    public static func host(_ a: IPAddress) -> IPPrefix { IPPrefix(address: a, length: a.bitWidth)! }

    public var network: IPPrefix { IPPrefix(address: address.masked(to: length), length: length)! }
    public func contains(_ a: IPAddress) -> Bool {
        a.isIPv4 == address.isIPv4 && a.masked(to: length) == address.masked(to: length)
    }
    public var description: String { "\(address)/\(length)" }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let p = IPPrefix(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a prefix: \(text)"))
        }
        self = p
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// A 48-bit Ethernet address.
public struct MACAddress: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let rawValue: UInt64  // low 48 bits

    public init?(rawValue: UInt64) {
        guard rawValue >> 48 == 0 else { return nil }
        self.rawValue = rawValue
    }

    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 6 else { return nil }
        rawValue = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// `aa:bb:cc:dd:ee:ff` (also accepts `-` separators, either case).
    public init?(_ text: String) {
        let parts = text.split(whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6, text.count == 17 else { return nil }
        var v: UInt64 = 0
        for p in parts {
            // UInt8(_:radix:) would accept "+1"; only two hex digits make an octet.
            guard p.count == 2, p.allSatisfy(\.isHexDigit), let b = UInt8(p, radix: 16) else { return nil }
            v = v << 8 | UInt64(b)
        }
        rawValue = v
    }

    public var bytes: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: rawValue >> (40 - 8 * $0)) } }
    public var isMulticast: Bool { bytes[0] & 1 == 1 }
    public var isLocallyAdministered: Bool { bytes[0] & 2 == 2 }
    public static let zero = MACAddress(rawValue: 0)!

    public var description: String {
        bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }
    public static func < (a: MACAddress, b: MACAddress) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let m = MACAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a MAC address: \(text)"))
        }
        self = m
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

extension IPPrefix {
    /// This IPv6 prefix (a /96 or shorter) with the host part of `v4` within `v4Subnet` in its low
    /// 32 bits: 10.0.1.5 in 10.0.1.0/24 under fd00:1::/64 is fd00:1::5. How a dual-stack overlay
    /// gives each task an IPv6 address that is unique exactly when its IPv4 one is.
    public func embedding(hostOf v4: IPAddress, in v4Subnet: IPPrefix) -> IPAddress? {
        guard !address.isIPv4, length <= 96, v4.isIPv4, v4Subnet.address.isIPv4, v4Subnet.contains(v4) else { return nil }
        let hostBits = 32 - v4Subnet.length
        let value = v4.bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let host = hostBits == 0 ? 0 : value & (UInt32.max >> UInt32(32 - hostBits))
        let bytes = Array(network.address.bytes.prefix(12)) + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: host >> UInt32($0)) }
        return IPAddress(bytes: bytes)
    }
}
