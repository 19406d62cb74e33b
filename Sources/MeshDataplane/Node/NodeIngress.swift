import MeshKernel

/// The node namespace's share of ingress: `table inet meshd` sends published ports addressed
/// to this node (from outside, and from the node itself) over the meshd-ingress veth to the
/// ingress sandbox, which balances them over the ingress network.
///
///     prerouting/output: meta nfproto ipv4  fib daddr type local  meta l4proto . th dport @published
///                        dnat ip to 169.254.77.2
///     postrouting:       oifname meshd-ingress  ip saddr 127.0.0.0/8  masquerade
enum NodeIngress {
    static let table = Naming.nodeTable
    static var published: NFTSet { NFTSet(table, "published", key: NFTKeyType(.inetProto, .inetService)) }

    struct Applied: Equatable, Sendable {
        var table = false
        var published: Set<BalancerState.PortKey> = []
        var link = false
    }

    static func read(nft: NFTSocket, handle: NetlinkHandle) async throws(KernelError) -> Applied {
        var a = Applied()
        if try nft.listTables(family: .inet).contains(where: { $0.name == table.name }) {
            a.table = true
            for e in try nft.listElements(published) { if let k = NFTBalancer.portKey(e.key) { a.published.insert(k) } }
        }
        if let l = try await handle.linkList().first(where: { $0.name == Naming.ingressNodeSide }), l.isUp,
            try await handle.addrList(device: .index(l.index)).contains(where: { $0.prefix.address == Naming.ingressNodeAddress })
        {
            a.link = true
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
            return b
        }
        let created = !a.table
        if created {
            b.add(table)
            b.add(published)
            let dnat =
                [NFTExpr.meta(.nfproto, into: .r(0)), .cmp(.eq, .r(0), NFTValue(bytes: [2]))]
                + NFTExpr.daddrIsLocal()
                + NFTExpr.inSet([.l4proto, .thDport], published.name)
                + NFTExpr.dnat(to: Naming.ingressSandboxAddress)
            for (name, hook) in [("prerouting", NFTHook.prerouting), ("output", .output)] {
                let c = NFTChain(table, name, base: .init(type: .nat, hook: hook, priority: -100))
                b.add(c)
                b.add(NFTRule(c, dnat, comment: "published ports to the ingress sandbox"))
            }
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
            changes.append("node: add table inet meshd")
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
