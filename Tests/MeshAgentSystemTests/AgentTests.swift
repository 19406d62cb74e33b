import Foundation
import MeshAgent
import MeshControl
import MeshDataplane
import MeshDNS
import MeshKernel
import MeshRuntime
import MeshTestbed
import NIOPosix
import Testing

/// One node, real processes: the agent starts whoami tasks in their own namespaces, attaches
/// them to an overlay and the ingress network, serves their DNS, publishes port 8000; a client
/// on the underlay and a task on the overlay reach them; a scale-down drains and stops one.
@Suite(.serialized) struct AgentTests {
    final class Node: Sendable {
        let group = NamespaceGroup(tag: "mkt-agent")
        let id: String
        let dataRoot: String
        init() {
            // Unique per node, not per process: suites run in parallel and sandbox names carry the id.
            id = "mktag\(getpid() % 100_000)x\(group.prefix.split(separator: "-").last!)"
            dataRoot = FileManager.default.temporaryDirectory.appendingPathComponent("\(group.prefix)-data").path
        }
        var nodeNS: String { group.name("node") }
        var clientNS: String { group.name("client") }
        func destroy() {
            for name in NetworkNamespace.list() where name.hasPrefix("meshd-\(id)-") || name.hasPrefix("mtask-\(id)-") {
                try? NetworkNamespace.delete(named: name)
            }
            group.destroy()
            try? FileManager.default.removeItem(atPath: dataRoot)
            // Even when a test stopped before its tasks were removed.
            for dir in (try? FileManager.default.contentsOfDirectory(atPath: "/etc/netns")) ?? [] where dir.hasPrefix("mtask-\(id)-") {
                try? FileManager.default.removeItem(atPath: "/etc/netns/\(dir)")
            }
        }
    }

    static let demo = OverlayNetwork(
        id: "demo", name: "demo", vni: 5011, subnet: IPPrefix("10.11.0.0/24")!, gateway: IPAddress("10.11.0.1")!)
    static let ingress = OverlayNetwork(
        id: "ingress", name: "ingress", vni: 4096, subnet: IPPrefix("10.255.9.0/24")!,
        gateway: IPAddress("10.255.9.1")!, ingress: true)

    static func web(_ n: Int) -> NodeAssignment.LocalTask {
        .init(
            id: "web\(n)task", name: "web.\(n).web\(n)task", service: "web", image: "jwilder/whoami",
            attachments: [
                .init(network: "ingress", address: IPAddress("10.255.9.\(10 + n)")!),
                .init(network: "demo", address: IPAddress("10.11.0.\(10 + n)")!),
            ])
    }
    static let probe = NodeAssignment.LocalTask(
        id: "probetask", name: "probe.1.probetask", service: "probe", image: "busybox",
        args: ["sleep", "600"], attachments: [.init(network: "demo", address: IPAddress("10.11.0.50")!)])

    static func assignment(_ node: Node, tasks: [NodeAssignment.LocalTask]) -> NodeAssignment {
        NodeAssignment(
            node: NodeIdentity(
                id: node.id, advertiseAddress: IPAddress("198.18.9.1")!, ingressAddress: IPAddress("10.255.9.201")!,
                namespace: node.nodeNS),
            networks: [ingress, demo],
            services: [
                .init(
                    id: "web", name: "web",
                    vips: [
                        .init(network: "demo", address: IPAddress("10.11.0.2")!),
                        .init(network: "ingress", address: IPAddress("10.255.9.2")!),
                    ],
                    ports: [.init(published: 8000, target: 8000)]),
                .init(id: "probe", name: "probe", mode: .dnsrr),
            ],
            tasks: tasks)
    }

    static func underlay(_ node: Node) async throws {
        let n = try node.group.create("node")
        let c = try node.group.create("client")
        let h = try NetlinkHandle(namespace: n)
        try await h.linkAdd(LinkSpec(name: "eth0", kind: .veth(peerName: "eth0", peerNamespace: c), mtu: 1500))
        try await h.apply([
            .linkSet("lo", LinkChange(up: true)), .linkSet("eth0", LinkChange(up: true)),
            .addrAdd(InterfaceAddress(device: "eth0", prefix: IPPrefix("198.18.9.1/24")!)),
        ])
        try await NetlinkHandle(namespace: c).apply([
            .linkSet("lo", LinkChange(up: true)), .linkSet("eth0", LinkChange(up: true)),
            .addrAdd(InterfaceAddress(device: "eth0", prefix: IPPrefix("198.18.9.100/24")!)),
        ])
    }

    static func inTask(_ ns: String, _ argv: [String]) throws -> String {
        try Exec.run(["ip", "netns", "exec", ns] + argv).stdout
    }

    /// One node's agent on a real underlay, its DNS and dataplane: `body` runs it; afterwards the
    /// agent is shut down, what the dataplane made removed, and nothing of the node may be left.
    static func withAgent(
        stopGrace: Duration, _ body: (Node, TaskRuntime, NodeAgent) async throws -> Void
    ) async throws {
        guard getuid() == 0 else { throw NotRootAgent() }
        let node = Node()
        defer { node.destroy() }
        try await underlay(node)
        let runtime = try TaskRuntime(nodeID: node.id, dataRoot: node.dataRoot, meshd: DataplaneLab.locateMeshd())
        let reconciler = Reconciler(lb: .nftables)
        let dns = try await DNSServer.start(.init(forwarding: .init(upstreams: [])), store: DNSRecordStore(), threads: 1)
        let agent = NodeAgent(runtime: runtime, reconciler: reconciler, dns: dns, stopGrace: stopGrace)
        try await body(node, runtime, agent)
        await agent.shutdown()
        _ = try await reconciler.apply(
            DataplaneState(node: NodeIdentity(id: node.id, advertiseAddress: IPAddress("198.18.9.1")!, namespace: node.nodeNS)))
        await dns.shutdown()
        #expect(NetworkNamespace.list().filter { $0.hasPrefix("meshd-\(node.id)-") || $0.hasPrefix("mtask-\(node.id)-") }.isEmpty)
    }

    static func until(_ what: String, _ check: () throws -> Bool) async throws {
        // Generous: a debug whoami under a loaded CI machine can take seconds to listen.
        for _ in 0..<300 {
            if try check() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what)")
    }

    @Test func tasksRunAttachedResolvedPublishedAndDrain() async throws {
        try await Self.withAgent(stopGrace: .seconds(2)) { node, runtime, agent in

            try await agent.apply(Self.assignment(node, tasks: [Self.web(1), Self.web(2), Self.probe]))
            let probeNS = runtime.namespaceName("probetask")
            #expect(await agent.status().map(\.state) == [.running, .running, .running])

            // DNS from inside a task: the VIP, and tasks.web with both replicas.
            #expect(try Self.inTask(probeNS, ["dig", "+short", "web"]).split(separator: "\n") == ["10.11.0.2"])
            #expect(Set(try Self.inTask(probeNS, ["dig", "+short", "tasks.web"]).split(separator: "\n")) == ["10.11.0.11", "10.11.0.12"])

            // East-west through the VIP: whoami sees the probe's own address.
            var seen: Set<String> = []
            try await Self.until("both replicas behind the VIP") {
                let answer = try Self.inTask(probeNS, ["curl", "-s", "--max-time", "1", "-H", "Connection: close", "http://web:8000/"])
                if let name = answer.split(separator: "\n").first { seen.insert(String(name)) }
                if !answer.isEmpty { #expect(answer.contains("RemoteAddr: 10.11.0.50:"), "\(answer)") }
                return seen == ["I'm web1task", "I'm web2task"]
            }
            // North-south through the published port, from the underlay.
            let published = try Exec.run([
                "ip", "netns", "exec", node.clientNS, "curl", "-s", "--max-time", "2", "-H", "Connection: close",
                "http://198.18.9.1:8000/", "http://198.18.9.1:8000/",
            ]).stdout
            #expect(published.contains("I'm web1task") && published.contains("I'm web2task"), "\(published)")

            // Scale down: web2 is drained, stopped and detached; only web1 answers; DNS follows.
            try await agent.apply(Self.assignment(node, tasks: [Self.web(1), Self.probe]))
            // It stops beside the agent's turn; once its process has ended it is gone.
            try await Self.until("web2 stopped and removed") { !NetworkNamespace.exists(named: runtime.namespaceName("web2task")) }
            #expect(await agent.status().first { $0.id == "web2task" }?.state == .shutdown)
            let after = try Exec.run(
                ["ip", "netns", "exec", node.clientNS, "curl", "-s", "--max-time", "2", "-H", "Connection: close"]
                    + Array(repeating: "http://198.18.9.1:8000/", count: 4)
            ).stdout
            #expect(after.components(separatedBy: "I'm web1task").count == 5, "\(after)")
            #expect(try Self.inTask(probeNS, ["dig", "+short", "tasks.web"]).split(separator: "\n") == ["10.11.0.11"])

            // An image with no mapping is rejected with the catalog's reason; the others keep running.
            var bad = Self.web(3)
            bad.image = "nginx:1.27"
            try await agent.apply(Self.assignment(node, tasks: [Self.web(1), Self.probe, bad]))
            let rejected = await agent.status().first { $0.id == "web3task" }
            #expect(rejected?.state == .rejected && rejected?.message.contains("not in this node's image catalog") == true)

            // Everything goes: tasks, then what the dataplane made.
            try await agent.apply(Self.assignment(node, tasks: []))
        }
    }

    /// A task whose process ignores SIGTERM holds only its own stop: the change that removes it
    /// starts another task at once, the stopping one reports running (drained, weight 0) until
    /// its grace ends in SIGKILL, then shutdown, and its namespace goes.
    @Test func aStopWaitingOutItsGraceHoldsUpNoOtherTask() async throws {
        let grace = Duration.seconds(4)
        try await Self.withAgent(stopGrace: grace) { node, runtime, agent in
            var stubborn = Self.web(1)
            stubborn.image = "busybox"
            stubborn.args = ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
            try await agent.apply(Self.assignment(node, tasks: [stubborn]))
            #expect(await agent.status().map(\.state) == [.running])

            let began = ContinuousClock.now
            try await agent.apply(Self.assignment(node, tasks: [Self.web(2)]))
            #expect(ContinuousClock.now - began < grace, "the new task waited for the old one's stop")
            let during = await agent.status()
            #expect(during.first { $0.id == "web2task" }?.state == .running)
            #expect(during.first { $0.id == "web1task" }.map { [$0.state.rawValue, $0.message] } == ["running", "stopping"])
            // The new task serves through the published port while the old one still stops.
            let answer = try Exec.run([
                "ip", "netns", "exec", node.clientNS, "curl", "-s", "--max-time", "2", "-H", "Connection: close", "http://198.18.9.1:8000/",
            ]).stdout
            #expect(answer.contains("I'm web2task"), "\(answer)")
            #expect(NetworkNamespace.exists(named: runtime.namespaceName("web1task")))

            try await Self.until("web1 killed after its grace and removed") {
                !NetworkNamespace.exists(named: runtime.namespaceName("web1task"))
            }
            #expect(ContinuousClock.now - began >= grace)
            #expect(await agent.status().first { $0.id == "web1task" }?.state == .shutdown)
            // Its backends left every balancer of the node (the node's and its networks' sandboxes); web2's stay.
            var nft = ""
            for ns in [node.nodeNS] + NetworkNamespace.list().filter({ $0.hasPrefix("meshd-\(node.id)-") }) {
                nft += try Exec.run(["ip", "netns", "exec", ns, "nft", "list", "ruleset"]).stdout
            }
            #expect(nft.contains("10.255.9.12"), "\(nft)")
            #expect(!nft.contains("10.11.0.11") && !nft.contains("10.255.9.11"), "\(nft)")

            // A leave (an empty assignment, then the shutdown) gives a stop its whole grace too: the
            // shutdown waits for the stop under way rather than cutting it to the removes' 2 s.
            var again = stubborn
            again.id = "web3task"
            again.name = "web.3.web3task"
            try await agent.apply(Self.assignment(node, tasks: [again]))
            try await agent.apply(Self.assignment(node, tasks: []))
            let leaving = ContinuousClock.now
            await agent.shutdown()
            #expect(ContinuousClock.now - leaving >= grace - .seconds(1), "the stop was cut short: \(ContinuousClock.now - leaving)")
        }
    }

    /// A task that ended keeps its record and output (what `docker ps -a`, `docker logs` and
    /// `service logs` read) while the manager's history has it, without its namespace; once the
    /// history drops it, nothing of it is left.
    @Test func anEndedTaskIsKeptWhileInTheHistory() async throws {
        try await Self.withAgent(stopGrace: .seconds(2)) { node, runtime, agent in
            var echo = Self.web(1)
            echo.image = "busybox"
            echo.args = ["echo", "hello from web1"]
            try await agent.apply(Self.assignment(node, tasks: [echo]))
            for _ in 0..<100 where await agent.status().first?.state != .complete { try await Task.sleep(for: .milliseconds(50)) }
            #expect(await agent.status().first?.state == .complete)

            // The manager reports it ended (desired shutdown), then moves it to the history. A task
            // taken back before it ever started here reports shutdown all the same, once.
            echo.desired = .shutdown
            var never = Self.web(2)
            never.desired = .shutdown
            try await agent.apply(Self.assignment(node, tasks: [echo, never]))
            #expect(await agent.status().first { $0.id == never.id }?.state == .shutdown)
            #expect(!NetworkNamespace.exists(named: runtime.namespaceName(never.id)))
            var history = Self.assignment(node, tasks: [])
            history.retained = [echo.id]
            try await agent.apply(history)
            try await Self.until("web1 retired") { !NetworkNamespace.exists(named: runtime.namespaceName(echo.id)) }
            try await Task.sleep(for: .milliseconds(200))
            #expect(await runtime.task(echo.id) != nil)
            #expect(await agent.status().first { $0.id == never.id } == nil, "reported once the manager dropped it")
            #expect(await runtime.log(echo.id).contains("hello from web1"))
            #expect(!NetworkNamespace.exists(named: runtime.namespaceName(echo.id)))

            // Pruned from the history: gone.
            try await agent.apply(Self.assignment(node, tasks: []))
            #expect(await runtime.task(echo.id) == nil)
            #expect(await runtime.log(echo.id).isEmpty)

        }
    }
}

struct NotRootAgent: Error, CustomStringConvertible { var description: String { "agent tests run tasks in namespaces: run as root" } }
