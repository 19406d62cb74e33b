import MeshKernel
import NIOCore

/// Splits a TCP stream into DNS messages by their 2-byte length prefix (RFC 1035 4.2.2).
struct DNSTCPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(NIOAny(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

/// Answers queries on one TCP connection, in full (no size limit but the protocol's), and closes
/// connections that stay idle.
final class DNSTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let shared: DNSServingContext
    private var rng = SplitMix64()

    init(_ shared: DNSServingContext) { self.shared = shared }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).readableBytesView)
        let start = NIODeadline.now()
        let metrics = shared.metrics
        metrics.received(.tcp)
        switch shared.processor.process(bytes, transport: .tcp, store: shared.store, networks: shared.scope.networks, using: &rng) {
        case .drop:
            metrics.drop()
            context.close(promise: nil)
        case .reply(let out):
            metrics.replied(out, source: .local, since: start)
            context.writeAndFlush(wrapOutboundOut(Self.frame(out, context.channel.allocator)), promise: nil)
        case .forward(let query):
            let channel = context.channel
            let processor = shared.processor
            metrics.forwarded()
            shared.forwarder.forward(query, on: context.eventLoop).whenSuccess { reply in
                let out =
                    reply.map { processor.relay($0, to: query, transport: .tcp) }
                    ?? processor.serverFailure(for: query, transport: .tcp)
                metrics.replied(out, source: .upstream, since: start, upstreamFailed: reply == nil)
                channel.writeAndFlush(Self.frame(out, channel.allocator), promise: nil)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    static func frame(_ out: [UInt8], _ allocator: ByteBufferAllocator) -> ByteBuffer {
        var buf = allocator.buffer(capacity: out.count + 2)
        buf.writeInteger(UInt16(out.count))
        buf.writeBytes(out)
        return buf
    }
}
