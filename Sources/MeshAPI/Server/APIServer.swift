import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The daemon's local API: HTTP/1.1 on a unix socket, one task per connection, requests on a
/// connection answered in order. Bodies above `maxBodyBytes` get 413 and the connection closes;
/// malformed HTTP gets 400 from NIO's error handler; nothing a client sends stops the server.
public final class APIServer: Sendable {
    public let socketPath: String
    private let listener: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    private let serving: Task<Void, Never>

    private init(
        socketPath: String, listener: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>,
        serving: Task<Void, Never>
    ) {
        self.socketPath = socketPath
        self.listener = listener
        self.serving = serving
    }

    /// Binds `socketPath` (a stale socket file is replaced), mode 0660 and group `socketGroup` (nil: the
    /// process's) before it listens, and serves `router`.
    public static func start(
        socketPath: String, router: APIRouter, socketGroup: gid_t? = nil,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> APIServer {
        let fd = try APISocket.bound(at: socketPath, group: socketGroup)
        // NIO owns the descriptor from here (and calls listen, with the backlog of 128 NIO uses).
        let listener = try await ServerBootstrap(group: group)
            // A client half-closes a hijacked exec at stdin EOF and still reads the output.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .bind(fd) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try HTTPHandlers.add(to: channel)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        let serving = serve(listener, router)
        return APIServer(socketPath: socketPath, listener: listener, serving: serving)
    }

    /// The API on a TCP address, mutual TLS only (dockerd's `--tlsverify`): a client must present a
    /// certificate the CA in `caPEM` signed, or the handshake fails before a byte of HTTP is read.
    /// There is no plaintext TCP mode: whoever reaches that port would be root on the node.
    public static func start(
        host: String, port: Int, tls: TLSFiles, router: APIRouter, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> APIServer {
        let context = try tls.serverContext()
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try HTTPHandlers.add(to: channel)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        let serving = serve(listener, router)
        return APIServer(socketPath: "", listener: listener, serving: serving)
    }

    /// One task per connection until the listener closes.
    private static func serve(
        _ listener: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>, _ router: APIRouter
    ) -> Task<Void, Never> {
        Task {
            await withDiscardingTaskGroup { tasks in
                do {
                    try await listener.executeThenClose { inbound in
                        for try await connection in inbound {
                            tasks.addTask { await APIConnection(channel: connection, router: router).serve() }
                        }
                    }
                } catch {
                    // The listener closed (stop()) or failed; connections in flight finish on their own.
                }
            }
        }
    }

    /// Stops accepting, lets open connections finish and removes the socket file.
    public func stop() async {
        try? await listener.channel.close()
        serving.cancel()
        _ = await serving.value
        if !socketPath.isEmpty { unlink(socketPath) }
    }
}

/// dockerd's `--tlscacert`, `--tlscert` and `--tlskey`: PEM files read when the listener starts.
public struct TLSFiles: Sendable, Equatable {
    public var caCertificate: String
    public var certificate: String
    public var key: String
    public init(caCertificate: String, certificate: String, key: String) {
        self.caCertificate = caCertificate
        self.certificate = certificate
        self.key = key
    }

    /// TLS 1.2 or later; the client's chain must verify under the CA (its name is not checked:
    /// clients are people and tools, not hosts).
    func serverContext() throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificate)
        guard !chain.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
        let roots = try NIOSSLCertificate.fromPEMFile(caCertificate)
        guard !roots.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        config.minimumTLSVersion = .tlsv12
        config.trustRoots = .certificates(roots)
        config.certificateVerification = .noHostnameVerification
        return try NIOSSLContext(configuration: config)
    }
}

/// One client connection.
struct APIConnection {
    typealias Handler = @Sendable (_ head: HTTPRequestHead, _ body: [UInt8]) async -> APIResponse
    let channel: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    let limit: Int
    let handle: Handler

    init(channel: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, router: APIRouter) {
        self.init(channel: channel, limit: router.configuration.maxBodyBytes) { h, body in
            await router.handle(
                method: h.method, uri: h.uri, contentType: h.headers.first(name: "Content-Type"), body: body,
                registryAuth: h.headers.first(name: "X-Registry-Auth"))
        }
    }

    init(channel: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, limit: Int, handle: @escaping Handler) {
        self.channel = channel
        self.limit = limit
        self.handle = handle
    }

    func serve() async {
        do {
            try await channel.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body: [UInt8] = []
                for try await part in inbound {
                    switch part {
                    case .head(let h):
                        head = h
                        body = []
                        if let length = h.headers.first(name: "Content-Length").flatMap(Int.init), length > limit {
                            try await write(Self.tooLarge(limit), head: h, keepAlive: false, outbound)
                            return
                        }
                    case .body(let buffer):
                        guard body.count + buffer.readableBytes <= limit else {
                            try await write(Self.tooLarge(limit), head: head, keepAlive: false, outbound)
                            return
                        }
                        body.append(contentsOf: buffer.readableBytesView)
                    case .end:
                        guard let h = head else { continue }
                        head = nil
                        let response = await handle(h, body)
                        body = []
                        if case .hijack(let contentType, let handler) = response.body {
                            let upgrade = !h.headers["Upgrade"].isEmpty
                            try await hijack(response, contentType: contentType, upgrade: upgrade, handler)
                            return
                        }
                        try await write(response, head: h, keepAlive: h.isKeepAlive, outbound)
                        if !h.isKeepAlive { return }
                    }
                }
            }
        } catch {
            // The client went away or sent bytes NIO could not parse (it answered 400 then).
        }
    }

    static func tooLarge(_ limit: Int) -> APIResponse {
        var r = APIResponse.error(.tooLarge("request body is larger than the limit of \(limit) bytes"))
        r.headers.insert(("Api-Version", APIVersion.current.description), at: 0)
        return r
    }

    func write(
        _ response: APIResponse, head: HTTPRequestHead?, keepAlive: Bool,
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var headers = HTTPHeaders(response.headers)
        let version = head?.version ?? .http1_1
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        switch response.body {
        case .bytes(let bytes):
            headers.replaceOrAdd(name: "Content-Length", value: String(bytes.count))
            try await outbound.write(.head(HTTPResponseHead(version: version, status: response.status, headers: headers)))
            // HEAD answers carry the length of the GET body but no body.
            if !bytes.isEmpty, head?.method != .HEAD {
                try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: bytes))))
            }
            try await outbound.write(.end(nil))
        case .stream(let contentType, let chunks):
            headers.replaceOrAdd(name: "Content-Type", value: contentType)
            headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
            try await outbound.write(.head(HTTPResponseHead(version: version, status: response.status, headers: headers)))
            // A follower that hangs up must not keep the stream (and the backend's producer) alive
            // until the next line: the channel closing cancels the pump, which ends the stream.
            let pump = Task {
                for await chunk in chunks {
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: chunk))))
                }
            }
            channel.channel.closeFuture.whenComplete { _ in pump.cancel() }
            try await withTaskCancellationHandler {
                try await pump.value
            } onCancel: {
                pump.cancel()
            }
            try await outbound.write(.end(nil))
        case .hijack:
            // Only `serve` takes a connection over; an error answer never is one.
            throw HijackError.notHere
        }
    }

    enum HijackError: Error { case notHere }

    /// Takes the connection over: the HTTP handlers go (bytes the decoder held are passed on as
    /// they are), the status line and headers are written raw, then `handler` has the raw bytes
    /// both ways until it returns; `serve` closes the connection after.
    func hijack(
        _ response: APIResponse, contentType: String, upgrade: Bool, _ handler: @Sendable (HijackedConnection) async -> Void
    ) async throws {
        let ch = channel.channel
        let (input, continuation) = AsyncStream<[UInt8]>.makeStream()
        // Fulfilled when the client has closed its side (or the connection is gone).
        let ended = ch.eventLoop.makePromise(of: Void.self)
        try await ch.eventLoop.submit {
            try ch.pipeline.syncOperations.handler(type: HijackGate.self).takeOver(continuation, ended: ended)
        }.get()
        for name in HTTPHandlers.removedOnHijack { try await ch.pipeline.removeHandler(name: name).get() }
        var head =
            upgrade
            ? "HTTP/1.1 101 UPGRADED\r\nContent-Type: \(contentType)\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            : "HTTP/1.1 200 OK\r\nContent-Type: \(contentType)\r\n"
        for (name, value) in response.headers where name.lowercased() != "content-type" { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        try await ch.writeAndFlush(ByteBuffer(string: head)).get()
        await handler(HijackedConnection(input: input) { bytes in try await ch.writeAndFlush(ByteBuffer(bytes: bytes)).get() })
        // Closed gracefully: our side first (the client reads the end of the output, then EOF),
        // then we keep reading until the client closes (at most 3 s). Closing outright while the
        // client still writes (a terminal's input after the process ended) makes the kernel reset
        // the connection, and the client loses what it had not read yet (the CLI then fails a
        // TTY exec with "connection reset by peer" instead of its exit code).
        try? await ch.close(mode: .output).get()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await ended.futureResult.get() }
            group.addTask { try? await Task.sleep(for: .seconds(3)) }
            await group.next()
            group.cancelAll()
        }
    }
}

/// The HTTP/1.1 server handlers, named so a hijack can take them out. Not NIO's
/// `configureHTTPServerPipeline`: its decoder drops the bytes after an upgrade, and NIO's upgrade
/// handler refuses a request with a body, which `POST /exec/{id}/start` has.
enum HTTPHandlers {
    static let encoder = "http-encoder"
    static let decoder = "http-decoder"
    static let validator = "http-header-validator"
    static let errors = "http-errors"
    /// Inbound-typed handlers first, so no raw bytes ever reach one expecting HTTP parts.
    static let removedOnHijack = [errors, validator, encoder, decoder]

    static func add(to channel: Channel) throws {
        let ops = channel.pipeline.syncOperations
        try ops.addHandler(HTTPResponseEncoder(), name: encoder)
        try ops.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)), name: decoder)
        try ops.addHandler(NIOHTTPResponseHeadersValidator(), name: validator)
        // Requests on a connection are already answered one at a time by APIConnection; NIO's pipelining
        // assistance would assert when its error handler answers a request we already answered early (413).
        try ops.addHandler(HTTPServerProtocolErrorHandler(), name: errors)
        try ops.addHandler(HijackGate())
    }
}

/// Passes everything through until a hijack; then the client's raw bytes go to the handler's
/// input stream, which ends when the client half-closes or goes away.
final class HijackGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var input: AsyncStream<[UInt8]>.Continuation?
    private var ended: EventLoopPromise<Void>?

    func takeOver(_ continuation: AsyncStream<[UInt8]>.Continuation, ended: EventLoopPromise<Void>) {
        input = continuation
        self.ended = ended
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let input else { return context.fireChannelRead(data) }
        let buffer = Self.unwrapInboundIn(data)
        input.yield(Array(buffer.readableBytesView))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let input, case ChannelEvent.inputClosed = event {
            input.finish()
            ended?.succeed()
            ended = nil
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        input?.finish()
        ended?.succeed()
        ended = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ended?.succeed()
        ended = nil
    }
}
