import Foundation
import MeshAPI
import Testing

/// The server over its unix socket with curl: headers, status codes and error bodies exactly as
/// the docker CLI needs them.
@Suite("HTTP over the unix socket")
struct HTTPErrorTests {
    @Test func pingAnswersHeadAndGetWithTheNegotiationHeaders() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        let head = try await t.curl("HEAD", "/_ping")
        #expect(head.status == 200)
        #expect(head.headers["api-version"] == "1.50")
        #expect(head.headers["ostype"] == "linux")
        #expect(head.headers["swarm"] == "inactive")
        #expect(head.body.isEmpty)
        let get = try await t.curl("GET", "/_ping")
        #expect(get.status == 200 && get.body == "OK")
        #expect(get.headers["cache-control"] == "no-cache, no-store, must-revalidate")
        _ = try await t.engine.initSwarm(SwarmInitRequest())
        #expect(try await t.curl("HEAD", "/_ping").headers["swarm"] == "active/manager")
    }

    @Test func versionPrefixIsOptionalAndBounded() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        let plain = try await t.curl("GET", "/version")
        let prefixed = try await t.curl("GET", "/v1.50/version")
        #expect(plain.status == 200 && prefixed.status == 200)
        #expect(prefixed.body.contains("\"ApiVersion\":\"1.50\""))
        #expect(try await t.curl("GET", "/v1.24/version").status == 200)
        let tooNew = try await t.curl("GET", "/v1.51/version")
        #expect(tooNew.status == 400)
        #expect(tooNew.body == "{\"message\":\"client version 1.51 is too new. Maximum supported API version is 1.50\"}\n")
        let tooOld = try await t.curl("GET", "/v1.12/info")
        #expect(tooOld.status == 400 && tooOld.body.contains("too old"))
    }

    @Test func errorsAreJSONMessagesWithExactlyApplicationJSON() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        let unknown = try await t.curl("GET", "/v1.50/plugins")
        #expect(unknown.status == 404)
        #expect(unknown.headers["content-type"] == "application/json")
        #expect(unknown.body == "{\"message\":\"page not found\"}\n")

        let inactive = try await t.curl("GET", "/v1.50/services?status=true")
        #expect(inactive.status == 503)
        #expect(inactive.body.contains("This node is not a swarm manager. Use \\\"docker swarm init\\\""))
        #expect(inactive.headers["content-type"] == "application/json")

        #expect(try await t.curl("POST", "/v1.50/swarm/init", body: "{\"ListenAddr\":\"0.0.0.0:2377\"}").status == 200)
        let again = try await t.curl("POST", "/v1.50/swarm/init", body: "{}")
        #expect(again.status == 503 && again.body.contains("already part of a swarm"))

        let missing = try await t.curl("GET", "/v1.50/services/nosuch?insertDefaults=true")
        #expect(missing.status == 404 && missing.body == "{\"message\":\"service nosuch not found\"}\n")
        #expect(try await t.curl("GET", "/v1.50/networks/nosuch").body.contains("network nosuch not found"))
        #expect(try await t.curl("DELETE", "/v1.50/nodes/nosuch").status == 404)
        #expect(try await t.curl("GET", "/v1.50/tasks/nosuch").status == 404)
        #expect(try await t.curl("PUT", "/v1.50/services").status == 404)
    }

    @Test func malformedBodiesAreClear400s() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.engine.initSwarm(SwarmInitRequest())
        let bad = try await t.curl("POST", "/v1.50/services/create", body: "{\"Name\":")
        #expect(bad.status == 400 && bad.body.contains("invalid JSON"), "\(bad)")
        let wrongType = try await t.curl(
            "POST", "/v1.50/services/create",
            body: "{\"Name\":\"w\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"x\"}},\"Mode\":{\"Replicated\":{\"Replicas\":\"two\"}}}"
        )
        #expect(wrongType.status == 400)
        #expect(wrongType.body.contains("Mode.Replicated.Replicas must be of type number"), "\(wrongType.body)")
        let empty = try await t.curl("POST", "/v1.50/networks/create", body: "")
        #expect(empty.status == 400 && empty.body.contains("empty"))
        let notJSON = try await t.curl("POST", "/v1.50/networks/create", body: "{\"Name\":\"x\"}", headers: ["Content-Type: text/plain"])
        #expect(notJSON.status == 400 && notJSON.body.contains("must be 'application/json'"))
        // A known field meshd cannot honour is refused by name (the cluster's rules, such as a missing
        // image, are meshd's backend's: SpecRuleTests).
        let secrets = try await t.curl(
            "POST", "/v1.50/services/create",
            body: "{\"Name\":\"w\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"x\",\"Secrets\":[{}]}}}")
        #expect(secrets.status == 400 && secrets.body.contains("ContainerSpec.Secrets"), "\(secrets)")
        let badFilter = try await t.curl("GET", "/v1.50/services?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D")
        #expect(badFilter.status == 400 && badFilter.body.contains("invalid filter 'bogus'"))
        let garbageFilter = try await t.curl("GET", "/v1.50/tasks?filters=%5B1")
        #expect(garbageFilter.status == 400)
        let badVersion = try await t.curl("POST", "/v1.50/nodes/x/update?version=abc", body: "{}")
        #expect(badVersion.status == 400 && badVersion.body.contains("invalid node version 'abc'"))
        let badRole = try await t.curl(
            "POST", "/v1.50/nodes/node1/update?version=1", body: "{\"Role\":\"boss\",\"Availability\":\"active\"}")
        #expect(badRole.status == 400 && badRole.body.contains("invalid role"))
        // Still serving.
        #expect(try await t.curl("GET", "/_ping").status == 200)
    }

    @Test func oversizedBodiesGet413AndTheServerGoesOn() async throws {
        let t = try await TestServer.start(maxBodyBytes: 4096)
        defer { t.stop() }
        let big = "{\"Name\":\"" + String(repeating: "a", count: 10_000) + "\"}"
        let r = try await t.curl("POST", "/v1.50/networks/create", body: big)
        #expect(r.status == 413 && r.body.contains("larger than the limit of 4096 bytes"), "\(r)")
        let chunked = try await t.curl(
            "POST", "/v1.50/networks/create", body: big, headers: ["Transfer-Encoding: chunked", "Content-Type: application/json"])
        #expect(chunked.status == 413, "\(chunked)")
        #expect(try await t.curl("GET", "/_ping").status == 200)
    }

    @Test func conflictsStaleVersionsAndAmbiguity() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.engine.initSwarm(SwarmInitRequest())
        let spec = "{\"Name\":\"web\",\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"nginx\"}},\"Mode\":{\"Replicated\":{}}}"
        let created = try await t.curl("POST", "/v1.50/services/create", body: spec)
        #expect(created.status == 201 && created.body.contains("\"ID\""))
        let dup = try await t.curl("POST", "/v1.50/services/create", body: spec)
        #expect(dup.status == 409)
        #expect(
            dup.body.contains("rpc error: code = AlreadyExists desc = name conflicts with an existing object: service web already exists"))
        // `Replicated:{}` became one replica, and it is always present in answers.
        let svc = try await t.engine.inspectService("web")
        #expect(svc.Spec.Mode?.Replicated?.Replicas == 1)
        let stale = try await t.curl("POST", "/v1.50/services/web/update?version=\(svc.Version.Index - 1)", body: spec)
        #expect(stale.status == 500 && stale.body.contains("update out of sequence"))
        let ok = try await t.curl(
            "POST", "/v1.50/services/web/update?version=\(svc.Version.Index)",
            body: spec.replacingOccurrences(of: "{}", with: "{\"Replicas\":3}"))
        #expect(ok.status == 200 && ok.body == "{\"Warnings\":null}\n", "\(ok)")
        #expect(try await t.engine.inspectService("web").Spec.Mode?.Replicated?.Replicas == 3)
        let rollbackNone = try await t.curl(
            "POST", "/v1.50/services/create",
            body: spec.replacingOccurrences(of: "\"web\"", with: "\"other\""))
        #expect(rollbackNone.status == 201)
        let other = try await t.engine.inspectService("other")
        let noPrev = try await t.curl("POST", "/v1.50/services/other/update?rollback=previous&version=\(other.Version.Index)", body: spec)
        #expect(noPrev.status == 400 && noPrev.body.contains("does not have a previous spec"))
        // Every ID starts with one of 36 characters: with enough services, a one-character prefix is ambiguous.
        for k in 0..<40 {
            _ = try await t.curl("POST", "/v1.50/services/create", body: spec.replacingOccurrences(of: "\"web\"", with: "\"s\(k)\""))
        }
        let services = try await t.engine.listServices(ServiceFilter(), status: false)
        let prefix = Dictionary(grouping: services, by: { $0.ID.prefix(1) }).first { $0.value.count > 1 }!.key
        let ambiguous = try await t.curl("GET", "/v1.50/services/\(prefix)")
        #expect(ambiguous.status == 400 && ambiguous.body.contains("is ambiguous"), "\(ambiguous)")
        let dupNet = try await t.curl("POST", "/v1.50/networks/create", body: "{\"Name\":\"ingress\",\"Driver\":\"overlay\"}")
        #expect(dupNet.status == 409 && dupNet.body.contains("network with name ingress already exists"))
        let predefined = try await t.curl("POST", "/v1.50/networks/create", body: "{\"Name\":\"host\"}")
        #expect(predefined.status == 403 && predefined.body.contains("pre-defined network"))
    }

    @Test func logsAreMultiplexedFramesWithDetails() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.engine.initSwarm(SwarmInitRequest())
        _ = try await t.engine.createService(
            try ServiceSpecNormalizer.normalize(
                ServiceSpec(Name: "web", TaskTemplate: TaskSpec(ContainerSpec: ContainerSpec(Image: "nginx")), Mode: .replicated(1))))
        let file = t.dockerConfig + "/logs.bin"
        _ = try await offPool([
            "curl", "-s", "-o", file, "--unix-socket", t.socket,
            "http://x/v1.50/services/web/logs?details=1&stdout=1&stderr=1&tail=all",
        ])
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        // Two frames: stdout then stderr, each `[stream,0,0,0,len]` + one line.
        #expect(bytes.count > 16)
        #expect(bytes[0] == 1 && bytes[1] == 0)
        let len = Int(bytes[4]) << 24 | Int(bytes[5]) << 16 | Int(bytes[6]) << 8 | Int(bytes[7])
        let first = String(decoding: bytes[8..<(8 + len)], as: UTF8.self)
        #expect(first.hasPrefix("com.docker.swarm.node.id="), "\(first)")
        #expect(first.hasSuffix(" task 1 listening\n"))
        #expect(bytes[8 + len] == 2)
        let none = try await t.curl("GET", "/v1.50/services/web/logs")
        #expect(none.status == 400 && none.body.contains("you must choose at least one stream"))
    }

    @Test func aFollowerThatHangsUpEndsItsStream() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.engine.initSwarm(SwarmInitRequest())
        _ = try await t.engine.createService(
            try ServiceSpecNormalizer.normalize(
                ServiceSpec(Name: "web", TaskTemplate: TaskSpec(ContainerSpec: ContainerSpec(Image: "nginx")), Mode: .replicated(2))))
        let file = t.dockerConfig + "/follow.bin"
        let out = try await offPool([
            // 3 s: on a loaded machine 1 s could pass before the first frame (no file at all then).
            "curl", "-s", "--max-time", "3", "-o", file, "--unix-socket", t.socket,
            "http://x/v1.50/services/web/logs?follow=1&stdout=1&stderr=1",
        ])
        #expect(out.status == 28, "curl should have timed out on an open stream")
        var decoder = LogStreamDecoder()
        let received = FileManager.default.contents(atPath: file)
        #expect(received != nil, "no byte of the stream within 3 s")
        let frames = try decoder.feed(Array(received ?? Data()))
        #expect(frames.count == 4)
        var followers = await t.engine.s.followers
        for _ in 0..<40 where followers != 0 {
            try await Task.sleep(for: .milliseconds(50))
            followers = await t.engine.s.followers
        }
        #expect(followers == 0, "the backend's stream outlived its reader")
        #expect(try await t.curl("GET", "/_ping").status == 200)
    }
}
