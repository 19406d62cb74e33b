import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// `docker events` against a real manager: the store's change stream reaches the CLI as the changes
/// happen, and `--since`/`--until` replay the manager's log.
@Suite(.serialized) struct EventsTests {
    /// `%d.%09d`, what the CLI itself sends for `--since`/`--until`.
    static func timestamp(_ d: Date) -> String {
        let t = d.timeIntervalSince1970, seconds = t.rounded(.down)
        let fraction = String(min(999_999_999, Int64(((t - seconds) * 1e9).rounded())))
        return "\(Int64(seconds))." + String(repeating: "0", count: 9 - fraction.count) + fraction
    }

    static func json(_ line: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
    }

    static func attributes(_ line: String) -> [String: String] {
        (json(line)["Actor"] as? [String: Any])?["Attributes"] as? [String: String] ?? [:]
    }

    @Test func dockerEventsShowsServiceChangesAsTheyHappenAndReplays() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mde", nodes: 2)
        defer { c.destroy() }
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let start = Date()

        // `--since` the start: the subscription's replay and its registration are one step on the
        // manager, so once any line has arrived the stream is live, and nothing made after `start` is lost.
        let follower = try LineStream(
            [
                "docker", "--config", "\(c.directory)/docker", "-H", "unix://\(c.socket(1))", "events", "--since",
                Self.timestamp(start), "--filter", "type=service", "--format", "{{json .}}",
            ])
        defer { follower.stop() }
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "canary", "--replicas", "0", "meshd/whoami"]), "canary", c)
        let live = await follower.waitForLine(within: .seconds(30)) { Self.attributes($0)["name"] == "canary" }
        try #require(live != nil, "docker events showed nothing: \(follower.lines.map(\.text)) \(follower.stderr)")

        // A worker joins; its own `docker events` stays open and shows nothing, as dockerd's shows no
        // swarm events on a worker.
        let token = ClusterTests.check(try c.docker(1, ["swarm", "join-token", "-q", "worker"]), "join-token", c).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        _ = ClusterTests.check(try c.docker(2, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "swarm join", c)
        let onWorker = try LineStream(
            ["docker", "--config", "\(c.directory)/docker", "-H", "unix://\(c.socket(2))", "events", "--format", "{{json .}}"])
        defer { onWorker.stop() }

        /// Runs a docker command and returns the first new follower line that `match` accepts, with how
        /// long after the command returned it came (negative: before).
        func step(_ args: [String], _ what: String, _ match: @escaping (String) -> Bool) async throws -> String? {
            let seen = follower.lines.count
            _ = ClusterTests.check(try c.docker(1, args), what, c)
            let returned = ContinuousClock.now
            guard let line = await follower.waitForLine(after: seen, within: .seconds(2), match) else {
                Issue.record("\(what): no matching event within 2 s; got \(follower.lines.dropFirst(seen).map(\.text)) \(follower.stderr)")
                return nil
            }
            #expect(line.at - returned < .seconds(2), "\(what): the event came \(line.at - returned) after the command")
            return line.text
        }

        let created = try await step(
            ["service", "create", "--detach", "--name", "web", "--replicas", "1", "meshd/whoami"], "service create"
        ) { Self.json($0)["Action"] as? String == "create" }
        let serviceID = created.flatMap { (Self.json($0)["Actor"] as? [String: Any])?["ID"] as? String } ?? ""
        if let created {
            #expect(Self.json(created)["Type"] as? String == "service" && Self.json(created)["scope"] as? String == "swarm")
            #expect(Self.attributes(created)["name"] == "web", "\(created)")
            let inspected = try c.docker(1, ["service", "inspect", "web", "--format", "{{.ID}}"]).stdout
            #expect(inspected.trimmingCharacters(in: .whitespacesAndNewlines) == serviceID)
        }

        let scaled = try await step(["service", "scale", "--detach", "web=3"], "service scale") {
            Self.attributes($0)["replicas.new"] == "3"
        }
        if let scaled {
            #expect(Self.json(scaled)["Action"] as? String == "update")
            #expect(Self.attributes(scaled) == ["name": "web", "replicas.old": "1", "replicas.new": "3"], "\(scaled)")
        }

        let removed = try await step(["service", "rm", "web"], "service rm") { Self.json($0)["Action"] as? String == "remove" }
        if let removed { #expect(Self.attributes(removed) == ["name": "web"] && removed.contains(serviceID)) }
        // Only services passed the filter (the service's tasks and the node wrote the store too).
        #expect(follower.lines.allSatisfy { Self.json($0.text)["Type"] as? String == "service" }, "\(follower.lines.map(\.text))")

        print("docker events --filter type=service:\n" + follower.lines.map(\.text).joined(separator: "\n"))

        // A node change: the availability pair dockerd reports.
        _ = ClusterTests.check(try c.docker(1, ["node", "update", "--availability", "drain", "node1"]), "node update", c)
        let end = Date()

        // --since/--until in the past: the manager's log replayed in order, then the CLI exits by itself.
        let window = ["--since", Self.timestamp(start), "--until", Self.timestamp(end)]
        let replay = try c.docker(
            1, ["events"] + window + ["--filter", "type=service", "--format", "{{.Action}} {{.Actor.Attributes.name}}"])
        let actions = ClusterTests.lines(replay.stdout).filter { $0.hasSuffix(" web") }
        #expect(replay.succeeded, "\(replay.stderr)")
        print("replayed:\n\(replay.stdout)")
        #expect(actions.first == "create web" && actions.last == "remove web" && actions.contains("update web"), "\(actions)")
        let removes = try c.docker(1, ["events"] + window + ["--filter", "event=remove", "--format", "{{.Type}} {{.Action}}"])
        #expect(removes.stdout == "service remove\n", "\(removes.stdout)\(removes.stderr)")
        let nodes = try c.docker(1, ["events"] + window + ["--filter", "type=node", "--format", "{{json .Actor.Attributes}}"])
        #expect(
            ClusterTests.lines(nodes.stdout).contains {
                Self.attributes("{\"Actor\":{\"Attributes\":\($0)}}")["availability.new"] == "drain"
            },
            "\(nodes.stdout)\(nodes.stderr)")
        let nodeActions = try c.docker(
            1, ["events"] + window + ["--filter", "type=node", "--format", "{{.Action}} {{.Actor.Attributes.name}}"])
        #expect(ClusterTests.lines(nodeActions.stdout).contains("create node2"), "the worker's join: \(nodeActions.stdout)")
        #expect(
            onWorker.isRunning && onWorker.lines.isEmpty,
            "on the worker: \(onWorker.lines.map(\.text)) \(onWorker.stderr) (exit \(String(describing: onWorker.terminationStatus)))")
        // A later --since sees nothing before it.
        let none = try c.docker(
            1, ["events", "--since", Self.timestamp(end), "--until", Self.timestamp(Date()), "--filter", "type=service"])
        #expect(none.succeeded && none.stdout.isEmpty, "\(none.stdout)")

        // An --until still ahead ends the stream when it comes.
        let bounded = try LineStream(
            [
                "docker", "--config", "\(c.directory)/docker", "-H", "unix://\(c.socket(1))", "events", "--until",
                Self.timestamp(Date() + 1.5),
            ])
        defer { bounded.stop() }
        #expect(await bounded.waitForExit(within: .seconds(10)), "docker events --until did not end")
        #expect(bounded.terminationStatus == 0, "\(bounded.stderr)")

        // A bad filter is refused by name.
        let refused = try c.docker(1, ["events", "--filter", "servce=web"])
        #expect(!refused.succeeded && refused.stderr.contains("invalid filter 'servce'"), "\(refused.stderr)")
    }
}
