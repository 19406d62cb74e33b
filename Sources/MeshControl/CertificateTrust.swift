/// Certificates as the cluster wants them held, or as a node holds them (Docker's `TLSInfo`): the
/// root trusted (PEM) and the issuer of the node's certificate (its subject and key, base64 of DER).
/// The manager sends what it wants at a session's start and whenever it changes (a root rotation);
/// a node whose certificate has another issuer renews at once, and one trusting another root trusts
/// the one sent (the session is mutual TLS under the root it trusts now). The node answers with what
/// it holds each time that changes.
public struct CertificateTrust: Codable, Sendable, Equatable {
    public var trustRootPEM: String
    public var issuerSubject: String
    public var issuerPublicKey: String
    public init(trustRootPEM: String, issuerSubject: String, issuerPublicKey: String) {
        self.trustRootPEM = trustRootPEM
        self.issuerSubject = issuerSubject
        self.issuerPublicKey = issuerPublicKey
    }

    /// Whether a certificate of `held`'s issuer is one this wants.
    public func sameIssuer(as held: CertificateTrust) -> Bool {
        issuerSubject == held.issuerSubject && issuerPublicKey == held.issuerPublicKey
    }
}
