import Foundation
import MeshAPI
import NIOHTTP1

/// `meshd daemon --ui-addr`: the read-only cluster page. `/` is the page, `/api/cluster` the
/// `ClusterView` it draws, `/api/updates` a server-sent-event stream with one message per change
/// the manager commits (and per node traffic report), after which the page fetches the view again.
public struct ClusterPage: Sendable {
    let daemon: Daemon

    public init(daemon: Daemon) { self.daemon = daemon }

    public func handle(_ method: HTTPMethod, _ uri: String, _ headers: HTTPHeaders) async -> APIResponse {
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        switch path {
        case "/", "/index.html":
            return APIResponse(
                status: .ok,
                headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")],
                body: .bytes(Array(ClusterPageHTML.page.utf8)))
        case "/api/cluster":
            do {
                var r = APIResponse.json(try await daemon.clusterView())
                r.headers.append(("Cache-Control", "no-store"))
                return r
            } catch {
                return .error(error)
            }
        case "/api/updates":
            return APIResponse(
                status: .ok, headers: [("Cache-Control", "no-store")], body: .stream(contentType: "text/event-stream", updates()))
        default:
            return .error(.notFound("page not found"))
        }
    }

    /// One `data:` message per change, and a comment every 15 s so that an idle stream is not
    /// taken for a dead one by a proxy between the browser and the daemon.
    func updates() -> AsyncStream<[UInt8]> {
        let changes = daemon.clusterChanges()
        return AsyncStream { continuation in
            let pump = Task {
                continuation.yield(Array(": connected\n\n".utf8))
                await withTaskGroup(of: Void.self) { g in
                    g.addTask {
                        for await what in changes { continuation.yield(Array("data: \(what)\n\n".utf8)) }
                    }
                    g.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: .seconds(15))
                            continuation.yield(Array(": keep-alive\n\n".utf8))
                        }
                    }
                    await g.next()
                    g.cancelAll()
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
    }
}
