#if canImport(Glibc)
    import Glibc
#endif

/// Creates sockets inside a namespace on a thread that does nothing else, and returns the fds for
/// SwiftNIO to adopt. A socket keeps the namespace it was made in whichever thread uses it later.
public enum NamespaceSockets {
    /// Runs `body` inside `ns`, or on the caller's thread when nil (the process's own namespace).
    public static func inside<T>(_ ns: NetworkNamespace?, _ body: () throws(KernelError) -> T) throws(KernelError) -> T {
        if let ns { return try ns.run(body) }
        return try body()
    }

    /// A non-blocking socket bound to `address:port`; listening when it is a stream socket.
    /// `reusePort` lets several UDP sockets share the port so several event loops read it.
    public static func bound(_ type: Int32, address: IPAddress, port: UInt16, reusePort: Bool) throws(KernelError) -> Int32 {
        let family = address.isIPv4 ? AF_INET : AF_INET6
        let fd = socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(call: "socket", errno: .current) }
        do throws(KernelError) {
            var one: Int32 = 1
            if type == Int32(SOCK_STREAM.rawValue) { try set(fd, SOL_SOCKET, SO_REUSEADDR, &one) }
            if reusePort { try set(fd, SOL_SOCKET, SO_REUSEPORT, &one) }
            if type == Int32(SOCK_DGRAM.rawValue) {
                // Room for a burst of queries (or upstream replies) while the loop is busy: the
                // default ~200 KiB holds only a few hundred datagrams. FORCE passes rmem_max as
                // root; without privilege the plain option is capped by it, which is still fine.
                var size: Int32 = 4 << 20
                if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) < 0 {
                    _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
                }
            }
            try bind(fd, address, port)
            if type == Int32(SOCK_STREAM.rawValue), listen(fd, 256) < 0 { throw .system(call: "listen", errno: .current) }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    public static func set(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: inout Int32) throws(KernelError) {
        if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) < 0 {
            throw .system(call: "setsockopt(\(name))", errno: .current)
        }
    }

    public static func bind(_ fd: Int32, _ address: IPAddress, _ port: UInt16) throws(KernelError) {
        let rc = withSockaddr(address, port) { Glibc.bind(fd, $0, $1) }
        if rc < 0 { throw .system(call: "bind \(address) port \(port)", errno: .current) }
    }

    public static func withSockaddr<T>(_ address: IPAddress, _ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        let b = address.bytes
        if address.isIPv4 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: b) }
            return withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        var sa = sockaddr_in6()
        sa.sin6_family = sa_family_t(AF_INET6)
        sa.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: b) }
        return withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    }
}
