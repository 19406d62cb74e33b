import MeshValues
import Testing

@testable import MeshImage

@Suite struct ReferenceTests {
    /// input → normalised reference (Docker's ParseNormalizedNamed + TagNameOnly).
    static let good: [(String, String)] = [
        ("redis", "docker.io/library/redis:latest"),
        ("redis:3.0.7", "docker.io/library/redis:3.0.7"),
        ("redis:3.0.7-alpine", "docker.io/library/redis:3.0.7-alpine"),
        ("library/redis", "docker.io/library/redis:latest"),
        ("docker.io/redis", "docker.io/library/redis:latest"),
        ("index.docker.io/redis:7", "docker.io/library/redis:7"),
        ("index.docker.io/user/app", "docker.io/user/app:latest"),
        ("user/app:v1", "docker.io/user/app:v1"),
        ("user/sub/app", "docker.io/user/sub/app:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:1", "localhost:5000/app:1"),
        ("host:5000/a/b:tag", "host:5000/a/b:tag"),
        ("127.0.0.1:5000/meshd/busybox:1.35", "127.0.0.1:5000/meshd/busybox:1.35"),
        ("quay.io/coreos/etcd:v3.5.0", "quay.io/coreos/etcd:v3.5.0"),
        ("[::1]:5000/app", "[::1]:5000/app:latest"),
        ("Foo/bar", "Foo/bar:latest"),  // an uppercase first component is a registry host, as in Docker
        ("a.b-c.d/x__y/z-w.v_u", "a.b-c.d/x__y/z-w.v_u:latest"),
        ("a---b/c", "docker.io/a---b/c:latest"),
        ("redis:_tag", "docker.io/library/redis:_tag"),
        ("redis:UPPER.Case-1", "docker.io/library/redis:UPPER.Case-1"),
        (
            "busybox@sha256:" + String(repeating: "ab", count: 32),
            "docker.io/library/busybox@sha256:" + String(repeating: "ab", count: 32)
        ),
        (
            "host:5000/a:t@sha256:" + String(repeating: "0", count: 64),
            "host:5000/a:t@sha256:" + String(repeating: "0", count: 64)
        ),
    ]

    @Test(arguments: good)
    func normalises(input: String, expected: String) throws {
        let r = try ImageReference(parsing: input)
        #expect(r.description == expected)
        // Normalising twice changes nothing.
        #expect(try ImageReference(parsing: r.description) == r)
    }

    static let bad: [(String, ImageReference.ParseError)] = [
        ("", .empty),
        (":tag", .empty),
        ("Redis", .uppercase("library/Redis")),
        ("docker.io/Library/redis", .uppercase("Library/redis")),
        ("localhost:5000/App", .uppercase("App")),
        (String(repeating: "a", count: 64), .hexIdentifier(String(repeating: "a", count: 64))),
        ("redis:", .invalidTag("")),
        ("redis:-x", .invalidTag("-x")),
        ("redis:.x", .invalidTag(".x")),
        ("redis:a b", .invalidTag("a b")),
        ("redis:" + String(repeating: "t", count: 129), .invalidTag(String(repeating: "t", count: 129))),
        ("redis@sha256:abc", .invalidDigest(Digest.ParseError.badHex("sha256:abc").description)),
        ("redis@md5:" + String(repeating: "a", count: 32), .invalidDigest(Digest.ParseError.unsupportedAlgorithm("md5").description)),
        ("redis@", .invalidDigest(Digest.ParseError.missingAlgorithm("").description)),
        ("-redis", .invalidPathComponent("-redis")),
        ("a//b", .invalidPathComponent("")),
        ("a/b/", .invalidPathComponent("")),
        ("user/a..b", .invalidPathComponent("a..b")),
        ("user/a_-b", .invalidPathComponent("a_-b")),
        ("user/a___b", .invalidPathComponent("a___b")),
        ("host:port/a", .invalidDomain("host:port")),
        ("-host.com/a", .invalidDomain("-host.com")),
        ("host..com/a", .invalidDomain("host..com")),
        ("[::1/a", .invalidDomain("[::1")),
        ("a/" + String(repeating: "b", count: 250), .tooLong(9 + 1 + 2 + 250)),
    ]

    @Test(arguments: bad)
    func refuses(input: String, expected: ImageReference.ParseError) {
        #expect(throws: expected) { try ImageReference(parsing: input) }
    }

    @Test func errorsSayWhy() {
        #expect(
            ImageReference.ParseError.uppercase("library/Redis").description
                == "invalid reference format: repository name (library/Redis) must be lowercase")
        #expect(ImageReference.ParseError.hexIdentifier("x").description.contains("64-byte hexadecimal"))
    }

    @Test func familiarAndParts() throws {
        let r = try ImageReference(parsing: "redis:7")
        #expect(r.familiar == "redis:7")
        #expect(r.domain == "docker.io" && r.path == "library/redis" && r.tag == "7" && r.digest == nil)
        #expect(r.manifestReference == "7")
        #expect(try ImageReference(parsing: "user/app").familiar == "user/app:latest")
        #expect(try ImageReference(parsing: "host:5000/a/b:t").familiar == "host:5000/a/b:t")
        let d = try ImageReference(parsing: "busybox@sha256:" + String(repeating: "c", count: 64))
        #expect(d.tag == nil)
        #expect(d.manifestReference == "sha256:" + String(repeating: "c", count: 64))
    }

    @Test func digests() throws {
        let hex = String(repeating: "0123456789abcdef", count: 4)
        #expect(try Digest(parsing: "sha256:" + hex).hex == hex)
        #expect(throws: Digest.ParseError.badHex("sha256:" + hex.uppercased())) { try Digest(parsing: "sha256:" + hex.uppercased()) }
        #expect(throws: Digest.ParseError.missingAlgorithm(hex)) { try Digest(parsing: hex) }
        #expect(Digest(hashing: [UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // The chain ID of one layer is its diff ID; of two, sha256("<a> <b>").
        let a = Digest(hashing: Array("a".utf8)), b = Digest(hashing: Array("b".utf8))
        let chain = Digest.chainIDs([a, b])
        #expect(chain[0] == a)
        #expect(chain[1] == Digest(hashing: Array("\(a) \(b)".utf8)))
    }

    @Test func insecureRegistriesAsDocker() {
        let o = RegistryOptions(insecureRegistries: ["myreg:5000", "10.1.0.0/16", "plainhost"])
        #expect(o.isInsecure("127.0.0.1:5000"))
        #expect(o.isInsecure("127.3.4.5"))
        #expect(o.isInsecure("localhost:5000"))
        #expect(o.isInsecure("myreg:5000"))
        #expect(!o.isInsecure("myreg:5001"))
        #expect(o.isInsecure("plainhost"))
        #expect(!o.isInsecure("plainhost:80"))
        #expect(o.isInsecure("10.1.2.3:5000"))
        #expect(!o.isInsecure("10.2.0.1:5000"))
        #expect(!o.isInsecure("quay.io"))
        #expect(!RegistryOptions().isInsecure("[::1]:5000"))  // dockerd's default CIDR is 127.0.0.0/8 only
    }

    @Test func endpointsMirrorsFirstForDockerHub() throws {
        let o = RegistryOptions(mirrors: ["http://127.0.0.1:5001/", "https://mirror.example", "ftp://bad", "http://h/with/path"])
        let hub = o.endpoints(for: try ImageReference(parsing: "redis"))
        #expect(hub.map(\.baseURL) == ["http://127.0.0.1:5001", "https://mirror.example", "https://registry-1.docker.io"])
        #expect(hub.map(\.mirror) == [true, true, false])
        // Mirrors are for docker.io only.
        let other = o.endpoints(for: try ImageReference(parsing: "quay.io/a/b"))
        #expect(other.map(\.baseURL) == ["https://quay.io"])
        #expect(other[0].verifyTLS)
        let local = o.endpoints(for: try ImageReference(parsing: "127.0.0.1:5000/a"))
        #expect(local.map(\.baseURL) == ["https://127.0.0.1:5000", "http://127.0.0.1:5000"])
        #expect(!local[0].verifyTLS)
        #expect(RegistryEndpoint.validateMirror("http://h/with/path") != nil)
        #expect(RegistryEndpoint.validateMirror("http://h:5000") == nil)
    }

    @Test func authChallenges() {
        let c = AuthChallenge(
            parsing: #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull""#)
        #expect(c?.scheme == "bearer")
        #expect(c?.parameters["realm"] == "https://auth.docker.io/token")
        #expect(c?.parameters["service"] == "registry.docker.io")
        #expect(c?.parameters["scope"] == "repository:library/redis:pull")
        #expect(AuthChallenge(parsing: #"Basic realm="x\"y""#)?.parameters["realm"] == #"x"y"#)
        #expect(AuthChallenge(parsing: #"Bearer realm="unterminated"#) == nil)
        #expect(AuthChallenge(parsing: "") == nil)
    }
}

@Suite struct ReferenceFuzzTests {
    /// Random strings over the reference alphabet (and beyond) parse or give a ParseError, and what
    /// parses is stable under a second parse.
    @Test func randomReferences() {
        var rng = MeshValues.SplitMix64(seed: 2026)
        let alphabet = Array("abcXYZ019._-/:@[]sha256:" + String(repeating: "f", count: 8) + " \u{0}é")
        var parsed = 0
        for _ in 0..<20000 {
            let s = String((0..<Int.random(in: 0..<40, using: &rng)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
            if let r = try? ImageReference(parsing: s) {
                parsed += 1
                #expect((try? ImageReference(parsing: r.description)) == r)
            }
        }
        #expect(parsed > 100)
    }

    @Test func randomChallenges() {
        var rng = MeshValues.SplitMix64(seed: 5)
        let alphabet = Array(#"Bearer realm="https://x/t",service=s scope=\"a b"#)
        for _ in 0..<20000 {
            let s = String((0..<Int.random(in: 0..<60, using: &rng)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] })
            _ = AuthChallenge(parsing: s)
        }
    }
}
