import ArgumentParser
import Foundation
import MeshAgent
import MeshControl
import MeshDataplane
import MeshDNS
import MeshGossip
import MeshKernel
import MeshRuntime
import MeshTestbed

/// The agent's gossip path on one node carrying N services: another node publishes one task of a
/// service over real gossip (127.0.0.1), and the time runs until the agent's nftables commit for it
/// has returned (its backend element is in the kernel), through the path the session takes
/// (`EndpointDirectory.changes` → `NodeAgent.updateRemote`). Side by side, the same appearance as
/// the whole assignment would carry it (`NodeAgent.apply`, the state-diff path): the ratio says what
/// the delta path saves. Goal: < 10 ms, and 10,000 services within 1.5× of 100.
struct AgentBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Agent: a remote task appearing in gossip until its backend is in the kernel, at 100 vs 10,000 services.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Service counts.") var sizes = "100,10000"
    @Option(help: "Timed appearances per figure.") var samples = 41

    static let network = ApplyBench.network
    /// Backend j of service i: 8 per service in 10.72.0.0/13 (the bulk network's upper half).
    static func backend(_ i: Int, _ j: Int) -> IPAddress { .v4(0x0A48_0000 + UInt32(8 * i + j)) }
    /// The service of sample k: spread over the services, never one already at 5 backends.
    static func target(_ k: Int, _ n: Int) -> Int {
        let s = (k * 7919) % n
        return s % 5 == 4 ? s - 1 : s
    }

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates network namespaces: run it as root") }
        let counts = options.quick ? [20, 200] : sizes.split(separator: ",").compactMap { Int($0) }
        let timed = options.quick ? 5 : samples
        print("agent: one node namespace, NodeAgent + EndpointDirectory over gossip on 127.0.0.1, nftables; \(timed) samples per figure")
        var delta: [Int: Double] = [:], full: [Int: Double] = [:]
        for n in counts {
            let (d, f) = try await measure(services: n, samples: timed)
            delta[n] = d
            full[n] = f
            print(
                String(
                    format: "  %6d services: gossip delta %.2f ms   whole assignment %.2f ms   (delta/whole %.3f)",
                    n, d * 1000, f * 1000, d / max(f, 1e-9)))
        }
        guard let small = counts.first, let large = counts.last, let a = delta[small], let b = delta[large] else { return }
        print(
            String(
                format: "agent gossip path: %d vs %d services = %.2f× (goal ≤ 1.5×), %.2f ms at %d (goal < 10 ms)",
                large, small, b / max(a, 1e-9), b * 1000, large))
        var out = BenchResults("agent", quick: options.quick, ["ratio": b / max(a, 1e-9), "samples": timed])
        for n in counts {
            out["delta_\(n)"] = delta[n]
            out["full_\(n)"] = full[n]
            out.metric("\(n) services: gossip delta → kernel", delta[n]! * 1e3, "ms", goal: "<", 10)
            out.metric("\(n) services: whole assignment → kernel", full[n]! * 1e3, "ms")
        }
        out.metric("gossip delta \(large) vs \(small) services", b / max(a, 1e-9), "×", goal: "<=", 1.5)
        try out.write(to: options.json)
    }

    func measure(services n: Int, samples: Int) async throws -> (delta: Double, full: Double) {
        let lab = try await DataplaneLab.build(tag: "meshbench", nodes: 1)
        defer { lab.destroy() }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("\(lab.group.prefix)-agent").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let node = lab.emptyState(1).node
        let runtime = try TaskRuntime(nodeID: node.id, dataRoot: root, meshd: lab.meshd)
        let reconciler = Reconciler(lb: .nftables)
        let dns = try await DNSServer.start(.init(forwarding: .init(upstreams: [])), store: DNSRecordStore(), threads: 1)
        let agent = NodeAgent(runtime: runtime, reconciler: reconciler, dns: dns, stopGrace: .seconds(1))
        // Services of 1 to 5 backends (tasks on a node "peer0"), as a real cluster has them: a
        // service's new backend then lands in a slot-count chain that exists already. (The first
        // service ever to reach a slot count makes its chain, which the kernel validates against
        // the whole table: that one change costs the table, once per count.)
        let base = (0..<n).flatMap { i in
            (0..<(i % 5 + 1)).map { j in
                NodeAssignment.RemoteTask(
                    id: "base\(i)x\(j)", name: "s\(i).\(j).base\(i)x\(j)", service: "s\(i)", nodeID: "peer0",
                    nodeAddress: IPAddress("198.18.0.3")!,
                    attachments: [.init(network: Self.network.id, address: Self.backend(i, j))])
            }
        }
        var assignment = NodeAssignment(
            node: node, networks: [Self.network],
            services: (0..<n).map { i in
                NodeAssignment.Service(id: "s\(i)", name: "s\(i)", vips: [.init(network: Self.network.id, address: ApplyBench.vip(i))])
            }, remoteTasks: base)
        try await agent.apply(assignment)

        // This node's directory and another node's, over real gossip.
        let port = UInt16.random(in: 41_000...50_000)
        func gossipAgent(_ name: String, _ port: UInt16) throws -> GossipAgent {
            try GossipAgent(
                name: name, transport: TransportConfig(bindHost: "127.0.0.1", port: port), config: GossipConfig(),
                envelope: Envelope(label: "agent-bench", keyring: try Keyring(keys: [[UInt8](repeating: 7, count: 32)])),
                incarnation: 1, seed: UInt64(port))
        }
        let gossip = try gossipAgent(node.id, port), peerGossip = try gossipAgent("peer", port + 1)
        try await gossip.start()
        try await peerGossip.start()
        defer {
            Task {
                await gossip.shutdown()
                await peerGossip.shutdown()
            }
        }
        await peerGossip.join(seeds: [PeerAddress("127.0.0.1", port: port)!])
        let directory = EndpointDirectory(gossip: gossip, nodeID: node.id, nodeAddress: node.advertiseAddress)
        let peer = EndpointDirectory(gossip: peerGossip, nodeID: "peer", nodeAddress: IPAddress("198.18.0.2")!)
        try await directory.watch(Self.network.id)
        try await peer.watch(Self.network.id)

        // The session's delta path, reporting each applied task id with when its apply returned.
        let (applied, tell) = AsyncStream.makeStream(of: (Set<String>, ContinuousClock.Instant).self)
        let follower = Task {
            for await change in await directory.changes() {
                let t0 = ContinuousClock.now
                _ = try? await agent.updateRemote(change)
                if ProcessInfo.processInfo.environment["AGENT_BENCH_TRACE"] != nil { print("updateRemote \(ContinuousClock.now - t0)") }
                tell.yield((Set(change.keys), ContinuousClock.now))
            }
        }
        defer { follower.cancel() }
        var it = applied.makeAsyncIterator()
        func until(_ id: String) async throws -> ContinuousClock.Instant {
            while let (ids, at) = await it.next() { if ids.contains(id) { return at } }
            throw ValidationError("the agent stopped")
        }

        var deltas: [Double] = [], wholes: [Double] = []
        for k in 0..<samples {
            let s = Self.target(k, n)
            let id = "bench\(k)"
            let task = NodeAssignment.LocalTask(
                id: id, name: "s\(s).1.\(id)", service: "s\(s)", image: "busybox",
                attachments: [.init(network: Self.network.id, address: Self.backend(s, 7))])
            let start = ContinuousClock.now
            try await peer.publish([task])
            deltas.append(seconds(try await until(id) - start))
            try await peer.publish([])
            _ = try await until(id)
        }
        // What the kernel holds, read once: the last delta's backend went in and came out again.
        let last = Self.backend(Self.target(samples - 1, n), 7)
        let vip = ApplyBench.vip(Self.target(samples - 1, n))
        let sandbox = lab.nodeNamespace(1)
        let backends = try await ConvergeBench.backends(node.id, sandbox, vip: vip)
        guard !backends.contains(last) else { throw ValidationError("a removed backend \(last) is still in the kernel") }

        // Side by side: the same appearance carried by a whole assignment.
        follower.cancel()
        for k in 0..<samples {
            let s = Self.target(k, n)
            let remote = NodeAssignment.RemoteTask(
                id: "whole\(k)", name: "s\(s).1.whole\(k)", service: "s\(s)", nodeID: "peer",
                nodeAddress: IPAddress("198.18.0.2")!,
                attachments: [.init(network: Self.network.id, address: Self.backend(s, 7))])
            assignment.remoteTasks = base + [remote]
            wholes.append(seconds(try await ContinuousClock().measure { try await agent.apply(assignment) }))
            let present = try await ConvergeBench.backends(node.id, sandbox, vip: ApplyBench.vip(s))
            guard present.contains(Self.backend(s, 7)) else {
                throw ValidationError("the whole-assignment path did not program \(remote.id)")
            }
            assignment.remoteTasks = base
            try await agent.apply(assignment)
        }
        await agent.shutdown()
        await dns.shutdown()
        return (median(deltas), median(wholes))
    }
}
