import Foundation
import Testing
@testable import MeshDNS
import MeshKernel
import MeshTestbed
import NIOCore
import NIOPosix
#if canImport(Glibc)
    import Glibc
#endif

/// System tests need root and must not skip silently: without root they fail and say why.
struct NotRoot: Error, CustomStringConvertible {
    var description: String { "DNS system tests create network namespaces and need root: run scripts/test as root" }
}

struct TestbedError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A node namespace (where upstream queries leave from), task namespaces served by one DNSServer,
/// and an upstream namespace joined to the node by a veth (198.18.53.1 ↔ 198.18.53.2).
/// Everything is removed when the test ends, pass or fail.
final class DNSTestbed: @unchecked Sendable {
    let group: NamespaceGroup
    let node: NetworkNamespace
    let elg = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let store = DNSRecordStore()
    private(set) var server: DNSServer!
    private var daemons: [Int32] = []
    private var files: [String] = []

    static let nodeAddress = "198.18.53.1"
    static let upstreamAddress = "198.18.53.2"

    init(tag: String) throws {
        guard getuid() == 0 else { throw NotRoot() }
        group = NamespaceGroup(tag: tag)
        node = try group.create("node")
    }

    func start(upstreams: [DNSUpstream] = [], timeout: TimeAmount = .seconds(2), ttl: UInt32 = 5, maxTCP: Int = 128) async throws {
        try await NetlinkHandle(namespace: node).linkSetUp("lo")
        let cfg = DNSServer.Configuration(
            ttl: ttl, forwarding: .init(upstreams: upstreams, timeout: timeout, namespace: node),
            maxTCPConnectionsPerNamespace: maxTCP)
        server = try await DNSServer.start(cfg, store: store, group: elg)
    }

    /// A task namespace served by the server, with its resolv.conf where `ip netns exec` mounts it.
    func task(_ role: String, networks: [String]) async throws -> NetworkNamespace {
        let ns = try group.create(role)
        let conf = "/etc/netns/\(ns.name!)/resolv.conf"
        files.append("/etc/netns/\(ns.name!)")
        try await server.attach(ns, networks: networks, resolvConf: conf, nodeResolvConf: ResolvConf.Contents())
        return ns
    }

    /// The upstream namespace, reachable from the node namespace over a veth.
    func makeUpstreamNamespace() async throws -> NetworkNamespace {
        let up = try group.create("up")
        let nl = try NetlinkHandle(namespace: node)
        try await nl.linkAdd(LinkSpec(name: "vup", kind: .veth(peerName: "vnode", peerNamespace: up), up: true))
        try await nl.addrAdd(InterfaceAddress(device: "vup", prefix: IPPrefix("\(Self.nodeAddress)/24")!))
        let unl = try NetlinkHandle(namespace: up)
        try await unl.linkSetUp("lo")
        try await unl.linkSetUp("vnode")
        try await unl.addrAdd(InterfaceAddress(device: "vnode", prefix: IPPrefix("\(Self.upstreamAddress)/24")!))
        return up
    }

    /// dnsmasq in `ns`, daemonized with a pid file so the test can end it by pid. (Not a child of
    /// Foundation's Process: its reaper thread blocks in wait4 on a long-lived child and then no
    /// other Process in the test run ever finishes.)
    func startDnsmasq(in ns: NetworkNamespace, listen: String, hostsFile: String, extra: [String] = []) throws -> Int32 {
        let pidFile = try tempFile("dnsmasq.pid", "")
        // Through sh so the daemon holds none of Exec's pipes (which would keep Exec reading).
        let argv =
            [
                "dnsmasq", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--addn-hosts=\(hostsFile)",
                "--listen-address=\(listen)", "--bind-interfaces", "--pid-file=\(pidFile)", "--user=root", "--port=53",
            ] + extra
        try Exec.check(["ip", "netns", "exec", ns.name!, "sh", "-c", argv.joined(separator: " ") + " </dev/null >/dev/null 2>&1"])
        let text = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pid = Int32(text), pid > 1 else { throw TestbedError(message: "dnsmasq wrote no pid to \(pidFile)") }
        daemons.append(pid)
        return pid
    }

    /// Ends a daemon this test started and waits until it is gone.
    func stop(_ pid: Int32) {
        guard kill(pid, SIGTERM) == 0 else { return }
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(10_000) }
    }

    /// A file removed in `destroy`.
    func tempFile(_ name: String, _ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(group.prefix)-\(name)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        files.append(path)
        return path
    }

    func destroy() async {
        for p in daemons { stop(p) }
        if let server { await server.shutdown() }
        try? await elg.shutdownGracefully()
        for f in files { try? FileManager.default.removeItem(atPath: f) }
        group.destroy()
    }

    /// `dig` run inside `ns` against 127.0.0.11, one try, short wait.
    func dig(_ ns: NetworkNamespace, _ args: String...) throws -> Exec.Output {
        try Exec.run(["ip", "netns", "exec", ns.name!, "dig", "@127.0.0.11", "+time=3", "+tries=1"] + args)
    }

    /// Just the answer lines' data (dig +short).
    func short(_ ns: NetworkNamespace, _ args: String...) throws -> [String] {
        let o = try Exec.run(["ip", "netns", "exec", ns.name!, "dig", "@127.0.0.11", "+time=3", "+tries=1", "+short"] + args)
        return o.stdout.split(separator: "\n").map(String.init).filter { !$0.hasPrefix(";") }
    }

    /// Status word from dig's header line ("NOERROR", "NXDOMAIN", ...).
    static func status(_ out: Exec.Output) -> String? {
        guard let r = out.stdout.range(of: "status: ") else { return nil }
        return String(out.stdout[r.upperBound...].prefix { $0 != "," })
    }

    static func flags(_ out: Exec.Output) -> [String] {
        guard let r = out.stdout.range(of: ";; flags: ") else { return [] }
        return out.stdout[r.upperBound...].prefix { $0 != ";" }.split(separator: " ").map(String.init)
    }

    /// Answer section lines of full dig output.
    static func answers(_ out: Exec.Output) -> [String] {
        guard let r = out.stdout.range(of: ";; ANSWER SECTION:\n") else { return [] }
        return out.stdout[r.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
            .prefix { !$0.isEmpty }.map(String.init)
    }
}

func withTestbed<T>(_ tag: String, _ body: (DNSTestbed) async throws -> T) async throws -> T {
    let tb = try DNSTestbed(tag: tag)
    do {
        let r = try await body(tb)
        await tb.destroy()
        return r
    } catch {
        await tb.destroy()
        throw error
    }
}

/// A raw UDP socket made inside a namespace, for sending bytes no real client would.
struct RawUDPClient: ~Copyable {
    let fd: Int32
    /// A socket in `ns`, bound to `bind` when given (e.g. to play an upstream server).
    init(in ns: NetworkNamespace, bind: (String, UInt16)? = nil, timeout: Int = 300_000) throws {
        fd = try ns.run { () throws(KernelError) -> Int32 in
            if let (address, port) = bind {
                return try NamespaceSockets.bound(Int32(SOCK_DGRAM.rawValue), address: IPAddress(address)!, port: port, reusePort: false)
            }
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { throw .system(call: "socket", errno: .current) }
            return fd
        }
        // Blocking with a timeout (NamespaceSockets makes non-blocking sockets).
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        // Room for every reply of a burst: the default 208 KiB holds only 256 small datagrams on
        // loopback (~830 bytes each with the kernel's overhead), so a test that releases 500
        // replies before it reads raced its own socket, not the server (a CI run got 471 of 500).
        var size: Int32 = 4 << 20
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) < 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var tv = timeval(tv_sec: timeout / 1_000_000, tv_usec: timeout % 1_000_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
    deinit { close(fd) }

    /// Sends `bytes` to `address:port` without waiting for anything.
    func send(_ bytes: [UInt8], to address: String = "127.0.0.11", port: UInt16 = 53) {
        _ = NamespaceSockets.withSockaddr(IPAddress(address)!, port) { sa, len in
            bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, len) }
        }
    }

    /// The next datagram and its sender's port, or nil after the receive timeout.
    func receive() -> (bytes: [UInt8], port: UInt16, address: IPAddress)? {
        var buf = [UInt8](repeating: 0, count: 65536)
        var sa = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = buf.withUnsafeMutableBytes { b in
            withUnsafeMutablePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, b.baseAddress, b.count, 0, $0, &len) }
            }
        }
        guard n > 0 else { return nil }
        return (Array(buf[0..<n]), UInt16(bigEndian: sa.sin_port), .v4(UInt32(bigEndian: sa.sin_addr.s_addr)))
    }

    /// Sends `bytes` to 127.0.0.11:53 and returns the reply, or nil if none came in 300 ms.
    func exchange(_ bytes: [UInt8]) -> [UInt8]? {
        _ = NamespaceSockets.withSockaddr(IPAddress("127.0.0.11")!, 53) { sa, len in
            bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, len) }
        }
        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? Array(buf[0..<n]) : nil
    }
}

/// A blocking TCP connection to 127.0.0.11:53 from inside a namespace.
final class RawTCPClient {
    let fd: Int32
    init(in ns: NetworkNamespace) throws {
        let fd = try ns.run { () throws(KernelError) -> Int32 in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { throw .system(call: "socket", errno: .current) }
            return fd
        }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = NamespaceSockets.withSockaddr(IPAddress("127.0.0.11")!, 53) { connect(fd, $0, $1) }
        if rc < 0 {
            let e = errno
            close(fd)
            throw KernelError.system(call: "connect", errno: Errno(e))
        }
        self.fd = fd
    }
    deinit { close(fd) }

    /// Sends one framed query and reads one framed reply; nil when the server closed the connection.
    func exchange(_ query: [UInt8]) -> [UInt8]? {
        let framed = [UInt8(query.count >> 8), UInt8(truncatingIfNeeded: query.count)] + query
        _ = framed.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while got.count < 2 || got.count < 2 + (Int(got[0]) << 8 | Int(got[1])) {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            got += buf[0..<n]
        }
        return Array(got[2...])
    }
}
