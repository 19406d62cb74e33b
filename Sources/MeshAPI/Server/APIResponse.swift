import Foundation
import NIOHTTP1

/// An answer: status, extra headers and a body that is either complete or streamed (logs).
public struct APIResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        /// Sent chunked; each element is written as it arrives.
        case stream(contentType: String, AsyncStream<[UInt8]>)
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
