import Crypto
import Foundation
import MeshCluster
import MeshControl
import Synchronization
import X509

/// The node's certificate in force and the root it trusts, one owner for every 2377 end of this
/// daemon: the session's and forwarding's client side, the leader's and the follower's listeners. A
/// renewal replaces the certificate here (after node.json has it), a root rotation the trust root,
/// and each connection made afterwards uses the new one. The key does not change: a renewal
/// certifies the key the node already holds.
public final class NodeCertificate: Sendable {
    let nodeID: String
    let clusterID: String
    let keyPEM: String
    /// The certificate chain (leaf first: during a root rotation the cross-signed root follows) and
    /// the root trusted.
    private let state: Mutex<(chain: String, trust: String)>
    /// Wakes the renewer before its renewal point (the manager wants a certificate of another issuer).
    let renewNow: AsyncStream<Void>
    private let renewNowSink: AsyncStream<Void>.Continuation

    public init(record: NodeRecord) {
        nodeID = record.nodeID
        clusterID = record.clusterID
        keyPEM = record.keyPEM
        state = Mutex((record.certificatePEM, record.caPEM))
        (renewNow, renewNowSink) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    deinit { renewNowSink.finish() }

    /// The chain, leaf first.
    public var pem: String { state.withLock { $0.chain } }
    /// The root this node trusts.
    public var caPEM: String { state.withLock { $0.trust } }

    /// What a node shows when it dials a manager: its certificate (and the cross-signed root after it).
    var client: ControlIdentity { ControlIdentity(certificateChainPEM: pem, privateKeyPEM: keyPEM) }

    /// What a manager's listener shows: its chain, then the root, so a joiner can check the root
    /// against the digest in its token.
    var server: ControlIdentity {
        let (chain, trust) = state.withLock { ($0.chain, $0.trust) }
        return ControlIdentity(certificateChainPEM: chain + "\n" + trust, privateKeyPEM: keyPEM)
    }

    func certificate() throws -> Certificate { try PEMChain.leaf(pem) }

    func replace(with pem: String) { state.withLock { $0.chain = pem } }

    func trust(_ rootPEM: String) { state.withLock { $0.trust = rootPEM } }

    func askForRenewal() { renewNowSink.yield() }

    /// What this node holds, as the manager compares it with what it wants: the trusted root, and
    /// the issuer of the node's certificate (the cross-signed root after it, or else the root).
    func held() throws -> CertificateTrust {
        let (chain, trust) = state.withLock { ($0.chain, $0.trust) }
        let certs = try PEMChain.certificates(chain)
        let root = try Certificate(pemEncoded: trust)
        return CertificateTrust(ClusterCA.tlsInfo(trustRoot: root, issuer: certs.count > 1 ? certs[1] : root))
    }

    /// What the manager wants, taken in: a new trust root once this node's own certificate verifies
    /// under it (else it would shut itself out: it renews first, and the manager sends it again), and a
    /// renewal at once when the certificate's issuer is not the one wanted. Both trust changes are
    /// saved in node.json before they are put in force. Returns what the node holds afterwards.
    func take(_ wanted: CertificateTrust, dataRoot: String) throws -> CertificateTrust {
        var now = try held()
        if wanted.trustRootPEM != now.trustRootPEM {
            let root = try Certificate(pemEncoded: wanted.trustRootPEM)
            let certs = try PEMChain.certificates(pem)
            if (try? ClusterCA.verify(certs[0], intermediates: Array(certs.dropFirst()), caCertificate: root, clusterID: clusterID))
                != nil
            {
                try NodeRecord.update(dataRoot: dataRoot) { $0.caPEM = wanted.trustRootPEM }
                trust(wanted.trustRootPEM)
                DaemonLog.node.info("node \(nodeID): trusting the rotated root CA")
                now = try held()
            }
        }
        if !wanted.sameIssuer(as: now) { askForRenewal() }
        return now
    }
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
    /// Called after each renewal (the session tells the manager what the node now holds).
    let renewed: @Sendable () async -> Void

    func run() async {
        var failures = 0
        var fraction = Double.random(in: CertificateRenewal.window)
        let asked = certificate.renewNow
        while !Task.isCancelled {
            guard let cert = try? certificate.certificate() else { return }
            let now = Date()
            let at =
                failures == 0
                ? CertificateRenewal.renewalTime(of: cert, fraction: fraction)
                : now.addingTimeInterval(CertificateRenewal.retryDelay(failures: failures, expiry: cert.notValidAfter, now: now))
            let wait = at.timeIntervalSince(now)
            if wait > 0 {
                // Until the renewal point, or sooner when the manager asks for a certificate of another issuer.
                await withTaskGroup(of: Void.self) { g in
                    g.addTask { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
                    g.addTask { for await _ in asked { return } }
                    await g.next()
                    g.cancelAll()
                }
                if Task.isCancelled { return }
            }
            do {
                let renewed = try await renewOnce()
                failures = 0
                fraction = Double.random(in: CertificateRenewal.window)
                DaemonLog.node.info(
                    "node \(certificate.nodeID): certificate renewed, valid until \(renewed.notValidAfter) (role \(ClusterCA.subject(of: renewed)?.role.rawValue ?? "?"))"
                )
                await self.renewed()
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
                    let chain = try PEMChain.certificates(pem)
                    let cert = chain[0]
                    _ = try CertificateRenewal.check(
                        cert, intermediates: Array(chain.dropFirst()), nodeID: certificate.nodeID, key: key, caCertificate: ca,
                        clusterID: certificate.clusterID)
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
