import Foundation
import Testing

@testable import MeshGossip

/// An attacker on the gossip port (real agents and real sockets on 127.0.0.1): traffic in plaintext or sealed
/// under another key is dropped, counted by cause, and never reaches membership. The same message sealed under
/// the cluster's key is accepted, so the test can tell a dropped packet from one that merely went nowhere.
@Suite struct GossipAttackerTests {
    static let label = "attack"

    /// An `alive` announcement of a member nobody has, as one UDP gossip packet in `envelope`.
    static func ghostPacket(_ name: String, port: UInt16, envelope: Envelope) -> [UInt8] {
        let alive = Message.alive(AliveMessage(incarnation: 1, node: name, address: PeerAddress("127.0.0.1", port: port)!))
        return envelope.seal(Compound.encode([MessageCodec.encode(alive)]))
    }

    /// One datagram from a socket of the test's own, as an attacker would send it.
    static func sendUDP(_ bytes: [UInt8], to port: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let sent = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard sent == bytes.count else { throw POSIXError(.EIO) }
    }

    static func eventually(_ seconds: Double = 10, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return await condition()
    }

    /// Four agents on consecutive ports below Linux's ephemeral range (32768+), where outgoing connections of
    /// whatever else runs on the machine cannot be sitting; a port that is taken anyway means another base.
    static func startAgents(_ envelopes: [(String, Envelope)]) async throws -> (base: UInt16, agents: [GossipAgent]) {
        var lastError: (any Error)?
        for _ in 0..<8 {
            let base = UInt16.random(in: 20_000...32_000)
            var started: [GossipAgent] = []
            do {
                for (offset, (name, envelope)) in envelopes.enumerated() {
                    let a = try GossipAgent(
                        name: name, transport: TransportConfig(bindHost: "127.0.0.1", port: base + UInt16(offset)), envelope: envelope,
                        incarnation: 1, seed: UInt64(offset) + 1)
                    try await a.start()
                    started.append(a)
                }
                return (base, started)
            } catch {
                // The UDP bind reports NIO's error as it is, the TCP bind wraps it in TransportError.bind.
                lastError = error
                for a in started { await a.shutdown() }
            }
        }
        throw lastError ?? TransportError.notStarted
    }

    @Test func plaintextAndWrongKeyGossipIsDroppedAndCounted() async throws {
        let sealed = Envelope(label: Self.label, keyring: try Keyring(keys: [key1]))
        let plaintext = Envelope(label: Self.label)
        let wrongKey = Envelope(label: Self.label, keyring: try Keyring(keys: [key2]))
        let (base, all) = try await Self.startAgents([
            ("victim", sealed), ("honest", sealed), ("no-key", plaintext), ("other-key", wrongKey),
        ])
        let victim = all[0], honest = all[1], noKey = all[2], otherKey = all[3]
        var started = all
        defer {
            let agents = started
            Task { for a in agents { await a.shutdown() } }
        }
        func names(_ a: GossipAgent) async -> Set<String> { Set(await a.members.map(\.name)) }
        let seed = PeerAddress("127.0.0.1", port: base)!

        // The honest node gets in: the port works and the key is right.
        await honest.join(seeds: [seed])
        #expect(await Self.eventually { await names(victim).contains("honest") }, "the honest node never joined")
        let clean = await victim.dropped
        #expect(clean == GossipDrops(), "drops before any attack: \(clean)")

        // Real agents without the key, or with another, try to join (push/pull over TCP).
        await noKey.join(seeds: [seed])
        await otherKey.join(seeds: [seed])
        let joinsDropped = await Self.eventually {
            let d = await victim.dropped
            return d.plaintext >= 1 && d.undecryptable >= 1
        }
        let afterJoins = await victim.dropped
        #expect(joinsDropped, "joins without the key not counted: \(afterJoins)")

        // Forged announcements over UDP: plaintext, then sealed under another key.
        let before = await victim.dropped
        for i in 0..<3 { try Self.sendUDP(Self.ghostPacket("ghost-plain-\(i)", port: base + 10, envelope: plaintext), to: base) }
        for i in 0..<3 { try Self.sendUDP(Self.ghostPacket("ghost-key-\(i)", port: base + 11, envelope: wrongKey), to: base) }
        let udpDropped = await Self.eventually {
            let d = await victim.dropped
            return d.plaintext >= before.plaintext + 3 && d.undecryptable >= before.undecryptable + 3
        }
        let afterUDP = await victim.dropped
        #expect(udpDropped, "UDP attack not counted: before \(before), now \(afterUDP)")

        // The control: the same forgery sealed under the cluster key is taken in, over the same socket.
        try Self.sendUDP(Self.ghostPacket("ghost-sealed", port: base + 12, envelope: sealed), to: base)
        #expect(await Self.eventually { await names(victim).contains("ghost-sealed") }, "a well-sealed packet was not accepted")

        // Nothing the attackers sent reached membership, on the victim or through it on the honest node.
        let intruders = Set(["no-key", "other-key"] + (0..<3).flatMap { ["ghost-plain-\($0)", "ghost-key-\($0)"] })
        let seenByVictim = await names(victim), seenByHonest = await names(honest)
        #expect(seenByVictim.isDisjoint(with: intruders), "\(seenByVictim)")
        #expect(seenByHonest.isDisjoint(with: intruders), "\(seenByHonest)")
        // And the attackers learnt nothing back: every answer they could read would have had to be in their envelope.
        let seenByNoKey = await names(noKey), seenByOtherKey = await names(otherKey)
        #expect(!seenByNoKey.contains("victim") && !seenByOtherKey.contains("victim"), "\(seenByNoKey) \(seenByOtherKey)")
        let final = await victim.dropped
        #expect(final.wrongLabel == 0 && final.malformed == 0, "\(final)")
        print("gossip attack: victim dropped \(final)")
        for a in started { await a.shutdown() }
        started = []
    }
}
