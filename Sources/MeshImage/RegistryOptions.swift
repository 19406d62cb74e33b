import MeshValues

/// How a node reaches registries: Docker's `--registry-mirror` and `--insecure-registry`, plus
/// the timeouts of this client.
public struct RegistryOptions: Sendable {
    /// Mirrors for docker.io, tried in order before the registry itself (`--registry-mirror`).
    public var mirrors: [String]
    /// Registries that may be reached without a verified TLS certificate and then over plain
    /// HTTP (`--insecure-registry`): `host[:port]` exactly, or a CIDR the registry's address is in.
    /// 127.0.0.0/8 (and so localhost) is always insecure, as in dockerd.
    public var insecureRegistries: [String]
    public var connectTimeout: Duration
    /// A manifest, token or `/v2/` request must be answered within this.
    public var requestTimeout: Duration
    /// A blob download fails when no byte arrives for this long (its total time is unbounded).
    public var idleTimeout: Duration
    public var credentials: [String: Credentials]
    /// Where docker.io is served after the mirrors: Docker Hub. Tests point it at a dead local
    /// port so that nothing they do can leave the machine.
    public var dockerHub: String

    public struct Credentials: Sendable, Equatable {
        public var username: String
        public var password: String
        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }
    }

    public init(
        mirrors: [String] = [], insecureRegistries: [String] = [], connectTimeout: Duration = .seconds(10),
        requestTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(30), credentials: [String: Credentials] = [:],
        dockerHub: String = "https://" + RegistryOptions.dockerHubHost
    ) {
        self.dockerHub = dockerHub
        self.mirrors = mirrors
        self.insecureRegistries = insecureRegistries
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.credentials = credentials
    }

    /// Where docker.io is really served.
    public static let dockerHubHost = "registry-1.docker.io"
    static let defaultInsecureCIDRs = [IPPrefix("127.0.0.0/8")!]

    /// Whether `host` (`name[:port]`, `[v6]:port`) is insecure, as dockerd's isSecureIndex decides:
    /// listed by name, or its address in an insecure CIDR. dockerd resolves names to test the
    /// CIDRs; here only `localhost` is (to 127.0.0.1), so a DNS name must be listed by name.
    public func isInsecure(_ host: String) -> Bool {
        if insecureRegistries.contains(host) { return true }
        let bare = Self.hostWithoutPort(host)
        let cidrs = Self.defaultInsecureCIDRs + insecureRegistries.compactMap { $0.contains("/") ? IPPrefix($0) : nil }
        let address = bare == "localhost" ? IPAddress("127.0.0.1") : IPAddress(bare)
        guard let address else { return false }
        return cidrs.contains { $0.contains(address) }
    }

    /// Whether `text` is an address prefix `--insecure-registry` can take.
    public static func isValidCIDR(_ text: String) -> Bool { IPPrefix(text) != nil }

    /// `a:5000` → `a`, `[::1]:5000` → `::1`, `a` → `a`.
    static func hostWithoutPort(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            return String(host[host.index(after: host.startIndex)..<close])
        }
        if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon { return String(host[..<colon]) }
        return host
    }

    /// Where to ask for `reference`, in order. For docker.io: each mirror, then Docker Hub. For
    /// others: the registry over verified HTTPS; if insecure, HTTPS without verification, then HTTP.
    public func endpoints(for reference: ImageReference) -> [RegistryEndpoint] {
        var out: [RegistryEndpoint] = []
        if reference.domain == ImageReference.defaultDomain {
            for m in mirrors {
                guard let e = RegistryEndpoint(mirrorURL: m, options: self) else { continue }
                out.append(e)
            }
            if var hub = RegistryEndpoint(mirrorURL: dockerHub, options: self) {
                hub.mirror = false
                hub.verifyTLS = hub.scheme == "https"
                out.append(hub)
            }
            return out
        }
        let host = reference.domain
        if isInsecure(host) {
            out.append(RegistryEndpoint(scheme: "https", host: host, verifyTLS: false, mirror: false))
            out.append(RegistryEndpoint(scheme: "http", host: host, verifyTLS: false, mirror: false))
        } else {
            out.append(RegistryEndpoint(scheme: "https", host: host, verifyTLS: true, mirror: false))
        }
        return out
    }
}

/// One base URL a registry is reached at.
public struct RegistryEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var verifyTLS: Bool
    public var mirror: Bool

    public init(scheme: String, host: String, verifyTLS: Bool, mirror: Bool) {
        self.scheme = scheme
        self.host = host
        self.verifyTLS = verifyTLS
        self.mirror = mirror
    }

    /// A mirror URL as dockerd takes it: `http(s)://host[:port][/]`, no other path.
    init?(mirrorURL: String, options: RegistryOptions) {
        var s = Substring(mirrorURL)
        let scheme: String
        if s.hasPrefix("https://") {
            scheme = "https"
            s = s.dropFirst(8)
        } else if s.hasPrefix("http://") {
            scheme = "http"
            s = s.dropFirst(7)
        } else {
            return nil
        }
        while s.hasSuffix("/") { s = s.dropLast() }
        guard !s.isEmpty, !s.contains("/") else { return nil }
        self.init(scheme: scheme, host: String(s), verifyTLS: !options.isInsecure(String(s)), mirror: true)
    }

    public var baseURL: String { "\(scheme)://\(host)" }
    public var description: String { baseURL + (mirror ? " (mirror)" : "") }

    /// Checks a mirror URL the way dockerd does at start-up, so a bad flag fails early.
    public static func validateMirror(_ url: String) -> String? {
        RegistryEndpoint(mirrorURL: url, options: RegistryOptions()) == nil
            ? "invalid mirror \"\(url)\": expected http(s)://host[:port] with no path" : nil
    }
}
