import MeshKernel

/// A sandbox's routing objects, planned as one pipelined rtnetlink batch: the addresses on its
/// lo, the subnet route through vxlan0, and per remote task and node a neighbour and an FDB
/// entry. Pure: from what the sandbox holds and what is wanted come the operations, their undo
/// (newest last) and one report line per change; with a scope, only the objects it names.
///
///     lo:     <gateway>/32  <vip>/32 …  [<the node's ingress address>/32]
///     route:  <subnet> dev vxlan0          [<subnet6> dev vxlan0]
///     neigh:  <remote task, IPv4 or IPv6> lladdr <its node's vxlan0 MAC> dev vxlan0 nud permanent
///     fdb:    <a node's vxlan0 MAC> dst <its underlay address> dev vxlan0 self permanent
///
/// Additions go before the balancer changes that use them, removals after (`removals`), so
/// nothing a packet may need is taken away before its replacement is in place.
enum SandboxRoutes {
    struct Plan {
        var ops: [RouteOperation] = []
        var undo: [RouteOperation] = []
        var lines: [String] = []
    }

    static func additions(_ have: SandboxModel, _ want: SandboxModel, scope: DesiredModel.Touched?) -> Plan {
        var p = Plan()
        let addAddrs =
            scope.map { $0.vips.filter { want.loAddresses.contains($0) && !have.loAddresses.contains($0) } }
            ?? want.loAddresses.subtracting(have.loAddresses)
        for a in addAddrs.sorted() {
            p.ops.append(.addrAdd(InterfaceAddress(device: "lo", prefix: .host(a))))
            p.undo.append(.addrDel(InterfaceAddress(device: "lo", prefix: .host(a))))
            p.lines.append("lo \(a)/32")
        }
        if scope == nil && want.subnetRouted && !have.subnetRouted {
            let r = Route(destination: want.subnet, device: .name(Naming.vxlan))
            p.ops.append(.route(.replace, r))
            p.undo.append(.route(.delete, r))
            p.lines.append("route \(want.subnet) dev vxlan0")
            if let s6 = want.subnet6 {
                let r6 = Route(destination: s6, device: .name(Naming.vxlan))
                p.ops.append(.route(.replace, r6))
                p.undo.append(.route(.delete, r6))
                p.lines.append("route \(s6) dev vxlan0")
            }
        }
        for ip in scope.map({ $0.neighbours.sorted() }) ?? want.neighbours.keys.sorted() {
            guard let mac = want.neighbours[ip], have.neighbours[ip] != mac else { continue }
            let n = Neighbor(device: .name(Naming.vxlan), address: ip, mac: mac)
            p.ops.append(.neigh(.replace, n))
            if let old = have.neighbours[ip] {
                p.undo.append(.neigh(.replace, Neighbor(device: .name(Naming.vxlan), address: ip, mac: old)))
            } else {
                p.undo.append(.neigh(.delete, n))
            }
            p.lines.append("neigh \(ip) lladdr \(mac)")
        }
        for mac in scope.map({ $0.fdb.sorted() }) ?? want.fdb.keys.sorted() {
            guard let dst = want.fdb[mac], have.fdb[mac] != dst else { continue }
            let f = FDBEntry(device: .name(Naming.vxlan), mac: mac, destination: dst)
            p.ops.append(.fdb(.replace, f))
            if let old = have.fdb[mac] {
                p.undo.append(.fdb(.replace, FDBEntry(device: .name(Naming.vxlan), mac: mac, destination: old)))
            } else {
                p.undo.append(.fdb(.delete, f))
            }
            p.lines.append("fdb \(mac) dst \(dst)")
        }
        return p
    }

    /// What the state no longer names: task attachments (their veth; the task's end goes with it),
    /// neighbours, FDB entries and lo addresses.
    static func removals(_ have: SandboxModel, _ want: SandboxModel, scope: DesiredModel.Touched?) -> Plan {
        var p = Plan()
        for veth in scope.map({ $0.endpoints.sorted() }) ?? have.endpoints.keys.sorted()
        where want.endpoints[veth] == nil && have.endpoints[veth] != nil {
            p.ops.append(.linkDel(.name(veth)))
            p.lines.append("detach \(veth)")
        }
        for ip in scope.map({ $0.neighbours.sorted() }) ?? have.neighbours.keys.sorted()
        where want.neighbours[ip] == nil && have.neighbours[ip] != nil {
            p.ops.append(.neigh(.delete, Neighbor(device: .name(Naming.vxlan), address: ip, mac: have.neighbours[ip])))
            p.lines.append("delete neigh \(ip)")
        }
        for mac in scope.map({ $0.fdb.sorted() }) ?? have.fdb.keys.sorted() where want.fdb[mac] == nil && have.fdb[mac] != nil {
            p.ops.append(.fdb(.delete, FDBEntry(device: .name(Naming.vxlan), mac: mac, destination: have.fdb[mac])))
            p.lines.append("delete fdb \(mac)")
        }
        let delAddrs =
            scope.map { $0.vips.filter { have.loAddresses.contains($0) && !want.loAddresses.contains($0) } }
            ?? have.loAddresses.subtracting(want.loAddresses)
        for a in delAddrs.sorted() {
            p.ops.append(.addrDel(InterfaceAddress(device: "lo", prefix: .host(a))))
            p.lines.append("delete lo \(a)/32")
        }
        return p
    }

    /// `have` after both plans applied: key by key with a scope (the cost of the change), whole without.
    static func settle(_ have: inout SandboxModel, to want: SandboxModel, scope: DesiredModel.Touched?) {
        guard let scope else {
            have = want
            return
        }
        for v in scope.vips {
            if want.loAddresses.contains(v) { have.loAddresses.insert(v) } else { have.loAddresses.remove(v) }
        }
        for veth in scope.endpoints { have.endpoints[veth] = want.endpoints[veth] }
        for ip in scope.neighbours { have.neighbours[ip] = want.neighbours[ip] }
        for mac in scope.fdb { have.fdb[mac] = want.fdb[mac] }
    }
}
