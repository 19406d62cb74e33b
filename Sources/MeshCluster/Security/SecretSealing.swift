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
        self.init(keyBytes: derived.withUnsafeBytes { Array($0) })
    }

    private init(keyBytes: [UInt8]) { self.keyBytes = keyBytes }

    /// The key the settings keep once a root rotation began (the CA key it was derived from goes), or
    /// the one derived from `ca` before any.
    init(settings: ClusterSettings, ca: ClusterCA) throws(ClusterError) {
        guard let text = settings.secretsKey else {
            self.init(ca: ca)
            return
        }
        guard let bytes = Data(base64Encoded: text), bytes.count == 32 else {
            throw .invalidArgument("the stored secrets key is not 32 bytes of base64")
        }
        self.init(keyBytes: Array(bytes))
    }

    /// The key as the settings keep it (base64).
    var keyText: String { Data(keyBytes).base64EncodedString() }

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
