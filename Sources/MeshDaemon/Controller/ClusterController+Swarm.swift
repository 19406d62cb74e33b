import Foundation
import MeshAPI
import MeshCluster
import X509

/// The swarm object as `GET /swarm` shows it, beyond what `ClusterSettings` holds: the version the CLI's
/// optimistic `swarm update` checks, and the last spec it sent. Kept in the cluster store's key/value table
/// so a manager restart neither rewinds the version nor forgets the spec.
struct SwarmRecord: Codable, Sendable, Equatable {
    static let key = "daemon.swarm"
    var version: UInt64
    var updatedAt: Date
    var spec: SwarmSpec

    /// swarmkit keeps no history for a negative limit; the reaper's count is an Int.
    var retentionLimit: Int {
        let limit = spec.Orchestration?.TaskHistoryRetentionLimit ?? 5
        return limit < 0 ? Int.max : Int(clamping: limit)
    }
}

/// The swarm spec's rules, one place for `swarm init` and `swarm update`. What meshd acts on:
/// `Orchestration.TaskHistoryRetentionLimit` (the reaper's retention). Recorded only (stored and shown
/// by `swarm inspect`, as swarmkit keeps settings its components read): `Labels`, `Raft` (meshd runs no
/// Raft: its store is SQLite or etcd), `Dispatcher.HeartbeatPeriod` (agents beat at
/// `AgentSession.defaultHeartbeat`), `CAConfig.NodeCertExpiry` and `ForceRotate` at init,
/// `TaskDefaults.LogDriver`. Acted on: `EncryptionConfig.AutoLockManagers` (the CA key and the manager's
/// own key sealed at rest with the unlock key), a changed `CAConfig.ForceRotate` (a root rotation).
/// Refused by name: a custom or external CA, a name other than `default`.
public enum SwarmSpecRules {
    public static func check(_ spec: SwarmSpec) throws(EngineError) {
        // `swarm ca --rotate` sends these; keeping a CA key in the spec record would also leak it to `GET /swarm`.
        if !(spec.CAConfig?.SigningCACert ?? "").isEmpty || !(spec.CAConfig?.SigningCAKey ?? "").isEmpty {
            throw .invalidArgument("CAConfig.SigningCACert/SigningCAKey: a custom root CA is not supported by meshd")
        }
        if !(spec.CAConfig?.ExternalCAs ?? []).isEmpty {
            throw .invalidArgument("CAConfig.ExternalCAs: external CAs are not supported by meshd")
        }
        if let name = spec.Name, !name.isEmpty, name != "default" {
            throw .invalidArgument(APIMapping.rpc("InvalidArgument", "swarm name must be \"default\""))
        }
    }

    /// swarmkit's floor for `CAConfig.NodeCertExpiry` (`--cert-expiry`); the daemon's hidden
    /// `--min-cert-expiry` lowers it so tests can watch renewals within a run.
    public static let minimumCertificateExpiry: TimeInterval = 3600

    /// Refuses a node certificate expiry under `minimum`, in swarmkit's words (a Go duration).
    public static func checkCertificateExpiry(_ spec: SwarmSpec, minimum: TimeInterval) throws(EngineError) {
        guard let ns = spec.CAConfig?.NodeCertExpiry, ns != 0 else { return }
        if Double(ns) / 1e9 < minimum {
            throw .invalidArgument(
                APIMapping.rpc("InvalidArgument", "minimum certificate expiry time is \(goDuration(seconds: Int64(minimum)))"))
        }
    }

    /// How long node certificates issued under `spec` are valid (Docker's 90 days when unset).
    public static func certificateValidity(_ spec: SwarmSpec) -> TimeInterval {
        guard let ns = spec.CAConfig?.NodeCertExpiry, ns > 0 else { return ClusterCA.defaultValidity }
        return Double(ns) / 1e9
    }

    /// Go's `time.Duration.String()` for whole seconds: 1h0m0s, 2m30s, 45s.
    static func goDuration(seconds: Int64) -> String {
        let h = seconds / 3600, m = seconds % 3600 / 60, s = seconds % 60
        if h > 0 { return "\(h)h\(m)m\(s)s" }
        if m > 0 { return "\(m)m\(s)s" }
        return "\(s)s"
    }

    /// `swarm init`'s spec as dockerd makes it (`MergeSwarmSpecToGRPC`): meshd's defaults, with each
    /// field the request set to something other than Go's zero value taking its place.
    public static func initialSpec(_ request: SwarmInitRequest) throws(EngineError) -> SwarmSpec {
        var spec = APIMapping.defaultSwarmSpec
        // `swarm init --autolock` sets the request's flag; docker-py's spec sets EncryptionConfig.
        if request.AutoLockManagers == true || request.Spec?.EncryptionConfig?.AutoLockManagers == true {
            spec.EncryptionConfig = .init(AutoLockManagers: true)
        }
        guard let sent = request.Spec else { return spec }
        try check(sent)
        if let labels = sent.Labels, !labels.isEmpty { spec.Labels = labels }
        if let limit = sent.Orchestration?.TaskHistoryRetentionLimit { spec.Orchestration = .init(TaskHistoryRetentionLimit: limit) }
        if let r = sent.Raft {
            var raft = spec.Raft ?? SwarmSpec.Raft()
            if (r.SnapshotInterval ?? 0) != 0 { raft.SnapshotInterval = r.SnapshotInterval }
            if r.KeepOldSnapshots != nil { raft.KeepOldSnapshots = r.KeepOldSnapshots }
            if (r.LogEntriesForSlowFollowers ?? 0) != 0 { raft.LogEntriesForSlowFollowers = r.LogEntriesForSlowFollowers }
            if (r.HeartbeatTick ?? 0) != 0 { raft.HeartbeatTick = r.HeartbeatTick }
            if (r.ElectionTick ?? 0) != 0 { raft.ElectionTick = r.ElectionTick }
            if raft != SwarmSpec.Raft() { spec.Raft = raft }
        }
        if let beat = sent.Dispatcher?.HeartbeatPeriod, beat != 0 { spec.Dispatcher = .init(HeartbeatPeriod: beat) }
        if let expiry = sent.CAConfig?.NodeCertExpiry, expiry != 0 { spec.CAConfig?.NodeCertExpiry = expiry }
        if let rotate = sent.CAConfig?.ForceRotate, rotate != 0 { spec.CAConfig?.ForceRotate = rotate }
        if let driver = sent.TaskDefaults?.LogDriver { spec.TaskDefaults = .init(LogDriver: driver) }
        return spec
    }
}

extension ClusterController {
    /// `swarm init`: the spec (from `SwarmSpecRules.initialSpec`) becomes version 1 of the swarm record,
    /// which a controller made on `manager` afterwards reads, with the retention limit it sets.
    public static func recordInitialSpec(_ spec: SwarmSpec, in manager: ClusterManager) throws(ClusterError) {
        try manager.store.setValue(SwarmRecord(version: 1, updatedAt: manager.settings.createdAt, spec: spec), forKey: SwarmRecord.key)
    }

    public func inspectSwarm() async throws(EngineError) -> Swarm {
        try requireManager()
        let settings = manager.settings
        return Swarm(cluster: clusterInfo(settings), JoinTokens: APIMapping.joinTokens(settings))
    }

    func clusterInfo(_ settings: ClusterSettings) -> ClusterInfo {
        APIMapping.clusterInfo(settings, tlsInfo: tlsInfo, version: swarm.version, updatedAt: swarm.updatedAt, spec: swarm.spec)
    }

    /// `swarm update` and `swarm join-token --rotate`. The spec is checked by the same rules as
    /// `swarm init`'s (`SwarmSpecRules.check`), then kept and shown back whole.
    public func updateSwarm(_ spec: SwarmSpec, version: UInt64, rotate: SwarmRotation) async throws(EngineError) {
        try requireManager()
        guard version == swarm.version else { throw .updateOutOfSequence }
        try SwarmSpecRules.check(spec)
        // The spec is whole, as dockerd takes it: one without EncryptionConfig turns autolock off, and
        // then a rotation has no key to replace (swarmkit's rule; the CLI refuses to ask for one).
        let autolock = spec.EncryptionConfig?.AutoLockManagers == true
        // `swarm ca --rotate` (with no CA of the user's own) changes ForceRotate: a new root.
        let rotateRoot = (spec.CAConfig?.ForceRotate ?? 0) != (swarm.spec.CAConfig?.ForceRotate ?? 0)
        var next = swarm
        next.spec = spec
        next.spec.Name = "default"
        next.version += 1
        next.updatedAt = Date()
        let record = next
        try write { m throws(ClusterError) in
            // One step after another: a failed rotation leaves the stored record (and the version) as it was.
            if rotate.workerToken { try m.rotateJoinToken(.worker) }
            if rotate.managerToken { try m.rotateJoinToken(.manager) }
            if autolock != (m.unlockKey != nil) { try m.setAutolock(autolock) }
            if rotate.managerUnlockKey, autolock { _ = try m.rotateUnlockKey() }
            if rotateRoot { try m.startRootRotation() }
            try m.store.setValue(record, forKey: SwarmRecord.key)
            m.reaper.retentionLimit = record.retentionLimit
        }
        swarm = record
    }

    /// How long the certificates this manager issues now are valid (`CAConfig.NodeCertExpiry`).
    var certificateValidity: TimeInterval { SwarmSpecRules.certificateValidity(swarm.spec) }

    /// `swarm unlock-key`: the key in force, in Docker's form; empty (as dockerd answers) while
    /// autolock is off.
    public func unlockKey() async throws(EngineError) -> String {
        try requireManager()
        return manager.unlockKey?.description ?? ""
    }

    /// The key in force (nil: autolock off) and the one before a rotation, for the daemon to seal
    /// its own private key with.
    public var currentUnlockKeys: (UnlockKey?, UnlockKey?) { (manager.unlockKey, manager.previousUnlockKey) }

    /// After an unlock: only the key given opens the store from now on.
    public func settleUnlockKey() throws(EngineError) {
        try write { m throws(ClusterError) in try m.settleUnlockKey() }
    }

    /// `Info.Swarm` for `/info` and the `/_ping` header. Never fails: a store error goes into `Error`.
    /// What `docker info` shows on a manager that does not lead, read from the store it shares with the
    /// leader: the same nodes and managers, the same cluster.
    static func followerSwarmInfo(store: any ClusterStore, selfNodeID: String, selfAddr: String) -> SwarmInfo {
        do {
            let nodes = try store.list(ClusterNode.self)
            let managers = nodes.filter { $0.role == .manager }
            var cluster: ClusterInfo?
            if let settings = try ClusterBootstrap.settings(store: store) {
                // The certificates are all TLSInfo needs: the CA's private key is not parsed on every `docker info`.
                let tls = try ClusterManager.clusterTLSInfo(settings)
                let swarm =
                    try store.value(SwarmRecord.self, forKey: SwarmRecord.key)
                    ?? SwarmRecord(version: 1, updatedAt: settings.createdAt, spec: APIMapping.defaultSwarmSpec)
                cluster = APIMapping.clusterInfo(
                    settings, tlsInfo: APIMapping.tlsInfo(tls), version: swarm.version,
                    updatedAt: swarm.updatedAt, spec: swarm.spec)
            }
            return SwarmInfo(
                NodeID: selfNodeID, NodeAddr: selfAddr, LocalNodeState: .active, ControlAvailable: true,
                RemoteManagers: managers.map { SwarmInfo.Peer(NodeID: $0.id, Addr: $0.managerAddr ?? "\($0.addr):2377") },
                Nodes: nodes.count, Managers: managers.count, Cluster: cluster)
        } catch {
            return SwarmInfo(
                NodeID: selfNodeID, NodeAddr: selfAddr, LocalNodeState: .active, ControlAvailable: true, Error: "\(error)")
        }
    }

    public func swarmInfo(selfAddr: String) -> SwarmInfo {
        do {
            let nodes = try manager.store.list(ClusterNode.self)
            let managers = nodes.filter { $0.role == .manager }
            let control = nodes.first { $0.id == selfNodeID }?.role != .worker
            return SwarmInfo(
                NodeID: selfNodeID, NodeAddr: selfAddr, LocalNodeState: .active, ControlAvailable: control,
                RemoteManagers: managers.map { SwarmInfo.Peer(NodeID: $0.id, Addr: $0.managerAddr ?? "\($0.addr):2377") },
                Nodes: nodes.count, Managers: managers.count, Cluster: control ? clusterInfo(manager.settings) : nil)
        } catch {
            return SwarmInfo(
                NodeID: selfNodeID, NodeAddr: selfAddr, LocalNodeState: .active, ControlAvailable: true,
                Error: error.description)
        }
    }
}
