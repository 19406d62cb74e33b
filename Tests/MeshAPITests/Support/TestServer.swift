import Foundation
import MeshAPI
import MeshTestbed

/// An API server on a fresh unix socket in /tmp, backed by an InMemoryEngine.
struct TestServer {
    let server: APIServer
    let engine: InMemoryEngine
    let socket: String
    let dockerConfig: String

    static func start(maxBodyBytes: Int = 1 << 20) async throws -> TestServer {
        let tag = "meshapi-\(getpid())-\(UUID().uuidString.prefix(8))"
        let socket = "/tmp/\(tag).sock"
        let dockerConfig = "/tmp/\(tag)-docker"
        try FileManager.default.createDirectory(atPath: dockerConfig, withIntermediateDirectories: true)
        let engine = InMemoryEngine()
        var config = APIServerConfiguration()
        config.maxBodyBytes = maxBodyBytes
        let server = try await APIServer.start(socketPath: socket, router: APIRouter(backend: engine, configuration: config))
        return TestServer(server: server, engine: engine, socket: socket, dockerConfig: dockerConfig)
    }

    /// Synchronous so that a `defer` runs it even when a test throws: the files go at once, the
    /// listener closes in the background.
    func stop() {
        try? FileManager.default.removeItem(atPath: dockerConfig)
        unlink(socket)
        let server = self.server
        Task { await server.stop() }
    }

    /// The real docker CLI against this server, with a config directory of its own.
    func docker(_ args: String...) async throws -> Exec.Output { try await docker(args) }

    func docker(_ args: [String]) async throws -> Exec.Output {
        try await offPool(["docker", "--config", dockerConfig, "-H", "unix://\(socket)"] + args)
    }

    /// curl over the unix socket: returns status, headers (lowercased names) and body.
    func curl(_ method: String, _ path: String, body: String? = nil, headers: [String] = []) async throws -> (
        status: Int, headers: [String: String], body: String
    ) {
        var argv = ["curl", "-s", "-i", "--max-time", "10", "--unix-socket", socket, "-X", method]
        if method == "HEAD" { argv = argv.filter { $0 != "-X" && $0 != "HEAD" } + ["-I"] }
        for h in headers { argv += ["-H", h] }
        if body != nil {
            argv += ["--data-binary", "@-"]
            if !headers.contains(where: { $0.lowercased().hasPrefix("content-type") }) { argv += ["-H", "Content-Type: application/json"] }
        }
        argv.append("http://api.moby.localhost\(path)")
        let out = try await offPool(argv, stdin: body)
        return Self.parse(out.stdout)
    }

    static func parse(_ raw: String) -> (status: Int, headers: [String: String], body: String) {
        let sep = raw.range(of: "\r\n\r\n")
        let headText = sep.map { String(raw[..<$0.lowerBound]) } ?? raw
        let body = sep.map { String(raw[$0.upperBound...]) } ?? ""
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.isEmpty ? "" : lines.removeFirst()
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for l in lines {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers, body)
    }
}

/// Runs a process on a thread of its own: Exec.run blocks, and blocking the few threads of
/// Swift's cooperative pool would starve the server the process is talking to.
func offPool(_ argv: [String], stdin: String? = nil) async throws -> Exec.Output {
    try await withCheckedThrowingContinuation { (k: CheckedContinuation<Exec.Output, Error>) in
        Thread {
            do { k.resume(returning: try Exec.run(argv, stdin: stdin)) } catch { k.resume(throwing: error) }
        }.start()
    }
}
