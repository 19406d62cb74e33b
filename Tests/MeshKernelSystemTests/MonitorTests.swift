import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

@Suite("notifications")
struct MonitorTests {
    @Test func linkNeighbourAndRouteChangesArriveAsEvents() async throws {
        try await withScratch { s in
            let monitor = try NetlinkMonitor(namespace: s.ns, groups: [.link, .neighbor, .ipv4Route])
            // Subscribed before the changes, so every one of them is announced.
            try await s.nl.linkAdd(LinkSpec(name: "vxlan0", kind: .vxlan(VXLANAttributes(vni: 7)), up: true))
            try await s.nl.neighAdd(Neighbor(device: "vxlan0", address: IPAddress("10.7.0.2")!, mac: MACAddress("02:00:00:00:07:02")!))
            try await s.nl.routeAdd(Route(destination: IPPrefix("10.7.0.0/24")!, device: "vxlan0"))
            try await s.nl.linkDel("vxlan0")

            var sawLink = false, sawNeigh = false, sawRoute = false, sawRemoved = false
            let deadline = ContinuousClock.now + .seconds(5)
            for await ev in monitor {
                switch ev {
                case .linkChanged(let l) where l.name == "vxlan0": sawLink = true
                case .neighborChanged(let n) where n.address == IPAddress("10.7.0.2"): sawNeigh = true
                case .routeAdded(let r) where r.destination == IPPrefix("10.7.0.0/24"): sawRoute = true
                case .linkRemoved(let l) where l.name == "vxlan0": sawRemoved = true
                default: break
                }
                if (sawLink && sawNeigh && sawRoute && sawRemoved) || ContinuousClock.now > deadline { break }
            }
            #expect(sawLink && sawNeigh && sawRoute && sawRemoved)
        }
    }
}
