import Foundation
import Testing
@testable import MeshAPI

#if canImport(Glibc)
    import Glibc
#endif

/// The container endpoints' own parts: stdcopy frames, the list filters, and the hijack of
/// `POST /exec/{id}/start` over a real unix socket.
@Suite struct ContainerAPITests {
    @Test func framesCarryTheStreamAndABigEndianLength() {
        let f = MultiplexedStream.frame(.stderr, Array(repeating: 0x41, count: 0x0102))
        #expect(Array(f.prefix(8)) == [2, 0, 0, 0, 0, 0, 0x01, 0x02])
        #expect(f.count == 8 + 0x0102)
        let two = MultiplexedStream.frame(.stdout, Array("hi\n".utf8)) + MultiplexedStream.frame(.stderr, Array("no".utf8))
        let (chunks, rest) = MultiplexedStream.decode(two + [1, 0, 0])
        #expect(chunks == [OutputChunk(.stdout, Array("hi\n".utf8)), OutputChunk(.stderr, Array("no".utf8))])
        #expect(rest == [1, 0, 0])
        #expect(MultiplexedStream.frame(.stdout, []) == [1, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func filtersAreParsedAndUnknownKeysRefusedByName() throws {
        #expect(throws: EngineError.invalidArgument("invalid filter 'ancestor'")) {
            try ContainerFilter.parse(#"{"ancestor":{"busybox":true}}"#)
        }
        #expect(throws: EngineError.invalidArgument("invalid filter 'status=sleeping'")) {
            try ContainerFilter.parse(#"{"status":{"sleeping":true}}"#)
        }
        let f = try ContainerFilter.parse(#"{"label":{"com.docker.swarm.service.name=web":true},"name":{"web.1":true}}"#)
        var c = ContainerSummary(
            Id: String(repeating: "ab", count: 32), Names: ["/web.1.t1"], Image: "busybox", Command: "sh", Created: 0,
            Labels: ["com.docker.swarm.service.name": "web"], State: "running", Status: "Up 1 second")
        #expect(f.matches(c))
        c.Labels["com.docker.swarm.service.name"] = "db"
        #expect(!f.matches(c))
        let byID = try ContainerFilter.parse(#"{"id":["abab"],"status":{"exited":true}}"#)
        #expect(byID.includesEnded)
        #expect(!byID.matches(c))
        c.State = "exited"
        #expect(byID.matches(c))
        // `health=`: a check's state, `none` without one; other values refused as dockerd words it.
        let healthy = try ContainerFilter.parse(#"{"health":{"healthy":true}}"#)
        #expect(healthy.matches(c, health: "healthy") && !healthy.matches(c, health: "starting") && !healthy.matches(c))
        #expect(try ContainerFilter.parse(#"{"health":{"none":true}}"#).matches(c))
        #expect(throws: EngineError.invalidArgument("Unrecognised filter value for health: sick")) {
            try ContainerFilter.parse(#"{"health":{"sick":true}}"#)
        }
    }

    @Test func theRouterRefusesWhatItCannotHonour() async throws {
        let router = APIRouter(backend: InMemoryEngine())
        let bad = await router.handle(
            methodName: "GET", uri: "/v1.50/containers/json?filters=%7B%22network%22%3A%7B%22x%22%3Atrue%7D%7D", contentType: nil, body: [])
        #expect(bad.statusCode == 400)
        let list = await router.handle(methodName: "GET", uri: "/v1.50/containers/json?all=1", contentType: nil, body: [])
        #expect(list.statusCode == 200)
        let missing = await router.handle(methodName: "GET", uri: "/v1.50/containers/nosuch/json", contentType: nil, body: [])
        #expect(missing.statusCode == 404)
        if case .bytes(let b) = missing.body { #expect(String(decoding: b, as: UTF8.self).contains("No such container: nosuch")) }
        let privileged = await router.handle(
            methodName: "POST", uri: "/v1.50/containers/x/exec", contentType: "application/json",
            body: Array(#"{"Cmd":["sh"],"Privileged":true}"#.utf8))
        #expect(privileged.statusCode == 400)
        let noExec = await router.handle(methodName: "GET", uri: "/v1.50/exec/nope/json", contentType: nil, body: [])
        #expect(noExec.statusCode == 404)
        let detached = await router.handle(
            methodName: "POST", uri: "/v1.50/exec/echo/start", contentType: "application/json", body: Array(#"{"Detach":true}"#.utf8))
        #expect(detached.statusCode == 200)
    }

    /// 101, then raw bytes both ways; the client's half-close ends stdin but the output (framed)
    /// keeps coming, and the server closes once it ended.
    @Test func execStartHijacksTheConnection() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let socket = server.socket
        let got = try await Self.offThread { () throws -> [UInt8] in
            let fd = try RawClient.connect(socket)
            defer { close(fd) }
            let body = #"{"Detach":false,"Tty":false}"#
            try RawClient.send(
                fd,
                "POST /v1.50/exec/echo/start HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                    + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            var bytes = try RawClient.read(fd, until: { String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") })
            let text = String(decoding: bytes, as: UTF8.self)
            guard text.hasPrefix("HTTP/1.1 101 UPGRADED\r\n"), text.contains("Content-Type: application/vnd.docker.multiplexed-stream")
            else { throw RawClient.Failure("head: \(text)") }
            let headEnd = text.range(of: "\r\n\r\n")!.upperBound
            bytes = Array(text[headEnd...].utf8)
            try RawClient.send(fd, "hello")
            bytes += try RawClient.read(fd, until: { MultiplexedStream.decode($0).chunks.count >= 1 }, startingWith: bytes)
            shutdown(fd, Int32(SHUT_WR))
            return try RawClient.readToEnd(fd, startingWith: bytes)
        }
        let chunks = MultiplexedStream.decode(got).chunks
        #expect(chunks == [OutputChunk(.stdout, Array("HELLO".utf8)), OutputChunk(.stderr, Array("bye".utf8))], "\(chunks)")
    }

    /// Without Upgrade headers the stream still comes, after a plain 200 (as dockerd answers).
    @Test func execStartWithoutUpgradeAnswers200ThenTheStream() async throws {
        let server = try await TestServer.start()
        defer { server.stop() }
        let socket = server.socket
        let got = try await Self.offThread { () throws -> String in
            let fd = try RawClient.connect(socket)
            defer { close(fd) }
            let body = #"{"Tty":true}"#
            try RawClient.send(
                fd,
                "POST /v1.50/exec/echo/start HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
            let head = try RawClient.read(fd, until: { String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") })
            try RawClient.send(fd, "abc")
            shutdown(fd, Int32(SHUT_WR))
            return String(decoding: try RawClient.readToEnd(fd, startingWith: head), as: UTF8.self)
        }
        #expect(got.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"), "\(got)")
        // A TTY's stream is raw: no frame headers.
        #expect(got.hasSuffix("\r\n\r\nABCbye"), "\(got)")
    }

    static func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            Thread { c.resume(with: Result { try body() }) }.start()
        }
    }
}

/// A blocking unix-socket client with a 10 s receive timeout, for tests only.
enum RawClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: \(errno)") }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw Failure("connect \(path): \(errno)")
        }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) throws {
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard n == bytes.count else { throw Failure("send: \(n)") }
    }

    /// Reads until `done` holds for everything read (after `startingWith`); the new bytes.
    static func read(_ fd: Int32, until done: ([UInt8]) -> Bool, startingWith: [UInt8] = []) throws -> [UInt8] {
        var all = startingWith
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !done(all) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw Failure("connection ended (\(n), errno \(errno)) after \(all.count) bytes") }
            all += buffer[0..<n]
        }
        return Array(all[startingWith.count...])
    }

    /// Everything until the server closes; fails on the timeout.
    static func readToEnd(_ fd: Int32, startingWith: [UInt8] = []) throws -> [UInt8] {
        var all = startingWith
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return all }
            guard n > 0 else { throw Failure("no end of the connection (errno \(errno)) after \(all.count) bytes") }
            all += buffer[0..<n]
        }
    }
}
