import MeshCluster
import MeshControl

/// The session's `CertificateTrust` is the cluster's `TLSInfo` on the wire (MeshControl does not
/// depend on MeshCluster): one conversion each way, for the manager's wanted and stored values and
/// the node's held one.
extension CertificateTrust {
    init(_ info: TLSInfo) {
        self.init(trustRootPEM: info.trustRoot, issuerSubject: info.certIssuerSubject, issuerPublicKey: info.certIssuerPublicKey)
    }

    var tlsInfo: TLSInfo { TLSInfo(trustRoot: trustRootPEM, certIssuerSubject: issuerSubject, certIssuerPublicKey: issuerPublicKey) }
}
