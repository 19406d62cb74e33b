import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A task's secrets and configs on the node: a small tmpfs of its own at
/// `<dataRoot>/taskfiles/<task>` (never on disk, as Docker keeps them), one file per reference with
/// its owner and mode, each bound read-only at its target in the container.
struct TaskFiles {
    let directory: String
    static func root(_ dataRoot: String) -> String { dataRoot + "/taskfiles" }

    init(dataRoot: String, taskID: String) { directory = Self.root(dataRoot) + "/" + taskID }

    /// Mounts the tmpfs (once; a relaunch rewrites the files in it) and writes the files; returns
    /// the binds for the runtime spec.
    func write(_ files: [TaskFile]) throws(RuntimeError) -> [RuntimeSpec.Mount] {
        guard !files.isEmpty else { return [] }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .files("task files \(directory): \(error.localizedDescription)")
        }
        if !isMounted {
            let size = files.reduce(0) { $0 + $1.data.count } + 64 * 1024 * files.count
            guard mount("tmpfs", directory, "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=0700,size=\(size)") == 0 else {
                throw .files("task files: mount tmpfs on \(directory): \(String(cString: strerror(errno)))")
            }
        }
        var mounts: [RuntimeSpec.Mount] = []
        for (i, f) in files.enumerated() {
            let path = "\(directory)/\(i)"
            guard let uid = f.uid.isEmpty ? 0 : UInt32(f.uid), let gid = f.gid.isEmpty ? 0 : UInt32(f.gid) else {
                throw .files("\(f.name): File.UID and File.GID must be numeric (got \"\(f.uid)\", \"\(f.gid)\")")
            }
            unlink(path)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw .files("\(f.name): create \(path): \(String(cString: strerror(errno)))") }
            let written = f.data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            let ok = written == f.data.count && fchown(fd, uid, gid) == 0 && fchmod(fd, mode_t(f.mode & 0o7777)) == 0
            let e = errno
            close(fd)
            guard ok else { throw .files("\(f.name): write \(path): \(String(cString: strerror(e)))") }
            mounts.append(.init(destination: f.target, type: "bind", source: path, options: ["rbind", "ro", "rprivate"]))
        }
        return mounts
    }

    var isMounted: Bool {
        var a = stat(), b = stat()
        guard stat(directory, &a) == 0, stat(directory + "/..", &b) == 0 else { return false }
        return a.st_dev != b.st_dev
    }

    /// Unmounted (the data goes with the tmpfs) and the directory removed.
    func remove() {
        if isMounted { _ = umount2(directory, Int32(MNT_DETACH)) }
        if !isMounted { rmdir(directory) }
    }

    /// What a previous life left for tasks this one does not run.
    static func removeLeftovers(dataRoot: String, keeping: Set<String>) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root(dataRoot)) else { return }
        for name in names where !keeping.contains(name) { TaskFiles(dataRoot: dataRoot, taskID: name).remove() }
    }
}
