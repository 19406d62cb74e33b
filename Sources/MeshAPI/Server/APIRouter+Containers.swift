import Foundation
import NIOHTTP1

/// `/containers/…`: the containers of the tasks this node runs.
extension APIRouter {
    func containers(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        switch (r.method, s.count) {
        case (.GET, 2) where s[1] == "json", (.HEAD, 2) where s[1] == "json":
            return .json(try await backend.listContainers(try Self.listOptions(r)))
        case (.GET, 3) where s[2] == "json", (.HEAD, 3) where s[2] == "json":
            return .json(try await backend.inspectContainer(s[1]))
        case (.GET, 3) where s[2] == "logs":
            let options = try logOptions(r)
            let chunks = try await backend.containerLogs(s[1], options: options)
            return APIResponse(status: .ok, body: .stream(contentType: MultiplexedStream.contentType, Self.framed(chunks)))
        case (.POST, 3) where s[2] == "wait":
            switch r.query["condition"] ?? "" {
            case "", "not-running", "next-exit": break
            case "removed": throw .invalidArgument("meshd removes a container with its task: wait for condition=removed is not served")
            case let other: throw .invalidArgument("invalid condition: \(other)")
            }
            let answers = try await backend.waitContainer(s[1])
            // The CLI returns from `wait` on the headers: they go out now, the body at the end.
            let body = AsyncStream<[UInt8]> { continuation in
                let pump = Task {
                    for await answer in answers {
                        if case .bytes(let b) = APIResponse.json(answer).body { continuation.yield(b) }
                    }
                    continuation.finish()
                }
                continuation.onTermination = { _ in pump.cancel() }
            }
            return APIResponse(status: .ok, body: .stream(contentType: "application/json", body))
        case (.POST, 3) where s[2] == "kill":
            let signal = r.query["signal"].flatMap { $0.isEmpty ? nil : $0 }
            try await backend.killContainer(s[1], signal: signal)
            return .empty(.noContent)
        case (.POST, 3) where s[2] == "exec":
            let request = try Self.checked(try r.decode(ExecCreateRequest.self))
            struct Created: Encodable { let Id: String }
            return .json(Created(Id: try await backend.createExec(s[1], request)), status: .created)
        default:
            throw Self.pageNotFound
        }
    }

    /// `all`, `limit` and `filters` of `GET /containers/json`.
    static func listOptions(_ r: APIRequest) throws(EngineError) -> ContainerListOptions {
        var o = ContainerListOptions()
        o.all = r.bool("all")
        if let text = r.query["limit"], !text.isEmpty {
            guard let n = Int(text) else { throw .invalidArgument("strconv.Atoi: parsing \"\(text)\": invalid syntax") }
            // dockerd: a positive limit lists ended containers too; 0 and -1 mean no limit.
            if n > 0 {
                o.limit = n
                o.all = true
            }
        }
        o.filter = try ContainerFilter.parse(r.query["filters"])
        if o.filter.includesEnded { o.all = true }
        return o
    }

    /// What meshd cannot run as asked is refused by its field, never dropped.
    static func checked(_ e: ExecCreateRequest) throws(EngineError) -> ExecCreateRequest {
        guard let cmd = e.Cmd, !cmd.isEmpty else { throw .invalidArgument("No exec command specified") }
        if e.Privileged == true {
            throw .invalidArgument("meshd cannot run an exec with Privileged: true: execs get the container's capabilities")
        }
        if let keys = e.DetachKeys, !keys.isEmpty {
            throw .invalidArgument("meshd cannot honour DetachKeys \"\(keys)\": an exec's stream ends only with its process")
        }
        if let size = e.ConsoleSize, size.count != 2 {
            throw .invalidArgument("ConsoleSize must be [height, width], got \(size.count) numbers")
        }
        return e
    }

    /// Each chunk as one stdcopy frame.
    static func framed(_ chunks: AsyncStream<OutputChunk>) -> AsyncStream<[UInt8]> {
        AsyncStream<[UInt8]> { continuation in
            let pump = Task {
                for await c in chunks { continuation.yield(MultiplexedStream.frame(c.stream, c.bytes)) }
                continuation.finish()
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
    }
}
