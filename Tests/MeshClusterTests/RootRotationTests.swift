import Crypto
import Foundation
import Testing
import X509
@testable import MeshCluster

/// Issue 17, `swarm ca --rotate`, on the manager: a new root cross-signed by the current one signs
/// every certificate from then on; the rotation ends only when every node reports a certificate of
/// the new key; then the new root is the root, the join tokens carry its digest, and what the store
/// holds (sealed on an autolocked swarm) survives a restart, secrets included.
@Suite struct RootRotationTests {
    struct Swarm {
        var m: ClusterManager
        let path: String
        let ids: [String]
    }

    static func swarm(_ name: String, unlockKey: UnlockKey? = nil) throws -> Swarm {
        let path = temporaryPath(name)
        var g = SplitMix64(seed: 17)
        let ids = (0..<3).map { _ in ObjectID.make(using: &g) }
        var m = try ClusterManager.initialize(
            store: try SQLiteClusterStore(path: path), nodeID: ids[0], hostname: "node1", advertiseAddr: "192.168.61.1",
            now: t0, unlockKey: unlockKey)
        for (i, id) in ids.enumerated().dropFirst() {
            _ = try m.join(
                token: m.settings.tokens.worker, nodeID: id, hostname: "node\(i + 1)", addr: "192.168.61.\(i + 1)",
                csr: try ClusterCA.makeRequest(nodeID: id).csr, now: t0)
        }
        return Swarm(m: m, path: path, ids: ids)
    }

    /// What a node holding a certificate of `m.issuer` (and trusting `m.ca`) reports.
    static func held(_ m: ClusterManager, renewed: Bool) -> TLSInfo {
        renewed ? m.clusterTLSInfo : ClusterCA.tlsInfo(of: m.ca.certificate)
    }

    @Test func theRotationEndsWhenEveryNodeHoldsACertificateOfTheNewRoot() throws {
        var s = try Self.swarm("rotate.sqlite")
        defer { removeTemporary(s.path) }
        let oldRoot = s.m.ca.certificate
        let oldTokens = s.m.settings.tokens
        let secret: ClusterSecret = try s.m.createData(ClusterSecret.self, DataObjectSpec(name: "pw", data: Data("hunter2".utf8)))
        for id in s.ids { try s.m.recordTLSInfo(Self.held(s.m, renewed: false), nodeID: id) }
        #expect(try !s.m.finishRootRotationIfConverged())

        try s.m.startRootRotation(now: t0)
        let pending = try #require(s.m.pendingRoot)
        #expect(s.m.ca.certificate == oldRoot && s.m.issuer.certificate == pending.ca.certificate)
        #expect(s.m.settings.rootRotation != nil)
        // The swarm wants trust in the old root and certificates of the new key.
        let wanted = s.m.clusterTLSInfo
        #expect(wanted.trustRoot == s.m.ca.certificatePEM)
        #expect(wanted != ClusterCA.tlsInfo(of: oldRoot))
        #expect(wanted.certIssuerPublicKey == ClusterCA.tlsInfo(of: pending.ca.certificate).certIssuerPublicKey)

        // A renewal now: issued by the new key, verifying under the old root through the cross-signed one.
        let key = P256.Signing.PrivateKey()
        let renewed = try s.m.renewCertificate(nodeID: s.ids[1], csr: try ClusterCA.makeRequest(nodeID: s.ids[1], key: key), now: t0)
        #expect(s.m.issuedChain == [pending.crossSigned])
        _ = try CertificateRenewal.check(
            renewed, intermediates: s.m.issuedChain, nodeID: s.ids[1], key: key, caCertificate: oldRoot, clusterID: s.m.ca.clusterID,
            now: t0)
        #expect(throws: ClusterError.self) {
            try CertificateRenewal.check(
                renewed, nodeID: s.ids[1], key: key, caCertificate: oldRoot, clusterID: s.m.ca.clusterID, now: t0)
        }

        // Two of three nodes renewed: not yet.
        try s.m.recordTLSInfo(wanted, nodeID: s.ids[0])
        try s.m.recordTLSInfo(wanted, nodeID: s.ids[1])
        #expect(try !s.m.finishRootRotationIfConverged())
        #expect(try s.m.store.get(ClusterNode.self, id: s.ids[1])?.tlsInfo == wanted)
        // The same report again writes nothing.
        #expect(try !s.m.recordTLSInfo(wanted, nodeID: s.ids[1]))
        try s.m.recordTLSInfo(wanted, nodeID: s.ids[2])
        #expect(try s.m.finishRootRotationIfConverged())

        #expect(s.m.ca.certificate == pending.ca.certificate && s.m.pendingRoot == nil && s.m.settings.rootRotation == nil)
        #expect(s.m.issuedChain.isEmpty)
        #expect(s.m.clusterTLSInfo == ClusterCA.tlsInfo(of: pending.ca.certificate))
        // New tokens carry the new root's digest; the old ones stop working.
        #expect(s.m.settings.tokens.worker != oldTokens.worker && s.m.settings.tokens.manager != oldTokens.manager)
        #expect(try JoinToken.parse(s.m.settings.tokens.worker).caDigest == s.m.ca.digest)
        #expect(throws: JoinTokenError.self) { try s.m.settings.tokens.role(for: oldTokens.worker) }
        #expect(try s.m.settings.tokens.role(for: s.m.settings.tokens.manager) == .manager)
        // Secrets sealed under the old root's key still open.
        #expect(try s.m.secret(secret.id)?.spec.data == Data("hunter2".utf8))

        // A restart comes back with the new root and the same secrets.
        let reopened = try #require(try ClusterManager.open(store: try SQLiteClusterStore(path: s.path)))
        #expect(reopened.ca.certificate == pending.ca.certificate && reopened.pendingRoot == nil)
        #expect(try reopened.secret(secret.id)?.spec.data == Data("hunter2".utf8))
    }

    @Test func aRotationUnderWaySurvivesARestartSealedOnAnAutolockedSwarm() throws {
        let unlock = UnlockKey.generate()
        var s = try Self.swarm("rotate-locked.sqlite", unlockKey: unlock)
        defer { removeTemporary(s.path) }
        try s.m.startRootRotation(now: t0)
        let pending = try #require(s.m.pendingRoot)
        let store = try SQLiteClusterStore(path: s.path)
        let stored = try #require(try ClusterBootstrap.settings(store: store))
        // No key in the open at rest: neither the next root's nor the secrets'.
        #expect(stored.rootRotation?.caKeyPEM == "" && stored.rootRotation?.sealedKey != nil)
        #expect(stored.secretsKey == nil && stored.sealedSecretsKey != nil)
        #expect(throws: ClusterError.self) { _ = try ClusterManager.open(store: store) }
        #expect(throws: ClusterError.self) { _ = try ClusterManager.open(store: store, unlockKey: UnlockKey.generate()) }
        let reopened = try #require(try ClusterManager.open(store: store, unlockKey: unlock))
        #expect(reopened.pendingRoot?.ca.certificate == pending.ca.certificate)
        #expect(reopened.pendingRoot?.crossSigned == pending.crossSigned)
        #expect(reopened.clusterTLSInfo == s.m.clusterTLSInfo)
        // A follower's view from the stored settings alone says the same.
        #expect(try ClusterManager.clusterTLSInfo(stored) == s.m.clusterTLSInfo)
    }

    @Test func aSecondRotationReplacesThePendingRoot() throws {
        var s = try Self.swarm("rotate-twice.sqlite")
        defer { removeTemporary(s.path) }
        try s.m.startRootRotation(now: t0)
        let first = try #require(s.m.pendingRoot).ca.certificate
        let wantedFirst = s.m.clusterTLSInfo
        for id in s.ids.dropLast() { try s.m.recordTLSInfo(wantedFirst, nodeID: id) }
        try s.m.startRootRotation(now: t0)
        #expect(s.m.pendingRoot?.ca.certificate != first)
        // Nodes renewed under the first pending root must renew again.
        try s.m.recordTLSInfo(s.m.clusterTLSInfo, nodeID: s.ids[2])
        #expect(try !s.m.finishRootRotationIfConverged())
        // A node that went away no longer holds it up; the last one to renew ends it.
        try s.m.removeNode(s.ids[1], force: true)
        #expect(try !s.m.finishRootRotationIfConverged())
        try s.m.recordTLSInfo(s.m.clusterTLSInfo, nodeID: s.ids[0])
        #expect(try s.m.finishRootRotationIfConverged())
    }

    @Test func aNodeJoiningDuringTheRotationIsWaitedFor() throws {
        var s = try Self.swarm("rotate-join.sqlite")
        defer { removeTemporary(s.path) }
        try s.m.startRootRotation(now: t0)
        for id in s.ids { try s.m.recordTLSInfo(s.m.clusterTLSInfo, nodeID: id) }
        var g = SplitMix64(seed: 99)
        let late = ObjectID.make(using: &g)
        let joined = try s.m.join(
            token: s.m.settings.tokens.worker, nodeID: late, hostname: "node4", addr: "192.168.61.4",
            csr: try ClusterCA.makeRequest(nodeID: late).csr, now: t0)
        // Issued by the new key, with the cross-signed root after it.
        #expect(joined.certificate.issuer == s.m.issuer.certificate.subject && s.m.issuedChain.count == 1)
        #expect(try !s.m.finishRootRotationIfConverged())
        try s.m.recordTLSInfo(s.m.clusterTLSInfo, nodeID: late)
        #expect(try s.m.finishRootRotationIfConverged())
    }
}
