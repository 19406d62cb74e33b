import MeshKernel

/// What each VIP and published port carries, counted by the kernel in the sandbox's
/// `table ip meshd`, whichever balancer (nftables or IPVS) does the balancing:
///
///     meter (filter, prerouting, -160):  ip daddr @vip_bytes
///                                        ct state new  ip daddr @vip_conns
///                                        iifname ingress0  meta l4proto . th dport @pub_bytes            (ingress sandbox)
///                                        iifname ingress0  ct state new  meta l4proto . th dport @pub_conns
///
/// Each set is declared with `counter`, so every element has its own and a lookup that finds it
/// counts the packet: one rule per kind, not per service (adding a VIP is one element per set,
/// as with the balancer). The counts are of packets sent to the VIP or port (requests; replies
/// leave through conntrack's reverse NAT) and of new connections. A scrape reads these sets'
/// elements and nothing else of the table.
struct TrafficMeter: Sendable {
    struct Applied: Equatable, Sendable {
        var chain = false
        var ingress = false
        var vips: Set<IPAddress> = []
        var ports: Set<BalancerState.PortKey> = []
    }

    static let table = Naming.sandboxTable
    static var chain: NFTChain { NFTChain(table, "meter", base: .init(type: .filter, hook: .prerouting, priority: -160)) }
    static var vipBytes: NFTSet { NFTSet(table, "vip_bytes", key: NFTKeyType(.ipv4Address), counters: true) }
    static var vipConns: NFTSet { NFTSet(table, "vip_conns", key: NFTKeyType(.ipv4Address), counters: true) }
    static var pubBytes: NFTSet { NFTSet(table, "pub_bytes", key: NFTBalancer.portKey, counters: true) }
    static var pubConns: NFTSet { NFTSet(table, "pub_conns", key: NFTBalancer.portKey, counters: true) }

    static func read(_ nft: NFTSocket) throws(KernelError) -> Applied {
        var a = Applied()
        guard try nft.listTables(family: .ip).contains(where: { $0.name == table.name }) else { return a }
        let sets = Set(try nft.listSets(table).map(\.name))
        guard try nft.listChains(table).contains(where: { $0.name == chain.name }), sets.contains(vipBytes.name) else { return a }
        a.chain = true
        for e in try nft.listElements(vipBytes) { if let v = IPAddress(bytes: e.key.bytes) { a.vips.insert(v) } }
        if sets.contains(pubBytes.name) {
            a.ingress = true
            for e in try nft.listElements(pubBytes) { if let k = NFTBalancer.portKey(e.key) { a.ports.insert(k) } }
        }
        return a
    }

    /// Adds to `batch` what makes the meter count exactly `desired`'s VIPs and published ports,
    /// after the balancer's own operations (which make the table). nil: the balancer removes the
    /// table, and the meter with it. With a scope only the VIPs and ports it names are compared.
    static func plan(
        _ n: inout Applied, to desired: BalancerState?, scope: DesiredModel.Touched?, batch b: inout NFTBatch,
        changes: inout [String]
    ) {
        guard let d = desired else {
            n = Applied()
            return
        }
        var scope = scope
        if !n.chain {
            b.add(chain)
            for s in [vipBytes, vipConns] { b.add(s) }
            b.add(NFTRule(chain, NFTExpr.load([.ipDaddr]) + [lookup(vipBytes)], comment: "vip traffic"))
            b.add(NFTRule(chain, NFTExpr.ctState(.new) + NFTExpr.load([.ipDaddr]) + [lookup(vipConns)], comment: "vip connections"))
            changes.append("nft: traffic meter")
            n = Applied()
            n.chain = true
            scope = nil
        }
        if d.ingressSource != nil && !n.ingress {
            for s in [pubBytes, pubConns] { b.add(s) }
            let fromIngress = NFTExpr.match(.iifname, .eq, .ifname(NFTBalancer.ingressIf))
            b.add(NFTRule(chain, fromIngress + NFTExpr.load([.l4proto, .thDport]) + [lookup(pubBytes)], comment: "published traffic"))
            b.add(
                NFTRule(
                    chain, fromIngress + NFTExpr.ctState(.new) + NFTExpr.load([.l4proto, .thDport]) + [lookup(pubConns)],
                    comment: "published connections"))
            n.ingress = true
            n.ports = []
            scope = nil
        }

        let vipKeys = scope.map { $0.vips } ?? n.vips.union(d.vips.keys)
        var addVIPs: [NFTElement] = []
        var delVIPs: [NFTElement] = []
        for v in vipKeys.sorted() {
            let want = d.vips[v] != nil
            if want && !n.vips.contains(v) {
                addVIPs.append(NFTElement(.address(v)))
                n.vips.insert(v)
            } else if !want && n.vips.contains(v) {
                delVIPs.append(NFTElement(.address(v)))
                n.vips.remove(v)
            }
        }
        for s in [vipBytes, vipConns] {
            b.add(addVIPs, to: s)
            b.delete(delVIPs, from: s)
        }
        guard n.ingress else { return }
        let portKeys = scope.map { $0.ports } ?? n.ports.union(d.published.keys)
        var addPorts: [NFTElement] = []
        var delPorts: [NFTElement] = []
        for k in portKeys.sorted() {
            let want = d.published[k] != nil
            if want && !n.ports.contains(k) {
                addPorts.append(NFTElement(NFTBalancer.key(k)))
                n.ports.insert(k)
            } else if !want && n.ports.contains(k) {
                delPorts.append(NFTElement(NFTBalancer.key(k)))
                n.ports.remove(k)
            }
        }
        for s in [pubBytes, pubConns] {
            b.add(addPorts, to: s)
            b.delete(delPorts, from: s)
        }
    }

    private static func lookup(_ s: NFTSet) -> NFTExpr { .lookup(set: s.name, from: .r(0), into: nil, invert: false) }

    /// The counts now, from the four sets' elements.
    static func counts(_ nft: NFTSocket) throws(KernelError) -> TrafficCounts {
        var out = TrafficCounts()
        let sets = Set(try nft.listSets(table).map(\.name))
        func each(_ s: NFTSet, _ body: (NFTElement, NFTCounter) -> Void) throws(KernelError) {
            guard sets.contains(s.name) else { return }
            for e in try nft.listElements(s) { if let c = e.counter { body(e, c) } }
        }
        try each(vipBytes) { e, c in
            if let v = IPAddress(bytes: e.key.bytes) {
                out.vips[v, default: .init()].packets = c.packets
                out.vips[v, default: .init()].bytes = c.bytes
            }
        }
        try each(vipConns) { e, c in if let v = IPAddress(bytes: e.key.bytes) { out.vips[v, default: .init()].connections = c.packets } }
        try each(pubBytes) { e, c in
            if let k = NFTBalancer.portKey(e.key) {
                out.ports[k, default: .init()].packets = c.packets
                out.ports[k, default: .init()].bytes = c.bytes
            }
        }
        try each(pubConns) { e, c in if let k = NFTBalancer.portKey(e.key) { out.ports[k, default: .init()].connections = c.packets } }
        return out
    }
}

/// Traffic through one sandbox's VIPs and published ports since each was added.
public struct TrafficCounts: Sendable, Equatable {
    public struct Count: Sendable, Equatable {
        /// New connections (a UDP flow counts once per conntrack entry).
        public var connections: UInt64 = 0
        /// Packets and bytes sent to the VIP or port.
        public var packets: UInt64 = 0
        public var bytes: UInt64 = 0
    }
    public var vips: [IPAddress: Count] = [:]
    public var ports: [BalancerState.PortKey: Count] = [:]
}
