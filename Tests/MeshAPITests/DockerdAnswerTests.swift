import Foundation
import MeshAPI
import Testing

/// Answers whose exact bytes dockerd fixes and clients read.
@Suite("dockerd's answers")
struct DockerdAnswerTests {
    @Test func serviceUpdateAnswersWarningsNullAndUnlockKeyIsEmpty() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.engine.initSwarm(SwarmInitRequest())
        let body = "{\"Name\": \"w\", \"TaskTemplate\": {\"ContainerSpec\": {\"Image\": \"busybox\"}}}"
        #expect(try await t.curl("POST", "/v1.50/services/create", body: body).status == 201)
        let version = try #require(await t.engine.s.services.first?.Version.Index)
        let update = try await t.curl("POST", "/v1.50/services/w/update?version=\(version)", body: body)
        #expect(update.status == 200 && update.body == "{\"Warnings\":null}\n", "\(update)")
        // With warnings they are listed, as Go lists them.
        var line = try EngineJSON.encoder().encode(ServiceUpdateResponse(Warnings: ["image not pinned"]))
        line.append(0x0A)
        #expect(String(decoding: line, as: UTF8.self) == "{\"Warnings\":[\"image not pinned\"]}\n")

        let key = try await t.curl("GET", "/v1.50/swarm/unlockkey")
        #expect(key.status == 200 && key.body == "{\"UnlockKey\":\"\"}\n", "\(key)")
        // `swarm unlock` on a node that is not locked, and a key that is no string.
        let unlock = try await t.curl("POST", "/v1.50/swarm/unlock", body: "{\"UnlockKey\": \"SWMKEY-1-x\"}")
        #expect(unlock.status == 409 && unlock.body.contains("swarm is not locked"), "\(unlock)")
        let malformed = try await t.curl("POST", "/v1.50/swarm/unlock", body: "{\"UnlockKey\": 5}")
        #expect(malformed.status == 400 && malformed.body.contains("UnlockKey"), "\(malformed)")
    }
}
