import MeshAPI
import MeshCluster
import MeshKernel

extension APIMapping {
    /// Docker's option key for an overlay network's VNI; `network inspect` shows it, the agents do not need it.
    public static let vxlanOption = "com.docker.network.driver.overlay.vxlanid_list"

    public static func network(_ n: ClusterNetwork) -> NetworkResource {
        var options = n.options
        options[vxlanOption] = String(n.vni)
        var configs = [IPAMConfig(Subnet: n.subnet.description, Gateway: n.gateway.description)]
        // The IPv6 side has no gateway address: tasks reach the sandbox at the link-local fe80::1.
        if let s6 = n.subnet6 { configs.append(IPAMConfig(Subnet: s6.description)) }
        return NetworkResource(
            Name: n.name, Id: n.id, Created: n.createdAt, Scope: "swarm", Driver: n.driver, EnableIPv6: n.subnet6 != nil,
            IPAM: IPAM(Driver: "default", Config: configs),
            Internal: n.internal, Attachable: n.attachable, Ingress: n.ingress, Options: options, Labels: n.labels)
    }

    /// What meshd's allocator can honour; everything else is refused rather than silently dropped, since a
    /// network that differs from what was asked for only shows up later as unreachable tasks.
    public static func networkRequest(_ r: NetworkCreateRequest) throws(EngineError) -> NetworkRequest {
        guard !r.Name.isEmpty else { throw .invalidArgument("network name must not be empty") }
        let driver = r.Driver ?? ""
        guard driver.isEmpty || driver == "overlay" else {
            throw .invalidArgument("meshd only creates overlay networks (driver \(driver) is not supported)")
        }
        if let scope = r.Scope, !scope.isEmpty, scope != "swarm" {
            throw .invalidArgument("meshd only creates swarm-scoped networks (scope \(scope) is not supported)")
        }
        if r.EnableIPv4 == false {
            throw .invalidArgument("meshd overlay networks always carry IPv4 (--ipv4=false is not supported); add --ipv6 for dual stack")
        }
        if r.ConfigOnly == true { throw .invalidArgument("config-only networks are not supported by meshd") }
        if r.Ingress == true, r.Options?[ClusterNetwork.encryptedOption] != nil {
            // The routing mesh is balanced from every node to every node; meshd encrypts user overlays only.
            throw .invalidArgument("the ingress network cannot be encrypted in meshd (--opt encrypted is for overlay networks)")
        }
        if r.Options?[vxlanOption] != nil {
            throw .invalidArgument("\(vxlanOption) is not supported: meshd allocates VNIs itself")
        }
        var subnet: IPPrefix?
        var gateway: IPAddress?
        var subnet6: IPPrefix?
        if let ipam = r.IPAM {
            let ipamDriver = ipam.Driver ?? ""
            guard ipamDriver.isEmpty || ipamDriver == "default" else {
                throw .invalidArgument("IPAM driver \(ipamDriver) is not supported: meshd uses its own allocator")
            }
            let all = ipam.Config ?? []
            // One IPv4 subnet, and with --ipv6 one IPv6 subnet beside it (dual stack).
            let six = all.filter { ($0.Subnet ?? "").contains(":") }
            let configs = all.filter { !($0.Subnet ?? "").contains(":") }
            guard configs.count <= 1, six.count <= 1 else {
                throw .invalidArgument("meshd overlay networks have one IPv4 subnet and, with --ipv6, one IPv6 subnet")
            }
            if let c = six.first {
                guard r.EnableIPv6 == true else { throw .invalidArgument("an IPv6 subnet needs --ipv6") }
                if let g = c.Gateway, !g.isEmpty {
                    throw .invalidArgument("--gateway \(g): meshd's IPv6 gateway is the link-local fe80::1 on every task's link")
                }
                if let range = c.IPRange, !range.isEmpty { throw .invalidArgument("--ip-range is not supported by meshd") }
                if let aux = c.AuxiliaryAddresses, !aux.isEmpty { throw .invalidArgument("--aux-address is not supported by meshd") }
                let text = c.Subnet ?? ""
                guard text.contains("/"), let p = IPPrefix(text), !p.address.isIPv4 else {
                    throw .invalidArgument("invalid subnet \(text): expected an IPv6 CIDR such as fd00:1::/64")
                }
                subnet6 = p
            }
            if let c = configs.first {
                if let range = c.IPRange, !range.isEmpty { throw .invalidArgument("--ip-range is not supported by meshd") }
                if let aux = c.AuxiliaryAddresses, !aux.isEmpty { throw .invalidArgument("--aux-address is not supported by meshd") }
                if let text = c.Subnet, !text.isEmpty {
                    guard text.contains("/"), let p = IPPrefix(text), p.address.isIPv4 else {
                        throw .invalidArgument("invalid subnet \(text): expected an IPv4 CIDR such as 10.1.2.0/24")
                    }
                    subnet = p
                }
                if let text = c.Gateway, !text.isEmpty {
                    guard let g = IPAddress(text), g.isIPv4 else { throw .invalidArgument("invalid gateway \(text)") }
                    guard subnet != nil else { throw .invalidArgument("a gateway needs a subnet (--subnet)") }
                    gateway = g
                }
            }
        }
        if r.EnableIPv6 == true, subnet6 == nil {
            // dockerd would pick a ULA prefix from its pools; meshd has none configured for IPv6.
            throw .invalidArgument("--ipv6 needs the IPv6 subnet given (e.g. --subnet fd00:1::/64): meshd has no IPv6 pool")
        }
        return NetworkRequest(
            name: r.Name, subnet: subnet, gateway: gateway, attachable: r.Attachable ?? false,
            ingress: r.Ingress ?? false, internal: r.Internal ?? false, labels: r.Labels ?? [:],
            options: r.Options ?? [:], subnet6: subnet6)
    }
}
