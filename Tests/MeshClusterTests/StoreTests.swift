import Foundation
import MeshKernel
import Testing
@testable import MeshCluster

@Suite struct StoreTests {
    @Test func createGetResolveListDelete() throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let store = try SQLiteClusterStore(path: path)
        let a = try store.create(service("abcdef0000000000000000001", name: "web"))
        let b = try store.create(service("abcdef0000000000000000002", name: "api"))
        #expect(a.version == 1 && b.version == 2)
        #expect(try store.get(ClusterService.self, id: a.id) == a)
        #expect(try store.resolve(ClusterService.self, "web").id == a.id)
        #expect(try store.resolve(ClusterService.self, a.id).id == a.id)
        #expect(try store.resolve(ClusterService.self, "abcdef0000000000000000002").id == b.id)
        #expect(throws: ClusterError.ambiguous(objectKind: "service", reference: "abcdef", matches: 2)) {
            try store.resolve(ClusterService.self, "abcdef")
        }
        #expect(try store.resolve(ClusterService.self, "abcdef0000000000000000001").spec.name == "web")
        #expect(throws: ClusterError.notFound(objectKind: "service", reference: "zzz")) { try store.resolve(ClusterService.self, "zzz") }
        #expect(throws: ClusterError.nameConflict(objectKind: "service", name: "web")) {
            try store.create(service("x00000000000000000000000", name: "web"))
        }
        #expect(try store.list(ClusterService.self).map(\.spec.name) == ["web", "api"])
        try store.delete(ClusterService.self, id: a.id)
        #expect(try store.get(ClusterService.self, id: a.id) == nil)
        #expect(throws: ClusterError.notFound(objectKind: "service", reference: a.id)) { try store.delete(ClusterService.self, id: a.id) }
    }

    @Test func staleVersionIsRefused() throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let store = try SQLiteClusterStore(path: path)
        let created = try store.create(node("n1"))
        var first = created
        first.availability = .drain
        let updated = try store.update(first)
        #expect(updated.version > created.version)
        var stale = created
        stale.availability = .pause
        do {
            try store.update(stale)
            Issue.record("a stale version was accepted")
        } catch {
            #expect(error.description == "update out of sequence")
            #expect(error.kind == .internalError)
        }
        #expect(try store.get(ClusterNode.self, id: "n1")?.availability == .drain)
    }

    @Test func tasksByServiceAndNodeAndTransactions() throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let store = try SQLiteClusterStore(path: path)
        let spec = TaskSpec(image: "busybox")
        try store.write { tx throws(ClusterError) in
            for i in 1...3 {
                var t = ClusterTask(id: "t\(i)", serviceID: i < 3 ? "s1" : "s2", slot: i, spec: spec, specVersion: 1, now: t0)
                t.nodeID = i == 1 ? "n1" : "n2"
                try tx.create(t)
            }
        }
        #expect(try store.tasks(serviceID: "s1").map(\.id) == ["t1", "t2"])
        #expect(try store.tasks(nodeID: "n2").map(\.id) == ["t2", "t3"])
        // A failing transaction leaves nothing behind.
        #expect(throws: ClusterError.self) {
            try store.write { tx throws(ClusterError) in
                try tx.create(ClusterTask(id: "t9", serviceID: "s1", slot: 9, spec: spec, specVersion: 1, now: t0))
                try tx.create(ClusterTask(id: "t1", serviceID: "s1", slot: 1, spec: spec, specVersion: 1, now: t0))
            }
        }
        #expect(try store.get(ClusterTask.self, id: "t9") == nil)
    }

    @Test func everythingSurvivesReopening() throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        var allocator = try NetworkAllocator()
        let written: ClusterSnapshot
        do {
            let store = try SQLiteClusterStore(path: path)
            let ingress = try allocator.createNetwork(
                id: "ingress00000000000000000a", request: NetworkRequest(name: "ingress", ingress: true), now: t0)
            try store.create(ingress)
            var n = node("n1", role: .manager, labels: ["zone": "a"])
            n.leader = true
            try store.create(n)
            var s = service("s1", replicas: 2)
            s.spec.endpoint.ports = [PortConfig(targetPort: 80, publishedPort: 8080)]
            try allocator.allocateEndpoint(for: &s, ingressNetworkID: ingress.id)
            try store.create(s)
            var t = ClusterTask(id: "t1", serviceID: "s1", slot: 1, nodeID: "n1", spec: s.spec.task, specVersion: 1, now: t0)
            try allocator.allocateTask(&t, service: s, ingressNetworkID: ingress.id)
            try store.create(t)
            try store.setValue(JoinTokensProbe(worker: "w", manager: "m"), forKey: "tokens")
            written = try store.snapshot()
        }
        let reopened = try SQLiteClusterStore(path: path)
        #expect(try reopened.snapshot() == written)
        #expect(try reopened.value(JoinTokensProbe.self, forKey: "tokens") == JoinTokensProbe(worker: "w", manager: "m"))
        // The version counter continues where it stopped.
        let next = try reopened.create(node("n2"))
        #expect(next.version > written.tasks[0].version)
        #expect(try NetworkAllocator.rebuild(from: reopened.snapshot()) == allocator)
    }
}

struct JoinTokensProbe: Codable, Sendable, Equatable {
    var worker: String
    var manager: String
}
