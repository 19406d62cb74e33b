import MeshKernel

#if canImport(Glibc)
    import Glibc
#endif

/// Ingress that keeps the client's address needs its answers to go back the way the request
/// came. The entry node balances a published port to a task on another node without SNAT, so
/// the task answers the client's own address; that answer must reach the entry node's ingress
/// sandbox again (its conntrack holds the NAT to undo), never leave through the task's node.
/// The backend's ingress sandbox remembers, per connection, which node let it in (the source
/// MAC of the first packet: that node's vxlan0, `Naming.vxlanMAC`) and routes the connection's
/// answers to that node's ingress address:
///
///     table ip meshd_return
///       prerouting (filter, -150): iifname vxlan0  ct state new  ct mark set ether saddr map @entries
///                                  ct direction reply  ct mark & 0xff000000 == 0x4d000000  meta mark set ct mark
///     ip rule pref 1000 fwmark M lookup M                       (one per other node)
///     ip route table M: default via <that node's ingress address> dev vxlan0 onlink
///
/// M is 0x4d000000 plus the low 24 bits of the node's ingress address: computed, never allocated,
/// so a restarted meshd reads back the same marks, and unique while the ingress subnet is a /8 or
/// smaller. The balancers' marks never reach that range (nft's slots are counts, IPVS uses
/// 0x1… and 0x2…), and the mark is set on answers only, which the balancers do not look at.
/// A connection that came from the ingress veth (this node let it in) carries no mark: its
/// answers follow the main table. The task's side (`SandboxModel.Endpoint.returnGateway`) is a
/// rule in its own namespace that sends what leaves from its ingress address to the ingress
/// gateway, whatever network carries its default route.
///
/// On a dual-stack ingress network the same holds for IPv6: `table ip6 meshd_return` with the
/// same chain and map (one transaction writes both maps), the same marks, and per other node an
/// IPv6 rule and, in the same table M, `default via <the twin of its ingress address> dev vxlan0
/// onlink`. The task's side gets the IPv6 rule and default in table 77 as well.
enum IngressReturn {
    static let table = NFTTable(.ip, "meshd_return")
    static let table6 = NFTTable(.ip6, "meshd_return")
    static func chain(_ t: NFTTable = table) -> NFTChain {
        NFTChain(t, "prerouting", base: .init(type: .filter, hook: .prerouting, priority: -150))
    }
    static func entries(_ t: NFTTable = table) -> NFTSet {
        NFTSet(t, "entries", key: NFTKeyType(.etherAddress), kind: .map(NFTKeyType(.mark)))
    }
    static let markBase: UInt32 = 0x4d00_0000
    static let markMask: UInt32 = 0xff00_0000
    static let rulePriority: UInt32 = 1000

    static func mark(_ nodeIngress: IPAddress) -> UInt32 {
        markBase | (nodeIngress.bytes.suffix(3).reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
    }

    /// What one sandbox holds.
    struct Applied: Equatable, Sendable {
        var table = false
        /// Map elements: a node's vxlan0 MAC → its mark.
        var entries: [MACAddress: UInt32] = [:]
        /// Marks with an `ip rule`.
        var rules: Set<UInt32> = []
        /// Table (= mark) → the default route's next hop.
        var routes: [UInt32: IPAddress] = [:]
        /// The IPv6 side (a dual-stack ingress): its table (its map mirrors `entries`), rules, routes.
        var table6 = false
        var rules6: Set<UInt32> = []
        var routes6: [UInt32: IPAddress] = [:]
    }

    static func read(nft: NFTSocket, netlink: NetlinkHandle) async throws(KernelError) -> Applied {
        var a = Applied()
        if try nft.listTables(family: .ip).contains(where: { $0.name == table.name }) {
            a.table = true
            for e in try nft.listElements(entries()) {
                guard e.key.bytes.count == 6,
                    let mac = MACAddress(rawValue: e.key.bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }),
                    let v = NFTBalancer.value(e).flatMap(NFTBalancer.u32)
                else { continue }
                a.entries[mac] = v
            }
        }
        (a.rules, a.routes) = try await paths(netlink, family: AF_INET)
        a.table6 = try nft.listTables(family: .ip6).contains(where: { $0.name == table6.name })
        (a.rules6, a.routes6) = try await paths(netlink, family: AF_INET6)
        return a
    }

    /// One family's return paths as the kernel has them: meshd's mark rules, and table M's default route.
    static func paths(_ netlink: NetlinkHandle, family: Int32) async throws(KernelError) -> (Set<UInt32>, [UInt32: IPAddress]) {
        var rules: Set<UInt32> = [], routes: [UInt32: IPAddress] = [:]
        for r in try await netlink.ruleList(family: family)
        where r.proto == Route.meshdProtocol && r.priority == rulePriority && r.source == nil {
            if let m = r.mark, m & markMask == markBase { rules.insert(m) }
        }
        for r in try await netlink.routeList(family: family, table: nil)
        where r.table & markMask == markBase && r.destination.length == 0 {
            if let g = r.gateway { routes[r.table] = g }
        }
        return (rules, routes)
    }

    /// The kernel changes that make `a` hold `want` (a node's vxlan0 MAC → its ingress address;
    /// nil: this is not the ingress sandbox, nothing of this belongs here). With `only`, just
    /// those nodes are compared. Routes and rules for new nodes go first (`before`), so a mark is
    /// never set that leads nowhere; those of departed nodes last (`after`).
    /// `twin`: on a dual-stack ingress, a node's ingress address → its IPv6 twin (nil: IPv4 only).
    static func plan(
        _ a: inout Applied, to want: [MACAddress: IPAddress]?, twin: ((IPAddress) -> IPAddress?)? = nil,
        only: Set<MACAddress>? = nil, changes: inout [String]
    ) -> (before: [RouteOperation], nft: NFTBatch, after: [RouteOperation]) {
        var before: [RouteOperation] = [], after: [RouteOperation] = []
        var b = NFTBatch()
        guard let want else {
            if a.table {
                b.delete(table)
                changes.append("nft: delete table ip meshd_return")
            }
            for m in a.rules.sorted() { after.append(.rule(.delete, rule(m))) }
            for (t, g) in a.routes.sorted(by: { $0.key < $1.key }) { after.append(.route(.delete, route(t, via: g))) }
            if !a.rules.isEmpty || !a.routes.isEmpty { changes.append("ingress return: delete \(a.rules.count) rules") }
            dropIPv6(&a, batch: &b, after: &after, changes: &changes)
            a = Applied()
            return ([], b, after)
        }
        let fresh = !a.table
        if fresh {
            addTable(table, to: &b)
            changes.append("nft: add table ip meshd_return")
            a.table = true
            a.entries = [:]
        }
        let keys = (fresh ? nil : only).map { Array($0) } ?? Array(Set(a.entries.keys).union(want.keys))
        var addElements: [NFTElement] = [], delElements: [NFTElement] = []
        var touched: Set<UInt32> = []
        for mac in keys.sorted() {
            let next = want[mac]
            let newMark = next.map(mark)
            let oldMark = a.entries[mac]
            for m in [newMark, oldMark] { if let m { touched.insert(m) } }
            if let m = newMark, let g = next {
                if a.routes[m] != g { before.append(.route(.replace, route(m, via: g))) }
                if !a.rules.contains(m) { before.append(.rule(.add, rule(m))) }
                a.routes[m] = g
                a.rules.insert(m)
            }
            if oldMark != newMark {
                if let o = oldMark {
                    delElements.append(element(mac, o))
                    // Another node may have taken this mark over (its address reused): keep what it uses.
                    if !want.values.contains(where: { mark($0) == o }) {
                        if a.rules.remove(o) != nil { after.append(.rule(.delete, rule(o))) }
                        if let g = a.routes.removeValue(forKey: o) { after.append(.route(.delete, route(o, via: g))) }
                    }
                }
                if let m = newMark { addElements.append(element(mac, m)) }
                a.entries[mac] = newMark
                changes.append(
                    next.map { "ingress return: \(mac) via \($0) (mark 0x\(String(mark($0), radix: 16)))" }
                        ?? "ingress return: delete \(mac)")
            }
        }
        if !delElements.isEmpty { b.delete(delElements, from: entries()) }
        if !addElements.isEmpty { b.add(addElements, to: entries()) }

        // The IPv6 side follows the IPv4 one: the same elements, the twins as next hops.
        guard let twin else {
            dropIPv6(&a, batch: &b, after: &after, changes: &changes)
            return (before, b, after)
        }
        let fresh6 = !a.table6
        if fresh6 {
            addTable(table6, to: &b)
            if !a.entries.isEmpty { b.add(a.entries.sorted { $0.key < $1.key }.map { element($0.key, $0.value) }, to: entries(table6)) }
            changes.append("nft: add table ip6 meshd_return")
            a.table6 = true
        } else {
            if !delElements.isEmpty { b.delete(delElements, from: entries(table6)) }
            if !addElements.isEmpty { b.add(addElements, to: entries(table6)) }
        }
        // `routes` now holds each wanted mark's IPv4 next hop; only the marks this change touched
        // are compared, unless the IPv6 side is new.
        let marks6 = fresh6 || only == nil ? Set(a.routes.keys).union(a.routes6.keys).union(a.rules6) : touched
        for m in marks6.sorted() {
            if let g = a.routes[m], let g6 = twin(g) {
                if a.routes6[m] != g6 { before.append(.route(.replace, route(m, via: g6))) }
                if !a.rules6.contains(m) { before.append(.rule(.add, rule(m, family: AF_INET6))) }
                a.routes6[m] = g6
                a.rules6.insert(m)
            } else {
                if a.rules6.remove(m) != nil { after.append(.rule(.delete, rule(m, family: AF_INET6))) }
                if let g6 = a.routes6.removeValue(forKey: m) { after.append(.route(.delete, route(m, via: g6))) }
            }
        }
        return (before, b, after)
    }

    /// The chain and map of a `meshd_return` table, IPv4's or IPv6's.
    static func addTable(_ t: NFTTable, to b: inout NFTBatch) {
        b.add(t)
        b.add(chain(t))
        b.add(entries(t))
        b.add(
            NFTRule(
                chain(t),
                NFTExpr.match(.iifname, .eq, .ifname(Naming.vxlan)) + NFTExpr.ctState(.new)
                    + NFTExpr.load([.etherSaddr]) + [
                        .lookup(set: entries(t).name, from: .r(0), into: .r(0), invert: false), .ctSet(.mark, from: .r(0)),
                    ],
                comment: "remember the entry node"))
        b.add(
            NFTRule(
                chain(t),
                [
                    .ct(.direction, into: .r(0)), .cmp(.eq, .r(0), NFTValue(bytes: [1])),
                    .ct(.mark, into: .r(0)),
                    .bitwise(from: .r(0), into: .r(0), mask: .u32(markMask), xor: .u32(0)),
                    .cmp(.eq, .r(0), .u32(markBase)),
                    .ct(.mark, into: .r(0)), .metaSet(.mark, from: .r(0)),
                ],
                comment: "answers go back to the entry node"))
    }

    /// Removes the IPv6 side, if there is one.
    static func dropIPv6(_ a: inout Applied, batch b: inout NFTBatch, after: inout [RouteOperation], changes: inout [String]) {
        if a.table6 {
            b.delete(table6)
            changes.append("nft: delete table ip6 meshd_return")
        }
        for m in a.rules6.sorted() { after.append(.rule(.delete, rule(m, family: AF_INET6))) }
        for (t, g) in a.routes6.sorted(by: { $0.key < $1.key }) { after.append(.route(.delete, route(t, via: g))) }
        a.table6 = false
        a.rules6 = []
        a.routes6 = [:]
    }

    static func element(_ mac: MACAddress, _ mark: UInt32) -> NFTElement { .map(.mac(mac), to: .u32(mark)) }
    static func rule(_ mark: UInt32, family: Int32 = AF_INET) -> FIBRule {
        FIBRule(family: family, priority: rulePriority, mark: mark, table: mark)
    }
    static func route(_ table: UInt32, via g: IPAddress) -> Route {
        let any: IPAddress = g.isIPv4 ? .v4(0) : .v6(0, 0)
        return Route(destination: IPPrefix(address: any, length: 0)!, gateway: g, device: .name(Naming.vxlan), table: table, onlink: true)
    }
}
