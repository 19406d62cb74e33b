import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// What a request to the daemon can end in.
public enum EngineClientError: Error, CustomStringConvertible, Equatable {
    /// The daemon answered with an error status and `{"message": …}`.
    case daemon(status: Int, message: String)
    case cannotConnect(String)
    case badAnswer(String)
    case badHost(String)

    public var description: String {
        switch self {
        case .daemon(_, let m): "Error response from daemon: \(m)"
        case .cannotConnect(let m): m
        case .badAnswer(let m): "unexpected answer from the daemon: \(m)"
        case .badHost(let h): "invalid host \(h): only unix://PATH is supported"
        }
    }

    public var status: Int? {
        if case .daemon(let s, _) = self { return s }
        return nil
    }
}

/// An HTTP/1.1 client of the daemon's unix socket: one connection per request, `/v1.50` paths.
public struct EngineClient: Sendable {
    public let socketPath: String
    let group: EventLoopGroup

    /// `host`: `unix:///path` or a bare path.
    public init(host: String, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws(EngineClientError) {
        if host.hasPrefix("unix://") {
            socketPath = String(host.dropFirst("unix://".count))
        } else if host.hasPrefix("/") {
            socketPath = host
        } else {
            throw .badHost(host)
        }
        guard !socketPath.isEmpty, socketPath.utf8.count < 108 else { throw .badHost(host) }
        self.group = group
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: [UInt8]
    }

    /// Sends one request; `onBody`, when given, receives the body as it arrives instead of it
    /// being collected (log streams).
    public func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil,
        onBody: (@Sendable ([UInt8]) -> Void)? = nil
    ) async throws -> Response {
        var uri = "/v\(APIVersion.current)\(path)"
        if !query.isEmpty {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-_.~")
            uri +=
                "?" + query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
        }
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: group)
                .connect(unixDomainSocketPath: socketPath) { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: ch)
                    }
                }
        } catch {
            throw EngineClientError.cannotConnect(
                "Cannot connect to the meshd daemon at unix://\(socketPath). Is the daemon running? (\(error))")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "api.moby.localhost")
        headers.add(name: "User-Agent", value: "meshctl/0.1.0")
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.count))
        }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(.head(head))
            if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            try await outbound.write(.end(nil))
            var response = Response(status: 0, headers: HTTPHeaders(), body: [])
            for try await part in inbound {
                switch part {
                case .head(let h):
                    response.status = Int(h.status.code)
                    response.headers = h.headers
                case .body(let b):
                    if let onBody, response.status < 400 {
                        onBody(Array(b.readableBytesView))
                    } else {
                        guard response.body.count + b.readableBytes <= 64 << 20 else {
                            throw EngineClientError.badAnswer("answer too large")
                        }
                        response.body += b.readableBytesView
                    }
                case .end:
                    return response
                }
            }
            throw EngineClientError.badAnswer("connection closed before the answer ended")
        }
    }

    /// Sends and throws `.daemon` for statuses ≥ 400.
    public func call(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil) async throws -> Response {
        let r = try await send(method, path, query: query, body: body)
        guard r.status < 400 else { throw Self.error(from: r) }
        return r
    }

    public static func error(from r: Response) -> EngineClientError {
        struct Message: Decodable { let message: String }
        if let m = try? JSONDecoder().decode(Message.self, from: Data(r.body)) { return .daemon(status: r.status, message: m.message) }
        let text = String(decoding: r.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return .daemon(status: r.status, message: text.isEmpty ? "request returned \(r.status)" : text)
    }

    public func get<T: Decodable>(_ type: T.Type, _ path: String, query: [(String, String)] = []) async throws -> T {
        try Self.decode(T.self, try await call(.GET, path, query: query).body)
    }

    @discardableResult
    public func post<B: Encodable>(_ path: String, query: [(String, String)] = [], body: B) async throws -> Response {
        try await call(.POST, path, query: query, body: Array(try EngineJSON.encoder().encode(body)))
    }

    public func post<B: Encodable, T: Decodable>(_ type: T.Type, _ path: String, query: [(String, String)] = [], body: B) async throws -> T
    {
        try Self.decode(T.self, try await post(path, query: query, body: body).body)
    }

    public static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
        do {
            return try EngineJSON.decoder().decode(T.self, from: Data(bytes))
        } catch {
            throw EngineClientError.badAnswer("\(error)")
        }
    }

    /// `filters` in the CLI's form: `{"key":{"value":true}}`.
    public static func filters(_ f: [String: [String]]) -> String {
        let object = f.mapValues { Dictionary(uniqueKeysWithValues: $0.map { ($0, true) }) }
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
