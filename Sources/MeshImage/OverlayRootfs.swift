#if canImport(Glibc)
    import Glibc
#endif

/// A container's root file system: the image's layers as overlayfs lower directories (read-only,
/// shared by every container of the image) with an upper and work directory of its own, so a
/// container's writes never touch the store.
public struct OverlayRootfs: Sendable, Equatable {
    /// `<container dir>/rootfs`: the merged view, what the runtime spec's root.path names.
    public let path: String
    public let upper: String
    public let work: String
    public let lowerDirs: [String]

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case mount(target: String, options: String, errno: Int32)
        case unmount(target: String, errno: Int32)
        case mkdir(path: String, errno: Int32)
        case tooManyLayers(Int, optionsLength: Int)

        public var description: String {
            switch self {
            case .mount(let t, let o, let e): "mount overlay on \(t) (\(o)): \(String(cString: strerror(e)))"
            case .unmount(let t, let e): "unmount \(t): \(String(cString: strerror(e)))"
            case .mkdir(let p, let e): "mkdir \(p): \(String(cString: strerror(e)))"
            case .tooManyLayers(let n, let l): "\(n) layers make \(l) bytes of overlay options, more than a page"
            }
        }
    }

    public init(containerDirectory: String, lowerDirs: [String]) {
        path = containerDirectory + "/rootfs"
        upper = containerDirectory + "/upper"
        work = containerDirectory + "/work"
        self.lowerDirs = lowerDirs
    }

    /// `lowerdir=top:…:bottom,upperdir=…,workdir=…`
    public var options: String {
        "lowerdir=\(lowerDirs.joined(separator: ":")),upperdir=\(upper),workdir=\(work)"
    }

    /// Makes the directories and mounts the overlay (an overlay needs one lower at least; an
    /// image without layers gets an empty one).
    public func mount() throws {
        for dir in [path, upper, work] {
            if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw Failure.mkdir(path: dir, errno: errno) }
        }
        var lowers = lowerDirs
        if lowers.isEmpty {
            let empty = upper + "-empty-lower"
            if mkdir(empty, 0o755) != 0 && errno != EEXIST { throw Failure.mkdir(path: empty, errno: errno) }
            lowers = [empty]
        }
        let opts = "lowerdir=\(lowers.joined(separator: ":")),upperdir=\(upper),workdir=\(work)"
        // The kernel reads mount data as one page.
        guard opts.utf8.count < 4096 else { throw Failure.tooManyLayers(lowers.count, optionsLength: opts.utf8.count) }
        if Glibc.mount("overlay", path, "overlay", 0, opts) != 0 { throw Failure.mount(target: path, options: opts, errno: errno) }
    }

    /// Unmounts the merged view (the upper directory, the container's writes, stays).
    public func unmount() throws {
        if umount2(path, 0) != 0 && errno != EINVAL { throw Failure.unmount(target: path, errno: errno) }
    }

    public var isMounted: Bool {
        var a = stat(), b = stat()
        guard stat(path, &a) == 0, stat(path + "/..", &b) == 0 else { return false }
        return a.st_dev != b.st_dev
    }
}
