import Foundation
import MeshAgent
import MeshControl
import MeshDataplane
import MeshDNS
import MeshGossip
import MeshKernel
import MeshRuntime
import MeshTestbed
import Testing

/// A node's session against a manager played by the test over real mutual TLS: the node says
/// hello with its certificate's name, runs what it is assigned, and reports the states.
@Suite(.serialized) struct SessionTests {
    static func base(_ node: AgentTests.Node) -> NodeAssignment {
        var base = AgentTests.assignment(node, tasks: [])
        base.services = [.init(id: "sleeper", name: "sleeper", mode: .dnsrr)]
        return base
    }
    static func one(_ node: AgentTests.Node) -> NodeAssignment {
        var one = base(node)
        one.tasks = [
            .init(
                id: "sleep1task", name: "sleeper.1.sleep1task", service: "sleeper", image: "busybox", args: ["sleep", "600"],
                attachments: [.init(network: "demo", address: IPAddress("10.11.0.30")!)])
        ]
        return one
    }

    @Test func assignmentsRunAndStatesComeBack() async throws {
        guard getuid() == 0 else { throw NotRootAgent() }
        let node = AgentTests.Node()
        defer { node.destroy() }
        try await AgentTests.underlay(node)
        let pki = try TestPKI()
        // The manager's side: hello, one task, then none; it records what the node reported.
        let (results, done) = AsyncStream.makeStream(of: ([[TaskReport]], String?).self)
        let base = Self.base(node), one = Self.one(node)
        let server = try await ControlServer.start(host: "127.0.0.1", port: 0, identity: try pki.issue("manager"), caPEM: pki.caPEM) {
            peer, inbound, writer in
            var seen: [[TaskReport]] = []
            var it = inbound.makeAsyncIterator()
            guard try await inbound.next(ControlMessage.self, iterator: &it) == .hello(nodeID: node.id) else {
                done.yield(([], "no hello"))
                return
            }
            let name = await peer.commonName()
            try await writer.send(json: ControlMessage.assignment(one))
            while let m = try await inbound.next(ControlMessage.self, iterator: &it) {
                guard case .status(let reports) = m else { continue }
                seen.append(reports)
                if reports.map(\.state) == [.running] { try await writer.send(json: ControlMessage.assignment(base)) }
                if reports.map(\.state) == [.shutdown] { break }
            }
            done.yield((seen, name))
        }

        let runtime = try TaskRuntime(nodeID: node.id, dataRoot: node.dataRoot, meshd: DataplaneLab.locateMeshd())
        let reconciler = Reconciler(lb: .nftables)
        let dns = try await DNSServer.start(.init(forwarding: .init(upstreams: [])), store: DNSRecordStore(), threads: 1)
        let agent = NodeAgent(runtime: runtime, reconciler: reconciler, dns: dns, stopGrace: .seconds(1))
        let session = AgentSession(nodeID: node.id, agent: agent, directory: nil, statusInterval: .milliseconds(100))
        let connection = try await ControlClient.connect(
            host: "127.0.0.1", port: server.port, caPEM: pki.caPEM,
            identity: try pki.issue(node.id))
        let nodeSide = Task { try await session.run(connection) }

        var seen: [[TaskReport]] = []
        var peer: String?
        for await (reports, name) in results {
            seen = reports
            peer = name
            break
        }
        #expect(peer == node.id)
        #expect(seen.contains { $0 == [TaskReport(id: "sleep1task", state: .running, message: "started")] })
        #expect(seen.last?.map(\.state) == [.shutdown])
        await server.close()
        _ = try? await nodeSide.value
        await agent.shutdown()
        _ = try await reconciler.apply(
            DataplaneState(
                node: NodeIdentity(
                    id: node.id, advertiseAddress: IPAddress("198.18.9.1")!,
                    namespace: node.nodeNS)))
        await dns.shutdown()
    }

    /// An assignment that arrives while the session waits out a drain must win: the waiting pass
    /// used to wake and apply its older assignment, which stopped the task just started.
    @Test func aNewerAssignmentDuringADrainIsNotUndone() async throws {
        guard getuid() == 0 else { throw NotRootAgent() }
        let node = AgentTests.Node()
        defer { node.destroy() }
        try await AgentTests.underlay(node)
        let pki = try TestPKI()
        let base = Self.base(node), one = Self.one(node)
        let two = {
            var a = base
            a.tasks = [
                .init(
                    id: "sleep2task", name: "sleeper.2.sleep2task", service: "sleeper", image: "busybox", args: ["sleep", "600"],
                    attachments: [.init(network: "demo", address: IPAddress("10.11.0.31")!)])
            ]
            return a
        }()
        // This node's directory and another node's, over gossip on 127.0.0.1.
        let port = UInt16.random(in: 41_000...50_000)
        func gossipAgent(_ name: String, _ port: UInt16) throws -> GossipAgent {
            try GossipAgent(
                name: name, transport: TransportConfig(bindHost: "127.0.0.1", port: port),
                config: GossipConfig().scaled(by: 10),
                envelope: Envelope(label: "session", keyring: try Keyring(keys: [[UInt8](repeating: 9, count: 32)])),
                incarnation: 1, seed: UInt64(port))
        }
        let gossip = try gossipAgent(node.id, port), peerGossip = try gossipAgent("peer", port + 1)
        try await gossip.start()
        try await peerGossip.start()
        await peerGossip.join(seeds: [PeerAddress("127.0.0.1", port: port)!])
        let directory = EndpointDirectory(gossip: gossip, nodeID: node.id, nodeAddress: IPAddress("198.18.9.1")!)
        let peer = EndpointDirectory(gossip: peerGossip, nodeID: "peer", nodeAddress: IPAddress("198.18.9.2")!)
        let peerTask = NodeAssignment.LocalTask(
            id: "remote1task", name: "sleeper.3.remote1task", service: "sleeper", image: "busybox",
            attachments: [.init(network: "demo", address: IPAddress("10.11.0.40")!)])

        let (results, done) = AsyncStream.makeStream(of: [[TaskReport]].self)
        let server = try await ControlServer.start(host: "127.0.0.1", port: 0, identity: try pki.issue("manager"), caPEM: pki.caPEM) {
            _, inbound, writer in
            var seen: [[TaskReport]] = []
            var it = inbound.makeAsyncIterator()
            guard try await inbound.next(ControlMessage.self, iterator: &it) == .hello(nodeID: node.id) else {
                done.yield([])
                return
            }
            try await writer.send(json: ControlMessage.assignment(one))
            var sentTwo: ContinuousClock.Instant?
            while let m = try await inbound.next(ControlMessage.self, iterator: &it) {
                guard case .status(let reports) = m else { continue }
                seen.append(reports)
                if sentTwo == nil, reports.contains(where: { $0.id == "sleep1task" && $0.state == .running }) {
                    // Take the task away (its drain starts); mid-drain another node's task appears
                    // (a second pass, on the same assignment, starts waiting), then a newer assignment.
                    try await writer.send(json: ControlMessage.assignment(base))
                    try await Task.sleep(for: .milliseconds(500))
                    try await peer.publish([peerTask])
                    try await Task.sleep(for: .milliseconds(100))
                    try await writer.send(json: ControlMessage.assignment(two))
                    sentTwo = ContinuousClock.now
                }
                // Well past the drain delay: long enough for a stale pass to have done its damage.
                if let sentTwo, ContinuousClock.now - sentTwo > .seconds(4) { break }
            }
            done.yield(seen)
        }

        let runtime = try TaskRuntime(nodeID: node.id, dataRoot: node.dataRoot, meshd: DataplaneLab.locateMeshd())
        let reconciler = Reconciler(lb: .nftables)
        let dns = try await DNSServer.start(.init(forwarding: .init(upstreams: [])), store: DNSRecordStore(), threads: 1)
        let agent = NodeAgent(runtime: runtime, reconciler: reconciler, dns: dns, stopGrace: .seconds(1))
        let session = AgentSession(
            nodeID: node.id, agent: agent, directory: directory, statusInterval: .milliseconds(100),
            heartbeat: .milliseconds(500), drainDelay: .seconds(1))
        let connection = try await ControlClient.connect(
            host: "127.0.0.1", port: server.port, caPEM: pki.caPEM,
            identity: try pki.issue(node.id))
        let nodeSide = Task { try await session.run(connection) }

        var seen: [[TaskReport]] = []
        for await reports in results {
            seen = reports
            break
        }
        let states = seen.flatMap { $0 }.filter { $0.id == "sleep2task" }.map(\.state)
        #expect(states.contains(.running), "the newer assignment's task ran: \(seen)")
        #expect(!states.contains(.shutdown), "and was never stopped by the older assignment: \(seen)")
        #expect(seen.last?.first { $0.id == "sleep1task" }?.state == .shutdown, "the drained task stopped: \(seen)")
        await server.close()
        _ = try? await nodeSide.value
        await agent.shutdown()
        await directory.stop()
        await peer.stop()
        await gossip.shutdown()
        await peerGossip.shutdown()
        _ = try await reconciler.apply(
            DataplaneState(
                node: NodeIdentity(
                    id: node.id, advertiseAddress: IPAddress("198.18.9.1")!,
                    namespace: node.nodeNS)))
        await dns.shutdown()
    }

    /// Assignments that queue up while a pass runs are not applied one by one: the next pass takes
    /// the newest. A manager that sends eight short-lived tasks and then the one that stays used to
    /// see every short-lived one started and drained in turn (seconds each) before the last ran.
    @Test func assignmentsThatQueueDuringAPassAreSkippedForTheNewest() async throws {
        guard getuid() == 0 else { throw NotRootAgent() }
        let node = AgentTests.Node()
        defer { node.destroy() }
        try await AgentTests.underlay(node)
        let pki = try TestPKI()
        let base = Self.base(node)
        let assignments = (1...9).map { n in
            var a = base
            a.tasks = [
                .init(
                    id: "brief\(n)task", name: "sleeper.\(n).brief\(n)task", service: "sleeper", image: "busybox", args: ["sleep", "600"],
                    attachments: [.init(network: "demo", address: IPAddress("10.11.0.\(40 + n)")!)])
            ]
            return a
        }
        let (results, done) = AsyncStream.makeStream(of: (reports: [[TaskReport]], after: Duration?).self)
        let server = try await ControlServer.start(host: "127.0.0.1", port: 0, identity: try pki.issue("manager"), caPEM: pki.caPEM) {
            _, inbound, writer in
            var it = inbound.makeAsyncIterator()
            guard try await inbound.next(ControlMessage.self, iterator: &it) == .hello(nodeID: node.id) else { return }
            // Back to back, as a client that creates and removes services in a loop makes them.
            for a in assignments { try await writer.send(json: ControlMessage.assignment(a)) }
            let sent = ContinuousClock.now
            var seen: [[TaskReport]] = []
            while let m = try await inbound.next(ControlMessage.self, iterator: &it) {
                guard case .status(let reports) = m else { continue }
                seen.append(reports)
                if reports.contains(where: { $0.id == "brief9task" && $0.state == .running }) {
                    done.yield((seen, ContinuousClock.now - sent))
                    return
                }
                if ContinuousClock.now - sent > .seconds(20) { break }
            }
            done.yield((seen, nil))
        }

        let runtime = try TaskRuntime(nodeID: node.id, dataRoot: node.dataRoot, meshd: DataplaneLab.locateMeshd())
        let reconciler = Reconciler(lb: .nftables)
        let dns = try await DNSServer.start(.init(forwarding: .init(upstreams: [])), store: DNSRecordStore(), threads: 1)
        let agent = NodeAgent(runtime: runtime, reconciler: reconciler, dns: dns, stopGrace: .seconds(1))
        let session = AgentSession(
            nodeID: node.id, agent: agent, directory: nil, statusInterval: .milliseconds(100), drainDelay: .seconds(1))
        let connection = try await ControlClient.connect(
            host: "127.0.0.1", port: server.port, caPEM: pki.caPEM, identity: try pki.issue(node.id))
        let nodeSide = Task { try await session.run(connection) }

        var outcome: (reports: [[TaskReport]], after: Duration?) = ([], nil)
        for await o in results {
            outcome = o
            break
        }
        let started = Set(outcome.reports.flatMap { $0 }.filter { $0.state == .running }.map(\.id))
        #expect(outcome.after != nil, "the last assignment's task never ran: \(outcome.reports)")
        // The first pass may have begun on the first assignment; none of the queued ones ran.
        #expect(started.isSubset(of: ["brief1task", "brief9task"]), "queued assignments were applied: \(started.sorted())")
        if let after = outcome.after { #expect(after < .seconds(5), "the newest assignment waited \(after)") }
        await server.close()
        _ = try? await nodeSide.value
        await agent.shutdown()
        _ = try await reconciler.apply(
            DataplaneState(node: NodeIdentity(id: node.id, advertiseAddress: IPAddress("198.18.9.1")!, namespace: node.nodeNS)))
        await dns.shutdown()
    }
}
