import Foundation
import MeshValues

/// Cluster-wide settings kept in the store (what `GET /swarm` shows, plus the CA and gossip keys).
public struct ClusterSettings: Codable, Sendable, Equatable {
    public var clusterID: String
    public var createdAt: Date
    public var defaultAddrPool: [IPPrefix]
    public var subnetSize: Int
    public var dataPathPort: UInt16
    public var tokens: JoinTokens
    public var caCertificatePEM: String
    /// Secret: the manager's data root only.
    public var caKeyPEM: String
    /// Newest last; nodes accept every listed key so the key can rotate without a gap.
    public var gossipKeys: [GossipKey]
    public var ingressNetworkID: String
    /// In the store of an autolocked swarm: the CA key sealed with the unlock key (`caKeyPEM` is
    /// then empty there). Never set in a manager's memory, where the key is open.
    public var sealedCAKey: String?
    /// The CA key sealed with the key before the last rotation too, until a manager is unlocked
    /// (a crash between the store's and node.json's writes, or a user who never saw the new key,
    /// must not lock the swarm out); an unlock settles on the key it was given.
    public var previousSealedCAKey: String?
    /// The root CA that `swarm ca --rotate` is moving the swarm to, while nodes are renewed under it.
    public var rootRotation: RootRotation?
    /// The key secrets are sealed with, once the CA key they were first sealed under may change (a
    /// root rotation sets it from that key); nil: derived from the CA key, as before any rotation.
    public var secretsKey: String?
    /// `secretsKey` in the store of an autolocked swarm.
    public var sealedSecretsKey: SealedSecret?
}

/// A root rotation under way: the new root, its key, and the new root's certificate signed by the
/// current root's key (cross-signed), which goes with every certificate the new key issues so that a
/// node trusting only the current root still verifies them.
public struct RootRotation: Codable, Sendable, Equatable {
    public var caCertificatePEM: String
    /// Secret; empty in the store of an autolocked swarm, where `sealedKey` holds it.
    public var caKeyPEM: String
    public var crossSignedPEM: String
    public var sealedKey: SealedSecret?

    public init(caCertificatePEM: String, caKeyPEM: String, crossSignedPEM: String) {
        self.caCertificatePEM = caCertificatePEM
        self.caKeyPEM = caKeyPEM
        self.crossSignedPEM = crossSignedPEM
    }
}

/// A secret of the settings as an autolocked swarm's store keeps it: sealed with the unlock key, and
/// with the key before the last rotation until an unlock settles (as the CA key is).
public struct SealedSecret: Codable, Sendable, Equatable {
    public var sealed: String
    public var previous: String?

    init(_ plain: String, key: UnlockKey, previous: UnlockKey?, purpose: String) {
        sealed = key.seal(plain, purpose: purpose)
        self.previous = previous.map { $0.seal(plain, purpose: purpose) }
    }

    func open(with key: UnlockKey, purpose: String) throws(ClusterError) -> String {
        do { return try key.open(sealed, purpose: purpose) } catch {
            guard let previous else { throw error }
            return try key.open(previous, purpose: purpose)
        }
    }
}

/// `swarm init` and manager restart: the steps that make or reload a cluster in a store.
public enum ClusterBootstrap {
    static let settingsKey = "cluster"

    /// Creates the cluster: CA, join tokens, a gossip key, the `ingress` network (10.0.0.0/24 and VNI 4096 with
    /// the default pool) and this node as the leader. Refused if the store already holds a cluster.
    public static func initialize(
        store: any ClusterStore, nodeID: String, hostname: String, advertiseAddr: String,
        defaultAddrPool: [IPPrefix] = [IPPrefix("10.0.0.0/8")!], subnetSize: Int = 24,
        dataPathPort: UInt16 = 4789, now: Date = Date(), unlockKey: UnlockKey? = nil
    ) throws(ClusterError) -> (ClusterSettings, NetworkAllocator) {
        if try store.value(ClusterSettings.self, forKey: settingsKey) != nil {
            throw .failedPrecondition(
                "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.")
        }
        let pool = defaultAddrPool.isEmpty ? [IPPrefix("10.0.0.0/8")!] : defaultAddrPool
        var allocator = try NetworkAllocator(pools: pool, subnetSize: subnetSize)
        let clusterID = ObjectID.make()
        let ca = try ClusterCA.create(clusterID: clusterID, now: now)
        let ingress = try allocator.createNetwork(
            id: ObjectID.make(), request: NetworkRequest(name: "ingress", ingress: true), now: now)
        var me = ClusterNode(
            id: nodeID, hostname: hostname, role: .manager, availability: .active, state: .ready,
            addr: advertiseAddr, managerAddr: "\(advertiseAddr):2377", leader: true, now: now)
        try allocator.allocateNode(&me, networkID: ingress.id)
        let settings = ClusterSettings(
            clusterID: clusterID, createdAt: now, defaultAddrPool: pool, subnetSize: subnetSize,
            dataPathPort: dataPathPort, tokens: JoinTokens(ca: ca), caCertificatePEM: ca.certificatePEM,
            caKeyPEM: ca.keyPEM, gossipKeys: [GossipKey.generate()], ingressNetworkID: ingress.id)
        let node = me
        // An autolocked swarm's CA key is sealed from its first write: never in the open on disk.
        let stored = stored(settings, key: unlockKey)
        try store.write { tx throws(ClusterError) in
            try tx.setValue(stored, forKey: settingsKey)
            try tx.create(ingress)
            try tx.create(node)
        }
        return (settings, allocator)
    }

    static let caKeyPurpose = "cluster CA key"
    static let nextCAKeyPurpose = "next cluster CA key"
    static let secretsKeyPurpose = "secrets key"

    /// `settings` as the store keeps them: with `key` (an autolocked swarm), the CA key sealed,
    /// and with `previous` as well.
    static func stored(_ settings: ClusterSettings, key: UnlockKey?, previous: UnlockKey? = nil) -> ClusterSettings {
        var s = settings
        if let key {
            s.sealedCAKey = key.seal(s.caKeyPEM, purpose: caKeyPurpose)
            s.previousSealedCAKey = previous.map { $0.seal(s.caKeyPEM, purpose: caKeyPurpose) }
            s.caKeyPEM = ""
            if var r = s.rootRotation {
                r.sealedKey = SealedSecret(r.caKeyPEM, key: key, previous: previous, purpose: nextCAKeyPurpose)
                r.caKeyPEM = ""
                s.rootRotation = r
            }
            if let k = s.secretsKey {
                s.sealedSecretsKey = SealedSecret(k, key: key, previous: previous, purpose: secretsKeyPurpose)
                s.secretsKey = nil
            }
        } else {
            s.sealedCAKey = nil
            s.previousSealedCAKey = nil
            s.rootRotation?.sealedKey = nil
            s.sealedSecretsKey = nil
        }
        return s
    }

    /// Whether the stored swarm is autolocked (its CA key sealed); nil if the store holds no cluster.
    public static func isLocked(store: any ClusterStore) throws(ClusterError) -> Bool? {
        try store.value(ClusterSettings.self, forKey: settingsKey).map { $0.sealedCAKey != nil }
    }

    /// A manager restart: settings, CA and an allocator rebuilt from the stored objects; nil if the store
    /// holds no cluster. An autolocked swarm's CA key is opened with `key`: `.locked` without one,
    /// `.invalidArgument` with the wrong one.
    public static func load(
        store: any ClusterStore, key: UnlockKey? = nil
    ) throws(ClusterError) -> (ClusterSettings, ClusterCA, NetworkAllocator)? {
        guard let settings = try openedSettings(store: store, key: key) else { return nil }
        let ca = try ClusterCA(certificatePEM: settings.caCertificatePEM, keyPEM: settings.caKeyPEM)
        let allocator = try NetworkAllocator.rebuild(
            from: try store.snapshot(), pools: settings.defaultAddrPool,
            subnetSize: settings.subnetSize)
        return (settings, ca, allocator)
    }

    /// The settings with the CA key opened by `key` (one read; `swarm unlock` checks its key with
    /// it before anything starts): `.locked` without a key for a sealed one, `.invalidArgument`
    /// with the wrong one; nil if the store holds no cluster.
    public static func openedSettings(store: any ClusterStore, key: UnlockKey?) throws(ClusterError) -> ClusterSettings? {
        guard var settings = try store.value(ClusterSettings.self, forKey: settingsKey) else { return nil }
        if let sealed = settings.sealedCAKey {
            guard let key else { throw .locked }
            do { settings.caKeyPEM = try key.open(sealed, purpose: caKeyPurpose) } catch {
                guard let previous = settings.previousSealedCAKey else { throw error }
                settings.caKeyPEM = try key.open(previous, purpose: caKeyPurpose)
            }
            settings.sealedCAKey = nil
            settings.previousSealedCAKey = nil
            if let sealed = settings.rootRotation?.sealedKey {
                settings.rootRotation?.caKeyPEM = try sealed.open(with: key, purpose: nextCAKeyPurpose)
                settings.rootRotation?.sealedKey = nil
            }
            if let sealed = settings.sealedSecretsKey {
                settings.secretsKey = try sealed.open(with: key, purpose: secretsKeyPurpose)
                settings.sealedSecretsKey = nil
            }
        }
        return settings
    }

    /// The cluster's settings as stored (one read: what a manager that does not lead shows), nil if none.
    public static func settings(store: any ClusterStore) throws(ClusterError) -> ClusterSettings? {
        try store.value(ClusterSettings.self, forKey: settingsKey)
    }

    /// Stores changed settings (rotated tokens, a new gossip key); `key`: sealed with it.
    public static func save(
        _ settings: ClusterSettings, store: any ClusterStore, key: UnlockKey? = nil, previous: UnlockKey? = nil
    ) throws(ClusterError) {
        try store.setValue(stored(settings, key: key, previous: previous), forKey: settingsKey)
    }
}
