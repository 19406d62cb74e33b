import Foundation
import MeshCluster

/// What a node keeps about its membership in `<data-root>/node.json` (mode 0600: it holds the node's
/// private key), so a restarted daemon rejoins with no manual step.
public struct NodeRecord: Codable, Sendable, Equatable {
    public var nodeID: String
    public var hostname: String
    public var role: NodeRole
    public var clusterID: String
    /// The underlay address others reach this node at (gossip, VXLAN, 2377 for managers).
    public var advertiseAddr: String
    /// Where a manager's 2377 listener binds (`host:port`).
    public var listenAddr: String
    public var dataPathPort: UInt16
    /// Managers' `host:port` for the control channel.
    public var managers: [String]
    public var certificatePEM: String
    public var keyPEM: String
    public var caPEM: String
    /// Gossip AES keys, hex, primary first.
    public var gossipKeys: [String]
    /// A manager of a swarm on etcd: the store its managers share (`etcd://…`); nil on SQLite and on workers.
    public var store: String?
    /// A manager of an autolocked swarm: `keyPEM` sealed with the unlock key (`keyPEM` is then empty
    /// in the file), so a restart does nothing until `swarm unlock`.
    public var sealedKeyPEM: String?
    /// Also sealed with the key before a rotation, until an unlock settles (as the store's CA key).
    public var previousSealedKeyPEM: String?

    static let keyPurpose = "manager private key"

    /// As the file keeps it: with `key`, the private key sealed (and with `previous` too);
    /// without, in the open.
    public func sealed(with key: UnlockKey?, previous: UnlockKey? = nil) -> NodeRecord {
        var r = self
        if let key {
            r.sealedKeyPEM = key.seal(keyPEM, purpose: Self.keyPurpose)
            r.previousSealedKeyPEM = previous.map { $0.seal(keyPEM, purpose: Self.keyPurpose) }
            r.keyPEM = ""
        } else {
            r.sealedKeyPEM = nil
            r.previousSealedKeyPEM = nil
        }
        return r
    }

    /// The record with its private key opened by `key` (unchanged if it was not sealed); the wrong
    /// key is `.invalidArgument` in swarmkit's words.
    public func opened(with key: UnlockKey) throws(ClusterError) -> NodeRecord {
        guard let sealed = sealedKeyPEM else { return self }
        var r = self
        do { r.keyPEM = try key.open(sealed, purpose: Self.keyPurpose) } catch {
            guard let previous = previousSealedKeyPEM else { throw error }
            r.keyPEM = try key.open(previous, purpose: Self.keyPurpose)
        }
        r.sealedKeyPEM = nil
        r.previousSealedKeyPEM = nil
        return r
    }

    /// node.json read, changed and written as one step under an exclusive lock on
    /// `node.json.lock`: the daemon (sealing) and the node plane (managers, gossip keys) both
    /// write it, and a read-modify-write of one must not undo the other's.
    public static func update(dataRoot: String, _ change: (inout NodeRecord) throws -> Void) throws {
        let lockPath = "\(dataRoot)/node.json.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw DaemonError.io("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw DaemonError.io("cannot lock \(lockPath): \(String(cString: strerror(errno)))") }
        defer { flock(fd, LOCK_UN) }
        guard var record = try load(dataRoot: dataRoot) else { return }
        let before = record
        try change(&record)
        if record != before { try record.save(dataRoot: dataRoot) }
    }

    public static func path(dataRoot: String) -> String { "\(dataRoot)/node.json" }

    public static func load(dataRoot: String) throws -> NodeRecord? {
        let path = path(dataRoot: dataRoot)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try JSONDecoder().decode(NodeRecord.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    public func save(dataRoot: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        try DataRoot.writePrivate(data, to: Self.path(dataRoot: dataRoot))
    }

    public static func remove(dataRoot: String) {
        try? FileManager.default.removeItem(atPath: path(dataRoot: dataRoot))
    }
}

public enum DaemonError: Error, Sendable, CustomStringConvertible {
    case io(String)
    case join(String)
    case config(String)
    public var description: String {
        switch self {
        case .io(let s), .join(let s), .config(let s): return s
        }
    }
}
