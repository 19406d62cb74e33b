import MeshCluster
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The gateway over plain HTTP/1.1 on swift-nio: a small pool of keep-alive connections for unary calls and
/// one connection per stream. Endpoints are tried in turn; the one that last answered is tried first.
public final class EtcdHTTPTransport: EtcdTransport {
    public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        /// `host:port` or `http://host:port`.
        public init?(_ text: String) {
            var t = Substring(text)
            if t.hasPrefix("http://") { t = t.dropFirst(7) }
            while t.hasSuffix("/") { t = t.dropLast() }
            guard let colon = t.lastIndex(of: ":"), let port = Int(t[t.index(after: colon)...]), (1...65535).contains(port) else {
                return nil
            }
            host = String(t[..<colon])
            self.port = port
            if host.isEmpty { return nil }
        }
        public var description: String { "\(host):\(port)" }
    }

    public let endpoints: [Endpoint]
    /// A unary call that has not been answered by then fails as `unavailable` (and its connection is closed).
    public let timeout: TimeAmount
    private let group: any EventLoopGroup
    private let state = Mutex<PoolState>(PoolState())

    private struct PoolState {
        var idle: [(Channel, Int)] = []
        var preferred = 0
    }

    /// Connections kept open between calls; more run at once if callers need them.
    private static let maxIdle = 4

    public init(endpoints: [Endpoint], timeout: TimeAmount = .seconds(5), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton)
    {
        precondition(!endpoints.isEmpty, "an etcd transport needs an endpoint")
        self.endpoints = endpoints
        self.timeout = timeout
        self.group = group
    }

    deinit {
        for (c, _) in state.withLock({ $0.idle }) { c.close(promise: nil) }
    }

    // MARK: unary calls

    public func call(_ path: String, body: [UInt8]) throws(StoreError) -> [UInt8] {
        do { return try answer(future(path, body: body).wait()) } catch let e as StoreError { throw e } catch {
            throw .unavailable(endpoint: endpoints[0].description, reason: "\(error)")
        }
    }

    public func send(_ path: String, body: [UInt8]) async throws(StoreError) -> [UInt8] {
        do { return try answer(await future(path, body: body).get()) } catch let e as StoreError { throw e } catch {
            throw .unavailable(endpoint: endpoints[0].description, reason: "\(error)")
        }
    }

    private func answer(_ a: UnaryAnswer) throws(StoreError) -> [UInt8] {
        guard a.status == 200 else { throw Self.gatewayError(status: a.status, body: a.body, endpoint: a.endpoint) }
        return a.body
    }

    /// A non-200 answer as the error it reports: gRPC code 14 (no leader, stopping) is `unavailable`.
    static func gatewayError(status: Int, body: [UInt8], endpoint: String) -> StoreError {
        let parsed = try? EtcdJSON.decode(GatewayError.self, body)
        let code = parsed?.grpcCode ?? 0
        let text = parsed?.text ?? String(decoding: body.prefix(300), as: UTF8.self)
        if code == 14 || status == 503 { return .unavailable(endpoint: endpoint, reason: text) }
        return .rejected(httpStatus: status, grpcCode: code, message: text)
    }

    private func future(_ path: String, body: [UInt8]) -> EventLoopFuture<UnaryAnswer> {
        // A kept connection is used on its own event loop: no hop through another loop's thread per call.
        let eventLoop = group.next()
        let reused = state.withLock { s -> (Channel, Int)? in
            while let (c, e) = s.idle.popLast() { if c.isActive { return (c, e) } }
            return nil
        }
        let channel: EventLoopFuture<(Channel, Int)> =
            reused.map { $0.0.eventLoop.makeSucceededFuture($0) } ?? connect(on: eventLoop, pipeline: .unary)
        return channel.flatMap { [self] (channel, index) in
            let promise = channel.eventLoop.makePromise(of: UnaryAnswer.self)
            let timer = channel.eventLoop.scheduleTask(in: timeout) { [self] in
                promise.fail(StoreError.unavailable(endpoint: endpoints[index].description, reason: "no answer within \(timeout)"))
                channel.close(promise: nil)
                avoid(index)
            }
            var buffer = channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            let request = UnaryRequest(
                head: Self.head(path, bodyLength: body.count, host: endpoints[index]), body: buffer, promise: promise,
                endpoint: endpoints[index].description)
            channel.writeAndFlush(request).whenFailure { promise.fail($0) }
            return promise.futureResult.map { [self] answer in
                timer.cancel()
                // A member without a leader (cut off, or its cluster lost quorum) answers 503: another may have one.
                if answer.status == 503 { avoid(index) }
                if answer.keepAlive, channel.isActive {
                    let kept = state.withLock { s in
                        guard s.idle.count < Self.maxIdle else { return false }
                        s.idle.append((channel, index))
                        return true
                    }
                    if !kept { channel.close(promise: nil) }
                } else {
                    channel.close(promise: nil)
                }
                return answer
            }.flatMapErrorThrowing { error in
                timer.cancel()
                channel.close(promise: nil)
                throw error
            }
        }
    }

    /// An endpoint that timed out or has no leader stops being preferred, and its kept connections are
    /// dropped: the next call tries the next member instead of waiting out the same silence again (a
    /// partitioned member would otherwise cost every call the full timeout).
    private func avoid(_ index: Int) {
        let dropped = state.withLock { s -> [Channel] in
            if s.preferred == index { s.preferred = (index + 1) % endpoints.count }
            let (gone, kept) = (s.idle.filter { $0.1 == index }, s.idle.filter { $0.1 != index })
            s.idle = kept
            return gone.map(\.0)
        }
        for c in dropped { c.close(promise: nil) }
    }

    static func head(_ path: String, bodyLength: Int, host: Endpoint, streaming: Bool = false) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "Host", value: host.description)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(bodyLength))
        // A member cut off from its cluster answers streams with "no leader" instead of silence.
        if streaming { head.headers.add(name: "Grpc-Metadata-hasleader", value: "true") }
        return head
    }

    private enum Pipeline { case unary, stream(AsyncThrowingStream<[UInt8], any Error>.Continuation) }

    /// Connects to the preferred endpoint, then to each other in turn; the first that accepts becomes preferred.
    private func connect(on eventLoop: any EventLoop, pipeline: Pipeline) -> EventLoopFuture<(Channel, Int)> {
        let first = state.withLock { $0.preferred }
        @Sendable func attempt(_ n: Int, _ errors: [String]) -> EventLoopFuture<(Channel, Int)> {
            guard n < endpoints.count else {
                return eventLoop.makeFailedFuture(
                    StoreError.unavailable(
                        endpoint: endpoints.map(\.description).joined(separator: ","), reason: errors.joined(separator: "; ")))
            }
            let index = (first + n) % endpoints.count
            let e = endpoints[index]
            return ClientBootstrap(group: eventLoop)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        switch pipeline {
                        case .unary: try channel.pipeline.syncOperations.addHandler(UnaryHandler())
                        case .stream(let continuation):
                            try channel.pipeline.syncOperations.addHandler(StreamHandler(continuation, endpoint: e.description))
                        }
                    }
                }
                .connect(host: e.host, port: e.port)
                .map { [self] channel in
                    state.withLock { $0.preferred = index }
                    return (channel, index)
                }
                .flatMapError { error in attempt(n + 1, errors + ["\(e): \(error)"]) }
        }
        return attempt(0, [])
    }

    // MARK: streams

    public func stream(_ path: String, body: [UInt8]) -> AsyncThrowingStream<[UInt8], any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: [UInt8].self, throwing: (any Error).self)
        let connected = connect(on: group.next(), pipeline: .stream(continuation))
        connected.whenSuccess { [self] (channel, index) in
            continuation.onTermination = { _ in channel.close(promise: nil) }
            var buffer = channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            let head = Self.head(path, bodyLength: body.count, host: endpoints[index], streaming: true)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { continuation.finish(throwing: $0) }
        }
        connected.whenFailure { continuation.finish(throwing: $0) }
        return stream
    }
}

struct UnaryAnswer: Sendable {
    var status: Int
    var body: [UInt8]
    var keepAlive: Bool
    var endpoint: String
}

struct UnaryRequest: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
    var promise: EventLoopPromise<UnaryAnswer>
    var endpoint: String
}

/// One request at a time on a keep-alive connection: writes it, collects the answer, completes its promise.
final class UnaryHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = UnaryRequest
    typealias OutboundOut = HTTPClientRequestPart

    private var pending: UnaryRequest?
    private var status = 0
    private var keepAlive = true
    private var body: [UInt8] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        pending = request
        body = []
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(request.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            keepAlive = head.isKeepAlive
        case .body(let part):
            body.append(contentsOf: part.readableBytesView)
        case .end:
            guard let request = pending else { return }
            pending = nil
            request.promise.succeed(UnaryAnswer(status: status, body: body, keepAlive: keepAlive, endpoint: request.endpoint))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let request = pending {
            pending = nil
            request.promise.fail(StoreError.unavailable(endpoint: request.endpoint, reason: "connection closed before the answer"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let request = pending {
            pending = nil
            request.promise.fail(StoreError.unavailable(endpoint: request.endpoint, reason: "\(error)"))
        }
        context.close(promise: nil)
    }
}

/// A streaming answer cut into its newline-delimited messages; a non-200 answer ends the stream with its error.
final class StreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation
    private let endpoint: String
    private var status = 0
    private var buffered: [UInt8] = []

    init(_ continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation, endpoint: String) {
        self.continuation = continuation
        self.endpoint = endpoint
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let part):
            buffered.append(contentsOf: part.readableBytesView)
            guard status == 200 else { return }
            while let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffered[..<newline])
                buffered.removeSubrange(...newline)
                if line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }) { continuation.yield(line) }
            }
        case .end:
            if status != 200 {
                continuation.finish(throwing: EtcdHTTPTransport.gatewayError(status: status, body: buffered, endpoint: endpoint))
            } else {
                if !buffered.isEmpty { continuation.yield(buffered) }
                continuation.finish()
            }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish(throwing: StoreError.unavailable(endpoint: endpoint, reason: "stream closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish(throwing: StoreError.unavailable(endpoint: endpoint, reason: "\(error)"))
        context.close(promise: nil)
    }
}
