import Foundation
import MeshDataplane
import MeshKernel

extension DataplaneScenario {
    /// Issue 19 item 2 on three nodes: `web` carries fd00:20::/64 beside 10.20.0.0/24; t1 on node 1
    /// is a client, t2 and t3 (nodes 2 and 3) back the service `s`, whose VIP 10.20.0.2 has the
    /// IPv6 twin fd00:20::2. Checked: ping -6 and curl -6 between tasks (whoami sees t1's own IPv6
    /// address), both backends through the twin, a backend reaching itself through it (hairpin,
    /// from the gateway's twin fd00:20::1), the kernel objects (`ip -6 -j`, `nft -j` of
    /// `table ip6 meshd`), a no-op second apply, and a backend leaving the twin.
    public func dualStackVIPs() async throws {
        let web = OverlayNetwork(
            id: "web", name: "web", vni: 4200, subnet: IPPrefix("10.20.0.0/24")!, gateway: IPAddress("10.20.0.1")!,
            subnet6: IPPrefix("fd00:20::/64")!)
        func v4(_ n: Int) -> IPAddress { IPAddress("10.20.0.\(10 + n)")! }
        func v6(_ n: Int) -> IPAddress { web.address6(for: v4(n))! }  // fd00:20::b, ::c, ::d
        func check(_ ok: Bool, _ what: @autoclosure () -> String) throws { if !ok { throw Failure(what()) } }
        func first(_ answer: String) -> String { answer.split(separator: "\n").first.map(String.init) ?? "" }
        let tasks = (1...3).map { n in
            DataplaneLab.TaskSpec(id: "t\(n)", service: n == 1 ? nil : "s", node: n, addresses: [("web", v4(n)), ("web", v6(n))])
        }
        let vip6 = web.address6(for: IPAddress("10.20.0.2")!)!
        try check("\(vip6)" == "fd00:20::2", "the VIP's twin is \(vip6)")
        let service = DataplaneLab.ServiceDef(id: "s", name: "s", vips: [.init(network: "web", address: IPAddress("10.20.0.2")!)])
        for t in tasks { try await lab.createTask(t.id) }
        let states = lab.states(networks: [web], tasks: tasks, services: [service])
        _ = try lab.applyAll(states, lb: lb)
        for n in 2...3 { try lab.startWhoami(task: "t\(n)", name: "t\(n)", address: "::") }

        let t1 = lab.taskNamespace("t1")
        for n in 2...3 {
            let ping = try Exec.run(["ip", "netns", "exec", t1, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "\(v6(n))"])
            try check(ping.succeeded, "ping -6 t1 → t\(n): \(ping.stdout)\(ping.stderr)")
            let ping4 = try Exec.run(["ip", "netns", "exec", t1, "ping", "-c", "1", "-W", "2", "\(v4(n))"])
            try check(ping4.succeeded, "ping t1 → t\(n) over IPv4: \(ping4.stdout)")
            let answer = try lab.get(from: t1, url: "http://[\(v6(n))]:8000/")
            try check(answer.hasPrefix("I'm t\(n)") && answer.contains("RemoteAddr: [\(v6(1))]:"), "curl -6 t1 → t\(n): \(answer)")
        }
        var seen: Set<String> = []
        for _ in 0..<8 {
            let answer = try lab.get(from: t1, url: "http://[\(vip6)]:8000/")
            try check(answer.contains("RemoteAddr: [\(v6(1))]:"), "curl -6 the VIP's twin: \(answer)")
            seen.insert(first(answer))
        }
        try check(seen == ["I'm t2", "I'm t3"], "through the twin answered \(seen)")
        let t2 = lab.taskNamespace("t2")
        var hairpin: Set<String> = []
        for _ in 0..<8 {
            let answer = try lab.get(from: t2, url: "http://[\(vip6)]:8000/")
            hairpin.insert(first(answer))
            if answer.hasPrefix("I'm t2") { try check(answer.contains("RemoteAddr: [fd00:20::1]:"), "hairpin: \(answer)") }
        }
        try check(hairpin == ["I'm t2", "I'm t3"], "t2 through the twin reached \(hairpin)")

        let sandbox = Naming(nodeID: lab.nodeID(1)).sandbox("web")
        let routes = try Exec.check(["ip", "-n", sandbox, "-6", "-j", "route", "show"])
        try check(routes.contains("\"dst\":\"fd00:20::/64\",\"dev\":\"vxlan0\""), "sandbox IPv6 routes: \(routes)")
        let neigh = try Exec.check(["ip", "-n", sandbox, "-6", "-j", "neigh", "show", "dev", "vxlan0"])
        for n in 2...3 {
            let mac = Naming.vxlanMAC(node: lab.nodeID(n), vni: 4200)
            try check(neigh.contains("\"dst\":\"\(v6(n))\",\"lladdr\":\"\(mac)\""), "sandbox IPv6 neighbours: \(neigh)")
        }
        let task = try Exec.check(["ip", "-n", t1, "-6", "-j", "route", "show"])
        try check(task.contains("\"dst\":\"default\",\"gateway\":\"fe80::1\""), "t1's IPv6 routes: \(task)")
        let slots = try Exec.check(["ip", "netns", "exec", sandbox, "nft", "-j", "list", "map", "ip6", "meshd", "vip_backends"])
        try check(slots.contains("\(v6(2))") && slots.contains("\(v6(3))"), "ip6 meshd vip_backends: \(slots)")
        let slot = try Exec.check(["ip", "netns", "exec", sandbox, "nft", "-j", "list", "map", "ip6", "meshd", "vip_slot"])
        try check(slot.contains("fd00:20::2"), "ip6 meshd vip_slot: \(slot)")
        for n in 1...3 {
            let o = try lab.apply(states[n - 1], node: n, lb: lb)
            try check(o.succeeded && o.stdout.isEmpty, "second apply on node\(n) printed \(o.stdout) \(o.stderr)")
        }
        let fewer = lab.states(
            networks: [web],
            tasks: tasks.map {
                var t = $0
                if t.id == "t2" { t.service = nil }
                return t
            }, services: [service])
        let o = try lab.apply(fewer[0], node: 1, lb: lb)
        try check(o.succeeded && o.stdout.contains("VIP \(vip6)"), "t2 leaving the service: \(o.stdout) \(o.stderr)")
        for _ in 0..<4 {
            let answer = try lab.get(from: t1, url: "http://[\(vip6)]:8000/")
            try check(answer.hasPrefix("I'm t3"), "after t2 left, the twin answered \(answer)")
        }
    }
}

extension DataplaneScenario {
    /// Published ports on the nodes' IPv6 addresses: the ingress network carries fd00:ff::/64;
    /// w1 (node 2) and w2 (node 3) back `whoami`, published on 8000; `web` stays IPv4 only (so
    /// the tasks' IPv6 answers leave by the ingress return rule, table 77). From the underlay
    /// client, curl -6 to every node's IPv6 address reaches both backends, which see the client's
    /// own IPv6 address (through nodes 1 and 3, w1 answers over the IPv6 return path); IPv4
    /// through the same nodes keeps working. Node 1 switched to Docker's ingress shows its
    /// ingress address's twin instead, and back. Checked too: the node's IPv6 rule, the ingress
    /// sandbox's `pub_backends`, the IPv6 return rules and routes, a no-op second apply.
    public func dualStackPublishedPorts() async throws {
        let ingress = OverlayNetwork(
            id: "ingress", name: "ingress", vni: 4096, subnet: IPPrefix("10.255.0.0/24")!, gateway: IPAddress("10.255.0.1")!,
            ingress: true, subnet6: IPPrefix("fd00:ff::/64")!)
        func check(_ ok: Bool, _ what: @autoclosure () -> String) throws { if !ok { throw Failure(what()) } }
        let tasks = (1...2).map { i in
            let v4 = IPAddress("10.255.0.\(10 + i)")!
            return DataplaneLab.TaskSpec(
                id: "w\(i)", service: "whoami", node: i + 1,
                addresses: [("web", IPAddress("10.20.0.\(10 + i)")!), ("ingress", v4), ("ingress", ingress.address6(for: v4)!)])
        }
        for t in tasks { try await lab.createTask(t.id) }
        try await lab.addUnderlay6()
        let states = lab.states(networks: [Self.web, ingress], tasks: tasks, services: [Self.whoami])
        _ = try lab.applyAll(states, lb: lb)
        for t in tasks { try lab.startWhoami(task: t.id, name: t.id, address: "::") }

        func through(_ n: Int, expect want: IPAddress) throws {
            let out = try Exec.run(
                [
                    "ip", "netns", "exec", lab.clientNamespace, "curl", "-sS", "--max-time", "\(lab.requestSeconds)", "-H",
                    "Connection: close",
                ]
                    + Array(repeating: "http://[\(lab.underlayAddress6(n))]:8000/", count: 8))
            let lines = out.stdout.split(separator: "\n")
            let served = Set(lines.filter { $0.hasPrefix("I'm ") })
            let seen = lines.filter { $0.hasPrefix("RemoteAddr: ") }
            try check(served == ["I'm w1", "I'm w2"], "client → [\(lab.underlayAddress6(n))]:8000 reached \(served)")
            try check(
                seen.count == 8 && seen.allSatisfy { $0.hasPrefix("RemoteAddr: [\(want)]:") },
                "client → [\(lab.underlayAddress6(n))]:8000: the backends saw \(seen), expected \(want)")
        }
        for n in 1...lab.nodeCount {
            try through(n, expect: DataplaneLab.clientAddress6)
            let v4 = try lab.get(from: lab.clientNamespace, url: "http://\(lab.underlayAddress(n)):8000/")
            // whoami listens on :: here, so an IPv4 client shows as ::ffff:a.b.c.d.
            try check(
                v4.contains("RemoteAddr: [::ffff:\(DataplaneLab.clientAddress)]:"),
                "client → \(lab.underlayAddress(n)):8000 over IPv4: \(v4.debugDescription)")
        }
        let node = try Exec.check(["ip", "netns", "exec", lab.nodeNamespace(1), "nft", "-j", "list", "table", "inet", "meshd"])
        try check(node.contains("fd6d:6573:6864::2"), "node1's table inet meshd has no IPv6 rule: \(node)")
        let sandbox = Naming(nodeID: lab.nodeID(1)).sandbox("ingress")
        let backends = try Exec.check(["ip", "netns", "exec", sandbox, "nft", "-j", "list", "map", "ip6", "meshd", "pub_backends"])
        try check(backends.contains("fd00:ff::b") && backends.contains("fd00:ff::c"), "ip6 meshd pub_backends: \(backends)")
        let sandbox2 = Naming(nodeID: lab.nodeID(2)).sandbox("ingress")
        // IngressReturn's mark for node 1: 0x4d000000 and the low 24 bits of 10.255.0.201.
        let markValue = lab.ingressAddress(1).bytes.suffix(3).reduce(UInt32(0x4d)) { $0 << 8 | UInt32($1) }
        let mark = String(markValue, radix: 16)
        let rules6 = try Exec.check(["ip", "-n", sandbox2, "-6", "-j", "rule", "show"])
        try check(rules6.contains("\"fwmark\":\"0x\(mark)\""), "node2's IPv6 return rules: \(rules6)")
        let route6 = try Exec.check(["ip", "-n", sandbox2, "-6", "-j", "route", "show", "table", "\(markValue)"])
        try check(route6.contains("\"gateway\":\"fd00:ff::c9\""), "node2's IPv6 return route to node 1: \(route6)")
        let task = try Exec.check(["ip", "-n", lab.taskNamespace("w1"), "-6", "-j", "rule", "show"])
        try check(task.contains("\"src\":\"fd00:ff::b\"") && task.contains("\"table\":\"77\""), "w1's IPv6 return rule: \(task)")
        for n in 1...lab.nodeCount {
            let o = try lab.apply(states[n - 1], node: n, lb: lb)
            try check(o.succeeded && o.stdout.isEmpty, "second apply on node\(n) printed \(o.stdout) \(o.stderr)")
        }
        // Docker's ingress on node 1: its IPv6 traffic comes from its twin; the others keep the client's.
        var snat = states[0]
        snat.node.ingressSNAT = true
        _ = try lab.apply(snat, node: 1, lb: lb)
        try through(1, expect: ingress.address6(for: lab.ingressAddress(1))!)
        try through(2, expect: DataplaneLab.clientAddress6)
        _ = try lab.apply(states[0], node: 1, lb: lb)
        try through(1, expect: DataplaneLab.clientAddress6)
    }
}
