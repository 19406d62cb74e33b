import Foundation
import MeshDataplane
import MeshKernel
import MeshTestbed
import Testing

struct NotRoot: Error, CustomStringConvertible {
    var description: String { "the VM lane runs as root inside the VM: scripts/vm-test" }
}

/// The e2e scenarios with `--lb ipvs`, in the VM lane (the host kernel has no IPVS).
@Suite(.serialized) struct DataplaneIPVSTests {
    func withScenario(_ body: (DataplaneScenario) async throws -> Void) async throws {
        guard getuid() == 0 else { throw NotRoot() }
        let lab = try await DataplaneLab.build(tag: "mkv", requestSeconds: 15)
        defer { lab.destroy() }
        try await body(DataplaneScenario(lab: lab, lb: "ipvs"))
    }

    /// IPVS services in node `n`'s sandbox of `network` (`ipvsadm -Ln`): "TCP a:p" / "-> b:p" lines.
    func ipvs(_ s: DataplaneScenario, node n: Int, network: String) throws -> String {
        try Exec.check(["ip", "netns", "exec", Naming(nodeID: s.lab.nodeID(n)).sandbox(network), "ipvsadm", "-Ln"])
    }

    @Test func publishedPortsVIPAndHairpinOverIPVS() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 3, started: &started)
            let table = try ipvs(s, node: 1, network: "web")
            // meshd balances VIPs as fwmark services (every port of the VIP): one service, three real servers.
            #expect(table.contains("FWM"), "no IPVS service for the VIP: \(table)")
            for i in 1...3 { #expect(table.contains("10.20.0.\(10 + i)"), "backend w\(i) missing: \(table)") }
            try s.publishedPortsReachEveryBackend(3)
            try s.publishedPortsSeeTheClient(backends: 3)
            try s.vipAnswersTask()
            try s.hairpin(backends: 3)
        }
    }

    /// A dual-stack network under `--lb ipvs`: IPVS balances the IPv4 VIP, `table ip6 meshd` its twin.
    @Test func dualStackVIPsBesideIPVS() async throws {
        try await withScenario { s in
            try await s.dualStackVIPs()
            let table = try ipvs(s, node: 1, network: "web")
            #expect(table.contains("FWM") && table.contains("10.20.0.13"), "the IPv4 VIP over IPVS: \(table)")
        }
    }

    /// Published ports on the nodes' IPv6 addresses under `--lb ipvs`: IPVS for IPv4, `table ip6 meshd` for IPv6.
    @Test func publishedPortsOnIPv6BesideIPVS() async throws {
        try await withScenario { s in try await s.dualStackPublishedPorts() }
    }

    /// The traffic meter counts in the sandbox's nftables table whichever balancer runs.
    @Test func trafficIsCountedOverIPVS() async throws {
        try await withScenario { s in try await s.trafficIsCounted() }
    }

    @Test func scaleAndRemoveOverIPVS() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 3, started: &started)
            try await s.deploy(backends: 1, started: &started)
            #expect(!(try ipvs(s, node: 1, network: "web")).contains("10.20.0.12"))
            #expect(try s.vipSpread(10) == ["w1": 10])
            for n in 1...3 {
                let o = try s.lab.apply(s.lab.emptyState(n), node: n, lb: "ipvs")
                #expect(o.succeeded, "node\(n): \(o.stderr)")
            }
            try s.nothingLeft()
        }
    }

    @Test func secondApplyChangesNothingOverIPVS() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 2, started: &started)
            let before = try s.picture(1)
            let o = try s.lab.apply(s.states(backends: 2)[0], node: 1, lb: "ipvs")
            #expect(o.succeeded && o.stdout.isEmpty, "\(o.stdout) \(o.stderr)")
            #expect(try s.picture(1) == before)
        }
    }
}
