import Foundation
import MeshControl

/// 2377 on a manager that does not lead: a joining node's request is relayed to the leader and the
/// leader's answer back, so `docker swarm join <any manager>` works as with Docker; a node's session or
/// a forwarded request is told to go elsewhere at once (the node then tries the next manager) instead of
/// waiting on a connection nobody serves. Same certificate chain as the leader's plane presents: a joiner
/// checks the CA against its token here too.
enum FollowerListener {
    static func start(
        record: NodeRecord, certificate: NodeCertificate, leader: @escaping @Sendable () async -> ManagerCandidacy.Leader?
    ) async throws -> ControlServer {
        guard let (host, port) = NodePlane.split(record.listenAddr) else {
            throw DaemonError.config("listen address \(record.listenAddr) is not host:port")
        }
        return try await ControlServer.start(
            host: host, port: port, identity: { certificate.server }, caPEM: { certificate.caPEM }
        ) {
            _, inbound, writer in
            var it = inbound.makeAsyncIterator()
            guard let first = try await inbound.next(ControlMessage.self, iterator: &it) else { return }
            let lead = await leader()
            let elsewhere = lead.map { "this manager does not lead: the leader is \($0.nodeID) at \($0.address)" } ?? Daemon.noLeader
            guard case .joinRequest(let request) = first else {
                try await writer.send(json: ControlMessage.error(elsewhere))
                return
            }
            guard let lead, lead.nodeID != record.nodeID, let (leaderHost, leaderPort) = NodePlane.split(lead.address) else {
                try await writer.send(json: ControlMessage.joinResponse(JoinResponse(error: elsewhere)))
                return
            }
            let response: JoinResponse
            do {
                response = try await relay(request, to: leaderHost, port: leaderPort, caPEM: certificate.caPEM)
            } catch {
                response = JoinResponse(error: "\(Daemon.noLeader) (cannot reach the leader \(lead.nodeID) at \(lead.address): \(error))")
            }
            try await writer.send(json: ControlMessage.joinResponse(response))
        }
    }

    /// The join as the joiner sent it, on a connection without a client certificate (a join needs none),
    /// with the forward's deadline.
    private static func relay(_ request: JoinRequest, to host: String, port: Int, caPEM: String) async throws -> JoinResponse {
        guard
            case .joinResponse(let r)? = try await ControlClient.ask(
                .joinRequest(request), host: host, port: port, caPEM: caPEM, within: Daemon.forwardDeadline)
        else { return JoinResponse(error: "the leader did not answer the join request") }
        return r
    }
}
