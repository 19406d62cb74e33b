import ArgumentParser
import Foundation
import MeshDataplane
import MeshKernel
import MeshTestbed

#if canImport(Glibc)
    import Glibc
#endif

/// One node carrying N services × 10 backends through the real dataplane path (the in-process
/// `Reconciler`, what `meshd dataplane apply` and the agent run), with traffic: ten backend tasks
/// listen on 8000 and back every service, a client task connects to the VIPs. At N = 100 and
/// 10,000, side by side in one run:
///
/// - cold start: from an empty node until every VIP has answered a connection from the client;
/// - one backend added (a new local task, already attached, joins one service as the agent sends
///   it: `apply([.service])`): from the apply's start until the new task has accepted its first
///   connection through the VIP (the client keeps connecting);
/// - first-packet latency: a new connection's handshake through a VIP (SYN → DNAT → SYN-ACK),
///   beside the same handshake straight to a backend.
///
/// Goals: first packet through an added backend < 10 ms, and 10,000 within 1.5× of 100; the VIP's
/// first-packet latency flat from 100 to 10,000 services.
struct ScaleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "N services × 10 backends on one node: cold start until every VIP answers, an added backend's first packet, VIP latency.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Service counts (the first and the last are compared).") var sizes = "100,10000"
    @Option(help: "Backends per service.") var backends = 10
    @Option(help: "Added backends timed per size.") var samples = 21
    @Option(help: "Handshakes timed per size and path.") var handshakes = 201

    static let network = ApplyBench.network
    static let port: UInt16 = 8000
    static let client = IPAddress.v4(0x0A4E_0002)  // 10.78.0.2
    static func vip(_ i: Int) -> IPAddress { ApplyBench.vip(i) }
    /// Where the VIPs are: 10.65.0.0 + i.
    static let vipRange = IPPrefix("10.65.0.0/16")!
    static func backend(_ j: Int) -> IPAddress { .v4(0x0A48_0000 + UInt32(10 + j)) }  // 10.72.0.10+j
    static func added(_ k: Int) -> IPAddress { .v4(0x0A4F_0000 + UInt32(10 + k)) }  // 10.79.0.10+k

    struct Figures {
        var coldApply: Double
        var coldAnswering: Double
        var addApply: [Double]
        var addFirstPacket: [Double]
        var vipHandshake: [Double]
        var directHandshake: [Double]
    }

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        let counts = options.quick ? [20, 200] : sizes.split(separator: ",").compactMap { Int($0) }
        guard counts.count >= 2, counts.allSatisfy({ $0 >= 1 && $0 <= 65_000 }) else {
            throw ValidationError("--sizes: at least two counts, each 1…65000")
        }
        guard (1...200).contains(backends) else { throw ValidationError("--backends: 1…200") }
        let added = options.quick ? 5 : samples
        let shakes = options.quick ? 21 : handshakes
        print(
            "scale: one node, in-process Reconciler (nftables), \(backends) listening backend tasks behind every service; "
                + "\(added) added backends and \(shakes) handshakes per size")
        var figures: [Int: Figures] = [:]
        for n in counts {
            let f = try await measure(services: n, added: added, handshakes: shakes)
            figures[n] = f
            print(
                String(
                    format:
                        "  %6d services: cold apply %8.1f ms, every VIP answering %8.1f ms   added backend: apply %6.2f ms, first packet %6.2f ms   handshake: VIP %.3f ms, direct %.3f ms",
                    n, f.coldApply * 1e3, f.coldAnswering * 1e3, median(f.addApply) * 1e3, median(f.addFirstPacket) * 1e3,
                    median(f.vipHandshake) * 1e3, median(f.directHandshake) * 1e3))
        }
        let small = counts.first!, large = counts.last!
        let s = figures[small]!, l = figures[large]!
        let addRatio = median(l.addFirstPacket) / median(s.addFirstPacket)
        let vipRatio = median(l.vipHandshake) / median(s.vipHandshake)
        print("")
        print(
            String(
                format: "  added backend's first packet: %.2f ms at %d (goal < 10 ms), %d vs %d services %.2fx (goal <= 1.5x)",
                median(l.addFirstPacket) * 1e3, large, large, small, addRatio))
        print(
            String(
                format: "  VIP handshake: %d vs %d services %.2fx (goal: flat, <= 1.5x); VIP / direct at %d: %.2fx",
                large, small, vipRatio, large, median(l.vipHandshake) / median(l.directHandshake)))
        var json = BenchResults(
            "scale", quick: options.quick,
            ["sizes": counts, "backends": backends, "added": added, "handshakes": shakes, "added_ratio": addRatio, "vip_ratio": vipRatio])
        for n in counts {
            let f = figures[n]!
            json["cold_apply_\(n)_s"] = f.coldApply
            json["cold_answering_\(n)_s"] = f.coldAnswering
            json["add_apply_\(n)_s"] = median(f.addApply)
            json["add_first_packet_\(n)_s"] = median(f.addFirstPacket)
            json["add_first_packet_\(n)_samples_s"] = f.addFirstPacket
            json["vip_handshake_\(n)_s"] = median(f.vipHandshake)
            json["direct_handshake_\(n)_s"] = median(f.directHandshake)
            json.metric("\(n) services: cold apply", f.coldApply, "s")
            json.metric("\(n) services: cold start until every VIP answers", f.coldAnswering, "s")
            json.metric("\(n) services: added backend, its apply", median(f.addApply) * 1e3, "ms")
            json.metric("\(n) services: added backend, first packet", median(f.addFirstPacket) * 1e3, "ms", goal: "<", 10)
            json.metric("\(n) services: VIP handshake", median(f.vipHandshake) * 1e3, "ms")
            json.metric("\(n) services: direct handshake", median(f.directHandshake) * 1e3, "ms")
        }
        json.metric("added backend's first packet, \(large) vs \(small) services", addRatio, "×", goal: "<=", 1.5)
        json.metric("VIP handshake, \(large) vs \(small) services", vipRatio, "×", goal: "<=", 1.5)
        try json.write(to: options.json)
    }

    func measure(services n: Int, added: Int, handshakes: Int) async throws -> Figures {
        let lab = try await DataplaneLab.build(tag: "meshbench", nodes: 1)
        let listeners = ScaleListeners()
        defer {
            listeners.stop()
            lab.destroy()
        }
        let clientNS = try await lab.createTask("client")
        // The probes open many connections to few backends: a wide port range in the client only.
        try clientNS.setSysctl("net.ipv4.ip_local_port_range", "1024 65535")
        var state = lab.emptyState(1)
        state.networks = [Self.network]
        state.localEndpoints = [
            LocalEndpoint(id: "client", network: "bulk", namespace: lab.taskNamespace("client"), address: Self.client)
        ]
        for j in 0..<backends {
            let ns = try await lab.createTask("b\(j)")
            try listeners.add(ns)
            state.localEndpoints.append(
                LocalEndpoint(id: "b\(j)", network: "bulk", namespace: lab.taskNamespace("b\(j)"), address: Self.backend(j)))
        }
        let members = (0..<backends).map { BalancedService.Backend(network: "bulk", address: Self.backend($0)) }
        state.services = (0..<n).map { i in
            BalancedService(id: "s\(i)", name: "s\(i)", vips: [.init(network: "bulk", address: Self.vip(i))], backends: members)
        }
        listeners.start()

        // The tasks are attached first (untimed). The client task's eth0 carries the network's
        // prefix, so every VIP is on-link for it and would take a neighbour entry of its own,
        // answered by the sandbox's proxy ARP: 10,000 of them overflow the machine's neighbour
        // table (gc_thresh3, 1,024 by default and global, not per namespace), and the benchmark
        // would time ARP, not the balancer. So in the client (a namespace this benchmark made)
        // the VIP range goes via the gateway: one neighbour for all VIPs.
        let r = Reconciler(lb: .nftables)
        var attached = state
        attached.services = []
        _ = try await r.apply(attached)
        try await NetlinkHandle(namespace: clientNS).apply([
            .route(
                .replace,
                Route(destination: Self.vipRange, gateway: Self.network.gateway, device: "eth0", proto: 4))
        ])

        // Neighbours resolved before anything is timed (the sandbox's proxy ARP answers after up to
        // `proxy_delay`, 0.8 s): the gateway (a connection to it is refused, which is enough) and
        // every backend, straight.
        ScaleProbe.touch(from: clientNS, to: Self.network.gateway, port: Self.port)
        for j in 0..<backends {
            _ = try ScaleProbe.handshake(from: clientNS, to: Self.backend(j), port: Self.port, timeoutMilliseconds: 3000)
        }

        // Cold start: no services → all of them programmed and every VIP has answered one connection.
        let clock = ContinuousClock()
        let t0 = clock.now
        let report = try await r.apply(state)
        let coldApply = seconds(clock.now - t0)
        guard !report.isEmpty else { throw ValidationError("the cold apply of \(n) services changed nothing") }
        let unanswered = try ScaleProbe.connectAll(from: clientNS, to: (0..<n).map(Self.vip), port: Self.port, deadline: 60)
        let coldAnswering = seconds(clock.now - t0)
        guard unanswered.isEmpty else {
            throw ValidationError(
                "\(unanswered.count) of \(n) VIPs did not answer within 60 s, e.g. \(unanswered.prefix(5).map(\.description))")
        }

        // One backend added to one service, as the agent sends it; the client keeps connecting to
        // that VIP until the new task has accepted a connection.
        var addApply: [Double] = [], firstPacket: [Double] = []
        for k in 0..<added {
            let i = (k * 7919) % n
            let id = "a\(k)"
            let ns = try await lab.createTask(id)
            let listener = try ScaleListeners.listen(ns)
            defer { close(listener) }
            let endpoint = LocalEndpoint(id: id, network: "bulk", namespace: lab.taskNamespace(id), address: Self.added(k))
            _ = try await r.apply([.localEndpoint(endpoint)])
            // The task has answered the client once (as a health check would have made it), so the
            // neighbours are resolved both ways: a task that never sent a packet waits for the
            // sandbox's proxy-ARP reply for the gateway, which the kernel delays by up to
            // `neigh.DEV.proxy_delay` (0.8 s by default). The coldStart figure includes that wait.
            _ = try ScaleProbe.handshake(from: clientNS, to: Self.added(k), port: Self.port, timeoutMilliseconds: 3000)
            ScaleProbe.drain(listener)
            var service = state.services[i]
            service.backends!.append(.init(network: "bulk", address: Self.added(k)))
            let start = clock.now
            let changed = try await r.apply([.service(service)])
            addApply.append(seconds(clock.now - start))
            guard !changed.isEmpty else { throw ValidationError("adding a backend to service \(i) changed nothing") }
            guard try ScaleProbe.until(accepted: listener, from: clientNS, to: Self.vip(i), port: Self.port, seconds: 5) else {
                throw ValidationError("the backend added to service \(i) (of \(n)) got no connection through its VIP within 5 s")
            }
            firstPacket.append(seconds(clock.now - start))
            // Untimed: back to the state before, so every sample starts from the same node.
            _ = try await r.apply([.service(state.services[i])])
            _ = try await r.apply([.removeLocalEndpoint(task: id, network: "bulk")])
        }

        // Handshake latency: a new connection through a VIP, and straight to a backend.
        var vip: [Double] = [], direct: [Double] = []
        for k in 0..<handshakes {
            vip.append(try ScaleProbe.handshake(from: clientNS, to: Self.vip((k * 7919) % n), port: Self.port))
            direct.append(try ScaleProbe.handshake(from: clientNS, to: Self.backend(k % backends), port: Self.port))
        }
        return Figures(
            coldApply: coldApply, coldAnswering: coldAnswering, addApply: addApply, addFirstPacket: firstPacket,
            vipHandshake: vip, directHandshake: direct)
    }
}

/// Listening sockets in the backend tasks, drained (accept, close) by one thread.
final class ScaleListeners: @unchecked Sendable {
    private let lock = NSLock()
    private var fds: [Int32] = []
    private var running = true
    private var thread: Thread?

    static func listen(_ ns: NetworkNamespace) throws -> Int32 {
        try ns.run { () throws(KernelError) -> Int32 in
            let fd = try NamespaceSockets.bound(Int32(SOCK_STREAM.rawValue), address: .v4(0), port: ScaleBench.port, reusePort: false)
            if Glibc.listen(fd, 4096) < 0 {
                let e = Errno.current
                close(fd)
                throw .system(call: "listen", errno: e)
            }
            return fd
        }
    }

    func add(_ ns: NetworkNamespace) throws {
        let fd = try Self.listen(ns)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        lock.withLock { fds.append(fd) }
    }

    func start() {
        let t = Thread { [self] in
            while lock.withLock({ running }) {
                var polls = lock.withLock { fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) } }
                guard poll(&polls, nfds_t(polls.count), 50) > 0 else { continue }
                for p in polls where p.revents & Int16(POLLIN) != 0 {
                    while true {
                        let c = accept(p.fd, nil, nil)
                        if c < 0 { break }
                        close(c)
                    }
                }
            }
        }
        thread = t
        t.start()
    }

    func stop() {
        lock.withLock { running = false }
        usleep(100_000)
        lock.withLock {
            for fd in fds { close(fd) }
            fds.removeAll()
        }
    }
}

/// Client connections made in the client task's namespace: non-blocking, closed with a reset.
enum ScaleProbe {
    static func sockets(_ ns: NetworkNamespace, _ count: Int) throws -> [Int32] {
        try ns.run { () throws(KernelError) -> [Int32] in
            var out: [Int32] = []
            for _ in 0..<count {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                if fd < 0 {
                    for f in out { close(f) }
                    throw .system(call: "socket", errno: .current)
                }
                var l = linger(l_onoff: 1, l_linger: 0)
                _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
                out.append(fd)
            }
            return out
        }
    }

    /// Starts a connect; false if it failed at once.
    static func start(_ fd: Int32, _ address: IPAddress, _ port: UInt16) -> Bool {
        let rc = NamespaceSockets.withSockaddr(address, port) { connect(fd, $0, $1) }
        return rc == 0 || errno == EINPROGRESS
    }

    static func connected(_ fd: Int32) -> Bool {
        var err: Int32 = 0
        var len = socklen_t(4)
        return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0
    }

    /// Connects to every address (512 at a time, each retried after 1 s without an answer) until
    /// all have answered or `deadline` seconds passed; the addresses that never answered.
    static func connectAll(from ns: NetworkNamespace, to addresses: [IPAddress], port: UInt16, deadline: Double) throws -> [IPAddress] {
        let end = Date().addingTimeInterval(deadline)
        var pending = addresses
        while !pending.isEmpty, Date() < end {
            var failed: [IPAddress] = []
            for chunk in stride(from: 0, to: pending.count, by: 512).map({ Array(pending[$0..<min($0 + 512, pending.count)]) }) {
                let fds = try sockets(ns, chunk.count)
                defer { for fd in fds { close(fd) } }
                var open: [Int: Int32] = [:]
                for (k, fd) in fds.enumerated() {
                    if start(fd, chunk[k], port) { open[k] = fd } else { failed.append(chunk[k]) }
                }
                let chunkEnd = Date().addingTimeInterval(1)
                while !open.isEmpty, Date() < chunkEnd {
                    let keys = Array(open.keys)
                    var polls = keys.map { pollfd(fd: open[$0]!, events: Int16(POLLOUT), revents: 0) }
                    guard poll(&polls, nfds_t(polls.count), 100) > 0 else { continue }
                    for (p, key) in zip(polls, keys) where p.revents != 0 {
                        if !connected(p.fd) { failed.append(chunk[key]) }
                        open[key] = nil
                    }
                }
                failed += open.keys.map { chunk[$0] }
            }
            pending = failed
            if !pending.isEmpty { usleep(10_000) }
        }
        return pending
    }

    /// Bursts of 8 connections to `address` until `listener` has a connection waiting.
    static func until(accepted listener: Int32, from ns: NetworkNamespace, to address: IPAddress, port: UInt16, seconds: Double) throws
        -> Bool
    {
        let end = Date().addingTimeInterval(seconds)
        var spare = try sockets(ns, 64)
        defer { for fd in spare { close(fd) } }
        var used: [Int32] = []
        defer { for fd in used { close(fd) } }
        while Date() < end {
            if spare.count < 8 {
                spare += try sockets(ns, 64)
                for fd in used { close(fd) }
                used.removeAll()
            }
            for _ in 0..<8 {
                let fd = spare.removeLast()
                _ = start(fd, address, port)
                used.append(fd)
            }
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 1) > 0 {
                let c = accept(listener, nil, nil)
                if c >= 0 { close(c) }
                return true
            }
        }
        return false
    }

    /// A connection attempt whose outcome does not matter (up to 3 s): it resolves the neighbour.
    static func touch(from ns: NetworkNamespace, to address: IPAddress, port: UInt16) {
        guard let fd = try? sockets(ns, 1)[0] else { return }
        defer { close(fd) }
        guard start(fd, address, port) else { return }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        _ = poll(&p, 1, 3000)
    }

    /// Accepts and closes what waits on `listener` (up to 100 ms for the first).
    static func drain(_ listener: Int32) {
        var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 100) > 0 else { return }
        while true {
            let c = accept(listener, nil, nil)
            if c < 0 { return }
            close(c)
        }
    }

    /// One handshake's time (connect until writable), in seconds.
    static func handshake(from ns: NetworkNamespace, to address: IPAddress, port: UInt16, timeoutMilliseconds: Int32 = 2000) throws
        -> Double
    {
        let fd = try sockets(ns, 1)[0]
        defer { close(fd) }
        let clock = ContinuousClock()
        let t0 = clock.now
        guard start(fd, address, port) else { throw ValidationError("connect \(address):\(port) failed: errno \(errno)") }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&p, 1, timeoutMilliseconds) > 0, connected(fd) else {
            throw ValidationError("no handshake with \(address):\(port) within \(timeoutMilliseconds) ms")
        }
        return seconds(clock.now - t0)
    }
}
