import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import X509

/// PEM material for one end of the control channel.
public struct ControlIdentity: Sendable {
    /// Leaf first, then the CA.
    public var certificateChainPEM: String
    public var privateKeyPEM: String
    public init(certificateChainPEM: String, privateKeyPEM: String) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
    }
}

/// One framed, TLS-protected connection on port 2377.
public struct ControlConnection: Sendable {
    public let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    /// Runs `body` with the inbound frames and a writer; closes the connection afterwards.
    public func run<R: Sendable>(_ body: (ControlInbound, ControlWriter) async throws -> R) async throws -> R {
        try await channel.executeThenClose { inbound, outbound in
            try await body(ControlInbound(inbound: inbound), ControlWriter(outbound: outbound))
        }
    }
}

public struct ControlInbound: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let inbound: NIOAsyncChannelInboundStream<ByteBuffer>
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        public mutating func next() async throws -> [UInt8]? {
            guard var b = try await base.next() else { return nil }
            return b.readBytes(length: b.readableBytes)
        }
    }
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: inbound.makeAsyncIterator()) }

    /// The next frame decoded as JSON, nil at the end of the stream.
    public func next<T: Decodable>(_ type: T.Type, iterator: inout AsyncIterator) async throws -> T? {
        guard let bytes = try await iterator.next() else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    }
}

public struct ControlWriter: Sendable {
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    public func send(_ bytes: [UInt8]) async throws { try await outbound.write(ByteBuffer(bytes: bytes)) }
    public func send<T: Encodable>(json value: T) async throws {
        try await send(Array(try JSONEncoder().encode(value)))
    }
}

/// The manager's end: mutual TLS under the cluster CA, with certificate-less peers let in too so
/// that a joining node can present its token (the handler decides what such a peer may ask).
/// Every accepted connection is handed to `handler` and closed when it returns. One that never
/// reaches the handler (accepted while the server closes) is finished and closed by its
/// `AcceptedConnection` instead: NIO traps on an async channel whose writer was never finished.
/// Peers it turns away, in the TLS handshake or by the handler throwing `ControlRefused`, are counted
/// in `refusals`.
public final class ControlServer: Sendable {
    public let port: Int
    private let loop: Task<Void, Never>
    private let listener: Channel
    private let counter: RefusalCounter
    public static let frameLimit = 16 << 20

    public typealias Handler = @Sendable (_ peer: ControlPeer, _ inbound: ControlInbound, _ writer: ControlWriter) async throws -> Void

    private init(port: Int, loop: Task<Void, Never>, listener: Channel, counter: RefusalCounter) {
        self.port = port
        self.loop = loop
        self.listener = listener
        self.counter = counter
    }

    /// Peers refused since the server started, by cause (a snapshot).
    public var refusals: ControlRefusals {
        get async { counter.snapshot }
    }

    public static func start(
        host: String, port: Int, identity: ControlIdentity, caPEM: String,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        handler: @escaping Handler
    ) async throws -> ControlServer {
        try await start(host: host, port: port, identity: { identity }, caPEM: { caPEM }, group: group, handler: handler)
    }

    /// `identity` and `caPEM` are asked for at each connection, so a renewed certificate is presented,
    /// and a rotated root trusted, from the next handshake on without closing the listener or the
    /// connections it has (their handshake is done).
    public static func start(
        host: String, port: Int, identity: @escaping @Sendable () -> ControlIdentity, caPEM: @escaping @Sendable () -> String,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        handler: @escaping Handler
    ) async throws -> ControlServer {
        let contexts = ServerContexts(identity: identity, trustRoots: caPEM)
        // Built once up front: a certificate or key that does not load fails the start, not each peer.
        _ = try contexts.current()
        let counter = RefusalCounter()
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: try contexts.current()))
                    try child.pipeline.syncOperations.addHandler(HandshakeRefusalCounter(counter))
                    try child.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limit: frameLimit)))
                    try child.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
                    return AcceptedConnection(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child))
                }
            }
        let listener = server.channel
        // The accept loop runs until the listener closes; then the handlers still running are
        // cancelled. A connection whose initializer ran but which NIO drops instead of delivering
        // (the listener closed while it was hopping to the listener's event loop, or the loop ended
        // on an error with connections buffered) is finished by its AcceptedConnection's deinit.
        let loop = Task<Void, Never> {
            await withDiscardingTaskGroup { group in
                try? await server.executeThenClose { children in
                    for try await accepted in children {
                        guard let child = accepted.claim() else { continue }
                        group.addTask {
                            do {
                                try await child.executeThenClose { inbound, outbound in
                                    try await handler(
                                        ControlPeer(channel: child.channel), ControlInbound(inbound: inbound),
                                        ControlWriter(outbound: outbound))
                                }
                            } catch let refused as ControlRefused {
                                counter.record(refused.cause)
                            } catch {
                                // The peer went away or sent what the handler could not read: its connection only.
                            }
                        }
                    }
                }
                group.cancelAll()
            }
        }
        return ControlServer(port: listener.localAddress?.port ?? 0, loop: loop, listener: listener, counter: counter)
    }

    /// Stops accepting and ends every connection's handler.
    public func close() async {
        try? await listener.close()
        await loop.value
    }
}

/// The listener's TLS context for the identity and trust in force: rebuilt when their PEM changes
/// (a renewal, a root rotation), reused otherwise, since parsing the chain and key per connection is
/// wasted work.
final class ServerContexts: Sendable {
    private let identity: @Sendable () -> ControlIdentity
    private let trustRoots: @Sendable () -> String
    private let cached = Mutex<(chain: String, key: String, roots: String, context: NIOSSLContext)?>(nil)

    init(identity: @escaping @Sendable () -> ControlIdentity, trustRoots: @escaping @Sendable () -> String) {
        self.identity = identity
        self.trustRoots = trustRoots
    }

    func current() throws -> NIOSSLContext {
        let now = identity()
        let roots = trustRoots()
        if let c = cached.withLock({ $0 }), c.chain == now.certificateChainPEM, c.key == now.privateKeyPEM, c.roots == roots {
            return c.context
        }
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(now.certificateChainPEM.utf8)).map {
            NIOSSLCertificateSource.certificate($0)
        }
        let key = try NIOSSLPrivateKey(bytes: Array(now.privateKeyPEM.utf8), format: .pem)
        var cfg = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        cfg.minimumTLSVersion = .tlsv13
        cfg.certificateVerification = .optionalVerification
        cfg.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(roots.utf8)))
        let context = try NIOSSLContext(configuration: cfg)
        cached.withLock { $0 = (now.certificateChainPEM, now.privateKeyPEM, roots, context) }
        return context
    }
}

/// An accepted connection on its way from its event loop's initializer to the accept loop. NIO creates
/// the async channel (and its writer) in the initializer, but can drop the initializer's result before
/// the accept loop sees it; whichever happens, the writer is finished exactly once by its owner: the
/// handler's `executeThenClose` after `claim()`, or this object's deinit when nobody claimed it.
final class AcceptedConnection: Sendable {
    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private let claimed = Atomic<Bool>(false)

    init(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) { self.channel = channel }

    /// The channel for the one caller that runs it; nil after the first call.
    func claim() -> NIOAsyncChannel<ByteBuffer, ByteBuffer>? {
        claimed.exchange(true, ordering: .acquiringAndReleasing) ? nil : channel
    }

    deinit {
        guard !claimed.load(ordering: .acquiring) else { return }
        // `executeThenClose` is the one non-deprecated way to finish the writer; the task holds the
        // channel (and so the writer) until it has, then closes the connection.
        let unclaimed = channel
        Task { try? await unclaimed.executeThenClose { _, _ in } }
    }
}

/// Who is on the other end of a server-side connection.
public struct ControlPeer: Sendable {
    let channel: Channel
    /// The common name of the peer's verified certificate (a node id), nil when it showed none
    /// (a node that is joining). Complete once the first frame has arrived.
    public func commonName() async -> String? {
        let cert = try? await channel.nioSSL_peerCertificate().get()
        return cert.flatMap(ControlConnection.commonName)
    }

    /// Ends the connection from outside its handler (a node removed while its session is open): the
    /// handler's next read ends, so it returns.
    public func close() { channel.close(promise: nil) }
}

extension ControlConnection {
    static func commonName(_ c: NIOSSLCertificate) -> String? {
        guard let der = try? c.toDERBytes(), let x = try? Certificate(derEncoded: der) else { return nil }
        for rdn in x.subject { for a in rdn where a.type == .RDNAttributeType.commonName { return "\(a.value)" } }
        return nil
    }
}

/// A one-question exchange (`ControlClient.ask`) got no answer within its deadline.
public struct ControlDeadlineExceeded: Error, Sendable {
    public let deadline: Duration
}

/// The node's end.
public enum ControlClient {
    /// One question, one answer: connects, sends `message` and returns the first message that comes back
    /// (nil when the peer closed without one). With `deadline`, a peer that accepted and then went silent
    /// (frozen, cut off) fails the call with `ControlDeadlineExceeded` instead of holding it forever.
    public static func ask(
        _ message: ControlMessage, host: String, port: Int, caPEM: String, identity: ControlIdentity? = nil,
        within deadline: Duration? = nil
    ) async throws -> ControlMessage? {
        @Sendable func exchange() async throws -> ControlMessage? {
            let connection = try await connect(host: host, port: port, caPEM: caPEM, identity: identity)
            return try await connection.run { @Sendable inbound, writer in
                try await writer.send(json: message)
                var it = inbound.makeAsyncIterator()
                return try await inbound.next(ControlMessage.self, iterator: &it)
            }
        }
        guard let deadline else { return try await exchange() }
        return try await withThrowingTaskGroup(of: ControlMessage?.self) { g in
            g.addTask { try await exchange() }
            g.addTask {
                try await Task.sleep(for: deadline)
                throw ControlDeadlineExceeded(deadline: deadline)
            }
            defer { g.cancelAll() }
            return try await g.next() ?? nil
        }
    }

    /// A connection to the manager: verified against `caPEM`; with `identity`, the node's own
    /// certificate is shown (mutual TLS), without it the node is joining.
    public static func connect(
        host: String, port: Int, caPEM: String, identity: ControlIdentity? = nil,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> ControlConnection {
        var cfg = TLSConfiguration.makeClientConfiguration()
        cfg.minimumTLSVersion = .tlsv13
        cfg.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        // Managers are found by address; the CA, not a host name, is what is checked.
        cfg.certificateVerification = .noHostnameVerification
        if let identity {
            cfg.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificateChainPEM.utf8)).map { .certificate($0) }
            cfg.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.privateKeyPEM.utf8), format: .pem))
        }
        let context = try NIOSSLContext(configuration: cfg)
        // A manager cut off the network drops SYNs rather than refusing them: give up on it soon, so a node
        // tries the next manager well within the leader's failover time.
        let channel = try await ClientBootstrap(group: group).connectTimeout(.seconds(2)).connect(host: host, port: port) { ch in
            ch.eventLoop.makeCompletedFuture {
                try ch.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limit: ControlServer.frameLimit)))
                try ch.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
            }
        }
        return ControlConnection(channel: channel)
    }

    /// The certificates a manager presents, unverified (DER, leaf first): a joining node checks
    /// the CA's digest against its token before trusting anything the manager says.
    public static func presentedChain(
        host: String, port: Int,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> [[UInt8]] {
        var cfg = TLSConfiguration.makeClientConfiguration()
        cfg.minimumTLSVersion = .tlsv13
        cfg.certificateVerification = .none
        let context = try NIOSSLContext(configuration: cfg)
        let captured = Captured()
        // A manager cut off the network drops SYNs rather than refusing them: give up on it soon, so a node
        // tries the next manager well within the leader's failover time.
        let channel = try await ClientBootstrap(group: group).connectTimeout(.seconds(2)).connect(host: host, port: port) { ch in
            ch.eventLoop.makeCompletedFuture {
                let handler = try NIOSSLClientHandler(context: context, serverHostname: nil) { certs, promise in
                    captured.value.withLock { $0 = certs.compactMap { try? $0.toDERBytes() } }
                    promise.succeed(.certificateVerified)
                }
                try ch.pipeline.syncOperations.addHandler(handler)
                return ch
            }
        }
        // The callback runs during the handshake; wait for it, then hang up.
        for _ in 0..<200 where captured.value.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        try? await channel.close()
        let chain = captured.value.withLock { $0 }
        guard !chain.isEmpty else { throw ControlError.tls("the manager presented no certificate") }
        return chain
    }
}

final class Captured: Sendable {
    let value = Mutex<[[UInt8]]>([])
}
