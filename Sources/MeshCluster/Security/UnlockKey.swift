import Crypto
import Foundation

/// The key of an autolocked swarm (`swarm init --autolock`): what seals the secrets a manager keeps
/// at rest (the CA's private key in the store, each manager's own private key in its data root), so
/// a copy of the data root or the store is useless without it, and a restarted manager does nothing
/// until `swarm unlock` gives it back. Never stored: the managers hold it in memory only.
///
/// Shown as Docker shows its key: `SWMKEY-1-` and the 32 bytes in unpadded base64.
public struct UnlockKey: Sendable, Equatable, CustomStringConvertible {
    public static let byteCount = 32
    static let prefix = "SWMKEY-1-"
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(ClusterError) {
        guard bytes.count == Self.byteCount else { throw .invalidArgument("an unlock key is \(Self.byteCount) bytes, got \(bytes.count)") }
        self.bytes = bytes
    }

    public static func generate() -> UnlockKey {
        var g = SystemRandomNumberGenerator()
        // Exactly 32 bytes: cannot fail.
        return try! UnlockKey(bytes: (0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &g) })
    }

    /// What `swarm unlock` sends (surrounding white space, as a pasted key has, is ignored).
    public init(parsing text: String) throws(ClusterError) {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard t.hasPrefix(Self.prefix) else { throw .invalidArgument("invalid key: it does not start with \(Self.prefix)") }
        var b64 = String(t.dropFirst(Self.prefix.count))
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64), data.count == Self.byteCount else {
            throw .invalidArgument("invalid key: not \(Self.byteCount) bytes of base64 after \(Self.prefix)")
        }
        self.bytes = Array(data)
    }

    public var description: String {
        var b64 = Data(bytes).base64EncodedString()
        while b64.hasSuffix("=") { b64.removeLast() }
        return Self.prefix + b64
    }

    /// The AES-256-GCM key for `purpose`: one derived key per use, so a sealed CA key cannot be
    /// passed off as a sealed node key.
    private func sealingKey(_ purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: bytes), salt: Data("meshd autolock".utf8), info: Data(purpose.utf8), outputByteCount: 32)
    }

    /// `plain` sealed (nonce, ciphertext and tag, base64).
    public func seal(_ plain: String, purpose: String) -> String {
        // AES-GCM with a fresh random nonce cannot fail for a valid key.
        let box = try! AES.GCM.seal(Data(plain.utf8), using: sealingKey(purpose))
        return box.combined!.base64EncodedString()
    }

    /// What `seal` sealed; `.invalidArgument` when this is not the key it was sealed with (or the
    /// text was altered), in swarmkit's words.
    public func open(_ sealed: String, purpose: String) throws(ClusterError) -> String {
        guard let data = Data(base64Encoded: sealed), let box = try? AES.GCM.SealedBox(combined: data),
            let plain = try? AES.GCM.open(box, using: sealingKey(purpose)), let text = String(data: plain, encoding: .utf8)
        else { throw .invalidArgument(Self.invalidKey) }
        return text
    }

    public static let invalidKey = "swarm could not be unlocked: invalid key provided"
}
