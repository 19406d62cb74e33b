import Foundation
import MeshControl
import MeshGossip
import MeshKernel
import Synchronization
import Testing
@testable import MeshAgent

/// Two nodes' directories over real gossip on 127.0.0.1 (no root, no routes): publish, drain,
/// and a crashed node's tasks disappearing from the other's view.
@Suite struct EndpointDirectoryTests {
    static func agent(_ name: String, _ port: UInt16) throws -> GossipAgent {
        try GossipAgent(
            name: name, transport: TransportConfig(bindHost: "127.0.0.1", port: port),
            config: GossipConfig().scaled(by: 10),
            envelope: Envelope(label: "dir", keyring: try Keyring(keys: [[UInt8](repeating: 7, count: 32)])),
            incarnation: 1, seed: UInt64(port))
    }

    static func until(_ what: String, seconds: Double = 10, _ check: () async -> Bool) async -> Duration {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .milliseconds(Int64(seconds * 1000)) {
            if await check() { return ContinuousClock.now - start }
            try? await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting for \(what)")
        return .seconds(seconds)
    }

    @Test func publishDrainAndCrash() async throws {
        let base = UInt16.random(in: 41_000...50_000)
        let ga = try Self.agent("n1", base), gb = try Self.agent("n2", base + 1)
        try await ga.start()
        try await gb.start()
        let a = EndpointDirectory(gossip: ga, nodeID: "n1", nodeAddress: IPAddress("198.18.0.1")!)
        let b = EndpointDirectory(gossip: gb, nodeID: "n2", nodeAddress: IPAddress("198.18.0.2")!)
        try await b.watch("demo")
        await gb.join(seeds: [PeerAddress("127.0.0.1", port: base)!])

        let web1 = NodeAssignment.LocalTask(
            id: "t1", name: "web.1.t1", service: "web", image: "jwilder/whoami",
            attachments: [
                .init(network: "demo", address: IPAddress("10.0.1.5")!),
                .init(network: "ingress", address: IPAddress("10.0.0.5")!),
            ])
        try await a.publish([web1])
        try await b.watch("ingress")
        _ = await Self.until("b sees t1 on both networks") { await b.remoteTasks().first?.attachments.count == 2 }
        let seen = await b.remoteTasks()
        #expect(seen.count == 1 && seen[0].nodeID == "n1" && seen[0].nodeAddress == IPAddress("198.18.0.1") && seen[0].serving)
        #expect(Set(seen[0].attachments.map(\.address)) == [IPAddress("10.0.1.5")!, IPAddress("10.0.0.5")!])
        // Its own entries are not "remote" to a.
        #expect(await a.remoteTasks().isEmpty)

        try await a.publish([web1], draining: ["t1"])
        _ = await Self.until("b sees t1 draining") { await b.remoteTasks().first?.serving == false }

        // n1 dies without leaving: its tasks go from b's view within the failure-detection time.
        await ga.shutdown()
        let took = await Self.until("n1's tasks gone", seconds: 15) { await b.remoteTasks().isEmpty }
        #expect(took < .seconds(15))
        await a.stop()
        await b.stop()
        await gb.shutdown()
    }
}
