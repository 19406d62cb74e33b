import Foundation
import MeshCluster
import MeshEtcd
import MeshTestbed
import Synchronization
import Testing

/// A real transport that the test can cut, as a partition would: calls fail as unavailable while cut.
final class CuttableTransport: EtcdTransport {
    let inner: EtcdHTTPTransport
    private let cut = Mutex(false)
    private let frozen = Mutex(false)
    init(_ inner: EtcdHTTPTransport) { self.inner = inner }
    func sever() { cut.withLock { $0 = true } }
    /// Calls hang instead of failing (a stopped etcd, a link that drops everything): only a caller's own
    /// timer ends the wait.
    func freeze() { frozen.withLock { $0 = true } }

    private func check() throws(StoreError) {
        if cut.withLock({ $0 }) { throw .unavailable(endpoint: "\(inner.endpoints[0])", reason: "cut by the test") }
    }
    func call(_ path: String, body: [UInt8]) throws(StoreError) -> [UInt8] {
        try check()
        return try inner.call(path, body: body)
    }
    func send(_ path: String, body: [UInt8]) async throws(StoreError) -> [UInt8] {
        if frozen.withLock({ $0 }) {
            // Deaf to cancellation, as a call blocked in the kernel or on a promise is.
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().asyncAfter(deadline: .now() + 20) { c.resume() }
            }
            throw .unavailable(endpoint: "\(inner.endpoints[0])", reason: "frozen by the test")
        }
        try check()
        return try await inner.send(path, body: body)
    }
    func stream(_ path: String, body: [UInt8]) -> AsyncThrowingStream<[UInt8], any Error> {
        if cut.withLock({ $0 }) {
            return AsyncThrowingStream { $0.finish(throwing: StoreError.unavailable(endpoint: "cut", reason: "cut by the test")) }
        }
        return inner.stream(path, body: body)
    }
}

@Suite(.serialized) struct EtcdElectionTests {
    static func client(_ server: EtcdServer) -> (EtcdClient, CuttableTransport) {
        let t = CuttableTransport(EtcdHTTPTransport(endpoints: server.endpoints.compactMap(EtcdHTTPTransport.Endpoint.init)))
        return (EtcdClient(transport: t), t)
    }

    /// Two campaigners with TTL `ttl`: the first leads (over a wire the test can cut or freeze), the second waits.
    static func contest(_ server: EtcdServer, ttl: Int64) async throws -> (
        EtcdElection, CuttableTransport, EtcdElection, StreamLog<EtcdElection.Event>, StreamLog<EtcdElection.Event>, EtcdFence
    ) {
        let (clientA, wireA) = client(server)
        let a = EtcdElection(client: clientA, value: "m1", ttl: ttl)
        let b = EtcdElection(client: client(server).0, value: "m2", ttl: ttl)
        let ea = StreamLog.follow(try await a.campaign())
        let fenceA = try #require(leading(await ea.wait(for: 1).first), "the first candidate did not lead")
        let eb = StreamLog.follow(try await b.campaign())
        return (a, wireA, b, ea, eb, fenceA)
    }

    static func leading(_ e: EtcdElection.Event?) -> EtcdFence? {
        if case .leading(let f) = e { return f }
        return nil
    }

    /// Two campaigners: exactly one leads; when the leader resigns (its lease revoked) the other leads at once;
    /// the old leader's fenced write fails.
    @Test func oneLeaderAndTheNextTakesOverWhenTheLeaseIsRevoked() async throws {
        let server = try await EtcdServer.start(tag: "meshelect")
        defer { server.stop() }
        let a = EtcdElection(client: Self.client(server).0, value: "m1@192.0.2.1:2377", ttl: 3)
        let b = EtcdElection(client: Self.client(server).0, value: "m2@192.0.2.2:2377", ttl: 3)
        let ea = StreamLog.follow(try await a.campaign())
        let fenceA = try #require(Self.leading(await ea.wait(for: 1).first), "the first candidate did not lead")
        let eb = StreamLog.follow(try await b.campaign())
        try await Task.sleep(for: .seconds(1.5))
        #expect(eb.all.isEmpty, "the second candidate led while the first held its lease")
        #expect(a.isLeader && !b.isLeader)
        #expect(try a.leader() == "m1@192.0.2.1:2377")

        let store = etcdStore(server)
        store.fence = fenceA
        _ = try store.create(service("s1", name: "web"))

        let resigned = ContinuousClock.now
        await a.resign()
        let fenceB = try #require(Self.leading(await eb.wait(for: 1).first), "the second candidate did not take over")
        let takeover = eb.times[0] - resigned
        print("election: takeover after resign (lease revoked) in \(takeover)")
        #expect(takeover < .seconds(2))
        #expect(ea.all == [.leading(fenceA), .steppedDown("resigned")])
        #expect(try b.leader() == "m2@192.0.2.2:2377")
        #expect(fenceB.createRevision > fenceA.createRevision)
        // A late write under the old leader's token is refused.
        let oldKey = String(String(decoding: fenceA.key, as: UTF8.self).dropFirst("/meshd/v1/".count))
        #expect(throws: ClusterError.store(.fenced(leaderKey: oldKey, expected: fenceA.createRevision, found: 0))) {
            try store.create(service("s2", name: "api"))
        }
        await b.resign()
    }

    /// The leader's process is cut off (its renewals fail, nothing revokes): it steps down by itself, and the
    /// other takes over within the TTL, after it.
    @Test func aLeaderThatCannotRenewStepsDownAndTheOtherTakesOverWithinTheTTL() async throws {
        let server = try await EtcdServer.start(tag: "meshelect")
        defer { server.stop() }
        let ttl: Int64 = 3
        let (a, wireA, b, ea, eb, fenceA) = try await Self.contest(server, ttl: ttl)
        try await Task.sleep(for: .seconds(0.5))
        #expect(eb.all.isEmpty)

        let cut = ContinuousClock.now
        wireA.sever()
        let aEvents = await ea.wait(for: 2, seconds: Double(ttl) + 1)
        guard aEvents.count == 2, case .steppedDown(let why) = aEvents[1] else {
            Issue.record("the cut-off leader did not step down: \(aEvents)")
            return
        }
        #expect(!a.isLeader)
        #expect(why.contains("no lease renewal"))
        _ = try #require(Self.leading(await eb.wait(for: 1, seconds: Double(ttl) + 3).first), "the other did not take over")
        let stepDown = ea.times[1] - cut
        let takeover = eb.times[0] - cut
        print("election: cut-off leader stepped down after \(stepDown), the other led after \(takeover) (TTL \(ttl) s)")
        // It stepped down before the other led: never two leaders at once.
        #expect(stepDown < takeover)
        #expect(takeover < .seconds(ttl + 2))
        let store = etcdStore(server)
        store.fence = fenceA
        #expect(throws: ClusterError.self) { try store.create(service("s1", name: "web")) }
        await b.resign()
    }

    /// A renewal that never answers (etcd stopped, a link that drops everything) must not hold
    /// leadership past `ttl - 1` s: the leader's own timer ends it, before the other can lead.
    @Test func aLeaderWhoseRenewalHangsStepsDownOnItsOwnTimer() async throws {
        let server = try await EtcdServer.start(tag: "meshelect")
        defer { server.stop() }
        let ttl: Int64 = 3
        let (_, wireA, b, ea, eb, _) = try await Self.contest(server, ttl: ttl)
        let frozen = ContinuousClock.now
        wireA.freeze()
        let aEvents = await ea.wait(for: 2, seconds: Double(ttl) + 1)
        guard aEvents.count == 2, case .steppedDown(let why) = aEvents[1] else {
            Issue.record("the leader whose renewal hangs did not step down: \(aEvents)")
            return
        }
        #expect(why.contains("no lease renewal"), "\(why)")
        _ = try #require(Self.leading(await eb.wait(for: 1, seconds: Double(ttl) + 3).first), "the other did not take over")
        let stepDown = ea.times[1] - frozen
        print("election: the leader whose renewal hangs stepped down after \(stepDown) (TTL \(ttl) s)")
        #expect(stepDown <= .seconds(ttl - 1) + .milliseconds(300))
        #expect(ea.times[1] < eb.times[0])
        await b.resign()
    }
}
