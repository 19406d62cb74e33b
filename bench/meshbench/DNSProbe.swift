import ArgumentParser
import Foundation
import MeshDNS
import MeshKernel
#if canImport(Glibc)
    import Glibc
#endif

/// Asks a namespace's resolver (127.0.0.11) from a UDP socket made inside that namespace, so a
/// convergence poll costs one datagram each way instead of a `dig` process: what the benchmark
/// times is the cluster, not its own probing.
final class DNSProbe {
    private let fd: Int32
    private var id: UInt16 = 0

    init(namespace name: String) throws {
        let ns = try NetworkNamespace.open(named: name)
        fd = try NamespaceSockets.inside(ns) { () throws(KernelError) -> Int32 in
            let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if s < 0 { throw .system(call: "socket", errno: .current) }
            return s
        }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let ok = NamespaceSockets.withSockaddr(IPAddress("127.0.0.11")!, 53) { connect(fd, $0, $1) } == 0
        guard ok else {
            close(fd)
            throw ValidationError("connect 127.0.0.11:53 in \(name): \(Errno.current)")
        }
    }

    deinit { close(fd) }

    /// The A records `name` resolves to; nil when the resolver did not answer within a second.
    func addresses(_ name: String) -> [String]? {
        id &+= 1
        let query = DNSMessage(
            header: DNSHeader(id: id, recursionDesired: true),
            questions: [DNSQuestion(name: DNSName(name)!, type: .a)]
        ).encode()
        guard query.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == query.count else { return nil }
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            // A late answer to an earlier query that timed out: skip it.
            guard let m = try? DNSMessage(decoding: Array(buf[0..<n])), m.header.id == id else { continue }
            return m.answers.filter { $0.type == .a }.map { "\($0.data)" }
        }
    }
}
