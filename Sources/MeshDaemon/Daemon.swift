import Foundation
import Logging
import MeshAPI
import MeshCluster
import MeshControl
import MeshDataplane
import MeshEtcd
import MeshGossip
import MeshImage
import MeshKernel
import MeshRuntime
import X509

/// One node's daemon behind the API socket: outside a swarm, a worker, or a manager. Swarm
/// membership (init, join, leave) is handled here; cluster reads and writes go to the manager's
/// `ClusterController`, and a worker refuses them as dockerd does.
public actor Daemon: EngineBackend {
    public struct Options: Sendable {
        public var dataRoot: String
        public var lb: LoadBalancerKind
        /// This executable, which runs `meshd whoami` tasks.
        public var meshd: String
        public var hostname: String
        public var liveness = NodeLiveness(gracePeriod: 10)
        /// How often a manager rotates the gossip key (Docker: 12 h); nil: only when a node is removed.
        public var gossipKeyPeriod: Duration? = .seconds(12 * 3600)
        /// How the node reaches registries for images outside its process catalog (mirrors,
        /// insecure registries); those images run as runc containers.
        public var registry = RegistryOptions()
        /// `--cluster-store etcd://…`: where `swarm init` keeps the swarm so that several managers share it
        /// (nil: the embedded SQLite store, one manager).
        public var clusterStore: String?
        /// The leadership lease's TTL in seconds: how long a killed leader holds on before another takes over.
        public var leaderTTL: Int64 = 5
        /// False (`--no-builtin-images`): busybox, alpine and the whoami names are not run from the
        /// host's programs but pulled like any image (a registry mirror serves them).
        public var builtinImages = true
        /// The shortest `--cert-expiry` accepted (swarmkit's 1 h; tests lower it to watch renewals).
        public var minimumCertificateExpiry = SwarmSpecRules.minimumCertificateExpiry
        public init(dataRoot: String, lb: LoadBalancerKind, meshd: String, hostname: String) {
            self.dataRoot = dataRoot
            self.lb = lb
            self.meshd = meshd
            self.hostname = hostname
        }
    }

    let options: Options
    /// Notices for the cluster page, published by the manager plane while it runs.
    public nonisolated let pageChanges = ChangeBroadcast()
    private(set) var record: NodeRecord?
    /// A manager of an autolocked swarm restarted: its membership as node.json keeps it (private key
    /// sealed), nothing started until `swarm unlock` gives the key.
    private(set) var lockedRecord: NodeRecord?
    private(set) var node: NodePlane?
    /// The node's certificate in force, shared by every 2377 end of this membership (renewed by the node plane).
    private var certificate: NodeCertificate?
    private(set) var manager: ManagerPlane?
    /// On a swarm whose managers share etcd: this manager's campaign, which sets `manager` while it leads.
    private(set) var candidacy: ManagerCandidacy?
    /// The shared store's commits as `docker events` (etcd managers).
    private var sharedEvents: Task<Void, Never>?
    /// An init or join is under way (both await between their check and their end).
    private var changingMembership = false
    /// The node's image store, opened with the data root (it outlives swarm membership, as
    /// dockerd's images do).
    private var images: NodeImages?
    /// The container API over the node plane's runtime (Daemon+Containers.swift).
    private var containerAPI: NodeContainers?

    public init(options: Options) { self.options = options }

    /// The image store, opened on first use (after the data root is made and secured).
    func nodeImages() throws -> NodeImages {
        if let images { return images }
        let made = try NodeImages(dataRoot: options.dataRoot, options: options.registry) { DaemonLog.node.warning("\($0)") }
        images = made
        return made
    }

    /// For the node plane: a store that cannot open (a damaged index) must not keep the node out of
    /// its swarm; its tasks of catalog images run, container tasks fail with the catalog's message
    /// and the log says why.
    /// The node's plane for `record`, as this daemon's options say (resume, init and join alike).
    private func startNodePlane(_ record: NodeRecord) async throws -> NodePlane {
        // A manager of a swarm on etcd takes the autolock keys its leader hands over.
        var unlockKeys: (@Sendable (String?, String?) async -> Void)?
        if record.role == .manager, record.store != nil {
            unlockKeys = { [weak self] current, previous in await self?.takeUnlockKeys(current, previous) }
        }
        let plane = try await NodePlane.start(
            record: record, certificate: nodeCertificate(record), dataRoot: options.dataRoot, lb: options.lb, meshd: options.meshd,
            images: nodeImagesIfAvailable(), builtinImages: options.builtinImages, unlockKeys: unlockKeys)
        // The node's containers in `docker events`, as dockerd reports its own (scope local).
        await plane.agent.onContainerEvent { [eventLog] e in eventLog.publish([EventTranslator.container(e)]) }
        return plane
    }

    /// The certificate holder of `record`'s membership: made once per membership (a leave ends it), so
    /// the planes started for it, at any time, share what renewal puts in force.
    func nodeCertificate(_ record: NodeRecord) -> NodeCertificate {
        if let certificate, certificate.nodeID == record.nodeID, certificate.clusterID == record.clusterID { return certificate }
        let made = NodeCertificate(record: record)
        certificate = made
        return made
    }

    func nodeImagesIfAvailable() -> NodeImages? {
        do { return try nodeImages() } catch {
            DaemonLog.node.error("image store under \(options.dataRoot)/images cannot open, containers will not run: \(error)")
            return nil
        }
    }

    /// The node's containers, served over the node plane's runtime; nil outside a swarm. Made
    /// again when the node plane is (a new swarm), so exec instances never outlive their runtime.
    func nodeContainers() -> NodeContainers? {
        guard let runtime = node?.runtime else {
            containerAPI = nil
            return nil
        }
        if let c = containerAPI, c.runtime === runtime { return c }
        let agent = node?.agent
        let c = NodeContainers(runtime: runtime, health: { id in await agent?.health(id) })
        containerAPI = c
        return c
    }

    var storePath: String { "\(options.dataRoot)/cluster.sqlite" }

    /// What the cluster page listens to: one notice per change the manager commits or hears.
    public nonisolated func clusterChanges() -> AsyncStream<String> { pageChanges.subscribe() }

    /// Each node's last traffic report, by node ID (empty on a worker).
    func managerTraffic() async -> [String: NodeTraffic] { await manager?.nodeTraffic() ?? [:] }

    /// The metrics read at scrape time (Prometheus text); empty outside a swarm.
    public func liveMetrics() async -> String {
        guard let node else { return "" }
        var text = await node.liveMetrics()
        if let refusals = await manager?.refusals {
            var p = PrometheusText()
            p.family(
                "meshd_control_refusals_total", .counter, help: "Peers the 2377 listener refused, by cause.",
                ControlRefusalCause.allCases.map { .init(labels: [("cause", $0.rawValue)], value: UInt64(refusals[$0])) })
            text += p.text
        }
        return text
    }

    /// A restarted daemon picks up its membership where it left it. First the data root is made (0700)
    /// or checked: modes wider than `DataRoot` allows are narrowed, each with a warning.
    public func resume() async throws {
        try secureDataRoot()
        guard let record = try NodeRecord.load(dataRoot: options.dataRoot) else { return }
        // Autolocked: the private key (and the store's CA key) wait for `swarm unlock`. The store
        // is asked too: a daemon ended between sealing the store and its own key is locked as well.
        let storeLocked = record.role == .manager && record.store == nil && (try? ClusterBootstrap.isLocked(store: openStore())) == true
        if record.sealedKeyPEM != nil || storeLocked {
            lockedRecord = record
            DaemonLog.daemon.warning("the swarm is autolocked: this manager waits for docker swarm unlock")
            return
        }
        try await rejoin(record, unlockKey: nil)
    }

    private func openStore() throws -> SQLiteClusterStore { try SQLiteClusterStore(path: storePath) }

    /// The planes of a membership node.json holds (its private key open), at start or at unlock.
    private func rejoin(_ record: NodeRecord, unlockKey: UnlockKey?) async throws {
        if record.role == .manager, let url = record.store {
            try await startCandidacy(try EtcdStoreURL(parsing: url), record: record)
        } else if record.role == .manager {
            let store = try openStore()
            guard let m = try ClusterManager.open(store: store, unlockKey: unlockKey) else {
                throw DaemonError.config(
                    "\(storePath) holds no cluster although \(NodeRecord.path(dataRoot: options.dataRoot)) says this node is a manager")
            }
            manager = try await startPlane(ClusterController(manager: m, selfNodeID: record.nodeID), record: record)
        }
        node = try await startNodePlane(record)
        self.record = record
        DaemonLog.daemon.info("resumed as \(record.role.rawValue) \(record.nodeID) at \(record.advertiseAddr)")
    }

    /// `swarm unlock`: the key opens this manager's private key and the store's CA key, then the
    /// manager starts as at any restart. A wrong key changes nothing.
    public func unlockSwarm(_ text: String) async throws(EngineError) {
        guard let locked = lockedRecord else { throw record == nil ? .notPartOfSwarm : .swarmNotLocked }
        guard !changingMembership else { throw .swarmLocked }
        changingMembership = true
        defer { changingMembership = false }
        let key: UnlockKey
        do { key = try UnlockKey(parsing: text) } catch { throw .invalidArgument(error.description) }
        let opened: NodeRecord
        do {
            opened = try locked.opened(with: key)
            // The store's CA key must open too, before anything starts (etcd's, for a swarm on etcd).
            if locked.role == .manager, let url = locked.store {
                _ = try ClusterBootstrap.openedSettings(store: try EtcdStoreURL(parsing: url).open(), key: key)
                heldUnlockKeys = (key, nil)
            } else if locked.role == .manager {
                _ = try ClusterBootstrap.openedSettings(store: openStore(), key: key)
            }
        } catch {
            throw .invalidUnlockKey
        }
        do {
            try await rejoin(opened, unlockKey: key)
        } catch {
            // Back to locked, with nothing left running.
            await manager?.stop()
            manager = nil
            throw Self.engineError(error)
        }
        lockedRecord = nil
        // The key given is the only one from now on (a rotation's other key is dropped), in the
        // store and in node.json; and node.json follows the store if a crash left them apart.
        do {
            if let c = manager?.controller { try await c.settleUnlockKey() }
            try await resealRecord()
        } catch {
            DaemonLog.daemon.warning("unlocked, but cannot reseal the keys at rest: \(error)")
        }
        DaemonLog.daemon.info("unlocked")
    }

    /// node.json again with this manager's private key sealed by the swarm's key in force (or open
    /// once autolock is off). What the node plane saved since (managers, gossip keys) is kept.
    private func resealRecord() async throws(EngineError) {
        guard let record, record.role == .manager else { return }
        let key: UnlockKey?, previous: UnlockKey?
        if let manager {
            (key, previous) = await manager.controller.currentUnlockKeys
        } else if record.store != nil {
            // A manager on etcd that does not lead: the keys the leader handed over.
            (key, previous) = heldUnlockKeys
        } else {
            return
        }
        do {
            try NodeRecord.update(dataRoot: options.dataRoot) { onDisk in
                onDisk.keyPEM = record.keyPEM
                onDisk = onDisk.sealed(with: key, previous: previous)
            }
        } catch {
            throw .internalError("cannot save \(NodeRecord.path(dataRoot: options.dataRoot)): \(error)")
        }
    }

    /// The manager plane over `controller`: the one way every role starts it (SQLite at init and resume,
    /// a leader of a swarm on etcd at each takeover).
    private func startPlane(_ controller: ClusterController, record: NodeRecord) async throws -> ManagerPlane {
        var forward: ManagerPlane.ForwardHandler?
        if record.store != nil {
            forward = { @Sendable [weak self] (request: ForwardedRequest) async -> ForwardedResponse in
                guard let self else { return ForwardedResponse.unavailable }
                return await self.answerForwarded(request)
            }
        }
        return try await ManagerPlane.start(
            controller: controller, record: record, certificate: nodeCertificate(record), liveness: options.liveness,
            onCommit: record.store == nil ? publishEvents : nil,
            onTraffic: { [pageChanges] in pageChanges.publish("{\"changed\":[\"traffic\"]}") },
            gossipKeyPeriod: options.gossipKeyPeriod, wantsTraffic: { [pageChanges] in pageChanges.count > 0 },
            storeURL: record.store, forward: forward)
    }

    /// Campaigns for leadership on the shared store; the plane runs (and `manager` is set) while this
    /// manager leads.
    private func startCandidacy(_ url: EtcdStoreURL, record: NodeRecord) async throws {
        let port = NodePlane.split(record.listenAddr)?.1 ?? 2377
        let me = ManagerCandidacy.Leader(nodeID: record.nodeID, address: "\(record.advertiseAddr):\(port)")
        let certificate = nodeCertificate(record)
        let c = ManagerCandidacy(
            url: url.preferring(host: record.advertiseAddr), me: me, clusterID: record.clusterID, ttl: options.leaderTTL,
            startPlane: { [weak self] controller in
                guard let self else { throw DaemonError.config("the daemon is gone") }
                return try await self.startPlane(controller, record: record)
            },
            planeChanged: { [weak self] plane in await self?.setManager(plane) },
            unlockKey: { [weak self] in await self?.heldUnlockKeys.0 },
            startFollower: { candidacy in
                do { return try await FollowerListener.start(record: record, certificate: certificate) { await candidacy.leader() } } catch
                {
                    DaemonLog.manager.warning("cannot listen on \(record.listenAddr) while following: \(error)")
                    return nil
                }
            })
        candidacy = c
        await c.start()
        watchSharedStore(c.store)
    }

    /// `docker events` on every manager of a swarm on etcd, leading or not: one watch of the shared
    /// store for the daemon's whole membership (the plane watches only on SQLite), so events neither
    /// stop nor repeat when leadership moves.
    private func watchSharedStore(_ store: EtcdClusterStore) {
        sharedEvents?.cancel()
        let publish = publishEvents
        sharedEvents = Task.detached {
            var seen: UInt64?
            while !Task.isCancelled {
                do {
                    // A watch that ended resumes after the last commit it delivered: none lost, none twice.
                    let watch = try seen.map { try store.watch(after: $0) } ?? store.watch()
                    for await commit in watch.commits {
                        if Task.isCancelled { return }
                        seen = commit.index
                        // A relist is the whole store again, not news: no events for it.
                        if !commit.relist { publish(commit) }
                    }
                } catch {
                    DaemonLog.manager.warning("cannot watch the cluster store for events: \(error)")
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func setManager(_ plane: ManagerPlane?) async {
        // A leader stepping down keeps the keys it led with (a rotation it made included), for its next takeover.
        // Set first: a takeover that comes while this waits must not be undone by it.
        let leading = manager
        manager = plane
        if plane == nil, let leading, record?.store != nil { heldUnlockKeys = await leading.controller.currentUnlockKeys }
    }

    func secureDataRoot() throws(DaemonError) {
        for repair in try DataRoot.secure(options.dataRoot) { DaemonLog.daemon.warning("\(repair.description)") }
    }

    /// Peers the manager's 2377 listener refused, by cause; nil on a node that is no manager.
    public var controlRefusals: ControlRefusals? {
        get async { await manager?.refusals }
    }

    /// Gossip packets and frames this node dropped, by cause; nil outside a swarm.
    public var gossipDrops: GossipDrops? {
        get async { await node?.gossipDrops }
    }

    /// Daemon exit (not a leave): tasks and the dataplane stay for the next start. A leading manager
    /// resigns, so another takes over without waiting out the lease.
    public func shutdown() async {
        sharedEvents?.cancel()
        await candidacy?.stop(resign: true)
        candidacy = nil
        await manager?.stop()
        await node?.stop(leave: false)
        await images?.shutdown()
        images = nil
    }

    private func controller() throws(EngineError) -> ClusterController {
        if lockedRecord != nil { throw .swarmLocked }
        guard record != nil else { throw .notInSwarm }
        guard let manager else { throw .notAManager }
        return manager.controller
    }

    // MARK: swarm

    public func swarmInfo() async -> SwarmInfo {
        if let locked = lockedRecord {
            return SwarmInfo(NodeID: locked.nodeID, NodeAddr: locked.advertiseAddr, LocalNodeState: .locked, ControlAvailable: false)
        }
        guard let record else { return SwarmInfo() }
        if let manager { return await manager.controller.swarmInfo(selfAddr: record.advertiseAddr) }
        if let candidacy {
            let store = candidacy.store
            return await Task.detached {
                ClusterController.followerSwarmInfo(store: store, selfNodeID: record.nodeID, selfAddr: record.advertiseAddr)
            }.value
        }
        let managers = record.managers.map { SwarmInfo.Peer(NodeID: "", Addr: $0) }
        return SwarmInfo(
            NodeID: record.nodeID, NodeAddr: record.advertiseAddr, LocalNodeState: .active, ControlAvailable: false,
            RemoteManagers: managers)
    }

    public func inspectSwarm() async throws(EngineError) -> Swarm { try await controller().inspectSwarm() }

    public func initSwarm(_ request: SwarmInitRequest) async throws(EngineError) -> String {
        guard record == nil, lockedRecord == nil, !changingMembership else { throw .alreadyInSwarm }
        // Init awaits (the store, the election): a second init or a join meanwhile must not interleave.
        changingMembership = true
        defer { changingMembership = false }
        let advertise = try AddressChoice.advertise(request.AdvertiseAddr, listen: request.ListenAddr)
        let listen = AddressChoice.listen(request.ListenAddr)
        let nodeID = ObjectID.make()
        let dataPathPort = UInt16(clamping: (request.DataPathPort ?? 0) == 0 ? 4789 : request.DataPathPort!)
        // Refused before anything is made: a spec meshd cannot honour leaves the node out of any swarm.
        let spec = try SwarmSpecRules.initialSpec(request)
        try SwarmSpecRules.checkCertificateExpiry(spec, minimum: options.minimumCertificateExpiry)
        // VXLAN leaves from the advertise address; a separate data path address is refused, not ignored.
        if let dataPath = request.DataPathAddr, !dataPath.isEmpty,
            try AddressChoice.advertise(dataPath, listen: request.ListenAddr) != advertise
        {
            throw .invalidArgument(
                "DataPathAddr: meshd sends the data path from the advertise address (\(advertise)); a separate data path address is not supported"
            )
        }
        let availability = NodeAvailability(rawValue: request.Availability ?? "") ?? .active
        var shared: EtcdStoreURL?
        if let url = options.clusterStore {
            do { shared = try EtcdStoreURL(parsing: url) } catch { throw .invalidArgument(error.description) }
        }
        let autolock = spec.EncryptionConfig?.AutoLockManagers == true
        var created: EtcdStoreURL?
        do {
            try secureDataRoot()
            let store: any ClusterStore
            if let shared {
                let etcd = shared.open()
                // Another swarm's state is never overwritten: its managers may be running.
                if let other = try ClusterBootstrap.settings(store: etcd) {
                    throw EngineError.conflict(
                        "the cluster store \(shared) already holds swarm \(other.clusterID): join it with a manager token (docker swarm join-token manager on one of its managers), or use another prefix"
                    )
                }
                store = etcd
                created = shared
            } else {
                store = try SQLiteClusterStore(path: storePath)
            }
            let m = try ClusterManager.initialize(
                store: store, nodeID: nodeID, hostname: options.hostname, advertiseAddr: advertise,
                defaultAddrPool: request.DefaultAddrPool ?? [],
                subnetSize: Int(request.SubnetSize ?? 24), dataPathPort: dataPathPort, unlockKey: autolock ? UnlockKey.generate() : nil)
            // The controller reads its swarm record (and the retention limit it sets) from the store.
            try ClusterController.recordInitialSpec(spec, in: m)
            if var me = try m.store.get(ClusterNode.self, id: nodeID) {
                me.description = NodeFacts.local()
                me.availability = availability
                _ = try m.store.update(me)
            }
            let credentials = try NodeCredentials.issue(
                by: m.ca, nodeID: nodeID, role: .manager, validity: SwarmSpecRules.certificateValidity(spec))
            let record = NodeRecord(
                nodeID: nodeID, hostname: options.hostname, role: .manager, clusterID: m.settings.clusterID,
                advertiseAddr: advertise, listenAddr: listen, dataPathPort: dataPathPort,
                managers: ["\(advertise):\(NodePlane.split(listen)?.1 ?? 2377)"],
                certificatePEM: credentials.certificatePEM, keyPEM: credentials.keyPEM,
                caPEM: m.ca.certificatePEM, gossipKeys: m.settings.gossipKeys.map { KeyHex.encode($0.bytes) },
                store: shared?.description)
            if let shared {
                // The first manager leads once its campaign wins (at once: nobody else campaigns yet),
                // opening the store's CA key with the swarm's key when it is autolocked.
                heldUnlockKeys = (m.unlockKey, nil)
                try await startCandidacy(shared, record: record)
                guard await candidacy?.waitUntilLeading(timeout: .seconds(15)) == true else {
                    throw EngineError.unavailable("this manager did not win the leadership of the new swarm on \(shared) within 15 s")
                }
            } else {
                manager = try await startPlane(ClusterController(manager: m, selfNodeID: nodeID), record: record)
            }
            try record.sealed(with: m.unlockKey).save(dataRoot: options.dataRoot)
            node = try await startNodePlane(record)
            self.record = record
            DaemonLog.daemon.info("swarm initialised: node \(nodeID) manager at \(advertise), listening on \(listen)")
            return nodeID
        } catch {
            await abandon()
            // A half-made swarm in etcd would refuse every later init, with no manager to join: this init
            // made the prefix (it was empty), so it takes it away again.
            if let created { await Self.erase(created) }
            throw Self.engineError(error)
        }
    }

    public func joinSwarm(_ request: SwarmJoinRequest) async throws(EngineError) {
        guard record == nil, lockedRecord == nil, !changingMembership else { throw .alreadyInSwarm }
        changingMembership = true
        defer { changingMembership = false }
        guard let remote = request.RemoteAddrs.first else { throw .invalidArgument("at least 1 RemoteAddr is required to join") }
        let target = remote.contains(":") ? remote : "\(remote):2377"
        guard let (host, port) = NodePlane.split(target) else { throw .invalidArgument("invalid remote address \(remote)") }
        let token: JoinToken
        do { token = try JoinToken.parse(request.JoinToken) } catch {
            throw .invalidArgument("invalid join token: \(error.description)")
        }
        let advertise: String
        if let a = request.AdvertiseAddr, !a.isEmpty {
            advertise = try AddressChoice.advertise(a, listen: request.ListenAddr)
        } else {
            guard let a = AddressChoice.source(towards: host) else {
                throw .invalidArgument("could not find the local address that reaches \(host): use --advertise-addr")
            }
            advertise = a
        }
        do {
            // Trust nothing the manager says before its CA matches the token's digest.
            let chain = try await ControlClient.presentedChain(host: host, port: port)
            guard let caDER = chain.first(where: { JoinToken.digest(ofCACertificate: $0) == token.caDigest }) else {
                throw DaemonError.join(
                    "the manager at \(target) is not of the swarm this token belongs to (its CA does not match the token's digest)")
            }
            let caPEM = try Certificate(derEncoded: caDER).serializeAsPEM().pemString
            let nodeID = ObjectID.make()
            let (key, csr) = try ClusterCA.makeRequest(nodeID: nodeID)
            let joinRequest = JoinRequest(
                token: request.JoinToken, csrPEM: try csr.serializeAsPEM().pemString,
                hostname: options.hostname, advertiseAddress: IPAddress(advertise)!,
                platform: NodeFacts.platform())
            guard
                case .joinResponse(let response)? = try await ControlClient.ask(
                    .joinRequest(joinRequest), host: host, port: port, caPEM: caPEM)
            else { throw DaemonError.join("the manager at \(target) did not answer the join request") }
            if let error = response.error { throw DaemonError.join(error) }
            guard let certificatePEM = response.certificatePEM, response.nodeID == nodeID else {
                throw DaemonError.join("the manager's answer holds no certificate")
            }
            guard let subject = ClusterCA.subject(of: try PEMChain.leaf(certificatePEM)), subject.nodeID == nodeID else {
                throw DaemonError.join("the manager issued a certificate for another node")
            }
            let saved = NodeRecord(
                nodeID: nodeID, hostname: options.hostname, role: subject.role, clusterID: subject.clusterID,
                advertiseAddr: advertise, listenAddr: AddressChoice.listen(request.ListenAddr),
                dataPathPort: 4789, managers: response.managers.isEmpty ? [target] : response.managers,
                certificatePEM: certificatePEM, keyPEM: key.pemRepresentation, caPEM: caPEM,
                gossipKeys: response.gossipKeys)
            let role = subject.role
            var shared: EtcdStoreURL?
            if role == .manager {
                guard let url = response.store else {
                    throw DaemonError.join("the manager issued a manager certificate but did not say where the swarm's store is")
                }
                // This daemon's own --cluster-store wins: the leader's endpoints may be addresses only it reaches.
                shared = try EtcdStoreURL(parsing: options.clusterStore ?? url)
            }
            var record = saved
            record.store = shared?.description
            try secureDataRoot()
            try record.save(dataRoot: options.dataRoot)
            if let shared { try await startCandidacy(shared, record: record) }
            node = try await startNodePlane(record)
            self.record = record
            DaemonLog.daemon.info("joined the swarm as \(role.rawValue) \(nodeID) through \(target)")
        } catch {
            await abandon()
            throw Self.engineError(error)
        }
    }

    /// Removes everything under the store's prefix.
    private static func erase(_ url: EtcdStoreURL) async {
        let store = url.open()
        let prefix = store.keys.all
        do { _ = try store.client.deleteRange(DeleteRangeRequest(key: prefix, rangeEnd: EtcdKey.prefixEnd(prefix))) } catch {
            DaemonLog.daemon.error("cannot remove the failed swarm from \(url): \(error)")
        }
    }

    /// Undoes a half-made membership (a failed init or join).
    private func abandon() async {
        let shared = candidacy != nil || record?.store != nil
        sharedEvents?.cancel()
        sharedEvents = nil
        await candidacy?.stop(resign: true)
        candidacy = nil
        await manager?.stop()
        manager = nil
        await node?.stop(leave: true)
        node = nil
        record = nil
        certificate = nil
        NodeRecord.remove(dataRoot: options.dataRoot)
        // A shared store is the other managers' too: leaving removes nothing from it.
        if !shared { removeStore() }
    }

    private func removeStore() {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath + suffix) }
    }

    public func leaveSwarm(force: Bool) async throws(EngineError) {
        if let locked = lockedRecord {
            // Locked, nothing runs: leaving removes the membership (and, with --force, the swarm).
            // Not while an unlock is starting the planes over the same files.
            guard !changingMembership else { throw .swarmLocked }
            if locked.role == .manager, !force { throw .lastManagerLeaving }
            changingMembership = true
            defer { changingMembership = false }
            do {
                try await NodePlane.removeLeftovers(record: locked, dataRoot: options.dataRoot, lb: options.lb, meshd: options.meshd)
            } catch {
                DaemonLog.daemon.warning("leaving while locked: cannot remove the previous run's tasks and dataplane: \(error)")
            }
            lockedRecord = nil
            NodeRecord.remove(dataRoot: options.dataRoot)
            if locked.store == nil { removeStore() }
            DaemonLog.daemon.info("left the swarm (it was locked)")
            return
        }
        guard let record else { throw .notPartOfSwarm }
        if record.role == .manager, !force {
            if record.store != nil {
                // The state is etcd's, not this node's: leaving erases nothing, but the swarm loses a manager.
                throw .unavailable(
                    "You are attempting to leave the swarm on a node that is participating as a manager. The swarm's state stays in its etcd store with the other managers, but this node will no longer be one of them. Use `--force` to ignore this message."
                )
            }
            throw .lastManagerLeaving
        }
        await abandon()
        DaemonLog.daemon.info("left the swarm")
    }

    public func updateSwarm(_ spec: SwarmSpec, version: UInt64, rotate: SwarmRotation) async throws(EngineError) {
        let c = try controller()
        try SwarmSpecRules.checkCertificateExpiry(spec, minimum: options.minimumCertificateExpiry)
        try await c.updateSwarm(spec, version: version, rotate: rotate)
        // This manager's own key follows the swarm's: sealed with the new key, or open again.
        try await resealRecord()
    }

    /// The autolock keys (in force, before a rotation) of a manager of a swarm on etcd that does not
    /// lead: what the leader handed it over its session, or what `swarm unlock` gave it. In memory
    /// only: they open the store's CA key when this manager takes over, and seal its own key at rest.
    private var heldUnlockKeys: (UnlockKey?, UnlockKey?) = (nil, nil)

    /// The leader's keys, as its session hands them over: held, and node.json sealed with them.
    private func takeUnlockKeys(_ current: String?, _ previous: String?) async {
        guard manager == nil else { return }
        do {
            let parsed = try current.map { k throws(ClusterError) in try UnlockKey(parsing: k) }
            heldUnlockKeys = (parsed, try previous.map { k throws(ClusterError) in try UnlockKey(parsing: k) })
        } catch {
            DaemonLog.daemon.warning("the leader sent autolock keys that do not parse: \(error)")
            return
        }
        do { try await resealRecord() } catch {
            DaemonLog.daemon.warning("cannot reseal node.json with the swarm's autolock key: \(error)")
        }
    }

    public func unlockKey() async throws(EngineError) -> String { try await controller().unlockKey() }

    // MARK: nodes

    public func listNodes(_ filter: NodeFilter) async throws(EngineError) -> [Node] { try await controller().listNodes(filter) }
    public func inspectNode(_ ref: String) async throws(EngineError) -> Node { try await controller().inspectNode(ref) }
    public func updateNode(_ ref: String, version: UInt64, spec: NodeSpec) async throws(EngineError) {
        try await controller().updateNode(ref, version: version, spec: spec)
    }
    public func removeNode(_ ref: String, force: Bool) async throws(EngineError) {
        try await controller().removeNode(ref, force: force)
    }

    // MARK: services

    public func createService(_ spec: MeshAPI.ServiceSpec) async throws(EngineError) -> ServiceCreateResponse {
        try await controller().createService(spec)
    }
    public func listServices(_ filter: ServiceFilter, status: Bool) async throws(EngineError) -> [Service] {
        try await controller().listServices(filter, status: status)
    }
    public func inspectService(_ ref: String) async throws(EngineError) -> Service { try await controller().inspectService(ref) }
    public func updateService(_ ref: String, version: UInt64, spec: MeshAPI.ServiceSpec, rollback: Bool) async throws(EngineError)
        -> ServiceUpdateResponse
    {
        try await controller().updateService(ref, version: version, spec: spec, rollback: rollback)
    }
    public func removeService(_ ref: String) async throws(EngineError) { try await controller().removeService(ref) }

    public func serviceLogs(_ ref: String, options: LogOptions) async throws(EngineError) -> AsyncStream<LogMessage> {
        let c = try controller()
        let service = try await c.inspectService(ref)
        let tasks = try await c.listTasks(TaskFilter(FilterArgs(["service": [service.ID]])))
        let plane = manager
        return try await TaskLogs.stream(service: service.ID, tasks: tasks, options: options) { taskID, nodeID in
            await plane?.logs(taskID: taskID, nodeID: nodeID)
        }
    }

    // MARK: tasks

    public func listTasks(_ filter: TaskFilter) async throws(EngineError) -> [SwarmTask] { try await controller().listTasks(filter) }
    public func inspectTask(_ ref: String) async throws(EngineError) -> SwarmTask { try await controller().inspectTask(ref) }

    // MARK: events

    /// `docker events`: the daemon's, so a subscription outlives swarm init, leave and restarts of the manager plane.
    public nonisolated let eventLog = EventLog()

    /// The manager plane's store commits, as `docker events`.
    /// The page hears of every commit (task state changes too, which `docker events` leaves out),
    /// as the kinds of object it changed.
    private nonisolated var publishEvents: @Sendable (StoreCommit) -> Void {
        { [eventLog, pageChanges] commit in
            eventLog.publish(EventTranslator.events(commit))
            let kinds = Set(commit.changes.map(\.kind))
            if !kinds.isEmpty { pageChanges.publish("{\"changed\":[" + kinds.sorted().map { "\"\($0)\"" }.joined(separator: ",") + "]}") }
        }
    }

    public func events(_ query: EventQuery) async throws(EngineError) -> AsyncStream<EventMessage> { eventLog.subscribe(query) }

    /// Live events for readers in the process (the cluster page): the same messages `GET /events` sends.
    public nonisolated func subscribeEvents(filter: EventFilter = EventFilter()) -> AsyncStream<EventMessage> {
        eventLog.subscribe(filter: filter)
    }

    // MARK: secrets and configs

    public func createSwarmData(_ kind: SwarmDataKind, _ spec: SwarmDataSpec) async throws(EngineError) -> IDResponse {
        try await controller().createSwarmData(kind, spec)
    }
    public func listSwarmData(_ kind: SwarmDataKind, _ filter: SwarmDataFilter) async throws(EngineError) -> [SwarmDataObject] {
        try await controller().listSwarmData(kind, filter)
    }
    public func inspectSwarmData(_ kind: SwarmDataKind, _ ref: String) async throws(EngineError) -> SwarmDataObject {
        try await controller().inspectSwarmData(kind, ref)
    }
    public func updateSwarmData(_ kind: SwarmDataKind, _ ref: String, version: UInt64, spec: SwarmDataSpec) async throws(EngineError) {
        try await controller().updateSwarmData(kind, ref, version: version, spec: spec)
    }
    public func removeSwarmData(_ kind: SwarmDataKind, _ ref: String) async throws(EngineError) {
        try await controller().removeSwarmData(kind, ref)
    }

    // MARK: networks

    public func createNetwork(_ request: NetworkCreateRequest) async throws(EngineError) -> NetworkCreateResponse {
        try await controller().createNetwork(request)
    }
    public func listNetworks(_ filter: NetworkFilter) async throws(EngineError) -> [NetworkResource] {
        guard manager != nil else { return [] }
        return try await controller().listNetworks(filter)
    }
    public func inspectNetwork(_ ref: String, scope: String?) async throws(EngineError) -> NetworkResource {
        try await controller().inspectNetwork(ref, scope: scope)
    }
    public func removeNetwork(_ ref: String) async throws(EngineError) { try await controller().removeNetwork(ref) }
    public func pruneNetworks() async throws(EngineError) -> [String] { try await controller().pruneNetworks() }

    static func engineError(_ error: any Error) -> EngineError {
        switch error {
        case let e as EngineError: return e
        case let e as ClusterError: return ClusterController.engineError(e)
        case let e as DaemonError: return .invalidArgument(e.description)
        default: return .internalError("\(error)")
        }
    }
}
