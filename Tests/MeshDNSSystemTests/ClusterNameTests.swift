import Foundation
import Testing
@testable import MeshDNS
import MeshKernel
import MeshTestbed

/// A small cluster: network "front" (n1) and "back" (n2); service web (vip) on both, db (dnsrr)
/// on back only, tasks with aliases.
func seed(_ store: DNSRecordStore) {
    store.upsert(DNSNetwork(id: "n1", name: "front"))
    store.upsert(DNSNetwork(id: "n2", name: "back"))
    store.upsert(
        DNSService(
            id: "s-web", name: "web", aliases: ["www"], mode: .vip,
            vips: ["n1": [IPAddress("10.1.0.2")!], "n2": [IPAddress("10.2.0.2")!]],
            ports: [DNSServicePort(name: "http", proto: "tcp", target: 8080, published: 80)]))
    store.upsert(
        DNSTask(
            id: "t-web1", name: "web.1.aaa", service: "web", aliases: ["web-one"],
            addresses: ["n1": [IPAddress("10.1.0.5")!, IPAddress("fd00:1::5")!], "n2": [IPAddress("10.2.0.5")!]]))
    store.upsert(
        DNSTask(
            id: "t-web2", name: "web.2.bbb", service: "web",
            addresses: ["n1": [IPAddress("10.1.0.6")!], "n2": [IPAddress("10.2.0.6")!]]))
    store.upsert(DNSService(id: "s-db", name: "db", mode: .dnsrr, networks: ["n2"], ports: [DNSServicePort(proto: "tcp", target: 5432)]))
    for i in 1...3 {
        store.upsert(DNSTask(id: "t-db\(i)", name: "db.\(i).ccc", service: "db", addresses: ["n2": [IPAddress("10.2.1.\(i)")!]]))
    }
}

@Suite("cluster names over real clients", .serialized)
struct ClusterNameTests {
    @Test func digResolvesServiceTaskAliasAndNetworkQualifiedNames() async throws {
        try await withTestbed("mkt-dns-names") { tb in
            try await tb.start()
            seed(tb.store)
            let t = try await tb.task("t", networks: ["n1"])

            #expect(try tb.short(t, "web") == ["10.1.0.2"])
            #expect(try tb.short(t, "www") == ["10.1.0.2"])
            #expect(try tb.short(t, "web.front") == ["10.1.0.2"])
            #expect(try Set(tb.short(t, "tasks.web")) == ["10.1.0.5", "10.1.0.6"])
            #expect(try tb.short(t, "web.1.aaa") == ["10.1.0.5"])
            #expect(try tb.short(t, "web-one") == ["10.1.0.5"])
            #expect(try tb.short(t, "web.1.aaa.front") == ["10.1.0.5"])
            #expect(try tb.short(t, "AAAA", "web.1.aaa") == ["fd00:1::5"])

            // Case-insensitive match, and the answer keeps the asker's spelling.
            let mixed = try tb.dig(t, "WeB.FrOnT")
            #expect(DNSTestbed.answers(mixed).first?.hasPrefix("WeB.FrOnT.") == true, "\(mixed.stdout)")

            // A name we own without an AAAA: NOERROR and no answer (not NXDOMAIN, not forwarded).
            let noV6 = try tb.dig(t, "AAAA", "web")
            #expect(DNSTestbed.status(noV6) == "NOERROR")
            #expect(DNSTestbed.answers(noV6).isEmpty)
            #expect(DNSTestbed.flags(noV6).contains("aa"))

            // db is on "back" only: invisible from a task on "front" (forwarded; no upstream → SERVFAIL).
            let hidden = try tb.dig(t, "db")
            #expect(DNSTestbed.status(hidden) == "SERVFAIL")

            // A task on "back" sees the dnsrr service as all its task addresses, and the VIP of web on back.
            let b = try await tb.task("b", networks: ["n2"])
            #expect(try Set(tb.short(b, "db")) == ["10.2.1.1", "10.2.1.2", "10.2.1.3"])
            #expect(try tb.short(b, "web") == ["10.2.0.2"])
            #expect(try tb.short(b, "web.back") == ["10.2.0.2"])
        }
    }

    @Test func ptrAndSRV() async throws {
        try await withTestbed("mkt-dns-ptr") { tb in
            try await tb.start()
            seed(tb.store)
            let t = try await tb.task("t", networks: ["n1", "n2"])
            #expect(try tb.short(t, "-x", "10.1.0.5") == ["web.1.aaa.front."])
            #expect(try tb.short(t, "-x", "10.2.0.2") == ["web.back."])
            #expect(try tb.short(t, "-x", "fd00:1::5") == ["web.1.aaa.front."])

            let srv = try tb.dig(t, "SRV", "_http._tcp.web")
            #expect(DNSTestbed.answers(srv).count == 1)
            #expect(DNSTestbed.answers(srv).first?.hasSuffix("0 0 8080 web.") == true, "\(srv.stdout)")
            #expect(srv.stdout.contains(";; ADDITIONAL SECTION:"))
            let dbSRV = try tb.short(t, "SRV", "_5432._tcp.db")
            #expect(Set(dbSRV) == ["0 0 5432 db.1.ccc.", "0 0 5432 db.2.ccc.", "0 0 5432 db.3.ccc."])
        }
    }

    @Test func truncationOverUDPAndFullAnswersOverTCP() async throws {
        try await withTestbed("mkt-dns-tc") { tb in
            try await tb.start()
            tb.store.upsert(DNSNetwork(id: "n1", name: "front"))
            tb.store.upsert(DNSService(id: "s", name: "big", mode: .dnsrr, networks: ["n1"]))
            for i in 0..<100 {
                tb.store.upsert(
                    DNSTask(
                        id: "t\(i)", name: "big.\(i)", service: "big", addresses: ["n1": [IPAddress("10.9.\(i / 250).\(i % 250 + 1)")!]]))
            }
            let t = try await tb.task("t", networks: ["n1"])
            // Plain UDP without EDNS: 512 bytes, TC set.
            let udp = try tb.dig(t, "+noedns", "+ignore", "big")
            #expect(DNSTestbed.flags(udp).contains("tc"), "\(udp.stdout)")
            #expect(DNSTestbed.answers(udp).count < 100)
            // EDNS with 1232 bytes: more fit, still cut.
            let edns = try tb.dig(t, "+bufsize=1232", "+ignore", "big")
            #expect(DNSTestbed.answers(edns).count > DNSTestbed.answers(udp).count)
            #expect(edns.stdout.contains("udp: 1232"))
            // TCP: everything.
            let tcp = try tb.dig(t, "+tcp", "big")
            #expect(DNSTestbed.answers(tcp).count == 100)
            #expect(!DNSTestbed.flags(tcp).contains("tc"))
            // dig's default retry over TCP after TC gets everything too.
            #expect(try tb.short(t, "+noedns", "big").count == 100)
            // Answers are shuffled: the first address is not always the same.
            var firsts = Set<String>()
            for _ in 0..<8 { firsts.insert(try tb.short(t, "+tcp", "big").first ?? "") }
            #expect(firsts.count > 1)
        }
    }

    @Test func getentAndBusyboxNslookupUseTheWrittenResolvConf() async throws {
        try await withTestbed("mkt-dns-libc") { tb in
            try await tb.start()
            seed(tb.store)
            let t = try await tb.task("t", networks: ["n1"])
            let conf = try String(contentsOfFile: "/etc/netns/\(t.name!)/resolv.conf", encoding: .utf8)
            #expect(conf.contains("nameserver 127.0.0.11"))
            let getent = try Exec.run(["ip", "netns", "exec", t.name!, "getent", "hosts", "web"])
            #expect(getent.stdout.hasPrefix("10.1.0.2"), "\(getent.stdout) \(getent.stderr)")
            // ahosts, not ahostsv4: AI_ADDRCONFIG finds no IPv4 address but loopback in this bare namespace.
            let getent6 = try Exec.run(["ip", "netns", "exec", t.name!, "getent", "ahosts", "tasks.web"])
            #expect(
                getent6.stdout.contains("10.1.0.5") && getent6.stdout.contains("10.1.0.6") && getent6.stdout.contains("fd00:1::5"),
                "\(getent6.stdout) \(getent6.stderr)")
            let nslookup = try Exec.run(["ip", "netns", "exec", t.name!, "busybox", "nslookup", "web.1.aaa", "127.0.0.11"])
            #expect(nslookup.stdout.contains("10.1.0.5"), "\(nslookup.stdout) \(nslookup.stderr)")
        }
    }

    @Test func updatesAreVisibleWithin100msAndDetachStopsServing() async throws {
        try await withTestbed("mkt-dns-upd") { tb in
            try await tb.start()
            seed(tb.store)
            let t = try await tb.task("t", networks: ["n1"])
            #expect(try tb.short(t, "web.3.new").isEmpty)
            let client = try RawUDPClient(in: t)
            let query = DNSMessage(
                header: DNSHeader(id: 7, recursionDesired: true),
                questions: [DNSQuestion(name: DNSName("web.3.new")!, type: .a)]
            ).encode()
            tb.store.upsert(DNSTask(id: "t-web3", name: "web.3.new", service: "web", addresses: ["n1": [IPAddress("10.1.0.7")!]]))
            let clock = ContinuousClock()
            let start = clock.now
            var seenAt: Duration?
            while clock.now - start < .milliseconds(100) {
                if let r = client.exchange(query), let m = try? DNSMessage(decoding: r), m.answers.count == 1 {
                    seenAt = clock.now - start
                    break
                }
            }
            #expect(seenAt != nil, "the new task was not answered within 100 ms")
            #expect(try Set(tb.short(t, "tasks.web")) == ["10.1.0.5", "10.1.0.6", "10.1.0.7"])
            tb.store.removeTask(id: "t-web3")
            #expect(try Set(tb.short(t, "tasks.web")) == ["10.1.0.5", "10.1.0.6"])

            // The task joins "back": db becomes visible at once.
            try tb.server.setNetworks(["n1", "n2"], for: t)
            #expect(try tb.short(t, "db").count == 3)

            // Detach: nothing listens any more; attach again: served again.
            try await tb.server.detach(t)
            let gone = try tb.dig(t, "web")
            #expect(!gone.succeeded)
            try await tb.server.attach(t, networks: ["n1"], nodeResolvConf: ResolvConf.Contents())
            #expect(try tb.short(t, "web") == ["10.1.0.2"])
        }
    }

    @Test func tcpConnectionsPerNamespaceAreCapped() async throws {
        try await withTestbed("mkt-dns-tcpcap") { tb in
            try await tb.start(maxTCP: 4)
            seed(tb.store)
            let t = try await tb.task("t", networks: ["n1"])
            let query = DNSMessage(header: DNSHeader(id: 3), questions: [DNSQuestion(name: DNSName("web")!, type: .a)]).encode()
            var open: [RawTCPClient] = []
            for _ in 0..<4 {
                let c = try RawTCPClient(in: t)
                #expect(c.exchange(query).flatMap { try? DNSMessage(decoding: $0) }?.answers.count == 1)
                open.append(c)
            }
            // The fifth is accepted by the kernel, then closed by the server without an answer.
            let fifth = try RawTCPClient(in: t)
            #expect(fifth.exchange(query) == nil)
            // One closes: there is room again.
            open.removeLast()
            try await Task.sleep(for: .milliseconds(100))
            let again = try RawTCPClient(in: t)
            #expect(again.exchange(query).flatMap { try? DNSMessage(decoding: $0) }?.answers.count == 1)
            // Several queries on one connection.
            #expect(open[0].exchange(query) != nil && open[0].exchange(query) != nil)
        }
    }

    @Test func malformedQueriesGetFORMERRNotImpOrSilenceAndTheServerKeepsAnswering() async throws {
        try await withTestbed("mkt-dns-bad") { tb in
            try await tb.start()
            seed(tb.store)
            let t = try await tb.task("t", networks: ["n1"])
            let client = try RawUDPClient(in: t)
            // Too short to have a header: silence.
            #expect(client.exchange([1, 2, 3]) == nil)
            // Header claiming a question that is not there: FORMERR with our ID.
            let formerr = client.exchange([0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
            #expect(formerr.map { Array($0.prefix(2)) } == [0xAB, 0xCD])
            #expect(formerr.map { $0[3] & 0xF } == 1)
            // A compression loop in the question name: FORMERR.
            let loop = client.exchange([0, 9, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1])
            #expect(loop.map { $0[3] & 0xF } == 1)
            // An opcode we do not implement (STATUS = 2): NOTIMP.
            var status = DNSMessage(header: DNSHeader(id: 5, opcode: 2), questions: [DNSQuestion(name: DNSName("web")!, type: .a)]).encode()
            let notimp = client.exchange(status)
            #expect(notimp.map { $0[3] & 0xF } == 4)
            status[2] |= 0x80  // a response sent to the server: ignored
            #expect(client.exchange(status) == nil)
            // EDNS version 1: BADVERS.
            var v1 = DNSMessage(header: DNSHeader(id: 6), questions: [DNSQuestion(name: DNSName("web")!, type: .a)])
            v1.edns = DNSEDNS(payloadSize: 1232, version: 1)
            let badvers = try client.exchange(v1.encode()).map { try DNSMessage(decoding: $0) }
            #expect(badvers?.rcode == .badVers)
            // Random garbage, then a real query still works.
            var rng = SplitMix64(seed: 42)
            for _ in 0..<2000 {
                let n = Int(rng.next() % 300) + 12
                _ = withExtendedLifetime(client) { () -> Int in
                    let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    return NamespaceSockets.withSockaddr(IPAddress("127.0.0.11")!, 53) { sa, len in
                        bytes.withUnsafeBytes { sendto(client.fd, $0.baseAddress, $0.count, 0, sa, len) }
                    }
                }
            }
            #expect(try tb.short(t, "web") == ["10.1.0.2"])
        }
    }
}
