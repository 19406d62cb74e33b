import Crypto
import Foundation

/// Secret data at rest: sealed (AES-256-GCM) under a key derived from the cluster CA's private key,
/// so the store holds no secret in the open, every manager that can run the swarm can read them,
/// and an autolocked swarm's secrets are exactly as locked as its CA key (sealed by the unlock key).
/// Configs are not secret and stay as sent. Sealed data carries a prefix; data without it is a
/// secret stored before sealing, read as it is.
struct SecretSealing: Sendable {
    static let prefix = Data("meshd-sealed-1:".utf8)
    /// The derived key's bytes (`SymmetricKey` is not Sendable; a manager value is).
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    init(ca: ClusterCA) {
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(ca.keyPEM.utf8)), salt: Data("meshd secrets".utf8),
            info: Data("secret data".utf8), outputByteCount: 32)
        keyBytes = derived.withUnsafeBytes { Array($0) }
    }

    func seal(_ plain: Data) -> Data {
        // AES-GCM with a fresh random nonce cannot fail for a valid key.
        Self.prefix + (try! AES.GCM.seal(plain, using: key)).combined!
    }

    func open(_ stored: Data) throws(ClusterError) -> Data {
        guard stored.starts(with: Self.prefix) else { return stored }
        guard let box = try? AES.GCM.SealedBox(combined: stored.dropFirst(Self.prefix.count)),
            let plain = try? AES.GCM.open(box, using: key)
        else { throw .storage("a stored secret cannot be opened with this cluster's key (altered, or another cluster's)") }
        return plain
    }
}
