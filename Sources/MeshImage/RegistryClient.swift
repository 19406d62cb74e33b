import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A manifest as a registry served it: the exact bytes (their digest names it) and their decoding.
public struct FetchedManifest: Sendable, Equatable {
    public var body: Data
    public var contentType: String?
    public var digest: Digest
    public var document: ManifestDocument
}

/// A client of the OCI distribution API (the pull half): `GET /v2/`, manifests, blobs, with the
/// bearer-token dance, manual redirects (Authorization is not sent to another host) and typed
/// errors. Shared by every pull of a node; `shutdown()` before dropping it.
public final class RegistryClient: Sendable {
    public let options: RegistryOptions
    let verifying: HTTPClient
    let nonVerifying: HTTPClient
    let state = Mutex(State())

    struct State {
        var tokens: [String: (value: String, expires: ContinuousClock.Instant)] = [:]
        /// Insecure hosts whose HTTPS attempt failed at the transport: later pulls go to HTTP first.
        var plainHTTP: Set<String> = []
    }

    static let manifestLimit = 4 << 20  // dockerd's cap on a manifest
    public static let configLimit = 16 << 20
    static let maxRedirects = 5
    static let userAgent = "meshd"

    public init(options: RegistryOptions = RegistryOptions()) {
        self.options = options
        let timeout = HTTPClient.Configuration.Timeout(connect: options.connectTimeout.timeAmount, read: options.idleTimeout.timeAmount)
        let secure = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: timeout)
        var insecure = HTTPClient.Configuration(certificateVerification: .none, redirectConfiguration: .disallow, timeout: timeout)
        insecure.tlsConfiguration?.certificateVerification = .none
        verifying = HTTPClient(eventLoopGroupProvider: .singleton, configuration: secure)
        nonVerifying = HTTPClient(eventLoopGroupProvider: .singleton, configuration: insecure)
    }

    public func shutdown() async throws {
        try await verifying.shutdown()
        try await nonVerifying.shutdown()
    }

    /// The endpoints for `reference`; an insecure registry already found to speak plain HTTP only over HTTP.
    public func endpoints(for reference: ImageReference) -> [RegistryEndpoint] {
        let all = options.endpoints(for: reference)
        let plain = state.withLock { $0.plainHTTP }
        guard plain.contains(reference.domain) else { return all }
        // Found to speak plain HTTP (it was listed insecure, or is loopback): skip its HTTPS try.
        return all.filter { $0.mirror || $0.scheme == "http" }
    }

    // MARK: the API

    /// `GET /v2/`: whether the endpoint is a registry (and what auth it wants).
    public func ping(_ endpoint: RegistryEndpoint) async throws(RegistryError) {
        let r = try await send(endpoint, path: "/v2/", repository: nil, accept: [])
        _ = try await collect(r.response, limit: 1 << 16, address: endpoint.host)
        guard r.response.status == .ok else {
            throw .http(status: Int(r.response.status.code), url: r.url, detail: "")
        }
    }

    /// The manifest or index `reference` (a tag or a digest) names in `repository`. The body's
    /// digest is checked against a pinned digest and against `Docker-Content-Digest`.
    public func manifest(_ endpoint: RegistryEndpoint, repository: String, reference: String) async throws(RegistryError) -> FetchedManifest
    {
        let r = try await send(
            endpoint, path: "/v2/\(repository)/manifests/\(reference)", repository: repository, accept: MediaType.manifestAccept)
        let body = try await collect(r.response, limit: Self.manifestLimit, address: endpoint.host, what: "manifest")
        try check(r, body: body, endpoint: endpoint, repository: repository, reference: reference)
        let digest = Digest(hashing: body)
        if let pinned = try? Digest(parsing: reference), pinned != digest {
            throw .digestMismatch(what: "manifest \(repository)@\(reference)", expected: pinned, actual: digest)
        }
        if let header = r.response.headers.first(name: "Docker-Content-Digest"), let claimed = try? Digest(parsing: header),
            claimed != digest
        {
            throw .digestMismatch(what: "manifest \(repository):\(reference) (Docker-Content-Digest)", expected: claimed, actual: digest)
        }
        let contentType = r.response.headers.first(name: "Content-Type")
        let document: ManifestDocument
        do { document = try ManifestDocument.decode(body, contentType: contentType) } catch { throw .badManifest(error.description) }
        return FetchedManifest(body: body, contentType: contentType, digest: digest, document: document)
    }

    /// A small blob (a config) in memory, digest- and size-checked.
    public func blobData(_ endpoint: RegistryEndpoint, repository: String, _ d: Descriptor, limit: Int = configLimit)
        async throws(RegistryError) -> Data
    {
        guard d.size <= Int64(limit) else { throw .tooLarge(what: "blob \(d.digest)", limit: limit) }
        let r = try await send(endpoint, path: "/v2/\(repository)/blobs/\(d.digest)", repository: repository, accept: [])
        let body = try await collect(r.response, limit: limit, address: endpoint.host, what: "blob \(d.digest)")
        try check(r, body: body, endpoint: endpoint, repository: repository, reference: d.digest.description, blob: d.digest)
        let got = Digest(hashing: body)
        guard got == d.digest else { throw .digestMismatch(what: "blob", expected: d.digest, actual: got) }
        guard Int64(body.count) == d.size else {
            throw .sizeMismatch(what: "blob \(d.digest)", expected: d.size, actual: Int64(body.count))
        }
        return body
    }

    /// Streams a blob into `path` (created 0600; must not exist), hashing as it goes. On a digest
    /// or size mismatch, or any failure, the partial file is removed and nothing is left.
    public func downloadBlob(_ endpoint: RegistryEndpoint, repository: String, _ d: Descriptor, to path: String) async throws(RegistryError)
    {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .unreachable(address: "local store", reason: "create \(path): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(path) }
        }
        let r = try await send(
            endpoint, path: "/v2/\(repository)/blobs/\(d.digest)", repository: repository, accept: [], deadline: .now() + .hours(24))
        if r.response.status != .ok {
            let body = try await collect(r.response, limit: 1 << 16, address: endpoint.host)
            try check(r, body: body, endpoint: endpoint, repository: repository, reference: d.digest.description, blob: d.digest)
            throw .http(status: Int(r.response.status.code), url: r.url, detail: Self.registryErrorDetail(body))
        }
        var hasher = SHA256()
        var written: Int64 = 0
        do {
            for try await chunk in r.response.body {
                written += Int64(chunk.readableBytes)
                // Stop reading as soon as it is too long: a hostile server could stream forever.
                if written > d.size { throw RegistryError.sizeMismatch(what: "blob \(d.digest)", expected: d.size, actual: written) }
                try chunk.withUnsafeReadableBytes { raw in
                    hasher.update(bufferPointer: raw)
                    var off = 0
                    while off < raw.count {
                        let n = write(fd, raw.baseAddress! + off, raw.count - off)
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else {
                            throw RegistryError.unreachable(
                                address: "local store", reason: "write \(path): \(String(cString: strerror(errno)))")
                        }
                        off += n
                    }
                }
            }
        } catch let e as RegistryError {
            throw e
        } catch {
            throw Self.classify(error, address: endpoint.host, timeout: options.idleTimeout)
        }
        guard written == d.size else { throw .sizeMismatch(what: "blob \(d.digest)", expected: d.size, actual: written) }
        let got = Digest(hasher.finalize())
        guard got == d.digest else { throw .digestMismatch(what: "blob", expected: d.digest, actual: got) }
        guard fsync(fd) == 0 else {
            throw .unreachable(address: "local store", reason: "fsync \(path): \(String(cString: strerror(errno)))")
        }
        ok = true
    }

    // MARK: requests

    struct Sent {
        var response: HTTPClientResponse
        var url: String
    }

    /// One GET with the token dance and redirects. A 401 with a Bearer challenge fetches a token
    /// for the repository's pull scope and retries once; a Basic challenge retries with the
    /// configured credentials.
    func send(
        _ endpoint: RegistryEndpoint, path: String, repository: String?, accept: [String], deadline: NIODeadline? = nil
    ) async throws(RegistryError) -> Sent {
        let scope = repository.map { "repository:\($0):pull" }
        let tokenKey = "\(endpoint.host) \(scope ?? "")"
        var authorization = state.withLock { s -> String? in
            guard let t = s.tokens[tokenKey], t.expires > .now else { return nil }
            return t.value
        }
        var url = endpoint.baseURL + path
        var authRetried = false
        var redirects = 0
        let client = endpoint.verifyTLS ? verifying : nonVerifying
        while true {
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            request.headers.add(name: "User-Agent", value: Self.userAgent)
            if !accept.isEmpty { request.headers.add(name: "Accept", value: accept.joined(separator: ", ")) }
            if let authorization { request.headers.add(name: "Authorization", value: authorization) }
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, deadline: deadline ?? .now() + options.requestTimeout.timeAmount)
            } catch {
                throw Self.classify(error, address: Self.address(of: url), timeout: options.requestTimeout, tls: url.hasPrefix("https:"))
            }
            let status = response.status.code
            if status == 401 && !authRetried {
                authRetried = true
                let challenge = response.headers.first(name: "WWW-Authenticate") ?? ""
                _ = try? await response.body.collect(upTo: 1 << 16)
                authorization = try await authorize(challenge: challenge, host: endpoint.host, scope: scope, key: tokenKey)
                continue
            }
            if [301, 302, 303, 307, 308].contains(status), let location = response.headers.first(name: "Location") {
                redirects += 1
                guard redirects <= Self.maxRedirects else { throw .http(status: Int(status), url: url, detail: "too many redirects") }
                _ = try? await response.body.collect(upTo: 1 << 16)
                let next = Self.resolve(location, against: url)
                // Credentials are for the registry only, never for the storage it redirects to.
                if Self.address(of: next) != Self.address(of: url) { authorization = nil }
                url = next
                continue
            }
            if status == 401 {
                let body = (try? await response.body.collect(upTo: 1 << 16)).map { Data($0.readableBytesView) } ?? Data()
                throw .unauthorized(
                    registry: endpoint.host, detail: Self.registryErrorDetail(body).isEmpty ? "401" : Self.registryErrorDetail(body))
            }
            if endpoint.scheme == "http" && !endpoint.verifyTLS && !endpoint.mirror {
                state.withLock { _ = $0.plainHTTP.insert(endpoint.host) }
            }
            return Sent(response: response, url: url)
        }
    }

    /// Maps a non-200 answer to the registry's meaning.
    func check(_ r: Sent, body: Data, endpoint: RegistryEndpoint, repository: String, reference: String, blob: Digest? = nil)
        throws(RegistryError)
    {
        let status = Int(r.response.status.code)
        guard status != 200 else { return }
        let codes = Self.registryErrorCodes(body)
        let detail = Self.registryErrorDetail(body)
        switch status {
        case 404:
            if codes.contains("NAME_UNKNOWN") { throw .nameUnknown(repository: repository, registry: endpoint.host) }
            if let blob { throw .blobUnknown(digest: blob, registry: endpoint.host) }
            throw .manifestUnknown(reference: "\(repository):\(reference)", registry: endpoint.host)
        case 403: throw .unauthorized(registry: endpoint.host, detail: detail.isEmpty ? "403 forbidden" : detail)
        default: throw .http(status: status, url: r.url, detail: detail)
        }
    }

    func collect(_ response: HTTPClientResponse, limit: Int, address: String, what: String = "response") async throws(RegistryError) -> Data
    {
        do {
            return Data(try await response.body.collect(upTo: limit).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw .tooLarge(what: what, limit: limit)
        } catch {
            throw Self.classify(error, address: address, timeout: options.requestTimeout)
        }
    }

    // MARK: auth

    func authorize(challenge: String, host: String, scope: String?, key: String) async throws(RegistryError) -> String {
        guard let c = AuthChallenge(parsing: challenge) else {
            throw .unauthorized(
                registry: host, detail: challenge.isEmpty ? "401 without a WWW-Authenticate challenge" : "unknown challenge \(challenge)")
        }
        let creds = options.credentials[host]
        if c.scheme == "basic" {
            guard let creds else {
                throw .unauthorized(registry: host, detail: "registry wants basic auth and no credentials are configured")
            }
            return "Basic " + Data("\(creds.username):\(creds.password)".utf8).base64EncodedString()
        }
        guard c.scheme == "bearer", let realm = c.parameters["realm"], realm.hasPrefix("http") else {
            throw .unauthorized(registry: host, detail: "unsupported challenge \(challenge)")
        }
        var query: [String] = []
        if let service = c.parameters["service"] { query.append("service=\(Self.queryEscape(service))") }
        if let s = c.parameters["scope"] ?? scope { query.append("scope=\(Self.queryEscape(s))") }
        let url = realm + (query.isEmpty ? "" : (realm.contains("?") ? "&" : "?") + query.joined(separator: "&"))
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        if let creds {
            request.headers.add(
                name: "Authorization", value: "Basic " + Data("\(creds.username):\(creds.password)".utf8).base64EncodedString())
        }
        let body: Data
        let status: UInt
        do {
            let r = try await verifying.execute(request, deadline: .now() + options.requestTimeout.timeAmount)
            status = r.status.code
            body = Data(try await r.body.collect(upTo: 1 << 20).readableBytesView)
        } catch {
            throw Self.classify(error, address: Self.address(of: url), timeout: options.requestTimeout, tls: url.hasPrefix("https:"))
        }
        guard status == 200 else {
            throw .unauthorized(
                registry: host, detail: "token server \(Self.address(of: url)) answered \(status) \(Self.registryErrorDetail(body))")
        }
        struct TokenResponse: Decodable {
            var token: String?
            var access_token: String?
            var expires_in: Int?
        }
        guard let t = try? JSONDecoder().decode(TokenResponse.self, from: body), let token = t.token ?? t.access_token, !token.isEmpty
        else {
            throw .badToken("no token in \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        let value = "Bearer \(token)"
        // Tokens are short-lived (60 s by default); keep one a little less than it lives.
        let life = max(10, (t.expires_in ?? 60) - 5)
        state.withLock { $0.tokens[key] = (value, .now + .seconds(life)) }
        return value
    }

    // MARK: helpers

    static func classify(_ error: Error, address: String, timeout: Duration, tls: Bool = false) -> RegistryError {
        if let e = error as? RegistryError { return e }
        if let e = error as? HTTPClientError {
            switch e {
            case .connectTimeout, .readTimeout, .deadlineExceeded, .tlsHandshakeTimeout, .getConnectionFromPoolTimeout:
                return .timeout(address: address, after: timeout)
            case .remoteConnectionClosed:
                return .unreachable(address: address, reason: "connection closed by the server")
            default:
                break
            }
        }
        var reason = String(describing: error)
        if tls && (error is NIOSSLError || error is BoringSSLError) {
            reason = "TLS failed (\(reason)); a plain-HTTP registry must be listed with --insecure-registry"
        }
        return .unreachable(address: address, reason: reason)
    }

    /// `host[:port]` of a URL, for messages and the same-host test of redirects.
    static func address(of url: String) -> String {
        guard let u = URLComponents(string: url), let host = u.host else { return url }
        let h = host.contains(":") ? "[\(host)]" : host
        return u.port.map { "\(h):\($0)" } ?? h
    }

    static func resolve(_ location: String, against base: String) -> String {
        if location.hasPrefix("http://") || location.hasPrefix("https://") { return location }
        guard let b = URL(string: base), let u = URL(string: location, relativeTo: b) else { return location }
        return u.absoluteString
    }

    static func queryEscape(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~:")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    struct RegistryErrors: Decodable {
        struct Item: Decodable {
            var code: String?
            var message: String?
        }
        var errors: [Item]?
    }

    static func registryErrorCodes(_ body: Data) -> [String] {
        (try? JSONDecoder().decode(RegistryErrors.self, from: body))?.errors?.compactMap(\.code) ?? []
    }

    /// The registry's own words: `CODE: message` of each error in its JSON body.
    static func registryErrorDetail(_ body: Data) -> String {
        guard let items = (try? JSONDecoder().decode(RegistryErrors.self, from: body))?.errors, !items.isEmpty else {
            let text = String(decoding: body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return text.contains("\0") ? "" : text
        }
        return items.map { [$0.code, $0.message].compactMap { $0 }.joined(separator: ": ") }.joined(separator: "; ")
    }
}

/// `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (RFC 7235 auth-params).
struct AuthChallenge: Equatable {
    var scheme: String
    var parameters: [String: String]

    init?(parsing header: String) {
        let s = Array(header.utf8)
        var i = 0
        while i < s.count && s[i] != 32 { i += 1 }
        guard i > 0 else { return nil }
        scheme = String(decoding: s[0..<i], as: UTF8.self).lowercased()
        parameters = [:]
        while i < s.count {
            while i < s.count && (s[i] == 32 || s[i] == 44) { i += 1 }
            let keyStart = i
            while i < s.count && s[i] != 61 && s[i] != 44 { i += 1 }
            guard i < s.count, s[i] == 61 else { break }
            let key = String(decoding: s[keyStart..<i], as: UTF8.self).trimmingCharacters(in: .whitespaces).lowercased()
            i += 1
            var value: [UInt8] = []
            if i < s.count && s[i] == 34 {
                i += 1
                while i < s.count && s[i] != 34 {
                    if s[i] == 92 && i + 1 < s.count { i += 1 }
                    value.append(s[i])
                    i += 1
                }
                guard i < s.count else { return nil }  // unterminated quote
                i += 1
            } else {
                while i < s.count && s[i] != 44 {
                    value.append(s[i])
                    i += 1
                }
            }
            parameters[key] = String(decoding: value, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        }
    }
}

extension Duration {
    var timeAmount: TimeAmount {
        let (s, atto) = components
        return .nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
    }
}
