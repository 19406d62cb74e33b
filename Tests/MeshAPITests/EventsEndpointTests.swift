import Foundation
import MeshAPI
import MeshTestbed
import Testing

/// `GET /events` over the socket: query parsing, dockerd's 400s, the JSON-lines stream, and the real
/// docker CLI reading it.
@Suite("GET /events")
struct EventsEndpointTests {
    static func event(_ action: String, id: String, name: String, at seconds: Int64) -> EventMessage {
        EventMessage(
            type: "service", action: action, actor: .init(ID: id, Attributes: ["name": name]), scope: "swarm",
            timeNano: seconds * 1_000_000_000 + 5)
    }

    @Test func badParametersAreDockerds400s() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        let bad = try await t.curl("GET", "/v1.50/events?since=yesterday")
        #expect(bad.status == 400 && bad.headers["content-type"] == "application/json")
        #expect(
            bad.body
                == "{\"message\":\"invalid value for 'since': invalid timestamp \\\"yesterday\\\": invalid seconds \\\"yesterday\\\": invalid syntax\"}\n",
            "\(bad.body)")
        let badNanos = try await t.curl("GET", "/v1.50/events?until=100.5x")
        #expect(badNanos.status == 400 && badNanos.body.contains("invalid value for 'until'"), "\(badNanos.body)")
        let order = try await t.curl("GET", "/v1.50/events?since=200&until=100")
        #expect(
            order.status == 400 && order.body == "{\"message\":\"`since` time (200) cannot be after `until` time (100)\"}\n",
            "\(order.body)")
        let unknown = try await t.curl("GET", "/v1.50/events?filters=%7B%22servce%22%3A%7B%22web%22%3Atrue%7D%7D")
        #expect(unknown.status == 400 && unknown.body == "{\"message\":\"invalid filter 'servce'\"}\n", "\(unknown.body)")
        let badType = try await t.curl("GET", "/v1.50/events?filters=%7B%22type%22%3A%7B%22services%22%3Atrue%7D%7D")
        #expect(badType.status == 400 && badType.body.contains("invalid filter 'type=[services]'"), "\(badType.body)")
        let notJSON = try await t.curl("GET", "/v1.50/events?filters=type%3Dservice")
        #expect(notJSON.status == 400 && notJSON.body.contains("invalid filter"), "\(notJSON.body)")
        #expect(try await t.curl("POST", "/v1.50/events").status == 404)
        // None of these reached the backend.
        #expect(await t.engine.eventQueries.isEmpty)
    }

    @Test func aPastWindowReplaysTheBufferAsJSONLinesAndEnds() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        t.engine.eventLog.publish([
            Self.event("create", id: "s1", name: "web", at: 100), Self.event("update", id: "s1", name: "web", at: 150),
            Self.event("remove", id: "s1", name: "web", at: 300),
        ])
        let filters = "%7B%22type%22%3A%7B%22service%22%3Atrue%7D%2C%22event%22%3A%5B%22create%22%2C%22update%22%5D%7D"
        let r = try await t.curl("GET", "/v1.50/events?since=100.000000005&until=200.5&filters=\(filters)")
        #expect(r.status == 200 && r.headers["content-type"] == "application/json", "\(r)")
        let lines = r.body.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(r.body)")
        #expect(
            lines.first
                == "{\"Action\":\"create\",\"Actor\":{\"Attributes\":{\"name\":\"web\"},\"ID\":\"s1\"},\"Type\":\"service\",\"scope\":\"swarm\",\"time\":100,\"timeNano\":100000000005}"
        )
        let query = try #require(await t.engine.eventQueries.last)
        #expect(query.since == 100_000_000_005 && query.until == 200_500_000_000)
        #expect(query.filter.args.values == ["type": ["service"], "event": ["create", "update"]])
    }

    @Test func theDockerCLIReadsTheStreamLiveAndReplaysWithSinceAndUntil() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        t.engine.eventLog.publish([Self.event("create", id: "old1", name: "old", at: 1_000)])
        let follower = try LineStream([
            "docker", "--config", t.dockerConfig, "-H", "unix://\(t.socket)", "events", "--filter", "type=service", "--format",
            "{{json .}}",
        ])
        defer { follower.stop() }
        // The CLI's request reaches the backend with its filter; nothing before it is replayed.
        let subscribed = await waitUntil(.seconds(10)) { await t.engine.eventQueries.count == 1 }
        #expect(subscribed, "docker events never asked: \(follower.stderr)")
        let query = await t.engine.eventQueries.first
        #expect(query?.since == nil && query?.until == nil && query?.filter.args.values == ["type": ["service"]])

        let published = ContinuousClock.now
        t.engine.eventLog.publish([
            EventMessage(
                type: "network", action: "create", actor: .init(ID: "n1", Attributes: ["name": "demo"]), scope: "swarm",
                timeNano: EventMessage.nanoseconds(Date())),
            EventMessage(
                type: "service", action: "update", actor: .init(ID: "s9", Attributes: ["name": "web", "replicas.new": "5"]),
                scope: "swarm", timeNano: EventMessage.nanoseconds(Date())),
        ])
        let line = await follower.waitForLine(within: .seconds(5)) { $0.contains("\"s9\"") }
        let got = try #require(line, "no line from docker events: \(follower.lines.map(\.text)) \(follower.stderr)")
        #expect(got.at - published < .seconds(2))
        let decoded = try JSONSerialization.jsonObject(with: Data(got.text.utf8)) as? [String: Any]
        #expect(decoded?["Type"] as? String == "service" && decoded?["Action"] as? String == "update")
        #expect((decoded?["Actor"] as? [String: Any])?["Attributes"] as? [String: String] == ["name": "web", "replicas.new": "5"])
        #expect(!follower.lines.contains { $0.text.contains("\"n1\"") }, "the network event passed a type=service filter")
        #expect(!follower.lines.contains { $0.text.contains("old1") })

        // A client that goes away takes its subscription with it.
        #expect(t.engine.eventLog.subscriberCount == 1)
        follower.stop()
        let gone = await waitUntil(.seconds(5)) { t.engine.eventLog.subscriberCount == 0 }
        #expect(gone, "the subscription of a client that hung up is still there")

        // --since/--until in the past: the CLI prints the replay and exits by itself.
        let replay = try await t.docker("events", "--since", "999", "--until", "1001", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}")
        #expect(replay.succeeded && replay.stdout == "service create old1\n", "\(replay.stdout)\(replay.stderr)")
        let refused = try await t.docker("events", "--filter", "servce=web", "--until", "1")
        #expect(!refused.succeeded && refused.stderr.contains("invalid filter 'servce'"), "\(refused.stderr)")
    }
}

/// Polls `body` every 50 ms until it holds or `timeout` passes.
func waitUntil(_ timeout: Duration, _ body: () async throws -> Bool) async rethrows -> Bool {
    let start = ContinuousClock.now
    while ContinuousClock.now - start < timeout {
        if try await body() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await body()
}
