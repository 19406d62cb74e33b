import CMeshXattr
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Writes a layer's tar entries into a directory. Every path is resolved inside that directory:
/// `..` that climbs out is refused, and symlinks met on the way (absolute ones included) are
/// followed as if the directory were `/`, so a layer can never write outside it.
public struct LayerUnpacker {
    /// How whiteouts are kept. `.overlay`: each layer in a directory of its own that overlayfs
    /// stacks, so `.wh.x` becomes a 0/0 character device `x` and `.wh..wh..opq` the
    /// `trusted.overlay.opaque=y` xattr (what overlayfs itself writes). `.apply`: layers unpacked
    /// over one another into one tree, so a whiteout deletes what the lower layers put there.
    public enum WhiteoutMode: Sendable { case overlay, apply }

    public struct Stats: Sendable, Equatable {
        public var entries = 0
        public var bytes: Int64 = 0
        public var whiteouts = 0
        public var opaques = 0
        public var skippedDevices = 0
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case escapes(String)
        case notADirectory(String)
        case tooManySymlinks(String)
        case hardlinkTargetMissing(path: String, target: String)
        case system(op: String, path: String, errno: Int32)

        public var description: String {
            switch self {
            case .escapes(let p): "layer entry \"\(p)\" points outside the root (refused)"
            case .notADirectory(let p): "layer entry \"\(p)\": a parent is not a directory"
            case .tooManySymlinks(let p): "layer entry \"\(p)\": too many levels of symbolic links"
            case .hardlinkTargetMissing(let p, let t): "layer hardlink \"\(p)\" → \"\(t)\": no such file in this layer or below"
            case .system(let op, let p, let e): "\(op) \(p): \(String(cString: strerror(e)))"
            }
        }
    }

    public let root: String
    public let mode: WhiteoutMode
    /// Lower layer directories, top first: where a hardlink to a file of an earlier layer is found
    /// in `.overlay` mode (the file is copied up, as overlayfs would on write).
    public let lowerDirs: [String]
    let asRoot: Bool

    public init(root: String, mode: WhiteoutMode, lowerDirs: [String] = []) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        self.mode = mode
        self.lowerDirs = lowerDirs
        asRoot = geteuid() == 0
    }

    static let whiteoutPrefix = ".wh."
    static let opaqueMarker = ".wh..wh..opq"
    static let maxSymlinks = 40

    @discardableResult
    public func unpack(_ reader: TarReader) throws -> Stats {
        var stats = Stats()
        var written = Set<String>()
        // Directory modes and times go on last: a read-only directory must still take its entries.
        var directories: [(path: String, entry: TarEntry)] = []
        while let entry = try reader.next() {
            stats.entries += 1
            let comps = try Self.clean(entry.path)
            guard let base = comps.last else { continue }  // "./": the root itself
            let parentComps = Array(comps.dropLast())
            let rel = comps.joined(separator: "/")

            if base.hasPrefix(Self.whiteoutPrefix) {
                let parent = try resolveDirectory(parentComps, entry: entry.path, create: true)
                if base == Self.opaqueMarker {
                    stats.opaques += 1
                    try opaque(parent, relative: parentComps.joined(separator: "/"), keep: written)
                } else if base.hasPrefix(Self.whiteoutPrefix + Self.whiteoutPrefix) {
                    // Other aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not content.
                } else {
                    // `.wh.`, `.wh..` and `.wh...` would name the directory itself or its parent:
                    // a whiteout may only hide an entry of its own directory.
                    let hidden = String(base.dropFirst(Self.whiteoutPrefix.count))
                    guard !hidden.isEmpty, hidden != ".", hidden != "..", !hidden.contains("/") else {
                        throw Failure.escapes(entry.path)
                    }
                    stats.whiteouts += 1
                    try whiteout(parent + "/" + hidden)
                }
                continue
            }

            let parent = try resolveDirectory(parentComps, entry: entry.path, create: true)
            let path = parent + "/" + base
            written.insert(rel)
            // Replace what is there, except a directory by a directory (it keeps its content).
            var st = stat()
            if lstat(path, &st) == 0 {
                let isDir = (st.st_mode & S_IFMT) == S_IFDIR
                if !(isDir && entry.kind == .directory) { try remove(path) }
            }
            switch entry.kind {
            case .directory:
                if mkdir(path, 0o700) != 0 && errno != EEXIST { throw Failure.system(op: "mkdir", path: path, errno: errno) }
                try own(path, entry)
                directories.append((path, entry))
                try setXattrs(path, entry)
                continue
            case .file:
                stats.bytes += try writeFile(path, entry, reader)
            case .symlink:
                if symlink(entry.linkTarget, path) != 0 { throw Failure.system(op: "symlink", path: path, errno: errno) }
                try own(path, entry)
            case .hardlink:
                try hardlink(path, entry)
            case .characterDevice, .blockDevice, .fifo:
                let type: mode_t = entry.kind == .fifo ? S_IFIFO : entry.kind == .blockDevice ? S_IFBLK : S_IFCHR
                if mknod(path, type | mode_t(entry.mode & 0o777), Self.makedev(entry.devMajor, entry.devMinor)) != 0 {
                    // Without CAP_MKNOD (not root), devices are skipped as rootless Docker does.
                    if !asRoot && errno == EPERM && entry.kind != .fifo {
                        stats.skippedDevices += 1
                        continue
                    }
                    throw Failure.system(op: "mknod", path: path, errno: errno)
                }
                try own(path, entry)
                if chmod(path, mode_t(entry.mode)) != 0 { throw Failure.system(op: "chmod", path: path, errno: errno) }
            }
            try setXattrs(path, entry)
            if entry.kind != .hardlink { setTime(path, entry.mtime) }
        }
        try reader.drain()
        for (path, entry) in directories.reversed() {
            if chmod(path, mode_t(entry.mode)) != 0 { throw Failure.system(op: "chmod", path: path, errno: errno) }
            setTime(path, entry.mtime)
        }
        return stats
    }

    // MARK: paths

    /// The entry's path as components under the root: "." and empty parts dropped, ".." applied,
    /// and refused if it climbs above the root.
    static func clean(_ path: String) throws -> [String] {
        var out: [String] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                guard !out.isEmpty else { throw Failure.escapes(path) }
                out.removeLast()
                continue
            }
            out.append(String(c))
        }
        return out
    }

    /// The host path of directory `comps`, following symlinks inside the root (an absolute target
    /// starts again at the root, `..` stops at it) and creating missing directories (0755, as
    /// Docker does) when `create`.
    func resolveDirectory(_ comps: [String], entry: String, create: Bool, under top: String? = nil) throws -> String {
        // `top`: another tree to resolve in (a lower layer, for a hardlink's copy-up); its symlinks
        // resolve inside it exactly as this layer's resolve inside `root`.
        let root = top ?? self.root
        var resolved: [String] = []
        var pending = comps[...]
        var links = 0
        while let c = pending.popFirst() {
            if c == "." || c.isEmpty { continue }
            if c == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let path = root + "/" + (resolved + [c]).joined(separator: "/")
            var st = stat()
            if lstat(path, &st) != 0 {
                guard errno == ENOENT, create else { throw Failure.system(op: "lstat", path: path, errno: errno) }
                if mkdir(path, 0o755) != 0 { throw Failure.system(op: "mkdir", path: path, errno: errno) }
                resolved.append(c)
                continue
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                resolved.append(c)
            case S_IFLNK:
                links += 1
                guard links <= Self.maxSymlinks else { throw Failure.tooManySymlinks(entry) }
                let target = try Self.readLink(path)
                if target.hasPrefix("/") { resolved = [] }
                pending = (target.split(separator: "/").map(String.init) + pending)[...]
            default:
                throw Failure.notADirectory(entry)
            }
        }
        return resolved.isEmpty ? root : root + "/" + resolved.joined(separator: "/")
    }

    static func readLink(_ path: String) throws -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buf, buf.count - 1)
        guard n >= 0 else { throw Failure.system(op: "readlink", path: path, errno: errno) }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: entries

    func writeFile(_ path: String, _ entry: TarEntry, _ reader: TarReader) throws -> Int64 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure.system(op: "create", path: path, errno: errno) }
        defer { close(fd) }
        var total: Int64 = 0
        while true {
            let chunk = try reader.readData()
            if chunk.isEmpty { break }
            var off = 0
            while off < chunk.count {
                let n = chunk[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Failure.system(op: "write", path: path, errno: errno)
                }
                off += n
            }
            total += Int64(chunk.count)
        }
        // chown before chmod: chown clears setuid/setgid bits.
        if asRoot && fchown(fd, uid_t(entry.uid), gid_t(entry.gid)) != 0 { throw Failure.system(op: "chown", path: path, errno: errno) }
        if fchmod(fd, mode_t(entry.mode)) != 0 { throw Failure.system(op: "chmod", path: path, errno: errno) }
        return total
    }

    func own(_ path: String, _ entry: TarEntry) throws {
        guard asRoot else { return }
        if lchown(path, uid_t(entry.uid), gid_t(entry.gid)) != 0 { throw Failure.system(op: "chown", path: path, errno: errno) }
    }

    func hardlink(_ path: String, _ entry: TarEntry) throws {
        let comps = try Self.clean(entry.linkTarget)
        guard let base = comps.last else { throw Failure.escapes(entry.linkTarget) }
        // The target's directory may not exist in this layer at all (overlay form: it is below).
        var inLayer: String?
        do {
            inLayer = try resolveDirectory(Array(comps.dropLast()), entry: entry.path, create: false) + "/" + base
        } catch Failure.system("lstat", _, ENOENT) {
            inLayer = nil
        }
        if let target = inLayer {
            if link(target, path) == 0 { return }
            guard errno == ENOENT else { throw Failure.system(op: "link", path: path, errno: errno) }
        }
        guard mode == .overlay else { throw Failure.hardlinkTargetMissing(path: entry.path, target: entry.linkTarget) }
        // A link to a file of a lower layer: overlayfs cannot link across layers, so copy it up.
        // Resolved inside each lower layer, never by the host's path walk: a lower layer's symlink
        // (`x -> /etc`) must not turn `x/shadow` into the host's file.
        for lower in lowerDirs {
            let directory: String
            do {
                directory = try resolveDirectory(Array(comps.dropLast()), entry: entry.path, create: false, under: lower)
            } catch Failure.system("lstat", _, ENOENT) {
                continue
            } catch Failure.notADirectory(_) {
                continue
            }
            let candidate = directory + "/" + base
            var st = stat()
            guard lstat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            try copyFile(candidate, to: path, mode: st.st_mode & 0o7777, uid: st.st_uid, gid: st.st_gid)
            return
        }
        throw Failure.hardlinkTargetMissing(path: entry.path, target: entry.linkTarget)
    }

    func copyFile(_ from: String, to: String, mode: mode_t, uid: uid_t, gid: gid_t) throws {
        let src = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard src >= 0 else { throw Failure.system(op: "open", path: from, errno: errno) }
        defer { close(src) }
        let dst = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard dst >= 0 else { throw Failure.system(op: "create", path: to, errno: errno) }
        defer { close(dst) }
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw Failure.system(op: "read", path: from, errno: errno) }
            if n == 0 { break }
            var off = 0
            while off < n {
                let w = buf[off..<n].withUnsafeBytes { write(dst, $0.baseAddress, $0.count) }
                guard w > 0 else { throw Failure.system(op: "write", path: to, errno: errno) }
                off += w
            }
        }
        if asRoot && fchown(dst, uid, gid) != 0 { throw Failure.system(op: "chown", path: to, errno: errno) }
        if fchmod(dst, mode) != 0 { throw Failure.system(op: "chmod", path: to, errno: errno) }
    }

    func whiteout(_ path: String) throws {
        switch mode {
        case .apply:
            var st = stat()
            if lstat(path, &st) == 0 { try remove(path) }
        case .overlay:
            var st = stat()
            if lstat(path, &st) == 0 { try remove(path) }
            // overlayfs' whiteout: a character device 0/0 hides the name in the layers below.
            if mknod(path, S_IFCHR, 0) != 0 { throw Failure.system(op: "mknod (whiteout)", path: path, errno: errno) }
        }
    }

    func opaque(_ dir: String, relative: String, keep written: Set<String>) throws {
        switch mode {
        case .overlay:
            // Hides everything below in this directory; this layer's own entries stay.
            let value: [UInt8] = [UInt8(ascii: "y")]
            if lsetxattr(dir, "trusted.overlay.opaque", value, 1, 0) != 0 {
                throw Failure.system(op: "setxattr trusted.overlay.opaque", path: dir, errno: errno)
            }
        case .apply:
            // Remove what lower layers left here; keep what this layer already wrote.
            let children = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            for child in children {
                let rel = relative.isEmpty ? child : relative + "/" + child
                if !written.contains(rel) { try remove(dir + "/" + child) }
            }
        }
    }

    func remove(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            // Make it writable first: a layer may have left it 0555.
            _ = chmod(path, 0o700)
            let children = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            for c in children { try remove(path + "/" + c) }
            if rmdir(path) != 0 { throw Failure.system(op: "rmdir", path: path, errno: errno) }
        } else if unlink(path) != 0 {
            throw Failure.system(op: "unlink", path: path, errno: errno)
        }
    }

    func setXattrs(_ path: String, _ entry: TarEntry) throws {
        for (name, value) in entry.xattrs.sorted(by: { $0.key < $1.key }) {
            if lsetxattr(path, name, value, value.count, 0) != 0 {
                // A file system or user that cannot hold it (user.* on some, trusted.* without root).
                if errno == ENOTSUP || errno == EPERM { continue }
                throw Failure.system(op: "setxattr \(name)", path: path, errno: errno)
            }
        }
    }

    func setTime(_ path: String, _ mtime: Int64) {
        var times = [timespec(tv_sec: Int(mtime), tv_nsec: 0), timespec(tv_sec: Int(mtime), tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
    }

    /// glibc's makedev encoding (sys/sysmacros.h is a macro, not importable).
    static func makedev(_ major: UInt32, _ minor: UInt32) -> dev_t {
        let ma = UInt64(major), mi = UInt64(minor)
        return dev_t(((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff))
    }
}
