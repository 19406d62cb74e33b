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

    /// Makes `name` unless it exists; returns it and whether this call made it. The directory is
    /// made with mkdir, so of two tasks that need a new volume at once exactly one makes (and
    /// seeds) it.
    @discardableResult
    public func create(_ name: String, labels: [String: String] = [:], options: [String: String] = [:], anonymous: Bool = false)
        throws(Failure) -> (volume: Volume, created: Bool)
    {
        guard Self.isValidName(name) else { throw .invalidName(name) }
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .io(op: "mkdir", path: root, errno: EIO)
        }
        let dir = directory(name)
        if mkdir(dir, 0o700) != 0 {
            guard errno == EEXIST else { throw .io(op: "mkdir", path: dir, errno: errno) }
            // Another task made it an instant ago and may not have written its record yet.
            for _ in 0..<50 {
                if let v = inspect(name) { return (v, false) }
                usleep(10_000)
            }
            throw .notFound(name)
        }
        if mkdir(dataPath(name), 0o755) != 0 && errno != EEXIST { throw .io(op: "mkdir", path: dataPath(name), errno: errno) }
        let v = Volume(
            name: name, createdAt: Date().formatted(.iso8601), labels: labels, options: options, anonymous: anonymous)
        let data = (try? JSONEncoder().encode(v)) ?? Data()
        guard FileManager.default.createFile(atPath: dir + "/volume.json", contents: data, attributes: [.posixPermissions: 0o600])
        else { throw .io(op: "write", path: dir + "/volume.json", errno: errno) }
        return (v, true)
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

    /// A new volume starts with what the image has at the mount's target, owners and modes kept
    /// (Docker's copy-up); `cp -a` does it, as it knows every file type and attribute.
    public func seed(_ name: String, from source: String) throws(Failure) {
        var st = stat()
        guard lstat(source, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return }
        let target = dataPath(name)
        // The volume's root takes the image directory's owner and mode (redis's /data is redis's).
        _ = chown(target, st.st_uid, st.st_gid)
        _ = chmod(target, st.st_mode & 0o7777)
        let out: Spawn.Output
        do { out = try Spawn.run(["cp", "-a", "--", source + "/.", target + "/"]) } catch {
            throw .copy(from: source, output: "\(error)")
        }
        guard out.state == .exited(0) else { throw .copy(from: source, output: out.stderr) }
    }
}
