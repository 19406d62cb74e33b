import MeshKernel

/// Service VIPs and published ports in IPVS, for kernels that have it: nftables only marks
/// packets, one IPVS fwmark service per VIP or published port does the balancing (rr, NAT), so
/// draining is a weight of 0 that keeps established connections, as IPVS users expect.
///
///     mangle (prerouting, -150): meta l4proto @lb_protos  meta mark set ip daddr map @vip_mark
///                                iifname ingress0  meta mark set meta l4proto . th dport map @pub_mark
///     postrouting:               ip saddr . ip daddr @hairpin  snat to the gateway
///                                mark & 0xf0000000 == 0x20000000  meta l4proto @ingress_snat  snat to the node's ingress address
///
/// VIP marks are 0x10000000 + slot, published-port marks 0x20000000 + slot.
struct IPVSBalancer: Sendable {
    struct Applied: Equatable, Sendable {
        var table = false
        var ingress = false
        var vipMark: [IPAddress: UInt32] = [:]
        var portMark: [BalancerState.PortKey: UInt32] = [:]
        /// fwmark → destinations, as IPVS holds them.
        var services: [UInt32: Set<BalancerState.Target>] = [:]
        var hairpin: Set<IPAddress> = []
        var snat = false
        /// The next unused marks (0: not yet computed from the marks read back).
        var nextVipMark: UInt32 = 0
        var nextMark: UInt32 = 0
    }

    static let table = Naming.sandboxTable
    static let vipBase: UInt32 = 0x1000_0000
    static let portBase: UInt32 = 0x2000_0000
    static var mangle: NFTChain { NFTChain(table, "mangle", base: .init(type: .filter, hook: .prerouting, priority: -150)) }
    static var vipMarks: NFTSet { NFTSet(table, "vip_mark", key: NFTKeyType(.ipv4Address), kind: .map(NFTKeyType(.mark))) }
    static var portMarks: NFTSet { NFTSet(table, "pub_mark", key: NFTBalancer.portKey, kind: .map(NFTKeyType(.mark))) }

    static func read(_ nft: NFTSocket, _ ipvs: IPVSHandle) async throws(KernelError) -> Applied {
        var a = Applied()
        guard try nft.listTables(family: .ip).contains(where: { $0.name == table.name }) else { return a }
        a.table = true
        a.ingress = try nft.listRules(table).contains { $0.comment == "published marks" }
        let sets = Set(try nft.listSets(table).map(\.name))
        if sets.contains(vipMarks.name) {
            for e in try nft.listElements(vipMarks) {
                if let vip = IPAddress(bytes: e.key.bytes), let m = NFTBalancer.value(e).flatMap(NFTBalancer.u32) { a.vipMark[vip] = m }
            }
        }
        if sets.contains(portMarks.name) {
            for e in try nft.listElements(portMarks) {
                if let k = NFTBalancer.portKey(e.key), let m = NFTBalancer.value(e).flatMap(NFTBalancer.u32) { a.portMark[k] = m }
            }
        }
        if sets.contains(NFTBalancer.hairpinSet.name) { a.hairpin = NFTBalancer.hairpin(try nft.listElements(NFTBalancer.hairpinSet)) }
        if sets.contains(NFTBalancer.snatProtos.name) { a.snat = !(try nft.listElements(NFTBalancer.snatProtos)).isEmpty }
        for s in try await ipvs.listServices() {
            guard case .fwmark(let m, false) = s.service.key else { continue }
            a.services[m] = Set(
                try await ipvs.listDestinations(s.service.key).map {
                    BalancerState.Target(
                        address: $0.destination.address, port: $0.destination.port == 0 ? nil : $0.destination.port,
                        weight: $0.destination.weight)
                })
        }
        return a
    }

    struct Plan {
        var ipvsFirst: [IPVSOperation] = []
        var nft = NFTBatch()
        var ipvsLast: [IPVSOperation] = []
        var isEmpty: Bool { ipvsFirst.isEmpty && nft.isEmpty && ipvsLast.isEmpty }
    }

    /// With a scope, only the VIPs, ports and hairpin entries it names are compared.
    static func plan(
        _ n: inout Applied, to desired: BalancerState?, scope: DesiredModel.Touched? = nil,
        changes: inout [String]
    ) -> Plan {
        var p = Plan()
        guard let d = desired else {
            if n.table {
                p.nft.delete(table)
                changes.append("nft: delete table ip meshd")
            }
            for m in n.services.keys.sorted() { p.ipvsLast.append(.deleteService(.fwmark(m, ipv6: false))) }
            if !n.services.isEmpty { changes.append("ipvs: delete \(n.services.count) service(s)") }
            n = Applied()
            return p
        }
        let a = n
        var scope = scope
        if !n.table {
            scope = nil
            p.nft.add(table)
            p.nft.add(mangle)
            p.nft.add(NFTBalancer.post)
            for s in [NFTBalancer.protos, vipMarks, NFTBalancer.hairpinSet] { p.nft.add(s) }
            p.nft.add([6, 17, 132].map { NFTElement(.proto($0)) }, to: NFTBalancer.protos)
            p.nft.add(
                NFTRule(
                    mangle,
                    NFTExpr.load([.l4proto]) + [.lookup(set: NFTBalancer.protos.name, from: .r(0), into: nil, invert: false)]
                        + NFTExpr.load([.ipDaddr]) + [
                            .lookup(set: vipMarks.name, from: .r(0), into: .r(0), invert: false),
                            .metaSet(.mark, from: .r(0)),
                        ], comment: "vip marks"))
            p.nft.add(NFTBalancer.hairpinRule(NFTBalancer.post, gateway: d.gateway))
            changes.append("nft: add table ip meshd (IPVS marks, hairpin via \(d.gateway))")
            n = Applied()
            n.table = true
            n.services = a.services
        }
        if let src = d.ingressSource, !n.ingress {
            p.nft.add(portMarks)
            p.nft.add(NFTBalancer.snatProtos)
            p.nft.add(
                NFTRule(
                    mangle,
                    NFTExpr.match(.iifname, .eq, .ifname(Naming.ingressSandboxSide)) + NFTExpr.load([.l4proto, .thDport])
                        + [.lookup(set: portMarks.name, from: .r(0), into: .r(0), invert: false), .metaSet(.mark, from: .r(0))],
                    comment: "published marks"))
            p.nft.add(
                NFTRule(
                    NFTBalancer.post,
                    [
                        .meta(.mark, into: .r(0)),
                        .bitwise(from: .r(0), into: .r(0), mask: .u32(0xf000_0000), xor: .u32(0)),
                        .cmp(.eq, .r(0), .u32(portBase)),
                    ] + NFTExpr.inSet([.l4proto], NFTBalancer.snatProtos.name) + NFTExpr.snat(to: src), comment: "ingress snat"))
            changes.append("nft: published-port marks")
            n.ingress = true
            n.snat = false
        }
        if n.ingress { NFTBalancer.planSNAT(&n.snat, want: d.ingressSNAT, source: d.ingressSource, batch: &p.nft, changes: &changes) }
        if scope?.hairpin ?? true { NFTBalancer.planHairpin(&n.hairpin, to: d.hairpin, batch: &p.nft, changes: &changes) }
        if n.nextMark == 0 { n.nextMark = max(n.vipMark.values.max() ?? 0, n.portMark.values.max() ?? 0, portBase) + 1 }
        if n.nextVipMark == 0 { n.nextVipMark = (n.vipMark.values.max() ?? vipBase) + 1 }

        let vipKeys = scope.map { Array($0.vips) } ?? Array(Set(n.vipMark.keys).union(d.vips.keys))
        group(
            keys: vipKeys.sorted(), marks: &n.vipMark, next: &n.nextVipMark, services: &n.services, desired: { d.vips[$0] },
            set: vipMarks, key: { NFTValue.address($0) }, label: { "VIP \($0)" }, plan: &p, changes: &changes)
        let ingress = n.ingress
        let portKeys = scope.map { Array($0.ports) } ?? Array(Set(n.portMark.keys).union(d.published.keys))
        group(
            keys: portKeys.sorted(), marks: &n.portMark, next: &n.nextMark, services: &n.services,
            desired: { ingress ? d.published[$0] : nil },
            set: portMarks, key: { NFTBalancer.key($0) }, label: { "port \($0)" }, plan: &p, changes: &changes)
        if scope == nil {
            // fwmark services no mark points at (left by an interrupted apply).
            let live = Set(n.vipMark.values).union(n.portMark.values)
            for m in n.services.keys.sorted() where !live.contains(m) {
                p.ipvsLast.append(.deleteService(.fwmark(m, ipv6: false)))
                n.services[m] = nil
                changes.append("ipvs: remove unused FWM \(m)")
            }
        }
        return p
    }

    private static func group<K: Hashable & Comparable>(
        keys: [K], marks: inout [K: UInt32], next: inout UInt32, services: inout [UInt32: Set<BalancerState.Target>],
        desired: (K) -> [BalancerState.Target]?, set: NFTSet, key: (K) -> NFTValue, label: (K) -> String,
        plan p: inout Plan, changes: inout [String]
    ) {
        for k in keys where desired(k) == nil && marks[k] != nil {
            let m = marks[k]!
            p.nft.delete([NFTElement(key(k))], from: set)  // stop marking first …
            p.ipvsLast.append(.deleteService(.fwmark(m, ipv6: false)))  // … then drop the service
            marks[k] = nil
            services[m] = nil
            changes.append("ipvs: remove \(label(k))")
        }
        for k in keys {
            guard let targets = desired(k) else { continue }
            let want = Set(targets)
            let mark: UInt32
            let hadMark = marks[k] != nil
            if let m = marks[k] {
                mark = m
            } else {
                mark = next
                next += 1
                marks[k] = mark
            }
            let svc = IPVSServiceKey.fwmark(mark, ipv6: false)
            let have = services[mark]
            if have == want { continue }
            if have == nil { p.ipvsFirst.append(.addService(IPVSService(svc, scheduler: "rr"))) }
            let haveByKey = Dictionary((have ?? []).map { (DestKey($0), $0) }, uniquingKeysWith: { a, _ in a })
            let wantByKey = Dictionary(want.map { (DestKey($0), $0) }, uniquingKeysWith: { a, _ in a })
            for (dk, t) in wantByKey.sorted(by: { $0.key < $1.key }) {
                let dest = IPVSDestination(t.address, port: t.port ?? 0, forwarding: .masquerade, weight: t.weight)
                if let h = haveByKey[dk] {
                    if h.weight != t.weight { p.ipvsFirst.append(.updateDestination(svc, dest)) }
                } else {
                    p.ipvsFirst.append(.addDestination(svc, dest))
                }
            }
            for dk in haveByKey.keys.sorted() where wantByKey[dk] == nil {
                p.ipvsLast.append(.deleteDestination(svc, dk.address, dk.port))
            }
            if !hadMark { p.nft.add([.map(key(k), to: .u32(mark))], to: set) }
            services[mark] = want
            changes.append(
                "ipvs: \(label(k)) (FWM \(mark)) → "
                    + want.sorted().map { t in
                        (t.port.map { "\(t.address):\($0)" } ?? "\(t.address)") + (t.weight == 1 ? "" : " w\(t.weight)")
                    }.joined(separator: " "))
        }
    }

    struct DestKey: Hashable, Comparable {
        var address: IPAddress
        var port: UInt16
        init(_ t: BalancerState.Target) {
            address = t.address
            port = t.port ?? 0
        }
        static func < (a: DestKey, b: DestKey) -> Bool { (a.address, a.port) < (b.address, b.port) }
    }
}
