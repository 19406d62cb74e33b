import Crypto

public enum KeyringError: Error, Equatable, Sendable {
    case badKeyLength(Int)
    case unknownKey
    case removingPrimary
    case empty
}

/// AES-GCM keys shared by the cluster. Packets are sealed with the primary key; opening tries every
/// key, so rotation is install everywhere → make primary everywhere → remove the old one, and no
/// packet is lost at any step.
public struct Keyring: Sendable {
    public private(set) var keys: [[UInt8]]

    /// `keys[0]` is the primary. Each key is 16, 24 or 32 bytes (AES-128/192/256).
    public init(keys: [[UInt8]]) throws(KeyringError) {
        guard !keys.isEmpty else { throw .empty }
        for k in keys where ![16, 24, 32].contains(k.count) { throw .badKeyLength(k.count) }
        self.keys = keys
    }

    public var primary: [UInt8] { keys[0] }

    /// Adds a key for decryption (no-op if present).
    public mutating func install(_ key: [UInt8]) throws(KeyringError) {
        guard [16, 24, 32].contains(key.count) else { throw .badKeyLength(key.count) }
        guard !keys.contains(key) else { return }
        keys.append(key)
    }

    /// Makes an installed key the one packets are sealed with.
    public mutating func use(_ key: [UInt8]) throws(KeyringError) {
        guard let i = keys.firstIndex(of: key) else { throw .unknownKey }
        keys.swapAt(0, i)
    }

    public mutating func remove(_ key: [UInt8]) throws(KeyringError) {
        guard let i = keys.firstIndex(of: key) else { throw .unknownKey }
        guard i != 0 else { throw .removingPrimary }
        keys.remove(at: i)
    }

    func seal(_ plaintext: [UInt8], authenticating aad: [UInt8]) -> [UInt8] {
        // A random 96-bit nonce per packet; with the 12-hourly rotation Swarm uses the birthday bound is far away.
        let box = try! AES.GCM.seal(plaintext, using: SymmetricKey(data: keys[0]), nonce: AES.GCM.Nonce(), authenticating: aad)
        return Array(box.nonce) + Array(box.ciphertext) + Array(box.tag)
    }

    func open(_ sealed: ArraySlice<UInt8>, authenticating aad: [UInt8]) -> [UInt8]? {
        guard sealed.count >= 28, let box = try? AES.GCM.SealedBox(combined: sealed) else { return nil }
        for key in keys.map({ SymmetricKey(data: $0) }) {
            if let plain = try? AES.GCM.open(box, using: key, authenticating: aad) { return Array(plain) }
        }
        return nil
    }
}
