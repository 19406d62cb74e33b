import Foundation
import MeshDataplane
import MeshKernel

/// The e2e scenarios of issue 5 on a `DataplaneLab`, shared by the host suite (`--lb nftables`)
/// and the VM suite (`--lb ipvs`): each throws `DataplaneScenario.Failure` saying what it saw.
///
/// One overlay `web` (10.20.0.0/24, VNI 4200); a client task on node 1 (10.20.0.5); whoami
/// backends w1…wK alternating over nodes 2 and 3 (10.20.0.(10+i), ingress 10.255.0.(10+i));
/// the service `whoami` with VIP 10.20.0.100, published on 8000.
public struct DataplaneScenario: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ d: String) { description = d }
    }

    public static let web = OverlayNetwork(
        id: "web", name: "web", vni: 4200, subnet: IPPrefix("10.20.0.0/24")!,
        gateway: IPAddress("10.20.0.1")!)
    public static let vip = IPAddress("10.20.0.100")!
    public static let clientTask = IPAddress("10.20.0.5")!
    public static let whoami = DataplaneLab.ServiceDef(
        id: "whoami", name: "whoami", vips: [.init(network: "web", address: vip)],
        ports: [.init(published: 8000, target: 8000)])

    public let lab: DataplaneLab
    public let lb: String
    public init(lab: DataplaneLab, lb: String = "nftables") {
        self.lab = lab
        self.lb = lb
    }

    public static func backendName(_ i: Int) -> String { "w\(i)" }
    public func backendNode(_ i: Int) -> Int { i % 2 == 1 ? 2 : 3 }

    /// The client plus backends w1…wK (`weights[i]` overrides backend i's weight).
    public func tasks(backends k: Int, weights: [Int: UInt32] = [:]) -> [DataplaneLab.TaskSpec] {
        var t = [DataplaneLab.TaskSpec(id: "client", service: nil, node: 1, addresses: [("web", Self.clientTask)])]
        for i in stride(from: 1, through: k, by: 1) {
            t.append(
                .init(
                    id: Self.backendName(i), service: "whoami", node: backendNode(i),
                    addresses: [("web", IPAddress("10.20.0.\(10 + i)")!), ("ingress", IPAddress("10.255.0.\(10 + i)")!)],
                    weight: weights[i]))
        }
        return t
    }

    public func states(backends k: Int, weights: [Int: UInt32] = [:]) -> [DataplaneState] {
        lab.states(networks: [Self.web], tasks: tasks(backends: k, weights: weights), services: [Self.whoami])
    }

    /// Makes the task namespaces (client, w1…wK) that do not exist yet, applies the state on
    /// every node and starts whoami in backends that have none yet.
    @discardableResult
    public func deploy(backends k: Int, started: inout Set<Int>) async throws -> [[String]] {
        if !NetworkNamespace.exists(named: lab.taskNamespace("client")) { try await lab.createTask("client") }
        for i in stride(from: 1, through: k, by: 1) where !NetworkNamespace.exists(named: lab.taskNamespace(Self.backendName(i))) {
            try await lab.createTask(Self.backendName(i))
        }
        let changes = try lab.applyAll(states(backends: k), lb: lb)
        for i in stride(from: 1, through: k, by: 1) where !started.contains(i) {
            try lab.startWhoami(task: Self.backendName(i), name: Self.backendName(i))
            started.insert(i)
        }
        return changes
    }

    public static let bulkNetwork = OverlayNetwork(
        id: "bulk", name: "bulk", vni: 4300, subnet: IPPrefix("10.30.0.0/16")!,
        gateway: IPAddress("10.30.0.1")!)

    /// `state` plus the network `bulk` with `services` services of three backends each (VIP
    /// 10.30.(1+i/250).(1+i%250), backends in 10.30.100-102.x): a large state to interrupt.
    public func bulk(_ state: DataplaneState, services: Int) -> DataplaneState {
        var s = state
        s.networks.append(Self.bulkNetwork)
        for i in 0..<services {
            let vip = IPAddress("10.30.\(1 + i / 250).\(1 + i % 250)")!
            let backends = (0..<3).map { BalancedService.Backend(network: "bulk", address: IPAddress("10.30.\(100 + $0).\(1 + i % 250)")!) }
            s.services.append(
                BalancedService(id: "bulk\(i)", name: "bulk\(i)", vips: [.init(network: "bulk", address: vip)], backends: backends))
        }
        return s
    }

    // MARK: checks

    /// 30 new connections from the client namespace to each node's 8000 reach backends 1…K, each
    /// at least once per 10 requests, and nothing else; `localhost:8000` inside each node answers.
    public func publishedPortsReachEveryBackend(_ k: Int) throws {
        let expected = Set((1...k).map(Self.backendName))
        for n in 1...lab.nodeCount {
            let got = try lab.spread(from: lab.clientNamespace, url: "http://\(lab.underlayAddress(n)):8000/", count: 30)
            guard Set(got.keys) == expected, got.values.allSatisfy({ $0 >= 30 / 10 }) else {
                throw Failure("client → node\(n):8000 spread \(got), expected each of \(expected.sorted()) at least 3 times")
            }
            let local = try lab.spread(from: lab.nodeNamespace(n), url: "http://127.0.0.1:8000/", count: 10)
            guard Set(local.keys).isSubset(of: expected), local["failed"] == nil else {
                throw Failure("node\(n) localhost:8000 spread \(local)")
            }
        }
    }

    /// 12 requests from the underlay client to each node's 8000 (each on a new connection, so they
    /// spread over the backends on both other nodes and, through nodes 2 and 3, their own): every
    /// answer names the address the backend saw, which must be the client's own, or with
    /// `snat` (nodes running Docker's ingress) that entry node's ingress address.
    public func publishedPortsSeeTheClient(backends k: Int, snat: Set<Int> = []) throws {
        for n in 1...lab.nodeCount {
            let want = snat.contains(n) ? lab.ingressAddress(n) : DataplaneLab.clientAddress
            let out = try Exec.run(
                ["ip", "netns", "exec", lab.clientNamespace, "curl", "-s", "--max-time", "5", "-H", "Connection: close"]
                    + Array(repeating: "http://\(lab.underlayAddress(n)):8000/", count: 12))
            let seen = out.stdout.split(separator: "\n").filter { $0.hasPrefix("RemoteAddr: ") }
                .map { $0.dropFirst("RemoteAddr: ".count).split(separator: ":").first.map(String.init) ?? "" }
            let served = Set(out.stdout.split(separator: "\n").filter { $0.hasPrefix("I'm ") })
            guard seen.count == 12, seen.allSatisfy({ $0 == "\(want)" }) else {
                throw Failure("client → node\(n):8000: backends saw \(seen) (\(seen.count) of 12 answered), expected \(want) each time")
            }
            guard k < 2 || served.count >= 2 else {
                throw Failure("client → node\(n):8000: only \(served) answered; the check needs backends on more than one node")
            }
        }
    }

    /// From the client task: the VIP answers on 8000 (whoami sees the task's own address) and to ping.
    public func vipAnswersTask() throws {
        let text = try lab.get(from: lab.taskNamespace("client"), url: "http://\(Self.vip):8000/")
        guard text.hasPrefix("I'm w") else { throw Failure("VIP 8000 from the client task answered \(text.debugDescription)") }
        guard text.contains("RemoteAddr: \(Self.clientTask):") else {
            throw Failure("the backend saw another source than the client task \(Self.clientTask): \(text)")
        }
        let ping = try Exec.run([
            "ip", "netns", "exec", lab.taskNamespace("client"), "ping", "-c", "2", "-i", "0.2", "-W", "2", "\(Self.vip)",
        ])
        guard ping.succeeded else { throw Failure("ping to the VIP failed: \(ping.stdout)") }
    }

    /// Requests from the client task through the VIP; which backends answered.
    public func vipSpread(_ count: Int) throws -> [String: Int] {
        try lab.spread(from: lab.taskNamespace("client"), url: "http://\(Self.vip):8000/", count: count)
    }

    /// Backend w1 reaches the VIP, and so itself when chosen: every request answered, w1 among them.
    public func hairpin(backends k: Int) throws {
        let got = try lab.spread(from: lab.taskNamespace(Self.backendName(1)), url: "http://\(Self.vip):8000/", count: 3 * k)
        guard got["failed"] == nil, got[Self.backendName(1)] != nil else {
            throw Failure("hairpin from w1 through the VIP: \(got)")
        }
    }

    /// Nothing meshd makes remains on any node: no sandbox, no `table inet meshd`, no meshd-ingress.
    public func nothingLeft() throws {
        for n in 1...lab.nodeCount {
            let sandboxes = lab.sandboxes(n)
            guard sandboxes.isEmpty else { throw Failure("node\(n) still has sandboxes \(sandboxes)") }
            let tables = try DataplanePicture.nftTables(lab.nodeNamespace(n))
            guard !tables.contains("inet meshd") else { throw Failure("node\(n) still has table inet meshd") }
            let links = try DataplanePicture.links(lab.nodeNamespace(n))
            guard links.sorted() == ["eth0", "lo"] else { throw Failure("node\(n) links are \(links)") }
        }
    }

    /// The picture of node `n`: its namespace, its sandboxes, and the task namespaces it hosts.
    public func picture(_ n: Int, tasks: [String] = []) throws -> [String] {
        try DataplanePicture.of(
            [lab.nodeNamespace(n)] + lab.sandboxes(n) + tasks.map(lab.taskNamespace),
            strip: [lab.group.prefix, lab.nodeID(n)])
    }

    // MARK: the traffic meter

    /// The meter's per-element counters, read with `nft -j` in every sandbox of node `n`: new
    /// connections to the VIP and to published port 8000/tcp, and packets to the VIP.
    public func meter(node n: Int) throws -> (vipConns: Int, vipPackets: Int, portConns: Int) {
        var out = (vipConns: 0, vipPackets: 0, portConns: 0)
        for sandbox in lab.sandboxes(n) {
            for set in ["vip_conns", "vip_bytes", "pub_conns"] {
                let r = try Exec.run(["ip", "netns", "exec", sandbox, "nft", "-j", "list", "set", "ip", "meshd", set])
                guard r.succeeded else { continue }  // a sandbox that is not the ingress one has no pub_ sets
                let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
                for item in doc?["nftables"] as? [[String: Any]] ?? [] {
                    for e in (item["set"] as? [String: Any])?["elem"] as? [[String: Any]] ?? [] {
                        guard let elem = e["elem"] as? [String: Any], let c = elem["counter"] as? [String: Any],
                            let packets = c["packets"] as? Int
                        else { continue }
                        switch set {
                        case "vip_conns" where elem["val"] as? String == "\(Self.vip)": out.vipConns += packets
                        case "vip_bytes" where elem["val"] as? String == "\(Self.vip)": out.vipPackets += packets
                        case "pub_conns":
                            let key = (elem["val"] as? [String: Any])?["concat"] as? [Any]
                            if key?.first as? String == "tcp", key?.last as? Int == 8000 { out.portConns += packets }
                        default: break
                        }
                    }
                }
            }
        }
        return out
    }

    /// 20 connections from the client task through the VIP are counted on its node (node 1), 15
    /// from the underlay client to node 2's published port on node 2, exactly, and neither as the other.
    public func trafficIsCounted() async throws {
        var started = Set<Int>()
        try await deploy(backends: 3, started: &started)
        let before1 = try meter(node: 1)
        let spread = try vipSpread(20)
        guard spread["failed"] == nil else { throw Failure("through the VIP: \(spread)") }
        let after1 = try meter(node: 1)
        guard after1.vipConns - before1.vipConns == 20, after1.vipPackets - before1.vipPackets >= 20 * 4 else {
            throw Failure(
                "node1 counted \(after1.vipConns - before1.vipConns) VIP connections and \(after1.vipPackets - before1.vipPackets) packets for 20 requests"
            )
        }
        let before2 = try meter(node: 2)
        let got = try lab.spread(from: lab.clientNamespace, url: "http://\(lab.underlayAddress(2)):8000/", count: 15)
        guard got["failed"] == nil else { throw Failure("to node2:8000: \(got)") }
        let after2 = try meter(node: 2)
        guard after2.portConns - before2.portConns == 15, after2.vipConns == before2.vipConns else {
            throw Failure(
                "node2 counted \(after2.portConns - before2.portConns) published connections for 15 (VIP \(before2.vipConns) → \(after2.vipConns))"
            )
        }
    }
}
