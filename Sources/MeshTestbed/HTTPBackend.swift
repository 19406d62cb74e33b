import Foundation
import MeshKernel
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// A small HTTP/1.1 server inside a namespace, for load-balancing proofs: every response body is
/// the backend's name (plus a newline), connections are kept alive, and it counts requests. The
/// listening socket is created inside the namespace; accepts and connections run on their own
/// threads, which is safe because a socket stays in the namespace it was made in.
public final class HTTPBackend: Sendable {
    public let name: String
    public let address: IPAddress
    public let port: UInt16
    private let listener: Int32
    private let served = Atomic<Int>(0)
    private let connections = Mutex<Set<Int32>>([])
    private let stopped = Atomic<Bool>(false)
    private let acceptDone = DispatchSemaphore(value: 0)

    public var requestCount: Int { served.load(ordering: .relaxed) }

    public init(name: String, namespace: NetworkNamespace, address: IPAddress, port: UInt16 = 80) throws {
        self.name = name
        self.address = address
        self.port = port
        listener = try namespace.run { () throws(KernelError) -> Int32 in try TCPProbe.listen(address, port, backlog: 128) }
        let me = self
        Thread { me.acceptLoop() }.start()
    }

    /// Stops accepting, closes every open connection and waits for the accept thread.
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        acceptDone.wait()
        close(listener)
        connections.withLock { for fd in $0 { shutdown(fd, Int32(SHUT_RDWR)) } }
    }

    // The accept and connection threads hold the server, so it lives until stop() is called.

    private func acceptLoop() {
        defer { acceptDone.signal() }
        while !stopped.load(ordering: .relaxed) {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                let e = errno
                if stopped.load(ordering: .relaxed) || e == EBADF || e == EINVAL { return }
                // A client that reset before accept, or a momentary fd shortage: keep serving.
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM { usleep(10_000) }
                continue
            }
            connections.withLock { _ = $0.insert(fd) }
            let me = self
            Thread { me.serve(fd) }.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer {
            connections.withLock { _ = $0.remove(fd) }
            close(fd)
        }
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        let body = Array("\(name)\n".utf8)
        let response = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        let closeResponse =
            Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        while true {
            // One response per complete request head; bodies are not expected (GET only).
            while let end = Self.headEnd(pending) {
                let head = String(decoding: pending[..<end], as: UTF8.self).lowercased()
                pending.removeFirst(end)
                served.add(1, ordering: .relaxed)
                // Honour "Connection: close" so one curl with many URLs opens a connection per request.
                let closing = head.contains("\r\nconnection: close")
                let reply = closing ? closeResponse : response
                let ok = reply.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if ok < 0 || closing { return }
            }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            pending += buf[0..<n]
            if pending.count > 64 << 10 { return }
        }
    }

    private static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 {
            return i + 4
        }
        return nil
    }
}

/// A client-side keep-alive HTTP connection opened inside a namespace: sends GETs on one TCP
/// connection, so a test can prove an established flow survives a backend being drained.
public final class HTTPConnection {
    private let fd: Int32

    public init(from namespace: NetworkNamespace, to address: IPAddress, port: UInt16 = 80, timeoutMilliseconds: Int32 = 2000) throws {
        fd = try TCPProbe.connect(from: namespace, to: address, port: port, timeoutMilliseconds: timeoutMilliseconds)
    }

    deinit { close(fd) }

    /// One GET on this connection; returns the body (the backend's name).
    public func get(_ path: String = "/") throws -> String {
        let req = Array("GET \(path) HTTP/1.1\r\nHost: vip\r\n\r\n".utf8)
        if req.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) < 0 {
            throw TCPProbe.Failure(description: "send: \(Errno.current)")
        }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            if let text = String(validating: data, as: UTF8.self), let range = text.range(of: "\r\n\r\n") {
                let head = text[..<range.lowerBound]
                let length =
                    head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                let body = text[range.upperBound...]
                if body.utf8.count >= length {
                    return String(body.prefix(length)).trimmingCharacters(in: .newlines)
                }
            }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { throw TCPProbe.Failure(description: "connection closed or timed out after \(data.count) bytes") }
            data += buf[0..<n]
        }
    }
}
