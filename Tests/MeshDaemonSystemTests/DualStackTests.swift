import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// Issue 19 item 2 through the stock docker CLI: a dual-stack overlay (`--ipv6` with an IPv4 and
/// an IPv6 subnet), a global service with a task on each of two nodes, the tasks reaching each
/// other over IPv6 across VXLAN, `dig AAAA` answering both, inspect showing what was allocated.
@Suite(.serialized) struct DualStackTests {
    @Test func aDualStackOverlayCarriesIPv6BetweenNodesAndDNSAnswersAAAA() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mds", nodes: 2)
        defer { c.destroy() }
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let token = try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = ClusterTests.check(try c.docker(2, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "join", c)

        // What meshd cannot honour is refused by name: --ipv6 without its subnet, an IPv6 gateway.
        let noSubnet = try c.docker(1, ["network", "create", "-d", "overlay", "--ipv6", "v6a"])
        #expect(!noSubnet.succeeded && noSubnet.stderr.contains("--ipv6 needs the IPv6 subnet"), "\(noSubnet.stderr)")
        let gateway = try c.docker(
            1, ["network", "create", "-d", "overlay", "--ipv6", "--subnet", "fd00:77::/64", "--gateway", "fd00:77::1", "v6b"])
        #expect(!gateway.succeeded && gateway.stderr.contains("fe80::1"), "\(gateway.stderr)")

        _ = ClusterTests.check(
            try c.docker(
                1, ["network", "create", "-d", "overlay", "--ipv6", "--subnet", "10.77.0.0/24", "--subnet", "fd00:77::/64", "dual"]),
            "network create --ipv6", c)
        let inspect = try c.docker(
            1, ["network", "inspect", "dual", "--format", "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}"])
        #expect(inspect.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "true 10.77.0.0/24 fd00:77::/64", "\(inspect.stdout)")
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--name", "web", "--mode", "global", "--network", "dual", "meshd/whoami", "--address", "::",
                ]),
            "service create", c)

        // Each task's IPv6 address is the network's IPv6 prefix with its IPv4 host part.
        var addresses: [String: (v4: String, v6: String)] = [:]
        let listed = try await ClusterTests.eventually(.seconds(30)) {
            let out = try c.docker(
                1,
                [
                    "service", "ps", "web", "--no-trunc", "--filter", "desired-state=running", "--format", "{{.ID}} {{.CurrentState}}",
                ])
            let running = ClusterTests.lines(out.stdout).filter { $0.contains("Running") }.map { String($0.split(separator: " ")[0]) }
            guard running.count == 2 else { return false }
            addresses = [:]
            for id in running {
                let a = try c.docker(
                    1, ["inspect", "--type", "task", id, "--format", "{{range .NetworksAttachments}}{{.Addresses}}{{end}}"])
                let parts = a.stdout.split(whereSeparator: { " []\n".contains($0) }).map(String.init).filter { $0.contains("77") }
                guard let v4 = parts.first(where: { $0.hasPrefix("10.77.") }), let v6 = parts.first(where: { $0.hasPrefix("fd00:77::") })
                else { return false }
                addresses[id] = (String(v4.split(separator: "/")[0]), String(v6.split(separator: "/")[0]))
            }
            return true
        }
        #expect(listed, "the two tasks and both their addresses: \(addresses)")
        for (_, a) in addresses {
            #expect(a.v6 == "fd00:77::" + String(Int(a.v4.split(separator: ".")[3])!, radix: 16), "\(a)")
        }

        guard let ns = try await ClusterTests().taskNamespace(c, service: "web") else {
            Issue.record("no running task namespace")
            return
        }
        // From one task: the other one (on the other node) and itself answer ping -6; dig AAAA names both.
        for (_, a) in addresses {
            let reached = try await ClusterTests.eventually(.seconds(15)) {
                try Exec.run(["ip", "netns", "exec", ns, "ping", "-6", "-c", "1", "-W", "1", a.v6]).succeeded
            }
            #expect(reached, "ping -6 \(a.v6) from \(ns)")
        }
        let aaaa = try await ClusterTests.eventually(.seconds(15)) {
            let out = try Exec.run(["ip", "netns", "exec", ns, "dig", "+short", "+time=1", "+tries=1", "AAAA", "tasks.web"])
            return Set(ClusterTests.lines(out.stdout)) == Set(addresses.values.map(\.v6))
        }
        let dig = try Exec.run(["ip", "netns", "exec", ns, "dig", "+short", "+time=1", "+tries=1", "AAAA", "tasks.web"]).stdout
        #expect(aaaa, "dig AAAA tasks.web: \(dig) (want \(addresses.values.map(\.v6)))")
        let a = try Exec.run(["ip", "netns", "exec", ns, "dig", "+short", "+time=1", "+tries=1", "A", "tasks.web"]).stdout
        #expect(Set(ClusterTests.lines(a)) == Set(addresses.values.map(\.v4)), "dig A tasks.web: \(a)")

        // The service's VIP has an IPv6 twin: inspect lists both, `dig AAAA web` answers the twin,
        // and connections to it reach both tasks (the local one by hairpin, the other over VXLAN),
        // each seeing the client task's own IPv6 address.
        let vips = ClusterTests.lines(
            try c.docker(1, ["service", "inspect", "web", "--format", "{{range .Endpoint.VirtualIPs}}{{.Addr}}\n{{end}}"]).stdout)
        let vip4 = vips.first { $0.hasPrefix("10.77.") }.map { String($0.split(separator: "/")[0]) } ?? ""
        let vip6 = "fd00:77::" + String(Int(vip4.split(separator: ".").last ?? "0") ?? 0, radix: 16)
        #expect(vips.count == 2 && vips.contains("\(vip6)/64"), "VirtualIPs: \(vips)")
        let named = try Exec.run(["ip", "netns", "exec", ns, "dig", "+short", "+time=1", "+tries=1", "AAAA", "web"]).stdout
        #expect(ClusterTests.lines(named) == [vip6], "dig AAAA web: \(named)")
        let named4 = try Exec.run(["ip", "netns", "exec", ns, "dig", "+short", "+time=1", "+tries=1", "A", "web"]).stdout
        #expect(ClusterTests.lines(named4) == [vip4], "dig A web: \(named4)")
        let own = try Exec.check(["ip", "-n", ns, "-6", "-j", "addr", "show", "scope", "global"])
        let mine = addresses.values.map(\.v6).first { own.contains("\"\($0)\"") } ?? "?"
        var answered: Set<String> = []
        let spread = try await ClusterTests.eventually(.seconds(15)) {
            let out = try Exec.run(
                ["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "3", "-H", "Connection: close"]
                    + Array(repeating: "http://[\(vip6)]:8000/", count: 8))
            let lines = ClusterTests.lines(out.stdout)
            answered.formUnion(lines.filter { $0.hasPrefix("Hostname: ") || $0.hasPrefix("I'm ") })
            let seen = Set(
                lines.filter { $0.hasPrefix("RemoteAddr: ") }.map { $0.dropFirst("RemoteAddr: [".count).split(separator: "]")[0] })
            // The local task is reached by hairpin: it sees the gateway's twin, fd00:77::1.
            #expect(seen.isSubset(of: [Substring(mine), "fd00:77::1"]), "RemoteAddr through the twin: \(seen)")
            return answered.count == 2
        }
        #expect(spread, "both tasks through http://[\(vip6)]:8000/: \(answered)")

        // A dual-stack ingress network: published ports answer on the nodes' IPv6 addresses too.
        let rm = try Exec.run(
            ["sh", "-c", "echo y | docker --config '\(c.directory)/docker' -H unix://\(c.socket(1)) network rm ingress"])
        #expect(rm.succeeded, "network rm ingress: \(rm.stderr)")
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "network", "create", "-d", "overlay", "--ingress", "--ipv6", "--subnet", "10.254.0.0/24", "--subnet",
                    "fd00:fe::/64", "ingress6",
                ]), "network create --ingress --ipv6", c)
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--name", "pub", "--replicas", "2", "-p", "8000:8000", "meshd/whoami", "--address", "::",
                ]), "service create -p", c)
        try await c.lab.addUnderlay6()
        for n in 1...2 {
            var served: Set<String> = []
            var sources: Set<String> = []
            let reached = try await ClusterTests.eventually(.seconds(30)) {
                let out = try Exec.run(
                    ["ip", "netns", "exec", c.lab.clientNamespace, "curl", "-s", "--max-time", "3", "-H", "Connection: close"]
                        + Array(repeating: "http://[\(c.lab.underlayAddress6(n))]:8000/", count: 6))
                let lines = ClusterTests.lines(out.stdout)
                served.formUnion(lines.filter { $0.hasPrefix("I'm ") })
                sources.formUnion(
                    lines.filter { $0.hasPrefix("RemoteAddr: ") }.map {
                        String($0.dropFirst("RemoteAddr: [".count).split(separator: "]")[0])
                    })
                return served.count == 2
            }
            #expect(reached, "curl -6 [\(c.lab.underlayAddress6(n))]:8000 reached \(served)\n\(c.log(n).suffix(1500))")
            // The tasks see the IPv6 client's own address, through either node.
            #expect(sources == ["\(DataplaneLab.clientAddress6)"], "the tasks saw \(sources)")
        }
    }
}
