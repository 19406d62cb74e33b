/// Where a node listens for gossip: an IPv4 or IPv6 address and a port (UDP and TCP share it).
public struct PeerAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// 4 or 16 bytes, network order.
    public var ip: [UInt8]
    public var port: UInt16

    public init?(ip: [UInt8], port: UInt16) {
        guard ip.count == 4 || ip.count == 16 else { return nil }
        self.ip = ip
        self.port = port
    }

    /// A dotted-quad IPv4 address with a port, e.g. `10.0.0.1`.
    public init?(_ text: String, port: UInt16) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var ip: [UInt8] = []
        for p in parts {
            guard let b = UInt8(p) else { return nil }
            ip.append(b)
        }
        self.ip = ip
        self.port = port
    }

    /// `host:port` for IPv4 (what the command line takes for seeds).
    public init?(hostPort: String) {
        guard let colon = hostPort.lastIndex(of: ":"), let port = UInt16(hostPort[hostPort.index(after: colon)...]) else { return nil }
        self.init(String(hostPort[..<colon]), port: port)
    }

    /// For the simulator: node `i` gets 10.x.y.z.
    public static func simulated(_ i: Int, port: UInt16 = 7946) -> PeerAddress {
        PeerAddress(ip: [10, UInt8((i >> 16) & 0xff), UInt8((i >> 8) & 0xff), UInt8(i & 0xff)], port: port)!
    }

    public var host: String {
        if ip.count == 4 { return ip.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(ip[$0]) << 8 | UInt16(ip[$0 + 1]), radix: 16) }.joined(separator: ":")
    }

    public var description: String { ip.count == 4 ? "\(host):\(port)" : "[\(host)]:\(port)" }

    public static func < (a: PeerAddress, b: PeerAddress) -> Bool {
        a.ip.lexicographicallyPrecedes(b.ip) || (a.ip == b.ip && a.port < b.port)
    }
}

extension ByteWriter {
    mutating func address(_ a: PeerAddress) {
        u8(UInt8(a.ip.count))
        raw(a.ip)
        u16(a.port)
    }
}

extension ByteReader {
    mutating func address() throws(WireError) -> PeerAddress {
        let n = Int(try u8())
        guard n == 4 || n == 16 else { throw .invalid("address length \(n)") }
        let ip = try take(n)
        return PeerAddress(ip: ip, port: try u16())!
    }
}
