import Testing
@testable import MeshGossip

/// Seeded fuzzing of every decoder: random bytes, and valid encodings with random mutations
/// (bit flips, truncation, splices, hostile lengths). Nothing may trap; errors are fine.
struct FuzzTests {
    static let seeds: [[UInt8]] = sampleMessages.map(MessageCodec.encode)

    static func mutate(_ input: [UInt8], _ r: inout SeededRandom) -> [UInt8] {
        var b = input
        switch r.next() % 6 {
        case 0:  // random bytes
            b = (0..<Int(r.next() % 64)).map { _ in UInt8(truncatingIfNeeded: r.next()) }
        case 1:  // bit flips
            for _ in 0..<(1 + Int(r.next() % 4)) where !b.isEmpty { b[Int(r.next() % UInt64(b.count))] ^= UInt8(1 << (r.next() % 8)) }
        case 2:  // truncate
            b = Array(b.prefix(Int(r.next() % UInt64(b.count + 1))))
        case 3:  // overwrite 4 bytes with a hostile length
            if b.count > 5 {
                let at = Int(r.next() % UInt64(b.count - 4))
                let v: [UInt8] = [[0xff, 0xff, 0xff, 0xff], [0x7f, 0xff, 0xff, 0xff], [0, 0, 0xff, 0xff], [0, 1, 0, 0]][Int(r.next() % 4)]
                b.replaceSubrange(at..<at + 4, with: v)
            }
        case 4:  // splice two seeds
            let other = seeds[Int(r.next() % UInt64(seeds.count))]
            b = Array(b.prefix(Int(r.next() % UInt64(b.count + 1)))) + Array(other.suffix(Int(r.next() % UInt64(other.count + 1))))
        default:  // insert random bytes
            let at = Int(r.next() % UInt64(b.count + 1))
            b.insert(contentsOf: (0..<(1 + Int(r.next() % 8))).map { _ in UInt8(truncatingIfNeeded: r.next()) }, at: at)
        }
        return b
    }

    @Test func messageDecoderSurvives200kInputs() {
        var r = SeededRandom(seed: 0xF00D)
        var decoded = 0
        for i in 0..<200_000 {
            let input = Self.mutate(Self.seeds[i % Self.seeds.count], &r)
            if (try? MessageCodec.decode(input)) != nil { decoded += 1 }
        }
        // Some mutations stay valid (a flipped seq bit), most do not: both paths ran.
        #expect(decoded > 0 && decoded < 200_000)
    }

    @Test func compoundDecoderSurvives100kInputs() {
        var r = SeededRandom(seed: 0xBEEF)
        let packet = Compound.encode(Array(Self.seeds.prefix(6)))
        var ok = 0
        for _ in 0..<100_000 {
            if (try? Compound.decode(Self.mutate(packet, &r))) != nil { ok += 1 }
        }
        #expect(ok < 100_000)
    }

    @Test func nodeSurvives50kHostilePacketsAndStreams() throws {
        var r = SeededRandom(seed: 0xCAFE)
        let plain = Envelope(label: "x")
        var node = GossipNode(name: "a", address: addrA, envelope: plain, seed: 9)
        _ = node.joinNetwork("net1", at: .zero)
        var sealedNode = GossipNode(name: "a", address: addrA, envelope: Envelope(label: "x", keyring: try Keyring(keys: [key1])), seed: 9)
        let packet = Compound.encode(Array(Self.seeds.prefix(4)))
        for i in 0..<25_000 {
            let t = Duration.milliseconds(i)
            let body = i % 2 == 0 ? Self.mutate(packet, &r) : Self.mutate(Self.seeds[i % Self.seeds.count], &r)
            _ = node.receivePacket(plain.seal(body), from: addrB, at: t)
            _ = node.receiveStream(plain.seal(body), from: addrB, at: t)
            _ = node.tick(at: t)
            let raw = Self.mutate(sealedNode.envelope.seal(body), &r)
            _ = sealedNode.receivePacket(raw, from: addrB, at: t)
        }
        #expect(node.stats.droppedMalformed > 0)
        #expect(sealedNode.stats.droppedUndecryptable + sealedNode.stats.droppedMalformed + sealedNode.stats.droppedWrongLabel > 0)
    }
}
