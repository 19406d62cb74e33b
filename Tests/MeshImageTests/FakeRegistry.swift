import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A tiny HTTP server on 127.0.0.1 that answers registry paths from a table: for what the real
/// registry cannot be made to do (tampered bytes, a bearer-token challenge). Test-only.
final class FakeRegistry: Sendable {
    struct Response: Sendable {
        var status: HTTPResponseStatus = .ok
        var headers: [(String, String)] = []
        var body: [UInt8] = []
    }

    final class State: Sendable {
        let routes: Mutex<[String: Response]>
        let log = Mutex<[String]>([])
        /// When set, /v2/ paths need `Authorization: Bearer <token>`, handed out at /token.
        let token: String?
        /// What /token hands out (the right token unless a test wants a wrong one).
        let issued: String?
        let port: Int
        init(routes: [String: Response], token: String?, issued: String?, port: Int) {
            self.routes = Mutex(routes)
            self.token = token
            self.issued = issued ?? token
            self.port = port
        }
    }

    let state: State
    let channel: Channel
    var address: String { "127.0.0.1:\(state.port)" }
    var requests: [String] { state.log.withLock { $0 } }

    init(routes: [String: Response], token: String? = nil, issued: String? = nil) async throws {
        var lastError: Error?
        for _ in 0..<10 {
            let s = State(routes: routes, token: token, issued: issued, port: Int.random(in: 20000..<32000))
            do {
                channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .childChannelInitializer { ch in
                        ch.eventLoop.makeCompletedFuture {
                            try ch.pipeline.syncOperations.configureHTTPServerPipeline()
                            try ch.pipeline.syncOperations.addHandler(Handler(state: s))
                        }
                    }
                    .bind(host: "127.0.0.1", port: s.port).get()
                state = s
                return
            } catch {
                lastError = error  // the port was taken: another
            }
        }
        throw lastError!
    }

    func stop() async { try? await channel.close() }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: State
        var head: HTTPRequestHead?
        init(state: State) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break
            case .end:
                guard let head else { return }
                let path = String(head.uri.split(separator: "?").first ?? "")
                state.log.withLock { $0.append(path) }
                var r: Response
                if path == "/token" {
                    r = Response(body: Array(#"{"token":"\#(state.issued ?? "")","expires_in":300}"#.utf8))
                } else if let t = state.token, head.headers.first(name: "Authorization") != "Bearer \(t)" {
                    r = Response(
                        status: .unauthorized,
                        headers: [("WWW-Authenticate", #"Bearer realm="http://127.0.0.1:\#(state.port)/token",service="fake""#)],
                        body: Array(#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.utf8))
                } else {
                    r =
                        state.routes.withLock { $0[path] }
                        ?? Response(
                            status: .notFound, body: Array(#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.utf8))
                }
                var headers = HTTPHeaders(r.headers)
                headers.replaceOrAdd(name: "Content-Length", value: String(r.body.count))
                context.write(
                    wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: r.status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: r.body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                self.head = nil
            }
        }
    }
}
