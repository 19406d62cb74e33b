import CMeshShim
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A network namespace held open by a file descriptor.
///
/// Namespace membership is per thread and Swift tasks hop threads, so nothing here ever switches
/// the namespace of a shared thread: `run` starts a fresh thread, enters the namespace, runs the
/// body synchronously and lets the thread die. Sockets created in the body stay in the namespace.
public final class NetworkNamespace: Sendable, CustomStringConvertible {
    /// Where `ip netns` keeps its bind mounts; named namespaces created here are visible to it.
    public static let runDirectory = "/run/netns"

    public let name: String?
    public let path: String
    public let fd: Int32

    private init(name: String?, path: String, fd: Int32) {
        self.name = name
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    public var description: String { name.map { "netns \($0)" } ?? "netns \(path)" }

    // MARK: opening

    public static func open(path: String) throws(KernelError) -> NetworkNamespace {
        let fd = try syscallRetrying("open(\(path))") { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
        return NetworkNamespace(name: nil, path: path, fd: fd)
    }

    public static func open(named name: String) throws(KernelError) -> NetworkNamespace {
        try validate(name)
        let path = "\(runDirectory)/\(name)"
        let fd = try syscallRetrying("open(\(path))") { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
        return NetworkNamespace(name: name, path: path, fd: fd)
    }

    public static func open(pid: Int32) throws(KernelError) -> NetworkNamespace {
        try open(path: "/proc/\(pid)/ns/net")
    }

    /// The namespace the process started in (its main thread's).
    public static func current() throws(KernelError) -> NetworkNamespace {
        try open(path: "/proc/self/ns/net")
    }

    public static func exists(named name: String) -> Bool {
        access("\(runDirectory)/\(name)", F_OK) == 0
    }

    /// Names under /run/netns (what `ip netns list` shows).
    public static func list() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []).sorted()
    }

    /// Processes whose network namespace is the named one (what `ip netns pids` shows): the
    /// namespace file's inode against each /proc/<pid>/ns/net.
    public static func pids(named name: String) -> [Int32] {
        var target = stat()
        guard stat("\(runDirectory)/\(name)", &target) == 0 else { return [] }
        var out: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry) else { continue }
            var st = stat()
            if stat("/proc/\(entry)/ns/net", &st) == 0, st.st_ino == target.st_ino, st.st_dev == target.st_dev { out.append(pid) }
        }
        return out
    }

    // MARK: creating and deleting

    /// Creates a named namespace the way `ip netns add` does: a file under /run/netns with the
    /// new namespace bind-mounted on it, /run/netns itself a shared mount point.
    public static func create(named name: String) throws(KernelError) -> NetworkNamespace {
        try validate(name)
        try prepareRunDirectory()
        let path = "\(runDirectory)/\(name)"
        let created = Glibc.open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        if created < 0 { throw .system(call: "create \(path)", errno: .current) }
        close(created)
        do {
            try onFreshThread { () throws(KernelError) in
                _ = try syscallRetrying("unshare(CLONE_NEWNET)") { meshd_unshare(meshd_CLONE_NEWNET) }
                // /proc/thread-self, not /proc/self: only this thread moved.
                _ = try syscallRetrying("mount --bind \(path)") { meshd_mount_bind("/proc/thread-self/ns/net", path) }
            }
            return try open(named: name)
        } catch {
            _ = meshd_umount_detach(path)
            unlink(path)
            throw error
        }
    }

    /// Removes a named namespace (like `ip netns delete`). The namespace itself lives on while
    /// anything still holds it (an open fd, a socket, a process).
    public static func delete(named name: String) throws(KernelError) {
        try validate(name)
        let path = "\(runDirectory)/\(name)"
        if meshd_umount_detach(path) < 0, Errno.current != .noEntry, Errno.current != .invalidArgument {
            throw .system(call: "umount \(path)", errno: .current)
        }
        if unlink(path) < 0, Errno.current != .noEntry {
            throw .system(call: "unlink \(path)", errno: .current)
        }
    }

    private static func validate(_ name: String) throws(KernelError) {
        guard !name.isEmpty, name.utf8.count < 256, name != ".", name != "..",
            !name.contains("/"), !name.contains("\0")
        else {
            throw .invalidArgument("network namespace name \"\(name)\"")
        }
    }

    private static func prepareRunDirectory() throws(KernelError) {
        if mkdir(runDirectory, 0o755) < 0, Errno.current != .exists {
            throw .system(call: "mkdir \(runDirectory)", errno: .current)
        }
        // As iproute2: make it shared so mounts propagate; if it is not a mount point yet, bind it onto itself first.
        if meshd_mount_make_shared_rec(runDirectory) < 0 {
            guard Errno.current == .invalidArgument else { throw .system(call: "mount --make-shared \(runDirectory)", errno: .current) }
            _ = try syscallRetrying("mount --bind \(runDirectory)") { meshd_mount_bind_self_rec(runDirectory) }
            _ = try syscallRetrying("mount --make-shared \(runDirectory)") { meshd_mount_make_shared_rec(runDirectory) }
        }
    }

    // MARK: running inside

    /// Runs `body` on a new thread that has entered this namespace. Blocks the caller until it
    /// returns; call from a dedicated thread or accept a short block (creating a socket, writing
    /// a sysctl). Never spans an `await`.
    public func run<T>(_ body: () throws(KernelError) -> T) throws(KernelError) -> T {
        let nsfd = fd
        let name = description
        return try Self.onFreshThread { () throws(KernelError) -> T in
            _ = try syscallRetrying("setns(\(name))") { meshd_setns(nsfd, meshd_CLONE_NEWNET) }
            return try body()
        }
    }

    /// Opens a long-lived netlink socket inside this namespace.
    public func openNetlink(protocol proto: Int32, options: NetlinkSocket.Options = .init()) throws(KernelError) -> NetlinkSocket {
        try run { () throws(KernelError) in try NetlinkSocket(protocol: proto, options: options) }
    }

    /// Writes a sysctl of this namespace, e.g. `net.ipv4.ip_forward` = "1".
    public func setSysctl(_ key: String, _ value: String) throws(KernelError) {
        let path = try Self.sysctlPath(key)
        try run { () throws(KernelError) in
            let fd = try syscallRetrying("open(\(path))") { Glibc.open(path, O_WRONLY | O_CLOEXEC) }
            defer { close(fd) }
            let bytes = Array((value + "\n").utf8)
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw .system(call: "write \(key)=\(value)", errno: .current) }
        }
    }

    /// Reads a sysctl of this namespace, without the trailing newline.
    public func sysctl(_ key: String) throws(KernelError) -> String {
        let path = try Self.sysctlPath(key)
        return try run { () throws(KernelError) in
            let fd = try syscallRetrying("open(\(path))") { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
            defer { close(fd) }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw .system(call: "read \(key)", errno: .current) }
            return String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// `net.ipv4.conf.eth0.rp_filter` → /proc/sys/net/ipv4/conf/eth0/rp_filter. As in sysctl(8), a
    /// `/` inside a component stands for a dot in a device name: `net.ipv4.conf.eth0/10.rp_filter`
    /// is eth0.10's. Only net.* keys: the others are not per namespace, and a test must never
    /// change the host's.
    static func sysctlPath(_ key: String) throws(KernelError) -> String {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map { $0.replacingOccurrences(of: "/", with: ".") }
        guard parts.count >= 3, parts[0] == "net",
            parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.utf8.contains(0) })
        else {
            throw .invalidArgument("sysctl key \"\(key)\" (only net.* keys are per namespace)")
        }
        return "/proc/sys/" + parts.joined(separator: "/")
    }

    /// Runs `body` on a brand-new OS thread and joins it. The thread ends with the body, so a
    /// namespace it entered can never leak into a thread that runs anything else; after the join
    /// nothing the thread held is still alive, which is what lets `body` be non-escaping.
    static func onFreshThread<T>(_ body: () throws(KernelError) -> T) throws(KernelError) -> T {
        try withoutActuallyEscaping(body) { (escapable) throws(KernelError) -> T in
            let job = ThreadJob<T>(escapable)
            var attr = pthread_attr_t()
            pthread_attr_init(&attr)
            pthread_attr_setstacksize(&attr, 1 << 20)
            defer { pthread_attr_destroy(&attr) }
            var tid = pthread_t()
            let rc = pthread_create(
                &tid, &attr,
                { arg in
                    let job = Unmanaged<AnyObject>.fromOpaque(arg!).takeRetainedValue() as! ThreadRunnable
                    job.runOnce()
                    return nil
                }, Unmanaged.passRetained(job as AnyObject).toOpaque())
            if rc != 0 { throw .system(call: "pthread_create", errno: Errno(rc)) }
            pthread_join(tid, nil)
            return try job.take()
        }
    }
}

private protocol ThreadRunnable: AnyObject { func runOnce() }

/// The work and result of one `onFreshThread` call. Only one thread touches it at a time: the
/// helper until it exits, then the caller after pthread_join.
private final class ThreadJob<T>: ThreadRunnable {
    private var body: (() throws(KernelError) -> T)?
    private var outcome: Result<T, KernelError>?
    init(_ body: @escaping () throws(KernelError) -> T) { self.body = body }
    func runOnce() {
        guard let b = body else { return }
        outcome = Result { () throws(KernelError) in try b() }
    }
    func take() throws(KernelError) -> T {
        body = nil
        return try outcome!.get()
    }
}
