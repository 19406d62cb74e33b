import ArgumentParser
import Foundation
import MeshDataplane
import MeshKernel
import MeshTestbed

/// A three-node cluster in network namespaces on this machine, driven by `meshd dataplane apply`
/// per node: an overlay network, a `whoami` service with three replicas behind a VIP, published on
/// port 8000 of every node; curl and ping prove it. Removed at the end unless --keep.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Three nodes in network namespaces, an overlay, a whoami service with three replicas published on 8000 of every node.",
        discussion: "With --keep the cluster stays (inspect it with `ip netns`, `nft list ruleset`, `meshd dataplane show`); `meshd demo --down` removes it.")

    @Flag(help: "Leave the cluster running; `meshd demo --down` removes it.") var keep = false
    @Flag(help: "Remove a cluster left by --keep.") var down = false
    @Option(help: "Load balancer: nftables or ipvs (ipvs needs a kernel with IPVS).") var lb = "nftables"

    static let record = "/run/meshd-demo.json"
    struct Kept: Codable { var namespaces: [String]; var sandboxPrefixes: [String]; var pids: [Int32]; var stateDirectory: String }

    static let demo = OverlayNetwork(id: "demo", name: "demo", vni: 4097, subnet: IPPrefix("10.10.0.0/24")!, gateway: IPAddress("10.10.0.1")!)
    static let vip = IPAddress("10.10.0.2")!

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the demo creates network namespaces: run it as root") }
        if down { return try Self.tearDown() }
        if FileManager.default.fileExists(atPath: Self.record) {
            throw ValidationError("a kept demo cluster exists: remove it first with `meshd demo --down`")
        }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        print("building: an underlay bridge (198.18.0.0/24), nodes 1-3 at 198.18.0.1-3, a client at 198.18.0.100 …")
        let lab = try await DataplaneLab.build(tag: "meshd-demo", nodes: 3, meshd: me)
        var kept = false
        defer { if !kept { lab.destroy() } }

        // whoami ×3 on nodes 2 and 3; a plain task on node 1 to act as an east-west client.
        func task(_ id: String, _ service: String?, node: Int, _ host: Int) -> DataplaneLab.TaskSpec {
            .init(id: id, service: service, node: node,
                  addresses: [("demo", IPAddress("10.10.0.\(host)")!)] + (service == nil ? [] : [("ingress", IPAddress("10.255.0.\(host)")!)]))
        }
        var tasks = [task("client", nil, node: 1, 10), task("whoami1", "whoami", node: 2, 11),
                     task("whoami2", "whoami", node: 3, 12), task("whoami3", "whoami", node: 3, 13)]
        let service = DataplaneLab.ServiceDef(id: "whoami", name: "whoami", vips: [.init(network: "demo", address: Self.vip)],
                                              ports: [.init(published: 8000, target: 8000)])
        for t in tasks { try await lab.createTask(t.id) }
        print("applying each node's state with `meshd dataplane apply --lb \(lb)` …")
        let changes = try lab.applyAll(lab.states(networks: [Self.demo], tasks: tasks, services: [service]), lb: lb)
        for (i, c) in changes.enumerated() {
            print("  node\(i + 1) (\(lab.nodeID(i + 1))): \(c.count) kernel changes, sandboxes \(lab.sandboxes(i + 1).joined(separator: ", "))")
        }
        for t in tasks where t.service != nil { try lab.startWhoami(task: t.id, name: t.id) }

        print("\npublished port 8000 answers on every node (node 1 runs no replica), 9 requests each from the client:")
        for n in 1...3 {
            let spread = try lab.spread(from: lab.clientNamespace, url: "http://\(lab.underlayAddress(n)):8000/", count: 9)
            print("  curl \(lab.underlayAddress(n)):8000  →  " + Self.describe(spread))
        }
        let local = try Exec.run(["ip", "netns", "exec", lab.nodeNamespace(1), "curl", "-s", "--max-time", "2", "http://127.0.0.1:8000/"])
        print("  curl 127.0.0.1:8000 on node 1  →  \(local.stdout.split(separator: "\n").first ?? "no answer")")

        print("\neast-west: the task on node 1 calls the VIP \(Self.vip):8000 (whoami sees the caller's own address, no SNAT):")
        let answer = try lab.get(from: lab.taskNamespace("client"), url: "http://\(Self.vip):8000/")
        for line in answer.split(separator: "\n").prefix(3) { print("  \(line)") }
        let ping = try Exec.run(["ip", "netns", "exec", lab.taskNamespace("client"), "ping", "-c", "1", "-W", "2", Self.vip.description])
        print("  ping \(Self.vip): \(ping.succeeded ? "answers" : "no answer")")

        print("\nscale to 2 replicas: whoami3 leaves the state; one apply per node …")
        tasks.removeAll { $0.id == "whoami3" }
        let scaled = try lab.applyAll(lab.states(networks: [Self.demo], tasks: tasks, services: [service]), lb: lb)
        print("  changes: " + scaled.enumerated().map { "node\($0.offset + 1) \($0.element.count)" }.joined(separator: ", "))
        let after = try lab.spread(from: lab.clientNamespace, url: "http://\(lab.underlayAddress(1)):8000/", count: 9)
        print("  curl \(lab.underlayAddress(1)):8000  →  " + Self.describe(after))

        print("\nwhat meshd made on node 1 (`meshd dataplane show --node \(lab.nodeID(1)) --netns \(lab.nodeNamespace(1))`):")
        let show = try Exec.run([me, "dataplane", "show", "--node", lab.nodeID(1), "--netns", lab.nodeNamespace(1)])
        for line in show.stdout.split(separator: "\n") { print("  \(line)") }

        if keep {
            let namespaces = NetworkNamespace.list().filter { $0.hasPrefix(lab.group.prefix + "-") }
            let pids = try Exec.run(["sh", "-c", "for ns in \(namespaces.joined(separator: " ")); do ip netns pids $ns; done"])
                .stdout.split(separator: "\n").compactMap { Int32($0) }
            let record = Kept(namespaces: namespaces, sandboxPrefixes: lab.nodeIDs.map { Naming(nodeID: $0).sandboxPrefix }, pids: pids,
                              stateDirectory: lab.stateDirectory)
            try JSONEncoder().encode(record).write(to: URL(fileURLWithPath: Self.record))
            kept = true
            print("""

            kept. Try:
              ip netns exec \(lab.clientNamespace) curl -s 198.18.0.2:8000
              ip netns exec \(lab.sandboxes(1).first ?? "meshd-…") nft list ruleset
              meshd dataplane show --node \(lab.nodeID(2)) --netns \(lab.nodeNamespace(2))
            state files: \(lab.stateDirectory) (edit one and run `meshd dataplane apply --state FILE`)
            remove it all: meshd demo --down
            """)
        } else {
            print("\nremoving everything (run with --keep to explore) …")
        }
    }

    static func describe(_ spread: [String: Int]) -> String {
        spread.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
    }

    /// Ends the processes the kept demo started (by the pids it recorded) and removes its namespaces.
    static func tearDown() throws {
        guard let data = FileManager.default.contents(atPath: record), let kept = try? JSONDecoder().decode(Kept.self, from: data) else {
            print("no kept demo cluster (\(record) is absent)")
            return
        }
        for pid in kept.pids { kill(pid, SIGKILL) }
        for name in NetworkNamespace.list() where kept.sandboxPrefixes.contains(where: name.hasPrefix) || kept.namespaces.contains(name) {
            try? NetworkNamespace.delete(named: name)
        }
        try? FileManager.default.removeItem(atPath: kept.stateDirectory)
        try? FileManager.default.removeItem(atPath: record)
        print("removed \(kept.namespaces.count) namespaces, their sandboxes and \(kept.pids.count) processes")
    }
}
