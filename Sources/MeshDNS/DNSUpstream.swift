import MeshKernel
import NIOCore

/// One upstream server.
public struct DNSUpstream: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public init(address: IPAddress, port: UInt16 = 53) {
        self.address = address
        self.port = port
    }

    /// Up to three upstreams from resolv.conf text, skipping unparseable lines.
    public static func from(_ conf: ResolvConf.Contents) -> [DNSUpstream] {
        conf.nameservers.compactMap { IPAddress($0).map { DNSUpstream(address: $0) } }
    }

    var socketAddress: SocketAddress {
        get throws { try SocketAddress(ipAddress: address.description, port: Int(port)) }
    }

    public var description: String { address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)" }
}
