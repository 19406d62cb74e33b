import Foundation
import MeshAPI
import MeshCluster
import MeshDaemon
import Testing

/// The real manager's writes (API calls, liveness, reconcile) through the store's change stream and the
/// translator, as the manager plane wires them: what `docker events` would show for each.
@Suite struct ManagerEventsTests {
    /// Feeds `store`'s commits into a fresh log, as `ManagerPlane` does.
    static func pipe(_ store: SQLiteClusterStore) -> (EventLog, Task<Void, Never>) {
        let log = EventLog()
        let watch = store.watch()
        let pump = Task {
            for await commit in watch.commits { log.publish(EventTranslator.events(commit)) }
        }
        return (log, pump)
    }

    /// Waits up to 5 s for the log to hold an event `match` accepts.
    static func find(_ log: EventLog, _ match: (EventMessage) -> Bool) async -> EventMessage? {
        for _ in 0..<250 {
            if let e = log.recent().first(where: match) { return e }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    @Test func apiWritesAndLivenessBecomeDockerEvents() async throws {
        try await TestCluster.with(workers: 1) { c in
            let (log, pump) = Self.pipe(c.store)
            defer { pump.cancel() }
            let ctl = c.controller
            let worker = c.workerIDs[0]

            // A worker heard from is ready; silent past the grace period it is down (node ls STATUS).
            let started = Date()
            _ = try await ctl.withManager { m throws(ClusterError) in
                try m.applyLiveness(NodeLiveness(gracePeriod: 10), lastSeen: [worker: started], since: started, now: started)
            }
            _ = try await ctl.withManager { m throws(ClusterError) in
                try m.applyLiveness(
                    NodeLiveness(gracePeriod: 10), lastSeen: [worker: started, c.managerID: started + 30], since: started,
                    now: started + 30)
            }
            let down = await Self.find(log) { $0.Type == "node" && $0.Actor.Attributes["state.new"] == "down" }
            #expect(down?.Actor.ID == worker && down?.Actor.Attributes["state.old"] == "ready", "\(log.recent())")
            #expect(down?.Actor.Attributes["name"] == "worker1" && down?.Action == "update" && down?.scope == "swarm")

            let id = try await ctl.createService(webSpec("web", replicas: 1)).ID
            let created = await Self.find(log) { $0.Type == "service" && $0.Action == "create" }
            #expect(created?.Actor == EventMessage.Actor(ID: id, Attributes: ["name": "web"]))
            try await c.converge(rounds: 2)

            var spec = try await ctl.inspectService("web")
            spec.Spec.Mode = .replicated(4)
            _ = try await ctl.updateService("web", version: spec.Version.Index, spec: spec.Spec, rollback: false)
            let scaled = await Self.find(log) { $0.Actor.Attributes["replicas.new"] == "4" }
            #expect(scaled?.Actor.Attributes["replicas.old"] == "1" && scaled?.Action == "update")

            let me = try await ctl.inspectNode(c.managerID)
            try await ctl.updateNode(
                c.managerID, version: me.Version.Index, spec: NodeSpec(Labels: [:], Role: "manager", Availability: "pause"))
            let paused = await Self.find(log) { $0.Actor.Attributes["availability.new"] == "pause" }
            #expect(paused?.Actor.ID == c.managerID && paused?.Actor.Attributes["availability.old"] == "active")

            try await ctl.removeService("web")
            let removed = await Self.find(log) { $0.Type == "service" && $0.Action == "remove" }
            #expect(removed?.Actor == EventMessage.Actor(ID: id, Attributes: ["name": "web"]))

            // Tasks were created, scheduled and removed all along: none of it is an event, and the log is in time order.
            #expect(Set(log.recent().map(\.Type)).isSubset(of: ["node", "service", "network"]), "\(log.recent().map(\.Type))")
            #expect(log.recent().map(\.timeNano) == log.recent().map(\.timeNano).sorted())
        }
    }

    @Test func aRollingUpdateReportsItsImageAndUpdateStatesOnly() async throws {
        try await TestCluster.with(workers: 1) { c in
            let ctl = c.controller
            var created = webSpec("web", replicas: 3)
            created.UpdateConfig?.Monitor = 1_000_000
            let id = try await ctl.createService(created).ID
            try await c.converge(rounds: 2)
            let (log, pump) = Self.pipe(c.store)
            defer { pump.cancel() }

            let service = try await ctl.inspectService(id)
            var spec = service.Spec
            spec.TaskTemplate.ContainerSpec?.Image = "meshd/whoami:v2"
            _ = try await ctl.updateService(id, version: service.Version.Index, spec: spec, rollback: false)
            try await c.converge(rounds: 16)
            #expect(try await ctl.inspectService(id).UpdateStatus?.State == "completed")
            _ = await Self.find(log) { $0.Actor.Attributes["updatestate.new"] == "completed" }

            // What dockerd shows for a rolling update: the spec change, then the update state's steps;
            // the batches in between (three tasks, one at a time) give no event of their own.
            let updates = log.recent().filter { $0.Type == "service" }.map { e in
                e.Actor.Attributes.filter { $0.key != "name" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                    .joined(separator: " ")
            }
            #expect(
                updates == [
                    "image.new=meshd/whoami:v2 image.old=meshd/whoami", "updatestate.new=updating",
                    "updatestate.new=completed updatestate.old=updating",
                ], "\(updates)")
        }
    }

    @Test func outsideASwarmTheStreamStaysOpenAndEmpty() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("meshdaemon-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let daemon = Daemon(options: .init(dataRoot: root, lb: .nftables, meshd: "/bin/false", hostname: "n"))
        let stream = try await daemon.events(EventQuery(since: 0))
        let outcome = Outcome()
        let reader = Task {
            for await _ in stream {
                await outcome.set("event")
                return
            }
            await outcome.set("finished")
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(await outcome.value == nil, "the stream of a node outside a swarm must stay open and empty")
        reader.cancel()
        _ = await reader.value
        #expect(daemon.eventLog.subscriberCount == 0)
        // In-process subscribers get what the daemon's log gets.
        let live = daemon.subscribeEvents()
        daemon.eventLog.publish([
            EventMessage(type: "service", action: "create", actor: .init(ID: "s", Attributes: ["name": "x"]), scope: "swarm", timeNano: 1)
        ])
        var it = live.makeAsyncIterator()
        #expect(await it.next()?.Actor.ID == "s")
    }
}

actor Outcome {
    var value: String?
    func set(_ v: String) { value = v }
}
