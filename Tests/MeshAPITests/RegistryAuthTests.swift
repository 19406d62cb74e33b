import Foundation
import MeshAPI
import Testing

/// `X-Registry-Auth`: meshd pulls anonymously, so credentials a client sends for a pull (docker
/// pull when logged in, `service create --with-registry-auth`) are refused by name, while the
/// CLI's empty `{}` passes.
@Suite struct RegistryAuthTests {
    static func encoded(_ json: String) -> String {
        Data(json.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @Test func credentialsAreRefusedByNameAndAnEmptyObjectPasses() async throws {
        let router = APIRouter(backend: InMemoryEngine())
        let uri = "/v1.50/images/create?fromImage=127.0.0.1:5000/a&tag=1"
        let refused = await router.handle(
            method: .POST, uri: uri, contentType: nil, body: [], registryAuth: Self.encoded(#"{"username":"u","password":"p"}"#))
        let text = String(decoding: Self.bytes(refused), as: UTF8.self)
        #expect(refused.statusCode == 400 && text.contains("X-Registry-Auth") && text.contains("username, password"), "\(text)")
        let garbage = await router.handle(method: .POST, uri: uri, contentType: nil, body: [], registryAuth: "%%%")
        #expect(garbage.statusCode == 400)
        // `{}` and no header: the request goes on (this engine has no image store: 501).
        for auth in ["e30=", nil] {
            let passed = await router.handle(method: .POST, uri: uri, contentType: nil, body: [], registryAuth: auth)
            #expect(passed.statusCode == 501, "\(String(describing: auth)): \(passed.statusCode)")
        }
        let service = await router.handle(
            method: .POST, uri: "/v1.50/services/create", contentType: "application/json", body: Array(#"{"Name":"x"}"#.utf8),
            registryAuth: Self.encoded(#"{"identitytoken":"tok"}"#))
        #expect(service.statusCode == 400 && String(decoding: Self.bytes(service), as: UTF8.self).contains("identitytoken"))
    }

    static func bytes(_ r: APIResponse) -> [UInt8] {
        if case .bytes(let b) = r.body { return b }
        return []
    }
}
