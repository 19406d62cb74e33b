import MeshKernel

/// Service VIPs and published ports in nftables, in the sandbox's `table ip meshd`. A service is
/// set elements only, so adding, scaling or removing one never re-validates the table:
///
///     prerouting:  meta l4proto @lb_protos  ip daddr map @vip_mod  vmap @vip_dispatch
///                  iifname ingress0  meta l4proto . th dport map @pub_mod  vmap @pub_dispatch
///     vip-M:       ip daddr map @vip_slot . numgen inc mod M  map @vip_backends → dnat (port kept)
///     pub-M:       l4proto . dport map @pub_slot . numgen inc mod M  map @pub_backends → dnat addr:port
///     postrouting: ip saddr . ip daddr @hairpin  snat to the gateway
///                  iifname ingress0  snat to the node's ingress address
///
/// One chain per slot count M (made the first time a service needs it), not per service: a rule
/// per service would make every change re-validate every chain (see MeshKernel's NFT notes).
struct NFTBalancer: Sendable {
    /// What meshd's table in one sandbox holds, at the level the kernel sees it.
    struct Applied: Equatable, Sendable {
        var table = false
        var ingress = false
        var vipSlot: [IPAddress: UInt32] = [:]
        var vipTargets: [IPAddress: [BalancerState.Target]] = [:]      // expanded slot lists
        var portSlot: [BalancerState.PortKey: UInt32] = [:]
        var portTargets: [BalancerState.PortKey: [BalancerState.Target]] = [:]
        var vipChains: Set<Int> = []
        var portChains: Set<Int> = []
        var hairpin: Set<IPAddress> = []
    }

    static let table = Naming.sandboxTable
    static let ingressIf = Naming.ingressSandboxSide
    static var pre: NFTChain { NFTChain(table, "prerouting", base: .init(type: .nat, hook: .prerouting, priority: -100)) }
    static var post: NFTChain { NFTChain(table, "postrouting", base: .init(type: .nat, hook: .postrouting, priority: 100)) }
    static var protos: NFTSet { NFTSet(table, "lb_protos", key: NFTKeyType(.inetProto)) }
    static var vipMod: NFTSet { NFTSet(table, "vip_mod", key: NFTKeyType(.ipv4Address), kind: .map(NFTKeyType(.mark))) }
    static var vipSlotMap: NFTSet { NFTSet(table, "vip_slot", key: NFTKeyType(.ipv4Address), kind: .map(NFTKeyType(.mark))) }
    static var vipDispatch: NFTSet { NFTSet(table, "vip_dispatch", key: NFTKeyType(.mark), kind: .verdictMap) }
    static var vipBackends: NFTSet {
        NFTSet(table, "vip_backends", key: NFTKeyType(.mark, .integer(bytes: 4)), kind: .map(NFTKeyType(.ipv4Address)))
    }
    static let portKey = NFTKeyType(.inetProto, .inetService)
    static var pubMod: NFTSet { NFTSet(table, "pub_mod", key: portKey, kind: .map(NFTKeyType(.mark))) }
    static var pubSlotMap: NFTSet { NFTSet(table, "pub_slot", key: portKey, kind: .map(NFTKeyType(.mark))) }
    static var pubDispatch: NFTSet { NFTSet(table, "pub_dispatch", key: NFTKeyType(.mark), kind: .verdictMap) }
    static var pubBackends: NFTSet {
        NFTSet(table, "pub_backends", key: NFTKeyType(.mark, .integer(bytes: 4)), kind: .map(NFTKeyType(.ipv4Address, .inetService)))
    }
    static var hairpinSet: NFTSet { NFTSet(table, "hairpin", key: NFTKeyType(.ipv4Address, .ipv4Address)) }
    static func vipChain(_ m: Int) -> NFTChain { NFTChain(table, "vip-\(m)") }
    static func portChain(_ m: Int) -> NFTChain { NFTChain(table, "pub-\(m)") }

    // MARK: reading

    static func read(_ nft: NFTSocket) throws(KernelError) -> Applied {
        var a = Applied()
        guard try nft.listTables(family: .ip).contains(where: { $0.name == table.name }) else { return a }
        a.table = true
        let rules = try nft.listRules(table)
        a.ingress = rules.contains { $0.comment == "published dispatch" }
        for c in try nft.listChains(table) {
            if c.name.hasPrefix("vip-"), let m = Int(c.name.dropFirst(4)) { a.vipChains.insert(m) }
            if c.name.hasPrefix("pub-"), let m = Int(c.name.dropFirst(4)) { a.portChains.insert(m) }
        }
        let sets = Set(try nft.listSets(table).map(\.name))
        func elements(_ s: NFTSet) throws(KernelError) -> [NFTElement] { sets.contains(s.name) ? try nft.listElements(s) : [] }

        for e in try elements(vipSlotMap) {
            if let vip = IPAddress(bytes: e.key.bytes), let slot = value(e).flatMap(u32) { a.vipSlot[vip] = slot }
        }
        var vipBySlot: [UInt32: [(Int, BalancerState.Target)]] = [:]
        for e in try elements(vipBackends) where e.key.bytes.count == 8 {
            guard let v = value(e), let addr = IPAddress(bytes: v.bytes.prefix(4)) else { continue }
            vipBySlot[u32(e.key.bytes[0..<4])!, default: []].append((Int(u32(e.key.bytes[4..<8])!), .init(address: addr, port: nil, weight: 1)))
        }
        for (vip, slot) in a.vipSlot { a.vipTargets[vip] = (vipBySlot[slot] ?? []).sorted { $0.0 < $1.0 }.map(\.1) }

        for e in try elements(pubSlotMap) {
            if let k = portKey(e.key), let slot = value(e).flatMap(u32) { a.portSlot[k] = slot }
        }
        var portBySlot: [UInt32: [(Int, BalancerState.Target)]] = [:]
        for e in try elements(pubBackends) where e.key.bytes.count == 8 {
            guard let v = value(e), v.bytes.count >= 6, let addr = IPAddress(bytes: v.bytes.prefix(4)) else { continue }
            let port = UInt16(v.bytes[4]) << 8 | UInt16(v.bytes[5])
            portBySlot[u32(e.key.bytes[0..<4])!, default: []].append((Int(u32(e.key.bytes[4..<8])!), .init(address: addr, port: port, weight: 1)))
        }
        for (k, slot) in a.portSlot { a.portTargets[k] = (portBySlot[slot] ?? []).sorted { $0.0 < $1.0 }.map(\.1) }

        for e in try elements(hairpinSet) where e.key.bytes.count == 8 {
            if let x = IPAddress(bytes: e.key.bytes.prefix(4)) { a.hairpin.insert(x) }
        }
        return a
    }

    static func value(_ e: NFTElement) -> NFTValue? { if case .value(let v) = e.data { return v } else { return nil } }
    static func u32<C: Collection>(_ b: C) -> UInt32? where C.Element == UInt8 {
        guard b.count == 4 else { return nil }
        return b.reversed().reduce(0) { $0 << 8 | UInt32($1) }   // host order (little-endian here)
    }
    static func u32(_ v: NFTValue) -> UInt32? { u32(v.bytes) }
    static func portKey(_ v: NFTValue) -> BalancerState.PortKey? {
        guard v.bytes.count == 8, let p = TransportProtocol(number: v.bytes[0]) else { return nil }
        return .init(proto: p, port: UInt16(v.bytes[4]) << 8 | UInt16(v.bytes[5]))
    }
    static func key(_ k: BalancerState.PortKey) -> NFTValue { .concat(.proto(k.proto.number), .port(k.port)) }

    // MARK: planning

    /// The transaction that turns `from` into `to` (nil: remove the table), with one line per
    /// change for the report, and what the table holds afterwards.
    static func plan(from a: Applied, to desired: BalancerState?, changes: inout [String]) -> (NFTBatch, Applied) {
        var b = NFTBatch()
        guard let d = desired else {
            if a.table { b.delete(table); changes.append("nft: delete table ip meshd") }
            return (b, Applied())
        }
        var n = a
        if !a.table {
            b.add(table); b.add(pre); b.add(post)
            for s in [protos, vipMod, vipSlotMap, vipDispatch, vipBackends, hairpinSet] { b.add(s) }
            b.add([6, 17, 132].map { NFTElement(.proto($0)) }, to: protos)
            b.add(NFTRule(pre, NFTExpr.load([.l4proto]) + [.lookup(set: protos.name, from: .r(0), into: nil, invert: false)]
                          + NFTExpr.load([.ipDaddr]) + [.lookup(set: vipMod.name, from: .r(0), into: .r(4), invert: false),
                                                        .lookup(set: vipDispatch.name, from: .r(4), into: .verdict, invert: false)],
                          comment: "vip dispatch"))
            b.add(NFTRule(post, NFTExpr.load([.ipSaddr, .ipDaddr]) + [.lookup(set: hairpinSet.name, from: .r(0), into: nil, invert: false)]
                          + NFTExpr.snat(to: d.gateway), comment: "hairpin"))
            changes.append("nft: add table ip meshd (hairpin via \(d.gateway))")
            n = Applied(); n.table = true
        }
        if let src = d.ingressSource, !n.ingress {
            for s in [pubMod, pubSlotMap, pubDispatch, pubBackends] { b.add(s) }
            b.add(NFTRule(pre, NFTExpr.match(.iifname, .eq, .ifname(ingressIf)) + NFTExpr.load([.l4proto, .thDport])
                          + [.lookup(set: pubMod.name, from: .r(0), into: .r(4), invert: false),
                             .lookup(set: pubDispatch.name, from: .r(4), into: .verdict, invert: false)],
                          comment: "published dispatch"))
            b.add(NFTRule(post, NFTExpr.match(.iifname, .eq, .ifname(ingressIf)) + NFTExpr.snat(to: src), comment: "ingress snat"))
            changes.append("nft: published-port dispatch, ingress traffic leaves from \(src)")
            n.ingress = true
        }

        // Hairpin set.
        let addH = d.hairpin.subtracting(n.hairpin), delH = n.hairpin.subtracting(d.hairpin)
        if !delH.isEmpty { b.delete(delH.sorted().map { NFTElement(.concat(.address($0), .address($0))) }, from: hairpinSet) }
        if !addH.isEmpty { b.add(addH.sorted().map { NFTElement(.concat(.address($0), .address($0))) }, to: hairpinSet) }
        for x in addH.sorted() { changes.append("nft: hairpin \(x)") }
        for x in delH.sorted() { changes.append("nft: no hairpin \(x)") }
        n.hairpin = d.hairpin

        // VIPs.
        var vipDesired: [IPAddress: [BalancerState.Target]] = [:]
        for (vip, targets) in d.vips { let e = SlotLayout.expand(targets); if !e.isEmpty { vipDesired[vip] = e } }
        planGroup(current: &n.vipTargets, slots: &n.vipSlot, chains: &n.vipChains, desired: vipDesired,
                  key: { NFTValue.address($0) }, label: { "VIP \($0)" },
                  modMap: vipMod, slotMap: vipSlotMap, backends: vipBackends, dispatch: vipDispatch,
                  value: { NFTValue.address($0.address) }, chain: vipChain, rule: { m in
                      NFTExpr.load([.ipDaddr], from: 2)
                      + [.lookup(set: vipSlotMap.name, from: .r(2), into: .r(0), invert: false),
                         .numgen(random: false, modulus: UInt32(m), offset: 0, into: .r(1)),
                         .lookup(set: vipBackends.name, from: .r(0), into: .r(0), invert: false),
                         .nat(.dnat, family: .ip, address: .r(0), port: nil, flags: [])]
                  }, batch: &b, changes: &changes)

        // Published ports (ingress sandbox).
        var portDesired: [BalancerState.PortKey: [BalancerState.Target]] = [:]
        if n.ingress {
            for (k, targets) in d.published { let e = SlotLayout.expand(targets); if !e.isEmpty { portDesired[k] = e } }
        }
        if n.ingress || !n.portTargets.isEmpty {
            planGroup(current: &n.portTargets, slots: &n.portSlot, chains: &n.portChains, desired: portDesired,
                      key: { key($0) }, label: { "port \($0)" },
                      modMap: pubMod, slotMap: pubSlotMap, backends: pubBackends, dispatch: pubDispatch,
                      value: { NFTValue.concat(.address($0.address), .port($0.port ?? 0)) }, chain: portChain, rule: { m in
                          NFTExpr.load([.l4proto, .thDport], from: 2)
                          + [.lookup(set: pubSlotMap.name, from: .r(2), into: .r(0), invert: false),
                             .numgen(random: false, modulus: UInt32(m), offset: 0, into: .r(1)),
                             .lookup(set: pubBackends.name, from: .r(0), into: .r(0), invert: false),
                             .nat(.dnat, family: .ip, address: .r(0), port: .r(1), flags: [.protoSpecified])]
                      }, batch: &b, changes: &changes)
        }
        return (b, n)
    }

    /// Element changes for one family of balanced keys (VIPs or published ports): only the keys
    /// whose slot lists differ are touched.
    private static func planGroup<K: Hashable & Comparable>(
        current: inout [K: [BalancerState.Target]], slots: inout [K: UInt32], chains: inout Set<Int>,
        desired: [K: [BalancerState.Target]], key: (K) -> NFTValue, label: (K) -> String,
        modMap: NFTSet, slotMap: NFTSet, backends: NFTSet, dispatch: NFTSet,
        value: (BalancerState.Target) -> NFTValue, chain: (Int) -> NFTChain, rule: (Int) -> [NFTExpr],
        batch b: inout NFTBatch, changes: inout [String]
    ) {
        func element(_ slot: UInt32, _ j: Int) -> NFTValue { .concat(.u32(slot), .u32(UInt32(j))) }
        func ensureChain(_ m: Int) {
            guard !chains.contains(m) else { return }
            let c = chain(m)
            b.add(c)
            b.add(NFTRule(c, rule(m), comment: "\(m) slots"))
            b.add([.map(.u32(UInt32(m)), to: .goto(c.name))], to: dispatch)
            chains.insert(m)
        }
        // Removed keys first, so their slots can be reused in the same transaction.
        for k in current.keys.filter({ desired[$0] == nil }).sorted() {
            let old = current[k]!
            if let slot = slots[k] {
                b.delete([NFTElement(key(k))], from: modMap)
                b.delete([NFTElement(key(k))], from: slotMap)
                if !old.isEmpty { b.delete(old.indices.map { NFTElement(element(slot, $0)) }, from: backends) }
            }
            current[k] = nil; slots[k] = nil
            changes.append("nft: remove \(label(k))")
        }
        var used = Set(slots.values)
        var nextFree: UInt32 = 1
        for k in desired.keys.sorted() {
            let want = desired[k]!
            let have = current[k]
            if have == want { continue }
            ensureChain(want.count)
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
                while used.contains(nextFree) { nextFree += 1 }
                let slot = nextFree
                used.insert(slot); slots[k] = slot
                b.add(want.enumerated().map { .map(element(slot, $0.offset), to: value($0.element)) }, to: backends)
                b.add([.map(key(k), to: .u32(slot))], to: slotMap)
                b.add([.map(key(k), to: .u32(UInt32(want.count)))], to: modMap)
            }
            current[k] = want
            changes.append("nft: \(label(k)) → " + want.map { t in t.port.map { "\(t.address):\($0)" } ?? "\(t.address)" }.joined(separator: " "))
        }
    }
}
