import NIOCore
import NIOHTTP1
import NIOPosix

/// A small read-only HTTP/1.1 server on a TCP address, for what the daemon shows besides its API
/// (the Prometheus metrics, the cluster page): the API server's connection handling (keep-alive,
/// streamed bodies that end when the client goes away) with a handler in place of the router.
/// Only GET and HEAD are served; a request body is refused above 64 KiB.
public final class HTTPEndpoint: Sendable {
    public typealias Handler = @Sendable (_ method: HTTPMethod, _ uri: String, _ headers: HTTPHeaders) async -> APIResponse
    public let host: String
    public let port: Int
    private let listener: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    private let serving: Task<Void, Never>

    private init(
        host: String, port: Int, listener: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>,
        serving: Task<Void, Never>
    ) {
        self.host = host
        self.port = port
        self.listener = listener
        self.serving = serving
    }

    /// Binds `host:port` (port 0: any free port, see `port`) and serves `handler`.
    public static func start(
        host: String, port: Int, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, handler: @escaping Handler
    ) async throws -> HTTPEndpoint {
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: false, withErrorHandling: true)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        let bound = listener.channel.localAddress?.port ?? port
        let serving = Task {
            await withDiscardingTaskGroup { tasks in
                do {
                    try await listener.executeThenClose { inbound in
                        for try await connection in inbound {
                            tasks.addTask {
                                await APIConnection(channel: connection, limit: 64 << 10) { head, _ in
                                    guard head.method == .GET || head.method == .HEAD else {
                                        return .error(.notFound("page not found"))
                                    }
                                    return await handler(head.method, head.uri, head.headers)
                                }.serve()
                            }
                        }
                    }
                } catch {
                    // The listener closed (stop()) or failed; connections in flight finish on their own.
                }
            }
        }
        return HTTPEndpoint(host: host, port: bound, listener: listener, serving: serving)
    }

    public func stop() async {
        try? await listener.channel.close()
        serving.cancel()
        _ = await serving.value
    }
}
