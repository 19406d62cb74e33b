import Foundation
import NIOHTTP1

/// An answer: status, extra headers and a body that is either complete or streamed (logs).
public struct APIResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        /// Sent chunked; each element is written as it arrives.
        case stream(contentType: String, AsyncStream<[UInt8]>)
        /// The connection is taken over once the request is read (`POST /exec/{id}/start`): the
        /// server answers `101 UPGRADED` when the client asked to upgrade (else `200 OK`), with
        /// this content type and no framing, then hands the raw connection to `handler` and
        /// closes it when `handler` returns.
        case hijack(contentType: String, @Sendable (HijackedConnection) async -> Void)
    }

    public var status: HTTPResponseStatus
    public var headers: [(String, String)]
    public var body: Body

    public init(status: HTTPResponseStatus, headers: [(String, String)] = [], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// JSON with `Content-Type: application/json` and nothing after it: the CLI shows the raw body
    /// of an error when a charset follows.
    public static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) -> APIResponse {
        do {
            var data = try EngineJSON.encoder().encode(value)
            data.append(0x0A)
            return APIResponse(status: status, headers: [("Content-Type", "application/json")], body: .bytes(Array(data)))
        } catch {
            return .error(.internalError("cannot encode the answer: \(error)"))
        }
    }

    public static func error(_ e: EngineError) -> APIResponse {
        struct Message: Encodable { let message: String }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let data = (try? encoder.encode(Message(message: e.message))) ?? Data("{\"message\":\"error\"}".utf8)
        return APIResponse(
            status: HTTPResponseStatus(statusCode: e.status), headers: [("Content-Type", "application/json")],
            body: .bytes(Array(data) + [0x0A]))
    }

    public var statusCode: Int { Int(status.code) }

    public static func empty(_ status: HTTPResponseStatus = .ok) -> APIResponse { APIResponse(status: status) }
}

/// A connection taken over by a handler: the client's bytes until it half-closes (stdin EOF) or
/// goes away, and a way to send it bytes (throws once it is gone).
public struct HijackedConnection: Sendable {
    public var input: AsyncStream<[UInt8]>
    public var write: @Sendable ([UInt8]) async throws -> Void
    public init(input: AsyncStream<[UInt8]>, write: @escaping @Sendable ([UInt8]) async throws -> Void) {
        self.input = input
        self.write = write
    }
}

/// Docker's stdcopy framing (`application/vnd.docker.multiplexed-stream`): an 8-byte header
/// `[stream, 0, 0, 0, length as 32-bit big endian]`, then the payload.
public enum MultiplexedStream {
    public static let contentType = "application/vnd.docker.multiplexed-stream"
    public static let rawContentType = "application/vnd.docker.raw-stream"

    /// One frame; a payload above 4 GiB - 1 is cut into several frames.
    public static func frame(_ stream: OutputChunk.Stream, _ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var rest = payload[...]
        repeat {
            let part = rest.prefix(Int(UInt32.max))
            rest = rest.dropFirst(part.count)
            let n = UInt32(part.count)
            out += [stream.rawValue, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
            out += part
        } while !rest.isEmpty
        return out
    }

    /// Splits framed bytes back into chunks; the bytes of an unfinished last frame are `rest`.
    public static func decode(_ bytes: [UInt8]) -> (chunks: [OutputChunk], rest: [UInt8]) {
        var chunks: [OutputChunk] = []
        var at = 0
        while bytes.count - at >= 8 {
            let n = Int(bytes[at + 4]) << 24 | Int(bytes[at + 5]) << 16 | Int(bytes[at + 6]) << 8 | Int(bytes[at + 7])
            guard bytes.count - at - 8 >= n else { break }
            let stream = OutputChunk.Stream(rawValue: bytes[at]) ?? .stdout
            chunks.append(OutputChunk(stream, Array(bytes[(at + 8)..<(at + 8 + n)])))
            at += 8 + n
        }
        return (chunks, Array(bytes[at...]))
    }
}
