import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

@Suite("addresses and routes")
struct AddressRouteTests {
    @Test func ipv4AndIPv6AddressesAddListDelete() async throws {
        try await withScratch { s in
            try await s.nl.linkAdd(LinkSpec(name: "br0", kind: .bridge, up: true))
            try await s.nl.linkSetUp("lo")
            let v4 = InterfaceAddress(device: "br0", prefix: IPPrefix("10.20.0.2/24")!)
            let v6 = InterfaceAddress(device: "br0", prefix: IPPrefix("fd00:20::2/64")!)
            let vip = InterfaceAddress(device: "lo", prefix: IPPrefix("10.20.0.100/32")!)
            try await s.nl.addrAdd(v4)
            try await s.nl.addrAdd(v6)
            try await s.nl.addrAdd(vip)

            let j = try #require(try s.ip("addr", "show", "dev", "br0").first)
            let infos = (j["addr_info"] as? [[String: Any]] ?? []).map { "\($0["local"]!)/\($0["prefixlen"]!)" }
            #expect(infos.contains("10.20.0.2/24"))
            #expect(infos.contains("fd00:20::2/64"))
            let lo = try s.ip("addr", "show", "dev", "lo").first?["addr_info"] as? [[String: Any]] ?? []
            #expect(lo.contains { $0["local"] as? String == "10.20.0.100" && $0["prefixlen"] as? Int == 32 })

            // Listing one device is filtered in the kernel and gives only that device.
            let br0 = try await s.nl.resolve("br0")
            // The kernel adds an fe80:: address of its own; only global ones are ours.
            let listed = try await s.nl.addrList(device: "br0").filter { $0.scope == .universe }
            #expect(Set(listed.map(\.prefix)) == [v4.prefix, v6.prefix])
            #expect(listed.allSatisfy { $0.device == .index(br0) })
            let v4only = try await s.nl.addrList(family: AF_INET)
            #expect(Set(v4only.map(\.prefix)) == [v4.prefix, vip.prefix, IPPrefix("127.0.0.1/8")!])

            try await s.nl.addrDel(v4)
            let after = try s.ip("addr", "show", "dev", "br0").first?["addr_info"] as? [[String: Any]] ?? []
            #expect(!after.contains { $0["local"] as? String == "10.20.0.2" })
            await expectKernelError(.exists) { try await s.nl.addrAdd(v6) }
            await expectKernelError(.addressNotAvailable) { try await s.nl.addrDel(v4) }
            await expectKernelError(.noDevice) { try await s.nl.addrAdd(InterfaceAddress(device: "nope0", prefix: v4.prefix)) }
        }
    }

    @Test func routesAddReplaceListDelete() async throws {
        try await withScratch { s in
            try await s.nl.linkAdd(LinkSpec(name: "br0", kind: .bridge, up: true))
            try await s.nl.addrAdd(InterfaceAddress(device: "br0", prefix: IPPrefix("10.30.0.1/24")!))
            let host = Route(destination: IPPrefix("10.30.5.7/32")!, device: "br0")
            let viaOnlink = Route(destination: IPPrefix("10.40.0.0/16")!, gateway: IPAddress("10.99.0.1")!, device: "br0", onlink: true)
            let inTable = Route(destination: IPPrefix("10.50.0.0/24")!, gateway: IPAddress("10.30.0.254")!, table: 100, metric: 20)
            try await s.nl.routeAdd(host)
            try await s.nl.routeAdd(viaOnlink)
            try await s.nl.routeAdd(inTable)
            try await s.nl.routeReplace(.defaultRoute(via: IPAddress("10.30.0.254")!))

            let main = try s.ip("route", "show")
            let hostJ = try #require(main.first { $0["dst"] as? String == "10.30.5.7" })
            #expect(hostJ["dev"] as? String == "br0")
            #expect(hostJ["scope"] as? String == "link")
            #expect(hostJ["protocol"] as? String == "109" || hostJ["protocol"] as? Int == 109)
            let onlinkJ = try #require(main.first { $0["dst"] as? String == "10.40.0.0/16" })
            #expect(onlinkJ["gateway"] as? String == "10.99.0.1")
            #expect((onlinkJ["flags"] as? [String])?.contains("onlink") == true)
            #expect(main.contains { $0["dst"] as? String == "default" && $0["gateway"] as? String == "10.30.0.254" })
            let t100 = try s.ip("route", "show", "table", "100")
            #expect(t100.count == 1)
            #expect(t100.first?["dst"] as? String == "10.50.0.0/24")
            #expect(t100.first?["metric"] as? Int == 20)

            // MeshKernel's list of table 100 is filtered by the kernel and matches.
            let mine100 = try await s.nl.routeList(table: 100)
            #expect(mine100.count == 1)
            #expect(mine100.first?.destination == inTable.destination)
            #expect(mine100.first?.gateway == inTable.gateway)
            #expect(mine100.first?.metric == 20)
            let mineMain = try await s.nl.routeList()
            #expect(
                mineMain.contains { $0.destination == host.destination && $0.effectiveScope == .link && $0.proto == Route.meshdProtocol })
            #expect(mineMain.contains { $0.destination == viaOnlink.destination && $0.onlink })

            // replace changes in place; add of the same destination is refused.
            try await s.nl.routeReplace(Route(destination: host.destination, gateway: IPAddress("10.30.0.9")!, device: "br0"))
            #expect(try s.ip("route", "show").first { $0["dst"] as? String == "10.30.5.7" }?["gateway"] as? String == "10.30.0.9")
            await expectKernelError(.exists) { try await s.nl.routeAdd(host) }

            try await s.nl.routeDel(host)
            try await s.nl.routeDel(inTable)
            #expect(try s.ip("route", "show").allSatisfy { $0["dst"] as? String != "10.30.5.7" })
            #expect(try s.ip("route", "show", "table", "100").isEmpty)
            await expectKernelError(.init(ESRCH)) { try await s.nl.routeDel(host) }  // fib_table_delete says ESRCH
            // A gateway that is not on-link without `onlink`: the kernel says why.
            let unreachable = await expectKernelError(.init(ENETUNREACH)) {
                try await s.nl.routeAdd(Route(destination: IPPrefix("10.60.0.0/24")!, gateway: IPAddress("10.98.0.1")!, device: "br0"))
            }
            #expect(unreachable?.kernelMessage?.isEmpty == false)
        }
    }

    @Test func ipv6Routes() async throws {
        try await withScratch { s in
            try await s.nl.linkAdd(LinkSpec(name: "br0", kind: .bridge, up: true))
            let r = Route(destination: IPPrefix("fd00:77::/64")!, device: "br0")
            try await s.nl.routeAdd(r)
            #expect(try s.ip("-6", "route", "show").contains { $0["dst"] as? String == "fd00:77::/64" })
            #expect(try await s.nl.routeList(family: AF_INET6).contains { $0.destination == r.destination })
            try await s.nl.routeDel(r)
            #expect(try await !s.nl.routeList(family: AF_INET6).contains { $0.destination == r.destination })
        }
    }

    @Test func rulesAddListDelete() async throws {
        try await withScratch { s in
            try await s.nl.linkAdd(LinkSpec(name: "br0", kind: .bridge, up: true))
            try await s.nl.addrAdd(InterfaceAddress(device: "br0", prefix: IPPrefix("10.30.0.1/24")!))
            let byMark = FIBRule(priority: 1000, mark: 0x4dff_00c9, table: 0x4dff_00c9)
            let bySource = FIBRule(priority: 1001, source: IPPrefix("10.30.0.7/32")!, table: 77)
            try await s.nl.apply([.rule(.add, byMark), .rule(.add, bySource)])
            let shown = try s.ip("rule", "show")
            #expect(
                shown.contains {
                    $0["priority"] as? Int == 1000 && $0["fwmark"] as? String == "0x4dff00c9" && $0["table"] as? String == "1308557513"
                }, "\(shown)")
            #expect(
                shown.contains { $0["priority"] as? Int == 1001 && $0["src"] as? String == "10.30.0.7" && $0["table"] as? String == "77" },
                "\(shown)")
            // Read back as written, beside the kernel's own three (local, main, default).
            let listed = try await s.nl.ruleList()
            #expect(listed.contains(byMark) && listed.contains(bySource), "\(listed)")
            #expect(listed.filter { $0.proto == Route.meshdProtocol }.count == 2)
            await expectKernelError(.exists) { try await s.nl.ruleAdd(byMark) }
            try await s.nl.ruleDel(byMark)
            try await s.nl.ruleDel(bySource)
            #expect(try await s.nl.ruleList().allSatisfy { $0.proto != Route.meshdProtocol })
            await expectKernelError(.noEntry) { try await s.nl.ruleDel(bySource) }
        }
    }
}
