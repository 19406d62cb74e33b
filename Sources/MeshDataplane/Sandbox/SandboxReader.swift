import MeshKernel
#if canImport(Glibc)
    import Glibc
#endif

/// Reads what a sandbox holds into a `SandboxModel`, looking only at objects meshd makes there.
/// Task-side state is checked for the endpoints the desired model names (the kernel cannot say
/// which namespace a veth's peer lives in).
enum SandboxReader {
    static func read(name: String, handle h: NetlinkHandle, expected: SandboxModel?) async throws(KernelError) -> SandboxModel {
        let links = try await h.linkList()
        var m = SandboxModel(
            name: name, networkID: expected?.networkID ?? "", vxlan: nil,
            subnet: expected?.subnet ?? IPPrefix("0.0.0.0/0")!, loAddresses: [], endpoints: [:],
            neighbours: [:], fdb: [:], subnetRouted: false, ingressLink: false,
            balancer: BalancerState(gateway: expected?.balancer.gateway ?? .v4(0)), subnet6: expected?.subnet6)
        let routes = try await h.routeList()
        let vx = links.first { $0.name == Naming.vxlan && $0.kind == "vxlan" }
        if let vx, let attrs = vx.vxlan, let local = attrs.local, let mac = vx.mac, vx.isUp {
            m.vxlan = .init(vni: attrs.vni, local: local, port: attrs.port, mtu: vx.mtu ?? 0, mac: mac)
            // The subnet route counts as part of vxlan0: without it nothing reaches remote tasks.
            let subnetRoute = routes.first {
                $0.device == .index(vx.index) && $0.proto == Route.meshdProtocol && $0.destination.length < 32
            }
            m.subnetRouted = subnetRoute != nil && (expected == nil || subnetRoute?.destination == expected?.subnet)
            if m.subnetRouted, let s6 = expected?.subnet6 {
                // A dual-stack network's route is half of it: both, or it is made again.
                let routes6 = try await h.routeList(family: AF_INET6)
                m.subnetRouted = routes6.contains { $0.device == .index(vx.index) && $0.destination == s6 }
            }
            for family in [AF_INET, AF_INET6] {
                for n in try await h.neighList(device: .index(vx.index), family: family) where n.isPermanent {
                    if let mac = n.mac { m.neighbours[n.address] = mac }
                }
            }
            for f in try await h.fdbList(device: .index(vx.index)) {
                if let d = f.destination, f.mac != .zero { m.fdb[f.mac] = d }
            }
        }
        for a in try await h.addrList(device: "lo")
        where a.prefix.length == a.prefix.address.bitWidth && a.prefix.address != IPAddress("127.0.0.1")!
            && a.prefix.address != IPAddress("::1")!
        {
            m.loAddresses.insert(a.prefix.address)
        }
        let hostRoutes = Dictionary(
            routes.filter { $0.destination.length == 32 && $0.proto == Route.meshdProtocol }
                .compactMap { r -> (Int32, IPAddress)? in
                    if case .index(let i)? = r.device { return (i, r.destination.address) } else { return nil }
                }, uniquingKeysWith: { a, _ in a })
        for l in links where l.kind == "veth" && l.name.hasPrefix(Naming.vethPrefix) {
            guard l.isUp, let address = hostRoutes[l.index], let want = expected?.endpoints[l.name], want.address == address,
                l.mtu == want.mtu, await taskSideMatches(want)
            else {
                // Unknown, half-made or different: recorded with an impossible address so the diff replaces it.
                m.endpoints[l.name] = .init(
                    veth: l.name, taskNamespace: "", interface: "", address: .v4(0), prefixLength: 0,
                    mtu: 0, mac: nil, gateway: nil)
                continue
            }
            m.endpoints[l.name] = want
        }
        if let ing = links.first(where: { $0.name == Naming.ingressSandboxSide }), ing.isUp,
            routes.contains(where: { $0.destination.length == 0 && $0.gateway == Naming.ingressNodeAddress })
        {
            m.ingressLink = true
        }
        return m
    }

    /// The task end: the interface exists with the address, is up, and has the default route if it should.
    static func taskSideMatches(_ e: SandboxModel.Endpoint) async -> Bool {
        do {
            let ns = try TaskNamespace.open(e.taskNamespace)
            let h = try NetlinkHandle(namespace: ns)
            let link = try await h.linkGet(.name(e.interface))
            guard link.isUp, link.kind == "veth", link.mtu == e.mtu else { return false }
            if let mac = e.mac, link.mac != mac { return false }
            let addrs = try await h.addrList(device: .index(link.index), family: Int32(AF_INET))
            guard addrs.contains(where: { $0.prefix.address == e.address && $0.prefix.length == e.prefixLength }) else { return false }
            if let a6 = e.address6 {
                let addrs6 = try await h.addrList(device: .index(link.index), family: Int32(AF_INET6))
                guard addrs6.contains(where: { $0.prefix == .host(a6) }),
                    try await h.routeList(family: AF_INET6).contains(where: { $0.destination == e.subnet6 && $0.gateway == Naming.gateway6 }
                    )
                else { return false }
            }
            if let gw = e.gateway, !(try await h.routeList().contains { $0.destination.length == 0 && $0.gateway == gw }) {
                return false
            }
            if let gw = e.returnGateway {
                guard try await h.routeList(table: Naming.taskReturnTable).contains(where: { $0.gateway == gw }),
                    try await h.ruleList().contains(Naming.taskReturnRule(e.address))
                else { return false }
                if let a6 = e.address6, e.subnet6 != nil {
                    guard
                        try await h.routeList(family: AF_INET6, table: Naming.taskReturnTable).contains(where: {
                            $0.gateway == Naming.gateway6
                        }),
                        try await h.ruleList(family: AF_INET6).contains(Naming.taskReturnRule(a6))
                    else { return false }
                }
            }
            return true
        } catch {
            return false
        }
    }
}

/// Task namespaces are named (under /run/netns) or given as a path (e.g. /proc/PID/ns/net).
enum TaskNamespace {
    static func open(_ s: String) throws(KernelError) -> NetworkNamespace {
        s.hasPrefix("/") ? try NetworkNamespace.open(path: s) : try NetworkNamespace.open(named: s)
    }
}
