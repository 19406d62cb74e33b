import Foundation
import NIOCore

public enum APISocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `--group` names no group in the group database and is not a number.
    case unknownGroup(String)
    /// Longer than `sun_path` holds.
    case pathTooLong(String)
    /// Something other than a socket is in the way; it is not ours to remove.
    case notASocket(String)
    case system(call: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .unknownGroup(let g): return "group \(g) does not exist"
        case .pathTooLong(let p): return "socket path \(p) is longer than a unix socket address holds"
        case .notASocket(let p): return "\(p) exists and is not a socket"
        case .system(let call, let path, let e): return "\(call) \(path): \(String(cString: strerror(e)))"
        }
    }
}

/// The API socket's access: who may talk to the daemon is whoever may write the socket file, so it is created
/// mode 0660, owned by root (the daemon) and a group, as dockerd makes /run/docker.sock.
public enum APISocket {
    public static let mode: mode_t = 0o660

    /// The gid for `--group NAME` (a name or a number). Without one: the `docker` group if it exists, else
    /// root's group, as dockerd does, so a docker-CLI user needs nothing new.
    public static func group(named name: String?) throws(APISocketError) -> gid_t {
        guard let name else { return lookup("docker") ?? 0 }
        if let gid = lookup(name) { return gid }
        if let gid = gid_t(name) { return gid }
        throw .unknownGroup(name)
    }

    private static func lookup(_ name: String) -> gid_t? {
        var entry = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    /// A unix stream socket bound at `path` with its final owner and mode but not yet listening, so that no
    /// client can connect while the mode is wider (connect(2) is refused until listen(2)). A stale socket file
    /// is replaced. The caller hands the descriptor to NIO, which calls listen.
    static func bound(at path: String, group gid: gid_t?) throws(APISocketError) -> NIOBSDSocket.Handle {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { throw .pathTooLong(path) }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path) }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(call: "socket", path: path, errno: errno) }
        func fail(_ call: String) -> APISocketError {
            let e = errno
            close(fd)
            unlink(path)
            return .system(call: call, path: path, errno: e)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw fail("bind") }
        // fchmod on a socket descriptor does not reach the file bind made: the path is what is changed.
        if let gid, chown(path, geteuid(), gid) != 0 { throw fail("chown") }
        guard chmod(path, mode) == 0 else { throw fail("chmod") }
        return fd
    }
}
