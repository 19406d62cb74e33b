import MeshDataplane
import MeshKernel

enum Fixture {
    static let demo = OverlayNetwork(
        id: "demo", name: "demo", vni: 4097, subnet: IPPrefix("10.10.0.0/24")!, gateway: IPAddress("10.10.0.1")!)
    static let ingress = OverlayNetwork(
        id: "ingress", name: "ingress", vni: 4096, subnet: IPPrefix("10.255.0.0/24")!,
        gateway: IPAddress("10.255.0.1")!, ingress: true)
    static func ip(_ s: String) -> IPAddress { IPAddress(s)! }

    /// Node n1 runs task t1 on demo and ingress; t2 runs on n2.
    static func state() -> DataplaneState {
        DataplaneState(
            node: NodeIdentity(id: "n1", advertiseAddress: ip("198.18.0.1"), ingressAddress: ip("10.255.0.201")),
            networks: [ingress, demo],
            localEndpoints: [
                LocalEndpoint(id: "t1", network: "demo", namespace: "task1", address: ip("10.10.0.11")),
                LocalEndpoint(
                    id: "t1", network: "ingress", namespace: "task1", address: ip("10.255.0.11"), interface: "eth1", defaultRoute: false),
            ],
            remoteEndpoints: [
                RemoteEndpoint(network: "demo", address: ip("10.10.0.12"), nodeID: "n2", nodeAddress: ip("198.18.0.2")),
                RemoteEndpoint(network: "ingress", address: ip("10.255.0.12"), nodeID: "n2", nodeAddress: ip("198.18.0.2")),
                RemoteEndpoint(
                    network: "ingress", address: ip("10.255.0.202"), nodeID: "n2", nodeAddress: ip("198.18.0.2"),
                    isNodeIngress: true),
            ],
            services: [
                BalancedService(
                    id: "s1", name: "web", vips: [.init(network: "demo", address: ip("10.10.0.2"))],
                    backends: [
                        .init(network: "demo", address: ip("10.10.0.11")), .init(network: "demo", address: ip("10.10.0.12")),
                        .init(network: "ingress", address: ip("10.255.0.11")), .init(network: "ingress", address: ip("10.255.0.12")),
                    ],
                    ports: [.init(published: 8000, target: 80)])
            ])
    }
}
