import Foundation
import MeshAPI
import Testing

/// The events service: dockerd's filter semantics, the replay ring, `since`/`until` and subscribers.
@Suite struct EventLogTests {
    static func event(
        _ type: String, _ action: String, id: String, name: String, at seconds: Int64, scope: String = "swarm",
        _ extra: [String: String] = [:]
    ) -> EventMessage {
        EventMessage(
            type: type, action: action, actor: .init(ID: id, Attributes: extra.merging(["name": name]) { a, _ in a }), scope: scope,
            timeNano: seconds * 1_000_000_000)
    }

    static func filter(_ json: String) throws -> EventFilter { try EventFilter.parse(json) }

    /// What `stream` yields within `timeout`, and whether it finished by then.
    static func collect(_ stream: AsyncStream<EventMessage>, for timeout: Duration = .milliseconds(300)) async -> (
        events: [EventMessage], finished: Bool
    ) {
        let box = Collected()
        let reader = Task {
            for await e in stream { await box.add(e) }
            await box.finish()
        }
        try? await Task.sleep(for: timeout)
        reader.cancel()
        return (await box.events, await box.finished)
    }

    actor Collected {
        var events: [EventMessage] = []
        var finished = false
        func add(_ e: EventMessage) { events.append(e) }
        func finish() { finished = true }
    }

    let web = event("service", "create", id: "abc123", name: "web", at: 100)
    let webNet = event("network", "create", id: "n0001", name: "web-net", at: 101)
    let drained = event("node", "update", id: "node77", name: "host1", at: 102, ["availability.new": "drain"])
    let removed = event("service", "remove", id: "def456", name: "api", at: 103)

    @Test func filtersMatchAsDockerdDoes() throws {
        let all = [web, webNet, drained, removed]
        func keep(_ json: String) throws -> [String] { try all.filter(Self.filter(json).includes).map(\.Actor.ID) }
        #expect(try keep("{\"type\":{\"service\":true}}") == ["abc123", "def456"])
        #expect(try keep("{\"type\":{\"service\":true,\"node\":true}}") == ["abc123", "node77", "def456"])
        #expect(try keep("{\"event\":{\"remove\":true}}") == ["def456"])
        #expect(try keep("{\"type\":{\"service\":true},\"event\":{\"create\":true}}") == ["abc123"])
        // Name or ID prefix, and — as in dockerd — whatever the event's type.
        #expect(try keep("{\"service\":{\"web\":true}}") == ["abc123", "n0001"])
        #expect(try keep("{\"service\":{\"def\":true}}") == ["def456"])
        #expect(try keep("{\"node\":{\"host\":true}}") == ["node77"])
        #expect(try keep("{\"scope\":{\"swarm\":true}}") == all.map(\.Actor.ID))
        #expect(try keep("{\"scope\":{\"local\":true}}").isEmpty)
        #expect(try keep("{\"label\":{\"availability.new=drain\":true}}") == ["node77"])
        #expect(try keep("{\"label\":{\"availability.new\":true}}") == ["node77"])
        #expect(try keep("{\"label\":{\"availability.new=active\":true}}").isEmpty)
        #expect(try keep("{\"type\":[\"network\"]}") == ["n0001"], "the legacy list form")
        #expect(try keep("{\"type\":{\"container\":true}}").isEmpty)
        #expect(try keep("{\"image\":{\"nginx\":true}}").isEmpty)
        #expect(try keep("") == all.map(\.Actor.ID))
    }

    @Test func badFiltersAreRefusedByName() throws {
        #expect(throws: EngineError.invalidArgument("invalid filter 'servce'")) { try Self.filter("{\"servce\":{\"web\":true}}") }
        #expect(throws: EngineError.invalidArgument("invalid filter 'type=[services]'")) {
            try Self.filter("{\"type\":{\"services\":true}}")
        }
        #expect(throws: EngineError.invalidArgument("invalid filter 'scope=[global]'")) { try Self.filter("{\"scope\":{\"global\":true}}") }
        #expect(throws: EngineError.self) { try Self.filter("{\"type\":\"service\"}") }
        #expect(throws: EngineError.self) { try Self.filter("not json") }
    }

    @Test func imageFilterStripsTagsAndDefaultRegistry() throws {
        let pulled = Self.event("image", "pull", id: "sha256:1", name: "docker.io/library/nginx:1.27", at: 1, scope: "local")
        #expect(try Self.filter("{\"image\":{\"nginx\":true}}").includes(pulled))
        #expect(try Self.filter("{\"image\":{\"docker.io/library/nginx:1.27\":true}}").includes(pulled))
        #expect(try !Self.filter("{\"image\":{\"redis\":true}}").includes(pulled))
    }

    @Test func theRingKeepsTheNewestInOrder() {
        let log = EventLog(capacity: 3)
        log.publish((1...5).map { Self.event("service", "update", id: "s\($0)", name: "s", at: Int64($0)) })
        #expect(log.recent().map(\.Actor.ID) == ["s3", "s4", "s5"])
        log.publish([Self.event("service", "update", id: "s6", name: "s", at: 6)])
        #expect(log.recent().map(\.Actor.ID) == ["s4", "s5", "s6"])
    }

    @Test func sinceAndUntilReplayAndAPastUntilEndsTheStream() async throws {
        let log = EventLog()
        log.publish([web, webNet, drained, removed])
        let now = Date(timeIntervalSince1970: 1000)
        // No bound: nothing replayed, live only (dockerd's behaviour).
        var r = await Self.collect(log.subscribe(EventQuery(), now: now))
        #expect(r.events.isEmpty && !r.finished)
        // since 101: the events at or after it; until in the past: then the stream ends.
        r = await Self.collect(log.subscribe(EventQuery(since: 101_000_000_000, until: 102_000_000_000), now: now))
        #expect(r.events.map(\.Actor.ID) == ["n0001", "node77"])
        #expect(r.finished)
        // until alone replays from the oldest.
        r = await Self.collect(log.subscribe(EventQuery(until: 101_000_000_000), now: now))
        #expect(r.events.map(\.Actor.ID) == ["abc123", "n0001"] && r.finished)
        // The filter applies to the replay too.
        let services = try Self.filter("{\"type\":{\"service\":true}}")
        r = await Self.collect(log.subscribe(EventQuery(since: 0, filter: services), now: now))
        #expect(r.events.map(\.Actor.ID) == ["abc123", "def456"] && !r.finished)
        #expect(log.subscriberCount == 0, "subscribers that stopped reading are removed")
    }

    @Test func liveEventsArriveAfterTheReplayAndAFutureUntilEndsTheStreamOnTime() async throws {
        let log = EventLog()
        log.publish([web])
        let start = Date()
        let until = EventMessage.nanoseconds(start) + 400_000_000
        let stream = log.subscribe(EventQuery(since: 0, until: until))
        let reader = Task {
            var ids: [String] = []
            for await e in stream { ids.append(e.Actor.ID) }
            return (ids, Date().timeIntervalSince(start))
        }
        try await Task.sleep(for: .milliseconds(50))
        log.publish([Self.event("service", "update", id: "live1", name: "web", at: until / 1_000_000_000 - 1)])
        let (ids, elapsed) = await reader.value
        #expect(ids == ["abc123", "live1"])
        #expect(elapsed >= 0.35 && elapsed < 3, "the stream ended \(elapsed) s after it began, until was 0.4 s")
        #expect(log.subscriberCount == 0)
    }

    @Test func inProcessSubscribersGetLiveFilteredEvents() async throws {
        let log = EventLog()
        log.publish([web])
        let stream = log.subscribe(filter: try Self.filter("{\"type\":{\"node\":true}}"))
        log.publish([webNet, drained, removed])
        var it = stream.makeAsyncIterator()
        let first = await it.next()
        #expect(first?.Actor.ID == "node77")
    }

    @Test func timeIsWholeSecondsAndTimeNanoTheFullInstant() throws {
        let e = EventMessage(
            type: "service", action: "create", actor: .init(ID: "x", Attributes: [:]), scope: "swarm", timeNano: 1_700_000_000_123_456_789)
        #expect(e.time == 1_700_000_000)
        let json = String(decoding: try JSONEncoder().encode(e), as: UTF8.self)
        for key in [
            "\"Type\":\"service\"", "\"Action\":\"create\"", "\"scope\":\"swarm\"", "\"time\":1700000000",
            "\"timeNano\":1700000000123456789",
        ] {
            #expect(json.contains(key), "\(json)")
        }
    }
}
