import MeshKernel

/// The nftables layout for service VIPs that MeshKernel's benchmark and traffic proof use (and
/// that the dataplane should adopt): adding or removing a service costs the same at 100 or
/// 10,000 services. Kernel behaviours that shape it (measured at 10,000 services on 6.18):
///
/// - A transaction that adds a rule containing an expression with a validate hook (nat, lookup,
///   immediate, meta set, ...) or a jump/goto element re-validates the whole table, walking
///   every chain reachable from the base chains: 6-16 ms per change with a chain per service.
/// - Every commit walks every chain of every table: 10,000 chains cost ~0.8 ms per commit.
/// - Binding a lookup that has a data register to a map walks all of the map's elements, once
///   per (map, chain): a rule per service into one 100,000-element map made a cold load take 90 s.
/// - Sets are found by name with a linear search, so a set per service makes changes O(N).
/// - A rule may not read a register another rule wrote (ENODATA).
///
/// So there is one chain per backend count M, not per service, and a service is set elements
/// only (which never trigger validation):
///
///     prerouting: k = daddr . l4proto . dport; m = @svc_mod[k]; goto @mod_dispatch[m]
///     mod-M:      k = daddr . l4proto . dport; s = @svc_slot[k]; r = numgen random mod M;
///                 dnat to @backends[s . r]
///
/// Adding a service is one element in each of @svc_mod and @svc_slot and M in @backends.
/// The first service with a new backend count also adds chain mod-M (validation paid once per
/// distinct count; weights repeat a backend).
public struct NFTServiceRuleset: Sendable {
    public let table: NFTTable
    public var pre: NFTChain { NFTChain(table, "prerouting", base: .init(type: .nat, hook: .prerouting, priority: -100)) }
    static let vipKey = NFTKeyType(.ipv4Address, .inetProto, .inetService)
    public var svcMod: NFTSet { NFTSet(table, "svc_mod", key: Self.vipKey, kind: .map(NFTKeyType(.mark))) }
    public var svcSlot: NFTSet { NFTSet(table, "svc_slot", key: Self.vipKey, kind: .map(NFTKeyType(.mark))) }
    public var dispatch: NFTSet { NFTSet(table, "mod_dispatch", key: NFTKeyType(.mark), kind: .verdictMap) }
    public var backendMap: NFTSet {
        NFTSet(table, "backends", key: NFTKeyType(.mark, .integer(bytes: 4)), kind: .map(NFTKeyType(.ipv4Address, .inetService)))
    }

    public init(table: NFTTable) { self.table = table }

    public func chain(modulus m: Int) -> NFTChain { NFTChain(table, "mod-\(m)") }

    /// The table, base chain, maps and the dispatch rule.
    public func base() -> NFTBatch {
        var b = NFTBatch()
        b.add(table)
        b.add(pre)
        b.add(svcMod)
        b.add(svcSlot)
        b.add(dispatch)
        b.add(backendMap)
        b.add(
            NFTRule(
                pre,
                NFTExpr.load([.ipDaddr, .l4proto, .thDport], from: 8)
                    + [
                        .lookup(set: svcMod.name, from: .r(8), into: .r(4), invert: false),
                        .lookup(set: dispatch.name, from: .r(4), into: .verdict, invert: false),
                    ],
                comment: "service dispatch"))
        return b
    }

    /// The chain for services with `m` backends and its dispatch element: made once per count,
    /// before any service needs it (in a cold load, before the backends, so its binding to the
    /// backends map walks an empty map).
    public func addModulus(_ m: Int, to b: inout NFTBatch) {
        let c = chain(modulus: m)
        b.add(c)
        b.add(
            NFTRule(
                c,
                NFTExpr.load([.ipDaddr, .l4proto, .thDport], from: 8)
                    + [
                        .lookup(set: svcSlot.name, from: .r(8), into: .r(0), invert: false),
                        .numgen(random: true, modulus: UInt32(m), offset: 0, into: .r(1)),
                        .lookup(set: backendMap.name, from: .r(0), into: .r(0), invert: false),
                        .nat(.dnat, family: .ip, address: .r(0), port: .r(1), flags: [.protoSpecified]),
                    ],
                comment: "\(m) backends"))
        b.add([.map(.u32(UInt32(m)), to: .goto(c.name))], to: dispatch)
    }

    /// Service `id` at `vip:port/tcp`, spread evenly over `backends` (address, port); the chain
    /// for `backends.count` must exist.
    public func add(service id: Int, vip: IPAddress, port: UInt16 = 80, backends: [(IPAddress, UInt16)], to b: inout NFTBatch) {
        b.add(
            backends.enumerated().map { j, be in
                .map(.concat(.u32(UInt32(id)), .u32(UInt32(j))), to: .concat(.address(be.0), .port(be.1)))
            }, to: backendMap)
        let key = NFTValue.concat(.address(vip), .proto(6), .port(port))
        b.add([.map(key, to: .u32(UInt32(id)))], to: svcSlot)
        b.add([.map(key, to: .u32(UInt32(backends.count)))], to: svcMod)
    }

    /// Removes service `id`: the VIP stops matching in the same transaction its backends go.
    public func remove(service id: Int, vip: IPAddress, port: UInt16 = 80, backends count: Int, to b: inout NFTBatch) {
        let key = NFTElement(.concat(.address(vip), .proto(6), .port(port)))
        b.delete([key], from: svcMod)
        b.delete([key], from: svcSlot)
        b.delete((0..<count).map { NFTElement(.concat(.u32(UInt32(id)), .u32(UInt32($0)))) }, from: backendMap)
    }

    // MARK: - the benchmark's synthetic services and their nft text

    public static func vip(_ i: Int) -> IPAddress { .v4(0x0A60_0000 + UInt32(i)) }  // 10.96.x.y
    public static func backendAddresses(_ i: Int, count: Int) -> [(IPAddress, UInt16)] {
        (0..<count).map { j in (.v4(0x0A80_0000 + UInt32(i * count + j)), 8080) }  // 10.128.x.y
    }

    /// The same ruleset for `nft -f`, with the packet mark where MeshKernel passes values in
    /// registers (nft can neither chain a map into a verdict map nor put a map result first in
    /// a concatenation without a mark).
    public func nftBase(moduli: [Int]) -> String {
        var text = """
            table ip \(table.name) {
              map svc_mod { type ipv4_addr . inet_proto . inet_service : mark; }
              map svc_slot { type ipv4_addr . inet_proto . inet_service : mark; }
              map mod_dispatch { type mark : verdict; }
              map backends { typeof meta mark . numgen random mod 2 : ip daddr . tcp dport; }
              chain prerouting {
                type nat hook prerouting priority -100; policy accept;
                meta mark set ip daddr . meta l4proto . th dport map @svc_mod meta mark vmap @mod_dispatch
              }

            """
        for m in moduli {
            text +=
                "  chain mod-\(m) { meta mark set ip daddr . meta l4proto . th dport map @svc_slot "
                + "meta l4proto tcp dnat ip to meta mark . numgen random mod \(m) map @backends; }\n"
        }
        text += "}\n"
        for m in moduli { text += "add element ip \(table.name) mod_dispatch { \(m) : goto mod-\(m) }\n" }
        return text
    }

    public func nftService(_ i: Int, count: Int) -> String {
        let elements = Self.backendAddresses(i, count: count).enumerated().map { j, be in "\(i) . \(j) : \(be.0) . \(be.1)" }
            .joined(separator: ", ")
        return """
            add element ip \(table.name) backends { \(elements) }
            add element ip \(table.name) svc_slot { \(Self.vip(i)) . tcp . 80 : \(i) }
            add element ip \(table.name) svc_mod { \(Self.vip(i)) . tcp . 80 : \(count) }

            """
    }
}
