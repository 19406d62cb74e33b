import MeshKernel
import NIOCore

/// Answers datagrams on 127.0.0.11:53 in one namespace. Replies are written as they are made and
/// flushed once per read burst, so one wakeup answers many queries.
final class DNSUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let shared: DNSServingContext
    private var rng = SplitMix64()

    init(_ shared: DNSServingContext) { self.shared = shared }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        let remote = envelope.remoteAddress
        let start = NIODeadline.now()
        let metrics = shared.metrics
        metrics.received(.udp)
        switch shared.processor.process(bytes, transport: .udp, store: shared.store, networks: shared.scope.networks, using: &rng) {
        case .drop:
            metrics.drop()
            return
        case .reply(let out):
            metrics.replied(out, source: .local, since: start)
            context.write(wrapOutboundOut(self.envelope(out, remote, context.channel.allocator)), promise: nil)
        case .forward(let query):
            let channel = context.channel
            let processor = shared.processor
            metrics.forwarded()
            shared.forwarder.forward(query, on: context.eventLoop).whenSuccess { reply in
                let out =
                    reply.map { processor.relay($0, to: query, transport: .udp) }
                    ?? processor.serverFailure(for: query, transport: .udp)
                metrics.replied(out, source: .upstream, since: start, upstreamFailed: reply == nil)
                var buf = channel.allocator.buffer(capacity: out.count)
                buf.writeBytes(out)
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: buf), promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    /// A failed send to one client (ICMP unreachable and the like) must not close the socket.
    func errorCaught(context: ChannelHandlerContext, error: Error) {}

    private func envelope(_ out: [UInt8], _ remote: SocketAddress, _ allocator: ByteBufferAllocator) -> AddressedEnvelope<ByteBuffer> {
        var buf = allocator.buffer(capacity: out.count)
        buf.writeBytes(out)
        return AddressedEnvelope(remoteAddress: remote, data: buf)
    }
}
