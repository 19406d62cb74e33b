import Crypto
import Foundation
import SwiftASN1
import X509

/// Who a verified node certificate says its holder is.
public struct NodeIdentity: Sendable, Equatable {
    public var nodeID: String
    public var role: NodeRole
    public var clusterID: String
}

/// The cluster's root CA (ECDSA P-256, like swarmkit's). Node certificates carry the node ID as CN, the role
/// as OU (`swarm-manager`/`swarm-worker`) and the cluster ID as O; the manager chooses all three, whatever
/// the CSR's subject says, so a node cannot name itself a manager.
public struct ClusterCA: Sendable {
    public static let rootCommonName = "swarm-ca"
    /// How far before its issue a certificate's validity starts, for clocks that lag the CA's.
    public static let backdate: TimeInterval = 3600
    /// Docker's default node certificate expiry (`--cert-expiry`, `CAConfig.NodeCertExpiry`).
    public static let defaultValidity: TimeInterval = 90 * 86400
    public let clusterID: String
    public let certificate: Certificate
    /// The signing key's raw bytes (the key type itself is not `Sendable`).
    private let keyBytes: Data
    private var key: P256.Signing.PrivateKey { try! P256.Signing.PrivateKey(rawRepresentation: keyBytes) }

    /// A new root CA, valid for 20 years like swarmkit's.
    public static func create(clusterID: String, now: Date = Date()) throws(ClusterError) -> ClusterCA {
        let key = P256.Signing.PrivateKey()
        do {
            let name = try DistinguishedName {
                OrganizationName(clusterID)
                CommonName(rootCommonName)
            }
            let cert = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(),
                publicKey: Certificate.PublicKey(key.publicKey),
                notValidBefore: now.addingTimeInterval(-backdate), notValidAfter: now.addingTimeInterval(20 * 365 * 86400),
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 1))
                    Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
                },
                issuerPrivateKey: Certificate.PrivateKey(key))
            return ClusterCA(clusterID: clusterID, certificate: cert, key: key)
        } catch {
            throw .storage("cannot create the cluster CA: \(error)")
        }
    }

    /// Reloads a CA saved with `certificatePEM` and `keyPEM`.
    public init(certificatePEM: String, keyPEM: String) throws(ClusterError) {
        do {
            let cert = try Certificate(pemEncoded: certificatePEM)
            let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
            guard cert.publicKey == Certificate.PublicKey(key.publicKey) else {
                throw ClusterError.invalidArgument("the CA key does not belong to the CA certificate")
            }
            guard let org = Self.attribute(ASN1ObjectIdentifier.RDNAttributeType.organizationName, of: cert.subject) else {
                throw ClusterError.invalidArgument("the CA certificate has no cluster ID (O)")
            }
            self.init(clusterID: org, certificate: cert, key: key)
        } catch let e as ClusterError {
            throw e
        } catch {
            throw .invalidArgument("cannot load the cluster CA: \(error)")
        }
    }

    private init(clusterID: String, certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.clusterID = clusterID
        self.certificate = certificate
        self.keyBytes = key.rawRepresentation
    }

    public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }
    /// Secret: store it only in the manager's data root.
    public var keyPEM: String { key.pemRepresentation }
    public var certificateDER: [UInt8] { Self.der(certificate) }

    /// The digest join tokens carry (SHA-256 of the CA certificate's DER, in base 36).
    public var digest: String { JoinToken.digest(ofCACertificate: certificateDER) }

    static func der(_ cert: Certificate) -> [UInt8] {
        var s = DER.Serializer()
        do { try s.serialize(cert) } catch { return [] }
        return s.serializedBytes
    }

    static func attribute(_ type: ASN1ObjectIdentifier, of name: DistinguishedName) -> String? {
        for rdn in name { for a in rdn where a.type == type { return String(a.value) } }
        return nil
    }

    // MARK: issuing

    /// A key and CSR for a node (the joining side makes these; the key never leaves the node).
    public static func makeRequest(nodeID: String) throws(ClusterError) -> (key: P256.Signing.PrivateKey, csr: CertificateSigningRequest) {
        let key = P256.Signing.PrivateKey()
        return (key, try makeRequest(nodeID: nodeID, key: key))
    }

    /// A CSR for a key the node already holds (a renewal: the key stays where it was kept, sealed
    /// under the unlock key on an autolocked manager).
    public static func makeRequest(nodeID: String, key: P256.Signing.PrivateKey) throws(ClusterError) -> CertificateSigningRequest {
        do {
            let csr = try CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName(nodeID) },
                privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
                signatureAlgorithm: .ecdsaWithSHA256)
            return csr
        } catch {
            throw .storage("cannot make a certificate request: \(error)")
        }
    }

    /// Signs a node certificate for the CSR's key (by default valid 90 days, Docker's default node certificate expiry).
    public func issue(
        csr: CertificateSigningRequest, nodeID: String, role: NodeRole, now: Date = Date(),
        validity: TimeInterval = defaultValidity
    ) throws(ClusterError) -> Certificate {
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else {
            throw .invalidArgument("the certificate signing request's signature is not valid")
        }
        guard ObjectID.isValid(nodeID) else { throw .invalidArgument("invalid node ID \(nodeID)") }
        let ou = role == .manager ? "swarm-manager" : "swarm-worker"
        do {
            let subject = try DistinguishedName {
                OrganizationName(clusterID)
                OrganizationalUnitName(ou)
                CommonName(nodeID)
            }
            return try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: csr.publicKey,
                notValidBefore: now.addingTimeInterval(-Self.backdate), notValidAfter: now.addingTimeInterval(validity),
                issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames([.dnsName(ou), .dnsName(nodeID)])
                    AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                },
                issuerPrivateKey: Certificate.PrivateKey(key))
        } catch {
            throw .storage("cannot issue a node certificate: \(error)")
        }
    }

    /// `next`'s certificate signed by this CA's key: same subject, key and key identifier as `next`'s
    /// own, issued by this root. A node trusting only this root verifies a certificate `next` issued
    /// through it (leaf, then this), so a root rotation needs no node to change its trust first. It
    /// may certify no CA below it, and ends when this root does if that is sooner.
    public func crossSign(_ next: ClusterCA, now: Date = Date()) throws(ClusterError) -> Certificate {
        do {
            return try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: next.certificate.publicKey,
                notValidBefore: now.addingTimeInterval(-Self.backdate),
                notValidAfter: min(next.certificate.notValidAfter, certificate.notValidAfter),
                issuer: certificate.subject, subject: next.certificate.subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: next.certificate.publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                },
                issuerPrivateKey: Certificate.PrivateKey(key))
        } catch {
            throw .storage("cannot cross-sign the new root CA: \(error)")
        }
    }

    // MARK: verifying

    /// Checks that `cert` was issued by this CA, is valid at `now`, and names a node of this cluster;
    /// returns the node ID and role it carries.
    public func verify(_ cert: Certificate, now: Date = Date()) throws(ClusterError) -> NodeIdentity {
        try Self.verify(cert, caCertificate: certificate, clusterID: clusterID, now: now)
    }

    /// The same check through one of `intermediates` when the root did not issue `cert` itself (a
    /// root rotation's cross-signed certificate): that one must be a CA the root issued, valid now.
    public static func verify(
        _ cert: Certificate, intermediates: [Certificate], caCertificate: Certificate, clusterID: String,
        now: Date = Date()
    ) throws(ClusterError) -> NodeIdentity {
        if cert.issuer == caCertificate.subject, caCertificate.publicKey.isValidSignature(cert.signature, for: cert) {
            return try verify(cert, caCertificate: caCertificate, clusterID: clusterID, now: now)
        }
        for i in intermediates
        where i.issuer == caCertificate.subject && caCertificate.publicKey.isValidSignature(i.signature, for: i)
            && (try? i.extensions.basicConstraints) == .isCertificateAuthority(maxPathLength: 0)
            && i.notValidBefore <= now && now <= i.notValidAfter && i.publicKey.isValidSignature(cert.signature, for: cert)
        {
            return try verify(cert, caCertificate: i, clusterID: clusterID, now: now)
        }
        throw .invalidArgument("certificate of \(cert.subject) was not issued by this cluster's CA")
    }

    /// The same check with only the CA certificate, as a node (which has no CA key) checks its peers.
    public static func verify(
        _ cert: Certificate, caCertificate: Certificate, clusterID: String,
        now: Date = Date()
    ) throws(ClusterError) -> NodeIdentity {
        guard cert.issuer == caCertificate.subject,
            caCertificate.publicKey.isValidSignature(cert.signature, for: cert)
        else {
            throw .invalidArgument("certificate of \(cert.subject) was not issued by this cluster's CA")
        }
        guard cert.notValidBefore <= now, now <= cert.notValidAfter else {
            throw .invalidArgument(
                "certificate of \(cert.subject) is not valid at \(now) (valid \(cert.notValidBefore) to \(cert.notValidAfter))")
        }
        guard let cn = attribute(ASN1ObjectIdentifier.RDNAttributeType.commonName, of: cert.subject),
            let ou = attribute(ASN1ObjectIdentifier.RDNAttributeType.organizationalUnitName, of: cert.subject),
            let org = attribute(ASN1ObjectIdentifier.RDNAttributeType.organizationName, of: cert.subject)
        else {
            throw .invalidArgument("certificate of \(cert.subject) lacks the node ID, role or cluster ID")
        }
        guard org == clusterID else { throw .invalidArgument("certificate belongs to cluster \(org), not \(clusterID)") }
        let role: NodeRole
        switch ou {
        case "swarm-manager": role = .manager
        case "swarm-worker": role = .worker
        default: throw .invalidArgument("certificate has an unknown role \(ou)")
        }
        return NodeIdentity(nodeID: cn, role: role, clusterID: org)
    }
}

/// Docker's `TLSInfo` (in `GET /swarm`, `Info.Swarm.Cluster` and each node's description). The CLI
/// base64-decodes the two issuer fields, so they are base64 of DER (the subject name and the
/// SubjectPublicKeyInfo), never raw text.
public struct TLSInfo: Codable, Sendable, Equatable {
    public var trustRoot: String
    public var certIssuerSubject: String
    public var certIssuerPublicKey: String
    public init(trustRoot: String, certIssuerSubject: String, certIssuerPublicKey: String) {
        self.trustRoot = trustRoot
        self.certIssuerSubject = certIssuerSubject
        self.certIssuerPublicKey = certIssuerPublicKey
    }
}

/// Certificates in one PEM text, leaf first (what a node holds after a root rotation began: its
/// certificate, then the cross-signed root that issued it).
public enum PEMChain {
    public static func certificates(_ pem: String) throws(ClusterError) -> [Certificate] {
        do {
            let certs = try PEMDocument.parseMultiple(pemString: pem).map { try Certificate(pemDocument: $0) }
            guard !certs.isEmpty else { throw ClusterError.invalidArgument("no certificate in the PEM text") }
            return certs
        } catch let e as ClusterError {
            throw e
        } catch {
            throw .invalidArgument("cannot read the certificate chain: \(error)")
        }
    }

    /// The first certificate (the holder's own).
    public static func leaf(_ pem: String) throws(ClusterError) -> Certificate { try certificates(pem)[0] }

    public static func pem(_ certs: [Certificate]) -> String {
        certs.compactMap { try? $0.serializeAsPEM().pemString }.joined(separator: "\n")
    }
}

extension ClusterCA {
    public var tlsInfo: TLSInfo { Self.tlsInfo(of: certificate) }

    /// What the CA's certificate alone says (no private key needed: a manager that does not lead shows it too).
    public static func tlsInfo(of certificate: Certificate) -> TLSInfo { tlsInfo(trustRoot: certificate, issuer: certificate) }

    /// Trust in `trustRoot`, certificates from `issuer` (during a root rotation the cluster's are the
    /// current root and the cross-signed new one; a node's are its trust root and its certificate's issuer).
    public static func tlsInfo(trustRoot: Certificate, issuer: Certificate) -> TLSInfo {
        var subject = DER.Serializer()
        try? subject.serialize(issuer.subject)
        var key = DER.Serializer()
        try? key.serialize(issuer.publicKey)
        return TLSInfo(
            trustRoot: (try? trustRoot.serializeAsPEM().pemString) ?? "",
            certIssuerSubject: Data(subject.serializedBytes).base64EncodedString(),
            certIssuerPublicKey: Data(key.serializedBytes).base64EncodedString())
    }
}
