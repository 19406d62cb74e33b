import MeshKernel
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// Sends what is not a cluster name to the node's upstream servers, in order: the next one after
/// a timeout, SERVFAIL or REFUSED; over TCP when the UDP answer is truncated; nil (SERVFAIL to the
/// client) when none answers. Its sockets live in the node namespace, so loopback upstreams such
/// as a local caching resolver work even though the asker is in a task namespace.
public final class DNSForwarder: Sendable {
    public struct Configuration: Sendable {
        public var upstreams: [DNSUpstream]
        /// How long to wait for one server before trying the next.
        public var timeout: TimeAmount
        /// Queries waiting on upstreams at once. High: a cap of 100 (Docker's old one) turned a slow
        /// upstream into failures for every container on the node.
        public var maxInFlight: Int
        /// Where the upstream sockets are made; nil for this process's namespace.
        public var namespace: NetworkNamespace?
        /// UDP sockets per address family; each query leaves from a random one, so a spoofed
        /// reply must guess the source port as well as the 16-bit ID.
        public var sockets: Int

        public init(
            upstreams: [DNSUpstream], timeout: TimeAmount = .seconds(2), maxInFlight: Int = 8192,
            namespace: NetworkNamespace? = nil, sockets: Int = 8
        ) {
            self.upstreams = Array(upstreams.prefix(ResolvConf.maxNameservers))
            self.timeout = timeout
            self.maxInFlight = maxInFlight
            self.namespace = namespace
            self.sockets = max(1, sockets)
        }
    }

    struct Pending {
        var promise: EventLoopPromise<DNSMessage?>
        var upstream: SocketAddress
        var question: DNSQuestion?
        /// Which of the family's sockets sent it: the reply must come back to that one.
        var socket: Int
    }

    public let configuration: Configuration
    private let channels: [Bool: [Channel]]  // by isIPv4
    private let pending = Mutex<[UInt16: Pending]>([:])
    private let inFlight = Atomic<Int>(0)

    private init(configuration: Configuration, channels: [Bool: [Channel]]) {
        self.configuration = configuration
        self.channels = channels
    }

    /// Opens one UDP socket per address family the upstreams use.
    public static func start(_ configuration: Configuration, group: EventLoopGroup) async throws -> DNSForwarder {
        let box = ForwarderBox()
        var channels: [Bool: [Channel]] = [:]
        for v4 in Set(configuration.upstreams.map(\.address.isIPv4)) {
            let any: IPAddress = v4 ? .v4(0) : .v6(0, 0)
            let count = configuration.sockets
            let fds = try NamespaceSockets.inside(configuration.namespace) { () throws(KernelError) -> [Int32] in
                var made: [Int32] = []
                do throws(KernelError) {
                    for _ in 0..<count {
                        made.append(try NamespaceSockets.bound(Int32(SOCK_DGRAM.rawValue), address: any, port: 0, reusePort: false))
                    }
                } catch {
                    made.forEach { Glibc.close($0) }
                    throw error
                }
                return made
            }
            for (i, fd) in fds.enumerated() {
                channels[v4, default: []].append(
                    try await DatagramBootstrap(group: group)
                        .channelInitializer { ch in
                            ch.eventLoop.makeCompletedFuture {
                                try ch.pipeline.syncOperations.addHandler(UpstreamReplyHandler(box, socket: i))
                            }
                        }
                        .withBoundSocket(fd).get())
            }
        }
        let f = DNSForwarder(configuration: configuration, channels: channels)
        box.forwarder.withLock { $0 = f }
        return f
    }

    public func close() async {
        for ch in channels.values.joined() { try? await ch.close() }
        let left = pending.withLock { p in
            defer { p.removeAll() }
            return p.values
        }
        for p in left { p.promise.succeed(nil) }
    }

    /// The upstream reply, or nil when every upstream failed, timed out, or the cap was reached.
    public func forward(_ query: DNSMessage, on loop: EventLoop) -> EventLoopFuture<DNSMessage?> {
        guard inFlight.add(1, ordering: .relaxed).newValue <= configuration.maxInFlight else {
            inFlight.subtract(1, ordering: .relaxed)
            return loop.makeSucceededFuture(nil)
        }
        let result = attempt(query, 0, loop)
        result.whenComplete { _ in self.inFlight.subtract(1, ordering: .relaxed) }
        return result
    }

    private func attempt(_ query: DNSMessage, _ i: Int, _ loop: EventLoop) -> EventLoopFuture<DNSMessage?> {
        guard i < configuration.upstreams.count else { return loop.makeSucceededFuture(nil) }
        let upstream = configuration.upstreams[i]
        let next: @Sendable () -> EventLoopFuture<DNSMessage?> = { self.attempt(query, i + 1, loop) }
        return udp(query, upstream, loop).flatMap { reply -> EventLoopFuture<DNSMessage?> in
            guard let reply else { return next() }
            if reply.header.truncated {
                return self.tcp(query, upstream, loop).flatMap { r in
                    guard let r, !Self.failed(r) else { return next() }
                    return loop.makeSucceededFuture(r)
                }
            }
            return Self.failed(reply) ? next() : loop.makeSucceededFuture(reply)
        }
    }

    static func failed(_ m: DNSMessage) -> Bool { m.rcode == .servFail || m.rcode == .refused }

    private func udp(_ query: DNSMessage, _ upstream: DNSUpstream, _ loop: EventLoop) -> EventLoopFuture<DNSMessage?> {
        guard let family = channels[upstream.address.isIPv4], !family.isEmpty, let remote = try? upstream.socketAddress else {
            return loop.makeSucceededFuture(nil)
        }
        let socket = Int.random(in: 0..<family.count)
        let channel = family[socket]
        let promise = loop.makePromise(of: DNSMessage?.self)
        // A fresh random ID per attempt: replies are matched on ID, source and question.
        let id: UInt16? = pending.withLock { p in
            for _ in 0..<16 {
                let candidate = UInt16.random(in: .min ... .max)
                if p[candidate] == nil {
                    p[candidate] = Pending(promise: promise, upstream: remote, question: query.questions.first, socket: socket)
                    return candidate
                }
            }
            return nil
        }
        guard let id else { return loop.makeSucceededFuture(nil) }
        var q = query
        q.header.id = id
        // Ask for answers big enough that most never need the TCP retry.
        if q.edns == nil { q.edns = DNSEDNS(payloadSize: 1232) }
        let bytes = q.encode()
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: buffer), promise: nil)
        let timer = loop.scheduleTask(in: configuration.timeout) {
            if let p = self.pending.withLock({ $0.removeValue(forKey: id) }) { p.promise.succeed(nil) }
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    private func tcp(_ query: DNSMessage, _ upstream: DNSUpstream, _ loop: EventLoop) -> EventLoopFuture<DNSMessage?> {
        let promise = loop.makePromise(of: DNSMessage?.self)
        var q = query
        q.header.id = UInt16.random(in: .min ... .max)
        let id = q.header.id
        DNSTCPClient.exchange(
            q.encode(), with: upstream, namespace: configuration.namespace,
            timeout: .nanoseconds(configuration.timeout.nanoseconds)
        ) { bytes in
            guard let bytes, let m = try? DNSMessage(decoding: bytes), m.header.id == id, m.header.isResponse,
                m.questions.first == query.questions.first
            else {
                promise.succeed(nil)
                return
            }
            promise.succeed(m)
        }
        return promise.futureResult
    }

    /// A datagram from an upstream: completes the matching query if ID, source and question agree.
    func received(_ bytes: [UInt8], from source: SocketAddress, socket: Int) {
        guard bytes.count >= DNSHeader.size else { return }
        let id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        guard let m = try? DNSMessage(decoding: bytes), m.header.isResponse else { return }
        let match = pending.withLock { p -> Pending? in
            guard let e = p[id], e.upstream == source, e.socket == socket, e.question == m.questions.first else { return nil }
            return p.removeValue(forKey: id)
        }
        match?.promise.succeed(m)
    }
}

/// Lets the channel handler reach the forwarder, which exists only after its channels do.
final class ForwarderBox: Sendable {
    let forwarder = Mutex<DNSForwarder?>(nil)
}

final class UpstreamReplyHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let box: ForwarderBox
    let socket: Int
    init(_ box: ForwarderBox, socket: Int) {
        self.box = box
        self.socket = socket
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        box.forwarder.withLock { $0 }?.received(bytes, from: envelope.remoteAddress, socket: socket)
    }
}
