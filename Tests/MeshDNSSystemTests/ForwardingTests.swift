import Foundation
import Testing
@testable import MeshDNS
import MeshKernel
import MeshTestbed
#if canImport(Glibc)
    import Glibc
#endif

@Suite("forwarding to real upstreams", .serialized)
struct ForwardingTests {
    @Test func timeoutThenNextServerTCPRetryAndSERVFAILWhenNoneAnswers() async throws {
        try await withTestbed("mkt-dns-fwd") { tb in
            let up = try await tb.makeUpstreamNamespace()
            // 60 addresses for many.test: more than 512 bytes, so dnsmasq (capped at 512) sets TC.
            var hosts = "203.0.113.7 external.test\n"
            for i in 1...60 { hosts += "198.51.100.\(i) many.test\n" }
            let hostsFile = try tb.tempFile("hosts", hosts)
            let dnsmasq = try tb.startDnsmasq(
                in: up, listen: DNSTestbed.upstreamAddress, hostsFile: hostsFile,
                extra: ["--edns-packet-max=512", "--local=/test/"])
            // An upstream that never answers, on the node's loopback: it must time out first.
            try await NetlinkHandle(namespace: tb.node).linkSetUp("lo")
            let silent = try tb.node.run { () throws(KernelError) in
                try NamespaceSockets.bound(Int32(SOCK_DGRAM.rawValue), address: IPAddress("127.0.0.1")!, port: 53, reusePort: false)
            }
            defer { close(silent) }
            try await tb.start(
                upstreams: [
                    DNSUpstream(address: IPAddress("127.0.0.1")!),
                    DNSUpstream(address: IPAddress(DNSTestbed.upstreamAddress)!),
                ],
                timeout: .milliseconds(400))
            seed(tb.store)
            let t = try await tb.task("t", networks: ["n1"])
            // Wait for dnsmasq to listen (it is started asynchronously).
            var ready = false
            for _ in 0..<50 where !ready {
                ready =
                    (try? Exec.run([
                        "ip", "netns", "exec", tb.node.name!, "dig", "@\(DNSTestbed.upstreamAddress)", "+time=1", "+tries=1", "+short",
                        "external.test",
                    ]).stdout.contains("203.0.113.7")) ?? false
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(ready, "dnsmasq did not come up")

            let clock = ContinuousClock()
            var answer: [String] = []
            let took = try clock.measure { answer = try tb.short(t, "external.test") }
            #expect(answer == ["203.0.113.7"])
            #expect(took >= .milliseconds(400), "the silent upstream was not tried first (\(took))")
            // Cluster names still come from the store, fast.
            #expect(try tb.short(t, "web") == ["10.1.0.2"])

            // many.test: UDP answer from dnsmasq is truncated, the forwarder retries over TCP, and a
            // TCP client gets all 60.
            let many = try tb.dig(t, "+tcp", "many.test")
            #expect(DNSTestbed.answers(many).count == 60, "\(many.stdout)")
            // A UDP client without EDNS gets what fits with TC, and dig's own TCP retry gets it all.
            let manyUDP = try tb.dig(t, "+noedns", "+ignore", "many.test")
            #expect(DNSTestbed.flags(manyUDP).contains("tc"))
            #expect(try tb.short(t, "many.test").count == 60)

            // NXDOMAIN from upstream is an answer, passed through (not a reason to move on).
            let nx = try tb.dig(t, "nothing.test")
            #expect(DNSTestbed.status(nx) == "NXDOMAIN")

            // No upstream answers: SERVFAIL, after both timeouts.
            tb.stop(dnsmasq)
            let none = try tb.dig(t, "external.test")
            #expect(DNSTestbed.status(none) == "SERVFAIL", "\(none.stdout)")
        }
    }

    /// 500 queries wait on one slow upstream at once and every one is answered: no cap of 100.
    @Test func manyConcurrentForwardsAreAllAnswered() async throws {
        try await withTestbed("mkt-dns-conc") { tb in
            try await NetlinkHandle(namespace: tb.node).linkSetUp("lo")
            // The upstream is this test: it reads every query first and answers only when all arrived.
            let upstream = try RawUDPClient(in: tb.node, bind: ("127.0.0.1", 53), timeout: 2_000_000)
            try await tb.start(upstreams: [DNSUpstream(address: IPAddress("127.0.0.1")!)], timeout: .seconds(10))
            let t = try await tb.task("t", networks: [])
            let client = try RawUDPClient(in: t, timeout: 2_000_000)
            let count = 500
            for i in 0..<count {
                // In bursts of 50, as many clients would send them, not one 500-datagram blast.
                if i % 50 == 49 { try await Task.sleep(for: .milliseconds(5)) }
                client.send(
                    DNSMessage(
                        header: DNSHeader(id: UInt16(i), recursionDesired: true),
                        questions: [DNSQuestion(name: DNSName("q\(i).slow.test")!, type: .a)]
                    ).encode())
            }
            var held: [(DNSMessage, UInt16)] = []
            while held.count < count, let (bytes, port, _) = upstream.receive() {
                if let m = try? DNSMessage(decoding: bytes) { held.append((m, port)) }
            }
            #expect(held.count == count, "only \(held.count) queries reached the upstream at once")
            // Queries leave from several source ports, and a reply that reaches another of the
            // forwarder's sockets than the one that asked is ignored, even with the right ID.
            let ports = Set(held.map(\.1))
            #expect(ports.count > 1)
            if let (q, port) = held.first, let other = ports.first(where: { $0 != port }) {
                var spoof = q
                spoof.header.isResponse = true
                spoof.answers = [DNSResourceRecord(name: q.questions[0].name, type: .a, ttl: 60, data: .a(IPAddress("203.0.113.66")!))]
                upstream.send(spoof.encode(), to: "127.0.0.1", port: other)
                try await Task.sleep(for: .milliseconds(50))
            }
            for (q, port) in held {
                var r = q
                r.header.isResponse = true
                r.answers = [DNSResourceRecord(name: q.questions[0].name, type: .a, ttl: 60, data: .a(IPAddress("192.0.2.1")!))]
                upstream.send(r.encode(), to: "127.0.0.1", port: port)
            }
            var answered = Set<UInt16>()
            while answered.count < count, let (bytes, _, _) = client.receive() {
                if let m = try? DNSMessage(decoding: bytes), m.rcode == .noError,
                    m.answers.map(\.data) == [.a(IPAddress("192.0.2.1")!)],
                    m.questions.first?.name == DNSName("q\(m.header.id).slow.test")!
                {
                    answered.insert(m.header.id)
                }
            }
            #expect(answered.count == count)
        }
    }

    @Test func readsUpstreamsFromTheNodeResolvConf() throws {
        let c = ResolvConf.parse(
            """
            # comment
            nameserver 127.0.0.53
            nameserver 127.0.0.11
            nameserver 10.0.0.2 ; trailing
            search corp.example
            options edns0 trust-ad
            nameserver ::1
            nameserver 192.0.2.9
            """)
        #expect(c.nameservers == ["127.0.0.53", "10.0.0.2", "::1"])
        #expect(DNSUpstream.from(c).map(\.description) == ["127.0.0.53:53", "10.0.0.2:53", "[::1]:53"])
        #expect(c.search == ["corp.example"])
        let task = ResolvConf.taskFile(node: c)
        #expect(task.contains("nameserver 127.0.0.11\n"))
        #expect(!task.contains("127.0.0.53"))
        #expect(task.contains("search corp.example\n") && task.contains("options edns0 trust-ad\n"))
    }
}
