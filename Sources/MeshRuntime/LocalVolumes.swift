import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// The node's `local` volumes, as dockerd keeps them: `<dataRoot>/volumes/<name>/_data` is what
/// a container sees, `<name>/volume.json` what `docker volume inspect` shows. A volume belongs
/// to this node only (swarmkit never shares one between nodes) and outlives the tasks that use
/// it; a task's anonymous volumes go with the task.
public struct LocalVolumes: Sendable {
    public let root: String

    public struct Volume: Sendable, Equatable, Codable {
        public var name: String
        /// RFC 3339, when it was made.
        public var createdAt: String
        public var labels: [String: String]
        public var options: [String: String]
        /// Made for one task's mount with no source: removed with that task.
        public var anonymous: Bool
        /// The image's files were copied in (or there was nothing to copy): Docker seeds an empty
        /// volume on its first mount only. Optional: records written before it existed.
        public var seeded: Bool?
        /// A copy began and has not finished (the daemon died, or it failed): the next mount empties
        /// the volume and copies again, rather than run on half the files.
        public var seeding: Bool?
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case invalidName(String)
        case io(op: String, path: String, errno: Int32)
        case notFound(String)
        case copy(from: String, output: String)
        public var description: String {
            switch self {
            case .invalidName(let n):
                "\"\(n)\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
            case .io(let op, let p, let e): "volume \(op) \(p): \(String(cString: strerror(e)))"
            case .notFound(let n): "get \(n): no such volume"
            case .copy(let from, let output): "copying the image's \(from) into the new volume: \(output)"
            }
        }
    }

    public init(dataRoot: String) { root = dataRoot + "/volumes" }

    public func directory(_ name: String) -> String { "\(root)/\(name)" }
    /// What a container mounts.
    public func dataPath(_ name: String) -> String { "\(root)/\(name)/_data" }

    /// dockerd's rule for names (its `local` driver's).
    public static func isValidName(_ name: String) -> Bool {
        guard name.utf8.count >= 2, let first = name.unicodeScalars.first, first.isASCII, CharacterSet.alphanumerics.contains(first)
        else { return false }
        return name.unicodeScalars.allSatisfy {
            $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_.-".unicodeScalars.contains($0))
        }
    }

    /// Makes `name` unless it exists; returns it and whether this call made it. The volume is
    /// built under a temporary name, record included, and renamed into place: a crash leaves
    /// either no volume or a whole one, and of two makers exactly one wins the rename.
    @discardableResult
    public func create(_ name: String, labels: [String: String] = [:], options: [String: String] = [:], anonymous: Bool = false)
        throws(Failure) -> (volume: Volume, created: Bool)
    {
        guard Self.isValidName(name) else { throw .invalidName(name) }
        if let v = inspect(name) { return (v, false) }
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .io(op: "mkdir", path: root, errno: EIO)
        }
        let tmp = "\(root)/.new-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        guard mkdir(tmp, 0o700) == 0 else { throw .io(op: "mkdir", path: tmp, errno: errno) }
        guard mkdir(tmp + "/_data", 0o755) == 0 else { throw .io(op: "mkdir", path: tmp + "/_data", errno: errno) }
        let v = Volume(
            name: name, createdAt: Date().formatted(.iso8601), labels: labels, options: options, anonymous: anonymous, seeded: nil,
            seeding: nil)
        try write(v, to: tmp)
        if rename(tmp, directory(name)) != 0 {
            // Someone else made it first (the target exists and is not empty): theirs stands.
            guard errno == EEXIST || errno == ENOTEMPTY, let theirs = inspect(name) else {
                throw .io(op: "rename", path: directory(name), errno: errno)
            }
            return (theirs, false)
        }
        return (v, true)
    }

    func write(_ v: Volume, to dir: String) throws(Failure) {
        let data = (try? JSONEncoder().encode(v)) ?? Data()
        let tmp = dir + "/volume.json.tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data, attributes: [.posixPermissions: 0o600]),
            rename(tmp, dir + "/volume.json") == 0
        else { throw .io(op: "write", path: dir + "/volume.json", errno: errno) }
    }

    public func inspect(_ name: String) -> Volume? {
        guard Self.isValidName(name), let data = FileManager.default.contents(atPath: directory(name) + "/volume.json") else { return nil }
        return try? JSONDecoder().decode(Volume.self, from: data)
    }

    public func list() -> [Volume] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted().compactMap(inspect)
    }

    public func remove(_ name: String) throws(Failure) {
        guard inspect(name) != nil else { throw .notFound(name) }
        // Renamed out of the way first: a half-removed volume is never seen under its name.
        let doomed = "\(root)/.removing-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        if rename(directory(name), doomed) != 0 { throw .io(op: "remove", path: directory(name), errno: errno) }
        try? FileManager.default.removeItem(atPath: doomed)
    }

    /// A volume not seeded yet gets what the image has at the mount's target, owners and modes
    /// kept (Docker's copy-up), if it is empty (a volume that already holds data is never written
    /// over); then it is marked seeded. A copy that did not finish is redone from empty at the
    /// next mount. `cp -a` copies, as it knows every file type and attribute. The source is
    /// resolved inside the image (`resolveInRoot`): an image's symlink never leads the copy to
    /// the host's files. Blocking: callers run it off the cooperative pool.
    public func seed(_ name: String, rootfs: String, target: String) throws(Failure) {
        guard var v = inspect(name), v.seeded != true else { return }
        let data = dataPath(name)
        if v.seeding == true {
            for e in (try? FileManager.default.contentsOfDirectory(atPath: data)) ?? [] {
                try? FileManager.default.removeItem(atPath: data + "/" + e)
            }
        }
        let empty = ((try? FileManager.default.contentsOfDirectory(atPath: data)) ?? []).isEmpty
        var st = stat()
        if empty, let source = Self.resolveInRoot(rootfs, target), lstat(source, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            v.seeding = true
            try write(v, to: directory(name))
            // The volume's root takes the image directory's owner and mode (redis's /data is redis's).
            _ = chown(data, st.st_uid, st.st_gid)
            _ = chmod(data, st.st_mode & 0o7777)
            let out: Spawn.Output
            do { out = try Spawn.run(["cp", "-a", "--", source + "/.", data + "/"]) } catch {
                throw .copy(from: target, output: "\(error)")
            }
            guard out.state == .exited(0) else { throw .copy(from: target, output: out.stderr) }
        }
        v.seeded = true
        v.seeding = nil
        try write(v, to: directory(name))
    }

    /// `path` (absolute, inside the image) as a host path under `rootfs` with every symlink on the
    /// way resolved as the container would see it: absolute links from the rootfs, `..` never above
    /// it. nil when a component is missing or links loop.
    public static func resolveInRoot(_ rootfs: String, _ path: String) -> String? {
        var resolved: [String] = []
        var pending = path.split(separator: "/").map(String.init).reversed() as [String]
        var links = 0
        while let component = pending.popLast() {
            if component.isEmpty || component == "." { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let candidate = rootfs + "/" + (resolved + [component]).joined(separator: "/")
            var st = stat()
            guard lstat(candidate, &st) == 0 else { return nil }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                links += 1
                guard links <= 40 else { return nil }
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(candidate, &buffer, buffer.count - 1)
                guard n > 0 else { return nil }
                let link = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if link.hasPrefix("/") { resolved = [] }
                pending.append(contentsOf: link.split(separator: "/").map(String.init).reversed())
                continue
            }
            resolved.append(component)
        }
        return rootfs + (resolved.isEmpty ? "" : "/" + resolved.joined(separator: "/"))
    }
}
