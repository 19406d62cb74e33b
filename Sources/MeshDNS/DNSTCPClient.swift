import Foundation
import MeshKernel
#if canImport(Glibc)
    import Glibc
#endif

/// One query over TCP (RFC 7766), for the retry after a truncated UDP answer. Rare, so it runs on
/// a thread of its own with blocking-with-deadline I/O on a socket made in the node namespace.
enum DNSTCPClient {
    static func exchange(
        _ query: [UInt8], with upstream: DNSUpstream, namespace: NetworkNamespace?,
        timeout: Duration, completion: @escaping @Sendable ([UInt8]?) -> Void
    ) {
        Thread.detachNewThread {
            completion(try? run(query, upstream, namespace, timeout))
        }
    }

    private static func run(_ query: [UInt8], _ up: DNSUpstream, _ ns: NetworkNamespace?, _ timeout: Duration) throws -> [UInt8]? {
        let family = up.address.isIPv4 ? AF_INET : AF_INET6
        let fd = try NamespaceSockets.inside(ns) { () throws(KernelError) -> Int32 in
            let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { throw .system(call: "socket", errno: .current) }
            return fd
        }
        defer { close(fd) }
        let deadline = ContinuousClock.now + timeout
        let rc = NamespaceSockets.withSockaddr(up.address, up.port) { connect(fd, $0, $1) }
        if rc < 0 && errno != EINPROGRESS { return nil }
        guard wait(fd, Int16(POLLOUT), deadline) else { return nil }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        guard err == 0 else { return nil }
        let framed = [UInt8(query.count >> 8), UInt8(truncatingIfNeeded: query.count)] + query
        guard send(fd, framed, deadline) else { return nil }
        var lengthBytes = [UInt8](repeating: 0, count: 2)
        guard receive(fd, &lengthBytes, deadline) else { return nil }
        let length = Int(lengthBytes[0]) << 8 | Int(lengthBytes[1])
        guard length >= DNSHeader.size else { return nil }
        var body = [UInt8](repeating: 0, count: length)
        guard receive(fd, &body, deadline) else { return nil }
        return body
    }

    private static func receive(_ fd: Int32, _ buf: inout [UInt8], _ deadline: ContinuousClock.Instant) -> Bool {
        var got = 0
        while got < buf.count {
            guard wait(fd, Int16(POLLIN), deadline) else { return false }
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            guard n > 0 else { return false }
            got += n
        }
        return true
    }

    private static func send(_ fd: Int32, _ bytes: [UInt8], _ deadline: ContinuousClock.Instant) -> Bool {
        var done = 0
        while done < bytes.count {
            guard wait(fd, Int16(POLLOUT), deadline) else { return false }
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    private static func wait(_ fd: Int32, _ events: Int16, _ deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            let ms = Int32(max(0, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            guard ms > 0 else { return false }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&p, 1, ms)
            if rc < 0 && errno == EINTR { continue }
            return rc > 0 && p.revents & (events | Int16(POLLHUP) | Int16(POLLERR)) != 0
        }
    }
}
