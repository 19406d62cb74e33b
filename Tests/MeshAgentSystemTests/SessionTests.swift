import Foundation
import MeshAgent
import MeshControl
import MeshDataplane
import MeshDNS
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
        one.tasks = [.init(id: "sleep1task", name: "sleeper.1.sleep1task", service: "sleeper", image: "busybox", args: ["sleep", "600"],
                           attachments: [.init(network: "demo", address: IPAddress("10.11.0.30")!)])]
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
                done.yield(([], "no hello")); return
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
        let connection = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: pki.caPEM,
                                                         identity: try pki.issue(node.id))
        let nodeSide = Task { try await session.run(connection) }

        var seen: [[TaskReport]] = []
        var peer: String?
        for await (reports, name) in results { seen = reports; peer = name; break }
        #expect(peer == node.id)
        #expect(seen.contains { $0 == [TaskReport(id: "sleep1task", state: .running, message: "started")] })
        #expect(seen.last?.map(\.state) == [.shutdown])
        await server.close()
        _ = try? await nodeSide.value
        await agent.shutdown()
        _ = try await reconciler.apply(DataplaneState(node: NodeIdentity(id: node.id, advertiseAddress: IPAddress("198.18.9.1")!,
                                                                         namespace: node.nodeNS)))
        await dns.shutdown()
    }
}
