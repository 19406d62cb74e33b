import Foundation
import MeshValues
import X509

/// The manager's operations over the store, wired together: what the API layer calls for `swarm`, `node`,
/// `network` and `service` commands, and what the control loop calls to converge. A value holding the store
/// (a shared, thread-safe handle) and the allocator; the daemon keeps one in an actor so calls are serial.
/// Every method writes through the store before it returns, so a restart (`open`) loses nothing.
public struct ClusterManager: Sendable {
    public let store: any ClusterStore
    public internal(set) var settings: ClusterSettings
    /// The root nodes trust. During a root rotation it stays the current one until every node holds
    /// a certificate from the next (`pendingRoot`).
    public internal(set) var ca: ClusterCA
    /// The root `swarm ca --rotate` moves to, while it is under way.
    public internal(set) var pendingRoot: PendingRoot?
    /// During a root rotation, the nodes that have not reported a certificate of the new root (nil:
    /// not counted yet; see `finishRootRotationIfConverged`).
    var rotationWaitsFor: Set<String>?
    public private(set) var allocator: NetworkAllocator
    public var orchestrator = Orchestrator()
    public var scheduler = Scheduler(requireAllocation: true)
    public var reaper = TaskReaper()
    /// An autolocked swarm's key (nil: not locked): the stored CA key is sealed with it.
    public private(set) var unlockKey: UnlockKey?
    /// The key before the last rotation, which still opens what is stored until an unlock settles.
    public private(set) var previousUnlockKey: UnlockKey?

    /// `swarm init`. `defaultAddrPool` holds CIDRs as text, as `--default-addr-pool` passes them (empty:
    /// 10.0.0.0/8).
    public static func initialize(
        store: any ClusterStore, nodeID: String, hostname: String, advertiseAddr: String,
        defaultAddrPool: [String] = [], subnetSize: Int = 24, dataPathPort: UInt16 = 4789,
        now: Date = Date(), unlockKey: UnlockKey? = nil
    ) throws(ClusterError) -> ClusterManager {
        var pools: [IPPrefix] = []
        for p in defaultAddrPool {
            guard let prefix = IPPrefix(p) else { throw .invalidArgument("invalid default address pool \(p)") }
            pools.append(prefix)
        }
        let (settings, allocator) = try ClusterBootstrap.initialize(
            store: store, nodeID: nodeID, hostname: hostname, advertiseAddr: advertiseAddr, defaultAddrPool: pools,
            subnetSize: subnetSize, dataPathPort: dataPathPort, now: now, unlockKey: unlockKey)
        let ca = try ClusterCA(certificatePEM: settings.caCertificatePEM, keyPEM: settings.caKeyPEM)
        var m = try ClusterManager(store: store, settings: settings, ca: ca, allocator: allocator)
        m.unlockKey = unlockKey
        return m
    }

    /// A manager restart; nil when the store holds no cluster. An autolocked swarm needs its key
    /// (`.locked` without it).
    public static func open(store: any ClusterStore, unlockKey: UnlockKey? = nil) throws(ClusterError) -> ClusterManager? {
        guard let (settings, ca, allocator) = try ClusterBootstrap.load(store: store, key: unlockKey) else { return nil }
        var m = try ClusterManager(store: store, settings: settings, ca: ca, allocator: allocator)
        // The store says whether the swarm is locked: a key given for an unlocked one is not kept.
        // The key given is the one in force from now on; the stored copy under the other key (a
        // rotation's) goes with the next save, which `settleUnlockKey` makes at once.
        if try ClusterBootstrap.isLocked(store: store) == true { m.unlockKey = unlockKey }
        return m
    }

    /// Autolock on (a new key, unless one is set) or off: the stored CA key is sealed with the key
    /// or stored open again. Returns the key in force.
    @discardableResult
    public mutating func setAutolock(_ on: Bool) throws(ClusterError) -> UnlockKey? {
        guard on != (unlockKey != nil) else { return unlockKey }
        let key = on ? UnlockKey.generate() : nil
        try ClusterBootstrap.save(settings, store: store, key: key)
        unlockKey = key
        previousUnlockKey = nil
        return key
    }

    /// `swarm unlock-key --rotate`: a new key seals the CA key. The one before still opens it
    /// until a manager is unlocked (`settleUnlockKey`): the user may not have the new key yet.
    public mutating func rotateUnlockKey() throws(ClusterError) -> UnlockKey {
        guard let old = unlockKey else { throw .failedPrecondition("cannot rotate because autolock is not turned on") }
        let key = UnlockKey.generate()
        try ClusterBootstrap.save(settings, store: store, key: key, previous: old)
        unlockKey = key
        previousUnlockKey = old
        return key
    }

    /// After an unlock: the key that opened the store is the only one that does (a rotation whose
    /// new key was not the one given is undone, as nobody used it).
    public mutating func settleUnlockKey() throws(ClusterError) {
        guard unlockKey != nil else { return }
        try ClusterBootstrap.save(settings, store: store, key: unlockKey)
        previousUnlockKey = nil
    }

    private init(
        store: any ClusterStore, settings: ClusterSettings, ca: ClusterCA, allocator: NetworkAllocator
    ) throws(ClusterError) {
        self.store = store
        self.settings = settings
        self.ca = ca
        self.allocator = allocator
        pendingRoot = try settings.rootRotation.map { r throws(ClusterError) in try PendingRoot(r) }
        secretSealing = try SecretSealing(settings: settings, ca: ca)
    }

    /// Seals secret data before it is stored and opens it for the nodes that mount it.
    let secretSealing: SecretSealing

    /// A secret with its data opened (what a node that mounts it is sent); nil if there is none.
    public func secret(_ id: String) throws(ClusterError) -> ClusterSecret? {
        guard var s = try store.get(ClusterSecret.self, id: id) else { return nil }
        s.spec.data = try secretSealing.open(s.spec.data)
        return s
    }

    /// The ingress network's ID while it exists: `network rm ingress` removes it when no service publishes a
    /// port, and `network create --ingress` makes another (which the settings then name).
    public var ingressNetworkID: String? {
        allocator.spaces[settings.ingressNetworkID] == nil ? nil : settings.ingressNetworkID
    }

    /// After a failed write the allocator may hold allocations the store never got: start again from the store.
    private mutating func resync() {
        if let rebuilt = try? NetworkAllocator.rebuild(
            from: store.snapshot(), pools: settings.defaultAddrPool,
            subnetSize: settings.subnetSize)
        {
            allocator = rebuilt
        }
    }

    // MARK: swarm

    /// `swarm join-token --rotate`.
    public mutating func rotateJoinToken(_ role: NodeRole) throws(ClusterError) {
        var s = settings
        s.tokens.rotate(role, ca: ca)
        try ClusterBootstrap.save(s, store: store, key: unlockKey, previous: previousUnlockKey)
        settings = s
    }

    /// A new gossip key, listed after the current ones (nodes accept all, send with the newest).
    public mutating func addGossipKey(keep: Int = 2) throws(ClusterError) -> GossipKey {
        var s = settings
        let key = GossipKey.generate()
        s.gossipKeys = Array((s.gossipKeys + [key]).suffix(max(1, keep)))
        try ClusterBootstrap.save(s, store: store, key: unlockKey, previous: previousUnlockKey)
        settings = s
        return key
    }

    /// The gossip keys nodes hold, primary first (a step of a rotation the manager plane drives).
    public mutating func setGossipKeys(_ keys: [GossipKey]) throws(ClusterError) {
        guard !keys.isEmpty else { throw .invalidArgument("the cluster needs at least one gossip key") }
        var s = settings
        s.gossipKeys = keys
        try ClusterBootstrap.save(s, store: store, key: unlockKey, previous: previousUnlockKey)
        settings = s
    }

    // MARK: nodes

    /// `swarm join` on the manager: the token's secret picks the role (or refuses), the node is recorded as
    /// ready, and its CSR is signed. A node that joins again with the same ID keeps its record.
    public mutating func join(
        token: String, nodeID: String, hostname: String, addr: String, csr: CertificateSigningRequest,
        certificateValidity: TimeInterval = ClusterCA.defaultValidity, now: Date = Date()
    ) throws(ClusterError) -> (node: ClusterNode, certificate: Certificate) {
        let role: NodeRole
        do { role = try settings.tokens.role(for: token) } catch {
            throw .invalidArgument(error.description)
        }
        if role == .manager, !store.sharedByManagers { throw .failedPrecondition(Self.oneManagerOnly) }
        let cert = try issuer.issue(csr: csr, nodeID: nodeID, role: role, now: now, validity: certificateValidity)
        var node =
            try store.get(ClusterNode.self, id: nodeID)
            ?? ClusterNode(id: nodeID, hostname: hostname, role: role, now: now)
        let isNew = node.version == 0
        node.hostname = hostname
        node.addr = addr
        node.role = role
        node.state = .ready
        node.stateMessage = ""
        node.managerAddr = role == .manager ? "\(addr):2377" : nil
        node.updatedAt = now
        if let ingress = ingressNetworkID, !node.attachments.contains(where: { $0.networkID == ingress }) {
            try allocator.allocateNode(&node, networkID: ingress)
        }
        do {
            node = isNew ? try store.create(node) : try store.update(node)
        } catch {
            resync()
            throw error
        }
        // Its certificate is of the new root, but a rotation counts what a node says it holds.
        if rotationWaitsFor != nil, !Self.holds(node, clusterTLSInfo) { rotationWaitsFor?.insert(nodeID) }
        return (node, cert)
    }

    /// A member's certificate renewed (the node asks over 2377 with its current one): for the key the
    /// CSR carries, with the role the store gives the node now, so a promotion or demotion reaches
    /// its certificate at the next renewal. A node that is no longer a member gets nothing.
    public func renewCertificate(
        nodeID: String, csr: CertificateSigningRequest, validity: TimeInterval = ClusterCA.defaultValidity,
        now: Date = Date()
    ) throws(ClusterError) -> Certificate {
        guard ClusterCA.commonName(of: csr.subject) == nodeID else {
            throw .invalidArgument("the certificate request names \(ClusterCA.commonName(of: csr.subject) ?? "no node"), not \(nodeID)")
        }
        guard let node = try store.get(ClusterNode.self, id: nodeID) else {
            throw .notFound(objectKind: "node", reference: nodeID)
        }
        return try issuer.issue(csr: csr, nodeID: nodeID, role: node.role, now: now, validity: validity)
    }

    /// Why a second manager is refused on a swarm whose state is one manager's SQLite file: saying
    /// "promoted" would claim a control plane that does not survive that manager.
    public static let oneManagerOnly =
        "this swarm keeps its state in one manager's SQLite store, so it has exactly one manager; for several managers, start every manager's daemon with --cluster-store etcd://host:2379[,host:2379…] and run swarm init there, then join the others with the manager token"

    /// `node update`: role, availability and labels, with Docker's optimistic version check.
    public func updateNode(
        _ reference: String, version: UInt64, role: NodeRole, availability: NodeAvailability,
        labels: [String: String], now: Date = Date()
    ) throws(ClusterError) -> ClusterNode {
        var node = try store.resolve(ClusterNode.self, reference)
        guard node.version == version else {
            throw .outOfSequence(objectKind: "node", id: node.id, expected: node.version, got: version)
        }
        if node.role == .manager, role == .worker, store.sharedByManagers {
            // The node would keep campaigning for leadership with its manager certificate.
            throw .failedPrecondition(
                "demoting a manager of a swarm on etcd is not supported yet: have it leave (docker swarm leave --force), then remove it (docker node rm)"
            )
        }
        if node.role == .manager, role == .worker {
            let managers = try store.list(ClusterNode.self).filter { $0.role == .manager }
            guard managers.count > 1 else { throw .failedPrecondition("attempting to demote the last manager of the swarm") }
        }
        if node.role == .worker, role == .manager {
            // A promoted node would need a manager certificate and the store's address; until the node can
            // take both from its session, promotion is refused rather than claimed.
            throw .failedPrecondition(
                store.sharedByManagers
                    ? "promoting a running worker is not supported yet: have it leave, then join it with the manager token (docker swarm join-token manager)"
                    : Self.oneManagerOnly)
        }
        node.role = role
        node.availability = availability
        node.labels = labels
        if role == .manager, node.managerAddr == nil { node.managerAddr = "\(node.addr):2377" }
        if role == .worker {
            node.managerAddr = nil
            node.leader = false
        }
        node.updatedAt = now
        return try store.update(node)
    }

    /// `node rm`: only a down node unless forced, never a manager.
    public mutating func removeNode(_ reference: String, force: Bool) throws(ClusterError) {
        var node = try store.resolve(ClusterNode.self, reference)
        // On etcd a manager that left (down) can go: it holds no store of its own, and it campaigns no more.
        if node.role == .manager, !(store.sharedByManagers && node.state == .down && force) {
            throw .failedPrecondition(
                "node \(node.id) is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal")
        }
        if node.state != .down, !force {
            throw .failedPrecondition("node \(node.id) is not down and can't be removed")
        }
        for a in node.attachments { allocator.releaseNode(&node, networkID: a.networkID) }
        try store.delete(ClusterNode.self, id: node.id)
        rotationWaitsFor?.remove(node.id)
    }

    /// Heartbeat bookkeeping: stores the nodes `NodeLiveness` says changed; true if any did.
    @discardableResult
    public func applyLiveness(
        _ liveness: NodeLiveness = NodeLiveness(), lastSeen: [String: Date], since: Date,
        now: Date = Date()
    ) throws(ClusterError) -> Bool {
        let changed = liveness.evaluate(nodes: try store.list(ClusterNode.self), lastSeen: lastSeen, since: since, now: now)
        try store.write { tx throws(ClusterError) in for n in changed { try tx.update(n) } }
        return !changed.isEmpty
    }

    // MARK: networks

    /// `network create -d overlay`.
    public mutating func createNetwork(_ request: NetworkRequest, now: Date = Date()) throws(ClusterError) -> ClusterNetwork {
        if let driver = request.options["driver"], driver != "overlay" {
            throw .invalidArgument("only the overlay driver is supported, not \(driver)")
        }
        let existing = try store.read { tx throws(ClusterError) in try tx.list(ClusterNetwork.self) }
        if existing.contains(where: { $0.name == request.name }) {
            throw .nameConflict(objectKind: "network", name: request.name)
        }
        if request.ingress, let other = existing.first(where: \.ingress) {
            throw .failedPrecondition("ingress network (\(other.id)) is already present")
        }
        let network = try allocator.createNetwork(id: ObjectID.make(), request: request, now: now)
        guard request.ingress else {
            do { return try store.create(network) } catch {
                allocator.removeNetwork(id: network.id)
                throw error
            }
        }
        // A new ingress network becomes the cluster's: the settings name it, and every node gets its
        // load-balancer address on it, as at swarm init and join. One write, so a failure leaves neither.
        var next = settings
        next.ingressNetworkID = network.id
        let newSettings = next
        let storedSettings = ClusterBootstrap.stored(next, key: unlockKey, previous: previousUnlockKey)
        do {
            var nodes = try store.list(ClusterNode.self)
            for i in nodes.indices { try allocator.allocateNode(&nodes[i], networkID: network.id) }
            let attached = nodes
            let created = try store.write { tx throws(ClusterError) in
                let created = try tx.create(network)
                for n in attached { try tx.update(n) }
                try tx.setValue(storedSettings, forKey: ClusterBootstrap.settingsKey)
                return created
            }
            settings = newSettings
            return created
        } catch {
            resync()
            throw error
        }
    }

    /// `network rm`: refused while a service names it or a task is still attached; `ingress` (swarmkit's
    /// rule) while any service publishes a port through the routing mesh.
    public mutating func removeNetwork(_ reference: String) throws(ClusterError) {
        let network = try store.resolve(ClusterNetwork.self, reference)
        let snapshot = try store.snapshot()
        if network.ingress, let s = snapshot.services.first(where: { $0.endpoint.ports.contains { $0.publishMode == .ingress } }) {
            throw .failedPrecondition("ingress network cannot be removed because service \(s.id) depends on it")
        }
        let users = snapshot.users(ofNetwork: network.id)
        if let s = users.services.first {
            let name = snapshot.services.first { $0.id == s }?.spec.name ?? s
            throw .failedPrecondition("network \(network.name) is in use by service \(name)")
        }
        if let t = users.tasks.first { throw .failedPrecondition("network \(network.name) is in use by task \(t)") }
        let nodes = snapshot.nodes.filter { $0.attachments.contains { $0.networkID == network.id } }
        try store.write { tx throws(ClusterError) in
            for var n in nodes {
                n.attachments.removeAll { $0.networkID == network.id }
                try tx.update(n)
            }
            try tx.delete(ClusterNetwork.self, id: network.id)
        }
        allocator.removeNetwork(id: network.id)
    }

    // MARK: services

    /// Network references in a spec may be names or ID prefixes (`stack deploy` sends names): store IDs.
    private func resolvingNetworks(_ spec: ServiceSpec) throws(ClusterError) -> ServiceSpec {
        var spec = spec
        for i in spec.task.networks.indices {
            let n = try store.resolve(ClusterNetwork.self, spec.task.networks[i].target)
            if n.ingress { throw .invalidArgument("service cannot be explicitly attached to the ingress network \"\(n.name)\"") }
            spec.task.networks[i].target = n.id
        }
        try checkDataReferences(spec)
        return spec
    }

    /// Every secret and config a service names exists with that ID and name (swarmkit's
    /// `checkSecretExistence`): a task must never be made for a file the node cannot supply.
    func checkDataReferences(_ spec: ServiceSpec) throws(ClusterError) {
        for r in spec.task.container.secrets ?? [] {
            guard let s = try store.get(ClusterSecret.self, id: r.id), s.spec.name == r.name else {
                throw .invalidArgument("secret not found: \(r.name)")
            }
        }
        for r in spec.task.container.configs ?? [] {
            guard let c = try store.get(ClusterConfig.self, id: r.id), c.spec.name == r.name else {
                throw .invalidArgument("config not found: \(r.name)")
            }
        }
    }

    /// `service create`.
    public mutating func createService(_ spec: ServiceSpec, now: Date = Date()) throws(ClusterError) -> ClusterService {
        try spec.validate()
        var service = ClusterService(id: ObjectID.make(), spec: try resolvingNetworks(spec), now: now)
        try allocator.allocateEndpoint(for: &service, ingressNetworkID: ingressNetworkID)
        do { return try store.create(service) } catch {
            allocator.releaseEndpoint(of: &service)
            throw error
        }
    }

    /// `service update` (and `scale`): `version` is the `Version.Index` the client read.
    public mutating func updateService(_ reference: String, version: UInt64, spec: ServiceSpec, now: Date = Date()) throws(ClusterError)
        -> ClusterService
    {
        var service = try store.resolve(ClusterService.self, reference)
        try service.checkSameIdentity(spec)
        guard service.version == version else {
            throw .outOfSequence(objectKind: "service", id: service.id, expected: service.version, got: version)
        }
        try service.update(to: try resolvingNetworks(spec), now: now)
        return try storeEndpoint(&service)
    }

    /// `service rollback` / `update --rollback`.
    public mutating func rollbackService(_ reference: String, version: UInt64, now: Date = Date()) throws(ClusterError) -> ClusterService {
        var service = try store.resolve(ClusterService.self, reference)
        guard service.version == version else {
            throw .outOfSequence(objectKind: "service", id: service.id, expected: service.version, got: version)
        }
        try service.rollback(now: now)
        return try storeEndpoint(&service)
    }

    private mutating func storeEndpoint(_ service: inout ClusterService) throws(ClusterError) -> ClusterService {
        do {
            try allocator.allocateEndpoint(for: &service, ingressNetworkID: ingressNetworkID)
            return try store.update(service)
        } catch {
            resync()
            throw error
        }
    }

    /// `service rm`: the VIPs and ports go now; the tasks are told to stop in the same write (swarmkit's
    /// orchestrator marks a deleted service's tasks at once, so no reader such as `network rm` right after
    /// `service rm` sees them still wanted) and are deleted once they have stopped.
    public mutating func removeService(_ reference: String, now: Date = Date()) throws(ClusterError) {
        var service = try store.resolve(ClusterService.self, reference)
        let id = service.id
        try store.write { tx throws(ClusterError) in
            for var t in try tx.tasks(serviceID: id) where t.isActive {
                t.desiredState = .shutdown
                t.updatedAt = now
                try tx.update(t)
            }
            try tx.delete(ClusterService.self, id: id)
        }
        allocator.releaseEndpoint(of: &service)
    }

    // MARK: agents

    /// A node reports a task's state. States only move forward (a late report of an older state is ignored);
    /// returns whether anything changed.
    @discardableResult
    public func reportTaskStatus(taskID: String, nodeID: String, status: TaskStatus) throws(ClusterError) -> Bool {
        try store.write { tx throws(ClusterError) in
            guard var task = try tx.get(ClusterTask.self, id: taskID) else {
                throw .notFound(objectKind: "task", reference: taskID)
            }
            guard task.nodeID == nodeID else {
                throw .failedPrecondition("task \(taskID) is not assigned to node \(nodeID)")
            }
            guard status.state > task.status.state || (status.state == task.status.state && status != task.status) else {
                return false
            }
            // A completed task stays complete: its node reports it shut down once it lets it go (a
            // finished job's task), and a job counts what completed.
            guard !(task.status.state == .complete && status.state == .shutdown) else { return false }
            task.status = status
            task.updatedAt = status.timestamp
            try tx.update(task)
            return true
        }
    }

    /// The tasks a node should run or stop (its assignment set over the 2377 stream).
    public func assignments(nodeID: String) throws(ClusterError) -> [ClusterTask] {
        try store.tasks(nodeID: nodeID).filter { !$0.status.state.isTerminal || $0.desiredState <= .running }
    }

    // MARK: convergence

    /// One control-loop pass: orchestrate, allocate addresses for new tasks, schedule, then release and delete
    /// finished tasks. Returns when to run again at the latest (restart and update delays, monitor windows).
    /// `only` limits orchestration to the services that changed.
    public mutating func reconcile(now: Date = Date(), only serviceIDs: Set<String>? = nil) throws(ClusterError) -> Date? {
        do {
            let snapshot = try store.snapshot()
            var plan = orchestrator.reconcile(snapshot, now: now, only: serviceIDs)
            let planned = Set(plan.updatedTasks.map(\.id))
            let unallocated = snapshot.tasks.filter { $0.status.state == .new && $0.isActive && !planned.contains($0.id) }
            // New tasks, and earlier ones that could not get addresses, are allocated before scheduling;
            // only their services are copied out of the snapshot.
            if !plan.createdTasks.isEmpty || !unallocated.isEmpty {
                let index = snapshot.serviceIndex()
                var services: [String: ClusterService] = [:]
                for id in Set(plan.createdTasks.map(\.serviceID) + unallocated.map(\.serviceID)) {
                    if let i = index[id] { services[id] = snapshot.services[i] }
                }
                for s in plan.updatedServices { services[s.id] = s }
                for i in plan.createdTasks.indices {
                    allocate(&plan.createdTasks[i], services: services, now: now)
                }
                for var t in unallocated where allocate(&t, services: services, now: now) { plan.updatedTasks.append(t) }
            }
            if !plan.isEmpty { try store.apply(plan) }

            let scheduled = scheduler.schedule(try store.snapshot(), now: now)
            if !scheduled.isEmpty { try store.apply(scheduled: scheduled) }

            let after = try store.snapshot()
            let cleanup = reaper.plan(after)
            if !cleanup.release.isEmpty || !cleanup.delete.isEmpty {
                let byID = Dictionary(after.tasks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                let deleting = Set(cleanup.delete)
                var released: [ClusterTask] = []
                for id in cleanup.release where !deleting.contains(id) {
                    var t = byID[id]!
                    allocator.releaseTask(&t)
                    released.append(t)
                }
                for id in cleanup.delete {
                    var t = byID[id]!
                    allocator.releaseTask(&t)
                }
                let toStore = released
                try store.write { tx throws(ClusterError) in
                    for t in toStore { try tx.update(t) }
                    for id in cleanup.delete { try tx.delete(ClusterTask.self, id: id) }
                }
            }
            return plan.nextWake
        } catch {
            resync()
            throw error
        }
    }

    /// Gives a new task its addresses: `allocated` on success; on failure it stays `new` with the reason in
    /// `status.err` (and is retried on the next pass). Returns whether the task changed.
    @discardableResult
    private mutating func allocate(_ task: inout ClusterTask, services: [String: ClusterService], now: Date) -> Bool {
        guard let service = services[task.serviceID] else { return false }
        do {
            try allocator.allocateTask(&task, service: service, ingressNetworkID: ingressNetworkID)
            task.status = TaskStatus(state: .allocated, timestamp: now, message: "allocated")
        } catch {
            let before = task.status
            task.status = TaskStatus(state: .new, timestamp: now, message: "created", err: error.description)
            return before.err != task.status.err
        }
        return true
    }
}
