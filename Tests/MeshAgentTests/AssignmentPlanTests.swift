import MeshControl
import MeshDataplane
import MeshDNS
import MeshKernel
import Testing
@testable import MeshAgent

/// What a node's assignment puts in its resolvers.
@Suite struct AssignmentPlanTests {
    /// A stack service `demo_web` with the alias `web` (as `stack deploy` sends it): its local and remote
    /// tasks answer `tasks.web` as well as `tasks.demo_web`.
    @Test func tasksCarryTheirServicesAliasesIntoDNS() throws {
        let front = OverlayNetwork(
            id: "n1", name: "demo_front", vni: 4097, subnet: IPPrefix("10.0.1.0/24")!, gateway: IPAddress("10.0.1.1")!)
        let local = IPAddress("10.0.1.5")!, remote = IPAddress("10.0.1.6")!
        let a = NodeAssignment(
            node: NodeIdentity(id: "node1", advertiseAddress: IPAddress("192.168.60.1")!),
            networks: [front],
            services: [
                NodeAssignment.Service(
                    id: "s1", name: "demo_web", vips: [.init(network: "n1", address: IPAddress("10.0.1.2")!)],
                    aliases: ["web"]),
                NodeAssignment.Service(id: "s2", name: "demo_db"),
            ],
            tasks: [
                NodeAssignment.LocalTask(
                    id: "t1", name: "demo_web.1.t1", service: "s1", image: "x",
                    attachments: [.init(network: "n1", address: local)]),
                NodeAssignment.LocalTask(
                    id: "t3", name: "demo_db.1.t3", service: "s2", image: "x",
                    attachments: [.init(network: "n1", address: IPAddress("10.0.1.7")!)]),
            ],
            remoteTasks: [
                NodeAssignment.RemoteTask(
                    id: "t2", name: "demo_web.2.t2", service: "s1", nodeID: "node2",
                    nodeAddress: IPAddress("192.168.60.2")!, attachments: [.init(network: "n1", address: remote)])
            ])
        let plan = AssignmentPlan.dns(a)
        #expect(plan.tasks.first { $0.id == "t1" }?.serviceAliases == ["web"])
        #expect(plan.tasks.first { $0.id == "t2" }?.serviceAliases == ["web"])
        #expect(plan.tasks.first { $0.id == "t3" }?.serviceAliases == [])

        var index = DNSRecordIndex()
        for n in plan.networks { index.upsert(n) }
        for s in plan.services { index.upsert(s) }
        for t in plan.tasks { index.upsert(t) }
        #expect(Set(index.addresses(for: DNSName("tasks.web")!, networks: ["n1"]) ?? []) == [local, remote])
        #expect(Set(index.addresses(for: DNSName("tasks.demo_web")!, networks: ["n1"]) ?? []) == [local, remote])
        #expect(index.addresses(for: DNSName("tasks.demo_db")!, networks: ["n1"]) == [IPAddress("10.0.1.7")!])

        // A remote task that arrives over gossip (NodeAgent.updateRemote) gets the record the full path
        // gives it, aliases included: an upsert without them would drop its tasks.<alias> name.
        let delta = AssignmentPlan.dnsTask(a.remoteTasks[0], service: a.services[0], ingress: nil)
        #expect(delta == plan.tasks.first { $0.id == "t2" })
    }
}
