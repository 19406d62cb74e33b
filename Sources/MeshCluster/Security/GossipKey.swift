import Foundation

/// A 32-byte key for the gossip layer's encryption (AES-256-GCM), which the manager generates and hands to
/// nodes over the mutual-TLS 2377 channel.
public struct GossipKey: Codable, Sendable, Equatable {
    public static let byteCount = 32
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(ClusterError) {
        guard bytes.count == Self.byteCount else { throw .invalidArgument("a gossip key is \(Self.byteCount) bytes, got \(bytes.count)") }
        self.bytes = bytes
    }

    public static func generate() -> GossipKey {
        var g = SystemRandomNumberGenerator()
        return generate(using: &g)
    }

    public static func generate<G: RandomNumberGenerator>(using g: inout G) -> GossipKey {
        // Exactly 32 bytes: cannot fail.
        try! GossipKey(bytes: (0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &g) })
    }

    public var base64: String { Data(bytes).base64EncodedString() }
}
