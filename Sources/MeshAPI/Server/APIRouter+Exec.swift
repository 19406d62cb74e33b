import Foundation
import NIOHTTP1

/// `/exec/{id}/…`: processes started in running containers.
extension APIRouter {
    func exec(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        guard s.count == 3 else { throw Self.pageNotFound }
        let id = s[1]
        switch (r.method, s[2]) {
        case (.POST, "start"):
            let request = r.body.isEmpty ? ExecStartRequest() : try r.decode(ExecStartRequest.self)
            if let size = request.ConsoleSize, size.count != 2 {
                throw .invalidArgument("ConsoleSize must be [height, width], got \(size.count) numbers")
            }
            guard let attachment = try await backend.startExec(id, request) else { return .empty(.ok) }
            let contentType = attachment.tty ? MultiplexedStream.rawContentType : MultiplexedStream.contentType
            return APIResponse(
                status: .ok, body: .hijack(contentType: contentType) { connection in await Self.pump(attachment, connection) })
        case (.POST, "resize"):
            guard let h = r.query["h"].flatMap({ UInt16($0) }), let w = r.query["w"].flatMap({ UInt16($0) }) else {
                throw .invalidArgument("invalid resize: h and w must be numbers from 0 to 65535")
            }
            try await backend.resizeExec(id, rows: h, columns: w)
            return .empty(.ok)
        case (.GET, "json"), (.HEAD, "json"):
            return .json(try await backend.inspectExec(id))
        default:
            throw Self.pageNotFound
        }
    }

    /// The client's bytes to the process (its half-close closes the process's stdin), the
    /// process's output to the client (framed unless a TTY) until the output ends.
    static func pump(_ a: ExecAttachment, _ c: HijackedConnection) async {
        let input = Task {
            for await bytes in c.input { await a.send(bytes) }
            await a.closeInput()
        }
        for await chunk in a.output {
            do { try await c.write(a.tty ? chunk.bytes : MultiplexedStream.frame(chunk.stream, chunk.bytes)) } catch { break }
        }
        a.detach()
        input.cancel()
        // Its iteration over the client's bytes ends before the connection is handed back.
        await input.value
    }
}
