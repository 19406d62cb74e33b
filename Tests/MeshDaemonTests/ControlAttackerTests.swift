import Foundation
import MeshAPI
import MeshCluster
import MeshControl
@testable import MeshDaemon
import MeshKernel
import MeshTestbed
import Synchronization
import Testing

/// An attacker on 2377: a real `ManagerPlane` (its store, its CA, real TLS through swift-nio-ssl) on 127.0.0.1,
/// and clients without a certificate, with one from another CA, with another node's, and with the certificate of
/// a node that was removed. Each is refused and counted by cause; an honest node alongside is served, so a
/// refusal is the manager's doing and not a broken setup.
@Suite struct ControlAttackerTests {
    struct Manager {
        let plane: ManagerPlane
        let caPEM: String
        let workerToken: String
        let port: Int
    }

    /// A manager listening on an ephemeral loopback port, stopped when `body` ends (also when it throws).
    static func withManager(_ body: (TestCluster, Manager) async throws -> Void) async throws {
        try await TestCluster.with { c in
            let (credentials, token) = try await c.controller.read { m throws(ClusterError) in
                (try NodeCredentials.issue(by: m.ca, nodeID: c.managerID, role: .manager), m.settings.tokens.token(for: .worker))
            }
            let record = NodeRecord(
                nodeID: c.managerID, hostname: "manager1", role: .manager, clusterID: credentials.clusterID,
                advertiseAddr: "127.0.0.1", listenAddr: "127.0.0.1:0", dataPathPort: 4789, managers: [],
                certificatePEM: credentials.certificatePEM, keyPEM: credentials.keyPEM, caPEM: credentials.caCertificatePEM,
                gossipKeys: [])
            let plane = try await ManagerPlane.start(controller: c.controller, record: record, certificate: NodeCertificate(record: record))
            do {
                let manager = Manager(plane: plane, caPEM: credentials.caCertificatePEM, workerToken: token, port: await plane.listenPort)
                try await body(c, manager)
            } catch {
                await plane.stop()
                throw error
            }
            await plane.stop()
        }
    }

    struct Refused: Error { let message: String }

    /// Joins through the listener as `swarm join` does: no certificate, a token and a CSR.
    static func join(_ m: Manager, token: String, hostname: String) async throws -> (JoinResponse, ControlIdentity?) {
        let id = ObjectID.make()
        let (key, csr) = try ClusterCA.makeRequest(nodeID: id)
        let request = JoinRequest(
            token: token, csrPEM: try csr.serializeAsPEM().pemString, hostname: hostname, advertiseAddress: IPAddress("127.0.0.2")!)
        let connection = try await ControlClient.connect(host: "127.0.0.1", port: m.port, caPEM: m.caPEM)
        let response = try await connection.run { inbound, writer in
            try await writer.send(json: ControlMessage.joinRequest(request))
            var it = inbound.makeAsyncIterator()
            guard case .joinResponse(let r)? = try await inbound.next(ControlMessage.self, iterator: &it) else {
                throw Refused(message: "no join response")
            }
            return r
        }
        let identity = response.certificatePEM.map { ControlIdentity(certificateChainPEM: $0, privateKeyPEM: key.pemRepresentation) }
        return (response, identity)
    }

    /// A node session's messages as they arrive, and whether the manager has ended it.
    final class Session: Sendable {
        private let state = Mutex<(messages: [ControlMessage], ended: Bool)>(([], false))
        func add(_ m: ControlMessage) { state.withLock { $0.messages.append(m) } }
        func end() { state.withLock { $0.ended = true } }
        var messages: [ControlMessage] { state.withLock { $0.messages } }
        var ended: Bool { state.withLock { $0.ended } }
    }

    /// Says hello as `nodeID` over a connection with `identity` (nil: no certificate) and records what comes back
    /// until the manager hangs up or the handshake fails.
    static func hello(_ m: Manager, as nodeID: String, identity: ControlIdentity?) -> (Session, Task<Void, Never>) {
        let session = Session()
        let task = Task {
            defer { session.end() }
            guard let connection = try? await ControlClient.connect(host: "127.0.0.1", port: m.port, caPEM: m.caPEM, identity: identity)
            else { return }
            try? await connection.run { inbound, writer in
                try await writer.send(json: ControlMessage.hello(nodeID: nodeID))
                var it = inbound.makeAsyncIterator()
                while let message = try await inbound.next(ControlMessage.self, iterator: &it) { session.add(message) }
            }
        }
        return (session, task)
    }

    static func eventually(_ seconds: Double = 10, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }

    static func isError(_ m: ControlMessage?, containing text: String) -> Bool {
        if case .error(let e)? = m { return e.contains(text) }
        return false
    }

    static func isAssignment(_ m: ControlMessage?) -> Bool {
        if case .assignment? = m { return true }
        return false
    }

    @Test func peersWithoutAValidMembershipAreRefusedAndCounted() async throws {
        try await Self.withManager { c, m in
            // The honest node: joins, and its session gets its assignment.
            let (joined, identity) = try await Self.join(m, token: m.workerToken, hostname: "worker1")
            let nodeID = try #require(joined.nodeID), worker = try #require(identity)
            let (honest, honestTask) = Self.hello(m, as: nodeID, identity: worker)
            #expect(await Self.eventually { Self.isAssignment(honest.messages.first) }, "\(honest.messages)")
            let none = await m.plane.refusals
            #expect(none.total == 0, "\(none)")

            // No certificate, claiming to be the node.
            let (anonymous, _) = Self.hello(m, as: nodeID, identity: nil)
            #expect(await Self.eventually { anonymous.ended })
            #expect(Self.isError(anonymous.messages.first, containing: "certificate"), "\(anonymous.messages)")
            #expect(anonymous.messages.count == 1)

            // A certificate from another CA with the node's ID: the handshake fails.
            let (foreign, _) = Self.hello(m, as: nodeID, identity: try TestPKI(name: "swarm-ca").issue(nodeID))
            #expect(await Self.eventually { foreign.ended })
            #expect(foreign.messages.isEmpty, "\(foreign.messages)")

            // The node's own certificate, claiming to be the manager.
            let (impostor, _) = Self.hello(m, as: c.managerID, identity: worker)
            #expect(await Self.eventually { impostor.ended })
            #expect(Self.isError(impostor.messages.first, containing: "certificate"), "\(impostor.messages)")

            // A join with a token that is not the cluster's.
            let (badJoin, badIdentity) = try await Self.join(m, token: m.workerToken.dropLast(4) + "aaaa", hostname: "intruder")
            #expect(badJoin.error != nil && badIdentity == nil, "\(badJoin)")

            let counted = await Self.eventually {
                let r = await m.plane.refusals
                return r[.noCertificate] == 1 && r[.untrustedCertificate] == 1 && r[.identityMismatch] == 1 && r[.joinRefused] == 1
            }
            let refusals = await m.plane.refusals
            #expect(counted && refusals.total == 4, "\(refusals)")
            // None of it disturbed the honest session.
            #expect(!honest.ended)
            honestTask.cancel()
        }
    }

    @Test func aRemovedNodesCertificateStopsWorking() async throws {
        try await Self.withManager { c, m in
            let (joined, identity) = try await Self.join(m, token: m.workerToken, hostname: "worker1")
            let nodeID = try #require(joined.nodeID), worker = try #require(identity)
            let (before, _) = Self.hello(m, as: nodeID, identity: worker)
            #expect(await Self.eventually { Self.isAssignment(before.messages.first) }, "\(before.messages)")

            // `node rm --force` while the node is connected: the manager ends that session itself.
            try await c.controller.removeNode(nodeID, force: true)
            #expect(await Self.eventually { before.ended }, "the removed node's open session was kept")

            // The certificate is still valid under the CA, but the node is gone from the store.
            let (after, _) = Self.hello(m, as: nodeID, identity: worker)
            #expect(await Self.eventually { after.ended })
            #expect(Self.isError(after.messages.first, containing: "removed"), "\(after.messages)")
            #expect(!after.messages.contains(where: Self.isAssignment))
            let counted = await Self.eventually { await m.plane.refusals[.unknownNode] == 1 }
            let refusals = await m.plane.refusals
            #expect(counted && refusals.total == 1, "\(refusals)")

            // Another node joined afterwards is served as usual.
            let (other, otherIdentity) = try await Self.join(m, token: m.workerToken, hostname: "worker2")
            let otherID = try #require(other.nodeID), otherCertificate = try #require(otherIdentity)
            let (fresh, freshTask) = Self.hello(m, as: otherID, identity: otherCertificate)
            #expect(await Self.eventually { Self.isAssignment(fresh.messages.first) }, "\(fresh.messages)")
            freshTask.cancel()
        }
    }
}
