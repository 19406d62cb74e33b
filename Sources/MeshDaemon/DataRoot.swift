import Foundation

/// The data root holds the node's secrets: `node.json` (the node's private key, its certificate, the gossip
/// keys) and, on a manager, `cluster.sqlite` (the CA's private key, the gossip keys, both join tokens). So the
/// directory is 0700 and those files 0600, each created with that mode rather than narrowed afterwards.
///
/// At start a mode wider than that is repaired, with a warning naming the path and the old mode, rather than
/// refused: the only ones who can widen these modes are root and the owner, refusing to start would leave the
/// secrets exposed until someone acts, and the warning tells the operator to treat the keys as read (rotate
/// them). What cannot be repaired safely is refused: a data root that is not a directory, or a secret file that
/// is a symlink, not a regular file, or owned by another user (whoever owns it may have replaced its contents).
public enum DataRoot {
    public static let directoryMode: mode_t = 0o700
    public static let privateFileMode: mode_t = 0o600

    /// Every file under the data root that holds keys or tokens, SQLite's companions of the store included
    /// (the rollback journal today; the WAL and shared-memory files should the store move to WAL).
    public static let privateFiles = [
        "node.json", "node.json.tmp", "cluster.sqlite", "cluster.sqlite-journal", "cluster.sqlite-wal", "cluster.sqlite-shm",
    ]

    /// A mode that was wider than allowed and has been narrowed.
    public struct Repair: Sendable, Equatable, CustomStringConvertible {
        public var path: String
        public var oldMode: mode_t
        public var newMode: mode_t
        public var description: String {
            "\(path) was mode \(String(oldMode, radix: 8)), which lets other users read it; set to \(String(newMode, radix: 8))"
        }
    }

    /// Makes the data root if it is missing (parents as the umask says, the root itself 0700), then checks it and
    /// every secret file in it. Returns what it repaired; the daemon logs each as a warning.
    @discardableResult
    public static func secure(_ root: String) throws(DaemonError) -> [Repair] {
        var repairs: [Repair] = []
        if let r = try secureDirectory(root) { repairs.append(r) }
        for name in privateFiles {
            if let r = try securePrivateFile("\(root)/\(name)") { repairs.append(r) }
        }
        return repairs
    }

    static func secureDirectory(_ root: String) throws(DaemonError) -> Repair? {
        var st = stat()
        if stat(root, &st) != 0 {
            guard errno == ENOENT else { throw .io("cannot stat data root \(root): \(String(cString: strerror(errno)))") }
            let parent = (root as NSString).deletingLastPathComponent
            if !parent.isEmpty {
                do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
                    throw .io("cannot create \(parent): \(error)")
                }
            }
            // mkdir with the final mode: there is no moment at which the directory is open to others.
            guard mkdir(root, directoryMode) == 0 || errno == EEXIST else {
                throw .io("cannot create data root \(root): \(String(cString: strerror(errno)))")
            }
            guard stat(root, &st) == 0 else { throw .io("cannot stat data root \(root): \(String(cString: strerror(errno)))") }
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw .config("data root \(root) is not a directory") }
        guard st.st_uid == geteuid() else {
            throw .config("data root \(root) belongs to uid \(st.st_uid), not to this daemon's uid \(geteuid())")
        }
        return try narrow(root, mode: st.st_mode & 0o7777, to: directoryMode)
    }

    static func securePrivateFile(_ path: String) throws(DaemonError) -> Repair? {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            guard errno == ENOENT else { throw .io("cannot stat \(path): \(String(cString: strerror(errno)))") }
            return nil
        }
        guard st.st_mode & S_IFMT == S_IFREG else { throw .config("\(path) holds secrets but is not a regular file (a symlink?)") }
        guard st.st_uid == geteuid() else { throw .config("\(path) holds secrets but belongs to uid \(st.st_uid), not \(geteuid())") }
        return try narrow(path, mode: st.st_mode & 0o7777, to: privateFileMode)
    }

    /// Takes away every permission beyond `allowed` (a narrower mode is left as it is).
    private static func narrow(_ path: String, mode: mode_t, to allowed: mode_t) throws(DaemonError) -> Repair? {
        guard mode & ~allowed != 0 else { return nil }
        let repaired = mode & allowed
        guard chmod(path, repaired) == 0 else { throw .io("cannot chmod \(path): \(String(cString: strerror(errno)))") }
        return Repair(path: path, oldMode: mode, newMode: repaired)
    }

    /// Replaces `path` with `data` through a temporary file created 0600 (O_EXCL, so never an existing file or a
    /// planted symlink) and rename(2), so a crash mid-write never leaves half a file and no reader ever sees the
    /// contents under a wider mode.
    public static func writePrivate(_ data: Data, to path: String) throws(DaemonError) {
        let temp = path + ".tmp"
        unlink(temp)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, privateFileMode)
        guard fd >= 0 else { throw .io("cannot create \(temp): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return fsync(fd) == 0
        }
        let failure = String(cString: strerror(errno))
        close(fd)
        guard written else {
            unlink(temp)
            throw .io("cannot write \(temp): \(failure)")
        }
        guard rename(temp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temp)
            throw .io("cannot rename \(temp): \(why)")
        }
    }
}
