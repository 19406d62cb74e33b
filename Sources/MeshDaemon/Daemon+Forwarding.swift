import Foundation
import MeshAPI
import MeshControl
import MeshEtcd
import NIOHTTP1

/// Cluster requests on a manager that does not lead: sent as they came, over mutual TLS on 2377, to the
/// manager the election names, and its answer returned as if this manager had given it (swarmkit's
/// managers proxy their control API to the raft leader the same way). The docker CLI pointed at any
/// manager therefore works, and sees the leader's state, never a stale copy.
extension Daemon {
    /// dockerd's words when no manager leads (a failover in progress, or too few etcd members).
    static let noLeader =
        "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."

    public func forwardToLeader(method: String, uri: String, contentType: String?, body: [UInt8], registryAuth: String?) async
        -> APIResponse?
    {
        guard manager == nil, let candidacy, let record else { return nil }
        // One answer per forwarded request: a stream that never ends (logs --follow) cannot be relayed.
        if uri.contains("/logs"), let query = URLComponents(string: uri)?.queryItems,
            query.contains(where: { $0.name == "follow" && ["1", "true"].contains($0.value ?? "") })
        {
            return .error(.notImplemented("following logs is served by the leading manager only: run it there"))
        }
        guard let leader = await candidacy.leader(), leader.nodeID != record.nodeID else {
            return .error(.unavailable(Self.noLeader))
        }
        guard let (host, port) = NodePlane.split(leader.address) else {
            return .error(.internalError("the leader's address \(leader.address) is not host:port"))
        }
        let request = ForwardedRequest(method: method, uri: uri, contentType: contentType, body: Data(body), registryAuth: registryAuth)
        let who = "the leader (\(leader.nodeID) at \(leader.address))"
        let answer: ControlMessage?
        do {
            // A leader that froze or was cut off after accepting would otherwise hold the client forever.
            let certificate = nodeCertificate(record)
            answer = try await ControlClient.ask(
                .forward(request), host: host, port: port, caPEM: certificate.caPEM, identity: certificate.client,
                within: Self.forwardDeadline)
        } catch is ControlDeadlineExceeded {
            return .error(.unavailable("\(Self.noLeader) (\(who) did not answer within \(Self.forwardDeadline))"))
        } catch {
            return .error(.unavailable("\(Self.noLeader) (cannot reach \(who): \(error))"))
        }
        switch answer {
        case .forwarded(let r)?:
            return APIResponse(
                status: HTTPResponseStatus(statusCode: r.status), headers: r.headers.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil },
                body: .bytes(Array(r.body)))
        case .error(let text)?:
            return .error(.unavailable("\(who) refused the request: \(text)"))
        default:
            // The leader closed the connection without an answer: it stepped down while serving it.
            return .error(.unavailable("\(Self.noLeader) (\(who) stopped leading while answering)"))
        }
    }

    /// How long a follower waits for the leader's answer (a store write without quorum fails in ~5 s).
    static let forwardDeadline: Duration = .seconds(10)

    /// On the leader: a follower's request through this daemon's own router, never forwarded again (a
    /// leader that just stepped down answers "no leader" rather than bounce it back).
    func answerForwarded(_ request: ForwardedRequest) async -> ForwardedResponse {
        guard manager != nil else {
            return ForwardedResponse(
                status: 503, headers: [["Content-Type", "application/json"]],
                body: Data(#"{"message":"\#(Self.noLeader)"}"#.utf8))
        }
        let response = await APIRouter(backend: self).handle(
            methodName: request.method, uri: request.uri, contentType: request.contentType, body: Array(request.body),
            registryAuth: request.registryAuth, forwarding: false)
        var body: [UInt8] = []
        switch response.body {
        case .bytes(let b): body = b
        case .stream(let contentType, let chunks):
            // A finite stream (logs without --follow): relayed whole, in its own content type.
            for await chunk in chunks { body += chunk }
            let headers = response.headers.filter { $0.0.lowercased() != "content-type" } + [("Content-Type", contentType)]
            return ForwardedResponse(status: response.statusCode, headers: headers.map { [$0.0, $0.1] }, body: Data(body))
        case .hijack:
            return ForwardedResponse(
                status: 501, headers: [["Content-Type", "application/json"]],
                body: Data(#"{"message":"a hijacked connection cannot be forwarded to the leader"}"#.utf8))
        }
        return ForwardedResponse(status: response.statusCode, headers: response.headers.map { [$0.0, $0.1] }, body: Data(body))
    }
}

extension Daemon {
    /// Why `--cluster-store` cannot be used as given, nil when it can.
    public static func problem(clusterStore: String) -> String? {
        do {
            _ = try EtcdStoreURL(parsing: clusterStore)
            return nil
        } catch { return error.description }
    }
}

extension ForwardedResponse {
    static let unavailable = ForwardedResponse(
        status: 503, headers: [["Content-Type", "application/json"]],
        body: Data(#"{"message":"the leading manager is shutting down"}"#.utf8))
}
