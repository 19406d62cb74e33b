import Foundation
import MeshKernel
#if canImport(Glibc)
    import Glibc
#endif

/// A one-shot TCP exchange between two namespaces with real sockets: the listener and the client
/// are created inside their namespaces (NetworkNamespace.run) and stay there. The server answers
/// with the address it saw the client connect from, which proves whether anything NATed the path.
public enum TCPProbe {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Listens on `address:port` in `server`, connects from `client`, sends a line, returns the
    /// server's answer `"echo <line> from <peer-ip>"`. Throws if anything fails within `timeout`.
    public static func exchange(
        server: NetworkNamespace, client: NetworkNamespace, address: IPAddress, port: UInt16,
        message: String = "hello", timeoutMilliseconds: Int32 = 2000
    ) throws -> String {
        let listener = try server.run { () throws(KernelError) -> Int32 in try listen(address, port) }
        defer { close(listener) }
        setTimeouts(listener, timeoutMilliseconds)

        let served = UnsafeTransfer<Result<Void, Failure>>(.success(()))
        let done = DispatchSemaphore(value: 0)
        Thread {
            served.value = serveOne(listener)
            done.signal()
        }.start()

        let fd: Int32
        do { fd = try connect(from: client, to: address, port: port, timeoutMilliseconds: timeoutMilliseconds) } catch {
            done.wait()
            throw error
        }
        defer { close(fd) }
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let reply = readLine(fd)
        done.wait()
        if case .failure(let f) = served.value { throw f }
        guard let reply else { throw Failure(description: "no reply from \(address):\(port)") }
        return reply
    }

    /// A listening TCP socket; call inside the namespace it belongs to.
    static func listen(_ address: IPAddress, _ port: UInt16, backlog: Int32 = 8) throws(KernelError) -> Int32 {
        let fd = socket(address.isIPv4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw .system(call: "socket", errno: .current) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        var storage = sockaddrStorage(address, port)
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_storage>.size)) }
        }
        if rc < 0 {
            let e = Errno.current
            close(fd)
            throw .system(call: "bind \(address):\(port)", errno: e)
        }
        if Glibc.listen(fd, backlog) < 0 {
            let e = Errno.current
            close(fd)
            throw .system(call: "listen", errno: e)
        }
        return fd
    }

    /// A blocking TCP socket made in `namespace` and connected to `address:port`, with send and
    /// receive timeouts.
    static func connect(
        from namespace: NetworkNamespace, to address: IPAddress, port: UInt16,
        timeoutMilliseconds: Int32
    ) throws -> Int32 {
        let fd = try namespace.run { () throws(KernelError) -> Int32 in
            let fd = socket(address.isIPv4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { throw .system(call: "socket", errno: .current) }
            return fd
        }
        setTimeouts(fd, timeoutMilliseconds)
        var storage = sockaddrStorage(address, port)
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_storage>.size)) }
        }
        if rc < 0 {
            let e = Errno.current
            close(fd)
            throw Failure(description: "connect \(address):\(port): \(e)")
        }
        return fd
    }

    private static func serveOne(_ listener: Int32) -> Result<Void, Failure> {
        var peer = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let conn = withUnsafeMutablePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &len) }
        }
        if conn < 0 { return .failure(Failure(description: "accept: \(Errno.current)")) }
        defer { close(conn) }
        setTimeouts(conn, 2000)
        guard let line = readLine(conn) else { return .failure(Failure(description: "server read nothing")) }
        let answer = Array("echo \(line) from \(peerAddress(peer))\n".utf8)
        _ = answer.withUnsafeBytes { send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return .success(())
    }

    private static func readLine(_ fd: Int32) -> String? {
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 512)
        while !data.contains(10) {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data += buf[0..<n]
        }
        guard let nl = data.firstIndex(of: 10) else { return nil }
        return String(decoding: data[..<nl], as: UTF8.self)
    }

    private static func setTimeouts(_ fd: Int32, _ ms: Int32) {
        var tv = timeval(tv_sec: Int(ms / 1000), tv_usec: Int(ms % 1000) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func sockaddrStorage(_ a: IPAddress, _ port: UInt16) -> sockaddr_storage {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            switch a {
            case .v4(let v):
                var sin = sockaddr_in()
                sin.sin_family = sa_family_t(AF_INET)
                sin.sin_port = port.bigEndian
                sin.sin_addr.s_addr = v.bigEndian
                withUnsafeBytes(of: sin) { raw.copyMemory(from: $0) }
            case .v6:
                var sin6 = sockaddr_in6()
                sin6.sin6_family = sa_family_t(AF_INET6)
                sin6.sin6_port = port.bigEndian
                withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: a.bytes) }
                withUnsafeBytes(of: sin6) { raw.copyMemory(from: $0) }
            }
        }
        return storage
    }

    private static func peerAddress(_ s: sockaddr_storage) -> String {
        withUnsafeBytes(of: s) { raw in
            if Int32(s.ss_family) == AF_INET {
                let sin = raw.load(as: sockaddr_in.self)
                return IPAddress.v4(UInt32(bigEndian: sin.sin_addr.s_addr)).description
            }
            let sin6 = raw.load(as: sockaddr_in6.self)
            return IPAddress(bytes: withUnsafeBytes(of: sin6.sin6_addr) { Array($0) })?.description ?? "?"
        }
    }
}
