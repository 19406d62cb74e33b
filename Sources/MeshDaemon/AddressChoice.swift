import Foundation
import MeshAPI
#if canImport(Glibc)
    import Glibc
#endif

/// Docker's rules for `--advertise-addr` and `--listen-addr`: an IP, an IP:port or an interface
/// name; absent, the one address this node has (and an error naming the choices when it has several).
enum AddressChoice {
    static func listen(_ value: String?) -> String {
        guard let value, !value.isEmpty else { return "0.0.0.0:2377" }
        if value.contains(":") { return value }
        return "\(value):2377"
    }

    static func advertise(_ value: String?, listen: String?) throws(EngineError) -> String {
        let given = (value?.isEmpty ?? true) ? nil : value
        if let given {
            let host = given.split(separator: ":").first.map(String.init) ?? given
            if isIPv4(host) { return host }
            let byInterface = interfaces().filter { $0.name == host }.map(\.address)
            guard let a = byInterface.first else {
                throw .invalidArgument(
                    "advertise address must be a non-zero IP address or network interface (with optional port number): \(given)")
            }
            return a
        }
        if let l = listen, let host = l.split(separator: ":").first.map(String.init), isIPv4(host), host != "0.0.0.0" { return host }
        let candidates = interfaces().filter { $0.name != "lo" && !$0.address.hasPrefix("127.") }.map(\.address)
        guard candidates.count == 1 else {
            if candidates.isEmpty { throw .invalidArgument("could not find an address to advertise: use --advertise-addr") }
            throw .invalidArgument(
                "could not choose an IP address to advertise since this system has multiple addresses (\(candidates.joined(separator: ", "))) - specify one with --advertise-addr"
            )
        }
        return candidates[0]
    }

    static func isIPv4(_ s: String) -> Bool {
        var a = in_addr()
        return inet_pton(AF_INET, s, &a) == 1
    }

    /// The local address the kernel would send from to reach `host` (a connected UDP socket sends nothing).
    static func source(towards host: String) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var peer = sockaddr_in()
        peer.sin_family = sa_family_t(AF_INET)
        peer.sin_port = UInt16(2377).bigEndian
        guard inet_pton(AF_INET, host, &peer.sin_addr) == 1 else { return nil }
        let connected = withUnsafePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return nil }
        var local = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &local.sin_addr, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return Self.text(buffer)
    }

    /// The text inet_ntop left in a NUL-terminated buffer.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func interfaces() -> [(name: String, address: String)] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0, let first = head else { return [] }
        defer { freeifaddrs(head) }
        var out: [(String, String)] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let p = cursor {
            if let sa = p.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET) {
                var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var addr = sin.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count))
                }
                out.append((String(cString: p.pointee.ifa_name), Self.text(buffer)))
            }
            cursor = p.pointee.ifa_next
        }
        return out
    }
}
