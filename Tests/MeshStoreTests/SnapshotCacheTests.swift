import Foundation
import MeshCluster
import Testing

/// The cache's merge rules, on values alone: the newest write by revision wins whichever feed brings it.
struct SnapshotCacheTests {
    func at(_ o: ClusterTask, _ version: UInt64) -> ClusterTask {
        var o = o
        o.version = version
        return o
    }

    func put(_ t: ClusterTask) -> StoreChange { .task(ObjectChange(action: .update, old: nil, new: t, id: t.id, index: t.version)) }
    func gone(_ id: String, _ index: UInt64) -> StoreChange {
        .task(ObjectChange(action: .remove, old: nil, new: nil, id: id, index: index))
    }

    @Test func aWriteAppliedAheadOfTheStreamIsNotUndoneWhenTheStreamCatchesUp() {
        let t1 = task("t1", service: "s1")
        var cache = SnapshotCache(snapshot: ClusterSnapshot(tasks: [at(t1, 5)]), index: 5)
        // The store's own write at 9, then the stream brings 7 (someone else's older write) and 9 again.
        var mine = at(t1, 9)
        mine.desiredState = .shutdown
        cache.apply([put(mine)])
        cache.apply(StoreCommit(index: 7, time: t0, changes: [put(at(t1, 7))]))
        #expect(cache.snapshot.tasks == [mine])
        cache.apply(StoreCommit(index: 9, time: t0, changes: [put(mine)]))
        #expect(cache.snapshot.tasks == [mine])
        #expect(cache.index == 9)
    }

    @Test func aRemovalAheadOfTheStreamKeepsATombstoneUntilTheStreamPassesIt() {
        let t1 = task("t1", service: "s1")
        var cache = SnapshotCache(snapshot: ClusterSnapshot(tasks: [at(t1, 5)]), index: 5)
        cache.apply([gone("t1", 10)])
        #expect(cache.snapshot.tasks.isEmpty)
        #expect(cache.tombstones == 1)
        // An older update of it arrives late: it stays gone.
        cache.apply(StoreCommit(index: 8, time: t0, changes: [put(at(t1, 8))]))
        #expect(cache.snapshot.tasks.isEmpty)
        cache.apply(StoreCommit(index: 10, time: t0, changes: [gone("t1", 10)]))
        #expect(cache.tombstones == 0)
        // A later object with the same ID is a new one.
        cache.apply(StoreCommit(index: 12, time: t0, changes: [put(at(t1, 12))]))
        #expect(cache.snapshot.tasks.map(\.version) == [12])
    }

    /// Each object once, wherever it is: a create appends, a removal moves the last into its place.
    @Test func eachObjectIsHeldOnce() {
        var cache = SnapshotCache(snapshot: ClusterSnapshot(), index: 0)
        let ids = ["m", "c", "x", "a", "q", "b"]
        for (i, id) in ids.enumerated() {
            cache.apply(StoreCommit(index: UInt64(i + 1), time: t0, changes: [put(at(task(id, service: "s"), UInt64(i + 1)))]))
        }
        #expect(cache.snapshot.tasks.map(\.id) == ids)
        cache.apply(StoreCommit(index: 20, time: t0, changes: [gone("c", 20), gone("zz", 20), gone("b", 20)]))
        #expect(cache.snapshot.tasks.map(\.id).sorted() == ["a", "m", "q", "x"])
        // An update after the moves finds each where it went.
        var q = at(task("q", service: "s"), 21)
        q.desiredState = .shutdown
        cache.apply(StoreCommit(index: 21, time: t0, changes: [put(q)]))
        #expect(cache.snapshot.tasks.filter { $0.id == "q" } == [q])
        #expect(cache.snapshot.tasks.count == 4)
    }

    /// A relist (the stream lost history) replaces what the cache held, except writes applied ahead of it.
    @Test func aRelistReplacesAllButWhatIsNewerThanIt() {
        let t1 = task("t1", service: "s1"), t2 = task("t2", service: "s1"), t3 = task("t3", service: "s1")
        var cache = SnapshotCache(snapshot: ClusterSnapshot(tasks: [at(t1, 3), at(t2, 4)]), index: 4)
        cache.apply([put(at(t3, 30)), gone("t2", 31)])
        // At 20 the store held t2 (changed) and a new t4; t1 had gone.
        let t4 = task("t4", service: "s1")
        cache.apply(StoreCommit(index: 20, time: t0, changes: [put(at(t2, 15)), put(at(t4, 18))], relist: true))
        #expect(cache.snapshot.tasks.map(\.id).sorted() == ["t3", "t4"])
        #expect(cache.index == 20)
        #expect(cache.tombstones == 1)
    }
}
