import Foundation
import Testing
@testable import MeshCluster

@Suite struct ModelTests {
    @Test func objectIDsLookLikeDockers() {
        var g = SplitMix64(seed: 1)
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = ObjectID.make(using: &g)
            #expect(ObjectID.isValid(id), "\(id)")
            seen.insert(id)
        }
        #expect(seen.count == 1000)
        #expect(!ObjectID.isValid("ABCDEFGHIJKLMNOPQRSTUVWXY"))
        #expect(!ObjectID.isValid("abc"))
    }

    @Test func base36MatchesGoBigIntText() {
        // 0xff == 255 == "73" in base 36; 2^128-1 == "f5lxx1zz5pnorynqglhzmsp33" (25 digits, Go big.Int.Text(36)).
        #expect(Base36.encode([0xff], width: 0) == "73")
        #expect(Base36.encode([0, 0, 1], width: 3) == "001")
        #expect(Base36.encode(Array(repeating: 0xff, count: 16), width: 25) == "f5lxx1zz5pnorynqglhzmsp33")
        #expect(Base36.encode([], width: 2) == "00")
    }

    @Test func taskStatesAreOrdered() {
        #expect(TaskState.new < .pending && TaskState.pending < .assigned && TaskState.assigned < .running)
        #expect(!TaskState.running.isTerminal && TaskState.failed.isTerminal && TaskState.shutdown.isTerminal)
        #expect(TaskState.ready < .running)
    }

    @Test func serviceRoundTripsThroughJSON() throws {
        var s = service(
            "svc1", replicas: 3, update: UpdateConfig(parallelism: 2, delay: 2_000_000_000, failureAction: .rollback, order: .startFirst),
            restart: RestartPolicy(condition: .onFailure, delay: 1, maxAttempts: 3))
        s.spec.endpoint = EndpointSpec(mode: .vip, ports: [PortConfig(protocol: .udp, targetPort: 53, publishedPort: 53)])
        s.updateStatus = UpdateStatus(state: .rollbackStarted, startedAt: t0, message: "x")
        let data = try JSONEncoder().encode(s)
        #expect(try JSONDecoder().decode(ClusterService.self, from: data) == s)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"rollback_started\"") && text.contains("\"start-first\"") && text.contains("\"on-failure\""))
    }

    /// A store written before the recorded container fields and attachment driver options existed
    /// still decodes, with their defaults.
    @Test func taskSpecsFromOlderStoresDecode() throws {
        let old = """
            {"image":"x","command":[],"args":[],"env":[],"labels":{},"hostname":"","dir":"","user":"","constraints":[],
             "networks":[{"target":"n1","aliases":["a"]}],"forceUpdate":0}
            """
        let t = try JSONDecoder().decode(TaskSpec.self, from: Data(old.utf8))
        #expect(t == TaskSpec(image: "x", networks: [NetworkTarget(target: "n1", aliases: ["a"])]))
        var full = t
        full.container.tty = true
        full.container.mounts = [ContainerOptions.Mount(kind: .tmpfs, target: "/t")]
        full.resources.limits = TaskResources.Limits()
        full.logDriver = DriverConfig(name: "json-file")
        #expect(try JSONDecoder().decode(TaskSpec.self, from: try JSONEncoder().encode(full)) == full)
    }

    @Test func specValidation() {
        var spec = service("a").spec
        spec.name = "bad name"
        #expect(throws: ClusterError.self) { try spec.validate() }
        spec = service("a").spec
        spec.task.constraints = ["node.colour==blue"]
        #expect(throws: ClusterError.self) { try spec.validate() }
        spec = service("a").spec
        spec.endpoint = EndpointSpec(mode: .dnsrr, ports: [PortConfig(targetPort: 80, publishedPort: 80)])
        #expect(throws: ClusterError.self) { try spec.validate() }
        spec.endpoint.ports[0].publishMode = .host
        #expect(throws: Never.self) { try spec.validate() }
    }

    @Test func scaleDoesNotStartAnUpdateButAnImageChangeDoes() throws {
        var s = service("a", replicas: 2)
        var spec = s.spec
        spec.mode = .replicated(replicas: 5)
        try s.update(to: spec, now: t0)
        #expect(s.specVersion == 1 && s.rollout == nil && s.previousSpec?.mode == .replicated(replicas: 2))
        spec.task.image = "v2"
        try s.update(to: spec, now: t0)
        #expect(s.specVersion == 2 && s.rollout?.kind == .update)
        try s.rollback(now: t0)
        #expect(s.spec.task.image == "meshd/whoami" && s.specVersion == 3 && s.updateStatus?.state == .rollbackStarted)
        #expect(s.updateStatus?.message == "manually requested rollback")
        var fresh = service("b")
        #expect(throws: ClusterError.failedPrecondition("service b does not have a previous spec")) { try fresh.rollback(now: t0) }
        var global = spec
        global.mode = .global
        #expect(throws: ClusterError.self) { try s.update(to: global, now: t0) }
    }
}
