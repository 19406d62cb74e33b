import Foundation
import MeshAPI
import MeshTestbed
import Testing

/// The API models hold every field of a Docker ServiceSpec: a body decoded as the router decodes it and
/// encoded as the router encodes answers is the same JSON (keys sorted), so nothing a client sent is lost
/// before the backend sees it.
@Suite struct SpecModelTests {
    static func canonical(_ data: Data) throws -> String {
        let tree = try JSONSerialization.jsonObject(with: data)
        return String(decoding: try JSONSerialization.data(withJSONObject: tree, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self)
    }

    @Test func everyServiceSpecFieldDecodesAndEncodesUnchanged() throws {
        let body = Data(SpecFixtures.fullServiceSpec.utf8)
        let spec = try EngineJSON.decodeRequest(ServiceSpec.self, from: body)
        #expect(try Self.canonical(try EngineJSON.encoder().encode(spec)) == (try Self.canonical(body)))
        // And the normaliser (defaults, form rules) changes nothing in a spec that already has every field.
        let normalised = try ServiceSpecNormalizer.normalize(spec)
        #expect(try Self.canonical(try EngineJSON.encoder().encode(normalised)) == (try Self.canonical(body)))
    }

    /// Keys in any case still land in the new fields (docker-py's `Healthcheck`, lower-case `tty`).
    @Test func newFieldsFoldKeys() throws {
        let body =
            #"{"TaskTemplate": {"containerspec": {"image": "x", "tty": true, "healthcheck": {"test": ["NONE"]}, "sysctls": {"A": "b"}}}}"#
        let spec = try EngineJSON.decodeRequest(ServiceSpec.self, from: Data(body.utf8))
        #expect(spec.TaskTemplate.ContainerSpec?.TTY == true)
        #expect(spec.TaskTemplate.ContainerSpec?.Healthcheck?.Test == ["NONE"])
        // Map keys are data, not field names: they keep their case.
        #expect(spec.TaskTemplate.ContainerSpec?.Sysctls == ["A": "b"])
    }

    /// Over the socket: create with every field, inspect, the same spec back.
    @Test func fullSpecOverHTTP() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.engine.initSwarm(SwarmInitRequest())
        let net = try await t.engine.createNetwork(NetworkCreateRequest(Name: "demo", Driver: "overlay"))
        let body = SpecFixtures.fullServiceSpec.replacingOccurrences(of: "NETWORK", with: net.Id)
        let created = try await t.curl("POST", "/v1.50/services/create", body: body)
        #expect(created.status == 201, "\(created.body)")
        let shown = try await t.curl("GET", "/v1.50/services/full")
        let service = try #require(try JSONSerialization.jsonObject(with: Data(shown.body.utf8)) as? [String: Any])
        let spec = try JSONSerialization.data(withJSONObject: service["Spec"] ?? [:])
        #expect(try Self.canonical(spec) == (try Self.canonical(Data(body.utf8))))
    }
}
