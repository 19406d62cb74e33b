import Foundation
import MeshDataplane
import MeshKernel
import MeshTestbed
import Testing

/// Issue 5's e2e lane: three node namespaces on a test underlay, the real `meshd dataplane apply`
/// per node with `--lb nftables`, curl/ping/whoami between them.
@Suite(.serialized) struct DataplaneE2ETests {
    func withScenario(_ body: (DataplaneScenario) async throws -> Void) async throws {
        try requireRoot()
        let lab = try await DataplaneLab.build()
        defer { lab.destroy() }
        try await body(DataplaneScenario(lab: lab, lb: "nftables"))
    }

    @Test func publishedPortsVIPPingAndHairpin() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 3, started: &started)
            try s.publishedPortsReachEveryBackend(3)
            try s.vipAnswersTask()
            try s.hairpin(backends: 3)
        }
    }

    @Test func vipAndPublishedTrafficIsCountedPerElement() async throws {
        try await withScenario { s in try await s.trafficIsCounted() }
    }

    @Test func scaleThreeFiveOneFollowsInOneApply() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 3, started: &started)
            try s.publishedPortsReachEveryBackend(3)
            try await s.deploy(backends: 5, started: &started)
            try s.publishedPortsReachEveryBackend(5)
            #expect(Set(try s.vipSpread(30).keys) == ["w1", "w2", "w3", "w4", "w5"])
            // w2…w5 keep running: only the state says they are gone, and they get nothing new.
            try await s.deploy(backends: 1, started: &started)
            try s.publishedPortsReachEveryBackend(1)
            #expect(try s.vipSpread(20) == ["w1": 20])
        }
    }

    @Test func removingServiceAndNetworkLeavesNothing() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 3, started: &started)
            try s.publishedPortsReachEveryBackend(3)
            for n in 1...3 {
                let o = try s.lab.apply(s.lab.emptyState(n), node: n)
                #expect(o.succeeded, "node\(n): \(o.stderr)")
                #expect(!o.stdout.isEmpty, "removing everything printed no change on node\(n)")
            }
            try s.nothingLeft()
            for t in ["client", "w1", "w2", "w3"] {
                #expect(try DataplanePicture.links(s.lab.taskNamespace(t)) == ["lo"], "task \(t) still has meshd's interface")
            }
        }
    }

    /// The kernel's own listing of `spaces`, unsorted: nft over netlink, `ip -j` links, addresses,
    /// IPv4 addresses and routes (IPv6 link-local addresses and their routes appear on their own as
    /// duplicate-address detection finishes: the kernel's doing, not a change). A bridge's carrier is
    /// left out too: the kernel raises it on its own once a port has come up (a CI run saw ingress0 lose
    /// NO-CARRIER between the two listings), whatever an apply does.
    func raw(_ spaces: [String]) throws -> [String: String] {
        var out: [String: String] = [:]
        for ns in spaces {
            let text =
                try DataplanePicture.nftLines(ns).sorted().joined(separator: "\n")
                + Exec.check(["ip", "-n", ns, "-j", "-d", "link", "show"]) + Exec.check(["ip", "-n", ns, "-4", "-j", "addr", "show"])
                + Exec.check(["ip", "-n", ns, "-4", "-j", "route", "show", "table", "all"])
            // Carrier, and with it a route's linkdown flag, move on the kernel's own time.
            out[ns] = text.replacingOccurrences(of: #""NO-CARRIER","#, with: "")
                .replacingOccurrences(of: #""operstate":"[A-Z]+""#, with: #""operstate":"-""#, options: .regularExpression)
                .replacingOccurrences(of: #""linkdown",?"#, with: "", options: .regularExpression)
                .replacingOccurrences(of: ",]", with: "]")
        }
        return out
    }

    /// Where two listings first differ, with some context.
    func firstDifference(_ a: String, _ b: String) -> String {
        let x = Array(a.utf8), y = Array(b.utf8)
        var i = 0
        while i < min(x.count, y.count), x[i] == y[i] { i += 1 }
        func around(_ v: [UInt8]) -> String { String(decoding: v[max(0, i - 80)..<min(v.count, i + 80)], as: UTF8.self) }
        return "before …\(around(x))… after …\(around(y))…"
    }

    @Test func secondApplyChangesNothing() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 3, started: &started)
            let states = s.states(backends: 3)
            for n in 1...3 {
                let spaces = [s.lab.nodeNamespace(n)] + s.lab.sandboxes(n)
                let before = try raw(spaces)
                let picture = try s.picture(n)
                // A new process with the same state: it reads the kernel and finds nothing to do.
                let o = try s.lab.apply(states[n - 1], node: n)
                #expect(o.succeeded && o.stdout.isEmpty, "second apply on node\(n) printed \(o.stdout) \(o.stderr)")
                let after = try raw(spaces)
                let changed = spaces.filter { before[$0] != after[$0] }
                #expect(
                    changed.isEmpty,
                    "node\(n): kernel output of \(changed) changed on a no-op apply: \(changed.first.map { firstDifference(before[$0]!, after[$0]!) } ?? "")"
                )
                #expect(try s.picture(n) == picture)
            }
        }
    }

    /// Issue 19 item 1: the backend sees the client's own address through every node's published
    /// port, also when the entry node is another than the backend's; answers go back through the
    /// entry node (or curl would get nothing: its conntrack undoes the NAT). A node switched to
    /// Docker's ingress SNATs again; switched back, it keeps the client's address.
    @Test func publishedPortsKeepTheClientsAddressOnEveryNode() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 3, started: &started)
            try s.publishedPortsSeeTheClient(backends: 3)

            // Node 2's ingress sandbox routes answers to nodes 1 and 3 by the mark of the entry.
            let sandbox = Naming(nodeID: s.lab.nodeID(2)).sandbox(DataplaneLab.ingressNetwork.id)
            let rules =
                try JSONSerialization.jsonObject(with: Data(Exec.check(["ip", "-n", sandbox, "-j", "rule", "show"]).utf8))
                as? [[String: Any]] ?? []
            let marks = rules.compactMap { $0["fwmark"] as? String }.sorted()
            #expect(marks == ["0x4dff00c9", "0x4dff00cb"], "rules in node 2's ingress sandbox: \(rules)")
            for (mark, via) in [("0x4dff00c9", s.lab.ingressAddress(1)), ("0x4dff00cb", s.lab.ingressAddress(3))] {
                let routes = try Exec.check([
                    "ip", "-n", sandbox, "-j", "route", "show", "table", "\(UInt32(mark.dropFirst(2), radix: 16)!)",
                ])
                #expect(routes.contains("\"gateway\":\"\(via)\"") && routes.contains("\"dev\":\"vxlan0\""), "table \(mark): \(routes)")
            }
            let map = try Exec.check(["ip", "netns", "exec", sandbox, "nft", "-j", "list", "map", "ip", "meshd_return", "entries"])
            for n in [1, 3] {
                let mac = Naming.vxlanMAC(node: s.lab.nodeID(n), vni: DataplaneLab.ingressNetwork.vni)
                #expect(map.contains("\(mac)"), "entries lack node\(n)'s vxlan0 \(mac): \(map)")
            }
            // w1 (on web and ingress, its default route on web) sends what leaves from its ingress address to the ingress gateway.
            let w1 = s.lab.taskNamespace("w1")
            let w1Rules = try Exec.check(["ip", "-n", w1, "-j", "rule", "show"])
            #expect(w1Rules.contains("\"src\":\"10.255.0.11\"") && w1Rules.contains("\"table\":\"77\""), "\(w1Rules)")
            let w1Table = try Exec.check(["ip", "-n", w1, "-j", "route", "show", "table", "77"])
            #expect(w1Table.contains("\"gateway\":\"10.255.0.1\""), "\(w1Table)")

            // Node 1 runs Docker's ingress, then again not: only its own published traffic changes.
            var states = s.states(backends: 3)
            states[0].node.ingressSNAT = true
            let on = try s.lab.apply(states[0], node: 1)
            #expect(on.succeeded && on.stdout.contains("ingress traffic leaves from"), "\(on.stdout) \(on.stderr)")
            try s.publishedPortsSeeTheClient(backends: 3, snat: [1])
            states[0].node.ingressSNAT = nil
            let off = try s.lab.apply(states[0], node: 1)
            #expect(off.succeeded && off.stdout.contains("keeps the client's address"), "\(off.stdout) \(off.stderr)")
            try s.publishedPortsSeeTheClient(backends: 3)
        }
    }

    /// A connection through a published port keeps its backend, and its answers their way back,
    /// while another backend is taken away.
    @Test func aScaleDownBreaksNoEstablishedIngressConnection() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 3, started: &started)
            let client = try NetworkNamespace.open(named: s.lab.clientNamespace)
            let conn = try HTTPConnection(from: client, to: s.lab.underlayAddress(1), port: 8000)
            let first = try conn.get()
            let serving = first.split(separator: "\n").first.map(String.init) ?? ""
            #expect(first.contains("RemoteAddr: \(DataplaneLab.clientAddress):"), "\(first)")
            guard let victim = (1...3).map(DataplaneScenario.backendName).first(where: { serving != "I'm \($0)" }) else {
                Issue.record("no backend named in \(first.debugDescription)")
                return
            }
            let tasks = s.tasks(backends: 3).filter { $0.id != victim }
            _ = try s.lab.applyAll(
                s.lab.states(networks: [DataplaneScenario.web], tasks: tasks, services: [DataplaneScenario.whoami]), lb: s.lb)
            let second = try conn.get()
            #expect(second.split(separator: "\n").first.map(String.init) == serving, "after the scale-down: \(second)")
            let fresh = try s.lab.spread(from: s.lab.clientNamespace, url: "http://\(s.lab.underlayAddress(1)):8000/", count: 10)
            #expect(fresh[victim] == nil && fresh["failed"] == nil, "\(fresh)")
        }
    }

    /// Issue 19 item 2, the data path: a dual-stack overlay carries IPv6 between tasks on three
    /// nodes, and a VIP's IPv6 twin balances over the backends' IPv6 addresses (with hairpin and
    /// a scale-down); a second apply by a new process reads it all back and changes nothing.
    /// The same scenario runs under `--lb ipvs` in the VM lane (`DataplaneIPVSTests`).
    @Test func dualStackTasksReachEachOtherOverIPv6AcrossNodes() async throws {
        try await withScenario { s in try await s.dualStackVIPs() }
    }

    /// Published ports on the nodes' IPv6 addresses (a dual-stack ingress network), beside IPv4.
    @Test func publishedPortsAnswerOnTheNodesIPv6Addresses() async throws {
        try await withScenario { s in try await s.dualStackPublishedPorts() }
    }

    @Test func restartKeepsEstablishedConnections() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 3, started: &started)
            let client = try NetworkNamespace.open(named: s.lab.taskNamespace("client"))
            let conn = try HTTPConnection(from: client, to: DataplaneScenario.vip, port: 8000)
            let first = try conn.get()
            #expect(first.hasPrefix("I'm w"))
            for n in 1...3 {
                let o = try s.lab.apply(s.states(backends: 3)[n - 1], node: n)
                #expect(o.succeeded && o.stdout.isEmpty, "restart apply on node\(n): \(o.stdout) \(o.stderr)")
            }
            // The same backend keeps answering on the same connection.
            let second = try conn.get()
            #expect(second.split(separator: "\n").first == first.split(separator: "\n").first)
        }
    }

    @Test func killedMidApplyConvergesToCleanApply() async throws {
        try await withScenario { s in
            try await s.lab.createTask("client")
            for i in 1...3 { try await s.lab.createTask("w\(i)") }
            let big = s.bulk(s.states(backends: 3)[1], services: 2_000)
            let path = try s.lab.write(big, node: 2)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: s.lab.meshd)
            p.arguments = ["dataplane", "apply", "--state", path, "--lb", s.lb]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            s.lab.track(p)
            // Kill once meshd has started programming (a sandbox exists), before it finishes.
            let start = ContinuousClock.now
            while p.isRunning, s.lab.sandboxes(2).isEmpty, ContinuousClock.now - start < .seconds(20) {
                try await Task.sleep(for: .milliseconds(2))
            }
            try await Task.sleep(for: .milliseconds(30))
            let killedMidway = p.isRunning
            s.lab.stop(p)
            let o = try s.lab.apply(big, node: 2, lb: s.lb)
            #expect(o.succeeded, "apply after kill -9: \(o.stderr)")
            let recovered = try s.picture(2, tasks: ["w1", "w3"])
            // A clean apply from nothing must give the same kernel picture.
            #expect(try s.lab.apply(s.lab.emptyState(2), node: 2).succeeded)
            #expect(s.lab.sandboxes(2).isEmpty)
            #expect(try s.lab.apply(big, node: 2, lb: s.lb).succeeded)
            let clean = try s.picture(2, tasks: ["w1", "w3"])
            #expect(recovered == clean, "differs: \(Set(recovered).symmetricDifference(clean).sorted().prefix(20))")
            #expect(killedMidway, "meshd finished 2,000 services before the kill: the test did not interrupt it")
        }
    }

    @Test func orphansGoForeignObjectsStay() async throws {
        try await withScenario { s in
            var started = Set<Int>()
            try await s.deploy(backends: 3, started: &started)
            let node1 = s.lab.nodeNamespace(1)
            // Foreign objects in the node namespace.
            // (This kernel has no dummy links: a veth pair stands in.)
            try Exec.check(["ip", "-n", node1, "link", "add", "foreign0", "type", "veth", "peer", "name", "foreign1"])
            try Exec.check(["ip", "-n", node1, "link", "set", "foreign0", "up"])
            try Exec.check(["ip", "-n", node1, "route", "add", "10.77.0.0/24", "dev", "foreign0"])
            try Exec.check(["ip", "netns", "exec", node1, "nft", "add", "table", "ip", "foreign"])
            // meshd-owned leftovers the state does not name: a sandbox of a gone network, a stray neighbour.
            let stale = Naming(nodeID: s.lab.nodeID(1)).sandbox("gone")
            _ = try NetworkNamespace.create(named: stale)
            let web1 = Naming(nodeID: s.lab.nodeID(1)).sandbox("web")
            try Exec.check([
                "ip", "-n", web1, "neigh", "add", "10.20.0.99", "lladdr", "02:00:00:00:00:99", "dev", "vxlan0", "nud", "permanent",
            ])
            // Scale 3 → 2: w3's attachment on node 3 goes.
            try await s.deploy(backends: 2, started: &started)
            // A fresh process (it reads the kernel) sees the leftovers on node 1.
            let o = try s.lab.apply(s.states(backends: 2)[0], node: 1)
            #expect(o.succeeded, "\(o.stderr)")
            #expect(!NetworkNamespace.exists(named: stale), "stale sandbox \(stale) survived")
            let neigh = try Exec.check(["ip", "-n", web1, "neigh", "show", "dev", "vxlan0"])
            #expect(!neigh.contains("10.20.0.99"), "stray neighbour survived: \(neigh)")
            #expect(try DataplanePicture.links("\(s.lab.taskNamespace("w3"))") == ["lo"])
            #expect(try DataplanePicture.links(node1).contains("foreign0"))
            #expect(try Exec.check(["ip", "-n", node1, "route", "show", "10.77.0.0/24"]).contains("foreign0"))
            #expect(try DataplanePicture.nftTables(node1).contains("ip foreign"))
            try s.publishedPortsReachEveryBackend(2)
        }
    }

    @Test func conflictingPublishedPortsAreRejected() async throws {
        try await withScenario { s in
            try await s.lab.createTask("client")
            for i in 1...2 { try await s.lab.createTask("w\(i)") }
            var other = DataplaneScenario.whoami
            other.id = "other"
            other.name = "other"
            other.vips = [.init(network: "web", address: IPAddress("10.20.0.101")!)]
            let states = s.lab.states(
                networks: [DataplaneScenario.web], tasks: s.tasks(backends: 2),
                services: [DataplaneScenario.whoami, other])
            let o = try s.lab.apply(states[0], node: 1)
            #expect(o.status == 2, "exit \(o.status): \(o.stdout) \(o.stderr)")
            #expect(o.stderr.contains("8000"), "the error does not name the port: \(o.stderr)")
            #expect(s.lab.sandboxes(1).isEmpty, "a rejected state changed the kernel")
        }
    }
}
