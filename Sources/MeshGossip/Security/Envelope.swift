/// The outer layer of every UDP packet and TCP frame:
/// `['M'][version 1][flags][label length u8][label]` then either the payload or, when bit 0 of
/// flags is set, `nonce ‖ AES-GCM ciphertext ‖ tag` with the whole header as authenticated data.
/// The label keeps two clusters apart even if they share a key; the header binding stops a
/// packet from one cluster being replayed into another with its label rewritten.
public struct Envelope: Sendable {
    public var label: String
    public var keyring: Keyring?

    public static let magic: UInt8 = 0x4D
    public static let version: UInt8 = 1
    /// nonce + tag
    public static let cryptoOverhead = 28

    public init(label: String = "", keyring: Keyring? = nil) {
        self.label = String(decoding: Array(label.utf8.prefix(255)), as: UTF8.self)
        self.keyring = keyring
    }

    public enum Rejection: Error, Equatable, Sendable {
        case malformed, wrongLabel, plaintextNotAllowed, encryptedButNoKeys, undecryptable
    }

    /// Header + crypto overhead added to a payload.
    public var overhead: Int { 4 + label.utf8.count + (keyring == nil ? 0 : Self.cryptoOverhead) }

    private func header(encrypted: Bool) -> [UInt8] {
        [Self.magic, Self.version, encrypted ? 1 : 0, UInt8(label.utf8.count)] + Array(label.utf8)
    }

    public func seal(_ payload: [UInt8]) -> [UInt8] {
        guard let keyring else { return header(encrypted: false) + payload }
        let h = header(encrypted: true)
        return h + keyring.seal(payload, authenticating: h)
    }

    public func open(_ packet: [UInt8]) -> Result<[UInt8], Rejection> {
        guard packet.count >= 4, packet[0] == Self.magic, packet[1] == Self.version, packet[2] <= 1 else { return .failure(.malformed) }
        let labelLength = Int(packet[3])
        guard packet.count >= 4 + labelLength else { return .failure(.malformed) }
        guard packet[4..<4 + labelLength].elementsEqual(label.utf8) else { return .failure(.wrongLabel) }
        let body = packet[(4 + labelLength)...]
        if packet[2] == 0 {
            // Once a keyring is set we accept only sealed traffic: plaintext would bypass the key.
            guard keyring == nil else { return .failure(.plaintextNotAllowed) }
            return .success(Array(body))
        }
        guard let keyring else { return .failure(.encryptedButNoKeys) }
        guard let plain = keyring.open(body, authenticating: Array(packet[..<(4 + labelLength)])) else { return .failure(.undecryptable) }
        return .success(plain)
    }
}
