import Foundation
import Testing
import X509
@testable import MeshCluster

@Suite struct SecurityTests {
    @Test func nodeCertificatesFromCSRVerify() throws {
        let ca = try ClusterCA.create(clusterID: "cluster1", now: t0)
        var g = SplitMix64(seed: 3)
        let nodeID = ObjectID.make(using: &g)
        let (_, csr) = try ClusterCA.makeRequest(nodeID: "whatever-the-node-claims")
        let cert = try ca.issue(csr: csr, nodeID: nodeID, role: .manager, now: t0)
        #expect(
            try ca.verify(cert, now: t0.addingTimeInterval(86400)) == NodeIdentity(nodeID: nodeID, role: .manager, clusterID: "cluster1"))
        let worker = try ca.issue(csr: csr, nodeID: nodeID, role: .worker, now: t0)
        #expect(try ca.verify(worker, now: t0).role == .worker)
        // Expired, and issued by another CA.
        #expect(throws: ClusterError.self) { try ca.verify(cert, now: t0.addingTimeInterval(91 * 86400)) }
        let other = try ClusterCA.create(clusterID: "cluster2", now: t0)
        let foreign = try other.issue(csr: csr, nodeID: nodeID, role: .manager, now: t0)
        #expect { try ca.verify(foreign, now: t0) } throws: {
            ($0 as? ClusterError)?.description.contains("not issued by this cluster's CA") == true
        }
        // A certificate with a forged issuer name but the wrong signature.
        let impostor = try ClusterCA.create(clusterID: "cluster1", now: t0)
        let forged = try impostor.issue(csr: csr, nodeID: nodeID, role: .manager, now: t0)
        #expect(throws: ClusterError.self) { try ca.verify(forged, now: t0) }
        #expect(throws: ClusterError.self) { try ca.issue(csr: csr, nodeID: "not-an-id", role: .worker, now: t0) }
    }

    @Test func caSurvivesPEMRoundTrip() throws {
        let ca = try ClusterCA.create(clusterID: "c", now: t0)
        let loaded = try ClusterCA(certificatePEM: ca.certificatePEM, keyPEM: ca.keyPEM)
        #expect(loaded.clusterID == "c" && loaded.digest == ca.digest)
        let (_, csr) = try ClusterCA.makeRequest(nodeID: "n")
        let cert = try loaded.issue(csr: csr, nodeID: String(repeating: "a", count: 25), role: .worker, now: t0)
        #expect(try ca.verify(cert, now: t0).nodeID == String(repeating: "a", count: 25))
        let other = try ClusterCA.create(clusterID: "d", now: t0)
        #expect(throws: ClusterError.self) { try ClusterCA(certificatePEM: ca.certificatePEM, keyPEM: other.keyPEM) }
        #expect(throws: ClusterError.self) { try ClusterCA(certificatePEM: "garbage", keyPEM: ca.keyPEM) }
    }

    @Test func tokenFormat() throws {
        let ca = try ClusterCA.create(clusterID: "c", now: t0)
        let tokens = JoinTokens(ca: ca)
        for text in [tokens.worker, tokens.manager] {
            let parts = text.split(separator: "-")
            #expect(parts.count == 4 && parts[0] == "SWMTKN" && parts[1] == "1" && parts[2].count == 50 && parts[3].count == 25)
            #expect(try JoinToken.parse(text).caDigest == ca.digest)
        }
        #expect(tokens.worker != tokens.manager)
        for bad in [
            "", "SWMTKN-1-abc", "SWMTKN-2-\(ca.digest)-\(String(repeating: "a", count: 25))",
            "XXX-1-\(ca.digest)-\(String(repeating: "a", count: 25))",
            "SWMTKN-1-\(ca.digest)-\(String(repeating: "A", count: 25))",
        ] {
            #expect(throws: JoinTokenError.self, "\(bad)") { try JoinToken.parse(bad) }
        }
    }

    @Test func wrongCADigestIsRefusedByTheJoiningSide() throws {
        let ca = try ClusterCA.create(clusterID: "c", now: t0)
        let impostor = try ClusterCA.create(clusterID: "c", now: t0)
        let token = try JoinToken.parse(JoinTokens(ca: ca).worker)
        try token.checkCA(certificateDER: ca.certificateDER)
        do {
            try token.checkCA(certificateDER: impostor.certificateDER)
            Issue.record("an impostor CA was accepted")
        } catch {
            #expect(error == .caDigestMismatch(token: ca.digest, manager: impostor.digest))
            #expect(error.description.hasPrefix("the manager's CA does not match the join token"))
        }
    }

    @Test func wrongSecretIsRefusedByTheManagerAndRotationRetiresTokens() throws {
        let ca = try ClusterCA.create(clusterID: "c", now: t0)
        var tokens = JoinTokens(ca: ca)
        #expect(try tokens.role(for: tokens.worker) == .worker)
        #expect(try tokens.role(for: tokens.manager) == .manager)
        let oldWorker = tokens.worker
        tokens.rotate(.worker, ca: ca)
        #expect(tokens.worker != oldWorker)
        #expect(throws: JoinTokenError.invalidSecret) { try tokens.role(for: oldWorker) }
        #expect(JoinTokenError.invalidSecret.description.hasPrefix("A valid join token is necessary to join this cluster"))
        #expect(try tokens.role(for: tokens.worker) == .worker)
        let foreign = JoinTokens(ca: try ClusterCA.create(clusterID: "x", now: t0))
        #expect(throws: JoinTokenError.self) { try tokens.role(for: foreign.worker) }
        #expect(throws: JoinTokenError.self) { try tokens.role(for: "garbage") }
    }

    @Test func tlsInfoIsBase64OfDER() throws {
        let ca = try ClusterCA.create(clusterID: "c", now: t0)
        let info = ca.tlsInfo
        let subject = try #require(Data(base64Encoded: info.certIssuerSubject))
        let key = try #require(Data(base64Encoded: info.certIssuerPublicKey))
        // DER SEQUENCEs, and the key is the CA certificate's own SubjectPublicKeyInfo.
        #expect(subject.first == 0x30 && key.first == 0x30)
        // The SPKI ends with the raw EC point.
        #expect(Array(key).suffix(65) == Array(ca.certificate.publicKey.subjectPublicKeyInfoBytes))
        #expect(info.trustRoot.hasPrefix("-----BEGIN CERTIFICATE-----"))
    }

    @Test func gossipKeys() throws {
        let a = GossipKey.generate(), b = GossipKey.generate()
        #expect(a.bytes.count == 32 && a != b)
        #expect(Data(base64Encoded: a.base64) == Data(a.bytes))
        #expect(throws: ClusterError.self) { try GossipKey(bytes: [1, 2, 3]) }
    }
}
