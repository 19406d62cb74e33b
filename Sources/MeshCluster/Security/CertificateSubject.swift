import SwiftASN1
import X509

public extension ClusterCA {
    /// What a node certificate's subject names (node ID, role, cluster ID), without verifying it: a
    /// joining node reads its own new certificate with this, having checked the CA already.
    static func subject(of cert: Certificate) -> (nodeID: String, role: NodeRole, clusterID: String)? {
        guard let cn = attribute(.RDNAttributeType.commonName, of: cert.subject),
            let ou = attribute(.RDNAttributeType.organizationalUnitName, of: cert.subject),
            let org = attribute(.RDNAttributeType.organizationName, of: cert.subject)
        else { return nil }
        return (cn, ou == "swarm-manager" ? .manager : .worker, org)
    }
}

public extension ClusterCA {
    /// The CN of a name (a CSR's subject names the node that asks).
    static func commonName(of name: DistinguishedName) -> String? { attribute(.RDNAttributeType.commonName, of: name) }
}
