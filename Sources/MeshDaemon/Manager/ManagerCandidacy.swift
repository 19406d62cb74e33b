import Foundation
import MeshCluster
import MeshControl
import MeshEtcd

/// One manager of a swarm whose managers share an etcd store: it campaigns for leadership and runs the
/// manager plane (control loop, 2377 sessions, joins) only while it leads, so exactly one manager
/// converges the store at a time. Stepping down (lease lost, etcd unreachable for the lease's TTL) stops
/// the plane at once and campaigns again. Every write of the plane carries the leadership's fencing token,
/// so a leader that lost its lease without noticing yet cannot change anything.
///
/// While it follows, the daemon forwards cluster requests to the manager the election names
/// (`leader()`), and its own node's session goes to that manager like any node's.
actor ManagerCandidacy {
    /// What a leader's campaign key holds: who leads and where its 2377 listener is.
    struct Leader: Sendable, Equatable {
        var nodeID: String
        var address: String

        init?(_ value: String) {
            guard let at = value.firstIndex(of: "@") else { return nil }
            nodeID = String(value[..<at])
            address = String(value[value.index(after: at)...])
            if nodeID.isEmpty || address.isEmpty { return nil }
        }

        init(nodeID: String, address: String) {
            self.nodeID = nodeID
            self.address = address
        }

        var value: String { "\(nodeID)@\(address)" }
    }

    typealias PlaneStarter = @Sendable (ClusterController) async throws -> ManagerPlane
    typealias PlaneChanged = @Sendable (ManagerPlane?) async -> Void
    /// 2377 while following (`FollowerListener`); nil when it cannot listen (the log says why).
    typealias FollowerStarter = @Sendable (ManagerCandidacy) async -> ControlServer?

    let store: EtcdClusterStore
    /// The election's own client, with calls that give up after a third of the TTL: a renewal stuck on
    /// a silent member must leave time to try another before the lease runs out.
    let electionClient: EtcdClient
    let me: Leader
    /// The swarm this node belongs to (its certificate's).
    let clusterID: String
    /// The lease TTL in seconds: how long a killed leader holds leadership before another takes over.
    let ttl: Int64
    private let startPlane: PlaneStarter
    private let planeChanged: PlaneChanged
    private(set) var plane: ManagerPlane?
    private let startFollower: FollowerStarter?
    private var follower: ControlServer?
    /// Set by `stop`: nothing listens again.
    private var stopping = false
    private var election: EtcdElection?
    private var loop: Task<Void, Never>?
    private var leadingWaiters: [CheckedContinuation<Bool, Never>] = []

    /// The autolock key a takeover opens the store's CA key with (nil: the swarm is not locked, or
    /// this manager was never handed the key, and then it cannot lead).
    private let unlockKey: @Sendable () async -> UnlockKey?

    init(
        url: EtcdStoreURL, me: Leader, clusterID: String, ttl: Int64 = 5, startPlane: @escaping PlaneStarter,
        planeChanged: @escaping PlaneChanged, unlockKey: @escaping @Sendable () async -> UnlockKey? = { nil },
        startFollower: FollowerStarter? = nil
    ) {
        self.unlockKey = unlockKey
        self.startFollower = startFollower
        self.store = url.open()
        self.clusterID = clusterID
        self.electionClient = url.client(timeoutMilliseconds: ttl * 1000 / 3)
        self.me = me
        self.ttl = ttl
        self.startPlane = startPlane
        self.planeChanged = planeChanged
    }

    func start() {
        guard loop == nil else { return }
        loop = Task { await self.run() }
    }

    /// True once this manager leads (its plane runs), false after `timeout` or when it stops.
    func waitUntilLeading(timeout: Duration) async -> Bool {
        if plane != nil { return true }
        Task {
            try? await Task.sleep(for: timeout)
            self.wakeWaiters()
        }
        return await withCheckedContinuation { leadingWaiters.append($0) }
    }

    private func wakeWaiters() {
        let lead = plane != nil
        for w in leadingWaiters { w.resume(returning: lead) }
        leadingWaiters = []
    }

    /// The manager the election names now (the oldest campaign key), read from etcd; nil when nobody leads.
    nonisolated func leader() async -> Leader? {
        let client = electionClient, keys = store.keys
        // The range is a blocking round trip: off the cooperative pool's actor, on a task of its own.
        // Without a quorum the linearizable read fails; the member's own copy still names the last leader,
        // which answers for itself (a leader that stepped down says there is none) instead of a timeout.
        let value: String? = await Task.detached {
            let e = EtcdElection(client: client, keys: keys, value: "")
            do { return try e.leader() } catch { return (try? e.leader(serializable: true)) ?? nil }
        }.value
        return value.flatMap { Leader($0) }
    }

    /// Stops campaigning and the plane. `resign`: give leadership up now (a leave, a clean exit) so the
    /// next manager takes over without waiting for the lease to run out.
    func stop(resign: Bool) async {
        stopping = true
        loop?.cancel()
        // The plane ends before leadership is given up: no moment with two planes holding node sessions.
        await endPlane()
        let e = election
        election = nil
        if resign { await e?.resign() } else { e?.abandon() }
        _ = await loop?.value
        loop = nil
        await endPlane()
        await stopFollowing()
        wakeWaiters()
    }

    private func run() async {
        while !Task.isCancelled {
            await follow()
            let e = EtcdElection(client: electionClient, keys: store.keys, value: me.value, ttl: ttl)
            election = e
            let events: AsyncStream<EtcdElection.Event>
            do { events = try await e.campaign() } catch {
                DaemonLog.manager.warning("cannot campaign for leadership on the cluster store: \(error)")
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            // Stopped while the campaign key was being put: give it up at once.
            if Task.isCancelled {
                await e.resign()
                return
            }
            for await event in events {
                switch event {
                case .leading(let fence):
                    store.fence = fence
                    await lead(e)
                case .steppedDown(let why):
                    DaemonLog.manager.warning("stepped down as leader: \(why)")
                    await endPlane()
                }
            }
            // The candidacy ended (stepped down, or a failed takeover resigned): the plane is stopped; the
            // old fence stays on the store so that nothing this manager might still write can commit.
            await endPlane()
            if Task.isCancelled { return }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Takes over: the manager state is read from the store as it is now (the allocator rebuilt from
    /// it), the plane starts and the daemon hears of it. A takeover that fails resigns, so another
    /// manager can lead.
    private func lead(_ e: EtcdElection) async {
        // The plane takes the port over.
        await stopFollowing()
        do {
            let store = self.store
            guard let m = try ClusterManager.open(store: store, unlockKey: await unlockKey()) else {
                throw DaemonError.config("the cluster store \(store.keys.prefix) holds no swarm")
            }
            // A prefix re-initialised since this node joined holds another swarm: never lead it with this identity.
            guard m.settings.clusterID == clusterID else {
                throw DaemonError.config(
                    "the cluster store \(store.keys.prefix) holds swarm \(m.settings.clusterID), not this node's \(clusterID)")
            }
            let p = try await startPlane(ClusterController(manager: m, selfNodeID: me.nodeID))
            plane = p
            DaemonLog.manager.info("leading the swarm (node \(me.nodeID) at \(me.address))")
            await planeChanged(p)
            wakeWaiters()
        } catch {
            DaemonLog.manager.error("cannot take over as leader: \(error)")
            await e.resign()
            await follow()
        }
    }

    private func endPlane() async {
        guard let p = plane else { return }
        plane = nil
        await planeChanged(nil)
        await p.stop()
        if !Task.isCancelled { await follow() }
    }

    /// Listens on 2377 as a follower, unless it leads or already listens.
    private func follow() async {
        guard plane == nil, follower == nil, !stopping, let startFollower, loop != nil else { return }
        follower = await startFollower(self)
    }

    private func stopFollowing() async {
        let f = follower
        follower = nil
        await f?.close()
    }
}
