import MeshValues

/// An IPv4 prefix as integers, for allocation arithmetic (IPv6 overlays are not allocated).
public struct IPv4Block: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// First address (the network address).
    public let start: UInt32
    public let length: Int

    public init?(_ prefix: IPPrefix) {
        guard case .v4(let a) = prefix.address, (0...32).contains(prefix.length) else { return nil }
        length = prefix.length
        start = length == 0 ? 0 : a & ~UInt32(truncatingIfNeeded: (UInt64(1) << (32 - length)) - 1)
    }

    init(start: UInt32, length: Int) {
        self.start = start
        self.length = length
    }

    public var size: UInt64 { UInt64(1) << (32 - length) }
    /// Last address (the broadcast address).
    public var end: UInt32 { UInt32(UInt64(start) + size - 1) }
    public func contains(_ a: UInt32) -> Bool { a >= start && a <= end }
    public func overlaps(_ other: IPv4Block) -> Bool { start <= other.end && other.start <= end }
    public var prefix: IPPrefix { IPPrefix(address: .v4(start), length: length)! }
    public var description: String { prefix.description }
    public static func < (a: IPv4Block, b: IPv4Block) -> Bool { (a.start, a.length) < (b.start, b.length) }

    public func address(_ a: UInt32) -> IPPrefix { IPPrefix(address: .v4(a), length: length)! }
}

extension IPAddress {
    var v4Value: UInt32? { if case .v4(let v) = self { v } else { nil } }
}
