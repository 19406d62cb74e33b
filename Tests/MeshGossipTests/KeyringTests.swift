import Testing
@testable import MeshGossip

let key1 = [UInt8](repeating: 1, count: 16)
let key2 = [UInt8](repeating: 2, count: 32)
let key3 = [UInt8](repeating: 3, count: 24)

struct KeyringTests {
    @Test func sealedPacketsOpenWithAnyInstalledKey() throws {
        let sender = Envelope(label: "prod", keyring: try Keyring(keys: [key1]))
        let packet = sender.seal([9, 9, 9])
        #expect(!packet.suffix(3).elementsEqual([9, 9, 9]), "payload must not travel in clear")
        let receiver = Envelope(label: "prod", keyring: try Keyring(keys: [key2, key1]))
        #expect(try receiver.open(packet).get() == [9, 9, 9])
        #expect(packet.count == 3 + sender.overhead)
    }

    @Test func wrongKeyLabelAndPlaintextAreRejected() throws {
        let packet = Envelope(label: "prod", keyring: try Keyring(keys: [key1])).seal([1])
        #expect(Envelope(label: "prod", keyring: try Keyring(keys: [key2])).open(packet) == .failure(.undecryptable))
        #expect(Envelope(label: "staging", keyring: try Keyring(keys: [key1])).open(packet) == .failure(.wrongLabel))
        #expect(Envelope(label: "prod").open(packet) == .failure(.encryptedButNoKeys))
        let plain = Envelope(label: "prod").seal([1])
        #expect(Envelope(label: "prod", keyring: try Keyring(keys: [key1])).open(plain) == .failure(.plaintextNotAllowed))
        // The label is authenticated: rewriting it (same length) breaks the tag.
        var forged = packet
        forged[4] = UInt8(ascii: "q")
        #expect(Envelope(label: "qrod", keyring: try Keyring(keys: [key1])).open(forged) == .failure(.undecryptable))
    }

    @Test func rotationSteps() throws {
        var k = try Keyring(keys: [key1])
        #expect(throws: KeyringError.badKeyLength(5)) { try k.install([1, 2, 3, 4, 5]) }
        try k.install(key2)
        try k.use(key2)
        #expect(k.primary == key2)
        #expect(throws: KeyringError.removingPrimary) { try k.remove(key2) }
        try k.remove(key1)
        #expect(k.keys == [key2])
        #expect(throws: KeyringError.unknownKey) { try k.use(key3) }
        #expect(throws: KeyringError.empty) { try Keyring(keys: []) }
    }

    @Test func nodesCountDroppedPackets() throws {
        var a = GossipNode(name: "a", address: addrA, envelope: Envelope(label: "c1", keyring: try Keyring(keys: [key1])), seed: 1)
        let b = GossipNode(name: "b", address: addrB, envelope: Envelope(label: "c1", keyring: try Keyring(keys: [key2])), seed: 2)
        let c = GossipNode(name: "c", address: addrB, envelope: Envelope(label: "c2", keyring: try Keyring(keys: [key1])), seed: 3)
        let ping = Compound.encode([MessageCodec.encode(.ping(seq: 1, target: "a", source: "b", sourceAddress: addrB))])
        #expect(a.receivePacket(b.envelope.seal(ping), from: addrB, at: .zero).isEmpty)
        #expect(a.receivePacket(c.envelope.seal(ping), from: addrB, at: .zero).isEmpty)
        #expect(a.stats.droppedUndecryptable == 1 && a.stats.droppedWrongLabel == 1)
        // The same ping sealed with the right key and label is answered.
        let ok = a.receivePacket(a.envelope.seal(ping), from: addrB, at: .zero)
        #expect(ok.contains { if case .packet(to: addrB, _) = $0 { true } else { false } })
    }
}
