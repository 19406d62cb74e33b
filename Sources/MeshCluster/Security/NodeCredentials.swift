import Crypto
import Foundation
import NIOSSL
import X509

/// What a node holds after joining: its certificate and key and the cluster's CA certificate. Builds the
/// mutual-TLS configurations of the 2377 channel: both sides present their node certificate and trust only
/// the cluster CA. Host names are not checked (peers are dialled by address); instead the application checks
/// the peer's identity with `peerIdentity` (node ID and role from the certificate, e.g. "only managers may
/// send assignments").
public struct NodeCredentials: Sendable {
    public let certificate: Certificate
    public let caCertificate: Certificate
    public let clusterID: String
    /// PEM of the node's P-256 key. Secret: the node's data root only.
    public let keyPEM: String

    public init(certificate: Certificate, key: P256.Signing.PrivateKey, caCertificate: Certificate, clusterID: String) {
        self.certificate = certificate
        self.caCertificate = caCertificate
        self.clusterID = clusterID
        self.keyPEM = key.pemRepresentation
    }

    /// Reloads credentials saved as PEM.
    public init(certificatePEM: String, keyPEM: String, caCertificatePEM: String, clusterID: String) throws(ClusterError) {
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
            caCertificate = try Certificate(pemEncoded: caCertificatePEM)
            _ = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        } catch {
            throw .invalidArgument("cannot load node credentials: \(error)")
        }
        self.keyPEM = keyPEM
        self.clusterID = clusterID
    }

    public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }
    public var caCertificatePEM: String { (try? caCertificate.serializeAsPEM().pemString) ?? "" }

    private func nioMaterial() throws(ClusterError) -> (NIOSSLCertificate, NIOSSLPrivateKey, NIOSSLCertificate) {
        do {
            let cert = try NIOSSLCertificate(bytes: ClusterCA.der(certificate), format: .der)
            let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            let ca = try NIOSSLCertificate(bytes: ClusterCA.der(caCertificate), format: .der)
            return (cert, key, ca)
        } catch {
            throw .invalidArgument("cannot use node credentials for TLS: \(error)")
        }
    }

    /// The listening side of 2377: a client without a certificate of this CA fails the handshake.
    public func serverConfiguration() throws(ClusterError) -> TLSConfiguration {
        let (cert, key, ca) = try nioMaterial()
        var c = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: [.certificate(cert)], privateKey: .privateKey(key), trustRoots: .certificates([ca]))
        c.minimumTLSVersion = .tlsv12
        return c
    }

    /// The dialling side: presents this node's certificate and accepts only servers of this CA.
    public func clientConfiguration() throws(ClusterError) -> TLSConfiguration {
        let (cert, key, ca) = try nioMaterial()
        var c = TLSConfiguration.makeClientConfiguration()
        c.certificateChain = [.certificate(cert)]
        c.privateKey = .privateKey(key)
        c.trustRoots = .certificates([ca])
        c.certificateVerification = .noHostnameVerification
        c.minimumTLSVersion = .tlsv12
        return c
    }

    /// Who the peer of a TLS connection is (after the handshake verified the chain): node ID and role.
    public func peerIdentity(_ peer: NIOSSLCertificate, now: Date = Date()) throws(ClusterError) -> NodeIdentity {
        let cert: Certificate
        do { cert = try Certificate(derEncoded: try peer.toDERBytes()) } catch {
            throw .invalidArgument("unreadable peer certificate: \(error)")
        }
        return try ClusterCA.verify(cert, caCertificate: caCertificate, clusterID: clusterID, now: now)
    }
}

extension NodeCredentials {
    /// Credentials for a node the CA's holder issues directly (the manager's own, at `swarm init`).
    public static func issue(
        by ca: ClusterCA, nodeID: String, role: NodeRole, validity: TimeInterval = ClusterCA.defaultValidity, now: Date = Date()
    ) throws(ClusterError) -> NodeCredentials {
        let (key, csr) = try ClusterCA.makeRequest(nodeID: nodeID)
        let cert = try ca.issue(csr: csr, nodeID: nodeID, role: role, now: now, validity: validity)
        return NodeCredentials(certificate: cert, key: key, caCertificate: ca.certificate, clusterID: ca.clusterID)
    }
}
