import MeshKernel

/// One task's attachment to a sandbox: a veth pair. The sandbox's end routes the task's /32 and
/// answers ARP for every address (proxy_arp), so the task reaches its gateway, which lives on the
/// sandbox's lo. The task's end holds the address, the default route when this network carries
/// it, and with `returnGateway` the rule that sends its ingress answers to the ingress gateway.
///
///     sandbox:  <veth> up, proxy_arp;  <address>/32 dev <veth>
///     task:     <interface> [address <mac>] <address>/<length> up;  [default via <gateway>]
///               [<address6>/128;  <subnet6> via fe80::1;  [default via fe80::1]]     (dual stack)
///     sandbox:  [fe80::1/64 on <veth>;  <address6>/128 dev <veth>]
///               [ip rule pref 1000 from <address> lookup 77;  table 77: default via <return gateway>]
///               [ip -6 rule pref 1000 from <address6> lookup 77;  table 77: default via fe80::1]   (both)
enum TaskAttachment {
    static func sandboxSide(_ e: SandboxModel.Endpoint, veth: String) -> [RouteOperation] {
        var ops: [RouteOperation] = [
            .linkSet(.name(veth), LinkChange(up: true)), .route(.replace, Route(destination: .host(e.address), device: .name(veth))),
        ]
        if let a6 = e.address6 {
            ops += [
                .addrAdd(
                    InterfaceAddress(
                        device: .name(veth), prefix: IPPrefix(address: Naming.gateway6, length: 64)!, scope: .link, noDAD: true)),
                .route(.replace, Route(destination: .host(a6), device: .name(veth))),
            ]
        }
        return ops
    }

    static func taskSide(_ e: SandboxModel.Endpoint) -> [RouteOperation] {
        var ops: [RouteOperation] = []
        if let mac = e.mac { ops.append(.linkSet(.name(e.interface), LinkChange(mac: mac))) }
        ops += [
            .addrAdd(InterfaceAddress(device: .name(e.interface), prefix: IPPrefix(address: e.address, length: e.prefixLength)!)),
            .linkSet(.name(e.interface), LinkChange(up: true)),
        ]
        if let gw = e.gateway { ops.append(.route(.replace, .defaultRoute(via: gw, device: .name(e.interface)))) }
        if let a6 = e.address6, let s6 = e.subnet6 {
            ops += [
                .addrAdd(InterfaceAddress(device: .name(e.interface), prefix: .host(a6), noDAD: true)),
                .route(.replace, Route(destination: s6, gateway: Naming.gateway6, device: .name(e.interface))),
            ]
            if e.gateway != nil { ops.append(.route(.replace, .defaultRoute(via: Naming.gateway6, device: .name(e.interface)))) }
        }
        if let gw = e.returnGateway {
            var r = Route.defaultRoute(via: gw, device: .name(e.interface))
            r.table = Naming.taskReturnTable
            ops += [.route(.replace, r), .rule(.add, Naming.taskReturnRule(e.address))]
            if let a6 = e.address6, e.subnet6 != nil {
                var r6 = Route.defaultRoute(via: Naming.gateway6, device: .name(e.interface))
                r6.table = Naming.taskReturnTable
                ops += [.route(.replace, r6), .rule(.add, Naming.taskReturnRule(a6))]
            }
        }
        return ops
    }

    /// Makes the pair (a changed attachment is remade under the same name); `undo` gets the veth's
    /// removal as soon as it exists.
    static func attach(
        _ e: SandboxModel.Endpoint, veth: String, remake: Bool, sandbox h: Reconciler.Handles, undo: inout [RouteOperation]
    ) async throws(KernelError) {
        if remake { try? await h.netlink.linkDel(.name(veth)) }
        let taskNS = try TaskNamespace.open(e.taskNamespace)
        try await h.netlink.linkAdd(LinkSpec(name: veth, kind: .veth(peerName: e.interface, peerNamespace: taskNS), mtu: e.mtu))
        undo.append(.linkDel(.name(veth)))
        try h.namespace.setSysctl("net.ipv4.conf.\(veth).proxy_arp", "1")
        try await h.netlink.apply(sandboxSide(e, veth: veth))
        let task = try NetlinkHandle(namespace: taskNS)
        // A remade attachment finds its old rule (a rule outlives the device): one, not two.
        if e.returnGateway != nil {
            try? await task.ruleDel(Naming.taskReturnRule(e.address))
            if let a6 = e.address6 { try? await task.ruleDel(Naming.taskReturnRule(a6)) }
        }
        try await task.linkSetUp("lo")
        try await task.apply(taskSide(e))
    }
}
