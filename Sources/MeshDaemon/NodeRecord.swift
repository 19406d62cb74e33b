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

    static let keyPurpose = "manager private key"

    /// As the file keeps it: with `key`, the private key sealed; without, in the open.
    public func sealed(with key: UnlockKey?) -> NodeRecord {
        var r = self
        if let key {
            r.sealedKeyPEM = key.seal(keyPEM, purpose: Self.keyPurpose)
            r.keyPEM = ""
        } else {
            r.sealedKeyPEM = nil
        }
        return r
    }

    /// The record with its private key opened by `key` (unchanged if it was not sealed); the wrong
    /// key is `.invalidArgument` in swarmkit's words.
    public func opened(with key: UnlockKey) throws(ClusterError) -> NodeRecord {
        guard let sealed = sealedKeyPEM else { return self }
        var r = self
        r.keyPEM = try key.open(sealed, purpose: Self.keyPurpose)
        r.sealedKeyPEM = nil
        return r
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
