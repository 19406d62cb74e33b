/// What went wrong talking to a registry, with what the registry said.
public enum RegistryError: Error, Equatable, CustomStringConvertible {
    case unreachable(address: String, reason: String)
    case timeout(address: String, after: Duration)
    case manifestUnknown(reference: String, registry: String)
    case nameUnknown(repository: String, registry: String)
    case blobUnknown(digest: Digest, registry: String)
    case unauthorized(registry: String, detail: String)
    case http(status: Int, url: String, detail: String)
    case digestMismatch(what: String, expected: Digest, actual: Digest)
    case sizeMismatch(what: String, expected: Int64, actual: Int64)
    case tooLarge(what: String, limit: Int)
    case badManifest(String)
    case badConfig(String)
    case noMatchingPlatform(reference: String, wanted: Platform, available: [Platform])
    case unsupportedLayer(mediaType: String)
    case badToken(String)
    /// Every endpoint (mirrors, then the registry) failed; each with its own error.
    case allEndpointsFailed([EndpointFailure])

    public struct EndpointFailure: Equatable, Sendable {
        public var endpoint: String
        public var error: RegistryError
    }

    public var description: String {
        switch self {
        case .unreachable(let a, let r): "registry \(a) unreachable: \(r)"
        case .timeout(let a, let d): "registry \(a) did not answer within \(d)"
        case .manifestUnknown(let r, let reg): "manifest unknown: \(r) not found in \(reg)"
        case .nameUnknown(let r, let reg): "repository \(r) not found in \(reg)"
        case .blobUnknown(let d, let reg): "blob \(d) not found in \(reg)"
        case .unauthorized(let reg, let d): "unauthorized at \(reg): \(d)"
        case .http(let s, let u, let d): "registry answered \(s) for \(u)\(d.isEmpty ? "" : ": \(d)")"
        case .digestMismatch(let w, let e, let a): "\(w) digest mismatch: expected \(e), got \(a) (refused)"
        case .sizeMismatch(let w, let e, let a): "\(w) size mismatch: expected \(e) bytes, got \(a) (refused)"
        case .tooLarge(let w, let l): "\(w) larger than \(l) bytes (refused)"
        case .badManifest(let r): "bad manifest: \(r)"
        case .badConfig(let r): "bad image config: \(r)"
        case .noMatchingPlatform(let r, let w, let a):
            "no \(w) manifest in \(r) (it has \(a.map(\.description).joined(separator: ", ")))"
        case .unsupportedLayer(let t): "unsupported layer media type \"\(t)\""
        case .badToken(let r): "bad token response: \(r)"
        case .allEndpointsFailed(let f): f.map { "\($0.endpoint): \($0.error)" }.joined(separator: "; ")
        }
    }

    /// One error for a pull that failed on every endpoint. One registry over HTTPS then HTTP (an
    /// insecure one) is one registry: what it answered counts, not that the other scheme failed.
    /// Mirrors and Docker Hub are separate places: each one's error is kept.
    static func summary(_ failures: [EndpointFailure], endpoints: [RegistryEndpoint]) -> RegistryError {
        guard let last = failures.last else { return .unreachable(address: "none", reason: "no endpoint to try") }
        if failures.count == 1 { return last.error }
        if endpoints.allSatisfy({ !$0.mirror }) {
            return failures.first(where: { if case .unreachable = $0.error { false } else { true } })?.error ?? last.error
        }
        return .allEndpointsFailed(failures)
    }

    /// Whether the next endpoint may be tried after this one failed: anything a mirror does
    /// wrong (as dockerd falls back), but not content that arrived and was bad.
    var allowsFallback: Bool {
        switch self {
        case .digestMismatch, .sizeMismatch, .badConfig, .noMatchingPlatform, .unsupportedLayer, .tooLarge: false
        default: true
        }
    }
}
