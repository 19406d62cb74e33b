import Crypto
import Foundation
import MeshCluster
import MeshControl
import Synchronization
import X509

/// The node's certificate in force, one owner for every 2377 end of this daemon: the session's and
/// forwarding's client side, the leader's and the follower's listeners. A renewal replaces it here
/// (after node.json has it), and each connection made afterwards presents the new one. The key does
/// not change: a renewal certifies the key the node already holds.
public final class NodeCertificate: Sendable {
    let nodeID: String
    let clusterID: String
    let caPEM: String
    let keyPEM: String
    private let certificatePEM: Mutex<String>

    public init(record: NodeRecord) {
        nodeID = record.nodeID
        clusterID = record.clusterID
        caPEM = record.caPEM
        keyPEM = record.keyPEM
        certificatePEM = Mutex(record.certificatePEM)
    }

    public var pem: String { certificatePEM.withLock { $0 } }

    /// What a node shows when it dials a manager: its certificate alone.
    var client: ControlIdentity { ControlIdentity(certificateChainPEM: pem, privateKeyPEM: keyPEM) }

    /// What a manager's listener shows: its certificate, then the CA, so a joiner can check the CA
    /// against the digest in its token.
    var server: ControlIdentity { ControlIdentity(certificateChainPEM: pem + "\n" + caPEM, privateKeyPEM: keyPEM) }

    func certificate() throws -> Certificate { try Certificate(pemEncoded: pem) }

    func replace(with pem: String) { certificatePEM.withLock { $0 = pem } }
}

/// The node's side of renewal: at the renewal point of the certificate in force (see
/// `CertificateRenewal`), a CSR for the node's key goes to the managers in turn (leader first) over
/// a connection made with the current certificate; what comes back is checked, saved in node.json,
/// then put in force. A failure is retried with a backoff until the certificate expires; an expired
/// certificate cannot make the mutual-TLS connection, so such a node must leave and join again.
struct CertificateRenewer: Sendable {
    let certificate: NodeCertificate
    let dataRoot: String
    let managers: @Sendable () async -> [String]

    func run() async {
        var failures = 0
        var fraction = Double.random(in: CertificateRenewal.window)
        while !Task.isCancelled {
            guard let cert = try? certificate.certificate() else { return }
            let now = Date()
            let at =
                failures == 0
                ? CertificateRenewal.renewalTime(of: cert, fraction: fraction)
                : now.addingTimeInterval(CertificateRenewal.retryDelay(failures: failures, expiry: cert.notValidAfter, now: now))
            let wait = at.timeIntervalSince(now)
            if wait > 0 {
                do { try await Task.sleep(for: .milliseconds(Int64(wait * 1000))) } catch { return }
            }
            do {
                let renewed = try await renewOnce()
                failures = 0
                fraction = Double.random(in: CertificateRenewal.window)
                DaemonLog.node.info(
                    "node \(certificate.nodeID): certificate renewed, valid until \(renewed.notValidAfter) (role \(ClusterCA.subject(of: renewed)?.role.rawValue ?? "?"))"
                )
            } catch {
                failures += 1
                let expired = Date() >= cert.notValidAfter
                DaemonLog.node.warning(
                    "node \(certificate.nodeID): certificate renewal failed\(expired ? " and the certificate has expired (leave and join again)" : ""): \(error)"
                )
                if expired { return }
            }
        }
    }

    /// One renewal: asks each manager until one issues; returns the certificate now in force.
    func renewOnce() async throws -> Certificate {
        let key = try P256.Signing.PrivateKey(pemRepresentation: certificate.keyPEM)
        let csr = try ClusterCA.makeRequest(nodeID: certificate.nodeID, key: key)
        let csrPEM = try csr.serializeAsPEM().pemString
        let ca = try Certificate(pemEncoded: certificate.caPEM)
        var reasons: [String] = []
        for manager in await managers() {
            guard let (host, port) = NodePlane.split(manager) else { continue }
            do {
                let answer = try await ControlClient.ask(
                    .renewCertificate(csrPEM: csrPEM), host: host, port: port, caPEM: certificate.caPEM,
                    identity: certificate.client, within: .seconds(10))
                switch answer {
                case .certificate(let pem)?:
                    let cert = try Certificate(pemEncoded: pem)
                    _ = try CertificateRenewal.check(
                        cert, nodeID: certificate.nodeID, key: key, caCertificate: ca, clusterID: certificate.clusterID)
                    // Saved first: a crash between the two leaves node.json with the newer certificate.
                    try NodeRecord.update(dataRoot: dataRoot) { $0.certificatePEM = pem }
                    certificate.replace(with: pem)
                    return cert
                case .error(let why)?: reasons.append("\(manager): \(why)")
                case let other?: reasons.append("\(manager): unexpected answer \(other)")
                case nil: reasons.append("\(manager): closed without an answer")
                }
            } catch {
                reasons.append("\(manager): \(error)")
            }
        }
        throw DaemonError.io(reasons.isEmpty ? "no manager to ask" : reasons.joined(separator: "; "))
    }
}
