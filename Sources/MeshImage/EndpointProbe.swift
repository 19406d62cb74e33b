import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP look at an endpoint before the HTTP client is used on it. The HTTP client retries a
/// refused connection until its connect timeout, and an HTTPS attempt at a plain-HTTP registry
/// costs the same; one connect (and for HTTPS one plain `GET /v2/`) answers both at once, so a
/// dead registry fails in milliseconds and an insecure one goes straight to HTTP.
enum EndpointProbe {
    enum Result: Equatable {
        case refused(String)
        /// It answered a plain-HTTP request.
        case plainHTTP
        /// Connected; it did not answer plain HTTP (TLS, or silent).
        case open
    }

    static func probe(_ endpoint: RegistryEndpoint, timeout: Duration) async -> Result {
        await withCheckedContinuation { k in
            Thread { k.resume(returning: probeBlocking(endpoint, timeout: timeout)) }.start()
        }
    }

    static func probeBlocking(_ endpoint: RegistryEndpoint, timeout: Duration) -> Result {
        var host = RegistryOptions.hostWithoutPort(endpoint.host)
        if host == "localhost" { host = "127.0.0.1" }
        var port = endpoint.scheme == "https" ? "443" : "80"
        if let colon = endpoint.host.lastIndex(of: ":"), !endpoint.host[colon...].contains("]") {
            port = String(endpoint.host[endpoint.host.index(after: colon)...])
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &res)
        guard rc == 0, let ai = res else { return .refused("cannot resolve \(host): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .open }
        defer { close(fd) }
        let ms = Int32(min(timeout.milliseconds, 2000))
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { return .refused(String(cString: strerror(errno))) }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            // No answer to the connect within the time: let the HTTP client report its timeout.
            guard poll(&p, 1, ms) == 1 else { return .open }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err != 0 { return .refused(String(cString: strerror(err))) }
        }
        guard endpoint.scheme == "https" else { return .open }
        let request = Array("GET /v2/ HTTP/1.0\r\nHost: \(endpoint.host)\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return .open }
        var got: [UInt8] = []
        let deadline = ContinuousClock.now + .milliseconds(Int(ms))
        while got.count < 5 && ContinuousClock.now < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, ms) == 1 else { break }
            var buf = [UInt8](repeating: 0, count: 5 - got.count)
            let n = recv(fd, &buf, buf.count, 0)
            guard n > 0 else { break }
            got += buf[0..<n]
        }
        return got == Array("HTTP/".utf8) ? .plainHTTP : .open
    }
}

extension Duration {
    var milliseconds: Int {
        let (s, atto) = components
        return Int(s * 1000 + atto / 1_000_000_000_000_000)
    }
}

extension RegistryClient {
    /// Probes `endpoint` before use: a refused connection fails now with its address; an HTTPS
    /// endpoint that answers plain HTTP is skipped if insecure (its HTTP twin follows) and
    /// explained if not.
    func check(_ endpoint: RegistryEndpoint) async throws(RegistryError) {
        switch await EndpointProbe.probe(endpoint, timeout: options.connectTimeout) {
        case .refused(let reason):
            throw .unreachable(address: endpoint.host, reason: reason)
        case .plainHTTP where endpoint.scheme == "https":
            if !endpoint.verifyTLS { state.withLock { _ = $0.plainHTTP.insert(endpoint.host) } }
            throw .unreachable(
                address: endpoint.host,
                reason: endpoint.verifyTLS
                    ? "server gave an HTTP response to an HTTPS client (list it with --insecure-registry for plain HTTP)"
                    : "speaks plain HTTP")
        default:
            return
        }
    }
}
