import Foundation
import NIOHTTP1

extension APIRouter {
    func services(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        switch (r.method, s.count) {
        case (.GET, 1), (.HEAD, 1):
            let filter = ServiceFilter(try FilterArgs.parse(r.query["filters"], allowed: ServiceFilter.keys))
            return .json(try await backend.listServices(filter, status: r.bool("status")))
        case (.POST, 2) where s[1] == "create":
            // `--with-registry-auth` sends the client's credentials for the nodes' pulls.
            try r.refuseRegistryCredentials()
            return .json(try await backend.createService(try r.decode(ServiceSpec.self)), status: .created)
        case (.GET, 2), (.HEAD, 2):
            var service = try await backend.inspectService(s[1])
            if r.bool("insertDefaults") {
                service.Spec = ServiceSpecNormalizer.withDefaults(service.Spec)
                service.PreviousSpec = service.PreviousSpec.map(ServiceSpecNormalizer.withDefaults)
            }
            return .json(service)
        case (.DELETE, 2):
            try await backend.removeService(s[1])
            return .empty()
        case (.POST, 3) where s[2] == "update":
            try r.refuseRegistryCredentials()
            let version = try r.objectVersion(kind: "service")
            let rollback = r.query["rollback"] == "previous"
            if let other = r.query["rollback"], !other.isEmpty, other != "previous" {
                throw .invalidArgument("invalid value for rollback: \(other)")
            }
            // dockerd ignores the body of a rollback; it still has to be a spec.
            let spec = try r.decode(ServiceSpec.self)
            return .json(try await backend.updateService(s[1], version: version, spec: spec, rollback: rollback))
        case (.GET, 3) where s[2] == "logs":
            return try await logs(r, service: s[1])
        default:
            throw Self.pageNotFound
        }
    }

    func logs(_ r: APIRequest, service: String) async throws(EngineError) -> APIResponse {
        let options = try logOptions(r)
        let source = try await backend.serviceLogs(service, options: options)
        return serviceLogFrames(source, options: options)
    }

    /// `stdout`, `stderr`, `follow`, `timestamps`, `details`, `tail`, `since` of a logs request.
    func logOptions(_ r: APIRequest) throws(EngineError) -> LogOptions {
        var options = LogOptions()
        options.stdout = r.bool("stdout")
        options.stderr = r.bool("stderr")
        guard options.stdout || options.stderr else {
            throw .invalidArgument("Bad parameters: you must choose at least one stream")
        }
        options.follow = r.bool("follow")
        options.timestamps = r.bool("timestamps")
        options.details = r.bool("details")
        if let tail = r.query["tail"], !tail.isEmpty, tail != "all" {
            guard let n = Int(tail), n >= 0 else { throw .invalidArgument("invalid tail value \(tail)") }
            options.tail = n
        }
        if let since = r.query["since"], !since.isEmpty {
            guard let t = Double(since), t.isFinite else { throw .invalidArgument("invalid since value \(since)") }
            options.since = Date(timeIntervalSince1970: t)
        }
        return options
    }

    func serviceLogFrames(_ source: AsyncStream<LogMessage>, options: LogOptions) -> APIResponse {
        let wanted = options
        let frames = AsyncStream<[UInt8]> { continuation in
            let pump = Task {
                for await message in source {
                    if message.stream == .stdout && !wanted.stdout || message.stream == .stderr && !wanted.stderr { continue }
                    continuation.yield(LogFraming.frame(message, options: wanted))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
        return APIResponse(status: .ok, body: .stream(contentType: "application/vnd.docker.multiplexed-stream", frames))
    }
}

/// dockerd's stdcopy framing of log lines: `[stream,0,0,0,len32be]` then one line.
public enum LogFraming {
    public static func frame(_ m: LogMessage, options: LogOptions) -> [UInt8] {
        var text = ""
        if options.timestamps { text += timestamp(m.timestamp) + " " }
        if options.details {
            let pairs = [
                ("com.docker.swarm.node.id", m.nodeID), ("com.docker.swarm.service.id", m.serviceID),
                ("com.docker.swarm.task.id", m.taskID),
            ]
            text += pairs.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: ",") + " "
        }
        text += m.line + "\n"
        let payload = Array(text.utf8)
        let n = UInt32(truncatingIfNeeded: payload.count)
        return [m.stream.rawValue, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + payload
    }

    /// Go's RFC3339NanoFixed: always nine fractional digits.
    static func timestamp(_ d: Date) -> String {
        let seconds = floor(d.timeIntervalSince1970)
        let nanos = Int((d.timeIntervalSince1970 - seconds) * 1e9)
        let base = EngineJSON.formatDate(Date(timeIntervalSince1970: seconds)).replacingOccurrences(of: ".000Z", with: "")
            .replacingOccurrences(of: "Z", with: "")
        let digits = String(nanos)
        return base + "." + String(repeating: "0", count: max(0, 9 - digits.count)) + digits + "Z"
    }

    /// `url.QueryEscape`, which the CLI undoes when it parses the details.
    static func escape(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}
