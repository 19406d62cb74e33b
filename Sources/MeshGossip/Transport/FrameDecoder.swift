import NIOCore

/// TCP framing: `[u32 length][frame]`. The length is checked against the limit before any
/// byte of the frame is buffered for it, so a hostile length cannot make us allocate.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxFrame: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maxFrame else { throw WireError.tooLarge(field: "stream frame", size: Int(length), limit: maxFrame) }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

extension ByteBuffer {
    init(frame bytes: [UInt8]) {
        self.init()
        reserveCapacity(4 + bytes.count)
        writeInteger(UInt32(bytes.count))
        writeBytes(bytes)
    }
}
