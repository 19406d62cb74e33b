import Foundation
import MeshCluster
import MeshEtcd
import MeshTestbed
import Testing

/// What every `ClusterStore` backend must do, run against SQLite and against a real etcd.
@Suite(.serialized) struct StoreConformanceTests {
    @Test(arguments: Backend.allCases) func createThenUpdateWithTheReadVersionAndRefuseAStaleOne(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let created = try store.create(service("s1", name: "web"))
            #expect(created.version > 0)
            #expect(try store.get(ClusterService.self, id: "s1") == created)
            var changed = created
            changed.spec.labels = ["tier": "front"]
            let updated = try store.update(changed)
            #expect(updated.version > created.version)
            #expect(try store.get(ClusterService.self, id: "s1")?.spec.labels == ["tier": "front"])
            // The version the caller read is no longer the stored one.
            #expect(throws: ClusterError.outOfSequence(objectKind: "service", id: "s1", expected: updated.version, got: created.version)) {
                try store.update(changed)
            }
            #expect(throws: ClusterError.idConflict(objectKind: "service", id: "s1")) { try store.create(service("s1", name: "other")) }
            #expect(throws: ClusterError.notFound(objectKind: "service", reference: "nope")) { try store.update(service("nope")) }
            // Versions order every write, across objects.
            let n = try store.create(node("n1"))
            #expect(n.version > updated.version)
            #expect(try store.read { tx throws(ClusterError) in try tx.currentIndex() } >= n.version)
        }
    }

    @Test(arguments: Backend.allCases) func aNameHasOneOwnerUntilRenamedOrDeleted(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            var web = try store.create(service("s1", name: "web"))
            #expect(throws: ClusterError.nameConflict(objectKind: "service", name: "web")) { try store.create(service("s2", name: "web")) }
            #expect(try store.list(ClusterService.self).map(\.id) == ["s1"])
            // Renaming frees the old name and takes the new one.
            web.spec.name = "api"
            web = try store.update(web)
            _ = try store.create(service("s2", name: "web"))
            #expect(throws: ClusterError.nameConflict(objectKind: "service", name: "api")) { try store.create(service("s3", name: "api")) }
            #expect(try store.resolve(ClusterService.self, "api").id == "s1")
            #expect(try store.resolve(ClusterService.self, "web").id == "s2")
            // Deleting frees it.
            try store.delete(ClusterService.self, id: "s1")
            _ = try store.create(service("s3", name: "api"))
            // Networks are their own namespace.
            _ = try store.create(network("w1", name: "web", vni: 4097, subnet: "10.0.1.0/24", gateway: "10.0.1.1"))
        }
    }

    @Test(arguments: Backend.allCases) func aWriteThatFailsHalfwayStoresNothing(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try store.create(service("s1", name: "web"))
            #expect(throws: ClusterError.nameConflict(objectKind: "service", name: "web")) {
                try store.write { tx throws(ClusterError) in
                    try tx.create(node("n1"))
                    try tx.setValue("x", forKey: "settings")
                    try tx.create(service("s2", name: "web"))
                }
            }
            #expect(try store.get(ClusterNode.self, id: "n1") == nil)
            #expect(try store.value(String.self, forKey: "settings") == nil)
            // Reads inside a write see the write's own changes.
            let seen = try store.write { tx throws(ClusterError) in
                try tx.create(node("n2"))
                return (try tx.get(ClusterNode.self, id: "n2") != nil, try tx.list(ClusterNode.self).map(\.id))
            }
            #expect(seen.0 && seen.1 == ["n2"])
        }
    }

    @Test(arguments: Backend.allCases) func deleteRemovesAndTheWatchCarriesTheOldValue(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let web = try store.create(service("s1", name: "web"))
            let watch = try store.watch()
            #expect(watch.index >= web.version)
            try store.delete(ClusterService.self, id: "s1")
            #expect(try store.get(ClusterService.self, id: "s1") == nil)
            #expect(throws: ClusterError.notFound(objectKind: "service", reference: "s1")) {
                try store.delete(ClusterService.self, id: "s1")
            }
            let commits = await take(1, from: watch)
            try #require(commits.count == 1)
            guard case .service(let change) = commits[0].changes.first else {
                Issue.record("expected a service change, got \(commits[0].changes)")
                return
            }
            #expect(change.action == .remove)
            #expect(change.old == web)
            #expect(change.new == nil)
            #expect(commits[0].index > web.version)
        }
    }

    /// One commit per transaction, in order, with old and new values; then a watch resumed after an index
    /// gets exactly what followed it (etcd) or a relist (SQLite keeps no history).
    @Test(arguments: Backend.allCases) func watchFromARevision(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let first = try store.create(node("n1"))
            let watch = try store.watch()
            let web = try store.create(service("s1", name: "web"))
            var drained = first
            drained.availability = .drain
            let updated = try store.update(drained)
            try store.write { tx throws(ClusterError) in
                try tx.create(task("t1", service: "s1"))
                try tx.create(task("t2", service: "s1"))
                try tx.setValue("v", forKey: "settings")
            }
            let commits = await take(3, from: watch)
            try #require(commits.count == 3)
            #expect(commits[0].changes == [.service(ObjectChange(action: .create, old: nil, new: web, id: "s1", index: web.version))])
            #expect(commits[0].index == web.version)
            #expect(
                commits[1].changes == [.node(ObjectChange(action: .update, old: first, new: updated, id: "n1", index: updated.version))])
            #expect(commits[2].changes.map(\.id) == ["t1", "t2"])
            #expect(commits[2].values == ["settings"])
            #expect(commits.map(\.relist) == [false, false, false])

            // Resume after the first commit.
            let resumed = StreamLog.follow(try store.watch(after: web.version).commits)
            let again = await resumed.wait(for: backend.keepsHistory ? 2 : 1)
            if backend.keepsHistory {
                try #require(again.count == 2)
                #expect(again[0].changes == commits[1].changes)
                #expect(again[1].changes.map(\.id) == ["t1", "t2"])
            } else {
                try #require(again.count >= 1)
                #expect(again[0].relist)
                #expect(Set(again[0].changes.map(\.id)) == ["n1", "s1", "t1", "t2"])
                #expect(again[0].values.contains("settings"))
            }
            // Nothing past the store's index can be asked for.
            let index = try store.read { tx throws(ClusterError) in try tx.currentIndex() }
            #expect(throws: ClusterError.self) { try store.watch(after: index + 100) }
        }
    }

    /// Two writers racing read-modify-write on one object: every increment lands (no lost update), because a
    /// write whose read went stale is retried or refused, never applied over the other.
    @Test(arguments: Backend.allCases) func concurrentWritersLoseNoUpdate(_ backend: Backend) async throws {
        try await withStore(backend) { store, server in
            _ = try store.create(service("s1", name: "web"))
            // etcd: the second writer is another manager with its own client; SQLite has one writer per file.
            let other: any ClusterStore = server.map { etcdStore($0) } ?? store
            let perWriter = 15
            // Threads, so both writers' round trips overlap.
            let done = onThreads(2) { w in
                let s = w == 0 ? store : other
                return (0..<perWriter).filter { _ in Self.increment(s) }.count
            }
            let total = done.reduce(0, +)
            let final = try store.get(ClusterService.self, id: "s1")!
            #expect(Int(final.spec.labels["n"] ?? "0") == total)
            #expect(total > perWriter)
        }
    }

    /// `snapshot()` (a leader's cache on etcd, the store's own on SQLite) is after every kind of write what
    /// reading every object gives, at once: a pass sees what it just wrote without reading the tables.
    @Test(arguments: Backend.allCases) func theSnapshotFollowsEveryWriteAtOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store, server in
            if let etcd = store as? EtcdClusterStore, let server {
                // The cache serves a leader: one with a fence.
                let key = Data("/meshd/v1/election/leader".utf8)
                let put = try etcdStore(server).client.put(PutRequest(key: key, value: Data("m1".utf8)))
                etcd.fence = EtcdFence(key: key, createRevision: try #require(put.header?.revision?.value))
            }
            func full() throws -> ClusterSnapshot { try store.read { tx throws(ClusterError) in try tx.snapshot() } }
            // In no particular order: compared by ID.
            func held() throws -> ClusterSnapshot {
                let s = try store.snapshot()
                return ClusterSnapshot(
                    nodes: s.nodes.sorted { $0.id < $1.id }, networks: s.networks.sorted { $0.id < $1.id },
                    services: s.services.sorted { $0.id < $1.id }, tasks: s.tasks.sorted { $0.id < $1.id })
            }
            _ = try store.create(node("n1"))
            _ = try store.create(node("n2"))
            var web = try store.create(service("s1", name: "web"))
            #expect(try held() == full())
            for id in ["t3", "t1", "t2"] { _ = try store.create(task(id, service: "s1")) }
            #expect(try held() == full())
            #expect(try held().tasks.map(\.id) == ["t1", "t2", "t3"])
            web.spec.labels = ["v": "2"]
            web = try store.update(web)
            #expect(try held().services == [web])
            try store.write { tx throws(ClusterError) in
                try tx.delete(ClusterTask.self, id: "t2")
                try tx.delete(ClusterNode.self, id: "n2")
                try tx.create(task("t0", service: "s1"))
            }
            #expect(try held() == full())
            #expect(try held().tasks.map(\.id) == ["t0", "t1", "t3"])
            // A write that failed halfway shows in neither.
            #expect(throws: ClusterError.self) {
                try store.write { tx throws(ClusterError) in
                    try tx.delete(ClusterTask.self, id: "t1")
                    try tx.create(service("s2", name: "web"))
                }
            }
            #expect(try held() == full())
            guard let etcd = store as? EtcdClusterStore, let server else { return }
            // Another writer (a follower's unfenced write, which the cache cannot see commit): the watch brings it.
            let other = etcdStore(server)
            _ = try other.create(service("s3", name: "api"))
            try other.delete(ClusterTask.self, id: "t3")
            var caught = false
            for _ in 0..<50 where !caught {
                caught = try held() == full()
                if !caught { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(caught, "the watch did not bring another writer's commits")
            // Once the watch has passed the removals the cache made ahead of it, no tombstone is kept.
            let index = try full().tasks.map(\.version).max() ?? 0
            var state = etcd.cacheState
            for _ in 0..<50 where (state?.tombstones ?? 1) > 0 || (state?.index ?? 0) < index {
                try await Task.sleep(for: .milliseconds(100))
                state = etcd.cacheState
            }
            #expect(state?.tombstones == 0)
            // Without a fence (a follower), every call reads etcd.
            etcd.fence = nil
            _ = try other.create(service("s4", name: "db"))
            #expect(try held() == full())
        }
    }

    /// One read-modify-write of s1's counter label; false if it gave up on a conflict after its retries.
    static func increment(_ store: any ClusterStore) -> Bool {
        do {
            try store.write { tx throws(ClusterError) in
                guard var web = try tx.get(ClusterService.self, id: "s1") else { throw .notFound(objectKind: "service", reference: "s1") }
                web.spec.labels["n"] = String((Int(web.spec.labels["n"] ?? "0") ?? 0) + 1)
                try tx.update(web)
            }
            return true
        } catch .store(.conflict) {
            return false
        } catch {
            Issue.record("increment failed: \(error)")
            return false
        }
    }
}
