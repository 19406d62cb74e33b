import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

/// IPVS is not in the host kernel: these run in the VM lane (scripts/vm-test), each in a fresh
/// namespace, checked with `ipvsadm -Ln --exact` there.
struct NotRoot: Error, CustomStringConvertible {
    var description: String { "IPVS tests create network namespaces and need root" }
}

/// `ipvsadm -Ln --exact [extra]` in a namespace, parsed into services with their destinations.
struct IPVSAdmListing: CustomStringConvertible {
    struct Service {
        var words: [String]
        var destinations: [[String]]
    }
    var services: [Service] = []
    var text: String
    var description: String { text }

    init(namespace: String, _ extra: [String] = []) throws {
        text = try Exec.check(["ip", "netns", "exec", namespace, "ipvsadm", "-Ln", "--exact"] + extra)
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if line.hasPrefix("  -> "), words.count > 1, words[1] != "RemoteAddress:Port" {
                services[services.count - 1].destinations.append(Array(words.dropFirst()))
            } else if ["TCP", "UDP", "SCTP", "FWM"].contains(words.first ?? "") {
                services.append(Service(words: words, destinations: []))
            }
        }
    }

    func service(_ prefix: String) -> Service? {
        services.first { $0.words.joined(separator: " ").hasPrefix(prefix) }
    }
}

func withIPVS<T>(_ body: (NamespaceGroup, NetworkNamespace, IPVSHandle) async throws -> T) async throws -> T {
    guard getuid() == 0 else { throw NotRoot() }
    let group = NamespaceGroup(tag: "mkv")
    defer { group.destroy() }
    let ns = try group.create("t")
    // IPVS checks a destination's address type, which needs the namespace's local table: lo up.
    try await NetlinkHandle(namespace: ns).linkSetUp("lo")
    let ipvs = try IPVSHandle(namespace: ns)
    return try await body(group, ns, ipvs)
}

@Suite("IPVS")
struct IPVSTests {
    static let vip = IPAddress("10.97.0.10")!
    static let web = IPVSServiceKey.tuple(.tcp, vip, 80)

    @Test func servicesByTupleAndFwmarkWithEverySchedulerAndFlags() async throws {
        try await withIPVS { group, ns, ipvs in
            try await ipvs.apply([
                .addService(IPVSService(Self.web, scheduler: "rr")),
                .addService(IPVSService(.tuple(.udp, Self.vip, 53), scheduler: "wrr")),
                .addService(IPVSService(.tuple(.tcp, Self.vip, 81), scheduler: "lc")),
                .addService(IPVSService(.tuple(.tcp, Self.vip, 82), scheduler: "sh", flags: [.shFallback, .shPort])),
                .addService(IPVSService(.tuple(.tcp, Self.vip, 83), scheduler: "mh", flags: [.mhPort])),
                .addService(.persistent(.tuple(.tcp, Self.vip, 443), scheduler: "rr", seconds: 300)),
                .addService(IPVSService(.fwmark(7, ipv6: false), scheduler: "wrr")),
                .addService(IPVSService(.tuple(.tcp, IPAddress("fd00::10")!, 80), scheduler: "rr")),
            ])
            let l = try IPVSAdmListing(namespace: ns.name!)
            #expect(l.services.count == 8, "\(l)")
            #expect(l.service("TCP 10.97.0.10:80 rr") != nil, "\(l)")
            #expect(l.service("UDP 10.97.0.10:53 wrr") != nil, "\(l)")
            #expect(l.service("TCP 10.97.0.10:81 lc") != nil, "\(l)")
            #expect(l.service("TCP 10.97.0.10:82 sh")?.words.joined(separator: " ").contains("sh-fallback") == true, "\(l)")
            #expect(l.service("TCP 10.97.0.10:82 sh")?.words.joined(separator: " ").contains("sh-port") == true, "\(l)")
            #expect(l.service("TCP 10.97.0.10:83 mh")?.words.joined(separator: " ").contains("mh-port") == true, "\(l)")
            #expect(l.service("TCP 10.97.0.10:443 rr persistent 300") != nil, "\(l)")
            #expect(l.service("FWM 7 wrr") != nil, "\(l)")
            #expect(l.service("TCP [fd00::10]:80 rr") != nil, "\(l)")

            // Reading back gives what was written.
            let listed = try await ipvs.listServices()
            #expect(listed.count == 8)
            let p = listed.first { $0.service.key == .tuple(.tcp, Self.vip, 443) }?.service
            #expect(p == .persistent(.tuple(.tcp, Self.vip, 443), scheduler: "rr", seconds: 300), "\(String(describing: p))")
            #expect(listed.first { $0.service.key == .fwmark(7, ipv6: false) }?.service.scheduler == "wrr")
            #expect(try await ipvs.getService(.tuple(.tcp, Self.vip, 82))?.service.flags == [.shFallback, .shPort])
            #expect(try await ipvs.getService(.tuple(.tcp, Self.vip, 9)) == nil)

            // Update a service in place, delete one, then flush.
            try await ipvs.updateService(IPVSService(Self.web, scheduler: "wlc"))
            try await ipvs.deleteService(.tuple(.udp, Self.vip, 53))
            let l2 = try IPVSAdmListing(namespace: ns.name!)
            #expect(l2.service("TCP 10.97.0.10:80 wlc") != nil && l2.service("UDP") == nil, "\(l2)")
            try await ipvs.flush()
            #expect(try IPVSAdmListing(namespace: ns.name!).services.isEmpty)
            #expect(try await ipvs.listServices().isEmpty)
        }
    }

    @Test func destinationsForwardingWeightsUpdateDeleteAndStats() async throws {
        try await withIPVS { group, ns, ipvs in
            let b1 = IPAddress("10.98.0.11")!, b2 = IPAddress("10.98.0.12")!, b3 = IPAddress("10.98.0.13")!
            try await ipvs.apply([
                .addService(IPVSService(Self.web, scheduler: "wrr")),
                .addDestination(Self.web, IPVSDestination(b1, port: 8080, forwarding: .masquerade, weight: 5)),
                .addDestination(Self.web, IPVSDestination(b2, port: 80, forwarding: .directRoute, weight: 1)),
                .addDestination(
                    Self.web, IPVSDestination(b3, port: 80, forwarding: .tunnel, weight: 0, upperThreshold: 100, lowerThreshold: 10)),
            ])
            var l = try IPVSAdmListing(namespace: ns.name!)
            let d = l.service("TCP 10.97.0.10:80 wrr")?.destinations ?? []
            #expect(d.contains { $0.starts(with: ["10.98.0.11:8080", "Masq", "5"]) }, "\(l)")
            #expect(d.contains { $0.starts(with: ["10.98.0.12:80", "Route", "1"]) }, "\(l)")
            #expect(d.contains { $0.starts(with: ["10.98.0.13:80", "Tunnel", "0"]) }, "\(l)")

            let listed = try await ipvs.listDestinations(Self.web)
            #expect(
                Set(listed.map(\.destination)) == [
                    IPVSDestination(b1, port: 8080, forwarding: .masquerade, weight: 5),
                    IPVSDestination(b2, port: 80, forwarding: .directRoute, weight: 1),
                    IPVSDestination(b3, port: 80, forwarding: .tunnel, weight: 0, upperThreshold: 100, lowerThreshold: 10),
                ])

            // Drain b1 (weight 0), then delete b2.
            try await ipvs.updateDestination(IPVSDestination(b1, port: 8080, forwarding: .masquerade, weight: 0), in: Self.web)
            try await ipvs.deleteDestination(b2, port: 80, from: Self.web)
            l = try IPVSAdmListing(namespace: ns.name!)
            let d2 = l.service("TCP 10.97.0.10:80 wrr")?.destinations ?? []
            #expect(d2.count == 2 && d2.contains { $0.starts(with: ["10.98.0.11:8080", "Masq", "0"]) }, "\(l)")

            // Stats with no traffic: zero in both views.
            let stats = try IPVSAdmListing(namespace: ns.name!, ["--stats"])
            #expect(stats.service("TCP 10.97.0.10:80")?.words.dropFirst(2).prefix(5) == ["0", "0", "0", "0", "0"], "\(stats)")
            #expect(try await ipvs.listServices().first?.stats == IPVSStats())
        }
    }

    @Test func timeoutsGetAndSet() async throws {
        try await withIPVS { group, ns, ipvs in
            try await ipvs.setTimeouts(IPVSTimeouts(tcp: 900, tcpFin: 30, udp: 120))
            #expect(try await ipvs.timeouts() == IPVSTimeouts(tcp: 900, tcpFin: 30, udp: 120))
            let text = try Exec.check(["ip", "netns", "exec", ns.name!, "ipvsadm", "-Ln", "--timeout"])
            #expect(text.contains("Timeout (tcp tcpfin udp): 900 30 120"), "\(text)")
        }
    }

    @Test func errorsCarryTheKernelsReasonAndTheService() async throws {
        try await withIPVS { group, ns, ipvs in
            try await ipvs.addService(IPVSService(Self.web))
            do throws(KernelError) {
                try await ipvs.addService(IPVSService(Self.web))
                Issue.record("duplicate service accepted")
            } catch {
                #expect(error.errno == .exists, "\(error)")
                #expect(error.description.contains("ipvsadm -A TCP 10.97.0.10:80"), "\(error)")
            }
            do throws(KernelError) {
                try await ipvs.addService(IPVSService(.tuple(.tcp, Self.vip, 81), scheduler: "nosuch"))
                Issue.record("unknown scheduler accepted")
            } catch {
                #expect(error.errno == .noEntry, "\(error)")
            }
            do throws(KernelError) {
                try await ipvs.deleteService(.tuple(.tcp, Self.vip, 82))
                Issue.record("deleting a missing service succeeded")
            } catch {
                #expect(error.errno?.rawValue == ESRCH, "\(error)")
            }
            // Bad input is refused before anything is sent.
            await #expect(throws: KernelError.self) { try await ipvs.addService(IPVSService(Self.web, scheduler: "")) }
            // One bad operation in a batch is reported by index; the others apply (no transactions).
            do throws(KernelError) {
                try await ipvs.apply([
                    .addDestination(Self.web, IPVSDestination(IPAddress("10.98.0.11")!, port: 80)),
                    .addDestination(.tuple(.tcp, Self.vip, 99), IPVSDestination(IPAddress("10.98.0.12")!, port: 80)),
                ])
                Issue.record("destination of a missing service accepted")
            } catch {
                guard case .batch(let failures, let applied) = error else {
                    Issue.record("\(error)")
                    return
                }
                #expect(failures.map(\.index) == [1] && applied == 1)
            }
            #expect(try await ipvs.listDestinations(Self.web).count == 1)
        }
    }
}

/// A VIP load-balanced by IPVS round robin, carrying real HTTP requests from curl.
@Suite("IPVS traffic proof")
struct IPVSTrafficTests {
    @Test func roundRobinSpreadsEvenlyDeletionStopsTrafficAndDrainingKeepsEstablished() async throws {
        guard getuid() == 0 else { throw NotRoot() }
        let lab = try await LoadBalancerLab.build(tag: "mkv-lb", vipOnLoopback: true)
        defer { lab.destroy() }
        let ipvs = try IPVSHandle(namespace: lab.lb)
        let key = IPVSServiceKey.tuple(.tcp, LoadBalancerLab.vip, LoadBalancerLab.vipPort)
        try await ipvs.apply(
            [.addService(IPVSService(key, scheduler: "rr"))]
                + lab.backendAddresses.map { .addDestination(key, IPVSDestination($0, port: 80)) })

        let spread = try lab.spread(30)
        #expect(spread == ["backend1": 10, "backend2": 10, "backend3": 10], "\(spread)")
        // Counters: ours are the kernel's, as ipvsadm --stats shows them. (IPVS may reuse a
        // connection entry when curl reuses a client port, so the count can be a little under 30.)
        // The kernel folds per-CPU counters into the totals on its 2-second estimator tick: wait
        // until two reads a tick apart agree, then ipvsadm must show the same numbers (retried
        // in case a tick lands between the two reads).
        var stats = IPVSStats()
        for _ in 0..<10 {
            let a = try #require(try await ipvs.listServices().first?.stats)
            try await Task.sleep(for: .milliseconds(2_200))
            stats = try #require(try await ipvs.listServices().first?.stats)
            if a == stats && stats.connections >= 25 { break }
        }
        var agreed = false, statsText = ""
        for _ in 0..<3 where !agreed {
            statsText = try Exec.check(["ip", "netns", "exec", lab.lb.name!, "ipvsadm", "-Ln", "--stats", "--exact"])
            let row = statsText.split(separator: "\n").first { $0.hasPrefix("TCP") && $0.contains("10.97.0.10:80") }
            let words = row?.split(separator: " ").map(String.init) ?? []
            agreed = words.count >= 7 && words[2] == String(stats.connections) && words[5] == String(stats.inBytes)
            if !agreed { stats = try #require(try await ipvs.listServices().first?.stats) }
        }
        #expect(agreed, "\(stats) vs \(statsText)")
        // IPVS may reuse a connection entry when curl reuses a client port, so a little under 30.
        #expect(stats.connections >= 25 && stats.connections <= 30, "\(stats)")

        // Delete backend 2: no more traffic to it.
        try await ipvs.deleteDestination(lab.backendAddresses[1], port: 80, from: key)
        let served2 = lab.backends[1].requestCount
        let after = try lab.spread(20)
        #expect(after == ["backend1": 10, "backend3": 10], "\(after)")
        #expect(lab.backends[1].requestCount == served2)

        // Weight 0 drains: an established keep-alive connection keeps its backend, new ones avoid it.
        let conn = try HTTPConnection(from: lab.client, to: LoadBalancerLab.vip)
        let pinned = try conn.get()
        let index = try #require(["backend1", "backend3"].firstIndex(of: pinned))
        let drained = lab.backendAddresses[index == 0 ? 0 : 2]
        try await ipvs.updateDestination(IPVSDestination(drained, port: 80, weight: 0), in: key)
        let fresh = try lab.spread(10)
        #expect(fresh[pinned] == nil && fresh["failed"] == nil, "\(fresh)")
        for _ in 0..<3 { #expect(try conn.get() == pinned) }
    }
}
