import NIOCore

/// Frames on the control channel: a 4-byte big-endian length, then that many bytes. A length
/// over the limit closes the connection (a peer cannot make the manager buffer without bound).
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let limit: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= limit else { throw ControlError.frameTooLarge(Int(length), limit: limit) }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

struct FrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = ByteBuffer
    func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        out.writeInteger(UInt32(data.readableBytes))
        out.writeImmutableBuffer(data)
    }
}

public enum ControlError: Error, Sendable, CustomStringConvertible {
    case frameTooLarge(Int, limit: Int)
    case tls(String)
    case closed

    public var description: String {
        switch self {
        case .frameTooLarge(let n, let limit): return "control frame of \(n) bytes is over the \(limit)-byte limit"
        case .tls(let why): return "TLS: \(why)"
        case .closed: return "the control connection closed"
        }
    }
}
