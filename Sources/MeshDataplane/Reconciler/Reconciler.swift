import MeshKernel
#if canImport(Glibc)
    import Glibc
#endif

/// Makes one node's kernel match a `DataplaneState`: reads what meshd owns once (sandboxes of
/// this node by name, `table inet meshd`, the meshd-ingress link), then applies only the
/// difference on every call, keeping what it applied as the new baseline. A fresh process with
/// the same state therefore writes nothing, and a half-finished earlier apply (kill -9) is just
/// another difference.
public actor Reconciler {
    public let lb: LoadBalancerKind

    struct Known: Sendable {
        var model: SandboxModel
        var balancer: NFTBalancer.Applied
        var ipvs: IPVSBalancer.Applied
        var balancer6 = NFTBalancer.Applied()
        var meter = TrafficMeter.Applied()
        var returns = IngressReturn.Applied()
    }
    final class Handles: Sendable {
        let namespace: NetworkNamespace
        let netlink: NetlinkHandle
        let nft: NFTSocket
        let ipvs: IPVSHandle?
        init(_ ns: NetworkNamespace, ipvs: Bool = false) throws(KernelError) {
            namespace = ns
            netlink = try NetlinkHandle(namespace: ns)
            nft = try ns.openNFTables()
            self.ipvs = ipvs ? try IPVSHandle(namespace: ns) : nil
        }
    }

    private var nodeID: String?
    private var nodeNamespace: String??
    private var node: Handles?
    private var underlayMTU: [IPAddress: UInt32] = [:]
    private var known: [String: Known] = [:]
    private var knownNode = NodeIngress.Applied()
    private var knownESP = SecureOverlay.Applied()
    private var pendingESP: SecureOverlay.Applied?
    private var espStale = false
    /// The node namespace's XFRM socket, opened when an encrypted network first needs it.
    private var nodeXFRM: XFRMHandle?
    /// Whether this kernel programs ESP with AES-GCM (probed once; a failure is probed again at
    /// the next full apply, so loading esp4 later heals the node).
    private var espWorks = false
    /// Encrypted networks this node refuses to carry, with the reason (the kernel's answer).
    private var refused: [String: String] = [:]
    private var sandboxes: [String: Handles] = [:]
    /// The last full state applied, for `apply(_ changes:)`.
    private var index: StateIndex?

    public init(lb: LoadBalancerKind = .nftables) {
        self.lb = lb
    }

    private let turn = OneAtATime()

    public func apply(_ state: DataplaneState) async throws(DataplaneError) -> ChangeReport {
        try state.validate()
        await turn.enter()
        defer { turn.leave() }
        return try await timed(full: true) { () async throws(DataplaneError) in try await applyFull(state) }
    }

    private let metrics = ReconcileMetrics()

    private func timed(full: Bool, _ body: () async throws(DataplaneError) -> ChangeReport) async throws(DataplaneError) -> ChangeReport {
        let start = ContinuousClock.now
        do {
            let r = try await body()
            metrics.record(full: full, since: start, report: r)
            return r
        } catch {
            metrics.record(full: full, since: start, report: nil)
            throw error
        }
    }

    /// The agent's path: makes the kernel match `state` through single-object changes derived
    /// from the last state applied, so what reaches the kernel costs the difference, not the
    /// state (the full model is not rebuilt). A full apply only the first time, when the node's
    /// networks change, and after a failed change (whose model may be half applied).
    public func converge(_ state: DataplaneState) async throws(DataplaneError) -> ChangeReport {
        try state.validate()
        await turn.enter()
        defer { turn.leave() }
        if let idx = index, let node, nodeID == state.node.id, nodeNamespace == .some(state.node.namespace),
            let changes = idx.changes(to: state)
        {
            if changes.isEmpty { return ChangeReport() }
            do {
                return try await timed(full: false) { () async throws(DataplaneError) in try await applyChanges(changes, node: node) }
            } catch {
                // The index is gone (see applyChanges): the full apply below re-reads nothing it
                // need not and corrects whatever the failed change left.
            }
        }
        return try await timed(full: true) { () async throws(DataplaneError) in try await applyFull(state) }
    }

    private func applyFull(_ state: DataplaneState) async throws(DataplaneError) -> ChangeReport {
        let naming = Naming(nodeID: state.node.id)
        if nodeID != state.node.id || nodeNamespace != .some(state.node.namespace) {
            try await attach(state.node, naming: naming)
        }
        guard let node else { throw .invalidState(["no node namespace"]) }
        let mtu = try await mtu(for: state.node.advertiseAddress, node)
        refused = [:]
        let encrypted = state.networks.filter(\.isEncrypted)
        if !encrypted.isEmpty, let why = await probeESP(node) {
            for n in encrypted {
                refused[n.id] = "network \(n.name) is encrypted and this node cannot program IPsec ESP (AES-GCM): \(why)"
            }
        }
        let desired = DesiredModel(state, underlayMTU: mtu, refused: Set(refused.keys))
        if desired.sandboxes.keys.contains(where: { $0.utf8.count > 200 }) { throw .invalidState(["ids too long"]) }
        // A full apply (start, or after an error) reads the ESP table and pairs back from the kernel
        // instead of trusting memory: a flushed ruleset must not leave a secure VNI unguarded.
        espStale = true

        // Read what exists the first time, then trust what this process applied.
        var report = ChangeReport()
        for (_, why) in refused.sorted(by: { $0.key < $1.key }) { report.changes.append("node: refused: \(why)") }
        // The drop rule and the pairs before any sandbox (and so any endpoint) of a secure VNI.
        let espAfter = try await syncESP(
            desired.node, local: state.node.advertiseAddress, only: nil, node: node, report: &report)
        for name in desired.sandboxes.keys.sorted() {
            let want = desired.sandboxes[name]!
            let fresh = known[name] == nil
            if fresh {
                try await create(name, report: &report)
            }
            do {
                try await sync(name, want: want, node: node, report: &report)
            } catch {
                // A sandbox this apply made goes again: the node is left as it was.
                if fresh {
                    var ignored = ChangeReport()
                    try? await remove(name, report: &ignored)
                }
                throw error
            }
        }
        try await syncNode(
            desired.node, ingressSandbox: desired.sandboxes.values.first(where: \.ingressLink)?.name,
            node: node, report: &report)
        for name in known.keys.sorted() where desired.sandboxes[name] == nil {
            try await remove(name, report: &report)
        }
        // A VNI stops being secure only once its sandbox is gone.
        try await commitESP(espAfter, node: node)
        index = StateIndex(state, model: desired)
        return report
    }

    /// Applies single-object changes on top of the last full state: only what they touch is
    /// compared and written. Needs one `apply(_ state:)` first (the agent's initial sync).
    /// After a failure the index is dropped: its model may hold part of the batch, so the next
    /// call must be a full apply (`converge` does that by itself).
    public func apply(_ changes: [DataplaneChange]) async throws(DataplaneError) -> ChangeReport {
        await turn.enter()
        defer { turn.leave() }
        guard let node else { throw .invalidState(["apply a full state before single-object changes"]) }
        return try await timed(full: false) { () async throws(DataplaneError) in try await applyChanges(changes, node: node) }
    }

    private func applyChanges(_ changes: [DataplaneChange], node: Handles) async throws(DataplaneError) -> ChangeReport {
        guard var idx = index else {
            throw .invalidState(["apply a full state before single-object changes"])
        }
        index = nil  // uniquely referenced while it changes; restored only on success
        var touched = DesiredModel.Changes()
        for c in changes { try idx.apply(c, &touched) }
        var report = ChangeReport()
        if !touched.espPeers.isEmpty {
            // Pairs only (VNIs change with the networks, in a full apply): nothing comes after.
            let after = try await syncESP(
                idx.model.node, local: idx.state.node.advertiseAddress, only: touched.espPeers, node: node, report: &report)
            try await commitESP(after, node: node)
        }
        for (name, scope) in touched.sandboxes.sorted(by: { $0.key < $1.key }) {
            guard let want = idx.model.sandboxes[name], known[name] != nil else { continue }
            try await sync(name, want: want, scope: scope, node: node, report: &report)
        }
        if !touched.nodePorts.isEmpty {
            try await syncNode(
                idx.model.node, ingressSandbox: idx.model.sandboxes.values.first(where: \.ingressLink)?.name,
                ports: touched.nodePorts, node: node, report: &report)
        }
        index = idx
        return report
    }

    /// Encrypted networks this node does not carry because it cannot program ESP, network id →
    /// why (naming the kernel's answer): their tasks must not start (the agent rejects them).
    public func refusedNetworks() -> [String: String] { refused }

    /// What this node's dataplane holds now, read from the kernel.
    public func snapshot(nodeID: String, namespace: String?) async throws(DataplaneError) -> [SandboxModel] {
        let naming = Naming(nodeID: nodeID)
        var out: [SandboxModel] = []
        for name in NetworkNamespace.list().filter({ $0.hasPrefix(naming.sandboxPrefix) }).sorted() {
            do {
                let h = try Handles(try NetworkNamespace.open(named: name))
                var m = try await SandboxReader.read(name: name, handle: h.netlink, expected: nil)
                let b = try NFTBalancer.read(h.nft)
                m.balancer.vips = b.vipTargets
                m.balancer.published = b.portTargets
                m.balancer.hairpin = b.hairpin
                m.balancer.ingressSNAT = b.snat
                let b6 = try NFTBalancer.read(h.nft, family: .ipv6)
                m.balancer.vips6 = b6.vipTargets
                m.balancer.hairpin6 = b6.hairpin
                m.balancer.published6 = b6.portTargets
                let r = try await IngressReturn.read(nft: h.nft, netlink: h.netlink)
                for (mac, mark) in r.entries { m.returns[mac] = r.routes[mark] }
                out.append(m)
            } catch {
                throw .kernel(namespace: name, object: "read", error: error, rolledBack: false)
            }
        }
        return out
    }

    /// Each sandbox's VIP and published-port traffic, read from the meter's counters (four set
    /// dumps per sandbox: the cost is the number of VIPs and ports, not the ruleset).
    public func traffic() async -> [String: TrafficCounts] {
        var out: [String: TrafficCounts] = [:]
        for (name, h) in sandboxes where known[name]?.meter.chain == true {
            if let c = try? TrafficMeter.counts(h.nft) { out[name] = c }
        }
        return out
    }

    // MARK: - node

    private func attach(_ identity: NodeIdentity, naming: Naming) async throws(DataplaneError) {
        let nodeNS: NetworkNamespace
        do {
            if let s = identity.namespace { nodeNS = try TaskNamespace.open(s) } else { nodeNS = try NetworkNamespace.current() }
            node = try Handles(nodeNS)
        } catch {
            throw .namespace(identity.namespace ?? "(meshd's own)", error)
        }
        nodeID = identity.id
        nodeNamespace = .some(identity.namespace)
        known = [:]
        sandboxes = [:]
        nodeXFRM = nil
        espWorks = false
        espStale = false
        pendingESP = nil
        // Everything this node made before: sandboxes by name, the node table, staging links.
        for name in NetworkNamespace.list().filter({ $0.hasPrefix(naming.sandboxPrefix) }) {
            do {
                let ns = try NetworkNamespace.open(named: name)
                // A process killed inside `create` leaves the namespace without these: set again (idempotent).
                try Self.prepare(ns, ipvs: false)
                let h = try Handles(ns, ipvs: lb == .ipvs)
                if lb == .ipvs { try Self.prepare(ns, ipvs: true) }
                try await h.netlink.linkSetUp("lo")
                sandboxes[name] = h
                let m = try await SandboxReader.read(name: name, handle: h.netlink, expected: nil)
                if let ipvs = h.ipvs {
                    known[name] = Known(model: m, balancer: .init(), ipvs: try await IPVSBalancer.read(h.nft, ipvs))
                } else {
                    known[name] = Known(model: m, balancer: try NFTBalancer.read(h.nft), ipvs: .init())
                }
                known[name]!.balancer6 = try NFTBalancer.read(h.nft, family: .ipv6)
                known[name]!.meter = try TrafficMeter.read(h.nft)
                known[name]!.returns = try await IngressReturn.read(nft: h.nft, netlink: h.netlink)
            } catch {
                throw .kernel(namespace: name, object: "reading the sandbox", error: error, rolledBack: false)
            }
        }
        do {
            knownNode = try await NodeIngress.read(nft: node!.nft, handle: node!.netlink)
            // Without NETLINK_XFRM there can be no SA of ours; the drop rule is read regardless.
            knownESP = try await SecureOverlay.read(nft: node!.nft, xfrm: try? xfrm(node!), local: identity.advertiseAddress)
            for l in try await node!.netlink.linkList() where l.kind == "vxlan" && l.name.hasPrefix("mvx") {
                try? await node!.netlink.linkDel(.index(l.index))  // a staging vxlan left by an interrupted apply
            }
        } catch {
            throw .kernel(namespace: identity.namespace ?? "node", object: "reading the node", error: error, rolledBack: false)
        }
    }

    // MARK: - encrypted overlays

    private func xfrm(_ node: Handles) throws(KernelError) -> XFRMHandle {
        if let x = nodeXFRM { return x }
        let x = try XFRMHandle(namespace: node.namespace)
        nodeXFRM = x
        return x
    }

    /// Adds and deletes one throwaway SA (reqid 0, loopback, so `SecureOverlay.read` never sees
    /// it): the kernel loads esp4 and the AEAD on the add, and refuses it when it cannot. nil
    /// when ESP works, else the kernel's answer.
    private func probeESP(_ node: Handles) async -> String? {
        if espWorks { return nil }
        do {
            let x = try xfrm(node)
            let lo = IPAddress("127.0.0.1")!
            let probe = XFRMState(
                source: lo, destination: lo, spi: 0x6d65_7368, reqid: 0,
                aead: try .aesGCM128(key: [UInt8](repeating: 0, count: 16), salt: [0, 0, 0, 0]))
            do { try await x.stateAdd(probe) } catch  where error.errno == .exists {}
            try await x.stateDelete(probe.id)
            espWorks = true
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Plans the node's IPsec part, commits what must come before the sandboxes (the drop rule,
    /// the pairs) and returns what must come after them (`commitESP`). Until that is committed the
    /// baseline is marked stale: a failure in between (XFRM has no transactions, a sandbox may
    /// fail) makes the next call read the node namespace again rather than trust it.
    private func syncESP(
        _ want: NodeModel, local: IPAddress, only: Set<IPAddress>?, node: Handles, report: inout ChangeReport
    ) async throws(DataplaneError) -> (NFTBatch, [XFRMOperation]) {
        let where_ = nodeNamespace??.description ?? "node"
        if espStale {
            do { knownESP = try await SecureOverlay.read(nft: node.nft, xfrm: try? xfrm(node), local: local) } catch {
                throw .kernel(namespace: where_, object: "reading ipsec", error: error, rolledBack: false)
            }
            espStale = false
        }
        var applied = knownESP
        var changes: [String] = []
        let plan: SecureOverlay.Plan
        do { plan = try SecureOverlay.plan(&applied, to: want, only: only, changes: &changes) } catch {
            throw .kernel(namespace: where_, object: "ipsec keys", error: error, rolledBack: false)
        }
        pendingESP = applied
        guard !plan.isEmpty else { return (NFTBatch(), []) }
        espStale = true
        do {
            if !plan.before.isEmpty { try await node.nft.commit(plan.before) }
        } catch {
            throw .kernel(namespace: where_, object: "the drop rule for secure VNIs", error: error, rolledBack: true)
        }
        do {
            if !plan.xfrm.isEmpty { try await xfrm(node).apply(plan.xfrm) }
        } catch {
            throw .kernel(namespace: where_, object: "ipsec states and policies", error: error, rolledBack: false)
        }
        report.changes += changes
        return (plan.after, plan.xfrmAfter)
    }

    private func commitESP(_ after: (NFTBatch, [XFRMOperation]), node: Handles) async throws(DataplaneError) {
        let where_ = nodeNamespace??.description ?? "node"
        if !after.1.isEmpty {
            do { try await xfrm(node).apply(after.1) } catch {
                throw .kernel(namespace: where_, object: "ipsec policies of the old data-path port", error: error, rolledBack: false)
            }
        }
        if !after.0.isEmpty {
            do { try await node.nft.commit(after.0) } catch {
                throw .kernel(namespace: where_, object: "secure VNIs", error: error, rolledBack: true)
            }
        }
        if let p = pendingESP { knownESP = p }
        pendingESP = nil
        espStale = false
    }

    private func mtu(for address: IPAddress, _ node: Handles) async throws(DataplaneError) -> UInt32 {
        if let m = underlayMTU[address] { return m }
        do {
            guard let a = try await node.netlink.addrList().first(where: { $0.prefix.address == address }) else {
                throw DataplaneError.invalidState(["advertise address \(address) is not on any interface of the node"])
            }
            let m = try await node.netlink.linkGet(a.device).mtu ?? 1500
            underlayMTU[address] = m
            return m
        } catch let e as DataplaneError {
            throw e
        } catch {
            throw .kernel(namespace: "node", object: "the underlay MTU", error: error as! KernelError, rolledBack: false)
        }
    }

    private func syncNode(
        _ want: NodeModel, ingressSandbox: String?, ports: Set<BalancerState.PortKey>? = nil, node: Handles,
        report: inout ChangeReport
    ) async throws(DataplaneError) {
        var changes: [String] = []
        do {
            if want.ingressLink, !knownNode.link, let sb = ingressSandbox, let h = sandboxes[sb] {
                try? await node.netlink.linkDel(.name(Naming.ingressNodeSide))
                try? await h.netlink.linkDel(.name(Naming.ingressSandboxSide))
                try await node.netlink.linkAdd(
                    LinkSpec(
                        name: Naming.ingressNodeSide,
                        kind: .veth(peerName: Naming.ingressSandboxSide, peerNamespace: h.namespace)))
                try node.namespace.setSysctl("net.ipv4.ip_forward", "1")
                try node.namespace.setSysctl("net.ipv4.conf.\(Naming.ingressNodeSide).route_localnet", "1")
                try await node.netlink.apply([
                    .addrAdd(
                        InterfaceAddress(
                            device: .name(Naming.ingressNodeSide),
                            prefix: IPPrefix(address: Naming.ingressNodeAddress, length: Naming.ingressLinkLength)!)),
                    .linkSet(.name(Naming.ingressNodeSide), LinkChange(up: true)),
                ])
                try await h.netlink.apply([
                    .addrAdd(
                        InterfaceAddress(
                            device: .name(Naming.ingressSandboxSide),
                            prefix: IPPrefix(address: Naming.ingressSandboxAddress, length: Naming.ingressLinkLength)!)),
                    .linkSet(.name(Naming.ingressSandboxSide), LinkChange(up: true)),
                    .route(.replace, .defaultRoute(via: Naming.ingressNodeAddress, device: .name(Naming.ingressSandboxSide))),
                ])
                knownNode.link = true
                changes.append(
                    "node: link \(Naming.ingressNodeSide) \(Naming.ingressNodeAddress) ↔ \(sb) \(Naming.ingressSandboxSide) \(Naming.ingressSandboxAddress)"
                )
            } else if !want.ingressLink, knownNode.link {
                try? await node.netlink.linkDel(.name(Naming.ingressNodeSide))
                knownNode.link = false
                knownNode.link6 = false
                changes.append("node: delete link \(Naming.ingressNodeSide)")
            }
            try await syncIngressLink6(want, ingressSandbox: ingressSandbox, node: node, changes: &changes)
            var applied = knownNode
            let batch = NodeIngress.plan(&applied, to: want, only: ports, changes: &changes)
            if !batch.isEmpty { try await node.nft.commit(batch) }
            knownNode = applied
        } catch {
            throw .kernel(namespace: nodeNamespace??.description ?? "node", object: "published ports", error: error, rolledBack: false)
        }
        report.changes += changes
    }

    /// A dual-stack ingress network: the ingress link's IPv6 ends (no DAD: the link has two ends,
    /// both ours), the sandbox's IPv6 default route back over it, and IPv6 forwarding in the node
    /// namespace, which published ports reached on the node's IPv6 addresses cross.
    private func syncIngressLink6(
        _ want: NodeModel, ingressSandbox: String?, node: Handles, changes: inout [String]
    ) async throws(KernelError) {
        func end(_ device: String, _ a: IPAddress) -> InterfaceAddress {
            InterfaceAddress(device: .name(device), prefix: IPPrefix(address: a, length: Naming.ingressLinkLength6)!, noDAD: true)
        }
        let nodeEnd = end(Naming.ingressNodeSide, Naming.ingressNodeAddress6)
        let sandboxEnd = end(Naming.ingressSandboxSide, Naming.ingressSandboxAddress6)
        // A router solicits a neighbour for a forwarded packet from a link-local address, and not
        // at all while the link's own is tentative (its DAD, a second or two after the link came
        // up): the first connections would be lost. So each end also holds one without DAD.
        let linkLocal = [
            (Naming.ingressNodeSide, IPAddress("fe80::6d:1")!), (Naming.ingressSandboxSide, IPAddress("fe80::6d:2")!),
        ].map { InterfaceAddress(device: .name($0.0), prefix: IPPrefix(address: $0.1, length: 64)!, scope: .link, noDAD: true) }
        if want.ingress6, knownNode.link, !knownNode.link6, let sb = ingressSandbox, let h = sandboxes[sb] {
            try node.namespace.setSysctl("net.ipv6.conf.all.forwarding", "1")
            try await Self.apply([.addrAdd(linkLocal[0]), .addrAdd(nodeEnd)], on: node.netlink)
            try await Self.apply([.addrAdd(linkLocal[1]), .addrAdd(sandboxEnd)], on: h.netlink)
            try await h.netlink.apply([
                .route(.replace, .defaultRoute(via: Naming.ingressNodeAddress6, device: .name(Naming.ingressSandboxSide)))
            ])
            knownNode.link6 = true
            changes.append("node: link \(Naming.ingressNodeSide) \(Naming.ingressNodeAddress6) ↔ \(sb) \(Naming.ingressSandboxAddress6)")
        } else if !want.ingress6, knownNode.link6 {
            try? await node.netlink.apply([.addrDel(nodeEnd), .addrDel(linkLocal[0])])
            if let sb = ingressSandbox, let h = sandboxes[sb] {
                try? await h.netlink.apply([.addrDel(sandboxEnd), .addrDel(linkLocal[1])])
            }
            knownNode.link6 = false
            changes.append("node: link \(Naming.ingressNodeSide) IPv4 only")
        }
    }

    // MARK: - sandboxes

    /// A sandbox's sysctls: forwarding on, reverse-path filtering off, and with IPVS its
    /// connections visible to conntrack (or nat cannot source-NAT hairpin and ingress traffic).
    /// The IPVS one needs the IPVS handle opened first (it loads the module).
    static func prepare(_ ns: NetworkNamespace, ipvs: Bool) throws(KernelError) {
        if ipvs {
            try ns.setSysctl("net.ipv4.vs.conntrack", "1")
            return
        }
        try ns.setSysctl("net.ipv4.ip_forward", "1")
        try ns.setSysctl("net.ipv4.conf.all.rp_filter", "0")
        try ns.setSysctl("net.ipv4.conf.default.rp_filter", "0")
        // Dual-stack networks: the sandbox routes its tasks' IPv6 as it routes their IPv4. A kernel
        // booted without IPv6 has no such knob and still runs IPv4 networks; a dual-stack task
        // there fails at its attachment, naming the kernel's answer.
        try? ns.setSysctl("net.ipv6.conf.all.forwarding", "1")
    }

    private func create(_ name: String, report: inout ChangeReport) async throws(DataplaneError) {
        do {
            let ns =
                NetworkNamespace.exists(named: name) ? try NetworkNamespace.open(named: name) : try NetworkNamespace.create(named: name)
            try Self.prepare(ns, ipvs: false)
            let h = try Handles(ns, ipvs: lb == .ipvs)
            if lb == .ipvs { try Self.prepare(ns, ipvs: true) }
            try await h.netlink.linkSetUp("lo")
            sandboxes[name] = h
            let empty = try await SandboxReader.read(name: name, handle: h.netlink, expected: nil)
            known[name] = Known(model: empty, balancer: NFTBalancer.Applied(), ipvs: IPVSBalancer.Applied())
            report.changes.append("\(name): create namespace")
        } catch {
            try? NetworkNamespace.delete(named: name)
            throw .kernel(namespace: name, object: "namespace", error: error, rolledBack: true)
        }
    }

    /// A batch where an address that is already there counts as added: "make it so" has been
    /// reached, and the baseline is re-read only when something else fails.
    static func apply(_ ops: [RouteOperation], on h: NetlinkHandle) async throws(KernelError) {
        do {
            try await h.apply(ops)
        } catch {
            func harmless(_ i: Int, _ e: KernelError) -> Bool {
                guard i < ops.count, case .addrAdd = ops[i] else { return false }
                return e.errno == .exists
            }
            switch error {
            case .batch(let failures, _) where failures.allSatisfy({ harmless($0.index, $0.error) }): return
            case .kernel where ops.count == 1 && harmless(0, error): return
            default: throw error
            }
        }
    }

    static let placeholder = SandboxModel(
        name: "", networkID: "", vxlan: nil, subnet: IPPrefix("0.0.0.0/0")!, loAddresses: [],
        endpoints: [:], neighbours: [:], fdb: [:], subnetRouted: false, ingressLink: false,
        balancer: BalancerState(gateway: .v4(0)))

    private func remove(_ name: String, report: inout ChangeReport) async throws(DataplaneError) {
        // Deleted explicitly, not left to the namespace's end: a socket anywhere keeps it alive.
        if let h = sandboxes[name], let k = known[name] {
            for veth in k.model.endpoints.keys { try? await h.netlink.linkDel(.name(veth)) }
            try? await h.netlink.linkDel(.name(Naming.vxlan))
            try? await h.netlink.linkDel(.name(Naming.ingressSandboxSide))
            if k.balancer.table || k.ipvs.table {
                var b = NFTBatch()
                b.delete(NFTBalancer.table)
                try? await h.nft.commit(b)
            }
            if k.balancer6.table {
                var b = NFTBatch()
                b.delete(NFTBalancer.Family.ipv6.table)
                try? await h.nft.commit(b)
            }
            if let ipvs = h.ipvs, !k.ipvs.services.isEmpty { try? await ipvs.flush() }
        }
        sandboxes[name] = nil
        known[name] = nil
        do { try NetworkNamespace.delete(named: name) } catch {
            throw .kernel(namespace: name, object: "namespace", error: error, rolledBack: false)
        }
        report.changes.append("\(name): delete namespace")
    }

    /// Makes sandbox `name` match `want`; with a scope, only the objects it names are compared.
    private func sync(
        _ name: String, want: SandboxModel, scope: DesiredModel.Touched? = nil, node: Handles,
        report: inout ChangeReport
    ) async throws(DataplaneError) {
        guard let h = sandboxes[name], known[name] != nil else { return }
        // Moved out, not copied: with a second reference alive, the first in-place change below
        // would copy the whole table (copy-on-write) and a one-object change would cost the table.
        var have = known[name]!.model
        var balancer = known[name]!.balancer
        var ipvsApplied = known[name]!.ipvs
        var balancer6 = known[name]!.balancer6
        var meter = known[name]!.meter
        var returns = known[name]!.returns
        known[name] = Known(model: Self.placeholder, balancer: .init(), ipvs: .init())
        if have.networkID.isEmpty {
            // Read without expectations (first sight): check endpoints against what is wanted now.
            do { have = try await SandboxReader.read(name: name, handle: h.netlink, expected: want) } catch {
                known[name] = Known(
                    model: have, balancer: balancer, ipvs: ipvsApplied, balancer6: balancer6, meter: meter, returns: returns)
                throw .kernel(namespace: name, object: "reading the sandbox", error: error, rolledBack: false)
            }
        }
        var changes: [String] = []
        var undo: [RouteOperation] = []
        var step = "sandbox"
        do {
            if scope == nil, have.vxlan != want.vxlan, let v = want.vxlan {
                if SandboxVXLAN.onlyMTUDiffers(have.vxlan, v) {
                    step = "vxlan0 mtu \(v.mtu)"
                    try await h.netlink.linkSetMTU(.name(Naming.vxlan), v.mtu)
                    changes.append("\(name): vxlan0 mtu \(v.mtu)")
                } else {
                    step = "vxlan0 (VNI \(v.vni), local \(v.local), port \(v.port))"
                    try await SandboxVXLAN.make(v, sandbox: h, node: node, undo: &undo)
                    have.neighbours = [:]
                    have.fdb = [:]
                    have.subnetRouted = false
                    changes.append("\(name): vxlan0 VNI \(v.vni) local \(v.local) dstport \(v.port) mtu \(v.mtu) mac \(v.mac)")
                }
            }

            for veth in scope.map({ $0.endpoints.sorted() }) ?? want.endpoints.keys.sorted() {
                guard let e = want.endpoints[veth], have.endpoints[veth] != e else { continue }
                step = "task \(e.taskNamespace) \(e.interface) \(e.address)"
                try await TaskAttachment.attach(e, veth: veth, remake: have.endpoints[veth] != nil, sandbox: h, undo: &undo)
                changes.append("\(name): attach \(e.address) as \(e.interface) in \(e.taskNamespace) (\(veth))")
            }

            step = "addresses, routes and remote endpoints"
            let routes = SandboxRoutes.additions(have, want, scope: scope)
            undo += routes.undo
            try await Self.apply(routes.ops, on: h.netlink)
            changes += routes.lines.map { "\(name): \($0)" }

            // Where answers to ingress traffic another node let in go: after its neighbour, before
            // the balancer sends any such traffic here.
            step = "ingress return paths"
            var returnChanges: [String] = []
            let returnPlan = IngressReturn.plan(
                &returns, to: want.ingressLink ? want.returns : nil,
                twin: want.subnet6.map { s6 in { s6.embedding(hostOf: $0, in: want.subnet) } }, only: scope?.returns,
                changes: &returnChanges)
            try await h.netlink.apply(returnPlan.before)
            if !returnPlan.nft.isEmpty { try await h.nft.commit(returnPlan.nft) }
            changes += returnChanges.map { "\(name): \($0)" }

            // The balancer: one nftables transaction, all or nothing.
            step = "load balancer"
            var lbChanges: [String] = []
            if let ipvs = h.ipvs {
                // IPVS has no transactions: services and destinations first, then the marks that
                // lead to them (one nftables transaction), then what is no longer named.
                let plan = IPVSBalancer.plan(&ipvsApplied, to: want.balancer, scope: scope, changes: &lbChanges)
                try await ipvs.apply(plan.ipvsFirst)
                var marks = plan.nft
                TrafficMeter.plan(&meter, to: want.balancer, scope: scope, batch: &marks, changes: &lbChanges)
                if !marks.isEmpty { try await h.nft.commit(marks) }
                try await ipvs.apply(plan.ipvsLast)
            } else {
                // The meter's elements go in the balancer's transaction: a VIP is counted from its first packet.
                var batch = NFTBalancer.plan(&balancer, to: want.balancer, scope: scope, changes: &lbChanges)
                TrafficMeter.plan(&meter, to: want.balancer, scope: scope, batch: &batch, changes: &lbChanges)
                if !batch.isEmpty { try await h.nft.commit(batch) }
            }
            // A dual-stack network's VIP twins: their own table, whichever balancer runs IPv4.
            step = "IPv6 load balancer"
            let batch6 = NFTBalancer.plan(&balancer6, to: want.balancer, family: .ipv6, scope: scope, changes: &lbChanges)
            if !batch6.isEmpty { try await h.nft.commit(batch6) }
            changes += lbChanges.map { "\(name): \($0)" }

            // Removals last: nothing is taken away before everything new is in place.
            step = "removing what the state no longer names"
            let removals = SandboxRoutes.removals(have, want, scope: scope)
            changes += removals.lines.map { "\(name): \($0)" }
            var gone = removals.ops
            gone += returnPlan.after
            try await h.netlink.apply(gone)
        } catch {
            // Undo this apply's additions in this sandbox, newest first.
            for op in undo.reversed() { try? await h.netlink.apply([op]) }
            have.networkID = ""  // read it again next time rather than trust the baseline
            if let ipvs = h.ipvs {
                if let a = try? await IPVSBalancer.read(h.nft, ipvs) { ipvsApplied = a }
            } else if let a = try? NFTBalancer.read(h.nft) {
                balancer = a
            }
            if let a = try? NFTBalancer.read(h.nft, family: .ipv6) { balancer6 = a }
            if let m = try? TrafficMeter.read(h.nft) { meter = m }
            if let r = try? await IngressReturn.read(nft: h.nft, netlink: h.netlink) { returns = r }
            known[name] = Known(model: have, balancer: balancer, ipvs: ipvsApplied, balancer6: balancer6, meter: meter, returns: returns)
            throw .kernel(namespace: name, object: step, error: error, rolledBack: true)
        }
        SandboxRoutes.settle(&have, to: want, scope: scope)
        known[name] = Known(model: have, balancer: balancer, ipvs: ipvsApplied, balancer6: balancer6, meter: meter, returns: returns)
        report.changes += changes
    }
}
