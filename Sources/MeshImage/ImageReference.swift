/// An image reference normalised as Docker does (distribution/reference's ParseNormalizedNamed +
/// TagNameOnly): `redis` → `docker.io/library/redis:latest`, `index.docker.io/x/y` → `docker.io/x/y:latest`,
/// `host:5000/a/b:tag` keeps its registry, `name@sha256:…` pins a digest (no tag is added then).
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// The registry host with an optional port, e.g. `docker.io`, `127.0.0.1:5000`, `[::1]:5000`.
    public let domain: String
    /// The repository path inside the registry, e.g. `library/redis`.
    public let path: String
    public let tag: String?
    public let digest: Digest?

    public static let defaultDomain = "docker.io"
    static let legacyDefaultDomain = "index.docker.io"
    static let maxNameLength = 255

    /// `docker.io/library/redis`
    public var name: String { "\(domain)/\(path)" }

    /// `docker.io/library/redis:latest`, `host:5000/a/b:tag@sha256:…`
    public var description: String {
        var s = name
        if let tag { s += ":\(tag)" }
        if let digest { s += "@\(digest)" }
        return s
    }

    /// The short form Docker prints: `redis:latest`, `user/app:1`, `host:5000/a:b`.
    public var familiar: String {
        var n = name
        if domain == Self.defaultDomain {
            n = path.hasPrefix("library/") && path.split(separator: "/").count == 2 ? String(path.dropFirst(8)) : path
        }
        if let tag { n += ":\(tag)" }
        if let digest { n += "@\(digest)" }
        return n
    }

    /// What to ask the registry's manifest endpoint for: the digest when pinned, else the tag.
    public var manifestReference: String { digest?.description ?? tag ?? "latest" }

    /// This reference with `tag` (and no digest): how a pull by tag is recorded in the store.
    public func withTag(_ tag: String) -> ImageReference {
        ImageReference(domain: domain, path: path, tag: tag, digest: nil)
    }

    public func withDigest(_ digest: Digest) -> ImageReference {
        ImageReference(domain: domain, path: path, tag: nil, digest: digest)
    }

    init(domain: String, path: String, tag: String?, digest: Digest?) {
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        /// A 64-hex string is an image ID, never a repository name.
        case hexIdentifier(String)
        case uppercase(String)
        case tooLong(Int)
        case invalidDomain(String)
        case invalidPathComponent(String)
        case invalidTag(String)
        case invalidDigest(String)

        public var description: String {
            switch self {
            case .empty: "invalid reference format: repository name must have at least one component"
            case .hexIdentifier(let s): "invalid repository name (\(s)), cannot specify 64-byte hexadecimal strings"
            case .uppercase(let s): "invalid reference format: repository name (\(s)) must be lowercase"
            case .tooLong(let n): "invalid reference format: repository name must not be more than 255 characters (is \(n))"
            case .invalidDomain(let s): "invalid reference format: bad registry host \"\(s)\""
            case .invalidPathComponent(let s):
                "invalid reference format: bad path component \"\(s)\" (lowercase letters, digits, and . _ __ - between them)"
            case .invalidTag(let s): "invalid reference format: bad tag \"\(s)\" (up to 128 of [A-Za-z0-9_.-], not starting with . or -)"
            case .invalidDigest(let s): "invalid reference format: \(s)"
            }
        }
    }

    public init(parsing input: String) throws(ParseError) {
        guard !input.isEmpty else { throw .empty }
        if input.utf8.count == 64, input.utf8.allSatisfy(Self.isLowerHex) { throw .hexIdentifier(input) }

        var rest = Substring(input)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            do { digest = try Digest(parsing: d) } catch { throw .invalidDigest(error.description) }
            rest = rest[..<at]
        }
        var tag: String?
        // A tag is after the last ':' that follows the last '/' (a ':' before that is a port).
        if let colon = rest.lastIndex(of: ":"), rest[colon...].firstIndex(of: "/") == nil {
            let t = String(rest[rest.index(after: colon)...])
            guard Self.isValidTag(t) else { throw .invalidTag(t) }
            tag = t
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { throw .empty }

        // Docker's splitDockerDomain: the first component is a registry only if it has a '.' or
        // ':', is "localhost", or has an uppercase letter (`Foo/bar` names a registry host "Foo",
        // as in Docker, rather than becoming docker.io/library-less `foo/bar`).
        var domain = Self.defaultDomain
        var remainder = rest
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(where: { $0 == "." || $0 == ":" }) || first == "localhost" || first.lowercased() != first {
                domain = String(first)
                remainder = rest[rest.index(after: slash)...]
            }
        }
        if domain == Self.legacyDefaultDomain { domain = Self.defaultDomain }
        guard Self.isValidDomain(domain) else { throw .invalidDomain(domain) }
        var path = String(remainder)
        if domain == Self.defaultDomain && !path.contains("/") { path = "library/" + path }
        // Checked after the library/ prefix, so the message names what Docker's names.
        if path.lowercased() != path { throw .uppercase(path) }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard Self.isValidPathComponent(component) else { throw .invalidPathComponent(String(component)) }
        }
        let nameLength = domain.utf8.count + 1 + path.utf8.count
        guard nameLength <= Self.maxNameLength else { throw .tooLong(nameLength) }
        // TagNameOnly: a bare name means :latest; a digest alone stays untagged.
        if tag == nil && digest == nil { tag = "latest" }
        self.init(domain: domain, path: path, tag: tag, digest: digest)
    }

    // MARK: grammar (distribution/reference regexp.go)

    static func isLowerHex(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 97 && c <= 102) }
    static func isLowerAlnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 97 && c <= 122) }
    static func isAlnum(_ c: UInt8) -> Bool { isLowerAlnum(c) || (c >= 65 && c <= 90) }

    /// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
    static func isValidPathComponent(_ s: Substring) -> Bool {
        let b = Array(s.utf8)
        guard let first = b.first, let last = b.last, isLowerAlnum(first), isLowerAlnum(last) else { return false }
        var i = 0
        while i < b.count {
            if isLowerAlnum(b[i]) {
                i += 1
                continue
            }
            // A separator run: exactly ".", "_", "__", or one or more "-".
            var j = i
            while j < b.count && !isLowerAlnum(b[j]) { j += 1 }
            let sep = b[i..<j]
            let ok = sep.elementsEqual([46]) || sep.elementsEqual([95]) || sep.elementsEqual([95, 95]) || sep.allSatisfy { $0 == 45 }
            guard ok else { return false }
            i = j
        }
        return true
    }

    /// `[\w][\w.-]{0,127}`
    static func isValidTag(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let first = b.first, b.count <= 128, isAlnum(first) || first == 95 else { return false }
        return b.allSatisfy { isAlnum($0) || $0 == 95 || $0 == 46 || $0 == 45 }
    }

    /// `host[:port]` where host is dot-separated `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` labels or `[IPv6]`.
    static func isValidDomain(_ s: String) -> Bool {
        var host = Substring(s)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let inner = host[host.index(after: host.startIndex)..<close]
            guard !inner.isEmpty, inner.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return false }
            host = host[host.index(after: close)...]
            if host.isEmpty { return true }
            guard host.hasPrefix(":") else { return false }
            return isPort(host.dropFirst())
        }
        if let colon = host.lastIndex(of: ":") {
            guard isPort(host[host.index(after: colon)...]) else { return false }
            host = host[..<colon]
        }
        guard !host.isEmpty else { return false }
        for label in host.split(separator: ".", omittingEmptySubsequences: false) {
            let b = Array(label.utf8)
            guard let f = b.first, let l = b.last, isAlnum(f), isAlnum(l) else { return false }
            guard b.allSatisfy({ isAlnum($0) || $0 == 45 }) else { return false }
        }
        return true
    }

    static func isPort(_ s: Substring) -> Bool { !s.isEmpty && s.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
}
