import Foundation
import X509

/// The root a rotation moves to, loaded: its CA (key open) and its certificate cross-signed by the
/// current root.
public struct PendingRoot: Sendable {
    public let ca: ClusterCA
    public let crossSigned: Certificate

    init(_ r: RootRotation) throws(ClusterError) {
        ca = try ClusterCA(certificatePEM: r.caCertificatePEM, keyPEM: r.caKeyPEM)
        do { crossSigned = try Certificate(pemEncoded: r.crossSignedPEM) } catch {
            throw .invalidArgument("the stored cross-signed root does not parse: \(error)")
        }
    }
}

/// `docker swarm ca --rotate`, as swarmkit does it: a new root is made and cross-signed by the
/// current one; from then on every certificate is issued by the new key and sent with the
/// cross-signed root, so it verifies under the current root that every node still trusts. Nodes
/// are told to renew at once (the session's `ClusterTrust`), and each reports what it then holds.
/// When every node in the store holds a certificate of the new key, the new root becomes the root:
/// nodes are told to trust it instead, and the join tokens, which carry the root's digest, are
/// made again (the old ones stop working). A node down throughout keeps the rotation waiting, as
/// in swarmkit; `node rm` it to let it finish.
extension ClusterManager {
    /// The CA that signs certificates now: the pending root during a rotation.
    public var issuer: ClusterCA { pendingRoot?.ca ?? ca }

    /// What goes after a certificate `issuer` signed: the cross-signed root during a rotation.
    public var issuedChain: [Certificate] { pendingRoot.map { [$0.crossSigned] } ?? [] }

    /// What every node should hold (Docker's `ClusterInfo.TLSInfo`): trust in the root, a
    /// certificate from the issuer.
    public var clusterTLSInfo: TLSInfo {
        ClusterCA.tlsInfo(trustRoot: ca.certificate, issuer: pendingRoot?.crossSigned ?? ca.certificate)
    }

    /// The same from stored settings alone (a manager that does not lead parses no key).
    public static func clusterTLSInfo(_ settings: ClusterSettings) throws(ClusterError) -> TLSInfo {
        do {
            let root = try Certificate(pemEncoded: settings.caCertificatePEM)
            let issuer = try settings.rootRotation.map { try Certificate(pemEncoded: $0.crossSignedPEM) } ?? root
            return ClusterCA.tlsInfo(trustRoot: root, issuer: issuer)
        } catch {
            throw .invalidArgument("the stored CA certificates do not parse: \(error)")
        }
    }

    /// Starts a root rotation (a new one replaces one under way: nodes renew again, under the newest).
    /// Secrets stay sealed with the key derived from the root they were sealed under, kept from now on.
    public mutating func startRootRotation(now: Date = Date()) throws(ClusterError) {
        var s = settings
        if s.secretsKey == nil { s.secretsKey = secretSealing.keyText }
        let next = try ClusterCA.create(clusterID: ca.clusterID, now: now)
        let cross = try ca.crossSign(next, now: now)
        let crossPEM: String
        do { crossPEM = try cross.serializeAsPEM().pemString } catch {
            throw .storage("cannot encode the cross-signed root: \(error)")
        }
        s.rootRotation = RootRotation(caCertificatePEM: next.certificatePEM, caKeyPEM: next.keyPEM, crossSignedPEM: crossPEM)
        let pending = try PendingRoot(s.rootRotation!)
        try ClusterBootstrap.save(s, store: store, key: unlockKey, previous: previousUnlockKey)
        settings = s
        pendingRoot = pending
        rotationWaitsFor = nil
    }

    /// What node `nodeID` reports it holds; stored when it changed (`node inspect` shows it). Returns
    /// whether it did.
    @discardableResult
    public mutating func recordTLSInfo(_ info: TLSInfo, nodeID: String, now: Date = Date()) throws(ClusterError) -> Bool {
        guard var node = try store.get(ClusterNode.self, id: nodeID), node.tlsInfo != info else { return false }
        node.tlsInfo = info
        node.updatedAt = now
        _ = try store.update(node)
        if rotationWaitsFor != nil {
            if Self.holds(node, clusterTLSInfo) { rotationWaitsFor?.remove(nodeID) } else { rotationWaitsFor?.insert(nodeID) }
        }
        return true
    }

    /// Whether `node` reported a certificate of the issuer `wanted` names.
    static func holds(_ node: ClusterNode, _ wanted: TLSInfo) -> Bool {
        node.tlsInfo?.certIssuerPublicKey == wanted.certIssuerPublicKey && node.tlsInfo?.certIssuerSubject == wanted.certIssuerSubject
    }

    /// Ends a rotation once every node holds a certificate from the new root's key: the new root is
    /// the root, with new join tokens. Returns whether it ended now. The nodes still to report are
    /// counted from one read of the store per rotation (or manager start) and then kept up by each
    /// report, join and removal, so a report costs the same however many nodes there are; the end is
    /// confirmed by one more read.
    @discardableResult
    public mutating func finishRootRotationIfConverged() throws(ClusterError) -> Bool {
        guard let pending = pendingRoot, let r = settings.rootRotation else { return false }
        let wanted = clusterTLSInfo
        if rotationWaitsFor == nil {
            rotationWaitsFor = Set(try store.list(ClusterNode.self).filter { !Self.holds($0, wanted) }.map(\.id))
        }
        guard rotationWaitsFor?.isEmpty == true else { return false }
        let behind = try store.list(ClusterNode.self).filter { !Self.holds($0, wanted) }.map(\.id)
        guard behind.isEmpty else {
            rotationWaitsFor = Set(behind)
            return false
        }
        var s = settings
        s.caCertificatePEM = r.caCertificatePEM
        s.caKeyPEM = r.caKeyPEM
        s.rootRotation = nil
        s.tokens = JoinTokens(ca: pending.ca)
        try ClusterBootstrap.save(s, store: store, key: unlockKey, previous: previousUnlockKey)
        settings = s
        ca = pending.ca
        pendingRoot = nil
        rotationWaitsFor = nil
        return true
    }
}
