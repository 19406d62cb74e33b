import Testing
@testable import MeshGossip

let addrA = PeerAddress("10.0.0.1", port: 7946)!
let addrB = PeerAddress(ip: Array(repeating: 0xfe, count: 16), port: 1)!

/// One of every message, for round trips and as fuzz seeds.
let sampleMessages: [Message] = [
    .ping(seq: 7, target: "b", source: "a", sourceAddress: addrA),
    .indirectPing(seq: 0xFFFF_FFFF, target: "c", targetAddress: addrB, source: "a", sourceAddress: addrA, wantNack: true),
    .ack(seq: 1), .nack(seq: 2),
    .alive(AliveMessage(incarnation: 3, node: "nodé", address: addrA)),
    .suspect(AccusationMessage(incarnation: 4, node: "x", from: "y")),
    .dead(AccusationMessage(incarnation: 5, node: "x", from: "x")),
    .network(NetworkEvent(ltime: 9, node: "a", network: "net1", joined: true)),
    .table(TableEvent(ltime: 10, deleted: false, owner: "a", network: "net1", table: "endpoints", key: "k", value: [1, 2, 3])),
    .table(TableEvent(ltime: 11, deleted: true, owner: "a", network: "net1", table: "endpoints", key: "k", value: [])),
    .pushPull(
        PushPull(
            isReply: true, isJoin: false, sender: "a", ltime: 12, senderNetworks: ["net1", "net2"],
            members: [
                MemberRecord(node: "a", address: addrA, incarnation: 1, state: .alive),
                MemberRecord(node: "b", address: addrB, incarnation: 2, state: .left),
            ],
            networkEvents: [NetworkEvent(ltime: 1, node: "b", network: "net2", joined: false)],
            entries: [
                TableEvent(
                    ltime: 2, deleted: false, owner: "b", network: "net1", table: "t", key: "k2", value: Array(repeating: 7, count: 300))
            ])),
]

struct CodecTests {
    @Test func everyMessageRoundTrips() throws {
        for m in sampleMessages {
            let bytes = MessageCodec.encode(m)
            #expect(try MessageCodec.decode(bytes) == m)
        }
    }

    @Test func compoundRoundTripsAndRejectsDamage() throws {
        let parts = sampleMessages.map(MessageCodec.encode)
        let packet = Compound.encode(parts)
        #expect(try Compound.decode(packet) == sampleMessages)
        #expect(throws: WireError.self) { try Compound.decode(Array(packet.dropLast())) }
        #expect(throws: WireError.self) { try Compound.decode(packet + [0]) }
        #expect(throws: WireError.self) { try Compound.decode([]) }
    }

    @Test func truncationAnywhereIsAnError() {
        for m in sampleMessages {
            let bytes = MessageCodec.encode(m)
            for cut in 0..<bytes.count {
                #expect(throws: WireError.self) { try MessageCodec.decode(Array(bytes[..<cut])) }
            }
        }
    }

    @Test func hostileCountsAreRejectedBeforeAllocating() {
        // A push/pull claiming 2^31 members in a 40-byte body.
        var w = ByteWriter()
        w.u8(Message.Kind.pushPull.rawValue)
        w.u8(0)
        w.string("a")
        w.u64(0)
        w.u32(0)
        w.u32(0x8000_0000)
        #expect(throws: WireError.tooLarge(field: "members", size: 0x8000_0000, limit: WireLimits().maxItems)) {
            try MessageCodec.decode(w.bytes)
        }
        var w2 = ByteWriter()
        w2.u8(Message.Kind.pushPull.rawValue)
        w2.u8(0)
        w2.string("a")
        w2.u64(0)
        w2.u32(0)
        w2.u32(1000)
        #expect(throws: WireError.truncated) { try MessageCodec.decode(w2.bytes) }
        // A value longer than the limit.
        var limits = WireLimits()
        limits.maxValue = 10
        let big = MessageCodec.encode(
            .table(
                TableEvent(ltime: 1, deleted: false, owner: "a", network: "n", table: "t", key: "k", value: Array(repeating: 0, count: 11)))
        )
        #expect(throws: WireError.tooLarge(field: "value", size: 11, limit: 10)) { try MessageCodec.decode(big, limits: limits) }
    }

    @Test func addressesParse() {
        #expect(PeerAddress(hostPort: "192.168.1.2:7946")?.description == "192.168.1.2:7946")
        #expect(PeerAddress(hostPort: "300.1.1.1:1") == nil)
        #expect(PeerAddress(hostPort: "1.1.1.1") == nil)
        #expect(PeerAddress(ip: [1, 2, 3], port: 1) == nil)
    }
}
