import Foundation
import Testing
@testable import MeshCluster

/// The store's change stream: what a watcher sees of each committed transaction.
@Suite struct StoreChangeTests {
    /// The next `n` commits, or fewer if they do not come within 5 s.
    static func take(_ n: Int, from watch: StoreWatch) async -> [StoreCommit] {
        await withTaskGroup(of: [StoreCommit].self) { g in
            g.addTask {
                var out: [StoreCommit] = []
                for await c in watch.commits {
                    out.append(c)
                    if out.count == n { break }
                }
                return out
            }
            g.addTask {
                try? await Task.sleep(for: .seconds(5))
                return []
            }
            var best: [StoreCommit] = []
            for await r in g {
                if r.count > best.count { best = r }
                g.cancelAll()
                break
            }
            return best
        }
    }

    @Test func eachCommitCarriesItsCreatesUpdatesAndRemovesWithOldAndNewValues() async throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let store = try SQLiteClusterStore(path: path)
        let before = try store.create(node("n1"))
        let watch = store.watch()
        #expect(watch.index == before.version)

        let web = try store.create(service("s1", name: "web"))
        var drained = before
        drained.availability = .drain
        let updated = try store.update(drained)
        // Two objects in one transaction: one commit, in write order.
        try store.write { tx throws(ClusterError) in
            try tx.delete(ClusterService.self, id: "s1")
            try tx.setValue("x", forKey: "settings")
        }

        let commits = await Self.take(3, from: watch)
        try #require(commits.count == 3)
        #expect(commits[0].changes == [.service(ObjectChange(action: .create, old: nil, new: web, id: "s1", index: web.version))])
        #expect(commits[0].index == web.version)
        #expect(
            commits[1].changes == [.node(ObjectChange(action: .update, old: before, new: updated, id: "n1", index: updated.version))])
        #expect(commits[2].changes.map(\.action) == [.remove])
        // The removed object comes with the change: no watcher has to have read it before.
        #expect(commits[2].changes == [.service(ObjectChange(action: .remove, old: web, new: nil, id: "s1", index: updated.version + 1))])
        #expect(commits[2].values == ["settings"])
        #expect(commits[2].index == updated.version + 1)
        #expect(commits.map(\.index) == commits.map(\.index).sorted())
    }

    @Test func aTransactionThatFailsDeliversNothing() async throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let store = try SQLiteClusterStore(path: path)
        let watch = store.watch()
        _ = try? store.write { tx throws(ClusterError) in
            _ = try tx.create(service("s1", name: "web"))
            throw ClusterError.invalidArgument("abandon")
        }
        // A conflict thrown by the store itself rolls back the same way.
        _ = try store.create(service("s2", name: "api"))
        #expect(throws: ClusterError.self) {
            try store.write { tx throws(ClusterError) in
                _ = try tx.create(service("s3", name: "db"))
                _ = try tx.create(service("s4", name: "api"))
            }
        }
        _ = try store.create(service("s5", name: "cache"))
        let commits = await Self.take(2, from: watch)
        #expect(commits.flatMap(\.changes).map(\.id) == ["s2", "s5"])
        #expect(try store.get(ClusterService.self, id: "s1") == nil)
    }

    @Test func aWatchStartsExactlyAtTheViewItRead() async throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let store = try SQLiteClusterStore(path: path)
        _ = try store.create(service("s1", name: "web"))
        // Writers race the watch: every service is either in the view or in a commit, never both, never neither.
        let writers = Task.detached {
            for i in 2...40 { _ = try? store.create(service("s\(i)", name: "svc\(i)")) }
        }
        let (seen, watch) = try store.watch { tx throws(ClusterError) in try tx.list(ClusterService.self).map(\.id) }
        await writers.value
        let missing = 40 - seen.count
        let commits = missing > 0 ? await Self.take(missing, from: watch) : []
        let later = commits.flatMap(\.changes).map(\.id)
        #expect(Set(seen).isDisjoint(with: later))
        #expect(Set(seen + later) == Set((1...40).map { "s\($0)" }))
        #expect(commits.allSatisfy { $0.index > watch.index })
    }

    @Test func concurrentWritersAreDeliveredInCommitOrder() async throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let store = try SQLiteClusterStore(path: path)
        let watch = store.watch()
        await withTaskGroup(of: Void.self) { g in
            for w in 0..<4 {
                g.addTask {
                    for i in 0..<25 { _ = try? store.create(service("w\(w)-\(i)", name: "w\(w)-\(i)")) }
                }
            }
        }
        let commits = await Self.take(100, from: watch)
        #expect(commits.count == 100)
        #expect(commits.map(\.index) == Array(1...100).map(UInt64.init))
    }

    @Test func aWatcherThatStopsIsForgotten() async throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let store = try SQLiteClusterStore(path: path)
        let reader = Task {
            var n = 0
            for await _ in store.watch().commits { n += 1 }
            return n
        }
        while store.watcherCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
        _ = try store.create(service("s1", name: "web"))
        reader.cancel()
        _ = await reader.value
        #expect(store.watcherCount == 0)
        // Writes after the watcher left still commit (nothing waits on a consumer that is gone).
        _ = try store.create(service("s2", name: "api"))
        #expect(try store.list(ClusterService.self).count == 2)
    }
}
