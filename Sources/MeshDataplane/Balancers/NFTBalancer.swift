import MeshKernel

/// Service VIPs and published ports in nftables, in the sandbox's `table ip meshd` and, on a
/// dual-stack network, `table ip6 meshd` (the same shape with `ip6` fields, see `Family`). A
/// service is set elements only, so adding, scaling or removing one never re-validates the table:
///
///     prerouting:  meta l4proto @lb_protos  meta mark set ip daddr map @vip_mod  meta mark vmap @vip_dispatch
///                  iifname ingress0  meta mark set meta l4proto . th dport map @pub_mod  meta mark vmap @pub_dispatch
///     vip-M:       meta mark set ip daddr map @vip_slot
///                  dnat ip to meta mark . numgen inc mod M map @vip_backends        (port kept)
///     pub-M:       meta mark set meta l4proto . th dport map @pub_slot
///                  dnat ip to meta mark . numgen inc mod M map @pub_backends         (address and port)
///     postrouting: ip saddr . ip daddr @hairpin  snat to the gateway
///                  iifname ingress0  meta l4proto @ingress_snat  snat to the node's ingress address
///
/// `ingress_snat` holds TCP, UDP and SCTP when the node runs Docker's ingress, and nothing when
/// backends see the client's address (the default; `IngressReturn` routes their answers back).
///
/// One chain per slot count M (made the first time a service needs it), not per service: a rule
/// per service would make every change re-validate every chain (see MeshKernel's NFT notes).
struct NFTBalancer: Sendable {
    /// What meshd's table in one sandbox holds, at the level the kernel sees it.
    struct Applied: Equatable, Sendable {
        var table = false
        var ingress = false
        var vipSlot: [IPAddress: UInt32] = [:]
        var vipTargets: [IPAddress: [BalancerState.Target]] = [:]  // expanded slot lists
        var portSlot: [BalancerState.PortKey: UInt32] = [:]
        var portTargets: [BalancerState.PortKey: [BalancerState.Target]] = [:]
        var vipChains: Set<Int> = []
        var portChains: Set<Int> = []
        var hairpin: Set<IPAddress> = []
        /// `ingress_snat` holds the protocols: published traffic is source-NATed.
        var snat = false
        /// Slot allocation, kept so a change never scans the slots in use.
        var vipPool = SlotPool()
        var portPool = SlotPool()
    }

    /// Free slot numbers: the next never used, and those given back.
    struct SlotPool: Equatable, Sendable {
        var next: UInt32 = 0  // 0: not yet derived from the slots read back
        var free: [UInt32] = []
    }

    /// What differs between the two tables of a sandbox: `table ip meshd` and, on a dual-stack
    /// network, `table ip6 meshd` (each IPv4 VIP's IPv6 twin → the backends' twins, hairpin
    /// source-NATed to the gateway's twin, published ports reached on the nodes' IPv6 addresses).
    /// The shape drawn above, the slot groups and so the cost of a change are one for both. Under
    /// IPVS the IPv4 side is `IPVSBalancer`'s, and the IPv6 side is still this table.
    struct Family: Sendable {
        let table: NFTTable
        let address: NFTDataType
        let saddr: NFTField
        let daddr: NFTField
        let nat: NFTFamily
        /// The register a port lands in after an address (r1 after 4 bytes, r4 after 16).
        let portRegister: NFTRegister
        /// Before family-specific lines of the report: "" or "IPv6 ".
        let label: String
        /// This family's side of a sandbox's balancer state; nil: the table should not exist.
        let wanted: @Sendable (BalancerState) -> Side?
        /// The VIPs of this family a scoped change names.
        let touchedVIPs: @Sendable (DesiredModel.Touched) -> Set<IPAddress>

        var width: Int { address == .ipv4Address ? 4 : 16 }
        /// As `nft list` names it: `table ip meshd`, `table ip6 meshd`.
        var tableName: String { "table \(nat == .ip6 ? "ip6" : "ip") \(table.name)" }
        var pre: NFTChain { NFTChain(table, "prerouting", base: .init(type: .nat, hook: .prerouting, priority: -100)) }
        var post: NFTChain { NFTChain(table, "postrouting", base: .init(type: .nat, hook: .postrouting, priority: 100)) }
        var protos: NFTSet { NFTSet(table, "lb_protos", key: NFTKeyType(.inetProto)) }
        var vipMod: NFTSet { NFTSet(table, "vip_mod", key: NFTKeyType(address), kind: .map(NFTKeyType(.mark))) }
        var vipSlotMap: NFTSet { NFTSet(table, "vip_slot", key: NFTKeyType(address), kind: .map(NFTKeyType(.mark))) }
        var vipDispatch: NFTSet { NFTSet(table, "vip_dispatch", key: NFTKeyType(.mark), kind: .verdictMap) }
        var vipBackends: NFTSet { NFTSet(table, "vip_backends", key: NFTKeyType(.mark, .mark), kind: .map(NFTKeyType(address))) }
        var pubMod: NFTSet { NFTSet(table, "pub_mod", key: portKey, kind: .map(NFTKeyType(.mark))) }
        var pubSlotMap: NFTSet { NFTSet(table, "pub_slot", key: portKey, kind: .map(NFTKeyType(.mark))) }
        var pubDispatch: NFTSet { NFTSet(table, "pub_dispatch", key: NFTKeyType(.mark), kind: .verdictMap) }
        var pubBackends: NFTSet {
            NFTSet(table, "pub_backends", key: NFTKeyType(.mark, .mark), kind: .map(NFTKeyType(address, .inetService)))
        }
        var hairpinSet: NFTSet { NFTSet(table, "hairpin", key: NFTKeyType(address, address)) }
        var snatProtos: NFTSet { NFTSet(table, "ingress_snat", key: NFTKeyType(.inetProto)) }
        func vipChain(_ m: Int) -> NFTChain { NFTChain(table, "vip-\(m)") }
        func portChain(_ m: Int) -> NFTChain { NFTChain(table, "pub-\(m)") }

        /// `saddr . daddr @hairpin snat to <gateway>`: a task reaching itself through a VIP.
        func hairpinRule(gateway: IPAddress) -> NFTRule {
            NFTRule(
                post,
                NFTExpr.load([saddr, daddr]) + [.lookup(set: hairpinSet.name, from: .r(0), into: nil, invert: false)]
                    + NFTExpr.snat(to: gateway), comment: "hairpin")
        }

        static let ipv4 = Family(
            table: Naming.sandboxTable, address: .ipv4Address, saddr: .ipSaddr, daddr: .ipDaddr, nat: .ip, portRegister: .r(1),
            label: "",
            wanted: {
                Side(
                    gateway: $0.gateway, vips: $0.vips, hairpin: $0.hairpin, published: $0.published, ingressSource: $0.ingressSource)
            }, touchedVIPs: \.vips)
        static let ipv6 = Family(
            table: NFTTable(.ip6, Naming.sandboxTable.name), address: .ipv6Address, saddr: .ip6Saddr, daddr: .ip6Daddr, nat: .ip6,
            portRegister: .r(4), label: "IPv6 ",
            wanted: { d in
                d.gateway6.map {
                    Side(gateway: $0, vips: d.vips6, hairpin: d.hairpin6, published: d.published6, ingressSource: d.ingressSource6)
                }
            }, touchedVIPs: \.vips6)
    }

    /// One family's part of `BalancerState`.
    struct Side: Sendable {
        var gateway: IPAddress
        var vips: [IPAddress: [BalancerState.Target]]
        var hairpin: Set<IPAddress>
        var published: [BalancerState.PortKey: [BalancerState.Target]]
        var ingressSource: IPAddress?
    }

    // IPv4's sets by name, for the IPVS balancer and the meter, which share them.
    static var table: NFTTable { Family.ipv4.table }
    static let ingressIf = Naming.ingressSandboxSide
    static var post: NFTChain { Family.ipv4.post }
    static var protos: NFTSet { Family.ipv4.protos }
    static let portKey = NFTKeyType(.inetProto, .inetService)
    static var hairpinSet: NFTSet { Family.ipv4.hairpinSet }
    static var snatProtos: NFTSet { Family.ipv4.snatProtos }
    static let balancedProtos: [UInt8] = [6, 17, 132]

    // MARK: reading

    static func read(_ nft: NFTSocket, family f: Family = .ipv4) throws(KernelError) -> Applied {
        var a = Applied()
        guard try nft.listTables(family: f.table.family).contains(where: { $0.name == f.table.name }) else { return a }
        a.table = true
        let rules = try nft.listRules(f.table)
        a.ingress = rules.contains { $0.comment == "published dispatch" }
        for c in try nft.listChains(f.table) {
            if c.name.hasPrefix("vip-"), let m = Int(c.name.dropFirst(4)) { a.vipChains.insert(m) }
            if c.name.hasPrefix("pub-"), let m = Int(c.name.dropFirst(4)) { a.portChains.insert(m) }
        }
        let sets = Set(try nft.listSets(f.table).map(\.name))
        func elements(_ s: NFTSet) throws(KernelError) -> [NFTElement] { sets.contains(s.name) ? try nft.listElements(s) : [] }
        let w = f.width

        for e in try elements(f.vipSlotMap) {
            if let vip = IPAddress(bytes: e.key.bytes), let slot = value(e).flatMap(u32) { a.vipSlot[vip] = slot }
        }
        var vipBySlot: [UInt32: [(Int, BalancerState.Target)]] = [:]
        for e in try elements(f.vipBackends) where e.key.bytes.count == 8 {
            guard let v = value(e), v.bytes.count >= w, let addr = IPAddress(bytes: v.bytes.prefix(w)) else { continue }
            vipBySlot[u32(e.key.bytes[0..<4])!, default: []].append(
                (Int(u32(e.key.bytes[4..<8])!), .init(address: addr, port: nil, weight: 1)))
        }
        for (vip, slot) in a.vipSlot { a.vipTargets[vip] = (vipBySlot[slot] ?? []).sorted { $0.0 < $1.0 }.map(\.1) }

        for e in try elements(f.pubSlotMap) {
            if let k = portKey(e.key), let slot = value(e).flatMap(u32) { a.portSlot[k] = slot }
        }
        var portBySlot: [UInt32: [(Int, BalancerState.Target)]] = [:]
        for e in try elements(f.pubBackends) where e.key.bytes.count == 8 {
            guard let v = value(e), v.bytes.count >= w + 2, let addr = IPAddress(bytes: v.bytes.prefix(w)) else { continue }
            let port = UInt16(v.bytes[w]) << 8 | UInt16(v.bytes[w + 1])
            portBySlot[u32(e.key.bytes[0..<4])!, default: []].append(
                (Int(u32(e.key.bytes[4..<8])!), .init(address: addr, port: port, weight: 1)))
        }
        for (k, slot) in a.portSlot { a.portTargets[k] = (portBySlot[slot] ?? []).sorted { $0.0 < $1.0 }.map(\.1) }

        a.hairpin = hairpin(try elements(f.hairpinSet), width: w)
        a.snat = !(try elements(f.snatProtos)).isEmpty
        return a
    }

    // MARK: hairpin — the same set and rule under both balancers

    /// Turns Docker's ingress SNAT on or off: the protocols in `ingress_snat`, or none.
    static func planSNAT(
        _ snat: inout Bool, want: Bool, source: IPAddress?, set: NFTSet = snatProtos, batch b: inout NFTBatch, changes: inout [String]
    ) {
        guard snat != want else { return }
        let elements = balancedProtos.map { NFTElement(.proto($0)) }
        let family = set.table.family == .ip6 ? "IPv6 " : ""
        if want {
            b.add(elements, to: set)
            changes.append("nft: \(family)ingress traffic leaves from \(source.map { "\($0)" } ?? "the node's ingress address")")
        } else {
            b.delete(elements, from: set)
            changes.append("nft: \(family)ingress traffic keeps the client's address")
        }
        snat = want
    }

    /// IPv4's hairpin rule (the IPVS balancer's too).
    static func hairpinRule(_ chain: NFTChain, gateway: IPAddress) -> NFTRule { Family.ipv4.hairpinRule(gateway: gateway) }

    /// The addresses of a hairpin set's `address . address` elements (`width`: 4 or 16 bytes each).
    static func hairpin(_ elements: [NFTElement], width: Int = 4) -> Set<IPAddress> {
        Set(elements.compactMap { $0.key.bytes.count == 2 * width ? IPAddress(bytes: $0.key.bytes.prefix(width)) : nil })
    }

    /// Element changes that make the hairpin set (IPv4's, or `set`) hold `want`.
    static func planHairpin(
        _ have: inout Set<IPAddress>, to want: Set<IPAddress>, set: NFTSet = hairpinSet, batch b: inout NFTBatch,
        changes: inout [String]
    ) {
        let add = want.subtracting(have).sorted(), del = have.subtracting(want).sorted()
        func element(_ a: IPAddress) -> NFTElement { NFTElement(.concat(.address(a), .address(a))) }
        if !del.isEmpty { b.delete(del.map(element), from: set) }
        if !add.isEmpty { b.add(add.map(element), to: set) }
        for x in add { changes.append("nft: hairpin \(x)") }
        for x in del { changes.append("nft: no hairpin \(x)") }
        have = want
    }

    static func value(_ e: NFTElement) -> NFTValue? { if case .value(let v) = e.data { return v } else { return nil } }
    static func u32<C: Collection>(_ b: C) -> UInt32? where C.Element == UInt8 {
        guard b.count == 4 else { return nil }
        return b.reversed().reduce(0) { $0 << 8 | UInt32($1) }  // host order (little-endian here)
    }
    static func u32(_ v: NFTValue) -> UInt32? { u32(v.bytes) }
    static func portKey(_ v: NFTValue) -> BalancerState.PortKey? {
        guard v.bytes.count == 8, let p = TransportProtocol(number: v.bytes[0]) else { return nil }
        return .init(proto: p, port: UInt16(v.bytes[4]) << 8 | UInt16(v.bytes[5]))
    }
    static func key(_ k: BalancerState.PortKey) -> NFTValue { .concat(.proto(k.proto.number), .port(k.port)) }

    // MARK: planning

    /// The transaction that turns `n` into `desired`'s side of family `f` (none, or nil: remove
    /// the table), one line per change for the report; `n` becomes what the table holds once the
    /// transaction commits. With a scope, only the VIPs, ports and hairpin entries it names are
    /// compared: the cost of a change is the change, not the table.
    static func plan(
        _ n: inout Applied, to desired: BalancerState?, family f: Family = .ipv4, scope: DesiredModel.Touched? = nil,
        changes: inout [String]
    ) -> NFTBatch {
        var b = NFTBatch()
        guard let desired, let d = f.wanted(desired) else {
            if n.table {
                b.delete(f.table)
                changes.append("nft: delete \(f.tableName)")
            }
            n = Applied()
            return b
        }
        if !n.table {
            b.add(f.table)
            b.add(f.pre)
            b.add(f.post)
            for s in [f.protos, f.vipMod, f.vipSlotMap, f.vipDispatch, f.vipBackends, f.hairpinSet] { b.add(s) }
            b.add(balancedProtos.map { NFTElement(.proto($0)) }, to: f.protos)
            b.add(
                NFTRule(
                    f.pre,
                    NFTExpr.load([.l4proto]) + [.lookup(set: f.protos.name, from: .r(0), into: nil, invert: false)]
                        + NFTExpr.load([f.daddr]) + viaMark(f.vipMod, f.vipDispatch), comment: "vip dispatch"))
            b.add(f.hairpinRule(gateway: d.gateway))
            changes.append("nft: add \(f.tableName) (hairpin via \(d.gateway))")
            n = Applied()
            n.table = true
        }
        let fresh = n.vipTargets.isEmpty && n.portTargets.isEmpty && n.hairpin.isEmpty
        let scope = fresh ? nil : scope
        if let src = d.ingressSource, !n.ingress {
            for s in [f.pubMod, f.pubSlotMap, f.pubDispatch, f.pubBackends, f.snatProtos] { b.add(s) }
            b.add(
                NFTRule(
                    f.pre,
                    NFTExpr.match(.iifname, .eq, .ifname(ingressIf)) + NFTExpr.load([.l4proto, .thDport])
                        + viaMark(f.pubMod, f.pubDispatch), comment: "published dispatch"))
            b.add(
                NFTRule(
                    f.post,
                    NFTExpr.match(.iifname, .eq, .ifname(ingressIf)) + NFTExpr.inSet([.l4proto], f.snatProtos.name)
                        + NFTExpr.snat(to: src), comment: "ingress snat"))
            changes.append("nft: \(f.label)published-port dispatch")
            n.ingress = true
            n.snat = false
        }
        if n.ingress {
            planSNAT(&n.snat, want: desired.ingressSNAT, source: d.ingressSource, set: f.snatProtos, batch: &b, changes: &changes)
        }

        if scope?.hairpin ?? true { planHairpin(&n.hairpin, to: d.hairpin, set: f.hairpinSet, batch: &b, changes: &changes) }

        let vipKeys = scope.map { Array(f.touchedVIPs($0)) } ?? Array(Set(n.vipTargets.keys).union(d.vips.keys))
        var vipGroup = Group(current: n.vipTargets, slots: n.vipSlot, chains: n.vipChains, pool: n.vipPool)
        n.vipTargets = [:]
        n.vipSlot = [:]  // now uniquely referenced by the group: changed in place
        vipGroup.plan(
            keys: vipKeys.sorted(), desired: { d.vips[$0].map(SlotLayout.expand) ?? [] },
            key: { NFTValue.address($0) }, label: { "VIP \($0)" },
            modMap: f.vipMod, slotMap: f.vipSlotMap, backends: f.vipBackends, dispatch: f.vipDispatch,
            value: { NFTValue.address($0.address) }, chain: f.vipChain,
            rule: { m in
                NFTExpr.load([f.daddr]) + slotThenBackend(f.vipSlotMap, f.vipBackends, modulus: m)
                    + [.nat(.dnat, family: f.nat, address: .r(0), port: nil, flags: [])]
            }, batch: &b, changes: &changes)
        n.vipTargets = vipGroup.current
        n.vipSlot = vipGroup.slots
        n.vipChains = vipGroup.chains
        n.vipPool = vipGroup.pool

        if n.ingress || !n.portTargets.isEmpty {
            let portKeys = scope.map { Array($0.ports) } ?? Array(Set(n.portTargets.keys).union(d.published.keys))
            var portGroup = Group(current: n.portTargets, slots: n.portSlot, chains: n.portChains, pool: n.portPool)
            n.portTargets = [:]
            n.portSlot = [:]
            let ingress = n.ingress
            portGroup.plan(
                keys: portKeys.sorted(), desired: { ingress ? d.published[$0].map(SlotLayout.expand) ?? [] : [] },
                key: { key($0) }, label: { "\(f.label)port \($0)" },
                modMap: f.pubMod, slotMap: f.pubSlotMap, backends: f.pubBackends, dispatch: f.pubDispatch,
                value: { NFTValue.concat(.address($0.address), .port($0.port ?? 0)) }, chain: f.portChain,
                rule: { m in
                    NFTExpr.load([.l4proto, .thDport]) + slotThenBackend(f.pubSlotMap, f.pubBackends, modulus: m)
                        + [.nat(.dnat, family: f.nat, address: .r(0), port: f.portRegister, flags: [.protoSpecified])]
                }, batch: &b, changes: &changes)
            n.portTargets = portGroup.current
            n.portSlot = portGroup.slots
            n.portChains = portGroup.chains
            n.portPool = portGroup.pool
        }
        return b
    }

    /// `meta mark set KEY map @mod  meta mark vmap @dispatch`, for a key already in r0. The value
    /// passes through the packet mark rather than a register so that `nft list` can print the
    /// rule (nft 1.0.6 aborts on a concatenation whose part is a map result).
    static func viaMark(_ mod: NFTSet, _ dispatch: NFTSet) -> [NFTExpr] {
        [
            .lookup(set: mod.name, from: .r(0), into: .r(0), invert: false), .metaSet(.mark, from: .r(0)),
            .meta(.mark, into: .r(0)), .lookup(set: dispatch.name, from: .r(0), into: .verdict, invert: false),
        ]
    }

    /// `meta mark set KEY map @slots  … to meta mark . numgen inc mod M map @backends`: the
    /// backend lands in r0 (and r1 for a port).
    static func slotThenBackend(_ slots: NFTSet, _ backends: NFTSet, modulus m: Int) -> [NFTExpr] {
        [
            .lookup(set: slots.name, from: .r(0), into: .r(0), invert: false), .metaSet(.mark, from: .r(0)),
            .meta(.mark, into: .r(0)), .numgen(random: false, modulus: UInt32(m), offset: 0, into: .r(1)),
            .lookup(set: backends.name, from: .r(0), into: .r(0), invert: false),
        ]
    }

    /// One family of balanced keys (VIPs or published ports) and its slot numbers.
    struct Group<K: Hashable & Comparable> {
        var current: [K: [BalancerState.Target]]
        var slots: [K: UInt32]
        var chains: Set<Int>
        var pool: SlotPool

        init(current: [K: [BalancerState.Target]], slots: [K: UInt32], chains: Set<Int>, pool: SlotPool) {
            self.current = current
            self.slots = slots
            self.chains = chains
            self.pool = pool
            // Once per table (after a read or a fresh start), never per change.
            if self.pool.next == 0 { self.pool.next = (slots.values.max() ?? 0) + 1 }
        }

        mutating func take() -> UInt32 {
            if let s = pool.free.popLast() { return s }
            defer { pool.next += 1 }
            return pool.next
        }

        /// Element changes for `keys` only: removals first, so a freed slot can be reused in the
        /// same transaction.
        mutating func plan(
            keys: [K], desired: (K) -> [BalancerState.Target], key: (K) -> NFTValue, label: (K) -> String,
            modMap: NFTSet, slotMap: NFTSet, backends: NFTSet, dispatch: NFTSet,
            value: (BalancerState.Target) -> NFTValue, chain: (Int) -> NFTChain, rule: (Int) -> [NFTExpr],
            batch b: inout NFTBatch, changes: inout [String]
        ) {
            func element(_ slot: UInt32, _ j: Int) -> NFTValue { .concat(.u32(slot), .u32(UInt32(j))) }
            let wanted = keys.map { ($0, desired($0)) }
            for (k, want) in wanted where want.isEmpty {
                guard let old = current[k] else { continue }
                if let slot = slots[k] {
                    b.delete([NFTElement(key(k))], from: modMap)
                    b.delete([NFTElement(key(k))], from: slotMap)
                    if !old.isEmpty { b.delete(old.indices.map { NFTElement(element(slot, $0)) }, from: backends) }
                    pool.free.append(slot)
                }
                current[k] = nil
                slots[k] = nil
                changes.append("nft: remove \(label(k))")
            }
            for (k, want) in wanted where !want.isEmpty {
                let have = current[k]
                if have == want { continue }
                if !chains.contains(want.count) {
                    let c = chain(want.count)
                    b.add(c)
                    b.add(NFTRule(c, rule(want.count), comment: "\(want.count) slots"))
                    b.add([.map(.u32(UInt32(want.count)), to: .goto(c.name))], to: dispatch)
                    chains.insert(want.count)
                }
                if let have, let slot = slots[k] {
                    if have.count != want.count {
                        b.delete([NFTElement(key(k))], from: modMap)
                        b.add([.map(key(k), to: .u32(UInt32(want.count)))], to: modMap)
                    }
                    var del: [NFTElement] = [], add: [NFTElement] = []
                    for j in 0..<max(have.count, want.count) {
                        let h = j < have.count ? have[j] : nil, w = j < want.count ? want[j] : nil
                        if h == w { continue }
                        if h != nil { del.append(NFTElement(element(slot, j))) }
                        if let w { add.append(.map(element(slot, j), to: value(w))) }
                    }
                    if !del.isEmpty { b.delete(del, from: backends) }
                    if !add.isEmpty { b.add(add, to: backends) }
                } else {
                    let slot = take()
                    slots[k] = slot
                    b.add(want.enumerated().map { .map(element(slot, $0.offset), to: value($0.element)) }, to: backends)
                    b.add([.map(key(k), to: .u32(slot))], to: slotMap)
                    b.add([.map(key(k), to: .u32(UInt32(want.count)))], to: modMap)
                }
                current[k] = want
                changes.append(
                    "nft: \(label(k)) → " + want.map { t in t.port.map { "\(t.address):\($0)" } ?? "\(t.address)" }.joined(separator: " "))
            }
        }
    }
}
