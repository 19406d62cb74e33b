import Testing
@testable import MeshDNS
import MeshKernel

@Suite("query processor")
struct QueryProcessorTests {
    let store: DNSRecordStore = {
        let s = DNSRecordStore()
        s.upsert(DNSNetwork(id: "n1", name: "front"))
        s.upsert(
            DNSService(id: "s", name: "web", vips: ["n1": [IPAddress("10.1.0.2")!]], ports: [DNSServicePort(name: "http", target: 80)]))
        for k in 0..<3 {
            s.upsert(DNSTask(id: "t\(k)", name: "web.\(k)", service: "web", addresses: ["n1": [.v4(0x0A01_0010 + UInt32(k))]]))
        }
        return s
    }()
    let processor = DNSQueryProcessor(resolver: DNSResolver(ttl: 7))

    func ask(
        _ name: String, _ type: DNSType = .a, edns: DNSEDNS? = nil, transport: DNSQueryProcessor.Transport = .udp,
        networks: [String] = ["n1"]
    ) throws -> DNSMessage? {
        var q = DNSMessage(header: DNSHeader(id: 77, recursionDesired: true), questions: [DNSQuestion(name: DNSName(name)!, type: type)])
        q.edns = edns
        var rng = SplitMix64(seed: 1)
        switch processor.process(q.encode(), transport: transport, store: store, networks: networks, using: &rng) {
        case .reply(let bytes): return try DNSMessage(decoding: bytes)
        case .forward, .drop: return nil
        }
    }

    @Test func answersWithTTLAuthorityAndTheAskersSpelling() throws {
        let r = try #require(try ask("WEB"))
        #expect(
            r.header.id == 77 && r.header.isResponse && r.header.authoritative && r.header.recursionAvailable && r.header.recursionDesired)
        #expect(r.answers == [DNSResourceRecord(name: DNSName("WEB")!, type: .a, ttl: 7, data: .a(IPAddress("10.1.0.2")!))])
        #expect(r.answers[0].name.wire == DNSName("WEB")!.wire)
        #expect(r.edns == nil)
    }

    @Test func nodataForMissingTypesAndForwardForUnknownNames() throws {
        let aaaa = try #require(try ask("web", .aaaa))
        #expect(aaaa.rcode == .noError && aaaa.answers.isEmpty)
        let mx = try #require(try ask("web", DNSType(rawValue: 15)))
        #expect(mx.rcode == .noError && mx.answers.isEmpty)
        #expect(try ask("example.org") == nil)
        #expect(try ask("web", networks: ["n2"]) == nil)
        #expect(try ask("1.1.1.10.in-addr.arpa", .ptr) == nil)
    }

    @Test func ptrAndSRVWithAdditionalAddresses() throws {
        let ptr = try #require(try ask("16.0.1.10.in-addr.arpa", .ptr))
        #expect(ptr.answers.map(\.data) == [.ptr(DNSName("web.0.front")!)])
        let srv = try #require(try ask("_http._tcp.web", .srv))
        #expect(srv.answers.map(\.data) == [.srv(priority: 0, weight: 0, port: 80, target: DNSName("web")!)])
        #expect(srv.additional.map(\.data) == [.a(IPAddress("10.1.0.2")!)])
        let none = try #require(try ask("_ftp._tcp.web", .srv))
        #expect(none.answers.isEmpty && none.rcode == .noError)
    }

    @Test func ednsIsEchoedAndBoundsTheAnswer() throws {
        let r = try #require(try ask("tasks.web", edns: DNSEDNS(payloadSize: 4000)))
        #expect(r.edns?.payloadSize == 1232)
        #expect(r.answers.count == 3)
        #expect(processor.limit(for: DNSEDNS(payloadSize: 100), .udp) == 512)
        #expect(processor.limit(for: DNSEDNS(payloadSize: 60000), .udp) == 4096)
        #expect(processor.limit(for: nil, .tcp) == 65535)
    }

    @Test func errorsFORMERRNOTIMPBADVERSAndDrops() {
        var rng = SplitMix64(seed: 2)
        func run(_ b: [UInt8]) -> DNSQueryProcessor.Action {
            processor.process(b, transport: .udp, store: store, networks: ["n1"], using: &rng)
        }
        func rcode(_ a: DNSQueryProcessor.Action) -> DNSRCode? {
            guard case .reply(let b) = a, let m = try? DNSMessage(decoding: b) else { return nil }
            return m.rcode
        }
        #expect(run([1, 2, 3]) == .drop)
        #expect(rcode(run([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])) == .formErr)
        #expect(rcode(run([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])) == .formErr)  // no question
        let two = DNSMessage(
            header: DNSHeader(id: 1), questions: [DNSQuestion(name: DNSName("a")!, type: .a), DNSQuestion(name: DNSName("b")!, type: .a)])
        #expect(rcode(run(two.encode())) == .formErr)
        let update = DNSMessage(header: DNSHeader(id: 1, opcode: 5), questions: [DNSQuestion(name: DNSName("a")!, type: .a)])
        #expect(rcode(run(update.encode())) == .notImp)
        var v1 = DNSMessage(header: DNSHeader(id: 1), questions: [DNSQuestion(name: DNSName("web")!, type: .a)])
        v1.edns = DNSEDNS(payloadSize: 512, version: 1)
        #expect(rcode(run(v1.encode())) == .badVers)
        let response = DNSMessage(header: DNSHeader(id: 1, isResponse: true), questions: [DNSQuestion(name: DNSName("web")!, type: .a)])
        #expect(run(response.encode()) == .drop)
    }

    @Test func relayRestoresTheIDAndTruncatesForTheClient() throws {
        let query = DNSMessage(header: DNSHeader(id: 4242), questions: [DNSQuestion(name: DNSName("many.example")!, type: .a)])
        var upstream = DNSMessage(header: DNSHeader(id: 9, isResponse: true), questions: query.questions)
        upstream.answers = (0..<60).map { DNSResourceRecord(name: DNSName("many.example")!, type: .a, ttl: 30, data: .a(.v4(UInt32($0)))) }
        upstream.edns = DNSEDNS(payloadSize: 4096)
        let udp = try DNSMessage(decoding: processor.relay(upstream, to: query, transport: .udp))
        #expect(udp.header.id == 4242 && udp.header.truncated && udp.edns == nil)
        let tcp = try DNSMessage(decoding: processor.relay(upstream, to: query, transport: .tcp))
        #expect(tcp.answers.count == 60 && !tcp.header.truncated)
        let fail = try DNSMessage(decoding: processor.serverFailure(for: query, transport: .udp))
        #expect(fail.rcode == .servFail && fail.header.id == 4242 && fail.questions == query.questions)
    }
}
