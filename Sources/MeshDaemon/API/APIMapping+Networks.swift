import MeshAPI
import MeshCluster
import MeshKernel

extension APIMapping {
    /// Docker's option key for an overlay network's VNI; `network inspect` shows it, the agents do not need it.
    public static let vxlanOption = "com.docker.network.driver.overlay.vxlanid_list"

    public static func network(_ n: ClusterNetwork) -> NetworkResource {
        var options = n.options
        options[vxlanOption] = String(n.vni)
        return NetworkResource(
            Name: n.name, Id: n.id, Created: n.createdAt, Scope: "swarm", Driver: n.driver,
            IPAM: IPAM(Driver: "default", Config: [IPAMConfig(Subnet: n.subnet.description, Gateway: n.gateway.description)]),
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
        if r.EnableIPv6 == true || r.EnableIPv4 == false {
            throw .invalidArgument("meshd overlay networks are IPv4 only")
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
        if let ipam = r.IPAM {
            let ipamDriver = ipam.Driver ?? ""
            guard ipamDriver.isEmpty || ipamDriver == "default" else {
                throw .invalidArgument("IPAM driver \(ipamDriver) is not supported: meshd uses its own allocator")
            }
            let configs = ipam.Config ?? []
            guard configs.count <= 1 else { throw .invalidArgument("meshd overlay networks have a single subnet") }
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
        return NetworkRequest(
            name: r.Name, subnet: subnet, gateway: gateway, attachable: r.Attachable ?? false,
            ingress: r.Ingress ?? false, internal: r.Internal ?? false, labels: r.Labels ?? [:],
            options: r.Options ?? [:])
    }
}
