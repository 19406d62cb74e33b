import Foundation
import MeshCluster
import MeshEtcd
import Synchronization
import Testing

/// A transport that records what the client sends and answers from a script, so the request encoding can be
/// checked byte for byte without an etcd.
final class ScriptedTransport: EtcdTransport {
    struct Sent: Sendable {
        var path: String
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        }
        var body: [UInt8]
    }

    private let state = Mutex<(sent: [Sent], answers: [(String, Result<[UInt8], StoreError>)])>(([], []))
    /// Whole streams, one per `stream` call in order (after them, streams answer from `answers`).
    private let streams = Mutex<[[[UInt8]]]>([])

    func answerStream(_ lines: [String]) { streams.withLock { $0.append(lines.map { Array($0.utf8) }) } }

    func answer(_ path: String, _ json: String) { state.withLock { $0.answers.append((path, .success(Array(json.utf8)))) } }
    func fail(_ path: String, _ error: StoreError) { state.withLock { $0.answers.append((path, .failure(error))) } }
    var sent: [Sent] { state.withLock { $0.sent } }

    func call(_ path: String, body: [UInt8]) throws(StoreError) -> [UInt8] {
        let next = state.withLock { s -> Result<[UInt8], StoreError>? in
            s.sent.append(Sent(path: path, body: body))
            guard let i = s.answers.firstIndex(where: { $0.0 == path }) else { return nil }
            return s.answers.remove(at: i).1
        }
        guard let next else { throw .unavailable(endpoint: "script", reason: "no scripted answer for \(path)") }
        return try next.get()
    }

    func send(_ path: String, body: [UInt8]) async throws(StoreError) -> [UInt8] { try call(path, body: body) }

    func stream(_ path: String, body: [UInt8]) -> AsyncThrowingStream<[UInt8], any Error> {
        let scripted = streams.withLock { s -> [[UInt8]]? in s.isEmpty ? nil : s.removeFirst() }
        let lines = state.withLock { s -> [[UInt8]] in
            s.sent.append(Sent(path: path, body: body))
            if let scripted { return scripted }
            var out: [[UInt8]] = []
            while let i = s.answers.firstIndex(where: { $0.0 == path }), case .success(let b) = s.answers.remove(at: i).1 { out.append(b) }
            return out
        }
        return AsyncThrowingStream { c in
            for l in lines { c.yield(l) }
            c.finish()
        }
    }
}

func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

@Suite struct EtcdEncodingTests {
    /// A create reads what it needs in one read-only txn (the object key, its name claim, each address claim),
    /// then commits one txn: absent-compares (mod revision 0) on those keys, then the puts; the failure branch
    /// reads those keys back.
    @Test func aCreateIsOneReadAndOneTxnComparingEveryKeyItRead() throws {
        let t = ScriptedTransport()
        t.answer(
            "/v3/kv/txn",
            #"{"header":{"revision":"7"},"succeeded":true,"responses":[{"response_range":{}},{"response_range":{}},{"response_range":{}}]}"#
        )
        t.answer("/v3/kv/txn", #"{"header":{"revision":"8"},"succeeded":true}"#)
        let store = EtcdClusterStore(client: EtcdClient(transport: t), keys: EtcdKeys(prefix: "/p/"))
        let created = try store.create(service("s1", name: "web", vips: [VirtualIP(networkID: "ingress", addr: "10.0.0.3/24")]))
        #expect(created.version == 8)

        let sent = t.sent
        #expect(sent.map(\.path) == ["/v3/kv/txn", "/v3/kv/txn"])
        let keys = [b64("/p/claims/ipam/ingress/10.0.0.3"), b64("/p/names/services/web"), b64("/p/objects/services/s1")]
        // The read: ranges only, no compares, at the latest revision (it fixes the transaction's).
        let read = sent[0].json
        #expect((read["compare"] as? [Any])?.isEmpty == true)
        let ranges = (read["success"] as? [[String: Any]] ?? []).compactMap { $0["request_range"] as? [String: Any] }
        #expect(ranges.compactMap { $0["key"] as? String } == keys)
        #expect(ranges.allSatisfy { $0["revision"] == nil })

        let txn = sent[1].json
        let compares = txn["compare"] as? [[String: Any]] ?? []
        #expect(compares.count == 3)
        for c in compares {
            #expect(c["target"] as? String == "MOD")
            #expect(c["result"] as? String == "EQUAL")
            #expect(c["mod_revision"] as? String == "0")
        }
        #expect(compares.compactMap { $0["key"] as? String } == keys)
        let puts = (txn["success"] as? [[String: Any]] ?? []).compactMap { $0["request_put"] as? [String: Any] }
        #expect(puts.compactMap { $0["key"] as? String } == [keys[1], keys[0], keys[2]])
        #expect(puts[0]["value"] as? String == b64("s1"))
        #expect(puts[1]["value"] as? String == b64("service/s1"))
        let stored = try JSONDecoder().decode(ClusterService.self, from: Data(base64Encoded: puts[2]["value"] as! String)!)
        #expect(stored.spec.name == "web")
        #expect(stored.version == 0)
        #expect((txn["failure"] as? [[String: Any]])?.count == 3)
    }

    /// A later read in the same transaction reads at the revision the first one fixed.
    @Test func laterReadsUseTheFirstReadsRevision() throws {
        let t = ScriptedTransport()
        t.answer("/v3/kv/range", #"{"header":{"revision":"7"}}"#)
        t.answer("/v3/kv/range", #"{"header":{"revision":"9"}}"#)
        let store = EtcdClusterStore(client: EtcdClient(transport: t), keys: EtcdKeys(prefix: "/p/"))
        _ = try store.read { tx throws(ClusterError) in
            (try tx.get(ClusterNode.self, id: "a"), try tx.get(ClusterNode.self, id: "b"))
        }
        #expect(t.sent.map { $0.json["revision"] as? String } == [nil, "7"])
    }

    /// With a fence, the leader key's create revision is the first compare; a failed txn whose read-back shows
    /// another create revision is `fenced`, not retried.
    @Test func aFencedTxnFailsAsFencedWithoutRetry() throws {
        let t = ScriptedTransport()
        t.answer("/v3/kv/range", #"{"header":{"revision":"9"}}"#)
        t.answer("/v3/kv/range", #"{"header":{"revision":"9"}}"#)
        let leaderKV = #"{"key":"\#(b64("/p/election/l"))","create_revision":"12","mod_revision":"12"}"#
        t.answer("/v3/kv/txn", #"{"header":{"revision":"13"},"responses":[{"response_range":{"kvs":[\#(leaderKV)]}}]}"#)
        let store = EtcdClusterStore(client: EtcdClient(transport: t), keys: EtcdKeys(prefix: "/p/"))
        store.fence = EtcdFence(key: Data("/p/election/l".utf8), createRevision: 5)
        #expect(throws: ClusterError.store(.fenced(leaderKey: "election/l", expected: 5, found: 12))) {
            try store.setValue("x", forKey: "a")
            try store.create(node("n1"))
        }
        let txns = t.sent.filter { $0.path == "/v3/kv/txn" }
        // setValue wrote blind (one txn, answered fenced): the create never ran.
        #expect(txns.count == 1)
        let first = (txns[0].json["compare"] as? [[String: Any]])?.first
        #expect(first?["target"] as? String == "CREATE")
        #expect(first?["create_revision"] as? String == "5")
        #expect(first?["key"] as? String == b64("/p/election/l"))
    }

    /// A list is compared as a whole range (nothing written in it after the read revision).
    @Test func aListIsComparedAsARange() throws {
        let t = ScriptedTransport()
        t.answer("/v3/kv/range", #"{"header":{"revision":"4"}}"#)
        t.answer("/v3/kv/txn", #"{"header":{"revision":"5"},"succeeded":true}"#)
        let store = EtcdClusterStore(client: EtcdClient(transport: t), keys: EtcdKeys(prefix: "/p/"))
        try store.write { tx throws(ClusterError) in
            if try tx.list(ClusterNode.self).isEmpty { try tx.setValue(1, forKey: "first") }
        }
        let txn = t.sent.last!.json
        let c = (txn["compare"] as? [[String: Any]])?.first
        #expect(c?["target"] as? String == "MOD")
        #expect(c?["result"] as? String == "LESS")
        #expect(c?["mod_revision"] as? String == "5")
        #expect(c?["key"] as? String == b64("/p/objects/nodes/"))
        #expect(c?["range_end"] as? String == b64("/p/objects/nodes0"))
    }

    /// A conflict is retried with a fresh read; after `attempts` it fails naming the key that moved.
    @Test func aConflictRetriesThenNamesTheKey() throws {
        let t = ScriptedTransport()
        let kv = #"{"key":"\#(b64("/p/values/a"))","mod_revision":"3","create_revision":"3","value":"\#(b64("1"))"}"#
        let moved = #"{"key":"\#(b64("/p/values/a"))","mod_revision":"6"}"#
        for _ in 0..<2 {
            t.answer("/v3/kv/range", #"{"header":{"revision":"5"},"kvs":[\#(kv)]}"#)
            t.answer("/v3/kv/txn", #"{"header":{"revision":"6"},"responses":[{"response_range":{"kvs":[\#(moved)]}}]}"#)
        }
        let store = EtcdClusterStore(client: EtcdClient(transport: t), keys: EtcdKeys(prefix: "/p/"), attempts: 2)
        #expect(throws: ClusterError.store(.conflict(key: "values/a", expected: 3, found: 6))) {
            try store.write { tx throws(ClusterError) in
                let v = try tx.value(Int.self, forKey: "a") ?? 0
                try tx.setValue(v + 1, forKey: "a")
            }
        }
        #expect(t.sent.filter { $0.path == "/v3/kv/txn" }.count == 2)
    }

    /// etcd's error answers become typed errors with its words.
    @Test func gatewayErrorsAreTyped() throws {
        let t = ScriptedTransport()
        t.fail("/v3/kv/range", .rejected(httpStatus: 400, grpcCode: 11, message: "etcdserver: mvcc: required revision has been compacted"))
        let client = EtcdClient(transport: t)
        #expect(throws: StoreError.compacted(requested: 3, compactRevision: 0)) {
            try client.range(RangeRequest(key: Data("k".utf8), revision: 3))
        }
        t.answer("/v3/kv/range", #"{"header":{"revision":"x"}}"#)
        #expect {
            try client.range(RangeRequest(key: Data("k".utf8)))
        } throws: { e in
            guard case .malformed = e as? StoreError else { return false }
            return true
        }
    }

    /// The events of one revision are one commit; claim and name keys are not objects and are left out; a
    /// DELETE carries the previous value as the old object.
    @Test func watchEventsGroupByRevision() async throws {
        let t = ScriptedTransport()
        let keys = EtcdKeys(prefix: "/p/")
        var s = service("s1", name: "web")
        s.version = 0
        let body = try JSONEncoder().encode(s).base64EncodedString()
        let created =
            #"{"type":"PUT","kv":{"key":"\#(b64("/p/objects/services/s1"))","mod_revision":"10","create_revision":"10","version":"1","value":"\#(body)"}}"#
        let claim = #"{"kv":{"key":"\#(b64("/p/names/services/web"))","mod_revision":"10","version":"1","value":"\#(b64("s1"))"}}"#
        let value = #"{"kv":{"key":"\#(b64("/p/values/settings"))","mod_revision":"11","version":"1","value":"\#(b64("1"))"}}"#
        let removed =
            #"{"type":"DELETE","kv":{"key":"\#(b64("/p/objects/services/s1"))","mod_revision":"12"},"prev_kv":{"key":"\#(b64("/p/objects/services/s1"))","mod_revision":"10","value":"\#(body)"}}"#
        t.answer("/v3/kv/range", #"{"header":{"revision":"9"}}"#)
        t.answer("/v3/watch", #"{"result":{"header":{"revision":"9"},"created":true}}"#)
        t.answer("/v3/watch", #"{"result":{"header":{"revision":"12"},"events":[\#(created),\#(claim),\#(value)]}}"#)
        t.answer("/v3/watch", #"{"result":{"header":{"revision":"12"},"events":[\#(removed)]}}"#)
        let store = EtcdClusterStore(client: EtcdClient(transport: t), keys: keys)
        let watch = try store.watch()
        #expect(watch.index == 9)
        let commits = await take(3, from: watch, seconds: 2)
        try #require(commits.count == 3)
        var stored = s
        stored.version = 10
        #expect(commits[0].index == 10)
        #expect(commits[0].changes == [.service(ObjectChange(action: .create, old: nil, new: stored, id: "s1", index: 10))])
        #expect(commits[1].values == ["settings"])
        #expect(commits[1].changes.isEmpty)
        #expect(commits[2].changes == [.service(ObjectChange(action: .remove, old: stored, new: nil, id: "s1", index: 12))])
        // Watched from the revision after the view, on the whole prefix, with previous values.
        let w = t.sent.first { $0.path == "/v3/watch" }!.json["create_request"] as? [String: Any]
        #expect(w?["start_revision"] as? String == "10")
        #expect(w?["prev_kv"] as? Bool == true)
        #expect(w?["key"] as? String == b64("/p/"))
        #expect(w?["range_end"] as? String == b64("/p0"))
    }

    /// Garbage from the gateway is a `malformed` error, never a crash or a silently empty answer.
    @Test func garbageAnswersAreMalformedErrors() throws {
        var rng = SystemRandomNumberGenerator()
        let samples: [String] = [
            "", "{", "[]", "null", #"{"header":{"revision":{}}}"#, #"{"kvs":[{"key":7}]}"#, #"{"kvs":[{"key":"!!!"}]}"#,
            #"{"header":{"revision":"99999999999999999999"}}"#,
        ]
        var inputs = samples.map { Array($0.utf8) }
        for _ in 0..<200 { inputs.append((0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }) }
        for bytes in inputs {
            let t = ScriptedTransport()
            t.answer("/v3/kv/range", String(decoding: bytes, as: UTF8.self))
            do {
                _ = try EtcdClient(transport: t).range(RangeRequest(key: Data("k".utf8)))
                // Only a JSON object may decode (proto3 lets every field be absent).
                #expect((try? JSONSerialization.jsonObject(with: Data(bytes))) is [String: Any], "decoded \(bytes)")
            } catch {
                guard case .malformed = error else {
                    Issue.record("unexpected \(error)")
                    continue
                }
            }
        }
        #expect(EtcdKey.prefixEnd(Data([0x61, 0xff])) == Data([0x62]))
        #expect(EtcdKey.prefixEnd(Data([0xff])) == Data([0]))
    }

    /// A watch message that does not decode ends that stream; the feed opens another from the revision after
    /// the last it delivered, so nothing is lost or repeated.
    @Test func aGarbledWatchMessageResumesWithoutLoss() async throws {
        let t = ScriptedTransport()
        let v = { (rev: Int) in
            #"{"kv":{"key":"\#(b64("/p/values/k\(rev)"))","mod_revision":"\#(rev)","version":"1","value":"\#(b64("1"))"}}"#
        }
        t.answer("/v3/kv/range", #"{"header":{"revision":"9"}}"#)
        t.answerStream([
            #"{"result":{"header":{"revision":"9"},"created":true}}"#,
            #"{"result":{"header":{"revision":"10"},"events":[\#(v(10))]}}"#,
            #"{"result":{"events":[{"kv":{"key":12}}]}}"#,
            #"{"result":{"header":{"revision":"11"},"events":[\#(v(11))]}}"#,
        ])
        t.answerStream([
            #"{"result":{"header":{"revision":"11"},"created":true}}"#,
            #"{"result":{"header":{"revision":"11"},"events":[\#(v(11))]}}"#,
            #"{"result":{"header":{"revision":"12"},"events":[\#(v(12))]}}"#,
        ])
        let store = EtcdClusterStore(client: EtcdClient(transport: t), keys: EtcdKeys(prefix: "/p/"))
        let log = StreamLog.follow(try store.watch().commits)
        let commits = await log.wait(for: 3, seconds: 3)
        #expect(commits.map(\.index) == [10, 11, 12])
        #expect(commits.map(\.values) == [["k10"], ["k11"], ["k12"]])
        let starts = t.sent.filter { $0.path == "/v3/watch" }.prefix(2).map {
            ($0.json["create_request"] as? [String: Any])?["start_revision"] as? String
        }
        #expect(starts == ["10", "11"])
    }

    /// No etcd at the endpoint: a write fails at once as unavailable, naming where it tried.
    @Test func noEtcdIsUnavailable() throws {
        let store = EtcdClusterStore(client: EtcdClient(endpoints: [EtcdHTTPTransport.Endpoint(host: "127.0.0.1", port: 9)]))
        let start = ContinuousClock.now
        #expect {
            try store.create(node("n1"))
        } throws: { e in
            guard case .store(.unavailable(let endpoint, _)) = e as? ClusterError else { return false }
            return endpoint.contains("127.0.0.1:9")
        }
        #expect(ContinuousClock.now - start < .seconds(3))
    }
}
