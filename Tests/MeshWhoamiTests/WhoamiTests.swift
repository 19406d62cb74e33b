import Foundation
import Testing
import MeshKernel
import MeshTestbed
import MeshWhoami

struct NotRoot: Error, CustomStringConvertible {
    var description: String { "whoami tests create network namespaces and need root" }
}

/// The whoami server in a backend namespace, asked by the real curl from the client namespace
/// of a LoadBalancerLab: it names itself and reports the client's own address.
@Suite("whoami")
struct WhoamiTests {
    @Test func answersWithItsNameTheClientAddressAndTheRequest() async throws {
        guard getuid() == 0 else { throw NotRoot() }
        let lab = try await LoadBalancerLab.build(tag: "mkt-whoami", backends: 1)
        defer { lab.destroy() }
        let server = try await WhoamiServer.start(name: "web1", namespace: lab.backendNamespaces[0], port: 8000)
        let backend = lab.backendAddresses[0]
        let out = try Exec.check([
            "ip", "netns", "exec", lab.client.name!, "curl", "-s", "--max-time", "3",
            "-H", "X-Probe: 42", "http://\(backend):8000/some/path?q=1",
        ])
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.first == "I'm web1", "\(out)")
        // Routed through lb with no NAT: the server sees the client namespace's own address.
        #expect(lines.contains { $0.hasPrefix("RemoteAddr: 10.99.0.2:") }, "\(out)")
        #expect(lines.contains("IP: \(backend)"), "\(out)")
        #expect(lines.contains("GET /some/path?q=1 HTTP/1.1"), "\(out)")
        #expect(lines.contains("X-Probe: 42"), "\(out)")

        // Keep-alive: two requests on one connection, both answered.
        let conn = try HTTPConnection(from: lab.client, to: backend, port: 8000)
        #expect(try conn.get().hasPrefix("I'm web1"))
        #expect(try conn.get().hasPrefix("I'm web1"))

        await server.stop()
        let after = try Exec.run(["ip", "netns", "exec", lab.client.name!, "curl", "-s", "--max-time", "2", "http://\(backend):8000/"])
        #expect(after.status != 0, "the server still answered after stop")
    }
}
