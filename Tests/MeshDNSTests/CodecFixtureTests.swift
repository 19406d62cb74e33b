import Testing
@testable import MeshDNS
import MeshKernel

/// Byte fixtures written out by hand from RFC 1035 4.1 / RFC 6891 6.1.
@Suite("wire codec fixtures")
struct CodecFixtureTests {
    // www.example.com A IN, ID 0x1234, RD.
    static let query: [UInt8] = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
        3, 0x77, 0x77, 0x77, 7, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 3, 0x63, 0x6f, 0x6d, 0,
        0, 1, 0, 1,
    ]

    @Test func decodesAQuery() throws {
        let m = try DNSMessage(decoding: Self.query)
        #expect(m.header.id == 0x1234)
        #expect(m.header.recursionDesired && !m.header.isResponse)
        #expect(m.questions == [DNSQuestion(name: DNSName("www.example.com")!, type: .a)])
        #expect(m.edns == nil)
        #expect(m.encode() == Self.query)
    }

    @Test func encodesAnAnswerWithTheOwnerCompressedToTheQuestion() {
        var m = DNSMessage(
            header: DNSHeader(id: 0x1234, isResponse: true, authoritative: true, recursionDesired: true, recursionAvailable: true),
            questions: [DNSQuestion(name: DNSName("www.example.com")!, type: .a)])
        m.answers = [DNSResourceRecord(name: DNSName("www.example.com")!, type: .a, ttl: 5, data: .a(IPAddress("10.0.0.1")!))]
        let expected: [UInt8] =
            [0x12, 0x34, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]
            + Array(Self.query[12...])
            + [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1]
        #expect(m.encode() == expected)
    }

    @Test func compressesSuffixesCaseInsensitivelyAndNeverSRVTargets() throws {
        var m = DNSMessage(
            header: DNSHeader(id: 1, isResponse: true),
            questions: [DNSQuestion(name: DNSName("_http._tcp.Web")!, type: .srv)])
        m.answers = [
            DNSResourceRecord(
                name: DNSName("_http._tcp.Web")!, type: .srv, ttl: 5, data: .srv(priority: 0, weight: 0, port: 80, target: DNSName("web")!)),
            DNSResourceRecord(name: DNSName("x.web")!, type: .ptr, ttl: 5, data: .ptr(DNSName("WEB")!)),
        ]
        let bytes = m.encode()
        // question: 12..<32 ("_http" "_tcp" "Web" root). SRV owner → C0 0C.
        #expect(bytes[32] == 0xC0 && bytes[33] == 0x0C)
        // SRV target written out in full: 3 w e b 0.
        let rdataStart = 34 + 10
        #expect(Array(bytes[(rdataStart + 6)..<(rdataStart + 11)]) == [3, 0x77, 0x65, 0x62, 0])
        // "x.web": label x then a pointer to "Web" in the question (offset 12 + 6 + 5 = 23).
        let ptrOwner = rdataStart + 11
        #expect(Array(bytes[ptrOwner..<(ptrOwner + 4)]) == [1, 0x78, 0xC0, 23])
        let back = try DNSMessage(decoding: bytes)
        #expect(back.answers == m.answers)
        // The PTR target "WEB" is compressed to the same suffix and decodes with the spelling at the target.
        if case .ptr(let target) = back.answers[1].data { #expect(target == DNSName("web")!) } else { Issue.record("not a PTR") }
    }

    @Test func decodesEDNSAndKeepsItOutOfAdditional() throws {
        let opt: [UInt8] = [0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 0]  // payload 1232, DO
        var q = Self.query
        q[11] = 1
        let m = try DNSMessage(decoding: q + opt)
        #expect(m.edns == DNSEDNS(payloadSize: 1232, dnssecOK: true))
        #expect(m.additional.isEmpty)
        #expect(m.encode() == q + opt)
    }

    @Test func decodesAAAAPTRSRVAndCNAMERecords() throws {
        let records: [DNSResourceRecord] = [
            DNSResourceRecord(name: DNSName("a.b")!, type: .aaaa, ttl: 7, data: .aaaa(IPAddress("fd00::1")!)),
            DNSResourceRecord(name: DNSName("1.0.0.10.in-addr.arpa")!, type: .ptr, ttl: 7, data: .ptr(DNSName("a.b")!)),
            DNSResourceRecord(
                name: DNSName("_x._udp.b")!, type: .srv, ttl: 7, data: .srv(priority: 1, weight: 2, port: 53, target: DNSName("a.b")!)),
            DNSResourceRecord(name: DNSName("c.b")!, type: .cname, ttl: 7, data: .cname(DNSName("a.b")!)),
            DNSResourceRecord(name: DNSName("c.b")!, type: DNSType(rawValue: 16), ttl: 7, data: .raw([3, 0x61, 0x62, 0x63])),
        ]
        let m = DNSMessage(header: DNSHeader(id: 9, isResponse: true), answers: records)
        let back = try DNSMessage(decoding: m.encode())
        #expect(back.answers == m.answers)
        #expect(back.header.anCount == 5)
    }

    @Test func rejectsMalformedNames() {
        let header: [UInt8] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        // Pointer to itself.
        #expect(throws: DNSWireError.badPointer(at: 12)) { try DNSMessage(decoding: header + [0xC0, 12, 0, 1, 0, 1]) }
        // Pointer forwards.
        #expect(throws: DNSWireError.badPointer(at: 12)) { try DNSMessage(decoding: header + [0xC0, 14, 0, 1, 0, 1, 0]) }
        // Two labels pointing at each other: the second pointer is not before the first target.
        #expect(throws: (any Error).self) { try DNSMessage(decoding: header + [1, 0x61, 0xC0, 12, 0, 1, 0, 1]) }
        // Reserved label type 0x40.
        #expect(throws: DNSWireError.reservedLabelType(0x41)) { try DNSMessage(decoding: header + [0x41, 0, 0, 1, 0, 1]) }
        // Label running past the end.
        #expect(throws: DNSWireError.truncated(at: 12)) { try DNSMessage(decoding: header + [10, 0x61, 0, 1, 0, 1]) }
        // A name over 255 bytes: five 63-byte labels.
        let long = (0..<5).flatMap { _ in [UInt8(63)] + [UInt8](repeating: 0x61, count: 63) }
        #expect(throws: DNSWireError.nameTooLong) { try DNSMessage(decoding: header + long + [0, 0, 1, 0, 1]) }
    }

    @Test func rejectsCountsThatCannotFitTrailingBytesAndBadRData() {
        #expect(throws: DNSWireError.tooManyRecords(11 * 65535)) { try DNSMessage(decoding: [0, 1, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0]) }
        #expect(throws: DNSWireError.trailingData(1)) { try DNSMessage(decoding: Self.query + [0]) }
        var badA: [UInt8] = [0, 1, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3]
        #expect(throws: DNSWireError.badRDataLength(type: 1, length: 3)) { try DNSMessage(decoding: badA) }
        badA[22] = 9  // RDLENGTH past the end
        #expect(throws: DNSWireError.truncated(at: 23)) { try DNSMessage(decoding: badA) }
    }

    @Test func truncatesWholeRecordsAndKeepsOPT() throws {
        var m = DNSMessage(header: DNSHeader(id: 1, isResponse: true), questions: [DNSQuestion(name: DNSName("big")!, type: .a)])
        m.answers = (0..<100).map { DNSResourceRecord(name: DNSName("big")!, type: .a, ttl: 5, data: .a(.v4(0x0A00_0000 + UInt32($0)))) }
        m.edns = DNSEDNS(payloadSize: 1232)
        let cut = m.encode(limit: 512)
        #expect(cut.count <= 512)
        let back = try DNSMessage(decoding: cut)
        #expect(back.header.truncated)
        #expect(back.answers.count == (512 - 12 - 9 - 11) / 16)
        #expect(back.edns?.payloadSize == 1232)
        #expect(try !DNSMessage(decoding: m.encode()).header.truncated)
    }

    @Test func reverseNamesRoundTrip() {
        for text in ["10.1.0.5", "fd00:1::5", "255.0.0.1", "::"] {
            let ip = IPAddress(text)!
            #expect(ReverseName.address(from: ReverseName.name(for: ip)) == ip)
        }
        #expect(ReverseName.name(for: IPAddress("10.1.0.5")!).text == "5.0.1.10.in-addr.arpa")
        #expect(ReverseName.address(from: DNSName("256.0.0.10.in-addr.arpa")!) == nil)
        #expect(ReverseName.address(from: DNSName("01.0.0.10.in-addr.arpa")!) == nil)
        #expect(ReverseName.address(from: DNSName("0.10.in-addr.arpa")!) == nil)
    }

    @Test func namesCompareWithoutCaseAndPrintEscaped() {
        #expect(DNSName("WeB.Front")! == DNSName("web.front")!)
        #expect(DNSName("WeB.Front")!.hashValue == DNSName("web.front")!.hashValue)
        #expect(DNSName("a..b") == nil)
        #expect(DNSName(String(repeating: "a", count: 64)) == nil)
        #expect(DNSName(".")! == .root)
        #expect(DNSName(uncheckedWire: [3, 0x61, 0x2E, 0x00, 0]).text == "a\\.\\000")
    }
}
