import Testing
@testable import MeshDNS
import MeshKernel

/// Seeded fuzzing of the decoder and of the whole query path: random bytes, and mutations of valid
/// queries and responses (bit flips, byte overwrites, cuts, insertions, pointer splices). Nothing
/// may crash; whatever decodes must re-encode to something that decodes to the same message; the
/// processor must drop or answer with a decodable reply.
@Suite("decoder fuzz")
struct DecoderFuzzTests {
    static let inputs = 300_000

    static func seeds() -> [[UInt8]] {
        var out: [[UInt8]] = []
        var q = DNSMessage(
            header: DNSHeader(id: 1, recursionDesired: true), questions: [DNSQuestion(name: DNSName("web.front")!, type: .a)])
        out.append(q.encode())
        q.edns = DNSEDNS(payloadSize: 1232, options: [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])
        out.append(q.encode())
        var r = DNSMessage(header: DNSHeader(id: 2, isResponse: true), questions: [DNSQuestion(name: DNSName("_h._tcp.web")!, type: .srv)])
        r.answers = [
            DNSResourceRecord(
                name: DNSName("_h._tcp.web")!, type: .srv, ttl: 5, data: .srv(priority: 1, weight: 2, port: 80, target: DNSName("web")!)),
            DNSResourceRecord(name: DNSName("x.web")!, type: .ptr, ttl: 5, data: .ptr(DNSName("y.web")!)),
            DNSResourceRecord(name: DNSName("web")!, type: .cname, ttl: 5, data: .cname(DNSName("z._tcp.web")!)),
        ]
        r.additional = [DNSResourceRecord(name: DNSName("web")!, type: .aaaa, ttl: 5, data: .aaaa(IPAddress("fd00::1")!))]
        r.edns = DNSEDNS(payloadSize: 512)
        out.append(r.encode())
        return out
    }

    @Test func decoderAndProcessorSurviveSeededInputs() {
        var rng = SplitMix64(seed: 0x6D65_7368_646E_73)
        let seeds = Self.seeds()
        let store = DNSRecordStore()
        store.upsert(DNSNetwork(id: "n1", name: "front"))
        store.upsert(
            DNSService(id: "s", name: "web", vips: ["n1": [IPAddress("10.1.0.2")!]], ports: [DNSServicePort(name: "h", target: 80)]))
        let processor = DNSQueryProcessor()
        var decoded = 0, replies = 0, roundTripFailures = 0, badReplies = 0
        for n in 0..<Self.inputs {
            let input: [UInt8]
            if n % 4 == 0 {
                let len = Int(rng.next() % 600)
                input = (0..<len).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                input = Self.mutate(seeds[Int(rng.next() % UInt64(seeds.count))], &rng)
            }
            if let m = try? DNSMessage(decoding: input) {
                decoded += 1
                if (try? DNSMessage(decoding: m.encode())) != m { roundTripFailures += 1 }
            }
            switch processor.process(input, transport: n % 2 == 0 ? .udp : .tcp, store: store, networks: ["n1"], using: &rng) {
            case .reply(let b):
                replies += 1
                if (try? DNSMessage(decoding: b)) == nil { badReplies += 1 }
            case .drop, .forward: break
            }
        }
        #expect(roundTripFailures == 0)
        #expect(badReplies == 0)
        // The mutations must reach past the header check, or the run proves little.
        #expect(decoded > Self.inputs / 20, "only \(decoded) of \(Self.inputs) inputs decoded")
        #expect(replies > Self.inputs / 4)
        print("fuzz: \(Self.inputs) inputs, \(decoded) decoded, \(replies) answered")
    }

    /// Encoder property: messages whose names repeat labels and suffixes in every way (the
    /// compression edge cases) decode back to themselves, and compression never grows a message.
    @Test func randomMessagesWithRepetitiveNamesRoundTrip() throws {
        var rng = SplitMix64(seed: 7)
        let alphabet = ["a", "B", "1", "_x", "in-addr", "arpa", "web"]
        func name() -> DNSName {
            let depth = Int(rng.next() % 6)
            return DNSName((0..<depth).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }.joined(separator: ".")) ?? .root
        }
        for _ in 0..<50_000 {
            var m = DNSMessage(
                header: DNSHeader(id: UInt16(truncatingIfNeeded: rng.next()), isResponse: true),
                questions: [DNSQuestion(name: name(), type: .a)])
            for _ in 0..<Int(rng.next() % 6) {
                let data: DNSRData
                switch rng.next() % 4 {
                case 0: data = .ptr(name())
                case 1: data = .cname(name())
                case 2: data = .srv(priority: 1, weight: 2, port: 3, target: name())
                default: data = .a(.v4(UInt32(truncatingIfNeeded: rng.next())))
                }
                let type: DNSType =
                    switch data {
                    case .ptr: .ptr
                    case .cname: .cname
                    case .srv: .srv
                    default: .a
                    }
                m.answers.append(DNSResourceRecord(name: name(), type: type, ttl: 5, data: data))
            }
            let bytes = m.encode()
            let back = try DNSMessage(decoding: bytes)
            #expect(back.questions == m.questions && back.answers == m.answers)
            // Spelling is kept exactly where a name was written in full.
            #expect(back.questions[0].name.wire == m.questions[0].name.wire)
            let uncompressedSize =
                12 + m.questions.map { $0.name.wire.count + 4 }.reduce(0, +)
                + m.answers.map { rr -> Int in
                    let rdata: Int =
                        switch rr.data {
                        case .ptr(let n), .cname(let n): n.wire.count
                        case .srv(_, _, _, let t): 6 + t.wire.count
                        default: 4
                        }
                    return rr.name.wire.count + 10 + rdata
                }.reduce(0, +)
            #expect(bytes.count <= uncompressedSize)
        }
    }

    static func mutate(_ seed: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = seed
        for _ in 0..<(1 + Int(rng.next() % 4)) {
            guard !b.isEmpty else { break }
            let i = Int(rng.next() % UInt64(b.count))
            switch rng.next() % 6 {
            case 0: b[i] ^= UInt8(1) << (rng.next() % 8)
            case 1: b[i] = UInt8(truncatingIfNeeded: rng.next())
            case 2: b.removeSubrange(i...)
            case 3: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
            case 4:
                if i + 1 < b.count {
                    b[i] = 0xC0 | UInt8(rng.next() % 4)
                    b[i + 1] = UInt8(truncatingIfNeeded: rng.next())
                }
            default: if i < 12 { b[i] = [0, 1, 0xFF][Int(rng.next() % 3)] }  // counts and flags
            }
        }
        return b
    }
}
