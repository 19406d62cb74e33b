import Crypto
import MeshDataplane
import MeshKernel

/// The ESP keys of a node pair, derived on each node from the cluster's gossip keys, which the
/// manager already generates, hands out over 2377, stores 0600 and rotates make-before-break
/// (`GossipKeyRotation`): install [old, new], use [new, old], remove [new], each step acknowledged
/// by every node before the next. Deriving the pair keys from that set in that order makes the
/// ESP rotation follow the same steps with the same acknowledgements (a node answers
/// `gossipKeysApplied` only after its dataplane holds the pair keys of the new set).
///
/// HKDF-SHA256 with a label of its own keeps the ESP keys apart from the gossip key they come
/// from; the direction and both node ids go into `info`, so every direction of every pair and
/// every generation has its own key, salt and SPI. Like Docker's (whose ESP keys are
/// cluster-wide), any member can compute any pair's keys: a removed node is locked out by the
/// rotation its removal triggers.
public enum ESPKeyDerivation {
    static let salt = Array("meshd esp pair keys v1".utf8)

    /// The SA `from` seals and `to` opens, for one gossip key.
    public static func sa(secret: [UInt8], from: String, to: String) -> SAKey {
        let okm = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: secret), salt: salt, info: Array("\(from) > \(to)".utf8), outputByteCount: 24)
        let b = okm.withUnsafeBytes { Array($0) }
        let raw = UInt32(b[20]) << 24 | UInt32(b[21]) << 16 | UInt32(b[22]) << 8 | UInt32(b[23])
        // 1–255 are reserved and 0 is "none" (RFC 4303).
        let spi = 0x100 + raw % (UInt32.max - 0x100)
        return SAKey(spi: spi, key: Array(b[0..<16]), salt: Array(b[16..<20]))
    }

    /// A stable name for a gossip key's generation (its first 8 hashed bytes), not the key.
    static func generation(_ secret: [UInt8]) -> UInt64 {
        SHA256.hash(data: secret).withUnsafeBytes { p in p.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
    }

    /// This node's keys for `peer`, one generation per gossip key, primary (sealing) first.
    public static func peerKeys(local: String, peer: String, address: IPAddress, secrets: [[UInt8]]) -> PeerKeys {
        PeerKeys(
            nodeID: peer, nodeAddress: address,
            keys: secrets.map {
                PairKey(
                    generation: generation($0), outbound: sa(secret: $0, from: local, to: peer),
                    inbound: sa(secret: $0, from: peer, to: local))
            })
    }
}
