import Foundation
import MeshKernel
import Testing
@testable import MeshDataplane

@Suite struct StateTests {
    @Test func fixtureIsValid() {
        #expect(Fixture.state().problems() == [])
    }

    @Test func conflictingPublishedPortsAreRefusedByName() {
        var s = Fixture.state()
        s.services.append(BalancedService(id: "s2", name: "api", ports: [.init(published: 8000, target: 9000)]))
        let p = s.problems()
        #expect(p.contains("service api: published port 8000/tcp is already used by service web"))
        // The same number over UDP is another port.
        s.services[1].ports = [.init(protocol: .udp, published: 8000, target: 9000)]
        #expect(s.problems() == [])
    }

    @Test func dualStackNetworksTakeIPv6TasksAndRefuseWhatIsNotBuilt() {
        var s = Fixture.state()
        s.networks[1].subnet6 = IPPrefix("fd00:10::/64")!
        s.localEndpoints[0].address6 = IPAddress("fd00:10::b")!
        s.remoteEndpoints.append(
            RemoteEndpoint(network: "demo", address: IPAddress("fd00:10::c")!, nodeID: "n2", nodeAddress: IPAddress("198.18.0.2")!))
        #expect(s.problems() == [])
        let model = DesiredModel(s, underlayMTU: 1500)
        let demo = model.sandboxes["meshd-n1-demo"]
        #expect(demo?.subnet6 == IPPrefix("fd00:10::/64") && demo?.neighbours[IPAddress("fd00:10::c")!] != nil)
        // The VIP's IPv6 twin balances over the backends' twins; the hairpin source is the gateway's twin.
        #expect(
            demo?.balancer.vips6 == [
                IPAddress("fd00:10::2")!: [
                    .init(address: IPAddress("fd00:10::b")!, port: nil, weight: 1),
                    .init(address: IPAddress("fd00:10::c")!, port: nil, weight: 1),
                ]
            ])
        #expect(demo?.balancer.gateway6 == IPAddress("fd00:10::1") && demo?.balancer.vips[IPAddress("fd00:10::2")!] == nil)
        #expect(model.sandboxes["meshd-n1-ingress"]?.balancer.vips6 == [:])
        let ep = demo?.endpoints.values.first
        #expect(ep?.address6 == IPAddress("fd00:10::b") && ep?.subnet6 == IPPrefix("fd00:10::/64"))
        if let ep {
            // The task holds a /128 and routes its subnet (and default) via fe80::1; the sandbox's end holds fe80::1.
            let task = TaskAttachment.taskSide(ep).map { "\($0)" }.joined(separator: " | ")
            #expect(task.contains("fd00:10::b/128") && task.contains("fe80::1"), "\(task)")
            #expect(TaskAttachment.sandboxSide(ep, veth: "ve1").count == 4)
        }

        var bad = s
        bad.localEndpoints[0].address6 = IPAddress("fd00:99::1")!
        bad.services[0].vips = (bad.services[0].vips ?? []) + [.init(network: "demo", address: IPAddress("fd00:10::2")!)]
        bad.networks[0].subnet6 = IPPrefix("fd00:ff::/48")!  // the ingress network may be dual-stack
        let p = bad.problems()
        #expect(p.contains { $0.hasPrefix("task t1: IPv6 address fd00:99::1 is outside demo's subnet6") }, "\(p)")
        #expect(p.contains { $0.contains("give the IPv4 VIP; on a dual-stack network its IPv6 twin is balanced with it") }, "\(p)")
        #expect(!p.contains { $0.hasPrefix("network ingress") }, "\(p)")
        var v4only = Fixture.state()
        v4only.localEndpoints[0].address6 = IPAddress("fd00:10::b")!
        #expect(v4only.problems().contains { $0.contains("(none: not dual stack)") })
    }

    @Test func contradictionsAreListed() {
        var s = Fixture.state()
        s.networks.append(
            OverlayNetwork(id: "x", name: "x", vni: 4097, subnet: IPPrefix("10.20.0.0/24")!, gateway: IPAddress("10.30.0.1")!))
        s.localEndpoints.append(LocalEndpoint(id: "t9", network: "nope", namespace: "t9", address: IPAddress("10.10.0.50")!))
        s.localEndpoints.append(LocalEndpoint(id: "t8", network: "demo", namespace: "t8", address: IPAddress("10.10.0.12")!))
        s.services[0].vips = [.init(network: "demo", address: IPAddress("10.99.0.1")!)]
        let p = s.problems()
        #expect(p.contains("network x: VNI 4097 is also used by demo"))
        #expect(p.contains("network x: gateway 10.30.0.1 is outside 10.20.0.0/24"))
        #expect(p.contains("task t9: unknown network nope"))
        #expect(p.contains { $0.contains("address 10.10.0.12 is already used by task t8") })
        #expect(p.contains("service web: VIP 10.99.0.1 is outside 10.10.0.0/24"))
        #expect(throws: DataplaneError.self) { try s.validate() }
    }

    @Test func ingressNeedsTheNodeAddress() {
        var s = Fixture.state()
        s.node.ingressAddress = nil
        #expect(s.problems().contains("network ingress is the ingress network but node n1 has no ingressAddress"))
    }

    @Test func stateFileRoundTripsAndOmitsEmptyLists() throws {
        let s = Fixture.state()
        let data = try JSONEncoder().encode(s)
        #expect(try JSONDecoder().decode(DataplaneState.self, from: data) == s)
        let minimal = #"{"node":{"id":"n1","advertiseAddress":"198.18.0.1"}}"#
        let m = try JSONDecoder().decode(DataplaneState.self, from: Data(minimal.utf8))
        #expect(m.networks.isEmpty && m.services.isEmpty && m.node.port == 4789)
    }

    /// Mutated state files: the decoder throws or yields a state; validation and planning never crash.
    @Test func fuzzedStateFilesNeverCrash() throws {
        let seed = try JSONEncoder().encode(Fixture.state())
        var rng = SplitMix(seed: 0x5eed_da7a)
        var decoded = 0
        let inputs = 20_000
        for _ in 0..<inputs {
            var b = [UInt8](seed)
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 4 {
                case 0: b[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: b.remove(at: i)
                case 2:
                    let alphabet = Array("0123456789.:-\"{}[],".utf8)
                    b.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: i)
                default: b[i] = b[Int(rng.next() % UInt64(b.count))]
                }
                if b.isEmpty { break }
            }
            guard let s = try? JSONDecoder().decode(DataplaneState.self, from: Data(b)) else { continue }
            decoded += 1
            if s.problems().isEmpty { _ = DesiredModel(s, underlayMTU: 1500) }
        }
        #expect(decoded > 100)
    }
}

typealias SplitMix = SplitMix64
