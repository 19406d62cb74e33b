import Crypto
import Foundation
import Testing
import X509
@testable import MeshCluster

/// Issue 17: node certificates renewed before they expire. When a node asks (the window), what a
/// manager issues (the store's role, the swarm's expiry, only for members and only for the asker),
/// and what a node accepts back.
@Suite struct CertificateRenewalTests {
    static func cert(validity: TimeInterval, now: Date = t0) throws -> (ClusterCA, Certificate) {
        let ca = try ClusterCA.create(clusterID: "c", now: now)
        let (_, csr) = try ClusterCA.makeRequest(nodeID: "n")
        return (ca, try ca.issue(csr: csr, nodeID: String(repeating: "a", count: 25), role: .worker, now: now, validity: validity))
    }

    @Test func theRenewalPointIsHalfToFourFifthsOfTheLifeFromIssueNotFromTheBackdatedStart() throws {
        let (_, cert) = try Self.cert(validity: 20)
        // notValidBefore is an hour early; counted from it, every point of a 20 s life would be past.
        #expect(cert.notValidBefore == t0.addingTimeInterval(-3600))
        #expect(CertificateRenewal.issued(cert) == t0)
        #expect(CertificateRenewal.renewalTime(of: cert, fraction: 0.5) == t0.addingTimeInterval(10))
        #expect(CertificateRenewal.renewalTime(of: cert, fraction: 0.8) == t0.addingTimeInterval(16))
        // Clamped to the window.
        #expect(CertificateRenewal.renewalTime(of: cert, fraction: 0) == t0.addingTimeInterval(10))
        #expect(CertificateRenewal.renewalTime(of: cert, fraction: 1) == t0.addingTimeInterval(16))
        let (_, ninety) = try Self.cert(validity: ClusterCA.defaultValidity)
        let at = CertificateRenewal.renewalTime(of: ninety, fraction: 0.65)
        #expect(abs(at.timeIntervalSince(t0) - 0.65 * 90 * 86400) < 1)
    }

    @Test func retriesBackOffToThirtySecondsAndNeverPastTheExpiry() {
        let expiry = t0.addingTimeInterval(3600)
        #expect((1...8).map { CertificateRenewal.retryDelay(failures: $0, expiry: expiry, now: t0) } == [1, 2, 4, 8, 16, 30, 30, 30])
        // The last try comes a second before the certificate stops working.
        #expect(CertificateRenewal.retryDelay(failures: 6, expiry: t0.addingTimeInterval(5), now: t0) == 4)
        #expect(CertificateRenewal.retryDelay(failures: 6, expiry: t0, now: t0) == 0)
    }

    @Test func aManagerRenewsAMembersCertificateWithItsRoleNowAndTheSwarmsExpiry() throws {
        let path = temporaryPath("renew.sqlite")
        defer { removeTemporary(path) }
        var g = SplitMix64(seed: 9)
        let ids = (0..<3).map { _ in ObjectID.make(using: &g) }
        var m = try ClusterManager.initialize(
            store: try SQLiteClusterStore(path: path), nodeID: ids[0], hostname: "node1", advertiseAddr: "192.168.60.1", now: t0)
        let key = P256.Signing.PrivateKey()
        let csr = try ClusterCA.makeRequest(nodeID: ids[1], key: key)
        let joined = try m.join(
            token: m.settings.tokens.worker, nodeID: ids[1], hostname: "node2", addr: "192.168.60.2", csr: csr,
            certificateValidity: 600, now: t0)
        #expect(joined.certificate.notValidAfter == t0.addingTimeInterval(600))

        // The same key, a new certificate, a later expiry.
        let later = t0.addingTimeInterval(400)
        let renewed = try m.renewCertificate(
            nodeID: ids[1], csr: try ClusterCA.makeRequest(nodeID: ids[1], key: key), validity: 600, now: later)
        #expect(renewed.notValidAfter == later.addingTimeInterval(600))
        #expect(renewed.serialNumber != joined.certificate.serialNumber)
        let identity = try CertificateRenewal.check(
            renewed, nodeID: ids[1], key: key, caCertificate: m.ca.certificate, clusterID: m.settings.clusterID, now: later)
        #expect(identity.role == .worker)

        // The role is the store's now, not the old certificate's.
        var node = try #require(try m.store.get(ClusterNode.self, id: ids[1]))
        node.role = .manager
        _ = try m.store.update(node)
        let promoted = try m.renewCertificate(nodeID: ids[1], csr: csr, now: later)
        #expect(try m.ca.verify(promoted, now: later).role == .manager)

        // Only for the node the request names, and only for members.
        #expect { try m.renewCertificate(nodeID: ids[0], csr: csr, now: later) } throws: {
            ($0 as? ClusterError)?.description.contains("names \(ids[1]), not \(ids[0])") == true
        }
        #expect { try m.renewCertificate(nodeID: ids[2], csr: try ClusterCA.makeRequest(nodeID: ids[2]).csr, now: later) } throws: {
            ($0 as? ClusterError)?.description == "node \(ids[2]) not found"
        }
    }

    @Test func aNodeTakesBackOnlyItsOwnCertificateForItsKeyFromItsCA() throws {
        let ca = try ClusterCA.create(clusterID: "c", now: t0)
        let id = String(repeating: "b", count: 25)
        let key = P256.Signing.PrivateKey()
        let good = try ca.issue(csr: try ClusterCA.makeRequest(nodeID: id, key: key), nodeID: id, role: .worker, now: t0)
        #expect(
            try CertificateRenewal.check(good, nodeID: id, key: key, caCertificate: ca.certificate, clusterID: "c", now: t0).nodeID == id)

        let otherKey = try ca.issue(csr: try ClusterCA.makeRequest(nodeID: id).csr, nodeID: id, role: .worker, now: t0)
        #expect {
            try CertificateRenewal.check(otherKey, nodeID: id, key: key, caCertificate: ca.certificate, clusterID: "c", now: t0)
        } throws: {
            ($0 as? ClusterError)?.description.contains("not for this node's key") == true
        }
        let otherNode = try ca.issue(
            csr: try ClusterCA.makeRequest(nodeID: id, key: key), nodeID: String(repeating: "c", count: 25), role: .worker, now: t0)
        #expect {
            try CertificateRenewal.check(otherNode, nodeID: id, key: key, caCertificate: ca.certificate, clusterID: "c", now: t0)
        } throws: {
            ($0 as? ClusterError)?.description.contains("names node ccccc") == true
        }
        let foreign = try ClusterCA.create(clusterID: "c", now: t0)
        let forged = try foreign.issue(csr: try ClusterCA.makeRequest(nodeID: id, key: key), nodeID: id, role: .manager, now: t0)
        #expect(throws: ClusterError.self) {
            try CertificateRenewal.check(forged, nodeID: id, key: key, caCertificate: ca.certificate, clusterID: "c", now: t0)
        }
        let expired = try ca.issue(csr: try ClusterCA.makeRequest(nodeID: id, key: key), nodeID: id, role: .worker, now: t0, validity: 10)
        #expect(throws: ClusterError.self) {
            try CertificateRenewal.check(expired, nodeID: id, key: key, caCertificate: ca.certificate, clusterID: "c", now: t0 + 11)
        }
    }
}
