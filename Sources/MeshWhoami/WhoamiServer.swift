import MeshKernel
import NIOCore
import NIOHTTP1
import NIOPosix

/// The HTTP test server of `meshd whoami`, like jwilder/whoami: every request is answered with
/// `I'm <name>`, the address the connection came from and the request as received. Tests and
/// benchmarks read the first line to learn which backend served them and `RemoteAddr` to learn
/// whether anything on the path rewrote the client's address.
public final class WhoamiServer: Sendable {
    public let name: String
    public let port: Int
    private let channel: Channel

    private init(name: String, channel: Channel) {
        self.name = name
        self.channel = channel
        port = channel.localAddress?.port ?? 0
    }

    /// Listens on `address:port` inside `namespace` (the socket is made there and adopted by
    /// SwiftNIO), or in the process's own namespace when nil. Port 0 picks a free port.
    public static func start(
        name: String, namespace: NetworkNamespace? = nil, address: IPAddress = .v4(0), port: UInt16 = 8000,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> WhoamiServer {
        let fd = try NamespaceSockets.inside(namespace) { () throws(KernelError) -> Int32 in
            try NamespaceSockets.bound(Int32(SOCK_STREAM.rawValue), address: address, port: port, reusePort: false)
        }
        let channel: Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.configureHTTPServerPipeline()
                        try ch.pipeline.syncOperations.addHandler(WhoamiHandler(name: name))
                    }
                }
                .withBoundSocket(fd).get()
        } catch {
            close(fd)
            throw error
        }
        return WhoamiServer(name: name, channel: channel)
    }

    public func stop() async {
        try? await channel.close()
    }

    /// Serves until the channel closes (for `meshd whoami`).
    public func wait() async throws {
        try await channel.closeFuture.get()
    }
}

/// One connection: answers every request (keep-alive honoured) with the whoami text.
final class WhoamiHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let name: String
    private var head: HTTPRequestHead?
    private var bodyBytes = 0

    init(name: String) { self.name = name }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyBytes = 0
        case .body(let b):
            bodyBytes += b.readableBytes
        case .end:
            guard let h = head else { return }
            head = nil
            respond(context, h)
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ h: HTTPRequestHead) {
        var text = "I'm \(name)\n"
        if let remote = context.remoteAddress, let ip = remote.ipAddress, let port = remote.port {
            text += "RemoteAddr: \(remote.protocol == .inet6 ? "[\(ip)]" : ip):\(port)\n"
        }
        if let local = context.localAddress, let ip = local.ipAddress { text += "IP: \(ip)\n" }
        text += "\(h.method) \(h.uri) \(h.version)\n"
        for (k, v) in h.headers { text += "\(k): \(v)\n" }
        if bodyBytes > 0 { text += "(body: \(bodyBytes) bytes)\n" }

        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(text.utf8.count))
        let keepAlive = h.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        // The channel, not the context: the completion may run as a Sendable closure.
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }
}
