import Foundation
import MeshKernel
import Testing
@testable import MeshCluster

@Suite struct AllocatorTests {
    func request(_ name: String, subnet: String? = nil) -> NetworkRequest {
        NetworkRequest(name: name, subnet: subnet.map { IPPrefix($0)! })
    }

    @Test func ingressFirstThenNetworksInOrder() throws {
        var a = try NetworkAllocator()
        let ingress = try a.createNetwork(id: "ingress", request: NetworkRequest(name: "ingress", ingress: true), now: t0)
        #expect(ingress.subnet.description == "10.0.0.0/24" && ingress.vni == 4096 && ingress.gateway.description == "10.0.0.1")
        let demo = try a.createNetwork(id: "demo", request: request("demo"), now: t0)
        #expect(demo.subnet.description == "10.0.1.0/24" && demo.vni == 4097)
        // An explicit subnet in the middle of the pool is honoured and skipped by later automatic ones.
        let fixed = try a.createNetwork(id: "fixed", request: request("fixed", subnet: "10.0.2.0/23"), now: t0)
        #expect(fixed.subnet.description == "10.0.2.0/23" && fixed.gateway.description == "10.0.2.1" && fixed.vni == 4098)
        let next = try a.createNetwork(id: "next", request: request("next"), now: t0)
        #expect(next.subnet.description == "10.0.4.0/24")
        // Released VNIs and subnets are reused, lowest first.
        a.removeNetwork(id: "demo")
        let again = try a.createNetwork(id: "again", request: request("again"), now: t0)
        #expect(again.subnet.description == "10.0.1.0/24" && again.vni == 4097)
    }

    @Test func aDualStackNetworkKeepsItsIPv6SubnetAndBadOnesAreRefused() throws {
        var a = try NetworkAllocator()
        let dual = try a.createNetwork(
            id: "dual", request: NetworkRequest(name: "dual", subnet6: IPPrefix("fd00:77::1/64")!), now: Date(timeIntervalSince1970: 0))
        #expect(dual.subnet6 == IPPrefix("fd00:77::/64"))
        for bad in ["fd00:77::/112", "fd00::/32", "10.9.0.0/24"] {
            #expect(throws: ClusterError.self) {
                _ = try a.createNetwork(id: bad, request: NetworkRequest(name: bad, subnet6: IPPrefix(bad)!), now: Date())
            }
        }
        // A refused request took nothing: the next network still gets the next subnet.
        #expect(try a.createNetwork(id: "next", request: request("next"), now: Date()).subnet == IPPrefix("10.0.1.0/24"))
        // The ingress network may be dual-stack too (published ports on the nodes' IPv6 addresses).
        let ingress = try a.createNetwork(
            id: "i", request: NetworkRequest(name: "i", ingress: true, subnet6: IPPrefix("fd00:1::/64")!), now: Date())
        #expect(ingress.subnet6 == IPPrefix("fd00:1::/64") && ingress.ingress)
    }

    @Test func overlappingSubnetsAreRefused() throws {
        var a = try NetworkAllocator()
        _ = try a.createNetwork(id: "one", request: request("one", subnet: "10.20.0.0/16"), now: t0)
        #expect {
            try a.createNetwork(id: "two", request: request("two", subnet: "10.20.5.0/24"), now: t0)
        } throws: { ($0 as? ClusterError)?.description.contains("overlaps") == true }
        #expect(throws: ClusterError.self) { try a.createNetwork(id: "three", request: request("three", subnet: "10.0.0.0/8"), now: t0) }
        #expect(throws: ClusterError.self) { try a.createNetwork(id: "four", request: request("four", subnet: "10.30.0.1/24"), now: t0) }
        // The failed requests left nothing allocated.
        #expect(a.subnets.allocated.count == 1 && a.vniOwners.count == 1)
        let gw = try a.createNetwork(
            id: "gw", request: NetworkRequest(name: "gw", subnet: IPPrefix("192.168.7.0/24"), gateway: IPAddress("192.168.7.254")), now: t0)
        #expect(gw.gateway.description == "192.168.7.254")
    }

    @Test func configurablePoolAndSize() throws {
        var a = try NetworkAllocator(pools: [IPPrefix("10.10.0.0/16")!, IPPrefix("172.30.0.0/24")!], subnetSize: 26)
        let nets = try (0..<5).map { try a.createNetwork(id: "n\($0)", request: request("n\($0)"), now: t0) }
        #expect(nets.map(\.subnet.description) == ["10.10.0.0/26", "10.10.0.64/26", "10.10.0.128/26", "10.10.0.192/26", "10.10.1.0/26"])
        var small = try NetworkAllocator(pools: [IPPrefix("172.30.0.0/25")!], subnetSize: 26)
        _ = try small.createNetwork(id: "a", request: request("a"), now: t0)
        _ = try small.createNetwork(id: "b", request: request("b"), now: t0)
        #expect(throws: ClusterError.self) { try small.createNetwork(id: "c", request: request("c"), now: t0) }
        #expect(throws: ClusterError.self) { try NetworkAllocator(pools: [IPPrefix("10.0.0.0/8")!, IPPrefix("10.1.0.0/16")!]) }
        #expect(throws: ClusterError.self) { try NetworkAllocator(pools: [IPPrefix("10.0.0.0/24")!], subnetSize: 16) }
    }

    @Test func addressesGatewayVIPsTasksAndExhaustion() throws {
        var a = try NetworkAllocator()
        let net = try a.createNetwork(id: "net", request: request("net", subnet: "10.9.0.0/29"), now: t0)
        #expect(a.owner(networkID: "net", address: net.gateway) == .gateway)
        // .0 network, .1 gateway, .7 broadcast: 5 usable.
        var got: [String] = []
        for i in 0..<5 { got.append(try a.allocateAddress(networkID: "net", owner: .task(taskID: "t\(i)")).description) }
        #expect(got == ["10.9.0.2/29", "10.9.0.3/29", "10.9.0.4/29", "10.9.0.5/29", "10.9.0.6/29"])
        #expect(try a.allocateAddress(networkID: "net", owner: .task(taskID: "t2")).description == "10.9.0.4/29")
        #expect(throws: ClusterError.self) { try a.allocateAddress(networkID: "net", owner: .task(taskID: "t9")) }
        a.releaseAddress(networkID: "net", owner: .task(taskID: "t1"))
        #expect(try a.allocateAddress(networkID: "net", owner: .vip(serviceID: "s")).description == "10.9.0.3/29")
        #expect(throws: ClusterError.notFound(objectKind: "network", reference: "nope")) {
            try a.allocateAddress(networkID: "nope", owner: .gateway)
        }
    }

    @Test func releasedAddressesAreNotReusedAtOnce() throws {
        var a = try NetworkAllocator()
        _ = try a.createNetwork(id: "net", request: request("net"), now: t0)
        let first = try a.allocateAddress(networkID: "net", owner: .task(taskID: "a"))
        a.releaseAddress(networkID: "net", owner: .task(taskID: "a"))
        let second = try a.allocateAddress(networkID: "net", owner: .task(taskID: "b"))
        #expect(first != second)
    }

    @Test func serviceEndpointsAndTasks() throws {
        var a = try NetworkAllocator()
        let ingress = try a.createNetwork(id: "ingress", request: NetworkRequest(name: "ingress", ingress: true), now: t0)
        _ = try a.createNetwork(id: "demo", request: request("demo"), now: t0)
        var s = service("web", replicas: 2)
        s.spec.task.networks = [NetworkTarget(target: "demo")]
        s.spec.endpoint.ports = [PortConfig(targetPort: 80, publishedPort: 8000), PortConfig(targetPort: 81)]
        try a.allocateEndpoint(for: &s, ingressNetworkID: ingress.id)
        #expect(s.endpoint.virtualIPs.map(\.networkID) == ["ingress", "demo"])
        #expect(s.endpoint.virtualIPs.map(\.addr) == ["10.0.0.2/24", "10.0.1.2/24"])
        #expect(s.endpoint.ports.map(\.publishedPort) == [8000, 30000])
        // Allocating again keeps the VIPs and the automatic port.
        let before = s.endpoint
        try a.allocateEndpoint(for: &s, ingressNetworkID: ingress.id)
        #expect(s.endpoint == before)
        // Another service cannot take 8000.
        var other = service("other")
        other.spec.endpoint.ports = [PortConfig(targetPort: 80, publishedPort: 8000)]
        #expect { try a.allocateEndpoint(for: &other, ingressNetworkID: ingress.id) } throws: {
            ($0 as? ClusterError)?.description == "port '8000' is already in use by service 'web' as an ingress port"
        }
        other.spec.endpoint.ports[0].protocol = .udp
        try a.allocateEndpoint(for: &other, ingressNetworkID: ingress.id)

        var t = ClusterTask(id: "t1", serviceID: "web", slot: 1, spec: s.spec.task, specVersion: 1, now: t0)
        try a.allocateTask(&t, service: s, ingressNetworkID: ingress.id)
        #expect(
            t.networks == [
                NetworkAttachment(networkID: "ingress", address: "10.0.0.4/24"),
                NetworkAttachment(networkID: "demo", address: "10.0.1.3/24"),
            ])
        a.releaseTask(&t)
        #expect(t.networks.isEmpty && a.owner(networkID: "demo", address: IPAddress("10.0.1.3")!) == nil)
        // dnsrr services get no VIP.
        var dns = service("dns")
        dns.spec.endpoint.mode = .dnsrr
        dns.spec.task.networks = [NetworkTarget(target: "demo")]
        try a.allocateEndpoint(for: &dns, ingressNetworkID: ingress.id)
        #expect(dns.endpoint.virtualIPs.isEmpty)
        a.releaseEndpoint(of: &s)
        #expect(a.owner(networkID: "demo", address: IPAddress("10.0.1.2")!) == nil && a.ingressPorts["8000/tcp"] == nil)
    }

    /// Random allocate/release sequences over a small subnet: at every step no address has two owners, no
    /// owner has two addresses, the gateway stays put, and the allocator agrees with a simple model.
    @Test func neverTwoOwnersForOneAddress() throws {
        var rng = SplitMix64(seed: 7)
        var operations = 0
        for round in 0..<20 {
            var a = try NetworkAllocator()
            _ = try a.createNetwork(id: "n", request: request("n", subnet: "10.5.\(round).0/27"), now: t0)
            var model: [AddressOwner: String] = [:]
            for _ in 0..<400 {
                operations += 1
                let owner: AddressOwner =
                    Bool.random(using: &rng)
                    ? .task(taskID: "t\(Int.random(in: 0..<40, using: &rng))")
                    : .vip(serviceID: "s\(Int.random(in: 0..<8, using: &rng))")
                if Int.random(in: 0..<3, using: &rng) == 0 {
                    a.releaseAddress(networkID: "n", owner: owner)
                    model.removeValue(forKey: owner)
                } else {
                    do {
                        let got = try a.allocateAddress(networkID: "n", owner: owner).description
                        if let held = model[owner] { #expect(held == got) }
                        model[owner] = got
                    } catch {
                        // 29 usable addresses (.1 is the gateway): only a full subnet may refuse.
                        #expect(model.count == 29 && model[owner] == nil)
                    }
                }
                let values = Array(model.values)
                #expect(Set(values).count == values.count)
                let space = a.spaces["n"]!
                #expect(space.owners.count == model.count + 1)
                #expect(space.owners[IPv4Block(IPPrefix("10.5.\(round).1/32")!)!.start] == .gateway)
                for (o, addr) in model { #expect(a.owner(networkID: "n", address: IPPrefix(addr)!.address) == o) }
            }
        }
        #expect(operations == 8000)
    }

    @Test func rebuildFromTheStoreMatchesAndRefusesDoubleOwners() throws {
        var a = try NetworkAllocator()
        let ingress = try a.createNetwork(id: "ingress", request: NetworkRequest(name: "ingress", ingress: true), now: t0)
        let demo = try a.createNetwork(id: "demo", request: request("demo"), now: t0.addingTimeInterval(1))
        var s = service("web")
        s.spec.task.networks = [NetworkTarget(target: "demo")]
        s.spec.endpoint.ports = [PortConfig(targetPort: 80)]
        try a.allocateEndpoint(for: &s, ingressNetworkID: "ingress")
        var tasks: [ClusterTask] = []
        for i in 0..<10 {
            var t = ClusterTask(id: "t\(i)", serviceID: "web", slot: i + 1, spec: s.spec.task, specVersion: 1, now: t0)
            try a.allocateTask(&t, service: s, ingressNetworkID: "ingress")
            if i % 3 == 0 { a.releaseTask(&t) }
            tasks.append(t)
        }
        var n = node("n1")
        try a.allocateNode(&n, networkID: "ingress")
        let snap = ClusterSnapshot(nodes: [n], networks: [ingress, demo], services: [s], tasks: tasks)
        var rebuilt = try NetworkAllocator.rebuild(from: snap)
        #expect(rebuilt == a)
        // The rebuilt allocator continues without clashing with recorded owners.
        let fresh = try rebuilt.allocateAddress(networkID: "demo", owner: .task(taskID: "new"))
        #expect(rebuilt.owner(networkID: "demo", address: fresh.address) == .task(taskID: "new"))
        var clash = snap
        clash.tasks[1].networks = clash.tasks[2].networks
        #expect(throws: ClusterError.self) { try NetworkAllocator.rebuild(from: clash) }
        var vniClash = snap
        vniClash.networks[1].vni = vniClash.networks[0].vni
        #expect(throws: ClusterError.self) { try NetworkAllocator.rebuild(from: vniClash) }
    }
}
