import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing
@testable import MeshCluster

/// Real TLS handshakes on loopback between credentials the cluster CA issued.
@Suite struct MutualTLSTests {
    /// Answers the first message with the peer's node ID and role, read from its certificate.
    final class IdentityReply: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let credentials: NodeCredentials
        init(_ credentials: NodeCredentials) { self.credentials = credentials }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let peer = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
            let answer: String
            if let peer, let id = try? credentials.peerIdentity(peer) {
                answer = "\(id.nodeID) \(id.role.rawValue)"
            } else {
                answer = "anonymous"
            }
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
        }
    }

    final class Collect: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<String>
        init(_ promise: EventLoopPromise<String>) { self.promise = promise }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            promise.succeed(String(buffer: unwrapInboundIn(data)))
        }
        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(error)
            context.close(promise: nil)
        }
        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(ChannelError.eof)
        }
    }

    /// Serves with `server`, connects with `client`, returns the server's answer (or throws if TLS failed).
    func exchange(server: NodeCredentials, client: NodeCredentials) throws -> String {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let serverContext = try NIOSSLContext(configuration: try server.serverConfiguration())
        let clientContext = try NIOSSLContext(configuration: try client.clientConfiguration())
        let listener = try ServerBootstrap(group: group)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverContext))
                    try ch.pipeline.syncOperations.addHandler(IdentityReply(server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? listener.close().wait() }
        let promise = group.next().makePromise(of: String.self)
        let channel = try ClientBootstrap(group: group)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: clientContext, serverHostname: nil))
                    try ch.pipeline.syncOperations.addHandler(Collect(promise))
                }
            }
            .connect(to: listener.localAddress!).wait()
        defer { try? channel.close().wait() }
        channel.writeAndFlush(ByteBuffer(string: "hello"), promise: nil)
        return try promise.futureResult.wait()
    }

    @Test func nodesOfOneClusterTalkAndKnowEachOther() throws {
        let ca = try ClusterCA.create(clusterID: "c1")
        var g = SplitMix64(seed: 21)
        let managerID = ObjectID.make(using: &g), workerID = ObjectID.make(using: &g)
        let manager = try NodeCredentials.issue(by: ca, nodeID: managerID, role: .manager)
        let worker = try NodeCredentials.issue(by: ca, nodeID: workerID, role: .worker)
        #expect(try exchange(server: manager, client: worker) == "\(workerID) worker")
        #expect(try exchange(server: worker, client: manager) == "\(managerID) manager")
        // Saved and reloaded as PEM, the credentials still work.
        let reloaded = try NodeCredentials(
            certificatePEM: worker.certificatePEM, keyPEM: worker.keyPEM,
            caCertificatePEM: worker.caCertificatePEM, clusterID: "c1")
        #expect(try exchange(server: manager, client: reloaded) == "\(workerID) worker")
    }

    @Test func aNodeOfAnotherClusterIsRefused() throws {
        let ca = try ClusterCA.create(clusterID: "c1")
        let stranger = try ClusterCA.create(clusterID: "c1")
        var g = SplitMix64(seed: 22)
        let manager = try NodeCredentials.issue(by: ca, nodeID: ObjectID.make(using: &g), role: .manager)
        let intruder = try NodeCredentials.issue(by: stranger, nodeID: ObjectID.make(using: &g), role: .manager)
        #expect(throws: (any Error).self) { try exchange(server: manager, client: intruder) }
        #expect(throws: (any Error).self) { try exchange(server: intruder, client: manager) }
    }
}
