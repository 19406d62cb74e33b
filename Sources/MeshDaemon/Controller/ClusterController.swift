import Foundation
import MeshAPI
import MeshCluster

/// The manager side of the Engine API: the one owner of the node's `ClusterManager`. Being an actor
/// makes every write (API requests and the control plane's joins, reports and reconcile passes) run one
/// at a time against one allocator, and every write ends before the next begins since none awaits.
///
/// Reads take their data from the store on each call, so answers never lag behind a write made
/// through `withManager`.
public actor ClusterController {
    var manager: ClusterManager
    public nonisolated let selfNodeID: String
    /// Wakes the control loop after anything that changes desired state. Newest-only: a loop that is
    /// busy when several writes land runs once more, not once per write.
    public nonisolated let changes: AsyncStream<Void>
    let changed: AsyncStream<Void>.Continuation
    /// What every node should hold (the swarm's `TLSInfo`): it changes when a root rotation starts and ends.
    var tlsInfo: MeshAPI.TLSInfo { APIMapping.tlsInfo(manager.clusterTLSInfo) }
    var swarm: SwarmRecord

    public init(manager: ClusterManager, selfNodeID: String) {
        self.manager = manager
        self.selfNodeID = selfNodeID
        (changes, changed) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // A store that cannot be read now fails the first request instead; the defaults stand in until then.
        let stored = (try? manager.store.value(SwarmRecord.self, forKey: SwarmRecord.key)) ?? nil
        swarm = stored ?? SwarmRecord(version: 1, updatedAt: manager.settings.createdAt, spec: APIMapping.defaultSwarmSpec)
        self.manager.reaper.retentionLimit = swarm.retentionLimit
    }

    deinit { changed.finish() }

    /// dockerd's status and message for a manager error (the daemon uses it for errors that reach it
    /// from `withManager`).
    public static func engineError(_ error: ClusterError) -> EngineError { APIMapping.engineError(error) }

    // MARK: control plane access

    /// For the control plane (joins, task reports, reconcile, liveness). Wakes the control loop only when
    /// `body` changed the store or the settings: a reconcile pass that finds nothing to do must not wake
    /// the loop that ran it, or the loop would spin.
    public func withManager<R: Sendable>(_ body: (inout ClusterManager) throws(ClusterError) -> R) throws(ClusterError) -> R {
        let before = storeIndex()
        let settings = manager.settings
        let result = try body(&manager)
        if before == nil || storeIndex() != before || manager.settings != settings { changed.yield() }
        return result
    }

    /// Read-only access (assignments, snapshots) that never wakes the control loop.
    public func read<R: Sendable>(_ body: (ClusterManager) throws(ClusterError) -> R) throws(ClusterError) -> R {
        try body(manager)
    }

    /// The store's version counter: every object write takes the next value.
    private func storeIndex() -> UInt64? {
        try? manager.store.read { tx throws(ClusterError) in try tx.currentIndex() }
    }

    // MARK: helpers for the API methods

    /// An API write: serial like every method here, mapped to dockerd's errors, and followed by a wake-up.
    func write<R>(_ body: (inout ClusterManager) throws(ClusterError) -> R) throws(EngineError) -> R {
        do {
            let result = try body(&manager)
            changed.yield()
            return result
        } catch {
            throw APIMapping.engineError(error)
        }
    }

    /// A store read with dockerd's errors.
    func load<R>(_ body: (ClusterManager) throws(ClusterError) -> R) throws(EngineError) -> R {
        do { return try body(manager) } catch { throw APIMapping.engineError(error) }
    }

    /// Exact ID, then exact name, then unique ID prefix.
    func resolve<T: StoredObject>(_ type: T.Type, _ reference: String) throws(EngineError) -> T {
        try load { m throws(ClusterError) in try m.store.resolve(type, reference) }
    }

    /// dockerd answers cluster requests on a demoted manager as on any worker.
    func requireManager() throws(EngineError) {
        let me = try load { m throws(ClusterError) in try m.store.get(ClusterNode.self, id: selfNodeID) }
        if let me, me.role != .manager { throw .notAManager }
    }
}
