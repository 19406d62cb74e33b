import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

@Suite("neighbours and FDB")
struct NeighbourTests {
    /// A vxlan0 like the sandbox's: VNI, local address, no learning.
    func vxlan(_ s: Scratch) async throws {
        try await s.nl.linkAdd(
            LinkSpec(name: "vxlan0", kind: .vxlan(VXLANAttributes(vni: 4200, local: IPAddress("198.18.7.1")!)), up: true))
    }

    @Test func permanentNeighboursAddReplaceListDelete() async throws {
        try await withScratch { s in
            try await vxlan(s)
            let a = Neighbor(device: "vxlan0", address: IPAddress("10.0.1.3")!, mac: MACAddress("02:6d:00:00:00:02")!)
            let b = Neighbor(device: "vxlan0", address: IPAddress("fd00::3")!, mac: MACAddress("02:6d:00:00:00:03")!)
            try await s.nl.neighAdd(a)
            try await s.nl.neighAdd(b)
            let j = try s.ip("neigh", "show", "dev", "vxlan0")
            let ja = try #require(j.first { $0["dst"] as? String == "10.0.1.3" })
            #expect(ja["lladdr"] as? String == "02:6d:00:00:00:02")
            #expect((ja["state"] as? [String]) == ["PERMANENT"])
            #expect(j.contains { $0["dst"] as? String == "fd00::3" })

            await expectKernelError(.exists) { try await s.nl.neighAdd(a) }
            var moved = a
            moved.mac = MACAddress("02:6d:00:00:00:09")!
            try await s.nl.neighReplace(moved)
            #expect(
                try s.ip("neigh", "show", "dev", "vxlan0").first { $0["dst"] as? String == "10.0.1.3" }?["lladdr"] as? String
                    == "02:6d:00:00:00:09")

            let mine = try await s.nl.neighList(device: "vxlan0")
            #expect(mine.count == 1)
            #expect(mine.first?.mac == moved.mac)
            #expect(mine.first?.isPermanent == true)
            // The kernel may add IPv6 neighbours of its own on an up device (multicast, router probes).
            #expect(try await s.nl.neighList(device: "vxlan0", family: AF_INET6).contains { $0.address == b.address && $0.mac == b.mac })

            try await s.nl.neighDel(a)
            #expect(try s.ip("neigh", "show", "dev", "vxlan0").allSatisfy { $0["dst"] as? String != "10.0.1.3" })
            await expectKernelError(.noEntry) { try await s.nl.neighDel(a) }
            await expectKernelError(.noDevice) { try await s.nl.neighAdd(Neighbor(device: "nope0", address: a.address, mac: a.mac)) }
        }
    }

    @Test func fdbAddAppendListDelete() async throws {
        try await withScratch { s in
            try await vxlan(s)
            let remote = FDBEntry(device: "vxlan0", mac: MACAddress("02:6d:00:00:00:02")!, destination: IPAddress("198.18.7.2")!)
            try await s.nl.fdbAdd(remote)
            // An all-zeros entry appended twice floods to both VTEPs (bridge fdb append).
            let flood1 = FDBEntry(device: "vxlan0", mac: .zero, destination: IPAddress("198.18.7.2")!)
            let flood2 = FDBEntry(device: "vxlan0", mac: .zero, destination: IPAddress("198.18.7.3")!)
            try await s.nl.fdbAppend(flood1)
            try await s.nl.fdbAppend(flood2)

            let j = try s.bridge("fdb", "show", "dev", "vxlan0")
            let jr = try #require(j.first { $0["mac"] as? String == "02:6d:00:00:00:02" })
            #expect(jr["dst"] as? String == "198.18.7.2")
            #expect((jr["flags"] as? [String])?.contains("self") == true)
            #expect(jr["state"] as? String == "permanent")
            var zeros: Set<String> = []
            for e in j where e["mac"] as? String == "00:00:00:00:00:00" {
                if let d = e["dst"] as? String { zeros.insert(d) }
            }
            #expect(zeros == ["198.18.7.2", "198.18.7.3"])

            let mine = try await s.nl.fdbList(device: "vxlan0").filter { $0.destination != nil }
            #expect(
                Set(mine.map { "\($0.mac) \($0.destination!)" }) == [
                    "02:6d:00:00:00:02 198.18.7.2", "00:00:00:00:00:00 198.18.7.2", "00:00:00:00:00:00 198.18.7.3",
                ])

            await expectKernelError(.exists) { try await s.nl.fdbAdd(remote) }
            try await s.nl.fdbDel(flood1)
            let left = try s.bridge("fdb", "show", "dev", "vxlan0").filter { $0["mac"] as? String == "00:00:00:00:00:00" }
            #expect(left.compactMap { $0["dst"] as? String } == ["198.18.7.3"])
            try await s.nl.fdbDel(remote)
            #expect(try s.bridge("fdb", "show", "dev", "vxlan0").allSatisfy { $0["mac"] as? String != "02:6d:00:00:00:02" })
            await expectKernelError(.noEntry) { try await s.nl.fdbDel(remote) }
        }
    }

    @Test func batchReportsEachFailureAndAppliesTheRest() async throws {
        try await withScratch { s in
            try await vxlan(s)
            var ops: [RouteOperation] = (0..<1000).map { i in
                .neigh(
                    .add,
                    Neighbor(
                        device: "vxlan0", address: .v4(0x0A64_0000 | UInt32(i)), mac: MACAddress(rawValue: 0x02_00_00_00_00_00 | UInt64(i))!
                    ))
            }
            // #1000 duplicates #0: the only one to fail.
            ops.append(ops[0])
            do {
                try await s.nl.apply(ops)
                Issue.record("the duplicate should have failed")
            } catch let KernelError.batch(failures, applied) {
                #expect(applied == 1000)
                #expect(failures.map(\.index) == [1000])
                #expect(failures.first?.error.errno == .exists)
                #expect(failures.first?.error.description.contains("ip neigh add 10.100.0.0") == true)
            }
            #expect(try s.ip("neigh", "show", "dev", "vxlan0").count == 1000)
        }
    }
}
