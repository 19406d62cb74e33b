import MeshKernel

/// The node namespace's share of ingress: `table inet meshd` sends published ports addressed
/// to this node (from outside, and from the node itself) over the meshd-ingress veth to the
/// ingress sandbox, which balances them over the ingress network.
///
///     prerouting/output: meta nfproto ipv4  fib daddr type local  meta l4proto . th dport @published
///                        dnat ip to 169.254.77.2
///                        meta nfproto ipv6  fib daddr type local  meta l4proto . th dport @published
///                        dnat ip6 to fd6d:6573:6864::2                         (a dual-stack ingress only)
///     postrouting:       oifname meshd-ingress  ip saddr 127.0.0.0/8  masquerade
///
/// Whether the IPv6 rule is there changes only with the ingress network: the table is then
/// remade in the same transaction, its elements with it.
enum NodeIngress {
    static let table = Naming.nodeTable
    static var published: NFTSet { NFTSet(table, "published", key: NFTKeyType(.inetProto, .inetService)) }

    struct Applied: Equatable, Sendable {
        var table = false
        var published: Set<BalancerState.PortKey> = []
        var link = false
        /// The IPv6 rule is in the table; the link's IPv6 ends are set.
        var ingress6 = false
        var link6 = false
    }
    static let dnat6Comment = "published ports to the ingress sandbox (IPv6)"

    static func read(nft: NFTSocket, handle: NetlinkHandle) async throws(KernelError) -> Applied {
        var a = Applied()
        if try nft.listTables(family: .inet).contains(where: { $0.name == table.name }) {
            a.table = true
            for e in try nft.listElements(published) { if let k = NFTBalancer.portKey(e.key) { a.published.insert(k) } }
            a.ingress6 = try nft.listRules(table).contains { $0.comment == dnat6Comment }
        }
        if let l = try await handle.linkList().first(where: { $0.name == Naming.ingressNodeSide }), l.isUp {
            let addresses = try await handle.addrList(device: .index(l.index)).map(\.prefix.address)
            a.link = addresses.contains(Naming.ingressNodeAddress)
            a.link6 = a.link && addresses.contains(Naming.ingressNodeAddress6)
        }
        return a
    }

    /// With `only`, just those ports are compared.
    static func plan(
        _ a: inout Applied, to want: NodeModel?, only: Set<BalancerState.PortKey>? = nil,
        changes: inout [String]
    ) -> NFTBatch {
        var b = NFTBatch()
        guard let want, want.ingressLink else {
            if a.table {
                b.delete(table)
                changes.append("node: delete table inet meshd")
            }
            a.table = false
            a.published = []
            a.ingress6 = false
            return b
        }
        if a.table && a.ingress6 != want.ingress6 {
            b.delete(table)
            a.table = false
            a.published = []
        }
        let created = !a.table
        if created {
            b.add(table)
            b.add(published)
            func dnat(_ nfproto: UInt8, to address: IPAddress) -> [NFTExpr] {
                [NFTExpr.meta(.nfproto, into: .r(0)), .cmp(.eq, .r(0), NFTValue(bytes: [nfproto]))]
                    + NFTExpr.daddrIsLocal()
                    + NFTExpr.inSet([.l4proto, .thDport], published.name)
                    + NFTExpr.dnat(to: address)
            }
            for (name, hook) in [("prerouting", NFTHook.prerouting), ("output", .output)] {
                let c = NFTChain(table, name, base: .init(type: .nat, hook: hook, priority: -100))
                b.add(c)
                b.add(NFTRule(c, dnat(2, to: Naming.ingressSandboxAddress), comment: "published ports to the ingress sandbox"))
                // NFPROTO_IPV6 = 10
                if want.ingress6 { b.add(NFTRule(c, dnat(10, to: Naming.ingressSandboxAddress6), comment: dnat6Comment)) }
            }
            a.ingress6 = want.ingress6
            let post = NFTChain(table, "postrouting", base: .init(type: .nat, hook: .postrouting, priority: 100))
            b.add(post)
            b.add(
                NFTRule(
                    post,
                    NFTExpr.match(.oifname, .eq, .ifname(Naming.ingressNodeSide))
                        + [
                            .meta(.nfproto, into: .r(0)), .cmp(.eq, .r(0), NFTValue(bytes: [2])),
                            .payload(.network, offset: 12, length: 4, into: .r(0)),
                            .bitwise(from: .r(0), into: .r(0), mask: .address(IPAddress("255.0.0.0")!), xor: .address(.v4(0))),
                            .cmp(.eq, .r(0), .address(IPAddress("127.0.0.0")!)),
                        ]
                        + NFTExpr.masquerade(), comment: "localhost clients"))
            changes.append("node: add table inet meshd\(want.ingress6 ? " (IPv4 and IPv6)" : "")")
            a.table = true
            a.published = []
        }
        let add: [BalancerState.PortKey], del: [BalancerState.PortKey]
        if let only, !created {
            add = only.filter { want.published.contains($0) && !a.published.contains($0) }.sorted()
            del = only.filter { !want.published.contains($0) && a.published.contains($0) }.sorted()
        } else {
            add = want.published.subtracting(a.published).sorted()
            del = a.published.subtracting(want.published).sorted()
        }
        a.published.formUnion(add)
        a.published.subtract(del)
        if !del.isEmpty { b.delete(del.map { NFTElement(NFTBalancer.key($0)) }, from: published) }
        if !add.isEmpty { b.add(add.map { NFTElement(NFTBalancer.key($0)) }, to: published) }
        for k in add { changes.append("node: publish \(k)") }
        for k in del { changes.append("node: unpublish \(k)") }
        return b
    }
}
