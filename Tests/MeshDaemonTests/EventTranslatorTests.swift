import Foundation
import MeshAPI
import MeshCluster
import MeshDaemon
import MeshKernel
import Testing

/// Store changes → `docker events` messages, checked against what dockerd's `daemon/events.go` emits.
@Suite struct EventTranslatorTests {
    static let t = Date(timeIntervalSince1970: 1_800_000_000.25)
    static let nanos: Int64 = 1_800_000_000_250_000_000

    static func service(_ name: String = "web", image: String = "nginx:1.27", replicas: Int = 2, version: UInt64 = 5) -> ClusterService {
        var s = ClusterService(
            id: "svc1",
            spec: MeshCluster.ServiceSpec(name: name, task: MeshCluster.TaskSpec(image: image), mode: .replicated(replicas: replicas)),
            now: t)
        s.version = version
        return s
    }

    static func node(state: NodeState = .ready, availability: NodeAvailability = .active, role: NodeRole = .worker) -> ClusterNode {
        var n = ClusterNode(id: "node1", hostname: "host1", role: role, availability: availability, state: state, now: t)
        n.version = 3
        return n
    }

    static func events(_ change: StoreChange) -> [EventMessage] {
        EventTranslator.events(StoreCommit(index: 9, time: t, changes: [change]))
    }

    @Test func serviceCreateAndRemoveNameTheService() throws {
        let created = Self.events(.service(ObjectChange(action: .create, old: nil, new: Self.service(), id: "svc1", index: 5)))
        #expect(
            created == [
                EventMessage(
                    type: "service", action: "create", actor: .init(ID: "svc1", Attributes: ["name": "web"]), scope: "swarm",
                    timeNano: Self.nanos)
            ])
        #expect(created.first?.time == 1_800_000_000)
        let removed = Self.events(.service(ObjectChange(action: .remove, old: Self.service(), new: nil, id: "svc1", index: 6)))
        #expect(removed.map(\.Action) == ["remove"] && removed.first?.Actor.Attributes == ["name": "web"])
    }

    @Test func serviceUpdateReportsReplicasImageAndUpdateState() throws {
        let old = Self.service()
        var scaled = Self.service(replicas: 5, version: 6)
        var events = Self.events(.service(ObjectChange(action: .update, old: old, new: scaled, id: "svc1", index: 6)))
        #expect(events.first?.Actor.Attributes == ["name": "web", "replicas.old": "2", "replicas.new": "5"])

        var updated = Self.service(image: "nginx:1.28", version: 7)
        updated.updateStatus = MeshCluster.UpdateStatus(state: .updating)
        events = Self.events(.service(ObjectChange(action: .update, old: old, new: updated, id: "svc1", index: 7)))
        #expect(
            events.first?.Actor.Attributes == [
                "name": "web", "image.old": "nginx:1.27", "image.new": "nginx:1.28", "updatestate.new": "updating",
            ])

        var done = updated
        done.version = 8
        done.updateStatus = MeshCluster.UpdateStatus(state: .completed)
        events = Self.events(.service(ObjectChange(action: .update, old: updated, new: done, id: "svc1", index: 8)))
        #expect(events.first?.Actor.Attributes == ["name": "web", "updatestate.old": "updating", "updatestate.new": "completed"])

        // An update dockerd would report with the name only (a label, the endpoint): still an event.
        scaled = old
        scaled.version = 9
        scaled.spec.labels = ["tier": "front"]
        events = Self.events(.service(ObjectChange(action: .update, old: old, new: scaled, id: "svc1", index: 9)))
        #expect(events.map(\.Actor.Attributes) == [["name": "web"]])
    }

    @Test func aWriteThatChangesNothingIsNoEvent() throws {
        let old = Self.service()
        var same = old
        same.version = 10
        same.updatedAt = Self.t.addingTimeInterval(5)
        #expect(Self.events(.service(ObjectChange(action: .update, old: old, new: same, id: "svc1", index: 10))).isEmpty)
        // Nor does a rolling update's batch bookkeeping, which swarmkit keeps outside the service.
        var batch = old
        batch.version = 12
        batch.rollout = Rollout(kind: .update, specVersion: 2)
        batch.rollout?.inFlight = ["task9"]
        #expect(Self.events(.service(ObjectChange(action: .update, old: old, new: batch, id: "svc1", index: 12))).isEmpty)
        var node = Self.node()
        node.version = 11
        #expect(Self.events(.node(ObjectChange(action: .update, old: Self.node(), new: node, id: "node1", index: 11))).isEmpty)
    }

    @Test func nodeStateAvailabilityAndRoleChangesAreOldNewPairs() throws {
        var down = Self.node(state: .down)
        down.version = 4
        var events = Self.events(.node(ObjectChange(action: .update, old: Self.node(), new: down, id: "node1", index: 4)))
        #expect(
            events == [
                EventMessage(
                    type: "node", action: "update",
                    actor: .init(ID: "node1", Attributes: ["name": "host1", "state.old": "ready", "state.new": "down"]), scope: "swarm",
                    timeNano: Self.nanos)
            ])

        let drained = Self.node(availability: .drain)
        events = Self.events(.node(ObjectChange(action: .update, old: Self.node(), new: drained, id: "node1", index: 5)))
        #expect(events.first?.Actor.Attributes == ["name": "host1", "availability.old": "active", "availability.new": "drain"])

        let promoted = Self.node(role: .manager)
        events = Self.events(.node(ObjectChange(action: .update, old: Self.node(), new: promoted, id: "node1", index: 6)))
        #expect(events.first?.Actor.Attributes == ["name": "host1", "role.old": "worker", "role.new": "manager"])

        // A manager going down is also unreachable, as `node ls` shows it.
        let managerDown = Self.node(state: .down, role: .manager)
        events = Self.events(
            .node(ObjectChange(action: .update, old: Self.node(role: .manager), new: managerDown, id: "node1", index: 7)))
        #expect(
            events.first?.Actor.Attributes == [
                "name": "host1", "state.old": "ready", "state.new": "down", "reachability.old": "reachable",
                "reachability.new": "unreachable",
            ])

        let joined = Self.events(.node(ObjectChange(action: .create, old: nil, new: Self.node(), id: "node1", index: 3)))
        #expect(joined.map(\.Action) == ["create"] && joined.first?.Actor.Attributes == ["name": "host1"])
    }

    @Test func networksAreNamedAndTasksGiveNoEvent() throws {
        let net = ClusterNetwork(
            id: "net1", name: "demo", vni: 4097, subnet: IPPrefix("10.0.1.0/24")!, gateway: IPAddress("10.0.1.1")!, now: Self.t)
        let events = Self.events(.network(ObjectChange(action: .create, old: nil, new: net, id: "net1", index: 2)))
        #expect(events.map(\.Type) == ["network"] && events.first?.Actor.Attributes == ["name": "demo"])
        #expect(events.first?.scope == "swarm")

        let task = ClusterTask(
            id: "task1", serviceID: "svc1", slot: 1, nodeID: "node1", spec: MeshCluster.TaskSpec(image: "x"), specVersion: 1, now: Self.t)
        #expect(Self.events(.task(ObjectChange(action: .create, old: nil, new: task, id: "task1", index: 3))).isEmpty)
    }

    @Test func aCommitGivesItsEventsInWriteOrderAtTheCommitTime() throws {
        let commit = StoreCommit(
            index: 12, time: Self.t,
            changes: [
                .service(ObjectChange(action: .create, old: nil, new: Self.service("a"), id: "svc1", index: 11)),
                .node(ObjectChange(action: .remove, old: Self.node(), new: nil, id: "node1", index: 12)),
            ])
        let events = EventTranslator.events(commit)
        #expect(events.map { "\($0.Type) \($0.Action)" } == ["service create", "node remove"])
        #expect(events.allSatisfy { $0.timeNano == Self.nanos })
    }
}
