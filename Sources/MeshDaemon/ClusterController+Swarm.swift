import Foundation
import MeshAPI
import MeshCluster

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

extension ClusterController {
    public func inspectSwarm() async throws(EngineError) -> Swarm {
        try requireManager()
        let settings = manager.settings
        return Swarm(cluster: clusterInfo(settings), JoinTokens: APIMapping.joinTokens(settings))
    }

    func clusterInfo(_ settings: ClusterSettings) -> ClusterInfo {
        APIMapping.clusterInfo(settings, tlsInfo: tlsInfo, version: swarm.version, updatedAt: swarm.updatedAt, spec: swarm.spec)
    }

    /// `swarm update` and `swarm join-token --rotate`. The spec is kept and shown back; of its settings
    /// only the task history limit changes meshd's behaviour (the reaper's retention).
    public func updateSwarm(_ spec: SwarmSpec, version: UInt64, rotate: SwarmRotation) async throws(EngineError) {
        try requireManager()
        guard version == swarm.version else { throw .updateOutOfSequence }
        if spec.EncryptionConfig?.AutoLockManagers == true || rotate.managerUnlockKey {
            throw .invalidArgument("autolock is not supported by meshd: managers keep no encrypted state to unlock")
        }
        // `swarm ca --rotate` sends these; keeping a CA key in the spec record would also leak it to `GET /swarm`.
        if !(spec.CAConfig?.SigningCACert ?? "").isEmpty || !(spec.CAConfig?.SigningCAKey ?? "").isEmpty
            || (spec.CAConfig?.ForceRotate ?? 0) != (swarm.spec.CAConfig?.ForceRotate ?? 0)
        {
            throw .invalidArgument("CA rotation is not supported by meshd")
        }
        if let name = spec.Name, !name.isEmpty, name != "default" {
            throw .invalidArgument(APIMapping.rpc("InvalidArgument", "swarm name must be \"default\""))
        }
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
            try m.store.setValue(record, forKey: SwarmRecord.key)
            m.reaper.retentionLimit = record.retentionLimit
        }
        swarm = record
    }

    /// dockerd answers an empty key while autolock is off, and meshd's managers are never locked
    /// (`updateSwarm` refuses to turn autolock on), so the key is always empty.
    public func unlockKey() async throws(EngineError) -> String {
        try requireManager()
        return ""
    }

    /// `Info.Swarm` for `/info` and the `/_ping` header. Never fails: a store error goes into `Error`.
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
