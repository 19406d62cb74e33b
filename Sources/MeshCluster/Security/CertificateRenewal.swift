import Crypto
import Foundation
import X509

/// When a node asks for a new certificate, and what it accepts back. A node renews at a random
/// point between half and four fifths of its certificate's life (swarmkit's window), so nodes that
/// joined together do not all ask at once, and a renewal that fails has the rest of the life to be
/// retried. The life counts from the issue, not from `notValidBefore`: that is backdated an hour
/// for lagging clocks, and with a short expiry it would put every renewal point in the past.
public enum CertificateRenewal {
    public static let window: ClosedRange<Double> = 0.5...0.8

    /// When `cert` was issued (its backdated start plus the backdate, never past its end).
    public static func issued(_ cert: Certificate) -> Date {
        min(cert.notValidBefore.addingTimeInterval(ClusterCA.backdate), cert.notValidAfter)
    }

    /// The point `fraction` (clamped to `window`) of the way from issue to expiry.
    public static func renewalTime(of cert: Certificate, fraction: Double) -> Date {
        let f = min(max(fraction, window.lowerBound), window.upperBound)
        let start = issued(cert)
        return start.addingTimeInterval(cert.notValidAfter.timeIntervalSince(start) * f)
    }

    /// How long to wait before retrying after `failures` failed renewals in a row: 1 s doubling to
    /// 30 s, never past the certificate's expiry (an expired certificate cannot renew over mutual
    /// TLS, so the last chance is taken just before).
    public static func retryDelay(failures: Int, expiry: Date, now: Date) -> TimeInterval {
        let backoff = min(30, pow(2, Double(min(max(failures - 1, 0), 5))))
        return max(0, min(backoff, expiry.timeIntervalSince(now) - 1))
    }

    /// Checks a certificate a manager sent back for a renewal: issued by the cluster's CA (directly, or
    /// through a cross-signed root in `intermediates` during a root rotation) for this node, for the
    /// key the node holds, and valid now. Returns the role it carries.
    public static func check(
        _ cert: Certificate, intermediates: [Certificate] = [], nodeID: String, key: P256.Signing.PrivateKey,
        caCertificate: Certificate, clusterID: String, now: Date = Date()
    ) throws(ClusterError) -> NodeIdentity {
        let identity = try ClusterCA.verify(
            cert, intermediates: intermediates, caCertificate: caCertificate, clusterID: clusterID, now: now)
        guard identity.nodeID == nodeID else {
            throw .invalidArgument("the renewed certificate names node \(identity.nodeID), not \(nodeID)")
        }
        guard cert.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw .invalidArgument("the renewed certificate is not for this node's key")
        }
        return identity
    }
}
