import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

@Suite("links")
struct LinkTests {
    @Test func vxlanAddCarriesEveryAttribute() async throws {
        try await withScratch { s in
            try await s.nl.linkAdd(LinkSpec(name: "d0", kind: .bridge, up: true))
            let d0 = try await s.nl.linkGet("d0")
            let vx = VXLANAttributes(
                vni: 4097, local: IPAddress("198.18.0.1")!, port: 4790, learning: false,
                proxy: true, ttl: 64, underlayIndex: d0.index)
            try await s.nl.linkAdd(LinkSpec(name: "vxlan0", kind: .vxlan(vx), mtu: 1450, mac: MACAddress("02:6d:00:00:00:01")!))

            let j = try #require(try s.ip("-d", "link", "show", "dev", "vxlan0").first)
            #expect(j[path: "linkinfo", "info_kind"] as? String == "vxlan")
            let data = try #require(j[path: "linkinfo", "info_data"] as? [String: Any])
            #expect(data["id"] as? Int == 4097)
            #expect(data["local"] as? String == "198.18.0.1")
            #expect(data["port"] as? Int == 4790)
            #expect(data["learning"] as? Bool == false)
            #expect(data["proxy"] as? Bool == true)
            #expect(data["ttl"] as? Int == 64)
            #expect(data["link"] as? String == "d0")
            #expect(j["mtu"] as? Int == 1450)
            #expect(j["address"] as? String == "02:6d:00:00:00:01")

            // And MeshKernel reads back what it wrote.
            let back = try await s.nl.linkGet("vxlan0")
            #expect(back.kind == "vxlan")
            #expect(back.vxlan == vx)
            #expect(back.mtu == 1450)
            #expect(back.mac == MACAddress("02:6d:00:00:00:01"))
            #expect(!back.isUp)
        }
    }

    @Test func vxlanWithLearningAndIPv6Local() async throws {
        try await withScratch { s in
            let vx = VXLANAttributes(vni: 10, local: IPAddress("fd00::1")!, learning: true)
            try await s.nl.linkAdd(LinkSpec(name: "vx6", kind: .vxlan(vx)))
            let data = try #require(try s.ip("-d", "link", "show", "dev", "vx6").first?[path: "linkinfo", "info_data"] as? [String: Any])
            #expect(data["local6"] as? String == "fd00::1")
            #expect(data["learning"] as? Bool == true)
            #expect(data["port"] as? Int == 4789)
            #expect(try await s.nl.linkGet("vx6").vxlan?.local == IPAddress("fd00::1"))
        }
    }

    @Test func bridgeAndMasterAndNomaster() async throws {
        try await withScratch { s in
            try await s.nl.linkAdd(LinkSpec(name: "br0", kind: .bridge, up: true))
            // This kernel has no dummy driver; veths make plain ports.
            try await s.nl.linkAdd(LinkSpec(name: "d1", kind: .veth(peerName: "d1p", peerNamespace: nil), master: "br0"))
            try await s.nl.linkAdd(LinkSpec(name: "d2", kind: .veth(peerName: "d2p", peerNamespace: nil)))
            try await s.nl.linkSetMaster("d2", "br0")
            #expect(try s.ip("-d", "link", "show", "dev", "br0").first?[path: "linkinfo", "info_kind"] as? String == "bridge")
            #expect(try s.ip("link", "show", "dev", "d1").first?["master"] as? String == "br0")
            #expect(try s.ip("link", "show", "dev", "d2").first?["master"] as? String == "br0")
            let br = try await s.nl.linkGet("br0")
            #expect(try await s.nl.linkGet("d2").masterIndex == br.index)
            try await s.nl.linkSetMaster("d2", nil)
            #expect(try s.ip("link", "show", "dev", "d2").first?["master"] == nil)
        }
    }

    @Test func vethPeerLandsInAnotherNamespace() async throws {
        try await withScratch { s in
            let other = try s.sibling("peer")
            try await s.nl.linkAdd(LinkSpec(name: "v-host", kind: .veth(peerName: "eth0", peerNamespace: other), mtu: 1450, up: true))
            let here = try #require(try s.ip("-d", "link", "show", "dev", "v-host").first)
            #expect(here[path: "linkinfo", "info_kind"] as? String == "veth")
            #expect(here["mtu"] as? Int == 1450)
            let there = try Exec.json(["ip", "-n", other.name!, "-j", "-d", "link", "show", "dev", "eth0"]) as? [[String: Any]]
            #expect(there?.first?[path: "linkinfo", "info_kind"] as? String == "veth")
            #expect(there?.first?["mtu"] as? Int == 1450)
            // Not in the first namespace.
            #expect(try await !s.nl.linkList().map(\.name).contains("eth0"))
        }
    }

    @Test func setUpDownMTUMACAndName() async throws {
        try await withScratch { s in
            try await s.nl.linkAdd(LinkSpec(name: "d0", kind: .bridge))
            try await s.nl.linkSetUp("d0")
            #expect((try s.ip("link", "show", "dev", "d0").first?["flags"] as? [String])?.contains("UP") == true)
            #expect(try await s.nl.linkGet("d0").isUp)
            try await s.nl.linkSetDown("d0")
            #expect((try s.ip("link", "show", "dev", "d0").first?["flags"] as? [String])?.contains("UP") == false)
            try await s.nl.linkSetMTU("d0", 1400)
            #expect(try s.ip("link", "show", "dev", "d0").first?["mtu"] as? Int == 1400)
            try await s.nl.linkSetMAC("d0", MACAddress("02:00:00:00:00:aa")!)
            #expect(try s.ip("link", "show", "dev", "d0").first?["address"] as? String == "02:00:00:00:00:aa")
            try await s.nl.linkSetName("d0", "renamed0")
            #expect(try s.ip("link", "show", "dev", "renamed0").first?["ifname"] as? String == "renamed0")
            // Several changes in one request, by index.
            let idx = try await s.nl.resolve("renamed0")
            try await s.nl.linkSet(.index(idx), LinkChange(up: true, mtu: 1300))
            let l = try await s.nl.linkGet(.index(idx))
            #expect(l.isUp && l.mtu == 1300 && l.name == "renamed0")
        }
    }

    @Test func moveToNamespaceKeepsVXLANSocketOnTheUnderlay() async throws {
        try await withScratch { s in
            let sandbox = try s.sibling("sbx")
            try await s.nl.linkAdd(LinkSpec(name: "vxlan0", kind: .vxlan(VXLANAttributes(vni: 4100, local: IPAddress("198.18.9.1")!))))
            try await s.nl.linkSetNamespace("vxlan0", sandbox)
            #expect(try await !s.nl.linkList().map(\.name).contains("vxlan0"))
            let sbx = try NetlinkHandle(namespace: sandbox)
            try await sbx.linkSetUp("vxlan0")
            let moved = try await sbx.linkGet("vxlan0")
            #expect(moved.vxlan?.vni == 4100)
            #expect(moved.isUp)
            // The UDP socket for 4789 was opened in the namespace the device was created in.
            let ss = try Exec.check(["ip", "netns", "exec", s.name, "ss", "-uln"])
            #expect(ss.contains(":4789"))
            let ssSandbox = try Exec.check(["ip", "netns", "exec", sandbox.name!, "ss", "-uln"])
            #expect(!ssSandbox.contains(":4789"))
        }
    }

    @Test func listAndGetAgreeWithIPLink() async throws {
        try await withScratch { s in
            for i in 0..<5 { try await s.nl.linkAdd(LinkSpec(name: "d\(i)", kind: .bridge, mtu: UInt32(1400 + i))) }
            let mine = try await s.nl.linkList()
            let theirs = try s.ip("link", "show")
            #expect(Set(mine.map(\.name)) == Set(theirs.compactMap { $0["ifname"] as? String }))
            for t in theirs {
                let m = try #require(mine.first { $0.name == t["ifname"] as? String })
                #expect(Int(m.index) == t["ifindex"] as? Int)
                #expect(m.mtu.map(Int.init) == t["mtu"] as? Int)
                #expect(m.operStateName == t["operstate"] as? String)
            }
        }
    }

    @Test func deleteRemovesTheLink() async throws {
        try await withScratch { s in
            try await s.nl.linkAdd(LinkSpec(name: "gone0", kind: .bridge))
            try await s.nl.linkDel("gone0")
            #expect(try s.ip("link", "show").allSatisfy { $0["ifname"] as? String != "gone0" })
        }
    }

    @Test func errorsAreTypedAndCarryTheKernelsWords() async throws {
        try await withScratch { s in
            try await s.nl.linkAdd(LinkSpec(name: "dup0", kind: .bridge))
            let dup = await expectKernelError(.exists) { try await s.nl.linkAdd(LinkSpec(name: "dup0", kind: .bridge)) }
            #expect(dup?.description.contains("ip link add dup0") == true)

            let missing = await expectKernelError(.noDevice) { try await s.nl.linkSetUp("nope0") }
            #expect(missing?.description.contains("nope0") == true)
            await expectKernelError(.noDevice) { try await s.nl.linkDel("nope0") }
            await expectKernelError(.noDevice) { _ = try await s.nl.linkGet(.index(99_999)) }

            // The kernel rejects a VNI of 2^24 and says why in the extended ack.
            let vni = await expectKernelError(.outOfRange) {
                try await s.nl.linkAdd(LinkSpec(name: "vxbad", kind: .vxlan(VXLANAttributes(vni: 1 << 24))))
            }
            #expect(vni?.kernelMessage?.contains("VXLAN ID") == true, "extended ack: \(String(describing: vni?.kernelMessage))")

            // Master that does not exist: resolved first, named in the error.
            await expectKernelError(.noDevice) { try await s.nl.linkAdd(LinkSpec(name: "d9", kind: .bridge, master: "nobr")) }

            // Invalid names never reach the kernel.
            #expect(throws: KernelError.self) {
                _ = try LinkMessages.add(LinkSpec(name: "this-name-is-too-long", kind: .bridge), masterIndex: nil)
            }
            // Nothing half-made was left behind.
            #expect(try s.ip("link", "show").compactMap { $0["ifname"] as? String }.sorted() == ["dup0", "lo"])
        }
    }
}
