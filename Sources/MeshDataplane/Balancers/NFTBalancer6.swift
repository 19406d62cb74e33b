import MeshKernel

/// The IPv6 twins of a dual-stack network's VIPs, and on a dual-stack ingress network the
/// published ports reached on the nodes' IPv6 addresses, in the sandbox's `table ip6 meshd`,
/// under either balancer (IPVS mode balances IPv4 only; its IPv6 side is this table too):
///
///     prerouting:  meta l4proto @lb_protos  meta mark set ip6 daddr map @vip_mod  meta mark vmap @vip_dispatch
///                  iifname ingress0  meta mark set meta l4proto . th dport map @pub_mod  meta mark vmap @pub_dispatch
///     vip-M:       meta mark set ip6 daddr map @vip_slot
///                  dnat ip6 to meta mark . numgen inc mod M map @vip_backends        (port kept)
///     pub-M:       meta mark set meta l4proto . th dport map @pub_slot
///                  dnat ip6 to meta mark . numgen inc mod M map @pub_backends         (address and port)
///     postrouting: ip6 saddr . ip6 daddr @hairpin  snat to the gateway's twin
///                  iifname ingress0  meta l4proto @ingress_snat  snat to the twin of the node's ingress address
///
/// The same shape as `NFTBalancer` (and its slot groups, so a change is set elements only),
/// with 16-byte keys and values. The table exists while the network carries an IPv6 subnet.
/// As for IPv4, `ingress_snat` is empty unless the node runs Docker's ingress: IPv6 clients'
/// addresses are kept, and `IngressReturn` brings the answers back in IPv6 too.
struct NFTBalancer6: Sendable {
    struct Applied: Equatable, Sendable {
        var table = false
        var vipSlot: [IPAddress: UInt32] = [:]
        var vipTargets: [IPAddress: [BalancerState.Target]] = [:]
        var vipChains: Set<Int> = []
        var hairpin: Set<IPAddress> = []
        var vipPool = NFTBalancer.SlotPool()
        var ingress = false
        var portSlot: [BalancerState.PortKey: UInt32] = [:]
        var portTargets: [BalancerState.PortKey: [BalancerState.Target]] = [:]
        var portChains: Set<Int> = []
        var portPool = NFTBalancer.SlotPool()
        var snat = false
    }

    static let table = NFTTable(.ip6, Naming.sandboxTable.name)
    static var pre: NFTChain { NFTChain(table, "prerouting", base: .init(type: .nat, hook: .prerouting, priority: -100)) }
    static var post: NFTChain { NFTChain(table, "postrouting", base: .init(type: .nat, hook: .postrouting, priority: 100)) }
    static var protos: NFTSet { NFTSet(table, "lb_protos", key: NFTKeyType(.inetProto)) }
    static var vipMod: NFTSet { NFTSet(table, "vip_mod", key: NFTKeyType(.ipv6Address), kind: .map(NFTKeyType(.mark))) }
    static var vipSlotMap: NFTSet { NFTSet(table, "vip_slot", key: NFTKeyType(.ipv6Address), kind: .map(NFTKeyType(.mark))) }
    static var vipDispatch: NFTSet { NFTSet(table, "vip_dispatch", key: NFTKeyType(.mark), kind: .verdictMap) }
    static var vipBackends: NFTSet {
        NFTSet(table, "vip_backends", key: NFTKeyType(.mark, .mark), kind: .map(NFTKeyType(.ipv6Address)))
    }
    static var hairpinSet: NFTSet { NFTSet(table, "hairpin", key: NFTKeyType(.ipv6Address, .ipv6Address)) }
    static func vipChain(_ m: Int) -> NFTChain { NFTChain(table, "vip-\(m)") }
    static var pubMod: NFTSet { NFTSet(table, "pub_mod", key: NFTBalancer.portKey, kind: .map(NFTKeyType(.mark))) }
    static var pubSlotMap: NFTSet { NFTSet(table, "pub_slot", key: NFTBalancer.portKey, kind: .map(NFTKeyType(.mark))) }
    static var pubDispatch: NFTSet { NFTSet(table, "pub_dispatch", key: NFTKeyType(.mark), kind: .verdictMap) }
    static var pubBackends: NFTSet {
        NFTSet(table, "pub_backends", key: NFTKeyType(.mark, .mark), kind: .map(NFTKeyType(.ipv6Address, .inetService)))
    }
    static func portChain(_ m: Int) -> NFTChain { NFTChain(table, "pub-\(m)") }
    static var snatProtos: NFTSet { NFTSet(table, "ingress_snat", key: NFTKeyType(.inetProto)) }

    static func read(_ nft: NFTSocket) throws(KernelError) -> Applied {
        var a = Applied()
        guard try nft.listTables(family: .ip6).contains(where: { $0.name == table.name }) else { return a }
        a.table = true
        a.ingress = try nft.listRules(table).contains { $0.comment == "published dispatch" }
        for c in try nft.listChains(table) {
            if c.name.hasPrefix("vip-"), let m = Int(c.name.dropFirst(4)) { a.vipChains.insert(m) }
            if c.name.hasPrefix("pub-"), let m = Int(c.name.dropFirst(4)) { a.portChains.insert(m) }
        }
        let sets = Set(try nft.listSets(table).map(\.name))
        func elements(_ s: NFTSet) throws(KernelError) -> [NFTElement] { sets.contains(s.name) ? try nft.listElements(s) : [] }
        for e in try elements(vipSlotMap) {
            if let vip = IPAddress(bytes: e.key.bytes), let slot = NFTBalancer.value(e).flatMap(NFTBalancer.u32) { a.vipSlot[vip] = slot }
        }
        var bySlot: [UInt32: [(Int, BalancerState.Target)]] = [:]
        for e in try elements(vipBackends) where e.key.bytes.count == 8 {
            guard let v = NFTBalancer.value(e), v.bytes.count == 16, let addr = IPAddress(bytes: v.bytes) else { continue }
            bySlot[NFTBalancer.u32(e.key.bytes[0..<4])!, default: []].append(
                (Int(NFTBalancer.u32(e.key.bytes[4..<8])!), .init(address: addr, port: nil, weight: 1)))
        }
        for (vip, slot) in a.vipSlot { a.vipTargets[vip] = (bySlot[slot] ?? []).sorted { $0.0 < $1.0 }.map(\.1) }
        for e in try elements(pubSlotMap) {
            if let k = NFTBalancer.portKey(e.key), let slot = NFTBalancer.value(e).flatMap(NFTBalancer.u32) { a.portSlot[k] = slot }
        }
        var portBySlot: [UInt32: [(Int, BalancerState.Target)]] = [:]
        for e in try elements(pubBackends) where e.key.bytes.count == 8 {
            guard let v = NFTBalancer.value(e), v.bytes.count >= 18, let addr = IPAddress(bytes: v.bytes.prefix(16)) else { continue }
            let port = UInt16(v.bytes[16]) << 8 | UInt16(v.bytes[17])
            portBySlot[NFTBalancer.u32(e.key.bytes[0..<4])!, default: []].append(
                (Int(NFTBalancer.u32(e.key.bytes[4..<8])!), .init(address: addr, port: port, weight: 1)))
        }
        for (k, slot) in a.portSlot { a.portTargets[k] = (portBySlot[slot] ?? []).sorted { $0.0 < $1.0 }.map(\.1) }
        a.hairpin = NFTBalancer.hairpin(try elements(hairpinSet), width: 16)
        a.snat = !(try elements(snatProtos)).isEmpty
        return a
    }

    /// The transaction that turns `n` into `desired`'s IPv6 side (none, or nil: no table), one
    /// line per change; with a scope only the VIP twins and hairpin it names are compared.
    static func plan(
        _ n: inout Applied, to desired: BalancerState?, scope: DesiredModel.Touched? = nil, changes: inout [String]
    ) -> NFTBatch {
        var b = NFTBatch()
        guard let d = desired, let gateway6 = d.gateway6 else {
            if n.table {
                b.delete(table)
                changes.append("nft: delete table ip6 meshd")
            }
            n = Applied()
            return b
        }
        if !n.table {
            b.add(table)
            b.add(pre)
            b.add(post)
            for s in [protos, vipMod, vipSlotMap, vipDispatch, vipBackends, hairpinSet] { b.add(s) }
            b.add(NFTBalancer.balancedProtos.map { NFTElement(.proto($0)) }, to: protos)
            b.add(
                NFTRule(
                    pre,
                    NFTExpr.load([.l4proto]) + [.lookup(set: protos.name, from: .r(0), into: nil, invert: false)]
                        + NFTExpr.load([.ip6Daddr]) + NFTBalancer.viaMark(vipMod, vipDispatch), comment: "vip dispatch"))
            b.add(
                NFTRule(
                    post,
                    NFTExpr.load([.ip6Saddr, .ip6Daddr]) + [.lookup(set: hairpinSet.name, from: .r(0), into: nil, invert: false)]
                        + NFTExpr.snat(to: gateway6), comment: "hairpin"))
            changes.append("nft: add table ip6 meshd (hairpin via \(gateway6))")
            n = Applied()
            n.table = true
        }
        let fresh = n.vipTargets.isEmpty && n.portTargets.isEmpty && n.hairpin.isEmpty
        let scope = fresh ? nil : scope
        if let source6 = d.ingressSource6, !n.ingress {
            for s in [pubMod, pubSlotMap, pubDispatch, pubBackends, snatProtos] { b.add(s) }
            b.add(
                NFTRule(
                    pre,
                    NFTExpr.match(.iifname, .eq, .ifname(NFTBalancer.ingressIf)) + NFTExpr.load([.l4proto, .thDport])
                        + NFTBalancer.viaMark(pubMod, pubDispatch), comment: "published dispatch"))
            b.add(
                NFTRule(
                    post,
                    NFTExpr.match(.iifname, .eq, .ifname(NFTBalancer.ingressIf)) + NFTExpr.inSet([.l4proto], snatProtos.name)
                        + NFTExpr.snat(to: source6), comment: "ingress snat"))
            changes.append("nft: IPv6 published-port dispatch")
            n.ingress = true
            n.snat = false
        }
        if n.ingress {
            NFTBalancer.planSNAT(&n.snat, want: d.ingressSNAT, source: d.ingressSource6, set: snatProtos, batch: &b, changes: &changes)
        }
        if scope?.hairpin ?? true {
            NFTBalancer.planHairpin(&n.hairpin, to: d.hairpin6, set: hairpinSet, batch: &b, changes: &changes)
        }
        let keys = scope.map { Array($0.vips6) } ?? Array(Set(n.vipTargets.keys).union(d.vips6.keys))
        var group = NFTBalancer.Group(current: n.vipTargets, slots: n.vipSlot, chains: n.vipChains, pool: n.vipPool)
        n.vipTargets = [:]
        n.vipSlot = [:]  // uniquely referenced by the group now: changed in place
        group.plan(
            keys: keys.sorted(), desired: { d.vips6[$0].map(SlotLayout.expand) ?? [] },
            key: { NFTValue.address($0) }, label: { "VIP \($0)" },
            modMap: vipMod, slotMap: vipSlotMap, backends: vipBackends, dispatch: vipDispatch,
            value: { NFTValue.address($0.address) }, chain: vipChain,
            rule: { m in
                NFTExpr.load([.ip6Daddr]) + NFTBalancer.slotThenBackend(vipSlotMap, vipBackends, modulus: m)
                    + [.nat(.dnat, family: .ip6, address: .r(0), port: nil, flags: [])]
            }, batch: &b, changes: &changes)
        n.vipTargets = group.current
        n.vipSlot = group.slots
        n.vipChains = group.chains
        n.vipPool = group.pool

        if n.ingress || !n.portTargets.isEmpty {
            let portKeys = scope.map { Array($0.ports) } ?? Array(Set(n.portTargets.keys).union(d.published6.keys))
            var ports = NFTBalancer.Group(current: n.portTargets, slots: n.portSlot, chains: n.portChains, pool: n.portPool)
            n.portTargets = [:]
            n.portSlot = [:]
            let ingress = n.ingress
            ports.plan(
                keys: portKeys.sorted(), desired: { ingress ? d.published6[$0].map(SlotLayout.expand) ?? [] : [] },
                key: { NFTBalancer.key($0) }, label: { "IPv6 port \($0)" },
                modMap: pubMod, slotMap: pubSlotMap, backends: pubBackends, dispatch: pubDispatch,
                value: { NFTValue.concat(.address($0.address), .port($0.port ?? 0)) }, chain: portChain,
                rule: { m in
                    NFTExpr.load([.l4proto, .thDport]) + NFTBalancer.slotThenBackend(pubSlotMap, pubBackends, modulus: m)
                        + [.nat(.dnat, family: .ip6, address: .r(0), port: .r(4), flags: [.protoSpecified])]
                }, batch: &b, changes: &changes)
            n.portTargets = ports.current
            n.portSlot = ports.slots
            n.portChains = ports.chains
            n.portPool = ports.pool
        }
        return b
    }
}
