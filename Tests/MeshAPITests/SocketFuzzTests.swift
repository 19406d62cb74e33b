import Foundation
import MeshAPI
import Testing

/// Writes `bytes` to a fresh connection to the unix socket, half-closes, and reads the answer
/// until the server closes or two seconds pass. Blocking: runs on a thread of its own.
func rawExchange(_ path: String, _ bytes: [UInt8]) async -> [UInt8] {
    await withCheckedContinuation { (k: CheckedContinuation<[UInt8], Never>) in
        Thread {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return k.resume(returning: []) }
            defer { close(fd) }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = b }
            }
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard ok == 0 else { return k.resume(returning: []) }
            var tv = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
            shutdown(fd, Int32(SHUT_WR))
            var answer: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 65536)
            while answer.count < 1 << 20 {
                let n = recv(fd, &buf, buf.count, 0)
                if n <= 0 { break }
                answer += buf[0..<n]
            }
            k.resume(returning: answer)
        }.start()
    }
}

@Suite("socket fuzz")
struct SocketFuzzTests {
    static let inputs = 600

    /// Raw bytes on the socket: mutated CLI requests (heads and bodies), random bytes, pipelined
    /// requests, oversized heads. Every connection gets an HTTP answer or a close; the server
    /// keeps answering `/_ping` throughout.
    @Test func serverSurvivesGarbageOnTheSocket() async throws {
        let t = try await TestServer.start(maxBodyBytes: 64 << 10)
        defer { t.stop() }
        _ = try await t.engine.initSwarm(SwarmInitRequest())
        var rng = SplitMix(seed: 0xF0CC_E7)
        var answered = 0
        for n in 0..<Self.inputs {
            let (path, json) = cliBodies.randomElement(using: &rng)!
            let valid =
                "POST \(path) HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n\(json)"
            var bytes: [UInt8]
            switch n % 5 {
            case 0: bytes = mutate(valid, &rng)
            case 1: bytes = (0..<Int.random(in: 0...512, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 2: bytes = Array((valid + "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n" + valid).utf8)
            case 3:
                bytes = Array(
                    "GET /v1.50/services HTTP/1.1\r\nX-Long: \(String(repeating: "a", count: Int.random(in: 1000...200_000, using: &rng)))\r\n\r\n"
                        .utf8)
            default:
                // A head announcing a body longer than what follows, or than the limit.
                let length = [10, 1 << 20, Int(Int32.max)].randomElement(using: &rng)!
                bytes = Array(
                    "POST /v1.50/services/create HTTP/1.1\r\nContent-Length: \(length)\r\nContent-Type: application/json\r\n\r\n{\"Name\":"
                        .utf8)
            }
            let answer = await rawExchange(t.socket, bytes)
            if answer.starts(with: Array("HTTP/1.1 ".utf8)) { answered += 1 }
            if n % 100 == 99 {
                #expect(try await t.curl("GET", "/_ping").status == 200, "server stopped answering after input \(n)")
            }
        }
        #expect(answered > Self.inputs / 3)
        let services = try await t.curl("GET", "/v1.50/services")
        #expect(services.status == 200)
        print("socket fuzz: \(Self.inputs) connections, \(answered) answered with HTTP")
    }
}
