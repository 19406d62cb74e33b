import Crypto
import Foundation

/// Why a join token was refused. The two checks happen on different sides: the joining node compares the
/// token's CA digest with the CA the manager presents (so it never trusts an impostor manager); the manager
/// compares the secret (so only holders of a current token join, and the token picks the role).
public enum JoinTokenError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    /// Joining side: the manager's CA is not the one the token was made for.
    case caDigestMismatch(token: String, manager: String)
    /// Manager side: neither the current worker nor the manager secret.
    case invalidSecret

    public var description: String {
        switch self {
        case .malformed(let why): "invalid join token: \(why)"
        case .caDigestMismatch(let t, let m):
            "the manager's CA does not match the join token (token expects CA digest \(t), manager has \(m)): the token is for another swarm, or this is not the swarm's manager"
        case .invalidSecret: "A valid join token is necessary to join this cluster (the token was rotated or is wrong)"
        }
    }
}

/// `SWMTKN-1-<CA digest: SHA-256 of the CA certificate in base 36, 50 characters>-<secret: 128 random bits in
/// base 36, 25 characters>`, the format of swarmkit's join tokens.
public struct JoinToken: Sendable, Equatable, CustomStringConvertible {
    public static let prefix = "SWMTKN"
    public static let formatVersion = "1"
    public static let digestLength = 50
    public static let secretLength = 25

    public let caDigest: String
    public let secret: String

    public var description: String { "\(Self.prefix)-\(Self.formatVersion)-\(caDigest)-\(secret)" }

    public static func digest(ofCACertificate der: [UInt8]) -> String {
        Base36.encode(Array(SHA256.hash(data: der)), width: digestLength)
    }

    /// A fresh token for the CA.
    public static func generate(caCertificateDER der: [UInt8]) -> JoinToken {
        var g = SystemRandomNumberGenerator()
        return generate(caCertificateDER: der, using: &g)
    }

    public static func generate<G: RandomNumberGenerator>(caCertificateDER der: [UInt8], using g: inout G) -> JoinToken {
        let secret = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &g) }
        return JoinToken(caDigest: digest(ofCACertificate: der), secret: Base36.encode(secret, width: secretLength))
    }

    private init(caDigest: String, secret: String) {
        self.caDigest = caDigest
        self.secret = secret
    }

    public static func parse(_ text: String) throws(JoinTokenError) -> JoinToken {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == prefix else { throw .malformed("expected \(prefix)-1-<digest>-<secret>") }
        guard parts[1] == formatVersion else { throw .malformed("unsupported token version \(parts[1])") }
        guard parts[2].count == digestLength, Base36.isBase36(parts[2]) else {
            throw .malformed("the CA digest must be \(digestLength) base-36 characters")
        }
        guard parts[3].count == secretLength, Base36.isBase36(parts[3]) else {
            throw .malformed("the secret must be \(secretLength) base-36 characters")
        }
        return JoinToken(caDigest: String(parts[2]), secret: String(parts[3]))
    }

    /// Joining side: the CA certificate the manager presented must be the one in the token.
    public func checkCA(certificateDER der: [UInt8]) throws(JoinTokenError) {
        let actual = Self.digest(ofCACertificate: der)
        guard constantTimeEqual(actual, caDigest) else { throw .caDigestMismatch(token: caDigest, manager: actual) }
    }
}

/// Compares without an early exit, so timing does not reveal how much of a secret matched.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<x.count { diff |= x[i] ^ y[i] }
    return diff == 0
}

/// The cluster's current worker and manager tokens (Docker's `JoinTokens`).
public struct JoinTokens: Codable, Sendable, Equatable {
    public private(set) var worker: String
    public private(set) var manager: String

    public init(ca: ClusterCA) {
        worker = JoinToken.generate(caCertificateDER: ca.certificateDER).description
        manager = JoinToken.generate(caCertificateDER: ca.certificateDER).description
    }

    /// `swarm join-token --rotate`: the old token of that role stops working.
    public mutating func rotate(_ role: NodeRole, ca: ClusterCA) {
        let fresh = JoinToken.generate(caCertificateDER: ca.certificateDER).description
        switch role {
        case .worker: worker = fresh
        case .manager: manager = fresh
        }
    }

    public func token(for role: NodeRole) -> String { role == .worker ? worker : manager }

    /// Manager side: the role a presented token grants. The CA digest is checked too (a token of another
    /// swarm is refused as malformed for this one) but the secret decides.
    public func role(for presented: String) throws(JoinTokenError) -> NodeRole {
        let token = try JoinToken.parse(presented)
        let mine = try JoinToken.parse(worker)
        guard token.caDigest == mine.caDigest else { throw .caDigestMismatch(token: token.caDigest, manager: mine.caDigest) }
        if constantTimeEqual(token.secret, mine.secret) { return .worker }
        if constantTimeEqual(token.secret, try JoinToken.parse(manager).secret) { return .manager }
        throw .invalidSecret
    }
}
