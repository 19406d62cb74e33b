import Foundation
import MeshAgent
import MeshAPI
import MeshCluster

extension APIMapping {
    public static func tlsInfo(_ ca: ClusterCA) -> MeshAPI.TLSInfo { tlsInfo(ca.tlsInfo) }

    public static func tlsInfo(_ t: MeshCluster.TLSInfo) -> MeshAPI.TLSInfo {
        MeshAPI.TLSInfo(
            TrustRoot: t.trustRoot, CertIssuerSubject: t.certIssuerSubject,
            CertIssuerPublicKey: t.certIssuerPublicKey)
    }

    /// The spec dockerd reports after `swarm init` with no options (swarmkit's defaults merged in), less
    /// its Raft settings: meshd's store is SQLite or etcd and runs no Raft of its own, so swarmkit's
    /// snapshot interval and ticks would be numbers no component has (`docker info` printed them).
    /// A `Raft` that a `swarm update` sends is kept and shown back as the configured setting it is.
    /// The heartbeat period is the one meshd's agents keep (swarmkit's is 5 s).
    public static var defaultSwarmSpec: SwarmSpec {
        let beat = AgentSession.defaultHeartbeat.components
        return SwarmSpec(
            Name: "default", Labels: [:],
            Orchestration: .init(TaskHistoryRetentionLimit: 5),
            Dispatcher: .init(HeartbeatPeriod: beat.seconds * 1_000_000_000 + beat.attoseconds / 1_000_000_000),
            CAConfig: .init(NodeCertExpiry: 90 * 24 * 3600 * 1_000_000_000),
            TaskDefaults: .init(),
            EncryptionConfig: .init(AutoLockManagers: false))
    }

    /// `version`/`updatedAt`/`spec` are the daemon's own record of `swarm update`s: the store keeps the
    /// cluster's settings but not a versioned swarm object.
    public static func clusterInfo(
        _ settings: ClusterSettings, tlsInfo: MeshAPI.TLSInfo, version: UInt64, updatedAt: Date,
        spec: SwarmSpec
    ) -> ClusterInfo {
        ClusterInfo(
            ID: settings.clusterID, Version: ObjectVersion(version), CreatedAt: settings.createdAt, UpdatedAt: updatedAt,
            Spec: spec, TLSInfo: tlsInfo, RootRotationInProgress: settings.rootRotation != nil,
            DefaultAddrPool: settings.defaultAddrPool.map(\.description),
            SubnetSize: UInt32(clamping: settings.subnetSize), DataPathPort: UInt32(settings.dataPathPort))
    }

    public static func joinTokens(_ settings: ClusterSettings) -> MeshAPI.JoinTokens {
        MeshAPI.JoinTokens(Worker: settings.tokens.worker, Manager: settings.tokens.manager)
    }
}
