import Foundation
import MeshCluster
import MeshControl
import Synchronization
import Testing
import X509

/// Issue 17, `swarm ca --rotate`: real TLS handshakes on 127.0.0.1 through the control channel, with
/// the cluster CA's own certificates. A certificate the new root issued verifies under the old root
/// only with the cross-signed new root after it; under the new root without it. Once nodes trust
/// the new root alone, a certificate of the old root no longer gets in.
@Suite struct RootRotationTLSTests {
    struct Hello: Codable, Equatable { var text: String }

    /// Node IDs as the CA takes them (25 base-36 characters), by a short name.
    static let id: [String: String] = Dictionary(uniqueKeysWithValues: ["m1", "m2", "n1", "n2", "n3", "n4"].map { ($0, ObjectID.make()) })

    struct Roots {
        let old: ClusterCA
        let new: ClusterCA
        let cross: Certificate
        init() throws {
            old = try ClusterCA.create(clusterID: "c1")
            new = try ClusterCA.create(clusterID: "c1")
            cross = try old.crossSign(new)
        }

        /// A node's identity from `ca`, with `intermediates` after its certificate.
        func identity(_ nodeID: String, by ca: ClusterCA, role: NodeRole = .worker, intermediates: [Certificate] = [])
            throws -> ControlIdentity
        {
            let (key, csr) = try ClusterCA.makeRequest(nodeID: nodeID)
            let leaf = try ca.issue(csr: csr, nodeID: nodeID, role: role)
            return ControlIdentity(certificateChainPEM: PEMChain.pem([leaf] + intermediates), privateKeyPEM: key.pemRepresentation)
        }
    }

    static func server(_ identity: ControlIdentity, trusting rootPEM: String) async throws -> ControlServer {
        try await ControlServer.start(host: "127.0.0.1", port: 0, identity: identity, caPEM: rootPEM) { peer, inbound, writer in
            var it = inbound.makeAsyncIterator()
            while let hello = try await inbound.next(Hello.self, iterator: &it) {
                try await writer.send(json: Hello(text: "\(await peer.commonName() ?? "nobody"): \(hello.text)"))
            }
        }
    }

    /// The server's answer to `text` from a client trusting `rootPEM` with `identity`; nil when TLS refused.
    static func ask(_ server: ControlServer, trusting rootPEM: String, as identity: ControlIdentity) async -> String? {
        do {
            let connection = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: rootPEM, identity: identity)
            return try await connection.run { inbound, writer in
                try await writer.send(json: Hello(text: "hi"))
                var it = inbound.makeAsyncIterator()
                return try await inbound.next(Hello.self, iterator: &it)?.text
            }
        } catch {
            return nil
        }
    }

    @Test func theNewRootsCertificatesVerifyUnderTheOldRootThroughTheCrossSignedOne() async throws {
        let r = try Roots()
        // A manager renewed under the new root, still trusting the old one (the rotation is under way).
        let manager = try r.identity(Self.id["m1"]!, by: r.new, role: .manager, intermediates: [r.cross])
        let server = try await Self.server(
            ControlIdentity(
                certificateChainPEM: manager.certificateChainPEM + "\n" + r.old.certificatePEM, privateKeyPEM: manager.privateKeyPEM),
            trusting: r.old.certificatePEM)
        // A node renewed already, and one not yet: both get in, both check the manager under the old root.
        #expect(
            await Self.ask(server, trusting: r.old.certificatePEM, as: try r.identity(Self.id["n1"]!, by: r.new, intermediates: [r.cross]))
                == "\(Self.id["n1"]!): hi")
        #expect(
            await Self.ask(server, trusting: r.old.certificatePEM, as: try r.identity(Self.id["n2"]!, by: r.old)) == "\(Self.id["n2"]!): hi"
        )
        // A node that trusts the new root already checks the manager's certificate directly.
        #expect(
            await Self.ask(server, trusting: r.new.certificatePEM, as: try r.identity(Self.id["n3"]!, by: r.new, intermediates: [r.cross]))
                == "\(Self.id["n3"]!): hi")
        // Without the cross-signed root after it, the new root's certificate does not verify under the old.
        #expect(await Self.ask(server, trusting: r.old.certificatePEM, as: try r.identity(Self.id["n4"]!, by: r.new)) == nil)
        await server.close()
    }

    @Test func afterTheRotationTheOldRootsCertificatesAreRefused() async throws {
        let r = try Roots()
        let manager = try r.identity(Self.id["m1"]!, by: r.new, role: .manager, intermediates: [r.cross])
        let server = try await Self.server(manager, trusting: r.new.certificatePEM)
        #expect(
            await Self.ask(server, trusting: r.new.certificatePEM, as: try r.identity(Self.id["n1"]!, by: r.new, intermediates: [r.cross]))
                == "\(Self.id["n1"]!): hi")
        #expect(
            await Self.ask(server, trusting: r.new.certificatePEM, as: try r.identity(Self.id["n2"]!, by: r.new)) == "\(Self.id["n2"]!): hi"
        )
        // A certificate of the old root, and a client that still trusts only the old root with a
        // certificate of it: neither gets through.
        #expect(await Self.ask(server, trusting: r.new.certificatePEM, as: try r.identity(Self.id["n3"]!, by: r.old)) == nil)
        let plainManager = try r.identity(Self.id["m2"]!, by: r.new, role: .manager)
        let second = try await Self.server(plainManager, trusting: r.new.certificatePEM)
        #expect(await Self.ask(second, trusting: r.old.certificatePEM, as: try r.identity(Self.id["n4"]!, by: r.new)) == nil)
        await second.close()
        await server.close()
    }

    @Test func theTrustRootSwapsUnderARunningListener() async throws {
        let r = try Roots()
        let trust = TrustBox(r.old.certificatePEM)
        let manager = try r.identity(Self.id["m1"]!, by: r.new, role: .manager, intermediates: [r.cross])
        let server = try await ControlServer.start(
            host: "127.0.0.1", port: 0, identity: { manager }, caPEM: { trust.pem }
        ) { peer, inbound, writer in
            var it = inbound.makeAsyncIterator()
            while let hello = try await inbound.next(Hello.self, iterator: &it) {
                try await writer.send(json: Hello(text: "\(await peer.commonName() ?? "nobody"): \(hello.text)"))
            }
        }
        let oldNode = try r.identity(Self.id["n1"]!, by: r.old)
        #expect(await Self.ask(server, trusting: r.old.certificatePEM, as: oldNode) == "\(Self.id["n1"]!): hi")
        trust.pem = r.new.certificatePEM
        #expect(await Self.ask(server, trusting: r.old.certificatePEM, as: oldNode) == nil)
        await server.close()
    }

    /// Checked without TLS: the node's own check of a renewed certificate, and of its peers.
    @Test func verifyFollowsTheCrossSignedRootAndNothingElse() throws {
        let r = try Roots()
        let n1 = Self.id["n1"]!
        let (key, csr) = try ClusterCA.makeRequest(nodeID: n1)
        let leaf = try r.new.issue(csr: csr, nodeID: n1, role: .worker)
        #expect(
            try CertificateRenewal.check(
                leaf, intermediates: [r.cross], nodeID: n1, key: key, caCertificate: r.old.certificate, clusterID: "c1"
            ).nodeID == n1)
        #expect(throws: ClusterError.self) {
            try CertificateRenewal.check(leaf, nodeID: n1, key: key, caCertificate: r.old.certificate, clusterID: "c1")
        }
        // A cross-signed root from another root is no way in.
        let stranger = try ClusterCA.create(clusterID: "c1")
        let foreignCross = try stranger.crossSign(r.new)
        #expect(throws: ClusterError.self) {
            try CertificateRenewal.check(
                leaf, intermediates: [foreignCross], nodeID: n1, key: key, caCertificate: r.old.certificate, clusterID: "c1")
        }
    }
}

final class TrustBox: Sendable {
    private let value: Mutex<String>
    init(_ pem: String) { value = Mutex(pem) }
    var pem: String {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
